//! Whatever goes wrong, the answer is problem+json: never HTML, never a stack trace,
//! and nothing stored is lost.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

#[tokio::test]
async fn framework_errors_are_problem_json() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn malformed_bodies_and_wrong_content_types() {
    let app = spawn_app().await;
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

#[tokio::test]
async fn oversized_and_pathological_bodies_are_refused_without_harm() {
    let app = spawn_app().await;
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
        .get(
            &format!("/api/v1/tasks/{}", keep["id"].as_str().expect("id")),
            Some(&token),
        )
        .await;
    assert_eq!(fetched.body, keep);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 2);
}

#[tokio::test]
async fn html_is_never_served_for_errors_even_when_asked() {
    let app = spawn_app().await;
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
