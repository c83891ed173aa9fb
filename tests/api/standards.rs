//! Issue #16 items 3 and 6: `q` matches the same rows on PostgreSQL and SQLite beyond ASCII
//! (Rust's Unicode lower case, stored folded copies, backfilled by a migration), and the
//! OpenAPI document declares every header the server reads or sends.

use reqwest::{Method, StatusCode};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, both_backends, spawn_app};

/// Titles of the caller's tasks matching `q`, sorted.
async fn search(app: &TestApp, token: &str, q: &str) -> Vec<String> {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/tasks"), [("q", q)]).expect("url");
    let reply = TestApp::read(
        app.client
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let mut titles: Vec<String> = reply.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|task| task["title"].as_str().expect("title").to_string())
        .collect();
    titles.sort();
    assert_eq!(reply.body["total"], titles.len(), "total agrees with items");
    titles
}

both_backends!(
    search_is_case_insensitive_beyond_ascii,
    search_follows_title_and_description_changes,
    migration_folds_rows_written_before_it,
);

async fn search_is_case_insensitive_beyond_ascii(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("fold").await;
    for (title, description) in [
        ("Äpfel kaufen", None),
        ("Birnen kaufen", Some("Nicht die ÄPFEL vergessen")),
        ("STRAẞE fegen", None),
        ("ΟΔΟΣ καθαρίζω", None),
        ("DİYARBAKIR gezisi", None),
        ("apples", Some("100%_pure")),
    ] {
        app.create_task(&token, json!({"title": title, "description": description}))
            .await;
    }
    let apples = ["Birnen kaufen", "Äpfel kaufen"];
    for q in ["äpfel", "ÄPFEL", "Äpfel", "äPfEl"] {
        assert_eq!(search(&app, &token, q).await, apples, "q={q}");
    }
    // ẞ folds to ß (no full case folding: `ss` is a different string).
    assert_eq!(search(&app, &token, "straße").await, ["STRAẞE fegen"]);
    assert_eq!(search(&app, &token, "STRASSE").await, Vec::<String>::new());
    // Final sigma: ς and σ are one letter, whatever the position.
    assert_eq!(search(&app, &token, "οδος").await, ["ΟΔΟΣ καθαρίζω"]);
    assert_eq!(search(&app, &token, "ΟΔΟΣ").await, ["ΟΔΟΣ καθαρίζω"]);
    assert_eq!(search(&app, &token, "ΚΑΘΑΡΊΖΩ").await, ["ΟΔΟΣ καθαρίζω"]);
    // No Turkish locale rules: İ folds to "i̇" (i + combining dot), I to i, ı stays ı.
    assert_eq!(
        search(&app, &token, "di̇yarbakir").await,
        ["DİYARBAKIR gezisi"]
    );
    assert_eq!(
        search(&app, &token, "diyarbakır").await,
        Vec::<String>::new()
    );
    // Wildcards stay literal.
    assert_eq!(search(&app, &token, "0%_P").await, ["apples"]);
    assert_eq!(search(&app, &token, "a_p").await, Vec::<String>::new());
}

async fn search_follows_title_and_description_changes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("refold").await;
    let task = app
        .create_task(&token, json!({"title": "Äpfel", "description": "Öl"}))
        .await;
    let path = format!("/api/v1/tasks/{}", task["id"].as_str().expect("id"));
    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(&token),
            Some(json!({"title": "Übung", "description": null})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.text);
    assert_eq!(search(&app, &token, "äpfel").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "öl").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "ÜBUNG").await, ["Übung"]);
    let replaced = app
        .request(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"title": "Plan", "description": "ZÜRICH"})),
        )
        .await;
    assert_eq!(replaced.status, StatusCode::OK, "{}", replaced.text);
    assert_eq!(search(&app, &token, "übung").await, Vec::<String>::new());
    assert_eq!(search(&app, &token, "zürich").await, ["Plan"]);
}

/// Rows an older binary wrote have no folded copies: the search still finds them by the
/// database's `lower()` (ASCII on SQLite), and re-running the migration folds them.
async fn migration_folds_rows_written_before_it(backend: Backend) {
    use migration::MigratorTrait;
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("backfill").await;
    for title in ["Äpfel kaufen", "Apples"] {
        app.create_task(&token, json!({"title": title, "description": "Grüße"}))
            .await;
    }
    let db = &app.state.db;
    db.execute_unprepared("UPDATE tasks SET title_search = NULL, description_search = NULL")
        .await
        .expect("forget folded copies");
    assert_eq!(search(&app, &token, "APPLES").await, ["Apples"]);

    // Back to just before the backfill migration (the later ones go down with it), then up.
    let steps = migration::Migrator::migrations()
        .iter()
        .rev()
        .position(|m| m.name().ends_with("_000004_task_search_text"))
        .expect("the backfill migration is listed")
        + 1;
    let steps = u32::try_from(steps).expect("few migrations");
    migration::Migrator::down(db, Some(steps))
        .await
        .expect("migration down");
    migration::Migrator::up(db, None)
        .await
        .expect("migration up");
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM tasks WHERE title_search IS NULL")
            .await,
        0
    );
    assert_eq!(search(&app, &token, "ÄPFEL").await, ["Äpfel kaufen"]);
    assert_eq!(search(&app, &token, "GRÜSSE").await, Vec::<String>::new());
    assert_eq!(
        search(&app, &token, "GRÜẞE").await,
        ["Apples", "Äpfel kaufen"]
    );
}

