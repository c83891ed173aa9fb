//! The change feed, `GET /api/v1/tasks/events`: a stream of the caller's own task
//! changes (Server-Sent Events), replay after a reconnect, `reset` past what is kept, the
//! ends (token expiry, revocation, shutdown), the per-user cap, heartbeats, and delivery
//! from one replica to a stream on another through Redis.
//!
//! Every read has a deadline, so a missing event fails the test instead of hanging it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use taskapi::config::Settings;
use taskapi::models::events::{Retention, prune};
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, both_backends, spawn_app, spawn_app_with, task_path, use_redis,
};

/// Long enough for any event on a loaded CI machine, short enough to fail fast.
const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct Event {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    retry: Option<String>,
    comments: Vec<String>,
}

impl Event {
    pub(crate) fn name(&self) -> &str {
        self.event.as_deref().unwrap_or("")
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(self.data.as_deref().unwrap_or("null")).expect("data is JSON")
    }

    fn id(&self) -> i64 {
        self.id
            .as_deref()
            .and_then(|id| id.parse().ok())
            .expect("numeric id")
    }
}

/// An open stream and what has arrived of it but not been parsed yet.
pub(crate) struct Stream {
    response: reqwest::Response,
    buffer: String,
}

impl Stream {
    pub(crate) async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Stream {
        Self::opened(Self::try_open(app, token, last_event_id).await).await
    }

    /// A stream of `path` (the feed with a query, such as `?project_id=`).
    pub(crate) async fn open_at(app: &TestApp, path: &str, token: &str) -> Stream {
        Self::opened(Self::connect(&app.client, &app.address, path, token, None).await).await
    }

    async fn opened(connected: Result<Stream, StatusCode>) -> Stream {
        let mut stream = connected.unwrap_or_else(|status| panic!("stream refused: {status}"));
        // The opening chunk: once it is here, the stream is positioned and subscribed.
        let opening = stream.next_block().await.expect("opening chunk");
        assert!(opening.retry.is_some(), "a retry hint opens the stream");
        stream
    }

