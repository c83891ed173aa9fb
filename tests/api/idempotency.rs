//! `Idempotency-Key` on `POST /api/v1/tasks` and `POST /api/v1/auth/register`: replay,
//! body mismatch, concurrent duplicates, per-user scope, key validation and expiry.

use chrono::Duration;
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{EntityTrait, QueryFilter};
use serde_json::{Value, json};
use taskapi::entities::idempotency_key;
use taskapi::models::idempotency;

use crate::helpers::{
    Backend, PASSWORD, Reply, TestApp, both_backends, spawn_app, task_path, unique_email,
};

pub(crate) async fn post_keyed(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    key: &str,
    body: &str,
) -> Reply {
    let mut builder = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json")
        .header("Idempotency-Key", key)
        .body(body.to_string());
    if let Some(token) = token {
        builder = builder.bearer_auth(token);
    }
    TestApp::read(builder.send().await.expect("request sent")).await
}

async fn task_count(app: &TestApp, token: &str) -> u64 {
    let page = app.get("/api/v1/tasks?limit=100", Some(token)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    page.body["total"].as_u64().expect("total")
}

async fn key_rows(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) AS n FROM idempotency_keys")
        .await
}

both_backends!(replay_returns_the_original_response_and_creates_once);
async fn replay_returns_the_original_response_and_creates_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("idem").await;
    let body = r#"{"title":"Pay rent","priority":"high","due_date":"2030-01-31T17:00:00Z"}"#;
    let first = post_keyed(&app, "/api/v1/tasks", Some(&token), "rent-2030-01", body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    // Same request, keys in another order and other whitespace: the same canonical body.
    let reordered = "{ \"due_date\": \"2030-01-31T17:00:00Z\",\n  \"priority\": \"high\", \"title\": \"Pay rent\" }";
    let again = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "rent-2030-01",
        reordered,
    )
    .await;
    assert_eq!(again.status, first.status);
    assert_eq!(again.text, first.text, "body replayed byte for byte");
    for name in ["location", "etag", "content-type"] {
        assert_eq!(again.header(name), first.header(name), "{name}");
    }
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        first.header("location"),
        Some(task_path(first.body["id"].as_str().expect("id")).as_str())
    );
    assert_eq!(first.header("etag"), Some("\"1\""));
    assert_eq!(task_count(&app, &token).await, 1);
    // The task is real: its Location serves it.
    let fetched = app
        .get(first.header("location").expect("location"), Some(&token))
        .await;
    assert_eq!(fetched.body, first.body);
    // Without a key, the same body creates another task, as before.
    let plain = app
        .post(
            "/api/v1/tasks",
            Some(&token),
            serde_json::from_str(body).expect("json"),
        )
        .await;
    assert_eq!(plain.status, StatusCode::CREATED);
    assert_ne!(plain.body["id"], first.body["id"]);
    assert_eq!(task_count(&app, &token).await, 2);
}

both_backends!(same_key_with_another_body_is_422_and_creates_nothing);
async fn same_key_with_another_body_is_422_and_creates_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("idem").await;
    let first = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "k-1",
        r#"{"title":"A"}"#,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "k-1",
        r#"{"title":"B"}"#,
    )
    .await;
    assert_eq!(other.invalid_fields(), ["Idempotency-Key"]);
    assert!(
        !other.text.contains("\"A\""),
        "the first body is not revealed"
    );
    assert_eq!(task_count(&app, &token).await, 1);
}

both_backends!(a_failed_create_does_not_use_up_the_key);
async fn a_failed_create_does_not_use_up_the_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("idem").await;
    let invalid = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "k-2",
        r#"{"title":"  "}"#,
    )
    .await;
    assert_eq!(invalid.invalid_fields(), ["title"]);
    assert_eq!(key_rows(&app).await, 0);
    let fixed = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "k-2",
        r#"{"title":"Fixed"}"#,
    )
    .await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.text);
    assert_eq!(fixed.header("idempotent-replayed"), None);
}