async fn spec(app: &TestApp) -> Value {
    let reply = app.get("/apidocs/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body
}

fn header_param<'a>(op: &'a Value, name: &str) -> Option<&'a Value> {
    op["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["in"] == "header" && p["name"] == name)
}

fn declares(op: &Value, status: &str, header: &str) -> bool {
    op["responses"][status]["headers"]
        .as_object()
        .is_some_and(|headers| headers.keys().any(|k| k.eq_ignore_ascii_case(header)))
}

#[tokio::test]
async fn spec_declares_conditional_request_headers_and_task_response_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = spec(&app).await;
    let item = &spec["paths"]["/api/v1/tasks/{id}"];
    let get = &item["get"];
    assert!(header_param(get, "If-None-Match").is_some(), "{get}");
    for status in ["200", "304"] {
        assert!(declares(get, status, "ETag"), "GET {status}");
    }
    for method in ["put", "patch", "delete"] {
        let op = &item[method];
        for name in ["If-Match", "If-None-Match"] {
            let param = header_param(op, name).unwrap_or_else(|| panic!("{method} {name}"));
            assert_ne!(param["required"], true, "{method} {name} is optional");
        }
        assert!(op["responses"]["412"].is_object(), "{method} 412");
    }
    for method in ["put", "patch"] {
        assert!(declares(&item[method], "200", "ETag"), "{method} 200 ETag");
    }
    let create = &spec["paths"]["/api/v1/tasks"]["post"];
    for header in ["Location", "ETag"] {
        assert!(declares(create, "201", header), "POST 201 {header}");
        assert_eq!(
            create["responses"]["201"]["headers"][header]["required"],
            true
        );
    }
    assert!(declares(
        &spec["paths"]["/api/v1/auth/register"]["post"],
        "201",
        "Location"
    ));
}

#[tokio::test]
async fn spec_declares_rate_limit_and_retry_after_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = spec(&app).await;
    let paths = spec["paths"].as_object().expect("paths");
    let mut rate_limited_ops = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            let Some(responses) = op["responses"].as_object() else {
                continue;
            };
            let bearer = op["security"].as_array().is_some_and(|s| !s.is_empty());
            for status in responses.keys() {
                let expect_limits = path.starts_with("/api/v1/") && !(bearer && status == "401");
                for header in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    assert_eq!(
                        declares(op, status, header),
                        expect_limits,
                        "{method} {path} {status} {header}"
                    );
                }
                if status == "429" || status == "503" {
                    assert!(
                        declares(op, status, "Retry-After"),
                        "{method} {path} {status} Retry-After"
                    );
                    assert_eq!(
                        op["responses"][status]["headers"]["Retry-After"]["schema"]["type"],
                        "integer"
                    );
                }
            }
            if path.starts_with("/api/v1/") {
                assert!(responses.contains_key("429"), "{method} {path} 429");
                rate_limited_ops += 1;
            }
        }
    }
    assert!(rate_limited_ops >= 17, "{rate_limited_ops}");
    assert!(declares(
        &spec["paths"]["/health/ready"]["get"],
        "503",
        "Retry-After"
    ));
}

/// What the server really sends is declared: every ETag, Location, RateLimit-* and
/// Retry-After header on a sample of real responses appears in the spec for that
/// operation and status.
#[tokio::test]
async fn headers_sent_are_headers_declared() {
    let app = spawn_app(Backend::Sqlite).await;
    let spec = spec(&app).await;
    let (token, _, _) = app.new_user("declared").await;
    let created = app
        .post("/api/v1/tasks", Some(&token), json!({"title": "t"}))
        .await;
    let id = created.body["id"].as_str().expect("id").to_string();
    let item = format!("/api/v1/tasks/{id}");
    let mut checked = vec![("post", "/api/v1/tasks", created)];
    let fetched = app.get(&item, Some(&token)).await;
    let etag = fetched.header("etag").expect("etag").to_string();
    checked.push(("get", "/api/v1/tasks/{id}", fetched));
    let not_modified = TestApp::read(
        app.client
            .get(app.url(&item))
            .bearer_auth(&token)
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    checked.push(("get", "/api/v1/tasks/{id}", not_modified));
    let stale = TestApp::read(
        app.client
            .patch(app.url(&item))
            .bearer_auth(&token)
            .header("if-match", "\"999\"")
            .json(&json!({"title": "u"}))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    checked.push(("patch", "/api/v1/tasks/{id}", stale));
    checked.push((
        "get",
        "/api/v1/tasks",
        app.get("/api/v1/tasks", Some(&token)).await,
    ));
    checked.push((
        "post",
        "/api/v1/auth/login",
        app.login("nobody@example.com", "wrong password!").await,
    ));
    let mut seen = 0;
    for (method, path, reply) in checked {
        let op = &spec["paths"][path][method];
        let status = reply.status.as_str().to_string();
        for header in [
            "etag",
            "location",
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "retry-after",
        ] {
            if reply.header(header).is_some() {
                seen += 1;
                assert!(
                    declares(op, &status, header),
                    "{method} {path} {status} sends {header} undeclared"
                );
            }
        }
    }
    assert!(seen >= 15, "{seen}");
}
