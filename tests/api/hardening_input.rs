//! Regression tests for the input and data items of the hardening issue (#12: 6, 7, 8, 10,
//! 18, 19, 20) and the standards issue (#16: 1, 2, 4, 5). Where storage is involved each
//! runs on PostgreSQL and on SQLite.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, Reply, TestApp, both_backends, spawn_app, spawn_app_with, unique_email,
};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];

// ---------------------------------------------------------------------------------------
// #12.6: responses carrying tokens or personal data must not be stored by any cache.

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
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    assert_not_stored(&app.get(&path, Some(token)).await, "task");
    assert_not_stored(&app.get("/api/v1/tasks", Some(token)).await, "task list");
    assert_not_stored(&app.get("/api/v1/admin/users", Some(token)).await, "users");
}

// ---------------------------------------------------------------------------------------
// #12.7 and #16.1/#16.2: RFC 3339 in and out, years 0001-9999 in UTC, microseconds.

const OUT_OF_RANGE: [&str; 7] = [
    "-4714-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-10:00",
    "0001-01-01T00:30:00+01:00",
    "0000-06-01T00:00:00Z",
    "2030-01-01 00:00:00Z",
];

#[tokio::test]
async fn dates_outside_years_1_to_9999_are_422_naming_the_field() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("dates").await;
        let task = app.create_task(&token, json!({"title": "Dated"})).await;
        let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
        for raw in OUT_OF_RANGE {
            let created = app
                .post(
                    "/api/v1/tasks",
                    Some(&token),
                    json!({"title": "t", "due_date": raw}),
                )
                .await;
            assert_eq!(created.invalid_fields(), ["due_date"], "{backend:?} {raw}");
            for method in [Method::PUT, Method::PATCH] {
                let changed = app
                    .request(
                        method.clone(),
                        &path,
                        Some(&token),
                        Some(json!({"title": "t", "due_date": raw})),
                    )
                    .await;
                assert_eq!(changed.invalid_fields(), ["due_date"], "{method} {raw}");
            }
            for param in ["due_before", "due_after"] {
                let query = form_urlencoded(param, raw);
                let listed = app
                    .get(&format!("/api/v1/tasks?{query}"), Some(&token))
                    .await;
                assert_eq!(listed.invalid_fields(), [param], "{backend:?} {raw}");
            }
        }
        // Nothing was stored by the refused writes.
        assert_eq!(app.get(&path, Some(&token)).await.body["version"], 1);
    }
}

fn form_urlencoded(key: &str, value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b':' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("{key}={out}")
}

#[tokio::test]
async fn dates_round_trip_at_microsecond_precision_on_both_databases() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("micro").await;
        let cases = [
            (
                "2030-01-01T00:00:00.123456789Z",
                "2030-01-01T00:00:00.123456Z",
            ),
            ("2030-01-01T02:00:00.5+02:00", "2030-01-01T00:00:00.500Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.9999999Z",
                "9999-12-31T23:59:59.999999Z",
            ),
            ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59Z"),
            // A leap second folds into the next minute, as PostgreSQL itself does.
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
            ("2030-06-01t12:00:00z", "2030-06-01T12:00:00Z"),
        ];
        for (sent, expected) in cases {
            let task = app
                .create_task(&token, json!({"title": sent, "due_date": sent}))
                .await;
            assert_eq!(task["due_date"], expected, "{backend:?} {sent}");
            let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
            let fetched = app.get(&path, Some(&token)).await;
            assert_eq!(fetched.body["due_date"], expected, "{backend:?} {sent}");
            // Server-set timestamps have the same precision as the stored ones.
            for field in ["created_at", "updated_at"] {
                let value = fetched.body[field].as_str().expect("timestamp");
                let digits = value
                    .split_once('.')
                    .map_or(0, |(_, frac)| frac.trim_end_matches('Z').len());
                assert!(digits <= 6, "{backend:?} {field} {value}");
                assert_eq!(task[field], fetched.body[field], "{backend:?} {field}");
            }
        }
    }
}

#[tokio::test]
async fn extreme_dates_filter_and_sort_the_same_on_both_databases() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("extremes").await;
        for (title, due) in [
            ("last", "9999-12-31T23:59:59.999999Z"),
            ("first", "0001-01-01T00:00:00Z"),
            ("fraction", "2030-01-01T00:00:00.5Z"),
            ("whole", "2030-01-01T00:00:00Z"),
            ("later fraction", "2030-01-01T00:00:00.500001Z"),
        ] {
            app.create_task(&token, json!({"title": title, "due_date": due}))
                .await;
        }
        let titles = |reply: Reply| -> Vec<String> {
            reply.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|t| t["title"].as_str().expect("title").to_string())
                .collect()
        };
        let sorted = app.get("/api/v1/tasks?sort=due_date", Some(&token)).await;
        assert_eq!(
            titles(sorted),
            ["first", "whole", "fraction", "later fraction", "last"],
            "{backend:?}"
        );
        let before = app
            .get(
                "/api/v1/tasks?due_before=2000-01-01T00:00:00Z",
                Some(&token),
            )
            .await;
        assert_eq!(titles(before), ["first"], "{backend:?}");
        let after = app
            .get(
                "/api/v1/tasks?due_after=2030-01-01T00:00:00.5Z&sort=due_date",
                Some(&token),
            )
            .await;
        assert_eq!(titles(after), ["later fraction", "last"], "{backend:?}");
    }
}

