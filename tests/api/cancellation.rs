//! Clients that hang up mid-request: whatever the server decided to do is done whole, and
//! no pooled connection is left inside a transaction for the next request to run in.
//!
//! The connections are reset (RST) at varying delays after the request was sent, as a
//! client that crashes, or a proxy that passes aborts on, does.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::events::Stream;
use crate::helpers::{
    Backend, DbProxy, OwnProcess, TestApp, both_backends, eventually, in_a_test_process_of_its_own,
    metric_value, raw_request, send_then_reset, spawn_app, spawn_app_with, through,
};

/// Resets per storm, at delays stepping through 0..6 ms.
const RESETS: u32 = 400;
/// Resets in flight at once.
const AT_ONCE: usize = 8;
/// Upper bound for anything these tests wait for; reaching it is a failure.
const WAIT: Duration = Duration::from_secs(10);
/// Added to every reply PostgreSQL sends the attacked replica.
const DB_LATENCY: Duration = Duration::from_millis(2);

/// Connections of this test's database idle inside a transaction for over 250 ms. Called
/// when no request is in flight: none should be. (A transaction still running on a loaded
/// machine can sit between two statements for tens of milliseconds; 50 ms once counted
/// one in a full CI run beside a release build. A connection given back inside its
/// transaction stays idle until it is used again, so it is counted all the same.)
async fn idle_in_transaction(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Database, Statement};
    let admin = app.pg_admin_url.as_deref().expect("PostgreSQL test");
    let conn = Database::connect(admin).await.expect("admin connection");
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 \
             AND state LIKE 'idle in transaction%' AND state_change < now() - interval '250 milliseconds'",
            [app.db_name.clone().into()],
        ))
        .await
        .expect("pg_stat_activity")
        .expect("a row");
    conn.close().await.ok();
    row.try_get::<i64>("", "n").expect("count")
}

