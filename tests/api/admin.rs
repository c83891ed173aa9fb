use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, both_backends, spawn_app};

fn admin_routes(id: &str) -> Vec<(Method, String, Option<serde_json::Value>)> {
    vec![
        (Method::GET, "/api/v1/admin/users".into(), None),
        (Method::GET, format!("/api/v1/admin/users/{id}"), None),
        (
            Method::PATCH,
            format!("/api/v1/admin/users/{id}"),
            Some(json!({"role": "admin"})),
        ),
        (Method::DELETE, format!("/api/v1/admin/users/{id}"), None),
    ]
}

both_backends!(admin_routes_need_a_token_and_the_admin_role);
async fn admin_routes_need_a_token_and_the_admin_role(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_admin, admin_id, _) = app.new_user("root").await;
    let (user, user_id, _) = app.new_user("pleb").await;
    for (method, path, body) in admin_routes(&admin_id) {
        let anonymous = app.request(method.clone(), &path, None, body.clone()).await;
        anonymous.problem(401);
        assert_eq!(anonymous.header("www-authenticate"), Some("Bearer"));
        app.request(method, &path, Some(&user), body)
            .await
            .problem(403);
    }
    // The user did not promote themself, and the admin still exists.
    let roles = app
        .count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
        .await;
    assert_eq!(roles, 1);
    let me = app.get("/api/v1/auth/me", Some(&user)).await;
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["id"], user_id.as_str());
}

both_backends!(admin_lists_and_reads_users_with_pagination);
async fn admin_lists_and_reads_users_with_pagination(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id, _) = app.new_user("root").await;
    for i in 0..4 {
        app.new_user(&format!("member{i}")).await;
    }
    let page = app.get("/api/v1/admin/users?limit=2", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.body["total"], 5);
    assert_eq!(page.body["items"].as_array().expect("items").len(), 2);
    assert_eq!(page.body["items"][0]["id"], admin_id.as_str());
    assert!(!page.text.contains("password"));
    assert!(!page.text.contains("argon2"));
    let rest = app
        .get("/api/v1/admin/users?limit=2&offset=4", Some(&admin))
        .await;
    assert_eq!(rest.body["items"].as_array().expect("items").len(), 1);
    for query in ["limit=0", "limit=101", "offset=-1", "role=admin"] {
        app.get(&format!("/api/v1/admin/users?{query}"), Some(&admin))
            .await
            .problem(422);
    }
    let one = app
        .get(&format!("/api/v1/admin/users/{admin_id}"), Some(&admin))
        .await;
    assert_eq!(one.body["role"], "admin");
    app.get(
        &format!("/api/v1/admin/users/{}", uuid::Uuid::now_v7()),
        Some(&admin),
    )
    .await
    .problem(404);
    app.get("/api/v1/admin/users/not-a-uuid", Some(&admin))
        .await
        .problem(404);
}

both_backends!(admin_changes_roles_and_the_change_takes_effect);
async fn admin_changes_roles_and_the_change_takes_effect(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _, _) = app.new_user("root").await;
    let (user, user_id, email) = app.new_user("promotee").await;
    let path = format!("/api/v1/admin/users/{user_id}");
    let promoted = app
        .patch(&path, Some(&admin), json!({"role": "admin"}))
        .await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    assert_eq!(promoted.body["role"], "admin");
    // The old token carried the old role; it no longer works.
    app.get("/api/v1/admin/users", Some(&user))
        .await
        .problem(401);
    let login = app.login(&email, crate::helpers::PASSWORD).await;
    let fresh = login.body["access_token"].as_str().expect("token");
    assert_eq!(
        app.get("/api/v1/admin/users", Some(fresh)).await.status,
        StatusCode::OK
    );
    for bad in [
        json!({"role": "superuser"}),
        json!({"email": "x@y.z"}),
        json!({"password_hash": "x"}),
        json!({"role": 1}),
    ] {
        app.patch(&path, Some(&admin), bad).await.problem(422);
    }
    app.patch(
        &format!("/api/v1/admin/users/{}", uuid::Uuid::now_v7()),
        Some(&admin),
        json!({"role": "user"}),
    )
    .await
    .problem(404);
}

both_backends!(the_last_admin_can_be_neither_demoted_nor_deleted);
async fn the_last_admin_can_be_neither_demoted_nor_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, admin_id, _) = app.new_user("root").await;
    let path = format!("/api/v1/admin/users/{admin_id}");
    app.patch(&path, Some(&admin), json!({"role": "user"}))
        .await
        .problem(409);
    app.patch(&path, Some(&admin), json!({"active": false}))
        .await
        .problem(409);
    app.request(Method::DELETE, &path, Some(&admin), None)
        .await
        .problem(409);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
            .await,
        1
    );

    // With a second admin, the first may step down.
    let (_, second_id, second_email) = app.new_user("deputy").await;
    let promoted = app
        .patch(
            &format!("/api/v1/admin/users/{second_id}"),
            Some(&admin),
            json!({"role": "admin"}),
        )
        .await;
    assert_eq!(promoted.status, StatusCode::OK);
    let demoted = app
        .patch(&path, Some(&admin), json!({"role": "user"}))
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let deputy = app.login(&second_email, crate::helpers::PASSWORD).await;
    let deputy = deputy.body["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    app.request(
        Method::DELETE,
        &format!("/api/v1/admin/users/{second_id}"),
        Some(&deputy),
        None,
    )
    .await
    .problem(409);
}

