//! The OpenAPI document: every route, body, status and security requirement, the same
//! from the server and from `taskapi openapi`. None of this touches stored data, so the
//! server runs on SQLite: these checks never need (or start) PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TempDir, TestApp, spawn_app};

/// (method, path, protected, has body, statuses that must be documented)
const ROUTES: &[(&str, &str, bool, bool, &[&str])] = &[
    (
        "post",
        "/api/v1/auth/register",
        false,
        true,
        &["201", "409", "422", "429"],
    ),
    (
        "post",
        "/api/v1/auth/login",
        false,
        true,
        &["200", "401", "422", "429"],
    ),
    ("post", "/api/v1/auth/refresh", false, true, &["200", "401"]),
    ("post", "/api/v1/auth/logout", false, true, &["204"]),
    (
        "post",
        "/api/v1/auth/logout-all",
        true,
        false,
        &["204", "401"],
    ),
    ("get", "/api/v1/auth/me", true, false, &["200", "401"]),
    (
        "patch",
        "/api/v1/auth/me",
        true,
        true,
        &["200", "401", "422"],
    ),
    (
        "post",
        "/api/v1/auth/password",
        true,
        true,
        &["204", "401", "422"],
    ),
    ("get", "/api/v1/tasks", true, false, &["200", "401", "422"]),
    ("get", "/api/v1/projects", true, false, &["200", "401"]),
    (
        "post",
        "/api/v1/projects",
        true,
        true,
        &["201", "401", "422"],
    ),
    (
        "get",
        "/api/v1/projects/{id}",
        true,
        false,
        &["200", "401", "404"],
    ),
    (
        "patch",
        "/api/v1/projects/{id}",
        true,
        true,
        &["200", "401", "403", "404", "409", "412", "422"],
    ),
    (
        "delete",
        "/api/v1/projects/{id}",
        true,
        false,
        &["204", "401", "403", "404", "409", "412"],
    ),
    (
        "get",
        "/api/v1/projects/{id}/tasks",
        true,
        false,
        &["200", "401", "404", "422"],
    ),
    (
        "get",
        "/api/v1/projects/{id}/members",
        true,
        false,
        &["200", "401", "404"],
    ),
    (
        "post",
        "/api/v1/projects/{id}/members",
        true,
        true,
        &["201", "401", "403", "404", "409", "422"],
    ),
    (
        "patch",
        "/api/v1/projects/{id}/members/{user_id}",
        true,
        true,
        &["200", "401", "403", "404", "409", "422"],
    ),
    (
        "delete",
        "/api/v1/projects/{id}/members/{user_id}",
        true,
        false,
        &["204", "401", "403", "404", "409"],
    ),
    (
        "get",
        "/api/v1/projects/{id}/labels",
        true,
        false,
        &["200", "401", "404"],
    ),
    (
        "post",
        "/api/v1/projects/{id}/labels",
        true,
        true,
        &["201", "401", "403", "404", "409", "422"],
    ),
    (
        "patch",
        "/api/v1/projects/{id}/labels/{label_id}",
        true,
        true,
        &["200", "401", "403", "404", "409", "412", "422"],
    ),
    (
        "delete",
        "/api/v1/projects/{id}/labels/{label_id}",
        true,
        false,
        &["204", "401", "403", "404"],
    ),
    (
        "get",
        "/api/v1/tasks/{id}/comments",
        true,
        false,
        &["200", "401", "404", "422"],
    ),
    (
        "post",
        "/api/v1/tasks/{id}/comments",
        true,
        true,
        &["201", "401", "403", "404", "422"],
    ),
    (
        "patch",
        "/api/v1/tasks/{id}/comments/{comment_id}",
        true,
        true,
        &["200", "401", "403", "404", "412", "422"],
    ),
    (
        "delete",
        "/api/v1/tasks/{id}/comments/{comment_id}",
        true,
        false,
        &["204", "401", "403", "404"],
    ),
    (
        "get",
        "/api/v1/tasks/events",
        true,
        false,
        &["200", "401", "429"],
    ),
    (
        "post",
        "/api/v1/tasks",
        true,
        true,
        &["201", "400", "401", "413", "415", "422"],
    ),
    (
        "get",
        "/api/v1/tasks/{id}",
        true,
        false,
        &["200", "304", "401", "404"],
    ),
    (
        "put",
        "/api/v1/tasks/{id}",
        true,
        true,
        &["200", "401", "404", "412", "422"],
    ),
    (
        "patch",
        "/api/v1/tasks/{id}",
        true,
        true,
        &["200", "401", "404", "412", "422"],
    ),
    (
        "delete",
        "/api/v1/tasks/{id}",
        true,
        false,
        &["204", "401", "404", "412"],
    ),
    (
        "get",
        "/api/v1/admin/users",
        true,
        false,
        &["200", "401", "403", "422"],
    ),
    (
        "get",
        "/api/v1/admin/users/{id}",
        true,
        false,
        &["200", "401", "403", "404"],
    ),
    (
        "patch",
        "/api/v1/admin/users/{id}",
        true,
        true,
        &["200", "401", "403", "404", "409", "422"],
    ),
    (
        "delete",
        "/api/v1/admin/users/{id}",
        true,
        false,
        &["204", "401", "403", "404", "409"],
    ),
    ("get", "/health/live", false, false, &["200"]),
    ("get", "/health/ready", false, false, &["200", "503"]),
];

