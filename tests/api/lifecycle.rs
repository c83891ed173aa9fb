//! Start, readiness and shutdown: draining behind a load balancer, read-only readiness
//! that tolerates a newer schema, an unmigrated database, and failed starts.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use taskapi::startup::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{
    Backend, PATIENCE, TestApp, both_backends, scratch_dir, spawn_app, spawn_app_with, taskapi,
    test_settings,
};

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
    let token = crate::helpers::token_at(&base).await;

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

/// What the migrate Job of version N+1 leaves: an (expand-only) migration this binary lacks.
async fn record_a_newer_migration(app: &TestApp) {
    app.state
        .db
        .execute_unprepared(
            "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_add_future_column', 0)",
        )
        .await
        .expect("record a newer migration");
}

both_backends!(a_database_migrated_by_a_newer_version_keeps_this_version_ready);
async fn a_database_migrated_by_a_newer_version_keeps_this_version_ready(backend: Backend) {
    let app = spawn_app(backend).await;
    record_a_newer_migration(&app).await;
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

both_backends!(a_database_migrated_by_a_newer_version_lets_this_version_start_again);
/// A pod of version N that restarts during a rolling deploy (or a rollback to N) starts
/// against a database that N+1 migrated. Found by the A/B bench, which runs the older
/// binary after the newer one migrated: the migrator refused ("migration file ... is
/// missing") and start-up failed, so every restarting old pod would crash-loop.
async fn a_database_migrated_by_a_newer_version_lets_this_version_start_again(backend: Backend) {
    let app = spawn_app(backend).await;
    record_a_newer_migration(&app).await;
    // What `serve` (migrate on start) and `taskapi migrate up` run.
    taskapi::db::migrate(&app.state.db)
        .await
        .expect("nothing of this binary's is pending: start as usual");
    // One of this binary's migrations missing as well: the two versions disagree on the
    // schema, and that stays an error that names both.
    app.state
        .db
        .execute_unprepared(
            "DELETE FROM seaql_migrations WHERE version = 'm20261125_000002_create_refresh_tokens'",
        )
        .await
        .expect("forget one of ours");
    let refused = taskapi::db::migrate(&app.state.db)
        .await
        .expect_err("pending and unknown migrations at once");
    assert!(
        refused
            .to_string()
            .contains("1 migration(s) this binary does not know")
            && refused.to_string().contains("1 of its own"),
        "{refused}"
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

/// Found by the operations review (#27, item 8): replicas started together on a fresh
/// database each ran the migrations, and all but one crashed on a duplicate key. Five
/// processes' worth of start-ups on one empty database now all come up.
#[tokio::test]
async fn replicas_started_together_on_a_fresh_database_all_come_up() {
    let app = spawn_app(Backend::Postgres).await;
    // Empty the test's database again: no tables, no migrations table, no extension.
    app.state
        .db
        .execute_unprepared("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .await
        .expect("empty the database");
    let starts = (0..5).map(|_| {
        let mut settings = (*app.state.settings).clone();
        settings.server.port = 0;
        settings.server.migrate_on_start = true;
        Application::build(settings)
    });
    for (n, started) in futures::future::join_all(starts)
        .await
        .into_iter()
        .enumerate()
    {
        if let Err(err) = started {
            panic!("replica {n} failed to start: {err:#}");
        }
    }
    let pending = taskapi::db::migration_state(&app.state.db)
        .await
        .expect("migration state");
    assert!(pending.is_ready(), "{pending:?}");
}
