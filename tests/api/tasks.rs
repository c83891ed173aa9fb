use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, TestApp, assert_shared, both_backends, spawn_app, task_path, until_taken,
    until_taken_or_queued,
};

const TASK_KEYS: [&str; 13] = [
    "assignee_ids",
    "comment_count",
    "created_at",
    "description",
    "due_date",
    "id",
    "label_ids",
    "priority",
    "project_id",
    "status",
    "title",
    "updated_at",
    "version",
];

fn task_keys(task: &Value) -> BTreeSet<String> {
    task.as_object().expect("object").keys().cloned().collect()
}

both_backends!(create_then_fetch_through_location);
async fn create_then_fetch_through_location(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("creator").await;
    let reply = app
        .post("/api/v1/tasks", Some(&token), json!({"title": "  Write report  ", "description": "Q3", "priority": "high", "due_date": "2026-12-31T17:00:00+01:00"}))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        task_keys(&reply.body),
        TASK_KEYS.iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(reply.body["title"], "Write report");
    assert_eq!(reply.body["status"], "todo");
    assert_eq!(reply.body["priority"], "high");
    assert_eq!(reply.body["due_date"], "2026-12-31T16:00:00Z");
    assert_eq!(reply.body["version"], 1);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let location = reply.header("location").expect("location").to_string();
    assert_eq!(location, task_path(reply.body["id"].as_str().expect("id")));
    let fetched = app.get(&location, Some(&token)).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, reply.body);
}

both_backends!(defaults_apply_when_optional_fields_are_omitted);
async fn defaults_apply_when_optional_fields_are_omitted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("defaults").await;
    let task = app.create_task(&token, json!({"title": "Minimal"})).await;
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["description"], Value::Null);
    assert_eq!(task["due_date"], Value::Null);
}

both_backends!(task_validation_limits);
async fn task_validation_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("validator").await;
    let cases = [
        (json!({"title": ""}), "title"),
        (json!({"title": "    "}), "title"),
        (json!({"title": "t".repeat(201)}), "title"),
        (
            json!({"title": "ok", "description": "d".repeat(10_001)}),
            "description",
        ),
    ];
    for (body, field) in cases {
        let reply = app.post("/api/v1/tasks", Some(&token), body).await;
        assert_eq!(reply.invalid_fields(), vec![field]);
    }
    for body in [
        json!({"title": "ok", "status": "finished"}),
        json!({"title": "ok", "priority": "urgent"}),
        json!({"title": "ok", "due_date": "tomorrow"}),
        json!({"title": 42}),
        json!({}),
        json!([]),
    ] {
        app.post("/api/v1/tasks", Some(&token), body)
            .await
            .problem(422);
    }
    // The limits themselves are allowed.
    let edge = app
        .post(
            "/api/v1/tasks",
            Some(&token),
            json!({"title": "t".repeat(200), "description": "d".repeat(10_000)}),
        )
        .await;
    assert_eq!(edge.status, StatusCode::CREATED);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 1);
}