// ---------------------------------------------------------------------------------------
// #12.8: hidden and confusable characters.

both_backends!(invisible_and_confusable_characters_are_rejected);
async fn invisible_and_confusable_characters_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("unicode").await;
    for (name, email) in [
        ("Ad\u{200b}min", unique_email("zwsp")),
        ("txt.exe\u{202e}", unique_email("rlo")),
        ("Mallory", format!("ad\u{200b}min-{}", unique_email("x"))),
        ("Mallory", format!("a\u{2066}b-{}", unique_email("x"))),
    ] {
        let reply = app.register(name, &email, PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?} {email:?}"
        );
    }
    // Latin word with a Cyrillic "а": in a name, and in an email domain.
    let spoofed_name = app
        .register("P\u{0430}ypal Support", &unique_email("mixed"), PASSWORD)
        .await;
    assert_eq!(spoofed_name.invalid_fields(), ["name"]);
    let spoofed_email = app
        .register("Mallory", "support@p\u{0430}ypal.com", PASSWORD)
        .await;
    assert_eq!(spoofed_email.invalid_fields(), ["email"]);
    // Titles and profile names, through every write path.
    let reply = app
        .post(
            "/api/v1/tasks",
            Some(&token),
            json!({"title": "Pay\u{200d}ment"}),
        )
        .await;
    assert_eq!(reply.invalid_fields(), ["title"]);
    let task = app.create_task(&token, json!({"title": "Fine"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"title": "\u{2067}evil"})),
        )
        .await;
    assert_eq!(patched.invalid_fields(), ["title"]);
    let renamed = app
        .request(
            Method::PATCH,
            "/api/v1/auth/me",
            Some(&token),
            Some(json!({"name": "Bob\u{feff}\u{2060}"})),
        )
        .await;
    assert_eq!(renamed.invalid_fields(), ["name"]);
    // Legitimate non-Latin and mixed-language text still works.
    let fine = app
        .register("Анна Karenina", &unique_email("anna"), PASSWORD)
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.text);
    app.create_task(&token, json!({"title": "Café ❤\u{fe0f} Ελλάδα"}))
        .await;
}

// ---------------------------------------------------------------------------------------
// #12.10 and #16.5: HEAD wherever GET is allowed; /apidocs policy; /favicon.ico.

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
    let task_path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
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
// #12.18: the front end is inside the binary; the working directory does not matter.

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
// #12.19: concurrency on SQLite, deadlocks on PostgreSQL: never a 500.

#[tokio::test]
async fn concurrent_refreshes_of_one_token_on_sqlite_never_fail_with_500() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (_, _, email) = app.new_user("racer").await;
    for round in 0..3 {
        let login = app.login(&email, PASSWORD).await;
        let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
        let replies = futures::future::join_all((0..16).map(|_| app.refresh(&refresh))).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "round {round}: {statuses:?} {:?}",
            replies
                .iter()
                .find(|r| r.status.is_server_error())
                .map(|r| &r.text)
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn admins_demoting_each_other_on_two_replicas_never_get_500() {
    use taskapi::startup::Application;

    // PostgreSQL only: replicas share one PostgreSQL; SQLite deployments are one process.
    let app = spawn_app(Backend::Postgres).await;
    // A second replica on the same PostgreSQL database: the in-process admin lock of one
    // replica cannot serialise it against the other; only the database can.
    let url = app.state.settings.database_url();
    let replica = Application::build(crate::helpers::test_settings(url))
        .await
        .expect("replica");
    let replica_url = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until(std::future::pending()));

    let (_, mut admin_id, mut admin_email) = app.new_user("first").await;
    let (_, mut other_id, mut other_email) = app.new_user("second").await;
    let token_of = |email: String| {
        let app = &app;
        async move {
            app.login(&email, PASSWORD).await.body["access_token"]
                .as_str()
                .expect("token")
                .to_string()
        }
    };
    for round in 0..6 {
        let admin = token_of(admin_email.clone()).await;
        let promote = app
            .request(
                Method::PATCH,
                &format!("/api/v1/admin/users/{other_id}"),
                Some(&admin),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);
        let other = token_of(other_email.clone()).await;
        // Each demotes the other at the same moment, through different replicas.
        let demote_other = app
            .client
            .patch(app.url(&format!("/api/v1/admin/users/{other_id}")))
            .bearer_auth(&admin)
            .json(&json!({"role": "user"}))
            .send();
        let demote_admin = app
            .client
            .patch(format!("{replica_url}/api/v1/admin/users/{admin_id}"))
            .bearer_auth(&other)
            .json(&json!({"role": "user"}))
            .send();
        let (a, b) = tokio::join!(demote_other, demote_admin);
        let a = TestApp::read(a.expect("a")).await;
        let b = TestApp::read(b.expect("b")).await;
        for reply in [&a, &b] {
            assert!(
                matches!(reply.status.as_u16(), 200 | 401 | 403 | 409 | 503),
                "round {round}: {} {}",
                reply.status,
                reply.text
            );
        }
        // Exactly one admin is left, whoever won.
        let admins = app
            .count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND active")
            .await;
        assert_eq!(admins, 1, "round {round}: {} / {}", a.text, b.text);
        let admin_kept = app
            .count(&format!(
                "SELECT COUNT(*) AS n FROM users WHERE id = '{admin_id}' AND role = 'admin'"
            ))
            .await
            == 1;
        if !admin_kept {
            std::mem::swap(&mut admin_id, &mut other_id);
            std::mem::swap(&mut admin_email, &mut other_email);
        }
    }
}