both_backends!(concurrent_duplicates_create_exactly_one_task);
async fn concurrent_duplicates_create_exactly_one_task(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("race").await;
    let body = r#"{"title":"Only once"}"#;
    let replies = futures::future::join_all(
        (0..10).map(|_| post_keyed(&app, "/api/v1/tasks", Some(&token), "race-key", body)),
    )
    .await;
    let first = &replies[0];
    for reply in &replies {
        // Every duplicate waits for the winner and replays it: no 409, no second task.
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
        assert_eq!(reply.body["id"], first.body["id"]);
        assert_eq!(reply.header("location"), first.header("location"));
    }
    let fresh = replies
        .iter()
        .filter(|reply| reply.header("idempotent-replayed").is_none())
        .count();
    assert_eq!(fresh, 1, "exactly one request created the task");
    assert_eq!(task_count(&app, &token).await, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM tasks").await,
        1,
        "one row in the table"
    );
}

both_backends!(keys_are_scoped_per_user);
async fn keys_are_scoped_per_user(backend: Backend) {
    let app = spawn_app(backend).await;
    let (alice, _, _) = app.new_user("alice").await;
    let (bob, _, _) = app.new_user("bob").await;
    let body = r#"{"title":"Same"}"#;
    let theirs = post_keyed(&app, "/api/v1/tasks", Some(&alice), "shared-key", body).await;
    let mine = post_keyed(&app, "/api/v1/tasks", Some(&bob), "shared-key", body).await;
    assert_eq!(mine.status, StatusCode::CREATED);
    assert_eq!(mine.header("idempotent-replayed"), None);
    assert_ne!(mine.body["id"], theirs.body["id"]);
    // And with another body, Bob is not told that Alice used the key.
    let other = post_keyed(&app, "/api/v1/tasks", Some(&bob), "alice-only", body).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_eq!(task_count(&app, &alice).await, 1);
    assert_eq!(task_count(&app, &bob).await, 2);
}

both_backends!(registration_replays_only_the_identical_request);
async fn registration_replays_only_the_identical_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("signup");
    let body = json!({"name": "Sign Up", "email": email, "password": PASSWORD}).to_string();
    let first = post_keyed(&app, "/api/v1/auth/register", None, "signup-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let again = post_keyed(&app, "/api/v1/auth/register", None, "signup-1", &body).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // The stored response is the public view: no hash, no token.
    assert!(!first.text.contains("password") && !first.text.contains("token"));
    // Same key, same email, another password: not the same request, and no account.
    let guess = json!({"name": "Sign Up", "email": email, "password": "another password"});
    let refused = post_keyed(
        &app,
        "/api/v1/auth/register",
        None,
        "signup-1",
        &guess.to_string(),
    )
    .await;
    assert_eq!(refused.invalid_fields(), ["Idempotency-Key"]);
    assert!(!refused.text.contains(&email), "no replay for a stranger");
    // Another person with the same key learns nothing of the first registration either.
    let stranger = json!({"name": "Other", "email": unique_email("other"), "password": PASSWORD});
    let refused = post_keyed(
        &app,
        "/api/v1/auth/register",
        None,
        "signup-1",
        &stranger.to_string(),
    )
    .await;
    assert_eq!(refused.invalid_fields(), ["Idempotency-Key"]);
    assert!(!refused.text.contains(&email));
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) AS n FROM users WHERE email = '{email}'"
        ))
        .await,
        1
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users").await, 1);
    // The account works.
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
}