#[tokio::test]
async fn spec_documents_every_route_body_status_and_security() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = app.get("/apidocs/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let spec = &reply.body;
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3."))
    );
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path, protected, has_body, statuses) in ROUTES {
        let op = &spec["paths"][path][method];
        assert!(op.is_object(), "{method} {path} missing from the spec");
        if *has_body {
            assert_eq!(
                op["requestBody"]["required"], true,
                "{method} {path} body not required"
            );
            assert!(op["requestBody"]["content"]["application/json"].is_object());
        }
        let security = op["security"]
            .as_array()
            .map(|s| !s.is_empty())
            .unwrap_or(false);
        assert_eq!(security, *protected, "{method} {path} security");
        for status in *statuses {
            assert!(
                op["responses"][status].is_object(),
                "{method} {path} lacks {status}"
            );
        }
        for (status, response) in op["responses"].as_object().expect("responses") {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object()
                        || *path == "/health/ready",
                    "{method} {path} {status} not problem+json"
                );
            }
        }
    }
    // Every /api/v1 path in the spec is one we know and test.
    let documented: Vec<&String> = spec["paths"].as_object().expect("paths").keys().collect();
    for path in documented {
        assert!(
            ROUTES.iter().any(|(_, p, ..)| p == path),
            "undocumented-in-tests route {path}"
        );
    }
    let schemas = &spec["components"]["schemas"];
    let user_props: Vec<&String> = schemas["User"]["properties"]
        .as_object()
        .expect("User schema")
        .keys()
        .collect();
    assert!(!user_props.iter().any(|p| p.contains("password")));
    // A due date is a nullable date-time wherever a client sends one: the wrapped form
    // (`allOf[oneOf[null, …]]`) became an empty object model in openapi-python-client.
    for request in ["CreateTaskRequest", "UpdateTaskRequest"] {
        let due = &schemas[request]["properties"]["due_date"];
        assert!(due.get("allOf").is_none(), "{request}.due_date: {due}");
        assert_eq!(due["format"], "date-time", "{request}.due_date: {due}");
    }
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = spawn_app(Backend::Sqlite).await;
    let reply = app.get("/apidocs", None).await;
    let ui = if reply.status.is_redirection() {
        app.get("/apidocs/", None).await
    } else {
        reply
    };
    assert_eq!(ui.status, StatusCode::OK);
    assert!(ui.text.to_lowercase().contains("swagger"));
}