    pub(crate) async fn try_open(
        app: &TestApp,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<Stream, StatusCode> {
        Self::connect(
            &app.client,
            &app.address,
            "/api/v1/tasks/events",
            token,
            last_event_id,
        )
        .await
    }

    async fn connect(
        client: &reqwest::Client,
        address: &str,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
    ) -> Result<Stream, StatusCode> {
        let mut request = client.get(format!("{address}{path}")).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = tokio::time::timeout(WAIT, request.send())
            .await
            .expect("response headers in time")
            .expect("request sent");
        if response.status() != StatusCode::OK {
            return Err(response.status());
        }
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Ok(Stream {
            response,
            buffer: String::new(),
        })
    }

    /// The next block (up to a blank line), or `None` when the stream ended.
    async fn next_block(&mut self) -> Option<Event> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        event.comments.push(comment.trim().to_string());
                    } else if let Some((field, value)) = line.split_once(':') {
                        // As EventSource reads it: one space after the colon is optional.
                        let value = Some(value.strip_prefix(' ').unwrap_or(value).to_string());
                        match field {
                            "id" => event.id = value,
                            "event" => event.event = value,
                            "data" => event.data = value,
                            "retry" => event.retry = value,
                            other => panic!("unexpected field {other}"),
                        }
                    }
                }
                return Some(event);
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("the stream went quiet: no chunk in time")
                .expect("stream readable")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// The next event that is not only comments (heartbeats).
    pub(crate) async fn next_event(&mut self) -> Event {
        loop {
            let block = self.next_block().await.expect("stream still open");
            if block.event.is_some() || block.data.is_some() {
                return block;
            }
        }
    }

    /// Reads until the stream closes; returns the events (not comments) seen on the way.
    pub(crate) async fn until_closed(mut self) -> Vec<Event> {
        let mut seen = Vec::new();
        while let Some(block) = self.next_block().await {
            if block.event.is_some() {
                seen.push(block);
            }
        }
        seen
    }
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) {
    let reply = app
        .patch(&format!("/api/v1/tasks/{id}"), Some(token), body)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

async fn delete(app: &TestApp, token: &str, id: &str) {
    let reply = app
        .request(
            Method::DELETE,
            &format!("/api/v1/tasks/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
}

fn task_id(task: &Value) -> String {
    task["id"].as_str().expect("task id").to_string()
}

both_backends!(own_changes_arrive_in_order_and_no_one_elses);
async fn own_changes_arrive_in_order_and_no_one_elses(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let mut stream = Stream::open(&app, &alice, None).await;
    let bobs = app.create_task(&bob, json!({"title": "Bob's"})).await;
    let task = app.create_task(&alice, json!({"title": "Alice's"})).await;
    let id = task_id(&task);
    patch(&app, &alice, &id, json!({"status": "done"})).await;
    delete(&app, &alice, &id).await;

    let created = stream.next_event().await;
    assert_eq!(created.name(), "task.created");
    let data = created.json();
    assert_eq!(data["task_id"], id.as_str());
    assert_eq!(data["version"], 1);
    assert_eq!(data["task"]["title"], "Alice's");
    assert_eq!(data["task"]["id"], id.as_str());
    let updated = stream.next_event().await;
    assert_eq!(updated.name(), "task.updated");
    assert_eq!(updated.json()["version"], 2);
    assert_eq!(updated.json()["task"]["status"], "done");
    let deleted = stream.next_event().await;
    assert_eq!(deleted.name(), "task.deleted");
    assert_eq!(deleted.json()["task_id"], id.as_str());
    assert_eq!(deleted.json()["version"], 2);
    assert_eq!(deleted.json()["task"], Value::Null);
    assert!(created.id() < updated.id() && updated.id() < deleted.id());

    // Bob's change never reached Alice: one more change of hers is the very next event.
    patch(
        &app,
        &bob,
        &task_id(&bobs),
        json!({"title": "Bob's, edited"}),
    )
    .await;
    let next = app.create_task(&alice, json!({"title": "Second"})).await;
    let event = stream.next_event().await;
    assert_eq!(event.json()["task_id"], task_id(&next).as_str());
    // And the log holds exactly what happened: four events of Alice's, two of Bob's.
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM task_events").await, 6);
}

both_backends!(a_failed_change_writes_no_event);
async fn a_failed_change_writes_no_event(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("stale").await;
    let task = app.create_task(&token, json!({"title": "Guarded"})).await;
    let url = task_path(task_id(&task));
    let refused = app
        .client
        .patch(app.url(&url))
        .bearer_auth(&token)
        .header("if-match", "\"7\"")
        .json(&json!({"title": "Lost update"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(refused.status(), StatusCode::PRECONDITION_FAILED);
    let missing = app
        .request(
            Method::DELETE,
            &task_path(Uuid::now_v7()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM task_events").await, 1);
}

both_backends!(concurrent_writes_reach_the_feed_in_commit_order_with_their_snapshots);
/// Many writes of one user at once (on PostgreSQL each is one statement that takes the
/// user's lock, changes the task and copies it into the log): the log's ids follow commit
/// order, so every task's versions arrive in increasing order, and each event shows the
/// task exactly as the API does, down to the last version.
async fn concurrent_writes_reach_the_feed_in_commit_order_with_their_snapshots(backend: Backend) {
    const TASKS: usize = 16;
    const PATCHES_PER_TASK: usize = 3;
    const PRIORITIES: [&str; 2] = ["low", "high"];
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("racer").await;
    let mut ids = Vec::new();
    for n in 0..TASKS {
        ids.push(task_id(
            &app.create_task(&token, json!({"title": format!("Raced {n}")}))
                .await,
        ));
    }
    let mut stream = Stream::open(&app, &token, None).await;
    let edits: Vec<(&String, usize)> = ids
        .iter()
        .flat_map(|id| (0..PATCHES_PER_TASK).map(move |k| (id, k)))
        .collect();
    let writes = edits.iter().map(|&(id, k)| {
        let body = json!({"title": format!("{id} edit {k}"), "priority": PRIORITIES[k % 2]});
        patch(&app, &token, id, body)
    });
    futures::future::join_all(writes).await;

    let mut last_id = 0;
    let mut last_event = std::collections::HashMap::new();
    for _ in 0..TASKS * PATCHES_PER_TASK {
        let event = stream.next_event().await;
        assert_eq!(event.name(), "task.updated");
        assert!(event.id() > last_id, "event ids increase");
        last_id = event.id();
        let data = event.json();
        let task = data["task_id"].as_str().expect("task id").to_string();
        let version = data["version"].as_i64().expect("version");
        assert_eq!(data["task"]["version"], version);
        let previous = last_event
            .get(&task)
            .map_or(1, |seen: &Value| seen["version"].as_i64().expect("version"));
        assert_eq!(
            version,
            previous + 1,
            "task {task}: versions in commit order"
        );
        last_event.insert(task, data);
    }
    for id in &ids {
        let current = app
            .request(
                Method::GET,
                &format!("/api/v1/tasks/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(current.status, StatusCode::OK);
        assert_eq!(
            last_event[id]["task"], current.body,
            "the event shows the task as GET does"
        );
        assert_eq!(current.body["version"], 1 + PATCHES_PER_TASK as i64);
    }
}

/// Regression (outside attack on #14): on PostgreSQL a task write is one statement, which
/// commits even when the client hangs up while it runs. The owner's streams must still hear
/// of it; the wake-up used to be part of the request's future, dropped with the client.
#[tokio::test]
async fn a_write_whose_client_hung_up_still_reaches_the_streams() {
    let app = spawn_app(Backend::Postgres).await;
    let (token, owner, _) = app.new_user("quitter").await;
    let task = app.create_task(&token, json!({"title": "Abandoned"})).await;
    let mut stream = Stream::open(&app, &token, None).await;
    // Another session holds the owner's feed lock, so the write waits inside the database
    // until this transaction ends.
    let blocker = app.hold_feed_lock(&owner).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let gave_up = impatient
        .patch(app.url(&task_path(task_id(&task))))
        .bearer_auth(&token)
        .json(&json!({"title": "Changed after all"}))
        .send()
        .await;
    assert!(gave_up.is_err_and(|err| err.is_timeout()));
    blocker.commit().await.expect("release the lock");

    let event = stream.next_event().await;
    assert_eq!(event.name(), "task.updated");
    assert_eq!(event.json()["task"]["title"], "Changed after all");
}

both_backends!(a_reconnect_replays_what_was_missed);
async fn a_reconnect_replays_what_was_missed(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("replay").await;
    let mut stream = Stream::open(&app, &token, None).await;
    app.create_task(&token, json!({"title": "Seen"})).await;
    let seen = stream.next_event().await;
    drop(stream);
    let mut missed = Vec::new();
    for title in ["Missed 1", "Missed 2", "Missed 3"] {
        missed.push(task_id(
            &app.create_task(&token, json!({"title": title})).await,
        ));
    }
    let last = seen.id().to_string();
    let mut stream = Stream::open(&app, &token, Some(&last)).await;
    let mut previous = seen.id();
    for expected in &missed {
        let event = stream.next_event().await;
        assert_eq!(event.name(), "task.created");
        assert_eq!(event.json()["task_id"], expected.as_str());
        assert!(event.id() > previous, "ids increase");
        previous = event.id();
    }
    // Then live again.
    let live = app.create_task(&token, json!({"title": "Live"})).await;
    assert_eq!(
        stream.next_event().await.json()["task_id"],
        task_id(&live).as_str()
    );
}

both_backends!(a_gap_older_than_the_log_gets_reset);
async fn a_gap_older_than_the_log_gets_reset(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("gap").await;
    let (other, _, _) = app.new_user("other").await;
    let mut stream = Stream::open(&app, &token, None).await;
    app.create_task(&token, json!({"title": "First"})).await;
    let first = stream.next_event().await.id();
    drop(stream);
    for title in ["Second", "Third"] {
        app.create_task(&token, json!({"title": title})).await;
    }
    app.create_task(&other, json!({"title": "Other's"})).await;
    // Keep one event per user: "First" and "Second" go.
    let pruned = prune(
        &app.state.db,
        Retention {
            max_age: Duration::from_secs(3600),
            max_per_user: 1,
        },
    )
    .await
    .expect("prune");
    assert_eq!(pruned, 2);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM task_events").await, 2);

    let mut stream = Stream::open(&app, &token, Some(&first.to_string())).await;
    let reset = stream.next_event().await;
    assert_eq!(reset.name(), "reset");
    let head = reset.id();
    assert!(head > first);
    // After a reset the stream goes on from the head: the next event is a new change.
    let after = app.create_task(&token, json!({"title": "After"})).await;
    let event = stream.next_event().await;
    assert_eq!(event.json()["task_id"], task_id(&after).as_str());
    assert!(event.id() > head);
    drop(stream);

    // Reconnecting from the head (what a client does after its refetch) is no gap.
    let mut stream = Stream::open(&app, &token, Some(&head.to_string())).await;
    assert_eq!(stream.next_event().await.name(), "task.created");
    drop(stream);
    // An id this user was never sent is no better than a pruned one.
    let mut stream = Stream::open(&app, &token, Some("999999999")).await;
    assert_eq!(stream.next_event().await.name(), "reset");
    // Everything is kept by age: nothing more to prune.
    let again = prune(
        &app.state.db,
        Retention {
            max_age: Duration::from_secs(3600),
            max_per_user: 1,
        },
    )
    .await
    .expect("prune");
    assert_eq!(
        again, 1,
        "only the event created after the first prune goes"
    );
}

both_backends!(logout_all_ends_the_stream);
async fn logout_all_ends_the_stream(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("revoked").await;
    let stream = Stream::open(&app, &token, None).await;
    let reply = app.logout_all(&token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    let events = stream.until_closed().await;
    let end = events.last().expect("an end event");
    assert_eq!(end.name(), "end");
    assert_eq!(end.json()["reason"], "revoked");
    assert!(end.retry.is_some());
}

both_backends!(the_stream_ends_when_the_token_expires);
async fn the_stream_ends_when_the_token_expires(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.auth.access_token_ttl_secs = 2).await;
    let (token, _, _) = app.new_user("expiring").await;
    let stream = Stream::open(&app, &token, None).await;
    let events = stream.until_closed().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].name(), "end");
    assert_eq!(events[0].json()["reason"], "token_expired");
}

both_backends!(shutdown_ends_streams_with_a_retry_hint);
async fn shutdown_ends_streams_with_a_retry_hint(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.events.retry_ms = 1234).await;
    let (token, _, _) = app.new_user("shutdown").await;
    let stream = Stream::open(&app, &token, None).await;
    app.state.feed.shut_down();
    let events = stream.until_closed().await;
    let end = events.last().expect("an end event");
    assert_eq!(end.json()["reason"], "shutdown");
    assert_eq!(end.retry.as_deref(), Some("1234"));
}

both_backends!(open_streams_are_capped_per_user);
async fn open_streams_are_capped_per_user(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.events.max_streams_per_user = 2;
        // A closed stream is noticed at its next write: make that soon.
        s.events.heartbeat_secs = 1;
    })
    .await;
    let (token, _, _) = app.new_user("capped").await;
    let (other, _, _) = app.new_user("uncapped").await;
    let first = Stream::open(&app, &token, None).await;
    let _second = Stream::open(&app, &token, None).await;
    let refused = app.get("/api/v1/tasks/events", Some(&token)).await;
    refused.problem(429);
    assert!(refused.header("retry-after").is_some());
    // The cap is per user.
    let _others = Stream::open(&app, &other, None).await;
    // A closed stream gives its place back.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match Stream::try_open(&app, &token, None).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "place never given back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

both_backends!(streams_need_a_valid_token);
async fn streams_need_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.get("/api/v1/tasks/events", None).await.problem(401);
    app.get("/api/v1/tasks/events", Some("not.a.token"))
        .await
        .problem(401);
}

both_backends!(idle_streams_carry_heartbeats);
async fn idle_streams_carry_heartbeats(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.events.heartbeat_secs = 1;
        // The request timeout covers the handler, not the stream it returns: a stream
        // outlives it.
        s.server.request_timeout_secs = 1;
    })
    .await;
    let (token, _, _) = app.new_user("quiet").await;
    let mut stream = Stream::open(&app, &token, None).await;
    for _ in 0..3 {
        let block = stream.next_block().await.expect("open");
        assert_eq!(block.comments, ["keep-alive"]);
        assert!(block.event.is_none());
    }
    // Still live after three request timeouts.
    let task = app.create_task(&token, json!({"title": "Late"})).await;
    assert_eq!(
        stream.next_event().await.json()["task_id"],
        task_id(&task).as_str()
    );
}

/// PostgreSQL only: replicas share one PostgreSQL in production; SQLite is the
/// single-process deployment.
#[tokio::test]
async fn a_change_through_one_replica_reaches_a_stream_on_another() {
    let prefix = Uuid::new_v4().simple().to_string();
    let first = spawn_app(Backend::Postgres).await;
    let mut settings: Settings = (*first.state.settings).clone();
    use_redis(&mut settings, &prefix).await;
    // No polling to fall back on within the test: only the Redis message can deliver.
    settings.events.poll_ms = 600_000;
    let a = first.spawn_replica(|s| *s = settings.clone()).await;
    let b = a.spawn_replica(|_| {}).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.state.feed.is_polling() {
        assert!(tokio::time::Instant::now() < deadline, "B never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (token, _, _) = a.new_user("replicas").await;
    let mut stream = Stream::open(&b, &token, None).await;
    let task = a.create_task(&token, json!({"title": "Made on A"})).await;
    let event = stream.next_event().await;
    assert_eq!(event.name(), "task.created");
    assert_eq!(event.json()["task_id"], task_id(&task).as_str());
    patch(&a, &token, &task_id(&task), json!({"priority": "high"})).await;
    assert_eq!(stream.next_event().await.json()["task"]["priority"], "high");
    // A revocation through A ends B's stream too.
    let reply = a.logout_all(&token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let end = stream.next_event().await;
    assert_eq!(end.name(), "end");
    assert_eq!(end.json()["reason"], "revoked");
}

/// The spec documents the stream: `text/event-stream` and the schema of its data.
#[tokio::test]
async fn the_spec_documents_the_event_stream() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = app.get("/apidocs/openapi.json", None).await.body;
    let op = &spec["paths"]["/api/v1/tasks/events"]["get"];
    let content = &op["responses"]["200"]["content"]["text/event-stream"];
    assert!(content.is_object(), "{op}");
    let schema_ref = content["schema"]["$ref"].as_str().unwrap_or_default();
    assert!(schema_ref.ends_with("TaskEventData"), "{content}");
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let data = schemas
        .iter()
        .find(|(name, _)| name.ends_with("TaskEventData"))
        .map(|(_, schema)| schema)
        .expect("TaskEventData");
    for field in ["task_id", "version", "task"] {
        assert!(data["properties"][field].is_object(), "{data}");
    }
    assert!(schemas.keys().any(|name| name.ends_with("StreamEnd")));
    let parameters = op["parameters"].as_array().expect("parameters");
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "Last-Event-ID" && p["in"] == "header")
    );
}

/// A real shutdown (the server's own sequence, not a direct call): open streams end with
/// `reason: shutdown` and a retry hint as soon as draining starts, and the server stops
/// long before its grace period, which open streams would otherwise hold to the end.
#[tokio::test]
async fn shutdown_ends_streams_and_is_not_held_by_them() {
    let dir = std::env::temp_dir().join(format!("taskapi-feed-stop-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let _cleanup = crate::helpers::TempDir(dir.clone());
    let mut settings =
        crate::helpers::test_settings(format!("sqlite://{}/taskapi.db?mode=rwc", dir.display()));
    settings.server.shutdown_grace_secs = 30;
    let app = taskapi::startup::Application::build(settings)
        .await
        .expect("build");
    let port = app.port();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let email = crate::helpers::unique_email("stopping");
    let registered = client
        .post(format!("{address}/api/v1/auth/register"))
        .json(&json!({"name": "Stopping", "email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login: Value = client
        .post(format!("{address}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": crate::helpers::PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["access_token"].as_str().expect("token");
    let mut stream = Stream::connect(&client, &address, "/api/v1/tasks/events", token, None)
        .await
        .expect("stream opened");
    assert!(stream.next_block().await.expect("opening").retry.is_some());
    let started = tokio::time::Instant::now();
    stop_tx.send(()).expect("server running");
    let events = stream.until_closed().await;
    let end = events.last().expect("an end event");
    assert_eq!(end.json()["reason"], "shutdown");
    assert!(end.retry.is_some());
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server stopped well within its 30 s grace period")
        .expect("server task")
        .expect("clean stop");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Writes `count` tasks for `owner` straight through the model (with their events), each
/// with a description of `size` characters: quicker than HTTP, and not rate limited.
async fn write_tasks(app: &TestApp, owner: &str, title: &str, count: usize, size: usize) {
    use taskapi::models::tasks::TaskInput;
    use taskapi::requests::CreateTaskRequest;
    let owner = Uuid::parse_str(owner).expect("user id");
    for n in 0..count {
        let input = TaskInput::try_from(CreateTaskRequest {
            project_id: None,
            title: format!("{title} {n}"),
            description: Some("d".repeat(size)),
            status: None,
            priority: None,
            due_date: None,
            assignee_ids: None,
            label_ids: None,
        })
        .expect("valid task");
        app.state
            .tasks
            .create(owner, owner, input)
            .await
            .expect("task");
    }
}

// Regression (outside attack): a stream that was always behind its backlog (a slow reader
// of a busy account) read batch after batch without ever reaching the wait that checks
// revocation, so it went on delivering events written after logout-all.
both_backends!(a_stream_behind_its_backlog_still_ends_when_revoked);
async fn a_stream_behind_its_backlog_still_ends_when_revoked(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, id, _) = app.new_user("backlog").await;
    // ~11 MB of events, more than the socket buffers take while the client does not read,
    // so the server is still working through the backlog when the account is revoked.
    write_tasks(&app, &id, "before", 1_200, 9_500).await;
    let mut stream = Stream::open(&app, &token, Some("0")).await;
    assert_eq!(stream.next_event().await.name(), "task.created");
    let reply = app.logout_all(&token).await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text);
    write_tasks(&app, &id, "after-revocation", 150, 10).await;
    let events = stream.until_closed().await;
    let end = events.last().expect("an end event");
    assert_eq!(end.name(), "end");
    assert_eq!(end.json()["reason"], "revoked");
    let leaked = events
        .iter()
        .filter(|e| e.data.as_deref().unwrap_or("").contains("after-revocation"))
        .count();
    assert_eq!(leaked, 0, "events written after the revocation were sent");
}

// Regression (outside attack): HEAD answered 200 where GET answered 429.
both_backends!(head_answers_like_get_when_the_user_has_no_stream_left);
async fn head_answers_like_get_when_the_user_has_no_stream_left(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.events.max_streams_per_user = 1).await;
    let (token, _, _) = app.new_user("head").await;
    let head = app
        .request(Method::HEAD, "/api/v1/tasks/events", Some(&token), None)
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let _open = Stream::open(&app, &token, None).await;
    let get = app.get("/api/v1/tasks/events", Some(&token)).await;
    get.problem(429);
    let head = app
        .request(Method::HEAD, "/api/v1/tasks/events", Some(&token), None)
        .await;
    assert_eq!(head.status, StatusCode::TOO_MANY_REQUESTS);
}

// Regression (outside attack): during the drain a new stream was accepted, only to be
// ended at once; it is refused with 503 and Retry-After instead.
both_backends!(a_draining_server_refuses_new_streams);
async fn a_draining_server_refuses_new_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("draining").await;
    app.state.start_draining();
    let refused = app.get("/api/v1/tasks/events", Some(&token)).await;
    refused.problem(503);
    assert!(refused.header("retry-after").is_some());
}

/// Found by an operations drill: with Redis killed, an idle stream on another replica got
/// nothing for the whole outage (it read the "not subscribed" flag only before waiting).
/// Now the replica's poller reads the table and wakes it within `events.poll_ms`.
#[tokio::test]
async fn a_stream_gets_events_while_redis_is_down() {
    let mut redis = crate::helpers::RedisProcess::start().await;
    let url = redis.url();
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.redis.url = Some(url.clone().into());
        s.events.poll_ms = 200;
    })
    .await;
    let replica = app.spawn_replica(|_| {}).await;
    let (token, _, _) = app.new_user("outage").await;
    crate::helpers::eventually(WAIT, "the replica subscribed", async || {
        !replica.state.feed.is_polling()
    })
    .await;
    let mut stream = Stream::open(&replica, &token, None).await;
    redis.kill();
    crate::helpers::eventually(WAIT, "the replica noticed the loss", async || {
        replica.state.feed.is_polling()
    })
    .await;
    let task = app
        .create_task(&token, json!({"title": "during the outage"}))
        .await;
    let event = tokio::time::timeout(Duration::from_secs(3), stream.next_event())
        .await
        .expect("the event arrives by polling while Redis is down");
    assert_eq!(event.name(), "task.created");
    assert_eq!(event.json()["task_id"], task_id(&task).as_str());
}

both_backends!(open_streams_are_capped_per_replica);
async fn open_streams_are_capped_per_replica(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.events.max_streams_per_replica = 2).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let first = Stream::open(&app, &alice, None).await;
    let _second = Stream::open(&app, &bob, None).await;
    let refused = app.get("/api/v1/tasks/events", Some(&bob)).await;
    refused.problem(503);
    assert!(refused.header("retry-after").is_some());
    drop(first);
    crate::helpers::eventually(WAIT, "a closed stream gives its place back", async || {
        app.state.feed.open_streams_total() < 2
    })
    .await;
    let _third = Stream::open(&app, &alice, None).await;
}

/// A change-feed request on a connection of its own, nothing read back: the test decides
/// when (and how) the client goes. `receive_buffer` bytes of socket buffer, 0 for the
/// system's default.
async fn raw_stream(app: &TestApp, token: &str, receive_buffer: u32) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if receive_buffer > 0 {
        socket.set_recv_buffer_size(receive_buffer).expect("rcvbuf");
    }
    let host = app.address.trim_start_matches("http://");
    let mut conn = socket
        .connect(host.parse().expect("address"))
        .await
        .expect("connect");
    conn.write_all(
        format!(
            "GET /api/v1/tasks/events HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {token}\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .expect("request");
    conn
}

both_backends!(streams_of_clients_that_hung_up_do_not_hold_their_places);
/// Checked after the outside attack on #22 reported that a client whose streams were
/// reset was refused (429, or 503 at the replica cap) for up to a heartbeat: a stream
/// notices at once that its client reset (RST) or closed (FIN) the connection, even while
/// idle, and its place is free for the client's reconnect. (The report came from its own
/// harness: a Python socket closed while another thread blocked in `recv()` sends nothing
/// until that `recv()` returns, at the server's next write.)
async fn streams_of_clients_that_hung_up_do_not_hold_their_places(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.events.max_streams_per_user = 2;
        s.events.max_streams_per_replica = 3;
        s.events.heartbeat_secs = 60;
    })
    .await;
    let (alice, alice_id, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let alice_id: Uuid = alice_id.parse().expect("uuid");
    // The user's cap: two streams, both reset by their client.
    let mine = [
        raw_stream(&app, &alice, 0).await,
        raw_stream(&app, &alice, 0).await,
    ];
    crate::helpers::eventually(WAIT, "both streams open", async || {
        app.state.feed.open_streams(alice_id) == 2
    })
    .await;
    for conn in mine {
        conn.set_zero_linger().expect("linger");
        drop(conn);
    }
    let _again = Stream::open(&app, &alice, None).await;

    // The replica's cap: bob fills the rest, then his clients reset too.
    let theirs = [
        raw_stream(&app, &bob, 0).await,
        raw_stream(&app, &bob, 0).await,
    ];
    crate::helpers::eventually(WAIT, "the replica is full", async || {
        app.state.feed.open_streams_total() == 3
    })
    .await;
    // Closed politely this time (FIN).
    drop(theirs);
    let _bob_again = Stream::open(&app, &bob, None).await;
}

both_backends!(a_client_that_stops_reading_is_disconnected);
/// Found by the outside attack: 60 clients that opened a stream and stopped reading held
/// every batch in memory, and a stalled stream stayed open past its token's expiry. A
/// stream whose client takes nothing is closed (here by its write timeout), and a batch is
/// bounded in bytes.
async fn a_client_that_stops_reading_is_disconnected(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.events.write_timeout_secs = 1).await;
    let (token, user_id, _) = app.new_user("stalled").await;
    let user: Uuid = user_id.parse().expect("uuid");
    // A client with a tiny receive window that reads nothing after its request.
    let conn = raw_stream(&app, &token, 4096).await;
    crate::helpers::eventually(WAIT, "the stream opened", async || {
        app.state.feed.open_streams(user) == 1
    })
    .await;
    // 36 KB per event (four-byte characters): 250 of them are more than the server's
    // kernel send buffer (at most 4 MiB here) and hyper's write buffer can take.
    let description = "\u{1D11E}".repeat(9_000);
    for n in 0..250 {
        app.create_task(
            &token,
            json!({"title": format!("big {n}"), "description": description}),
        )
        .await;
    }
    crate::helpers::eventually(
        Duration::from_secs(20),
        "the stalled stream was closed",
        async || app.state.feed.open_streams(user) == 0,
    )
    .await;
    drop(conn);
}
