//! Regression tests for the operations items of issue #12 (hardening): bounded metric
//! labels and log fields, cancelled requests, database deadlines, counters at zero,
//! probe traffic, shutdown behind a load balancer, read-only readiness, unmigrated
//! databases and failed starts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::{Value, json};
use taskapi::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    Backend, DbProxy, TempDir, TestApp, both_backends, log_dir, metric_value, spawn_app,
    spawn_app_with, test_settings, through,
};

/// Upper bound for anything the tests wait for; reaching it is a failure, not a timing.
const PATIENCE: Duration = Duration::from_secs(20);

fn read_log_lines() -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(log_dir()) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("app.log"))
        .flat_map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .filter_map(|line| serde_json::from_str(&line).ok())
        .collect()
}

/// Waits until the shared test log holds a `request completed` line for `request_id`.
async fn completed_line(request_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(line) = read_log_lines().into_iter().find(|l| {
            l["request_id"] == request_id
                && l["msg"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("request completed"))
        }) {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for {request_id}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Item 1: invented methods and long paths cannot grow /metrics or the logs.

#[tokio::test]
async fn invented_methods_share_one_label_and_logged_fields_are_capped() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_app(Backend::Sqlite).await;
    let invented = format!("BOGUS{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let method = Method::from_bytes(invented.as_bytes()).expect("method");
    let reply = app
        .client
        .request(method, app.url("/api/v1/tasks"))
        .send()
        .await
        .expect("send");
    assert!(reply.status().is_client_error());
    let metrics = app.get("/metrics", None).await.text;
    assert!(
        !metrics.contains(&invented),
        "an invented method became a label"
    );
    assert!(
        metric_value(&metrics, "http_requests_total", &[("method", "OTHER")]).unwrap_or(0.0) >= 1.0,
        "invented methods are counted as OTHER"
    );

    let request_id = format!("cap-{}", uuid::Uuid::new_v4().simple());
    let long_path = format!("/api/v1/{}", "a".repeat(20_000));
    let reply = app
        .client
        .get(app.url(&long_path))
        .header("x-request-id", &request_id)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let line = completed_line(&request_id).await;
    let logged_path = line["path"].as_str().expect("path field");
    assert!(
        logged_path.len() < 400,
        "path logged at {} bytes",
        logged_path.len()
    );
    assert!(logged_path.starts_with("/api/v1/aaaa"));
    assert!(
        line.to_string().len() < 2_000,
        "one request wrote a huge log line"
    );
}

// ---------------------------------------------------------------------------------------
// Item 11: a client that goes away mid-request is accounted for.

/// Holds an exclusive lock on `table` from another connection until rolled back.
async fn lock_table(app: &TestApp, table: &str) -> sea_orm::DatabaseTransaction {
    let db = Database::connect(app.state.settings.database_url())
        .await
        .expect("second connection");
    let txn = db.begin().await.expect("begin");
    txn.execute_unprepared(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .await
        .expect("lock");
    txn
}

async fn lock_tasks(app: &TestApp) -> sea_orm::DatabaseTransaction {
    lock_table(app, "tasks").await
}

/// Polls /metrics until the series reaches `at_least`.
async fn wait_for_metric(app: &TestApp, name: &str, labels: &[(&str, &str)], at_least: f64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = app.get("/metrics", None).await.text;
        if metric_value(&text, name, labels).unwrap_or(0.0) >= at_least {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} {labels:?} never reached {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until some session of this test's database waits for a lock.
async fn wait_for_lock_waiter(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        app.db_name
    );
    while app.count(&sql).await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "request never reached the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn cancelled_requests_are_counted_as_499_and_leave_the_in_flight_gauge() {
    // PostgreSQL only: the request is held on a table lock (LOCK TABLE, pg_stat_activity).
    let app = spawn_app(Backend::Postgres).await;
    let (token, _, _) = app.new_user("cancel").await;
    let task = app.create_task(&token, json!({"title": "locked"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    let labels = [
        ("method", "GET"),
        ("route", "/api/v1/tasks/{id}"),
        ("status", "499"),
    ];
    let before = metric_value(
        &app.get("/metrics", None).await.text,
        "http_requests_total",
        &labels,
    )
    .unwrap_or(0.0);

    let lock = lock_tasks(&app).await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nx-request-id: cancel-me\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    wait_for_lock_waiter(&app).await;
    // The client gives up while the handler waits for the database.
    drop(stream);

    wait_for_metric(&app, "http_requests_total", &labels, before + 1.0).await;
    lock.rollback().await.expect("release");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !read_log_lines()
        .iter()
        .any(|l| l["request_id"] == "cancel-me" && l["status"] == 499)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for the cancelled request"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A login abandoned during the credential check runs to its end (a login may write:
    // lockout counters, a rehash), so its outcome is the real one, not "cancelled".
    let outcomes = |text: &str| {
        let of = |outcome| {
            metric_value(text, "auth_login_total", &[("outcome", outcome)]).unwrap_or(0.0)
        };
        (of("failure"), of("cancelled"))
    };
    let (failures, cancelled) = outcomes(&app.get("/metrics", None).await.text);
    let lock = lock_table(&app, "users").await;
    let mut stream = TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let body = json!({"email": "someone@example.com", "password": "whatever password"}).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    wait_for_lock_waiter(&app).await;
    drop(stream);
    lock.rollback().await.expect("release");
    wait_for_metric(
        &app,
        "auth_login_total",
        &[("outcome", "failure")],
        failures + 1.0,
    )
    .await;
    let (_, cancelled_after) = outcomes(&app.get("/metrics", None).await.text);
    assert_eq!(
        cancelled_after, cancelled,
        "the abandoned login was cut short"
    );
}

// ---------------------------------------------------------------------------------------
// Item 12: database deadlines; every 503 says when to retry.

#[tokio::test]
async fn statement_timeout_turns_a_lock_wait_into_503_with_retry_after() {
    // PostgreSQL only: statement_timeout and LOCK TABLE are PostgreSQL's.
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.statement_timeout_ms = 500;
        // Only the server-side limit is under test here.
        s.database.stall_check_after_ms = 0;
        s.server.request_timeout_secs = 60;
    })
    .await;
    let (token, _, _) = app.new_user("stmt").await;
    let task = app.create_task(&token, json!({"title": "locked"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    let lock = lock_tasks(&app).await;
    let reply = app.get(&path, Some(&token)).await;
    lock.rollback().await.expect("release");
    let problem = reply.problem(503);
    assert_eq!(
        problem["type"], "https://taskapi.dev/problems/service-unavailable",
        "{}",
        reply.text
    );
    assert!(
        reply.header("retry-after").is_some(),
        "503 without Retry-After"
    );
    // The pool connection that hit the timeout is still usable.
    assert_eq!(app.get(&path, Some(&token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_stalled_database_gives_503_with_retry_after_not_a_hang() {
    // One app straight to the database (to set up data), one through a proxy that freezes.
    // PostgreSQL only: the proxy sits on PostgreSQL's TCP connection.
    let app = spawn_app(Backend::Postgres).await;
    let direct = app.state.settings.database_url();
    let (_, upstream) = through(&direct, 0);
    let proxy = DbProxy::start(upstream).await;
    let (proxied, _) = through(&direct, proxy.port);
    let mut settings = test_settings(proxied);
    settings.database.stall_check_after_ms = 500;
    settings.server.request_timeout_secs = 60;
    settings.server.migrate_on_start = false;
    let stalled = Application::build(settings).await.expect("build");
    let address = format!("http://127.0.0.1:{}", stalled.port());
    tokio::spawn(stalled.run_until(std::future::pending()));

    let (token, _, _) = app.new_user("stall").await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(50))
        .build()
        .expect("client");
    let ok = client
        .get(format!("{address}/api/v1/tasks"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);

    proxy.freeze();
    let reply = TestApp::read(
        client
            .get(format!("{address}/api/v1/tasks"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("an answer, not a client timeout"),
    )
    .await;
    let problem = reply.problem(503);
    // Not the generic request timeout: the database deadline answered.
    assert_eq!(
        problem["type"], "https://taskapi.dev/problems/service-unavailable",
        "{}",
        reply.text
    );
    assert!(
        reply.header("retry-after").is_some(),
        "503 without Retry-After"
    );
}

// ---------------------------------------------------------------------------------------
// Items 14 and 13: probes are not traffic; counters exist before their first event.

#[tokio::test]
async fn probes_and_scrapes_are_neither_counted_nor_logged_at_info() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_app(Backend::Sqlite).await;
    let probe_id = format!("probe-{}", uuid::Uuid::new_v4().simple());
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let reply = app
            .client
            .get(app.url(path))
            .header("x-request-id", &probe_id)
            .send()
            .await
            .expect("send");
        assert_eq!(reply.status(), StatusCode::OK);
    }
    // A later ordinary request: once its line is in the log, the probes' would be too.
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
    app.client
        .get(app.url("/api/v1/tasks"))
        .header("x-request-id", &marker)
        .send()
        .await
        .expect("send");
    completed_line(&marker).await;
    assert!(
        !read_log_lines()
            .iter()
            .any(|l| l["request_id"] == probe_id.as_str()),
        "probe requests logged at info"
    );
    let metrics = app.get("/metrics", None).await.text;
    for route in ["/metrics", "/health/live", "/health/ready"] {
        assert_eq!(
            metric_value(&metrics, "http_requests_total", &[("route", route)]),
            None,
            "{route} counted as traffic"
        );
    }
}

/// The server binary in an empty directory with an empty environment.
fn taskapi(workdir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_taskapi"));
    command.env_clear().current_dir(workdir);
    command
}

fn scratch_dir(purpose: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "taskapi-{purpose}-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    TempDir(dir)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A server process of its own (its own metrics registry) on SQLite.
struct Process {
    child: std::process::Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_process() -> Process {
    let dir = scratch_dir("fresh");
    let port = free_port();
    let child = taskapi(&dir.0)
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.0.display()),
        )
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env("TASKAPI_SERVER__PORT", port.to_string())
        .env("TASKAPI_LOG__DIR", dir.0.join("logs"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn server");
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let client = reqwest::Client::new();
    while client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .map(|r| r.status() != StatusCode::OK)
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Process {
        child,
        base,
        _dir: dir,
    }
}

#[tokio::test]
async fn counter_families_are_exported_at_zero_before_their_first_event() {
    let server = start_process().await;
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    for (name, labels) in [
        (
            "http_requests_total",
            vec![
                ("method", "POST"),
                ("route", "/api/v1/tasks"),
                ("status", "503"),
            ],
        ),
        (
            "http_requests_total",
            vec![
                ("method", "GET"),
                ("route", "/api/v1/tasks/{id}"),
                ("status", "500"),
            ],
        ),
        (
            "http_requests_total",
            vec![
                ("method", "POST"),
                ("route", "/api/v1/auth/login"),
                ("status", "200"),
            ],
        ),
        ("auth_login_total", vec![("outcome", "failure")]),
        ("auth_login_total", vec![("outcome", "success")]),
        ("auth_login_total", vec![("outcome", "cancelled")]),
        ("rate_limit_refusals_total", vec![("limit", "login")]),
        ("rate_limit_fallbacks_total", vec![("limit", "auth_per_ip")]),
        ("redis_errors_total", vec![("op", "reserve")]),
        ("auth_revocations_received_total", vec![]),
        ("auth_refresh_total", vec![("outcome", "rejected")]),
        ("auth_registrations_total", vec![]),
        ("tasks_created_total", vec![]),
        ("tasks_updated_total", vec![]),
        ("tasks_deleted_total", vec![]),
    ] {
        assert_eq!(
            metric_value(&text, name, &labels),
            Some(0.0),
            "{name} {labels:?} not exported at 0"
        );
    }
    // Readiness probes and this scrape are not traffic: nothing is in flight.
    assert_eq!(
        metric_value(&text, "http_requests_in_flight", &[]),
        Some(0.0)
    );
}

// ---------------------------------------------------------------------------------------
// Item 15: shutdown behind a load balancer.

/// Reads one HTTP/1.1 response (head and Content-Length body) from a kept-alive stream.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return head;
            }
        }
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buffer))
            .await
            .expect("response in time")
            .expect("read");
        assert!(read > 0, "connection closed before a response");
        data.extend_from_slice(&buffer[..read]);
    }
}

#[tokio::test]
async fn shutdown_drains_then_refuses_connections_and_closes_keep_alive() {
    let dir = scratch_dir("drain");
    let mut settings = test_settings(format!("sqlite://{}/taskapi.db?mode=rwc", dir.0.display()));
    settings.server.shutdown_drain_delay_secs = 1;
    settings.server.shutdown_grace_secs = 15;
    let app = Application::build(settings).await.expect("build");
    let port = app.port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let email = crate::helpers::unique_email("drain");
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"name": "Drain", "email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("register");
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token").to_string();

    // A kept-alive connection, idle between requests.
    let mut idle = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let probe = b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n";
    idle.write_all(probe).await.expect("send");
    let head = read_response(&mut idle).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");

    // A request in flight (its body still arriving) keeps the server draining.
    let body = br#"{"title":"finished while draining"}"#;
    let mut in_flight = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request_head = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight
        .write_all(request_head.as_bytes())
        .await
        .expect("head");
    in_flight.write_all(&body[..10]).await.expect("first part");

    stop_tx.send(()).expect("trigger shutdown");

    // Draining: readiness fails at once, on a connection accepted during the delay.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let ready = loop {
        let reply = TestApp::read(
            client
                .get(format!("{base}/health/ready"))
                .send()
                .await
                .expect("accepted during the drain delay"),
        )
        .await;
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            break reply;
        }
        assert!(tokio::time::Instant::now() < deadline, "never draining");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(ready.body["status"], "draining");
    assert!(ready.header("retry-after").is_some());
    assert_eq!(ready.header("connection"), Some("close"));

    // The kept-alive connection is told to go away with its next response.
    idle.write_all(probe).await.expect("send");
    let head = read_response(&mut idle).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(PATIENCE, idle.read_to_end(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "connection not closed: {closed:?}"
    );

    // After the delay the listener is closed: connections are refused, not accepted and
    // reset, although the server is still running (a request is in flight).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpStream::connect(("127.0.0.1", port)).await {
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
            Err(err) => panic!("unexpected connect error: {err}"),
            Ok(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "listener still open while draining"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(!server.is_finished());

    // The in-flight request completes and closes its connection; then the server exits.
    in_flight
        .write_all(&body[10..])
        .await
        .expect("rest of body");
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, in_flight.read_to_string(&mut response))
        .await
        .expect("in time")
        .expect("read");
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(
        response.to_lowercase().contains("connection: close"),
        "{response}"
    );
    let result = tokio::time::timeout(PATIENCE, server)
        .await
        .expect("server stops")
        .expect("join");
    assert!(result.is_ok(), "{result:?}");
}

// ---------------------------------------------------------------------------------------
// Items 16 and 17: readiness is read-only and tolerates newer schemas; an unmigrated
// database is a 503, not a 500.

async fn migration_table_exists(app: &TestApp) -> bool {
    app.count(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'seaql_migrations'",
    )
    .await
        > 0
}

#[tokio::test]
async fn unmigrated_database_is_503_migrations_pending_and_readiness_writes_nothing() {
    // PostgreSQL only: it looks for the table in information_schema (operations.rs checks
    // the pending state on both databases).
    let app = spawn_app_with(Backend::Postgres, |s| s.server.migrate_on_start = false).await;
    let ready = app.get("/health/ready", None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.body["status"], "migrations pending");
    assert_eq!(ready.body["migrations"], "pending");
    assert!(ready.header("retry-after").is_some());
    assert!(
        !migration_table_exists(&app).await,
        "the readiness probe created the migration table"
    );

    let register = app
        .register(
            "Early",
            &crate::helpers::unique_email("early"),
            crate::helpers::PASSWORD,
        )
        .await;
    let problem = register.problem(503);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("migrations pending")),
        "{}",
        register.text
    );
    assert!(register.header("retry-after").is_some());
}

both_backends!(a_database_migrated_by_a_newer_version_keeps_this_version_ready);
async fn a_database_migrated_by_a_newer_version_keeps_this_version_ready(backend: Backend) {
    let app = spawn_app(backend).await;
    // The migrate Job of version N+1 ran an (expand-only) migration this binary lacks.
    app.state
        .db
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_add_future_column', 0)",
        )
        .await
        .expect("record a newer migration");
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["migrations"], "ahead");
    let (token, _, _) = app.new_user("rolling").await;
    assert_eq!(
        app.get("/api/v1/tasks", Some(&token)).await.status,
        StatusCode::OK
    );
}

#[test]
fn a_failed_start_is_logged_as_json_on_stdout_and_in_the_log_file() {
    let dir = scratch_dir("failed-start");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let log_dir: PathBuf = dir.0.join("logs");
    let output = taskapi(&dir.0)
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.0.display()),
        )
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env("TASKAPI_SERVER__PORT", port.to_string())
        .env("TASKAPI_LOG__DIR", &log_dir)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let failure = |text: &str| {
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["msg"] == "start-up failed")
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = failure(&stdout).unwrap_or_else(|| panic!("no JSON failure line in {stdout}"));
    assert_eq!(line["level"], 50);
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains(&port.to_string())),
        "{line}"
    );
    let file = std::fs::read_dir(&log_dir)
        .expect("log dir")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(failure(&file).is_some(), "not in the log file: {file}");

    // A configuration error happens before logging is set up; it still leaves JSON.
    let output = taskapi(&dir.0)
        .arg("serve")
        .env("JWT_SECRET_KEY", "too-short")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(failure(&String::from_utf8_lossy(&output.stdout)).is_some());
    drop(taken);
}