both_backends!(a_reset_storm_leaves_no_connection_inside_a_transaction);
/// The attack that found it: unauthenticated refreshes with a garbage token (each opens a
/// write transaction), reset at delays stepping through the time the server takes to
/// answer. Then every write the attacked replica acknowledges must be visible from
/// another replica, and PostgreSQL must show no connection of the pool idle in a
/// transaction.
///
/// On PostgreSQL the attacked replica reaches the database through a proxy that adds
/// [`DB_LATENCY`] to each reply (a database in another zone), so that the `BEGIN` round
/// trip is wide enough for resets to land inside it on every run, not once in hundreds.
async fn a_reset_storm_leaves_no_connection_inside_a_transaction(backend: Backend) {
    let app = spawn_app(backend).await;
    let _proxy;
    // The attacked replica is a server process of its own, so that the discard counter read
    // at the end is its pool's alone (the metrics registry is global to a process).
    let attacked = match backend {
        Backend::Postgres => {
            let direct = app.state.settings.database_url();
            let (_, upstream) = through(&direct, 0);
            let proxy = DbProxy::start(upstream).await;
            proxy.delay_replies(DB_LATENCY);
            let (proxied, _) = through(&direct, proxy.port);
            _proxy = proxy;
            OwnProcess::on_database(proxied).env("TASKAPI_SERVER__MIGRATE_ON_START", false)
        }
        Backend::Sqlite => OwnProcess::on_database(app.state.settings.database_url()),
    };
    // Few connections, so that a poisoned one is soon handed to someone else.
    let attacked = attacked
        .env("TASKAPI_DATABASE__MAX_CONNECTIONS", 3)
        .start()
        .await;
    let (token, _, _) = app.new_user("storm").await;
    let refresh = raw_request(
        "POST",
        "/api/v1/auth/refresh",
        None,
        r#"{"refresh_token":"not-a-token-not-a-token-not-a-token"}"#,
    );
    let step = Duration::from_micros(150);
    let delays: Vec<Duration> = (0..RESETS).map(|i| step * (i % 40)).collect();
    // A poisoned connection is soon cleaned by the next refresh that runs on it to the end
    // (its rollback ends the stray transaction too), so it is looked for after every wave.
    let mut poisoned = 0;
    for wave in delays.chunks(AT_ONCE) {
        let resets = wave
            .iter()
            .map(|after| send_then_reset(&attacked.address, &refresh, *after));
        futures::future::join_all(resets).await;
        if backend == Backend::Postgres {
            // Longer than any refresh takes here (a few round trips of DB_LATENCY), and than
            // the idle time `idle_in_transaction` counts from.
            tokio::time::sleep(Duration::from_millis(400)).await;
            poisoned += idle_in_transaction(&app).await;
        }
    }
    assert_eq!(
        poisoned, 0,
        "a pooled connection was left inside a transaction"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..20 {
        let task = attacked
            .create_task(&token, json!({"title": format!("after the storm {n}")}))
            .await;
        let id = task["id"].as_str().expect("id");
        let seen = app.get(&format!("/api/v1/tasks/{id}"), Some(&token)).await;
        assert_eq!(
            seen.status,
            StatusCode::OK,
            "an acknowledged write is not visible from another replica: {}",
            seen.text
        );
    }
    let discarded = attacked.metric("db_connections_discarded_total", &[]).await;
    // Exported, and this replica's own. Not asserted to be 0: the storm does leave
    // connections inside a transaction for the pool's guard to close (dozens per run on
    // SQLite), which is what the guard is for.
    assert!(
        discarded.is_some(),
        "the pool's discard counter is exported"
    );
}

both_backends!(the_pool_closes_a_connection_returned_inside_a_transaction);
/// The pool's own guard, on its own: a connection given back while its transaction is
/// open (here a transaction leaked on purpose, so nothing queues its rollback) is closed,
/// which ends the transaction on the server, and counted; it is never handed out again.
async fn the_pool_closes_a_connection_returned_inside_a_transaction(backend: Backend) {
    use sea_orm::sqlx::Connection;
    // The leak goes through the pool of an app in the test process (no request can make a
    // server do that), so this cannot use a server process of its own; and in the shared
    // test process other tests' pools (hang-ups, timeouts) move the same series, which has
    // no label to tell one pool from another. So the test runs in a test process of its own.
    let name = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    if !in_a_test_process_of_its_own(&format!(
        "cancellation::the_pool_closes_a_connection_returned_inside_a_transaction::{name}"
    )) {
        return;
    }
    let app = spawn_app(backend).await;
    let discarded = || async {
        taskapi_metric(
            &app,
            "db_connections_discarded_total",
            &[("reason", "in_transaction")],
        )
        .await
    };
    let before = discarded().await.expect("the discard counter is exported");
    assert_eq!(before, 0.0, "nothing was discarded before the leak");
    match backend {
        Backend::Postgres => {
            let pool = app.state.db.get_postgres_connection_pool();
            let mut conn = pool.acquire().await.expect("acquire");
            std::mem::forget(conn.begin().await.expect("begin"));
            drop(conn);
        }
        Backend::Sqlite => {
            let pool = app.state.db.get_sqlite_connection_pool();
            let mut conn = pool.acquire().await.expect("acquire");
            std::mem::forget(conn.begin().await.expect("begin"));
            drop(conn);
        }
    }
    let mut after = Some(before);
    eventually(
        WAIT,
        "the leaked transaction's connection was discarded",
        async || {
            after = discarded().await;
            after != Some(before)
        },
    )
    .await;
    assert_eq!(
        after,
        Some(before + 1.0),
        "exactly the leaked connection was discarded"
    );
    if backend == Backend::Postgres {
        eventually(WAIT, "the server ended the transaction", async || {
            idle_in_transaction(&app).await == 0
        })
        .await;
    }
    // The pool still serves: writes go through and commit.
    let (token, _, _) = app.new_user("after-leak").await;
    let task = app
        .create_task(&token, json!({"title": "after a leak"}))
        .await;
    assert_eq!(task["title"], "after a leak");
}

/// The value of `name` (with `labels`) on `app`'s /metrics, if it is there.
async fn taskapi_metric(app: &TestApp, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metric_value(&app.get("/metrics", None).await.text, name, labels)
}

both_backends!(logout_all_cut_short_by_a_reset_is_all_or_nothing);
/// Logout-all reset at varying points: afterwards the access token and the refresh token
/// are either both revoked or both still valid, and when revoked, a change-feed stream of
/// the access token ends (the announcement is part of the same unit of work).
async fn logout_all_cut_short_by_a_reset_is_all_or_nothing(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    let (_, _, email) = app.new_user("hangup").await;
    let mut revoked = 0;
    for attempt in 0..30u64 {
        let login = app.login(&email, crate::helpers::PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text);
        let access = login.body["access_token"]
            .as_str()
            .expect("access")
            .to_string();
        let refresh = login.body["refresh_token"]
            .as_str()
            .expect("refresh")
            .to_string();
        let stream = Stream::open(&app, &access, None).await;
        let request = raw_request("POST", "/api/v1/auth/logout-all", Some(&access), "");
        send_then_reset(&app.address, &request, Duration::from_micros(attempt * 100)).await;

        // Whatever the server decided is done within a moment; wait for it.
        let mut access_revoked = false;
        let settle = tokio::time::Instant::now() + Duration::from_millis(1000);
        while tokio::time::Instant::now() < settle {
            if app.get("/api/v1/auth/me", Some(&access)).await.status == StatusCode::UNAUTHORIZED {
                access_revoked = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let refreshed = app.refresh(&refresh).await.status;
        let access_now = app.get("/api/v1/auth/me", Some(&access)).await.status;
        let refresh_revoked = refreshed == StatusCode::UNAUTHORIZED;
        assert_eq!(
            refresh_revoked, access_revoked,
            "attempt {attempt}: access revoked {access_revoked}, refresh revoked {refresh_revoked}"
        );
        assert_eq!(
            access_now == StatusCode::UNAUTHORIZED,
            refresh_revoked,
            "attempt {attempt}: half-applied revocation"
        );
        if access_revoked {
            revoked += 1;
            let events = tokio::time::timeout(Duration::from_secs(5), stream.until_closed())
                .await
                .expect("the revoked token's stream ends");
            let end = events.last().expect("an end event");
            assert_eq!(end.name(), "end");
            assert_eq!(end.json()["reason"], "revoked", "attempt {attempt}");
        }
    }
    // The resets are not all too early: some of the logouts were taken.
    assert!(revoked > 0, "no logout-all got through at any delay");
}

both_backends!(a_write_past_the_request_timeout_still_completes);
/// The request timeout stops the wait, not the work: a write that is still running when
/// the timeout answers 503 commits whole, and its change reaches the change feed.
async fn a_write_past_the_request_timeout_still_completes(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.server.request_timeout_secs = 1;
    })
    .await;
    let (token, user_id, _) = app.new_user("slow").await;
    let mut stream = Stream::open(&app, &token, None).await;
    let created = match backend {
        Backend::Postgres => {
            // The owner's writes wait behind this lock for longer than the timeout.
            let blocker = app.hold_feed_lock(&user_id).await;
            let reply = app
                .post("/api/v1/tasks", Some(&token), json!({"title": "late"}))
                .await;
            reply.problem(503);
            drop(blocker);
            None
        }
        // SQLite writes do not wait on a lock here; the plain path must still work.
        Backend::Sqlite => Some(app.create_task(&token, json!({"title": "late"})).await),
    };
    let event = stream.next_event().await;
    assert_eq!(event.name(), "task.created");
    assert_eq!(event.json()["task"]["title"], "late");
    if created.is_none() {
        eventually(
            Duration::from_secs(5),
            "the late task is stored",
            async || app.get("/api/v1/tasks", Some(&token)).await.body["total"] == 1,
        )
        .await;
    }
    let listed = app
        .request(Method::GET, "/api/v1/tasks", Some(&token), None)
        .await;
    assert_eq!(listed.body["items"][0]["title"], "late");
}

/// An idempotent create whose client hangs up while it waits in the database still
/// commits whole: the task, its stored response (a retry replays it) and its change-feed
/// event, which reaches an open stream. The idempotent create used to wake the feed in the
/// request's own future, outside the store's post-commit step.
#[tokio::test]
async fn an_idempotent_create_cut_short_still_reaches_the_change_feed() {
    use tokio::io::AsyncWriteExt;
    // PostgreSQL only: the create is held on a table lock.
    let app = spawn_app(Backend::Postgres).await;
    let (token, _, _) = app.new_user("idem-hangup").await;
    let mut stream = Stream::open(&app, &token, None).await;
    let lock = app.hold_tasks_table().await;
    let body = r#"{"title":"created while nobody waited"}"#;
    let request = format!(
        "POST /api/v1/tasks HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nauthorization: Bearer {token}\r\nidempotency-key: hang-up-1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let host = app.address.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(host).await.expect("connect");
    conn.write_all(request.as_bytes()).await.expect("request");
    let waiting = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        app.db_name
    );
    eventually(WAIT, "the create waits on the lock", async || {
        app.count(&waiting).await > 0
    })
    .await;
    // The client crashes while its create waits.
    conn.set_zero_linger().expect("linger");
    drop(conn);
    tokio::time::sleep(Duration::from_millis(100)).await;
    lock.rollback().await.expect("release");

    let event = tokio::time::timeout(WAIT, stream.next_event())
        .await
        .expect("the create's event reaches the stream");
    assert_eq!(event.name(), "task.created");
    assert_eq!(event.json()["task"]["title"], "created while nobody waited");
    // The stored response is there: a retry replays the very task the stream announced.
    let retry =
        crate::idempotency::post_keyed(&app, "/api/v1/tasks", Some(&token), "hang-up-1", body)
            .await;
    assert_eq!(retry.status, StatusCode::CREATED, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.body["id"], event.json()["task"]["id"]);
}

/// Comment, membership and label writes whose client hangs up (a reset) while they wait
/// for the members' feed locks still commit whole, with their events (each runs to its end
/// in a task of its own, `run_to_completion`). This proves the outcome, not the
/// cancellation: with `run_to_completion` taken out of the comment route it passes too, as
/// the server did not drop the waiting request's future on this reset.
#[tokio::test]
async fn team_writes_cut_short_by_a_hang_up_still_complete() {
    let app = spawn_app(Backend::Postgres).await;
    let (admin_token, admin_id, _) = app.new_user("admin").await;
    let (_, _, member_email) = app.new_user("member").await;
    let project = app
        .post(
            "/api/v1/projects",
            Some(&admin_token),
            json!({"name": "Team"}),
        )
        .await;
    let project = project.body["id"].as_str().expect("project id").to_string();
    let task = app
        .create_task(
            &admin_token,
            json!({"title": "talked about", "project_id": project}),
        )
        .await;
    let task = task["id"].as_str().expect("task id").to_string();
    let label = app
        .post(
            &format!("/api/v1/projects/{project}/labels"),
            Some(&admin_token),
            json!({"name": "Bug"}),
        )
        .await;
    let label = label.body["id"].as_str().expect("label id").to_string();
    // A stream opened without `Last-Event-ID` starts from now.
    let mut stream = Stream::open(&app, &admin_token, None).await;
    let writes = [
        (
            "POST",
            format!("/api/v1/tasks/{task}/comments"),
            json!({"body": "late"}).to_string(),
            "comment.created",
        ),
        (
            "POST",
            format!("/api/v1/projects/{project}/members"),
            json!({"email": member_email, "role": "viewer"}).to_string(),
            "member.added",
        ),
        (
            "DELETE",
            format!("/api/v1/projects/{project}/labels/{label}"),
            String::new(),
            "label.deleted",
        ),
    ];
    for (method, path, body, heard) in writes {
        // The write waits behind the admin's feed lock while its client hangs up.
        let blocker = app.hold_feed_lock(&admin_id).await;
        let request = raw_request(method, &path, Some(&admin_token), &body);
        send_then_reset(&app.address, &request, Duration::from_millis(300)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        blocker.rollback().await.expect("release the feed lock");
        let event = tokio::time::timeout(WAIT, stream.next_event())
            .await
            .unwrap_or_else(|_| panic!("{path}: no {heard} event"));
        assert_eq!(event.name(), heard, "{path}");
    }
    let task = app
        .get(&format!("/api/v1/tasks/{task}"), Some(&admin_token))
        .await;
    assert_eq!(task.body["comment_count"], 1);
    let members = app
        .get(
            &format!("/api/v1/projects/{project}/members"),
            Some(&admin_token),
        )
        .await;
    assert_eq!(members.body["items"].as_array().map(Vec::len), Some(2));
    let labels = app
        .get(
            &format!("/api/v1/projects/{project}/labels"),
            Some(&admin_token),
        )
        .await;
    assert_eq!(labels.body["items"], json!([]));
}
