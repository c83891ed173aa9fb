//! HTTP as clients and caches expect it: no caching of personal responses, HEAD wherever
//! GET is allowed, conditional requests per RFC 9110 §13, the documentation's and front
//! end's own headers, and a front end served from inside the binary.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, Reply, TestApp, both_backends, spawn_app, spawn_app_with, task_path,
    unique_email,
};

// ---------------------------------------------------------------------------------------
// Responses carrying tokens or personal data must not be stored by any cache.

#[track_caller]
fn assert_not_stored(reply: &Reply, what: &str) {
    assert_eq!(reply.header("cache-control"), Some("no-store"), "{what}");
    assert_eq!(reply.header("pragma"), Some("no-cache"), "{what}");
}

both_backends!(token_and_personal_responses_are_never_stored);
async fn token_and_personal_responses_are_never_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("cache");
    let registered = app.register("Cache", &email, PASSWORD).await;
    assert_eq!(registered.status, StatusCode::CREATED);
    assert_not_stored(&registered, "register");
    let login = app.login(&email, PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK);
    assert_not_stored(&login, "login");
    let refresh = login.body["refresh_token"].as_str().expect("refresh");
    let rotated = app.refresh(refresh).await;
    assert_eq!(rotated.status, StatusCode::OK);
    assert_not_stored(&rotated, "refresh");
    let token = rotated.body["access_token"].as_str().expect("token");
    let me = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_not_stored(&me, "me");
    let task = app.create_task(token, json!({"title": "Mine"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    assert_not_stored(&app.get(&path, Some(token)).await, "task");
    assert_not_stored(&app.get("/api/v1/tasks", Some(token)).await, "task list");
    assert_not_stored(&app.get("/api/v1/admin/users", Some(token)).await, "users");
}

// ---------------------------------------------------------------------------------------
// HEAD wherever GET is allowed; /apidocs policy; /favicon.ico.

async fn head_matches_get(app: &TestApp, path: &str, token: Option<&str>, headers: &[&str]) {
    let get = app.get(path, token).await;
    let head = app.request(Method::HEAD, path, token, None).await;
    assert_eq!(head.status, get.status, "HEAD {path}: {}", get.text);
    assert!(head.text.is_empty(), "HEAD {path} has a body");
    for name in headers {
        assert_eq!(
            head.header(name),
            get.header(name),
            "HEAD {path}: header {name}"
        );
    }
}

both_backends!(head_answers_like_get_without_a_body);
async fn head_answers_like_get_without_a_body(backend: Backend) {
    // The embedded front end here; the directory one is the helpers' default.
    let app = spawn_app_with(backend, |s| s.server.static_dir = Default::default()).await;
    let (token, _, _) = app.new_user("head").await;
    let task = app.create_task(&token, json!({"title": "Headed"})).await;
    let task_path = task_path(task["id"].as_str().expect("id"));
    let api = [
        "content-type",
        "content-length",
        "cache-control",
        "etag",
        "ratelimit-limit",
    ];
    head_matches_get(&app, &task_path, Some(&token), &api).await;
    head_matches_get(&app, "/api/v1/tasks?limit=5", Some(&token), &api).await;
    head_matches_get(&app, "/api/v1/auth/me", Some(&token), &api).await;
    head_matches_get(&app, "/api/v1/admin/users", Some(&token), &api).await;
    let plain = ["content-type", "content-length"];
    for path in [
        "/health/live",
        "/health/ready",
        "/apidocs/openapi.json",
        "/",
        "/index.html",
        "/styles.css",
        "/favicon.ico",
    ] {
        head_matches_get(&app, path, None, &plain).await;
    }
    let metrics = app.request(Method::HEAD, "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.text.is_empty());
    // HEAD keeps the semantics of GET: authentication, 404s and conditional requests.
    let anonymous = app.request(Method::HEAD, &task_path, None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let not_modified = app
        .client
        .head(app.url(&task_path))
        .bearer_auth(&token)
        .header("if-none-match", "\"1\"")
        .send()
        .await
        .expect("head");
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    // A method that is really not allowed is still a 405 that lists HEAD next to GET.
    let wrong = app.request(Method::PUT, "/health/live", None, None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    let allow = wrong.header("allow").expect("allow").to_ascii_uppercase();
    assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
}

#[tokio::test]
async fn apidocs_carry_a_content_security_policy_and_frame_denial() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/apidocs/",
        "/apidocs/swagger-ui.css",
        "/apidocs/openapi.json",
    ] {
        let reply = app.get(path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let csp = reply.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("object-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"), "{csp}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{path}");
    }
    // The inline bootstrap script of Swagger UI is allowed by its hash, nothing else inline.
    let page = app.get("/apidocs/", None).await;
    let csp = page.header("content-security-policy").expect("csp");
    assert!(csp.contains("'sha256-"), "{csp}");
}

#[tokio::test]
async fn favicon_ico_is_served() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    // Embedded (the default) and from a directory (`server.static_dir`) alike.
    let embedded = spawn_app_with(Backend::Sqlite, |s| {
        s.server.static_dir = Default::default()
    })
    .await;
    let from_disk = spawn_app(Backend::Sqlite).await;
    for app in [&embedded, &from_disk] {
        let reply = app
            .client
            .get(app.url("/favicon.ico"))
            .send()
            .await
            .expect("favicon");
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(
            reply.headers()["content-type"].to_str().expect("ascii"),
            "image/vnd.microsoft.icon"
        );
        let bytes = reply.bytes().await.expect("bytes");
        // ICONDIR: reserved 0, type 1 (icon), at least one image.
        assert_eq!(&bytes[..4], &[0, 0, 1, 0]);
        assert!(u16::from_le_bytes([bytes[4], bytes[5]]) >= 1);
    }
}

// ---------------------------------------------------------------------------------------
// The front end is inside the binary; the working directory does not matter.

#[tokio::test]
async fn the_binary_serves_the_front_end_from_any_working_directory() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("taskapi-cwd-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let _cleanup = crate::helpers::TempDir(dir.clone());
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskapi"))
        .arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TASKAPI_SERVER__PORT", "0")
        .env("TASKAPI_LOG__DIR", dir.join("logs"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/t.db?mode=rwc", dir.display()),
        )
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start taskapi");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().expect("stdout");
    let _guard = Kill(child);
    // The "listening" log line carries the port the OS picked.
    let port = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["msg"] == "taskapi listening"
            {
                return entry["port"].as_u64();
            }
        }
        None
    })
    .await
    .expect("reader")
    .expect("listening line with a port");
    let client = reqwest::Client::new();
    let index = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("index");
    assert_eq!(index.status(), StatusCode::OK);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    let html = index.text().await.expect("html");
    assert!(html.contains("<html"), "{html}");
    let script = client
        .get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .send()
        .await
        .expect("favicon");
    assert_eq!(script.status(), StatusCode::OK);
    let missing = client
        .get(format!("http://127.0.0.1:{port}/no-such-file.js"))
        .send()
        .await
        .expect("missing");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------
// Conditional requests per RFC 9110 §13.

async fn conditional(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    header: (&str, &str),
) -> Reply {
    let mut request = app
        .client
        .request(method.clone(), app.url(path))
        .bearer_auth(token)
        .header(header.0, header.1);
    if method != Method::DELETE {
        request = request.json(&json!({"title": "changed"}));
    }
    TestApp::read(request.send().await.expect("sent")).await
}

both_backends!(conditional_requests_follow_rfc_9110);
async fn conditional_requests_follow_rfc_9110(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("conditional").await;
    let task = app.create_task(&token, json!({"title": "v1"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    for method in [Method::PUT, Method::PATCH] {
        // Version 1: a weak tag never satisfies If-Match (strong comparison).
        let weak = conditional(&app, method.clone(), &path, &token, ("if-match", "W/\"1\"")).await;
        weak.problem(412);
        // If-None-Match: * on an existing task refuses the write.
        let star = conditional(&app, method.clone(), &path, &token, ("if-none-match", "*")).await;
        star.problem(412);
        let current = app.get(&path, Some(&token)).await.body["version"]
            .as_i64()
            .expect("version");
        let naming_current = format!("W/\"{current}\"");
        let none_match = conditional(
            &app,
            method.clone(),
            &path,
            &token,
            ("if-none-match", &naming_current),
        )
        .await;
        none_match.problem(412);
        // A list that contains the current tag matches.
        let list = format!("\"{}\", \"{current}\"", current + 5);
        let listed = conditional(&app, method.clone(), &path, &token, ("if-match", &list)).await;
        assert_eq!(listed.status, StatusCode::OK, "{method}: {}", listed.text);
        assert_eq!(listed.body["version"], current + 1);
        // A list without it does not; nor does If-None-Match naming another version stop it.
        let stale = format!("\"{current}\", \"{}\"", current + 7);
        conditional(&app, method.clone(), &path, &token, ("if-match", &stale))
            .await
            .problem(412);
        let other = conditional(
            &app,
            method.clone(),
            &path,
            &token,
            ("if-none-match", "\"999\""),
        )
        .await;
        assert_eq!(other.status, StatusCode::OK, "{method}: {}", other.text);
    }
    let version = app.get(&path, Some(&token)).await.body["version"]
        .as_i64()
        .expect("version");
    conditional(
        &app,
        Method::DELETE,
        &path,
        &token,
        ("if-match", &format!("W/\"{version}\"")),
    )
    .await
    .problem(412);
    conditional(&app, Method::DELETE, &path, &token, ("if-none-match", "*"))
        .await
        .problem(412);
    let deleted = conditional(
        &app,
        Method::DELETE,
        &path,
        &token,
        ("if-match", &format!("\"0\", \"{version}\"")),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    // Conditions never reveal someone else's (or a missing) task: still a 404.
    conditional(&app, Method::DELETE, &path, &token, ("if-match", "*"))
        .await
        .problem(404);
}

// ---------------------------------------------------------------------------------------
// Cross-origin pages (CORS): none by default, the configured origins only, never with
// credentials.

/// Found by the operations review (#27, item 10): a front end on another origin could not
/// use the API (a preflight was a 405 without `Access-Control-*`). With
/// `server.cors_allowed_origins` set, a configured origin's preflight is answered and its
/// requests (errors included) can be read; any other origin gets no CORS header; no origin
/// is told it may send credentials. Without the setting, nothing changes.
#[tokio::test]
async fn cross_origin_pages_are_allowed_only_from_configured_origins() {
    let allowed = "https://app.example.com";
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.server.cors_allowed_origins = vec![allowed.to_string()];
    })
    .await;
    let (token, _, _) = app.new_user("cors").await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/api/v1/tasks"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let answer = preflight(allowed).await.expect("preflight");
    assert!(answer.status().is_success(), "{}", answer.status());
    let headers = answer.headers();
    assert_eq!(headers["access-control-allow-origin"], allowed);
    let methods = headers["access-control-allow-methods"]
        .to_str()
        .expect("ascii");
    assert!(
        methods.contains("POST") && methods.contains("PATCH"),
        "{methods}"
    );
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(
        allowed_headers.contains("authorization") && allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    assert!(headers.get("access-control-allow-credentials").is_none());

    let refused = preflight("https://evil.example").await.expect("preflight");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // An actual request and an error both carry the header, and expose what clients read.
    for (path, token, status) in [
        ("/api/v1/tasks", Some(token.as_str()), StatusCode::OK),
        ("/api/v1/tasks", None, StatusCode::UNAUTHORIZED),
    ] {
        let mut request = app.client.get(app.url(path)).header("origin", allowed);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let reply = request.send().await.expect("request");
        assert_eq!(reply.status(), status);
        assert_eq!(reply.headers()["access-control-allow-origin"], allowed);
        let exposed = reply.headers()["access-control-expose-headers"]
            .to_str()
            .expect("ascii")
            .to_lowercase();
        assert!(
            exposed.contains("etag") && exposed.contains("retry-after"),
            "{exposed}"
        );
        assert!(
            reply
                .headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
    }

    // Not configured: no CORS headers at all.
    let plain = spawn_app(Backend::Sqlite).await;
    let reply = plain
        .client
        .get(plain.url("/api/v1/tasks"))
        .header("origin", allowed)
        .send()
        .await
        .expect("request");
    assert!(reply.headers().get("access-control-allow-origin").is_none());
}