/// Two transactions lock one row each, then each other's: PostgreSQL aborts one (40P01).
async fn deadlock(
    db: &sea_orm::DatabaseConnection,
    a: &str,
    b: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let touch_a = format!("UPDATE users SET name = name WHERE id = '{a}'");
    let touch_b = format!("UPDATE users SET name = name WHERE id = '{b}'");
    let t1 = db.begin().await?;
    let t2 = db.begin().await?;
    t1.execute_unprepared(&touch_a).await?;
    t2.execute_unprepared(&touch_b).await?;
    let (r1, r2) = tokio::join!(
        t1.execute_unprepared(&touch_b),
        t2.execute_unprepared(&touch_a)
    );
    r1?;
    r2?;
    Ok(())
}

#[tokio::test]
async fn a_postgres_deadlock_is_a_503_problem_not_a_500() {
    use taskapi::error::AppError;
    use taskapi::models::txn;

    let app = spawn_app(Backend::Postgres).await;
    let (_, first, _) = app.new_user("lock-a").await;
    let (_, second, _) = app.new_user("lock-b").await;
    let err = deadlock(&app.state.db, &first, &second)
        .await
        .expect_err("one of the two is the deadlock victim");
    assert!(taskapi::error::is_contention(&err), "{err}");
    assert_eq!(
        AppError::from(err).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The retry helper runs the whole transaction again after such a loss.
    let mut attempts = 0;
    let outcome = txn::retrying(|| {
        attempts += 1;
        let lose = attempts == 1;
        let (db, first, second) = (app.state.db.clone(), first.clone(), second.clone());
        async move {
            if lose {
                deadlock(&db, &first, &second).await?;
            }
            Ok::<_, sea_orm::DbErr>("done")
        }
    })
    .await;
    assert_eq!(outcome.expect("second attempt succeeds"), "done");
    assert_eq!(attempts, 2);
}

// ---------------------------------------------------------------------------------------
// #12.20: stale refresh-token rows are purged in bounded batches.

#[tokio::test]
async fn stale_refresh_tokens_are_purged_in_bounded_batches() {
    use chrono::Duration;
    use taskapi::models::sessions;
    use taskapi::validate;

    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (_, _, email) = app.new_user("purge").await;
        // Live sessions: one fresh, one rotated (its spent row must stay for reuse detection).
        let live = app.login(&email, PASSWORD).await;
        let spent = live.body["refresh_token"].as_str().expect("r").to_string();
        assert_eq!(app.refresh(&spent).await.status, StatusCode::OK);
        // Stale ones: logged out (revoked) sessions.
        for _ in 0..5 {
            let login = app.login(&email, PASSWORD).await;
            let token = login.body["refresh_token"].as_str().expect("r").to_string();
            assert_eq!(app.logout(&token).await.status, StatusCode::NO_CONTENT);
        }
        // new_user's own login session, the live pair, and 5 revoked.
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM refresh_tokens").await,
            8
        );
        let later = validate::now() + Duration::seconds(1);
        // Batches of 2, at most 2 batches: 4 of the 5 revoked rows go.
        let purged = sessions::purge_stale(&app.state.db, later, 2, 2)
            .await
            .expect("purge");
        assert_eq!(purged, 4, "{backend:?}");
        let purged = sessions::purge_stale(&app.state.db, later, 2, 2)
            .await
            .expect("purge");
        assert_eq!(purged, 1, "{backend:?}");
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM refresh_tokens").await,
            3
        );
        // The spent token is still recognised as reuse, and the live one still works.
        assert_eq!(app.refresh(&spent).await.status, StatusCode::UNAUTHORIZED);
        // Nothing newer than the cutoff is ever deleted.
        let none =
            sessions::purge_stale(&app.state.db, validate::now() - Duration::days(1), 100, 5)
                .await
                .expect("purge");
        assert_eq!(none, 0);
    }
}

// ---------------------------------------------------------------------------------------
// #16.4: conditional requests per RFC 9110 §13.

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
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
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