both_backends!(ownership_and_identity_fields_cannot_be_mass_assigned);
async fn ownership_and_identity_fields_cannot_be_mass_assigned(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("mass").await;
    let (_, other_id, _) = app.new_user("other").await;
    for extra in [
        json!({"user_id": other_id}),
        json!({"id": uuid::Uuid::now_v7()}),
        json!({"version": 99}),
        json!({"created_at": "2020-01-01T00:00:00Z"}),
    ] {
        let mut body = json!({"title": "sneaky"});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        app.post("/api/v1/tasks", Some(&token), body.clone())
            .await
            .problem(422);
    }
    let task = app.create_task(&token, json!({"title": "mine"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    app.patch(&path, Some(&token), json!({"user_id": other_id}))
        .await
        .problem(422);
    app.request(
        Method::PUT,
        &path,
        Some(&token),
        Some(json!({"title": "x", "version": 7})),
    )
    .await
    .problem(422);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 1);
    let unchanged = app.get(&path, Some(&token)).await;
    assert_eq!(unchanged.body, task);
}

both_backends!(put_replaces_and_resets_omitted_fields);
async fn put_replaces_and_resets_omitted_fields(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("replacer").await;
    let task = app
        .create_task(&token, json!({"title": "Old", "status": "done", "priority": "high", "due_date": "2027-01-01T00:00:00Z"}))
        .await;
    let path = task_path(task["id"].as_str().expect("id"));
    let replaced = app
        .request(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"title": "New", "description": "fresh"})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(replaced.body["title"], "New");
    assert_eq!(replaced.body["description"], "fresh");
    assert_eq!(replaced.body["status"], "todo");
    assert_eq!(replaced.body["priority"], "medium");
    assert_eq!(replaced.body["due_date"], Value::Null);
    assert_eq!(replaced.body["version"], 2);
    assert_eq!(replaced.body["created_at"], task["created_at"]);
    assert_eq!(replaced.header("etag"), Some("\"2\""));
    app.request(
        Method::PUT,
        &path,
        Some(&token),
        Some(json!({"description": "no title"})),
    )
    .await
    .problem(422);
}

both_backends!(patch_changes_only_what_is_sent_and_null_clears);
async fn patch_changes_only_what_is_sent_and_null_clears(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("patcher").await;
    let task = app
        .create_task(&token, json!({"title": "Keep", "description": "remove me", "due_date": "2027-01-01T00:00:00Z"}))
        .await;
    let path = task_path(task["id"].as_str().expect("id"));
    let done = app
        .patch(&path, Some(&token), json!({"status": "done"}))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    assert_eq!(done.body["status"], "done");
    assert_eq!(done.body["title"], "Keep");
    assert_eq!(done.body["description"], "remove me");
    let cleared = app
        .patch(
            &path,
            Some(&token),
            json!({"description": null, "due_date": null}),
        )
        .await;
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["due_date"], Value::Null);
    assert_eq!(cleared.body["status"], "done");
    assert_eq!(cleared.body["version"], 3);
    // An empty patch changes nothing.
    let noop = app.patch(&path, Some(&token), json!({})).await;
    assert_eq!(noop.body["version"], 3);
    app.patch(&path, Some(&token), json!({"title": ""}))
        .await
        .problem(422);
    app.patch(&path, Some(&token), json!({"title": null}))
        .await
        .problem(422);
}

both_backends!(delete_removes_the_task);
async fn delete_removes_the_task(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("deleter").await;
    let task = app.create_task(&token, json!({"title": "Bye"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let deleted = app.request(Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.text.is_empty());
    app.get(&path, Some(&token)).await.problem(404);
    app.request(Method::DELETE, &path, Some(&token), None)
        .await
        .problem(404);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 0);
}

both_backends!(another_users_task_is_a_404_on_every_route_and_stays_intact);
async fn another_users_task_is_a_404_on_every_route_and_stays_intact(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (mallory, _, _) = app.new_user("mallory").await;
    let task = app
        .create_task(
            &alice,
            json!({"title": "Alice's secret", "description": "private"}),
        )
        .await;
    let path = task_path(task["id"].as_str().expect("id"));
    let missing = task_path(uuid::Uuid::now_v7());
    for target in [&path, &missing] {
        let get = app.get(target, Some(&mallory)).await;
        let put = app
            .request(
                Method::PUT,
                target,
                Some(&mallory),
                Some(json!({"title": "pwned"})),
            )
            .await;
        let patch = app
            .patch(target, Some(&mallory), json!({"status": "done"}))
            .await;
        let delete = app
            .request(Method::DELETE, target, Some(&mallory), None)
            .await;
        for reply in [&get, &put, &patch, &delete] {
            reply.problem(404);
            assert!(!reply.text.contains("secret"));
        }
    }
    // Foreign and missing ids give byte-identical answers, so ids leak nothing.
    let foreign = app.get(&path, Some(&mallory)).await;
    let absent = app.get(&missing, Some(&mallory)).await;
    assert_eq!(foreign.body, absent.body);
    let listed = app.get("/api/v1/tasks", Some(&mallory)).await;
    assert_eq!(listed.body["total"], 0);
    let intact = app.get(&path, Some(&alice)).await;
    assert_eq!(intact.body, task);
}

both_backends!(malformed_ids_are_not_found);
async fn malformed_ids_are_not_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("ids").await;
    for path in [
        "/api/v1/tasks/not-a-uuid",
        "/api/v1/tasks/1",
        "/api/v1/tasks/%00",
    ] {
        app.get(path, Some(&token)).await.problem(404);
    }
}

async fn seed(app: &TestApp, token: &str) {
    let tasks = [
        json!({"title": "Alpha report", "status": "todo", "priority": "low", "due_date": "2027-03-01T00:00:00Z"}),
        json!({"title": "beta review", "status": "in_progress", "priority": "high", "due_date": "2027-01-01T00:00:00Z", "description": "check the 50% case"}),
        json!({"title": "Gamma", "status": "done", "priority": "medium"}),
        json!({"title": "delta REPORT", "status": "todo", "priority": "high", "due_date": "2027-02-01T00:00:00Z"}),
    ];
    for task in tasks {
        app.create_task(token, task).await;
    }
}

fn titles(reply: &crate::helpers::Reply) -> Vec<String> {
    reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["title"].as_str().expect("title").to_string())
        .collect()
}