async fn demote(app: &TestApp, token: &str, target: &str) -> crate::helpers::Reply {
    let path = format!("/api/v1/admin/users/{target}");
    app.patch(&path, Some(token), json!({"role": "user"})).await
}

async fn token(app: &TestApp, email: &str) -> String {
    let login = app.login(email, crate::helpers::PASSWORD).await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text);
    login.body["access_token"]
        .as_str()
        .expect("token")
        .to_string()
}

/// Two admins, `(id, email)` each, demote each other at the same moment, the first through
/// `via_first` and the second through `via_second`. Exactly one demotion wins; the other
/// is refused cleanly (its token was revoked by the winner, its target became the last
/// admin, or the database chose it as the deadlock victim: 503, retry), never a 500.
/// Returns the admin left standing.
async fn mutual_demotion<'a>(
    via_first: &TestApp,
    via_second: &TestApp,
    first: (&'a str, &'a str),
    second: (&'a str, &'a str),
) -> (&'a str, &'a str) {
    let first_token = token(via_first, first.1).await;
    let promoted = set_role(via_first, &first_token, second.0, "admin").await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.text);
    let second_token = token(via_second, second.1).await;
    let (a, b) = tokio::join!(
        demote(via_first, &first_token, second.0),
        demote(via_second, &second_token, first.0)
    );
    let statuses = [a.status.as_u16(), b.status.as_u16()];
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}: {} / {}",
        a.text,
        b.text
    );
    let loser = if a.status == StatusCode::OK { &b } else { &a };
    assert!(
        matches!(loser.status.as_u16(), 401 | 403 | 409 | 503),
        "{}: {}",
        loser.status,
        loser.text
    );
    loser.problem(loser.status.as_u16());
    assert_eq!(
        via_first
            .count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
            .await,
        1
    );
    if a.status == StatusCode::OK {
        first
    } else {
        second
    }
}

async fn set_role(app: &TestApp, token: &str, target: &str, role: &str) -> crate::helpers::Reply {
    app.patch(
        &format!("/api/v1/admin/users/{target}"),
        Some(token),
        json!({ "role": role }),
    )
    .await
}

both_backends!(concurrent_mutual_demotion_leaves_an_admin);
/// On one server the in-process admin lock serialises the two demotions; on SQLite (one
/// process by design) that lock is the whole guard.
async fn concurrent_mutual_demotion_leaves_an_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, first_id, first_email) = app.new_user("a1").await;
    let (_, second_id, second_email) = app.new_user("a2").await;
    mutual_demotion(
        &app,
        &app,
        (&first_id, &first_email),
        (&second_id, &second_email),
    )
    .await;
}

/// PostgreSQL only: two replicas on one database, where each server's in-process lock
/// sees only its own request and the database's row locks must decide. (SQLite
/// deployments are a single process, so there is no second server to race.)
#[tokio::test]
async fn mutual_demotion_through_two_replicas_leaves_an_admin() {
    let app = spawn_app(Backend::Postgres).await;
    let replica = app.spawn_replica(|_| {}).await;
    let (_, first_id, first_email) = app.new_user("r1").await;
    let (_, second_id, second_email) = app.new_user("r2").await;
    let (mut admin, mut other) = ((&*first_id, &*first_email), (&*second_id, &*second_email));
    // A few rounds, alternating which server carries which admin's request.
    for round in 0..4 {
        let (via_first, via_second) = if round % 2 == 0 {
            (&app, &replica)
        } else {
            (&replica, &app)
        };
        if mutual_demotion(via_first, via_second, admin, other).await != admin {
            std::mem::swap(&mut admin, &mut other);
        }
    }
}

both_backends!(deleting_a_user_deletes_their_tasks);
async fn deleting_a_user_deletes_their_tasks(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _, _) = app.new_user("root").await;
    let (user, user_id, email) = app.new_user("leaver").await;
    let (keeper, _, _) = app.new_user("keeper").await;
    for i in 0..3 {
        app.create_task(&user, json!({"title": format!("t{i}")}))
            .await;
    }
    app.create_task(&keeper, json!({"title": "stays"})).await;
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM tasks").await, 1);
    app.get(&format!("/api/v1/admin/users/{user_id}"), Some(&admin))
        .await
        .problem(404);
    app.login(&email, crate::helpers::PASSWORD)
        .await
        .problem(401);
    app.request(
        Method::DELETE,
        &format!("/api/v1/admin/users/{user_id}"),
        Some(&admin),
        None,
    )
    .await
    .problem(404);
}

both_backends!(deactivated_users_cannot_log_in_or_use_tokens);
async fn deactivated_users_cannot_log_in_or_use_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _, _) = app.new_user("root").await;
    let (user, user_id, email) = app.new_user("paused").await;
    let path = format!("/api/v1/admin/users/{user_id}");
    let off = app
        .patch(&path, Some(&admin), json!({"active": false}))
        .await;
    assert_eq!(off.body["active"], false);
    app.get("/api/v1/tasks", Some(&user)).await.problem(401);
    let login = app.login(&email, crate::helpers::PASSWORD).await;
    login.problem(401);
    assert_eq!(login.body, app.login(&email, "wrong password").await.body);
    app.patch(&path, Some(&admin), json!({"active": true}))
        .await;
    assert_eq!(
        app.login(&email, crate::helpers::PASSWORD).await.status,
        StatusCode::OK
    );
}
