//! Whatever goes wrong, the answer is problem+json: never HTML, never a stack trace,
//! and nothing stored is lost.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, both_backends, spawn_app, spawn_app_with, task_path};

both_backends!(framework_errors_are_problem_json);
async fn framework_errors_are_problem_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("errors").await;
    app.get("/api/v1/nothing-here", None).await.problem(404);
    app.get("/definitely/not/here", None).await.problem(404);
    let wrong_method = app
        .request(Method::DELETE, "/api/v1/tasks", Some(&token), None)
        .await;
    wrong_method.problem(405);
    assert!(wrong_method.header("allow").is_some());
    app.request(Method::PUT, "/api/v1/auth/login", None, None)
        .await
        .problem(405);
}

both_backends!(malformed_bodies_and_wrong_content_types);
async fn malformed_bodies_and_wrong_content_types(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("bodies").await;
    let send = |content_type: Option<&'static str>, body: Vec<u8>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        async move { TestApp::read(request.send().await.expect("send")).await }
    };
    send(Some("application/json"), b"{\"title\": ".to_vec())
        .await
        .problem(400);
    send(Some("application/json"), b"not json at all".to_vec())
        .await
        .problem(400);
    send(
        Some("application/json"),
        b"{\"title\":\"a\"} trailing".to_vec(),
    )
    .await
    .problem(400);
    send(Some("application/json"), Vec::new())
        .await
        .problem(400);
    send(Some("application/json"), vec![0xff, 0xfe, 0x00])
        .await
        .problem(400);
    send(Some("text/plain"), b"{\"title\":\"a\"}".to_vec())
        .await
        .problem(415);
    send(None, b"{\"title\":\"a\"}".to_vec()).await.problem(415);
    send(
        Some("application/x-www-form-urlencoded"),
        b"title=a".to_vec(),
    )
    .await
    .problem(415);
    // JSON with a charset parameter is still JSON.
    let ok = send(
        Some("application/json; charset=utf-8"),
        b"{\"title\":\"a\"}".to_vec(),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 1);
}

both_backends!(oversized_and_pathological_bodies_are_refused_without_harm);
async fn oversized_and_pathological_bodies_are_refused_without_harm(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("huge").await;
    let keep = app.create_task(&token, json!({"title": "survivor"})).await;

    let huge = format!(
        "{{\"title\":\"x\",\"description\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let reply = TestApp::read(
        app.client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .expect("send"),
    )
    .await;
    reply.problem(413);

    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let reply = TestApp::read(
        app.client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(deep)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert!(matches!(reply.status.as_u16(), 400 | 422), "{}", reply.text);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );

    let unicode = app
        .create_task(
            &token,
            json!({"title": "Ünïcødé ✓ 日本語 🚀", "description": "line one\n\tline two"}),
        )
        .await;
    assert_eq!(unicode["title"], "Ünïcødé ✓ 日本語 🚀");
    assert_eq!(unicode["description"], "line one\n\tline two");
    // NUL cannot be stored in PostgreSQL text: refused up front, never a 500.
    for body in [
        json!({"title": "nul \u{0000} inside"}),
        json!({"title": "ok", "description": "nul \u{0000}"}),
    ] {
        app.post("/api/v1/tasks", Some(&token), body)
            .await
            .problem(422);
    }
    app.get("/api/v1/tasks?q=%00", Some(&token))
        .await
        .problem(422);

    // The server is still healthy and nothing stored was lost.
    let fetched = app
        .get(&task_path(keep["id"].as_str().expect("id")), Some(&token))
        .await;
    assert_eq!(fetched.body, keep);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 2);
}

both_backends!(html_is_never_served_for_errors_even_when_asked);
async fn html_is_never_served_for_errors_even_when_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        (Method::GET, "/api/v1/missing"),
        (Method::GET, "/api/v1/tasks"),
        (Method::PATCH, "/health/live"),
    ] {
        let reply = TestApp::read(
            app.client
                .request(method, app.url(path))
                .header("accept", "text/html")
                .send()
                .await
                .expect("send"),
        )
        .await;
        assert!(reply.status.is_client_error());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert!(!reply.text.contains("<html"));
    }
}

/// A request that does not finish within `server.request_timeout_secs` is answered with
/// the timeout problem (503 with Retry-After), not left hanging. Here the client sends
/// only half of its body; no stored data is involved, so SQLite serves it.
#[tokio::test]
async fn a_request_over_the_time_limit_is_a_503_problem() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let app = spawn_app_with(Backend::Sqlite, |s| s.server.request_timeout_secs = 1).await;
    let body = br#"{"email":"slow@example.com","password":"never finished"}"#;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body[..10]).await.expect("half a body");
    let mut response = Vec::new();
    // Bounded, so that a server that never answers fails the test instead of hanging it.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("an answer before the client gives up")
    .expect("read");
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
    let head = head.to_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{response}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{response}"
    );
    assert!(head.contains("retry-after: "), "{response}");
    let problem: serde_json::Value = serde_json::from_str(body).expect("problem json");
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["type"], "https://taskapi.dev/problems/timeout");
}

#[salvo::handler]
async fn explode() -> &'static str {
    panic!("deliberate panic in a test route")
}

#[salvo::handler]
async fn still_fine() -> &'static str {
    "fine"
}

/// No API route can panic on purpose, so the test mounts one behind the production
/// service chain (`startup::service`: catcher, state, request context, `CatchPanic`). The
/// panic becomes a 500 problem that reveals nothing, the request id is still attached,
/// and the server keeps serving.
#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_the_server_lives_on() {
    use salvo::prelude::*;

    let app = spawn_app(Backend::Sqlite).await;
    let router = Router::new()
        .push(Router::with_path("explode").get(explode))
        .push(Router::with_path("fine").get(still_fine));
    let service = taskapi::startup::service(router, &app.state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("address"));
    let acceptor = salvo::conn::tcp::TcpAcceptor::try_from(listener).expect("acceptor");
    tokio::spawn(Server::new(acceptor).serve(service));

    let reply = TestApp::read(
        app.client
            .get(format!("{address}/explode"))
            .header("x-request-id", "panic-req-1")
            .send()
            .await
            .expect("an answer, not a dropped connection"),
    )
    .await;
    let problem = reply.problem(500);
    assert!(!reply.text.contains("deliberate"), "{}", reply.text);
    assert!(!reply.text.contains("panicked"), "{}", reply.text);
    assert_eq!(problem["status"], 500);
    assert_eq!(reply.header("x-request-id"), Some("panic-req-1"));
    let fine = app.client.get(format!("{address}/fine")).send().await;
    assert_eq!(fine.expect("still serving").status(), StatusCode::OK);
}