/// The document `taskapi openapi` prints (for client generators and CI) is the one the
/// server serves: every path, every method, every schema.
#[tokio::test]
async fn openapi_subcommand_prints_the_same_paths() {
    // An empty working directory and environment: a developer's `.env` must not matter.
    let dir =
        std::env::temp_dir().join(format!("taskapi-openapi-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let dir = TempDir(dir);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_taskapi"))
        .arg("openapi")
        .env_clear()
        .current_dir(&dir.0)
        .output()
        .expect("run taskapi openapi");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed: Value = serde_json::from_slice(&output.stdout).expect("json");
    let app = spawn_app(Backend::Sqlite).await;
    let served = app.get("/apidocs/openapi.json", None).await;
    assert_eq!(served.status, StatusCode::OK);
    let paths = |spec: &Value| -> Vec<(String, Vec<String>)> {
        spec["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(path, item)| {
                let methods = item.as_object().expect("path item").keys().cloned();
                (path.clone(), methods.collect())
            })
            .collect()
    };
    // Listed first so that a difference reads as a route list, not a JSON dump.
    assert_eq!(paths(&printed), paths(&served.body));
    // And it is the full list this file knows, not an empty or partial document.
    let known: std::collections::BTreeSet<&str> = ROUTES.iter().map(|(_, p, ..)| *p).collect();
    let printed_paths: std::collections::BTreeSet<&str> = printed["paths"]
        .as_object()
        .expect("paths")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(printed_paths, known);
    // Then operation by operation and schema by schema, so a difference names its place.
    for (path, methods) in paths(&printed) {
        for method in methods {
            assert_eq!(
                printed["paths"][&path][&method], served.body["paths"][&path][&method],
                "{method} {path} differs"
            );
        }
    }
    let components = |spec: &Value| -> Vec<String> {
        spec["components"]
            .as_object()
            .expect("components")
            .iter()
            .flat_map(|(kind, items)| {
                let names = items.as_object().expect("component map").keys();
                names.map(move |name| format!("{kind}/{name}"))
            })
            .collect()
    };
    assert_eq!(components(&printed), components(&served.body));
    for name in components(&printed) {
        let (kind, name) = name.split_once('/').expect("kind/name");
        assert_eq!(
            printed["components"][kind][name], served.body["components"][kind][name],
            "component {kind}/{name} differs"
        );
    }
    assert_eq!(
        printed, served.body,
        "the documents differ outside paths and components"
    );
}

// The document declares every header the server reads or sends.

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

/// Clients are generated from this document (#28): every operation has a summary and a
/// unique camelCase `operationId` named for what it does, and no operation id, schema
/// name or reference leaks a Rust path (`::`, `.`, the crate's name).
#[tokio::test]
async fn names_in_the_spec_are_clean_for_generated_clients() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = spec(&app).await;
    let leaks = |name: &str| name.contains("::") || name.contains('.') || name.contains("taskapi");
    let mut ids = std::collections::HashSet::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, op) in operations.as_object().expect("operations") {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                panic!("{method} {path} has no operationId");
            };
            assert!(!leaks(id), "{method} {path}: operationId {id}");
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric()),
                "{method} {path}: operationId {id} is not camelCase"
            );
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            assert!(
                op.get("summary")
                    .and_then(Value::as_str)
                    .is_some_and(|summary| !summary.trim().is_empty()),
                "{method} {path} has no summary"
            );
        }
    }
    for name in doc["components"]["schemas"]
        .as_object()
        .expect("schemas")
        .keys()
    {
        assert!(!leaks(name), "schema name {name}");
    }
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let target = reference.split('"').next().unwrap_or_default();
        let name = target.trim_start_matches("#/components/schemas/");
        assert!(!leaks(name), "reference {target}");
    }
    for expected in [
        "listTasks",
        "createTask",
        "getTask",
        "updateTask",
        "replaceTask",
        "deleteTask",
        "streamTaskEvents",
        "login",
        "refreshToken",
        "listUsers",
    ] {
        assert!(ids.contains(expected), "no operation {expected}");
    }
}