both_backends!(malformed_keys_are_422_naming_the_header);
async fn malformed_keys_are_422_naming_the_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("keys").await;
    let long = "k".repeat(256);
    for key in ["", "has space", long.as_str(), "tab\there"] {
        let reply = post_keyed(&app, "/api/v1/tasks", Some(&token), key, r#"{"title":"x"}"#).await;
        assert_eq!(reply.invalid_fields(), ["Idempotency-Key"], "key {key:?}");
    }
    let non_ascii = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("obs-text"),
        )
        .json(&json!({"title": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        TestApp::read(non_ascii).await.invalid_fields(),
        ["Idempotency-Key"]
    );
    let twice = app
        .client
        .post(app.url("/api/v1/tasks"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(
        TestApp::read(twice).await.invalid_fields(),
        ["Idempotency-Key"]
    );
    let register = post_keyed(
        &app,
        "/api/v1/auth/register",
        None,
        "",
        &json!({"name": "N", "email": unique_email("n"), "password": PASSWORD}).to_string(),
    )
    .await;
    assert_eq!(register.invalid_fields(), ["Idempotency-Key"]);
    let longest = "k".repeat(255);
    let ok = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        &longest,
        r#"{"title":"x"}"#,
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
    assert_eq!(task_count(&app, &token).await, 1);
}

/// Makes every stored key look `age` old.
async fn age_keys(app: &TestApp, age: Duration) {
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::CreatedAt,
            Expr::value(taskapi::validate::now() - age),
        )
        .filter(sea_orm::Condition::all())
        .exec(&app.state.db)
        .await
        .expect("age keys");
}

both_backends!(expired_keys_are_ignored_then_purged_in_bounded_batches);
async fn expired_keys_are_ignored_then_purged_in_bounded_batches(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("expiry").await;
    for key in ["e-1", "e-2", "e-3"] {
        let reply = post_keyed(&app, "/api/v1/tasks", Some(&token), key, r#"{"title":"t"}"#).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    let now = taskapi::validate::now();
    // Fresh keys survive a purge at the retention cutoff.
    let purged = idempotency::purge_expired(&app.state.db, now - idempotency::RETENTION, 10, 10)
        .await
        .expect("purge");
    assert_eq!(purged, 0);
    assert_eq!(key_rows(&app).await, 3);
    age_keys(&app, idempotency::RETENTION + Duration::minutes(1)).await;
    // An expired key is forgotten even before the purge: another body is a new request.
    let reused = post_keyed(
        &app,
        "/api/v1/tasks",
        Some(&token),
        "e-1",
        r#"{"title":"new"}"#,
    )
    .await;
    assert_eq!(reused.status, StatusCode::CREATED, "{}", reused.text);
    assert_eq!(reused.header("idempotent-replayed"), None);
    assert_eq!(task_count(&app, &token).await, 4);
    // Two expired rows remain (e-1 was replaced by a fresh one); one batch of one deletes one.
    let cutoff = taskapi::validate::now() - idempotency::RETENTION;
    let purged = idempotency::purge_expired(&app.state.db, cutoff, 1, 1)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    let purged = idempotency::purge_expired(&app.state.db, cutoff, 1, 10)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(key_rows(&app).await, 1, "only the fresh key is left");
    let remaining: Vec<Value> = idempotency_key::Entity::find()
        .all(&app.state.db)
        .await
        .expect("rows")
        .into_iter()
        .map(|row| Value::String(row.idempotency_key))
        .collect();
    assert_eq!(remaining, [json!("e-1")]);
}

/// The spec tells clients about both features: the key parameter and the replay header on
/// both creates, and the cursor parameter and `next_cursor` on the listing.
#[tokio::test]
async fn spec_documents_keys_replays_and_cursors() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = app.get("/apidocs/openapi.json", None).await.body;
    for path in ["/api/v1/tasks", "/api/v1/auth/register"] {
        let post = &spec["paths"][path]["post"];
        let key = post["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path} documents Idempotency-Key"));
        assert_eq!(key["in"], "header");
        assert_eq!(key["schema"]["pattern"], "^[!-~]{1,255}$");
        assert!(
            post["responses"]["201"]["headers"]["Idempotent-Replayed"].is_object(),
            "{path} documents the replay header"
        );
        assert!(post["responses"]["422"].is_object());
    }
    assert!(spec["paths"]["/api/v1/tasks"]["post"]["responses"]["409"].is_object());
    let list = &spec["paths"]["/api/v1/tasks"]["get"];
    assert!(
        list["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "cursor" && p["in"] == "query")
    );
    let reference = list["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .expect("page schema reference");
    let name = reference.rsplit('/').next().expect("schema name");
    let page = &spec["components"]["schemas"][name]["properties"];
    assert!(page["next_cursor"].is_object(), "{page}");
}

// Project, label and comment creates take `Idempotency-Key` as task creates do: one
// resource per key and body, a replay with `Idempotent-Replayed: true`, another body a 422,
// racing duplicates one resource; a label's or comment's key is bound to its parent.
both_backends!(project_label_and_comment_creates_are_idempotent);
async fn project_label_and_comment_creates_are_idempotent(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("teamlead").await;
    let first = post_keyed(
        &app,
        "/api/v1/projects",
        Some(&token),
        "p-1",
        r#"{"name": "Launch"}"#,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let project = first.body["id"].as_str().expect("id").to_string();
    let other = app
        .post("/api/v1/projects", Some(&token), json!({"name": "Other"}))
        .await;
    let other = other.body["id"].as_str().expect("id").to_string();
    let task = app
        .create_task(&token, json!({"title": "t", "project_id": project}))
        .await;
    let task = task["id"].as_str().expect("id").to_string();
    let labels = format!("/api/v1/projects/{project}/labels");
    let comments = format!("/api/v1/tasks/{task}/comments");
    for (path, body, other_body) in [
        (
            "/api/v1/projects".to_string(),
            r#"{"name": "Launch"}"#,
            r#"{"name": "Other"}"#,
        ),
        (
            labels.clone(),
            r#"{"name": "Bug"}"#,
            r#"{"name": "Feature"}"#,
        ),
        (
            comments.clone(),
            r#"{"body": "once"}"#,
            r#"{"body": "twice"}"#,
        ),
    ] {
        let key = format!("k-{path}");
        let created = post_keyed(&app, &path, Some(&token), &key, body).await;
        assert_eq!(
            created.status,
            StatusCode::CREATED,
            "{path}: {}",
            created.text
        );
        assert!(created.header("idempotent-replayed").is_none());
        // Racing retries and a later one all get the first response back.
        let (a, b) = tokio::join!(
            post_keyed(&app, &path, Some(&token), &key, body),
            post_keyed(&app, &path, Some(&token), &key, body),
        );
        for replay in [
            a,
            b,
            post_keyed(&app, &path, Some(&token), &key, body).await,
        ] {
            assert_eq!(
                replay.status,
                StatusCode::CREATED,
                "{path}: {}",
                replay.text
            );
            assert_eq!(replay.header("idempotent-replayed"), Some("true"), "{path}");
            assert_eq!(replay.text, created.text, "{path}");
            assert_eq!(replay.header("location"), created.header("location"));
            assert_eq!(replay.header("etag"), created.header("etag"));
        }
        let reused = post_keyed(&app, &path, Some(&token), &key, other_body).await;
        assert_eq!(reused.invalid_fields(), ["Idempotency-Key"], "{path}");
    }
    // One of each was made.
    let projects = app.get("/api/v1/projects", Some(&token)).await;
    let named_launch = projects.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["name"] == "Launch")
        .count();
    assert_eq!(
        named_launch, 2,
        "the keyed create with `p-1` and the loop's one"
    );
    let listed = app.get(&labels, Some(&token)).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let thread = app.get(&comments, Some(&token)).await;
    assert_eq!(thread.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.get(&task_path(&task), Some(&token)).await.body["comment_count"],
        1
    );
    // The same key and body on another project is another request: refused, not replayed.
    let elsewhere = post_keyed(
        &app,
        &format!("/api/v1/projects/{other}/labels"),
        Some(&token),
        &format!("k-{labels}"),
        r#"{"name": "Bug"}"#,
    )
    .await;
    assert_eq!(elsewhere.invalid_fields(), ["Idempotency-Key"]);
    // A replay is only shown to someone who may still create there: a member removed from
    // the project gets its 404, not the stored label or comment.
    let (member_token, _, member_email) = app.new_user("member").await;
    let added = app
        .post(
            &format!("/api/v1/projects/{project}/members"),
            Some(&token),
            json!({"email": member_email, "role": "admin"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let member_id = added.body["user_id"]
        .as_str()
        .expect("member id")
        .to_string();
    for (path, body) in [
        (&labels, r#"{"name": "Theirs"}"#),
        (&comments, r#"{"body": "theirs"}"#),
    ] {
        let created = post_keyed(&app, path, Some(&member_token), "m-1", body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    }
    let removed = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/projects/{project}/members/{member_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.text);
    for (path, body) in [
        (&labels, r#"{"name": "Theirs"}"#),
        (&comments, r#"{"body": "theirs"}"#),
    ] {
        let replay = post_keyed(&app, path, Some(&member_token), "m-1", body).await;
        replay.problem(404);
    }
    // A failed create leaves its key free: a 409 duplicate, then a corrected retry.
    let duplicate = post_keyed(&app, &labels, Some(&token), "dup", r#"{"name": "BUG"}"#).await;
    duplicate.problem(409);
    let corrected = post_keyed(&app, &labels, Some(&token), "dup", r#"{"name": "Bugs"}"#).await;
    assert_eq!(corrected.status, StatusCode::CREATED, "{}", corrected.text);
}
