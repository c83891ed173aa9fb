//! The embedded SQLite back end runs the same migrations and serves every route.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, PASSWORD, spawn_app_with, task_path, unique_email};

#[tokio::test]
async fn every_route_works_on_sqlite() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    assert_eq!(app.get("/health/ready", None).await.status, StatusCode::OK);
    let (admin, admin_id, _) = app.new_user("root").await;
    let email = unique_email("sqlite");
    let user = app.register("Lite", &email, PASSWORD).await;
    assert_eq!(user.body["role"], "user");
    let user_id = user.body["id"].as_str().expect("id").to_string();
    let login = app.login(&email, PASSWORD).await;
    let token = login.body["access_token"].as_str().expect("a").to_string();
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();

    let task = app
        .create_task(
            &token,
            json!({"title": "On SQLite", "due_date": "2027-05-01T08:00:00Z", "priority": "high"}),
        )
        .await;
    let path = task_path(task["id"].as_str().expect("id"));
    assert_eq!(app.get(&path, Some(&token)).await.body, task);
    let listed = app
        .get(
            "/api/v1/tasks?q=sqlite&due_after=2027-01-01T00:00:00Z&sort=-priority",
            Some(&token),
        )
        .await;
    assert_eq!(listed.body["total"], 1);
    let put = app
        .request(
            Method::PUT,
            &path,
            Some(&token),
            Some(json!({"title": "Replaced", "description": "d"})),
        )
        .await;
    assert_eq!(put.body["priority"], "medium");
    let patched = app
        .patch(&path, Some(&token), json!({"status": "done"}))
        .await;
    assert_eq!(patched.body["version"], 3);
    app.get(&path, Some(&admin)).await.problem(404);
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&token), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let rotated = app.refresh(&refresh).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let token = rotated.body["access_token"]
        .as_str()
        .expect("a")
        .to_string();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&token)).await.body["id"],
        user_id.as_str()
    );

    assert_eq!(
        app.get("/api/v1/admin/users", Some(&admin)).await.body["total"],
        2
    );
    let promoted = app
        .patch(
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(promoted.body["role"], "admin");
    app.patch(
        &format!("/api/v1/admin/users/{admin_id}"),
        Some(&admin),
        json!({"role": "user"}),
    )
    .await;
    let fresh = app.login(&email, PASSWORD).await;
    let new_admin = fresh.body["access_token"].as_str().expect("a").to_string();
    app.request(
        Method::DELETE,
        &format!("/api/v1/admin/users/{user_id}"),
        Some(&new_admin),
        None,
    )
    .await
    .problem(409);
    let gone = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/users/{admin_id}"),
            Some(&new_admin),
            None,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn concurrent_writes_on_sqlite_all_land() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (token, _, _) = app.new_user("writer").await;
    let writes = (0..40).map(|i| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post(
                "/api/v1/tasks",
                Some(&token),
                json!({"title": format!("w{i}")}),
            )
            .await
        }
    });
    let replies = futures::future::join_all(writes).await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        40,
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 40);
}
