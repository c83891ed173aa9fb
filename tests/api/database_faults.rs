//! A database that is slow, locked or stalled: a client that gives up is counted (499),
//! lock waits and stalls end in 503 with Retry-After, never in a hang.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use serde_json::json;
use taskapi::startup::Application;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::helpers::{
    Backend, DbProxy, OwnProcess, PATIENCE, TestApp, eventually, spawn_app, spawn_app_with,
    spawn_metrics_app, task_path, test_settings, through,
};

// ---------------------------------------------------------------------------------------
// Item 11: a client that goes away mid-request is accounted for.

/// Holds an exclusive lock on `table` of the database at `url`, from a connection of its
/// own, until rolled back.
async fn lock_table(url: &str, table: &str) -> sea_orm::DatabaseTransaction {
    let db = Database::connect(url).await.expect("second connection");
    let txn = db.begin().await.expect("begin");
    txn.execute_unprepared(&format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .await
        .expect("lock");
    txn
}

async fn lock_tasks(app: &TestApp) -> sea_orm::DatabaseTransaction {
    lock_table(&app.state.settings.database_url(), "tasks").await
}

/// Waits until the value of `name` (with `labels`) on `server`'s /metrics is no longer
/// `before`, and returns it.
async fn changed_metric(
    server: &OwnProcess,
    name: &str,
    labels: &[(&str, &str)],
    before: Option<f64>,
) -> Option<f64> {
    let mut now = before;
    eventually(
        PATIENCE,
        &format!("{name} {labels:?} changes"),
        async || {
            now = server.metric(name, labels).await;
            now != before
        },
    )
    .await;
    now
}

/// Waits until some session of `server`'s database waits for a lock.
async fn wait_for_lock_waiter(server: &OwnProcess, observer: &sea_orm::DatabaseConnection) {
    use sea_orm::{DatabaseBackend, Statement};
    let sql = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
        [server.db_name.clone().into()],
    );
    eventually(PATIENCE, "the request reaches the lock", async || {
        let row = observer
            .query_one_raw(sql.clone())
            .await
            .expect("pg_stat_activity")
            .expect("a row");
        row.try_get::<i64>("", "n").expect("count") > 0
    })
    .await;
}

#[tokio::test]
async fn cancelled_requests_are_counted_as_499_and_leave_the_in_flight_gauge() {
    // PostgreSQL only: the request is held on a table lock (LOCK TABLE, pg_stat_activity).
    // A server process of its own: its metrics count this test's requests and nothing else.
    let server = spawn_metrics_app(Backend::Postgres).await;
    let observer = Database::connect(&server.database_url)
        .await
        .expect("observer connection");
    let (token, _, _) = server.new_user("cancel").await;
    let task = server.create_task(&token, json!({"title": "locked"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let labels = [
        ("method", "GET"),
        ("route", "/api/v1/tasks/{id}"),
        ("status", "499"),
    ];
    let before = server.metric("http_requests_total", &labels).await;
    assert_eq!(before, Some(0.0), "the 499 series exists from the start");

    let lock = lock_table(&server.database_url, "tasks").await;
    let mut stream = TcpStream::connect(server.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nx-request-id: cancel-me\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    wait_for_lock_waiter(&server, &observer).await;
    assert_eq!(
        server.metric("http_requests_in_flight", &[]).await,
        Some(1.0),
        "the held request is in flight"
    );
    // The client gives up while the handler waits for the database.
    drop(stream);

    assert_eq!(
        changed_metric(&server, "http_requests_total", &labels, before).await,
        Some(1.0),
        "the abandoned request is counted once, as 499"
    );
    assert_eq!(
        server.metric("http_requests_in_flight", &[]).await,
        Some(0.0),
        "the abandoned request left the in-flight gauge"
    );
    lock.rollback().await.expect("release");
    eventually(
        PATIENCE,
        "a log line for the cancelled request",
        async || {
            server
                .log_lines()
                .iter()
                .any(|l| l["request_id"] == "cancel-me" && l["status"] == 499)
        },
    )
    .await;

    // A login abandoned during the credential check runs to its end (a login may write:
    // lockout counters, a rehash), so its outcome is the real one, not "cancelled".
    let failure = [("outcome", "failure")];
    let cancelled = [("outcome", "cancelled")];
    let failures = server.metric("auth_login_total", &failure).await;
    assert_eq!(failures, Some(0.0));
    assert_eq!(
        server.metric("auth_login_total", &cancelled).await,
        Some(0.0)
    );
    let lock = lock_table(&server.database_url, "users").await;
    let mut stream = TcpStream::connect(server.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    let body = json!({"email": "someone@example.com", "password": "whatever password"}).to_string();
    let request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    wait_for_lock_waiter(&server, &observer).await;
    drop(stream);
    lock.rollback().await.expect("release");
    assert_eq!(
        changed_metric(&server, "auth_login_total", &failure, failures).await,
        Some(1.0),
        "the abandoned login is counted once, with its real outcome"
    );
    assert_eq!(
        server.metric("auth_login_total", &cancelled).await,
        Some(0.0),
        "the abandoned login was cut short"
    );
    observer.close().await.ok();
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
    let path = task_path(task["id"].as_str().expect("id"));
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