both_backends!(list_filters_sorts_and_only_shows_own_tasks);
async fn list_filters_sorts_and_only_shows_own_tasks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("lister").await;
    let (other, _, _) = app.new_user("neighbour").await;
    seed(&app, &token).await;
    app.create_task(&other, json!({"title": "Alpha of someone else"}))
        .await;

    let all = app.get("/api/v1/tasks", Some(&token)).await;
    assert_eq!(all.status, StatusCode::OK);
    assert_eq!(all.body["total"], 4);
    assert_eq!(all.body["limit"], 20);
    assert_eq!(all.body["offset"], 0);
    // Default order: newest first.
    assert_eq!(
        titles(&all),
        ["delta REPORT", "Gamma", "beta review", "Alpha report"]
    );

    let cases: [(&str, Vec<&str>); 10] = [
        (
            "status=todo&sort=created_at",
            vec!["Alpha report", "delta REPORT"],
        ),
        (
            "priority=high&sort=title",
            vec!["beta review", "delta REPORT"],
        ),
        (
            "q=report&sort=created_at",
            vec!["Alpha report", "delta REPORT"],
        ),
        ("q=50%25", vec!["beta review"]),
        ("q=%25", vec!["beta review"]),
        (
            "due_before=2027-02-15T00:00:00Z&sort=due_date",
            vec!["beta review", "delta REPORT"],
        ),
        (
            "due_after=2027-01-15T00:00:00Z&sort=-due_date",
            vec!["Alpha report", "delta REPORT"],
        ),
        (
            "sort=due_date",
            vec!["beta review", "delta REPORT", "Alpha report", "Gamma"],
        ),
        (
            "sort=-priority&limit=2",
            vec!["delta REPORT", "beta review"],
        ),
        (
            "sort=priority",
            vec!["Alpha report", "Gamma", "beta review", "delta REPORT"],
        ),
    ];
    for (query, expected) in cases {
        let reply = app
            .get(&format!("/api/v1/tasks?{query}"), Some(&token))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
        assert_eq!(titles(&reply), expected, "{query}");
    }
}

both_backends!(pagination_is_bounded_and_complete);
async fn pagination_is_bounded_and_complete(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("pager").await;
    for i in 0..25 {
        app.create_task(&token, json!({"title": format!("task {i:02}")}))
            .await;
    }
    let first = app.get("/api/v1/tasks?sort=title", Some(&token)).await;
    assert_eq!(first.body["items"].as_array().expect("items").len(), 20);
    assert_eq!(first.body["total"], 25);
    let second = app
        .get("/api/v1/tasks?sort=title&offset=20", Some(&token))
        .await;
    assert_eq!(
        titles(&second),
        (20..25).map(|i| format!("task {i:02}")).collect::<Vec<_>>()
    );
    let mut seen = BTreeSet::new();
    for offset in (0..25).step_by(7) {
        let page = app
            .get(
                &format!("/api/v1/tasks?sort=title&limit=7&offset={offset}"),
                Some(&token),
            )
            .await;
        seen.extend(titles(&page));
    }
    assert_eq!(seen.len(), 25);
    let beyond = app.get("/api/v1/tasks?offset=100", Some(&token)).await;
    assert_eq!(beyond.body["items"], json!([]));
    assert_eq!(beyond.body["total"], 25);
    let max = app.get("/api/v1/tasks?limit=100", Some(&token)).await;
    assert_eq!(max.status, StatusCode::OK);
    for query in [
        "limit=0",
        "limit=101",
        "limit=1000",
        "limit=-1",
        "limit=abc",
        "offset=-5",
        "offset=99999999999",
        "status=bogus",
        "priority=urgent",
        "sort=password_hash",
        "due_before=yesterday",
        "unknown=1",
    ] {
        let reply = app
            .get(&format!("/api/v1/tasks?{query}"), Some(&token))
            .await;
        reply.problem(422);
    }
    let long_q = format!("/api/v1/tasks?q={}", "x".repeat(201));
    app.get(&long_q, Some(&token)).await.problem(422);
}

both_backends!(etags_support_conditional_requests);
async fn etags_support_conditional_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("etag").await;
    let task = app.create_task(&token, json!({"title": "versioned"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let conditional =
        |method: Method, header: &'static str, value: &'static str, body: Option<Value>| {
            let mut request = app
                .client
                .request(method, app.url(&path))
                .bearer_auth(&token)
                .header(header, value);
            if let Some(body) = body {
                request = request.json(&body);
            }
            async move { TestApp::read(request.send().await.expect("send")).await }
        };
    let cached = conditional(Method::GET, "if-none-match", "\"1\"", None).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.text.is_empty());
    let stale_tag = conditional(Method::GET, "if-none-match", "\"0\"", None).await;
    assert_eq!(stale_tag.status, StatusCode::OK);

    let updated = conditional(
        Method::PATCH,
        "if-match",
        "\"1\"",
        Some(json!({"title": "v2"})),
    )
    .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    conditional(
        Method::PATCH,
        "if-match",
        "\"1\"",
        Some(json!({"title": "lost"})),
    )
    .await
    .problem(412);
    conditional(
        Method::PUT,
        "if-match",
        "\"1\"",
        Some(json!({"title": "lost"})),
    )
    .await
    .problem(412);
    conditional(Method::DELETE, "if-match", "\"1\"", None)
        .await
        .problem(412);
    conditional(
        Method::PATCH,
        "if-match",
        "garbage",
        Some(json!({"title": "lost"})),
    )
    .await
    .problem(412);
    let current = app.get(&path, Some(&token)).await;
    assert_eq!(current.body["title"], "v2");
    let wildcard = conditional(Method::PATCH, "if-match", "*", Some(json!({"title": "v3"}))).await;
    assert_eq!(wildcard.status, StatusCode::OK);
    let deleted = conditional(Method::DELETE, "if-match", "\"3\"", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

both_backends!(concurrent_patches_with_if_match_lose_no_update);
/// Many clients read-modify-write one task with If-Match. Every 2xx corresponds to
/// exactly one version step, so no acknowledged update was silently overwritten.
async fn concurrent_patches_with_if_match_lose_no_update(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("racer").await;
    let task = app.create_task(&token, json!({"title": "counter 0"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let workers = (0..8).map(|worker| {
        let (app, token, path) = (&app, token.clone(), path.clone());
        async move {
            let mut acknowledged = Vec::new();
            for _ in 0..6 {
                let current = app.get(&path, Some(&token)).await;
                let version = current.body["version"].as_i64().expect("version");
                let title = format!("w{worker} after v{version}");
                let reply = TestApp::read(
                    app.client
                        .patch(app.url(&path))
                        .bearer_auth(&token)
                        .header("if-match", format!("\"{version}\""))
                        .json(&json!({"title": title}))
                        .send()
                        .await
                        .expect("send"),
                )
                .await;
                match reply.status.as_u16() {
                    200 => acknowledged.push((reply.body["version"].as_i64().expect("v"), title)),
                    412 => {}
                    other => panic!("unexpected {other}: {}", reply.text),
                }
            }
            acknowledged
        }
    });
    let results: Vec<(i64, String)> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let final_task = app.get(&path, Some(&token)).await;
    let final_version = final_task.body["version"].as_i64().expect("version");
    // Each success produced a distinct version, and versions advanced exactly once per success.
    let mut versions: Vec<i64> = results.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), results.len());
    assert_eq!(final_version, 1 + results.len() as i64);
    // The stored title is the one acknowledged last.
    let last = results
        .iter()
        .max_by_key(|(v, _)| *v)
        .expect("at least one success");
    assert_eq!(final_task.body["title"], last.1.as_str());
}

/// On PostgreSQL, concurrent reads of single tasks share statements
/// (`models::tasks::postgres::by_id::Lookups`). One batch here mixes two owners, each one's own and the
/// other's ids, and a missing id: every request still gets its own task or a 404, never a
/// task another request in the batch was allowed to see.
#[tokio::test]
async fn batched_reads_answer_each_request_with_its_own_task_only() {
    let app = spawn_app(Backend::Postgres).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let mut requests: Vec<(&str, String, Option<Value>)> = Vec::new();
    for i in 0..4 {
        let mine = app
            .create_task(&alice, json!({"title": format!("alice {i}")}))
            .await;
        let theirs = app
            .create_task(&bob, json!({"title": format!("bob {i}")}))
            .await;
        for (owner, other, task) in [(&alice, &bob, &mine), (&bob, &alice, &theirs)] {
            let id = task["id"].as_str().expect("id").to_string();
            requests.push((owner, id.clone(), Some(task.clone())));
            requests.push((other, id, None));
        }
        requests.push((&alice, uuid::Uuid::now_v7().to_string(), None));
    }
    // Hold the table: the first lookups' statements wait on the lock while the rest queue
    // behind them, so they must be answered together once it is released.
    let blocker = app.hold_tasks_table().await;
    let before = app.pg_tasks().lookups.stats();
    let paths: Vec<String> = requests
        .iter()
        .map(|(_, id, _)| format!("/api/v1/tasks/{id}"))
        .collect();
    let reads = futures::future::join_all(
        requests
            .iter()
            .zip(&paths)
            .map(|((token, _, _), path)| app.get(path, Some(token))),
    );
    let release = async {
        // Every request is either in a statement waiting on the lock or queued.
        until_taken_or_queued(&app.pg_tasks().lookups, before, requests.len()).await;
        blocker.commit().await.expect("release");
    };
    let (replies, ()) = futures::join!(reads, release);

    for ((_, id, expected), reply) in requests.iter().zip(&replies) {
        match expected {
            Some(task) => {
                assert_eq!(reply.status, StatusCode::OK, "{id}: {}", reply.text);
                assert_eq!(&reply.body, task);
            }
            None => {
                reply.problem(404);
                assert!(!reply.text.contains("alice") && !reply.text.contains("bob"));
            }
        }
    }
    assert_shared(&app.pg_tasks().lookups, before, requests.len());
}

/// On PostgreSQL, concurrent creates share one statement and one commit
/// (`models::tasks::postgres::writes::Creates`). Here the first two creates wait on their owner's feed
/// lock, held by another session, while creates of three users queue behind them; once it
/// is released the queued ones are written together. One of the queued creates is for a
/// user deleted meanwhile, which fails the shared statement: every other create must still
/// be stored (each then goes alone), and the orphan must not be (its request gets a 401).
#[tokio::test]
async fn batched_creates_store_every_task_once_even_when_one_of_them_fails() {
    let app = spawn_app(Backend::Postgres).await;
    let (holder, holder_id, _) = app.new_user("holder").await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let (doomed, doomed_id, _) = app.new_user("doomed").await;
    let blocker = app.hold_feed_lock(&holder_id).await;
    let before = app.pg_tasks().creates.stats();
    let app = &app;
    let post = |token: &str, title: &str| {
        let request = app
            .client
            .post(app.url("/api/v1/tasks"))
            .bearer_auth(token)
            .json(&json!({ "title": title }));
        tokio::spawn(async move { TestApp::read(request.send().await.expect("send")).await })
    };
    let mut creates: Vec<(&str, String)> = Vec::new();
    let mut sent = Vec::new();
    // One at a time, so each of the two runners holds one of them, waiting on the lock.
    for (n, title) in ["holder 0", "holder 1"].into_iter().enumerate() {
        sent.push(post(&holder, title));
        creates.push((&holder, title.into()));
        until_taken(&app.pg_tasks().creates, before, n as u64 + 1).await;
    }
    for i in 0..6 {
        for (token, name) in [(&alice, "alice"), (&bob, "bob")] {
            let title = format!("{name} {i}");
            sent.push(post(token, &title));
            creates.push((token, title));
        }
    }
    sent.push(post(&doomed, "orphan"));
    creates.push((&doomed, "orphan".into()));
    until_taken_or_queued(&app.pg_tasks().creates, before, creates.len()).await;
    app.count(&format!(
        "WITH gone AS (DELETE FROM users WHERE id = '{doomed_id}' RETURNING 1) SELECT count(*) AS n FROM gone"
    ))
    .await;
    blocker.commit().await.expect("release");
    let mut replies = Vec::new();
    for reply in sent {
        replies.push(reply.await.expect("join"));
    }

    for ((token, title), reply) in creates.iter().zip(&replies) {
        if *token == doomed.as_str() {
            // Regression (outside attack): the account's deletion won the race, and its
            // foreign-key failure was a 500. It is what the token gets from now on: a 401.
            reply.problem(401);
            continue;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{title}: {}", reply.text);
        assert_eq!(reply.body["title"], title.as_str());
        let stored = app
            .get(
                &task_path(reply.body["id"].as_str().expect("id")),
                Some(token),
            )
            .await;
        assert_eq!(&stored.body, &reply.body);
    }
    for (token, owned) in [(&alice, 6), (&bob, 6), (&holder, 2)] {
        let listed = app.get("/api/v1/tasks?limit=100", Some(token)).await;
        assert_eq!(listed.body["total"], owned);
    }
    assert_eq!(
        app.count("SELECT count(*) AS n FROM tasks WHERE title = 'orphan'")
            .await,
        0
    );
    // One event per stored task, no more (the failed statement left none behind).
    assert_eq!(
        app.count("SELECT count(*) AS n FROM task_events WHERE kind = 'created'")
            .await,
        14
    );
    assert_shared(&app.pg_tasks().creates, before, creates.len());
}

/// On PostgreSQL, concurrent changes share one statement and one commit
/// (`models::tasks::postgres::writes::Updates`); two changes of one task go in successive statements.
/// In one batch: two unconditional changes of a task (both apply), two changes of another
/// task at the same `If-Match` version (exactly one applies, the other is a 412), a change
/// of someone else's task (404) and an unrelated one.
#[tokio::test]
async fn batched_changes_apply_each_change_once_and_keep_if_match() {
    let app = spawn_app(Backend::Postgres).await;
    let (holder, holder_id, _) = app.new_user("holder").await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let path = |task: &Value| task_path(task["id"].as_str().expect("id"));
    let held = path(&app.create_task(&holder, json!({"title": "held"})).await);
    let twice = path(&app.create_task(&alice, json!({"title": "twice"})).await);
    let contested = path(&app.create_task(&alice, json!({"title": "contested"})).await);
    let bobs = path(&app.create_task(&bob, json!({"title": "bob's"})).await);

    let blocker = app.hold_feed_lock(&holder_id).await;
    let before = app.pg_tasks().updates.stats();
    let patch = |token: &str, path: &str, if_match: Option<&str>, body: Value| {
        let mut request = app
            .client
            .patch(app.url(path))
            .bearer_auth(token)
            .json(&body);
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        tokio::spawn(async move { TestApp::read(request.send().await.expect("send")).await })
    };
    // Each runner holds one change of the held task, waiting on its owner's lock.
    let mut held_changes = Vec::new();
    for n in 1..=2 {
        held_changes.push(patch(
            &holder,
            &held,
            None,
            json!({"title": format!("held {n}")}),
        ));
        until_taken(&app.pg_tasks().updates, before, n).await;
    }
    let queued = [
        patch(&alice, &twice, None, json!({"title": "twice a"})),
        patch(&alice, &twice, None, json!({"status": "done"})),
        patch(&alice, &contested, Some("\"1\""), json!({"title": "first"})),
        patch(
            &alice,
            &contested,
            Some("\"1\""),
            json!({"title": "second"}),
        ),
        patch(&bob, &twice, None, json!({"title": "pwned"})),
        patch(&bob, &bobs, None, json!({"priority": "high"})),
    ];
    until_taken_or_queued(&app.pg_tasks().updates, before, 2 + queued.len()).await;
    blocker.commit().await.expect("release");
    let mut replies = Vec::new();
    for reply in held_changes.into_iter().chain(queued) {
        replies.push(reply.await.expect("join"));
    }

    let statuses: Vec<u16> = replies.iter().map(|reply| reply.status.as_u16()).collect();
    assert_eq!(statuses[..4], [200, 200, 200, 200], "{statuses:?}");
    let contest = [statuses[4], statuses[5]];
    assert!(
        contest == [200, 412] || contest == [412, 200],
        "{statuses:?}"
    );
    assert_eq!(statuses[6..], [404, 200], "{statuses:?}");
    replies[6].problem(404);

    let twice_now = app.get(&twice, Some(&alice)).await.body;
    assert_eq!(
        (
            &twice_now["title"],
            &twice_now["status"],
            &twice_now["version"]
        ),
        (&json!("twice a"), &json!("done"), &json!(3))
    );
    let winner = if contest[0] == 200 { "first" } else { "second" };
    let contested_now = app.get(&contested, Some(&alice)).await.body;
    assert_eq!(
        (&contested_now["title"], &contested_now["version"]),
        (&json!(winner), &json!(2))
    );
    assert_eq!(app.get(&bobs, Some(&bob)).await.body["priority"], "high");
    assert_eq!(app.get(&held, Some(&holder)).await.body["version"], 3);
    // One event per applied change.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM task_events WHERE kind = 'updated'")
            .await,
        6
    );
    let after = app.pg_tasks().updates.stats();
    assert_eq!(after.calls - before.calls, 8);
    assert_eq!(
        after.statements - before.statements,
        3,
        "two held, one batch"
    );
}

/// On PostgreSQL, concurrent default listings share one statement
/// (`models::tasks::list::DefaultListings`). One batch here mixes owners, limits and offsets,
/// including a page past the last one: each gets exactly its own page and total.
#[tokio::test]
async fn batched_listings_give_each_request_its_own_page_and_total() {
    let app = spawn_app(Backend::Postgres).await;
    let mut owners = Vec::new();
    for (name, count) in [("alice", 5), ("bob", 3), ("carol", 0)] {
        let (token, _, _) = app.new_user(name).await;
        for i in 0..count {
            app.create_task(&token, json!({"title": format!("{name} {i}")}))
                .await;
        }
        owners.push((token, name, count));
    }
    let mut requests: Vec<(String, String)> = Vec::new();
    for (token, _, _) in &owners {
        for query in [
            "",
            "?limit=2",
            "?limit=2&offset=2",
            "?offset=4",
            "?offset=9",
        ] {
            requests.push((token.clone(), format!("/api/v1/tasks{query}")));
        }
    }
    // The answers each request must get, read one at a time before the batch.
    let mut expected = Vec::new();
    for (token, path) in &requests {
        let reply = app.get(path, Some(token)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        expected.push(reply.body);
    }
    let blocker = app.hold_tasks_table().await;
    let before = app.pg_tasks().pages.stats();
    let reads = futures::future::join_all(
        requests
            .iter()
            .map(|(token, path)| app.get(path, Some(token))),
    );
    let release = async {
        until_taken_or_queued(&app.pg_tasks().pages, before, requests.len()).await;
        blocker.commit().await.expect("release");
    };
    let (replies, ()) = futures::join!(reads, release);

    for (((_, path), reply), expected) in requests.iter().zip(&replies).zip(&expected) {
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
        assert_eq!(&reply.body, expected, "{path}");
    }
    // Spot checks that the expected answers are the right ones, not just equal.
    assert_eq!(expected[0]["total"], 5);
    assert_eq!(expected[0]["items"].as_array().expect("items").len(), 5);
    assert_eq!(expected[2]["items"][0]["title"], "alice 2");
    assert_eq!(expected[8]["total"], 3);
    assert_eq!(expected[8]["items"].as_array().expect("items").len(), 0);
    assert_eq!(expected[10]["total"], 0);
    assert_shared(&app.pg_tasks().pages, before, requests.len());
}

/// Regression (outside attack on #14): a default listing past its last page got no row from
/// the page's statement, so its `total` came from a second count, which could include a
/// task created in between (`items: []` with a `total` saying a row was there). The page's
/// own statement now answers the count for such a listing too, alone or in a batch.
#[tokio::test]
async fn a_listing_past_its_last_page_gets_its_total_from_the_same_statement() {
    use taskapi::models::tasks::list::DefaultPage;

    let app = spawn_app(Backend::Postgres).await;
    let (token, owner, _) = app.new_user("pager").await;
    for i in 0..3 {
        app.create_task(&token, json!({"title": format!("task {i}")}))
            .await;
    }
    let owner: uuid::Uuid = owner.parse().expect("user id");
    let past = |offset| DefaultPage {
        project: owner,
        reader: owner,
        probe: 21,
        offset,
    };
    let page = app.pg_tasks().pages.call(past(9)).await.expect("page");
    assert!(page.items.is_empty());
    assert_eq!(page.total, Some(3));
    let page = app.pg_tasks().pages.call(past(2)).await.expect("page");
    assert_eq!((page.items.len(), page.total), (1, Some(3)));
    let reply = app.get("/api/v1/tasks?offset=9", Some(&token)).await;
    assert_eq!(reply.body["total"], 3);
    assert_eq!(reply.body["items"], json!([]));
}

both_backends!(updated_at_never_goes_back_under_concurrent_patches);
/// Found by the outside attack: under concurrent PATCHes, `updated_at` went backwards
/// (the time was taken before the write queued). Ordered by version, it never decreases.
async fn updated_at_never_goes_back_under_concurrent_patches(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("clock").await;
    let task = app.create_task(&token, json!({"title": "Busy"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let patches =
        (0..40).map(|n| app.patch(&path, Some(&token), json!({"title": format!("Busy {n}")})));
    let mut changed: Vec<(i64, String)> = futures::future::join_all(patches)
        .await
        .into_iter()
        .map(|reply| {
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
            (
                reply.body["version"].as_i64().expect("version"),
                reply.body["updated_at"]
                    .as_str()
                    .expect("updated_at")
                    .to_string(),
            )
        })
        .collect();
    changed.sort();
    let times: Vec<chrono::DateTime<chrono::Utc>> = changed
        .iter()
        .map(|(_, at)| at.parse().expect("RFC 3339"))
        .collect();
    for pair in times.windows(2) {
        assert!(pair[0] <= pair[1], "updated_at went back: {changed:?}");
    }
}

both_backends!(a_task_at_its_last_version_is_a_409_not_a_500);
/// Found by the outside attack: a task at version 2^31-1 made the next PATCH a 500.
async fn a_task_at_its_last_version_is_a_409_not_a_500(backend: Backend) {
    use sea_orm::ConnectionTrait;
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("versions").await;
    let task = app.create_task(&token, json!({"title": "Old"})).await;
    let id = task["id"].as_str().expect("id");
    let uuid: uuid::Uuid = id.parse().expect("uuid");
    let backend_kind = app.state.db.get_database_backend();
    app.state
        .db
        .execute_raw(sea_orm::Statement::from_sql_and_values(
            backend_kind,
            match backend {
                Backend::Postgres => "UPDATE tasks SET version = 2147483647 WHERE id = $1",
                Backend::Sqlite => "UPDATE tasks SET version = 2147483647 WHERE id = ?",
            },
            [uuid.into()],
        ))
        .await
        .expect("set version");
    let path = format!("/api/v1/tasks/{id}");
    let reply = app
        .patch(&path, Some(&token), json!({"title": "New"}))
        .await;
    reply.problem(409);
    let still = app.get(&path, Some(&token)).await;
    assert_eq!(still.body["title"], "Old");
    assert_eq!(still.body["version"], 2147483647);
}

/// Every batch statement of the PostgreSQL store is planned once per connection and then
/// runs its cached generic plan. Given its arrays directly, PostgreSQL planned it again at
/// every execution (a custom plan for arrays of known length always looked cheaper), which
/// halved the rate of a statement of one.
#[tokio::test]
async fn batch_statements_keep_their_generic_plan() {
    use sea_orm::sqlx::{self, Row};
    use taskapi::models::tasks::postgres::BATCH_STATEMENTS;

    let app = spawn_app(Backend::Postgres).await;
    let (_, owner, _) = app.new_user("planned").await;
    let pool = app.state.db.get_postgres_connection_pool();
    let mut conn = pool.acquire().await.expect("connection");
    // Plans are chosen by cost: an empty table makes every plan cheap, so give the planner
    // a table of some size, with statistics.
    sqlx::query(
        "INSERT INTO tasks (id, user_id, title, status, priority, version, created_at, updated_at,
           title_search)
         SELECT gen_random_uuid(), $1::uuid, 'task ' || g, 'todo', 2, 1, now(), now(), 'task ' || g
         FROM generate_series(1, 5000) AS g",
    )
    .bind(&owner)
    .execute(&mut *conn)
    .await
    .expect("tasks");
    sqlx::raw_sql("ANALYZE tasks")
        .execute(&mut *conn)
        .await
        .expect("analyze");
    for (name, sql) in BATCH_STATEMENTS {
        let prepared = format!("batch_{}", name.replace(' ', "_"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {prepared} AS {sql}")))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        let types: Vec<String> = sqlx::query_scalar(
            "SELECT unnest(parameter_types)::text FROM pg_prepared_statements WHERE name = $1",
        )
        .bind(&prepared)
        .fetch_all(&mut *conn)
        .await
        .expect("parameter types");
        // Arrays of one NULL (a row that matches no task: the planner knows the length, as
        // for a real call), a zero for the scalars. A create's row would be inserted, so it
        // gets empty arrays.
        let array = if name == "create" { "'{}'" } else { "'{NULL}'" };
        let arguments: Vec<&str> = types
            .iter()
            .map(|kind| if kind.ends_with("[]") { array } else { "0" })
            .collect();
        let execute = format!("EXECUTE {prepared}({})", arguments.join(", "));
        for _ in 0..8 {
            sqlx::raw_sql(sqlx::AssertSqlSafe(execute.clone()))
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|err| panic!("{name}: {err}"));
        }
        let row = sqlx::query(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1",
        )
        .bind(&prepared)
        .fetch_one(&mut *conn)
        .await
        .expect("plan counts");
        let generic: i64 = row.get(0);
        let custom: i64 = row.get(1);
        assert!(
            generic >= 3,
            "{name}: {generic} generic and {custom} custom plans in 8 executions"
        );
    }
}
