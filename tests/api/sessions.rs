//! Account security: refresh rotation and reuse detection, logout variants, revocation,
//! self-service and abuse limits.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, both_backends, spawn_app, spawn_app_with, task_path, unique_email,
};

both_backends!(refresh_rotates_and_reuse_revokes_the_family);
async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("rotor");
    app.register("Rotor", &email, PASSWORD).await;
    let login = app.login(&email, PASSWORD).await;
    let first = login.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert!(first.len() >= 43, "at least 256 bits");
    // Stored only as a hash.
    let stored = app
        .count(&format!(
            "SELECT COUNT(*) AS n FROM refresh_tokens WHERE token_hash = '{first}'"
        ))
        .await;
    assert_eq!(stored, 0);

    let rotated = app.refresh(&first).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    let second = rotated.body["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_string();
    assert_ne!(second, first);
    let access = rotated.body["access_token"]
        .as_str()
        .expect("access")
        .to_string();
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&access)).await.status,
        StatusCode::OK
    );

    // Replaying the spent token is theft: it fails and kills the newer token too.
    app.refresh(&first).await.problem(401);
    app.refresh(&second).await.problem(401);
    // Another login is a separate family and is unaffected.
    let other = app.login(&email, PASSWORD).await;
    let third = other.body["refresh_token"].as_str().expect("refresh");
    let ok = app.refresh(third).await;
    assert_eq!(ok.status, StatusCode::OK);
    for bad in [
        json!({"refresh_token": "garbage"}),
        json!({"refresh_token": ""}),
    ] {
        app.post("/api/v1/auth/refresh", None, bad)
            .await
            .problem(401);
    }
    app.post("/api/v1/auth/refresh", None, json!({}))
        .await
        .problem(422);
}

both_backends!(logout_revokes_one_session_and_logout_all_revokes_everything);
async fn logout_revokes_one_session_and_logout_all_revokes_everything(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("leaver");
    app.register("Leaver", &email, PASSWORD).await;
    let phone = app.login(&email, PASSWORD).await;
    let laptop = app.login(&email, PASSWORD).await;
    let phone_refresh = phone.body["refresh_token"].as_str().expect("r").to_string();
    let laptop_refresh = laptop.body["refresh_token"]
        .as_str()
        .expect("r")
        .to_string();
    let laptop_access = laptop.body["access_token"].as_str().expect("a").to_string();

    let out = app.logout(&phone_refresh).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    app.refresh(&phone_refresh).await.problem(401);
    // Idempotent and silent for unknown tokens.
    let again = app
        .post(
            "/api/v1/auth/logout",
            None,
            json!({"refresh_token": "unknown"}),
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    // The laptop session lives on.
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&laptop_access))
            .await
            .status,
        StatusCode::OK
    );

    app.request(Method::POST, "/api/v1/auth/logout-all", None, None)
        .await
        .problem(401);
    let all = app.logout_all(&laptop_access).await;
    assert_eq!(all.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/auth/me", Some(&laptop_access))
        .await
        .problem(401);
    app.refresh(&laptop_refresh).await.problem(401);
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
}

both_backends!(me_and_profile_update);
async fn me_and_profile_update(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, id, email) = app.new_user("self").await;
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.body["id"], id.as_str());
    assert_eq!(me.body["email"], email.as_str());
    let renamed = app
        .patch(
            "/api/v1/auth/me",
            Some(&token),
            json!({"name": "  New Name "}),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "New Name");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x", "role": "admin"}),
        json!({"email": "a@b.co"}),
    ] {
        app.patch("/api/v1/auth/me", Some(&token), bad)
            .await
            .problem(422);
    }
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&token)).await.body["role"],
        "admin"
    );
    app.get("/api/v1/auth/me", None).await.problem(401);
}

both_backends!(password_change_requires_the_current_one_and_revokes_sessions);
async fn password_change_requires_the_current_one_and_revokes_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("changer");
    app.register("Changer", &email, PASSWORD).await;
    let login = app.login(&email, PASSWORD).await;
    let access = login.body["access_token"].as_str().expect("a").to_string();
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    let wrong = app
        .post(
            "/api/v1/auth/password",
            Some(&access),
            json!({"current_password": "nope nope", "new_password": "brand new password"}),
        )
        .await;
    wrong.problem(403);
    let short = app
        .post(
            "/api/v1/auth/password",
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": "short"}),
        )
        .await;
    assert_eq!(short.invalid_fields(), vec!["new_password"]);
    let changed = app
        .post(
            "/api/v1/auth/password",
            Some(&access),
            json!({"current_password": PASSWORD, "new_password": "brand new password"}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);
    app.get("/api/v1/auth/me", Some(&access)).await.problem(401);
    app.refresh(&refresh).await.problem(401);
    app.login(&email, PASSWORD).await.problem(401);
    assert_eq!(
        app.login(&email, "brand new password").await.status,
        StatusCode::OK
    );
}

both_backends!(per_ip_limit_answers_429_with_retry_after);
async fn per_ip_limit_answers_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.auth_per_ip_per_minute = 3).await;
    for _ in 0..3 {
        let reply = app.login("nobody@example.com", "whatever-password").await;
        reply.problem(401);
        assert!(reply.header("ratelimit-limit").is_some());
    }
    let limited = app.login("nobody@example.com", "whatever-password").await;
    limited.problem(429);
    let retry: u64 = limited
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry));
    // Registration shares the per-IP budget.
    app.register("x", &unique_email("x"), PASSWORD)
        .await
        .problem(429);
    // Other routes are not affected.
    assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
}

both_backends!(per_user_limit_answers_429);
async fn per_user_limit_answers_429(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.limits.per_user_per_minute = 5).await;
    let (token, _, _) = app.new_user("busy").await;
    for _ in 0..5 {
        assert_eq!(
            app.get("/api/v1/tasks", Some(&token)).await.status,
            StatusCode::OK
        );
    }
    let limited = app.get("/api/v1/tasks", Some(&token)).await;
    limited.problem(429);
    assert!(limited.header("retry-after").is_some());
    // Someone else is unaffected.
    let (other, _, _) = app.new_user("calm").await;
    assert_eq!(
        app.get("/api/v1/tasks", Some(&other)).await.status,
        StatusCode::OK
    );
}

both_backends!(repeated_failures_lock_the_account_for_this_client_then_expire);
async fn repeated_failures_lock_the_account_for_this_client_then_expire(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.limits.login_failures_before_lock = 3;
        s.limits.login_lock_base_secs = 2;
        s.limits.login_lock_max_secs = 4;
    })
    .await;
    let email = unique_email("target");
    app.register("Target", &email, PASSWORD).await;
    let ghost = unique_email("ghost");
    for _ in 0..3 {
        app.login(&email, "wrong password!").await.problem(401);
        app.login(&ghost, "wrong password!").await.problem(401);
    }
    // Locked, even with the right password, and the same answer for a non-existent
    // account: the lock reveals nothing about which emails exist.
    let locked = app.login(&email, PASSWORD).await;
    locked.problem(429);
    let ghost_locked = app.login(&ghost, PASSWORD).await;
    ghost_locked.problem(429);
    assert_eq!(locked.body["type"], ghost_locked.body["type"]);
    assert!(locked.header("retry-after").is_some());
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
}

both_backends!(attacker_walkthrough);
async fn attacker_walkthrough(backend: Backend) {
    // Mallory registers, tries to escalate, probes Alice's data and replays tokens.
    let app = spawn_app(backend).await;
    let (alice, alice_id, _) = app.new_user("alice").await;
    let secret = app
        .create_task(&alice, json!({"title": "launch codes"}))
        .await;
    let email = unique_email("mallory");
    let smuggled = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"name": "M", "email": email, "password": PASSWORD, "role": "admin"}),
        )
        .await;
    smuggled.problem(422);
    app.register("M", &email, PASSWORD).await;
    let login = app.login(&email, PASSWORD).await;
    let token = login.body["access_token"].as_str().expect("a").to_string();
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    assert_eq!(login.body["user"]["role"], "user");
    let path = task_path(secret["id"].as_str().expect("id"));
    app.get(&path, Some(&token)).await.problem(404);
    app.get("/api/v1/admin/users", Some(&token))
        .await
        .problem(403);
    app.patch(
        &format!("/api/v1/admin/users/{alice_id}"),
        Some(&token),
        json!({"role": "user"}),
    )
    .await
    .problem(403);
    app.patch(
        "/api/v1/auth/me",
        Some(&token),
        json!({"name": "M", "role": "admin"}),
    )
    .await
    .problem(422);
    // Stolen refresh token used twice: the family dies, and the thief's rotation too.
    let stolen = app.refresh(&refresh).await;
    assert_eq!(stolen.status, StatusCode::OK);
    app.refresh(&refresh).await.problem(401);
    let thief = stolen.body["refresh_token"].as_str().expect("r");
    app.refresh(thief).await.problem(401);
    let alice_view = app.get(&path, Some(&alice)).await;
    assert_eq!(alice_view.body, secret);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
            .await,
        1
    );
}

/// Every refresh token row of this test's database expires now (as if its lifetime had
/// passed): set through the entity, so it works the same on both databases.
async fn expire_all_refresh_tokens(app: &crate::helpers::TestApp) {
    use sea_orm::EntityTrait;
    use sea_orm::sea_query::Expr;
    use taskapi::entities::refresh_token;
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::ExpiresAt, Expr::value(past))
        .exec(&app.state.db)
        .await
        .expect("expire refresh tokens");
}

both_backends!(an_expired_refresh_token_is_refused_without_revoking_anything);
/// An expired refresh token is an ordinary 401: not theft, so the access token of the
/// same login keeps working and a new login starts a working session.
async fn an_expired_refresh_token_is_refused_without_revoking_anything(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, email) = app.new_user("expiring").await;
    let login = app.login(&email, PASSWORD).await;
    let access = login.body["access_token"].as_str().expect("a").to_string();
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    expire_all_refresh_tokens(&app).await;
    let refused = app.refresh(&refresh).await;
    refused.problem(401);
    assert_eq!(refused.header("www-authenticate"), Some("Bearer"));
    // Refused again the same way, not mistaken for a reused (spent) token.
    app.refresh(&refresh).await.problem(401);
    assert_eq!(
        app.get("/api/v1/auth/me", Some(&access)).await.status,
        StatusCode::OK
    );
    let again = app.login(&email, PASSWORD).await;
    let fresh = again.body["refresh_token"].as_str().expect("r");
    assert_eq!(app.refresh(fresh).await.status, StatusCode::OK);
}

both_backends!(a_deactivated_user_cannot_refresh);
/// Deactivation ends every session; and should a session outlive it (the flag set
/// directly in the database, without the revocation the API does), refresh still checks
/// the account and refuses.
async fn a_deactivated_user_cannot_refresh(backend: Backend) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    use taskapi::entities::user;

    let app = spawn_app(backend).await;
    let (admin, _, _) = app.new_user("root").await;
    let (_, user_id, email) = app.new_user("sleeper").await;
    let login = app.login(&email, PASSWORD).await;
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    let path = format!("/api/v1/admin/users/{user_id}");
    let off = app
        .patch(&path, Some(&admin), json!({"active": false}))
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    app.refresh(&refresh).await.problem(401);
    // Reactivated, the account needs a new login: the old session stays dead.
    let on = app
        .patch(&path, Some(&admin), json!({"active": true}))
        .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.text);
    app.refresh(&refresh).await.problem(401);

    // A live session, then the flag alone flips (no session revocation).
    let login = app.login(&email, PASSWORD).await;
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    let id = uuid::Uuid::parse_str(&user_id).expect("uuid");
    user::Entity::update_many()
        .col_expr(user::Column::Active, Expr::value(false))
        .filter(user::Column::Id.eq(id))
        .exec(&app.state.db)
        .await
        .expect("deactivate directly");
    app.refresh(&refresh).await.problem(401);
}

both_backends!(two_refreshes_of_one_token_at_once_yield_one_new_session_then_revoke_it);
/// The same refresh token presented twice at once (two tabs, a retried request): exactly
/// one gets the new pair, the other a 401, never a 500. The second presentation is a
/// spent token coming back, which reuse detection cannot tell from theft, so the family
/// dies, including the winner's new refresh token.
async fn two_refreshes_of_one_token_at_once_yield_one_new_session_then_revoke_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let (_, _, email) = app.new_user("twins").await;
    let login = app.login(&email, PASSWORD).await;
    let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
    let (a, b) = tokio::join!(app.refresh(&refresh), app.refresh(&refresh));
    let (winner, loser) = if a.status == StatusCode::OK {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(winner.status, StatusCode::OK, "{}", winner.text);
    loser.problem(401);
    let rotated = winner.body["refresh_token"].as_str().expect("r");
    assert_ne!(rotated, refresh);
    app.refresh(rotated).await.problem(401);
    app.refresh(&refresh).await.problem(401);
    // A new login is unaffected.
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
}

both_backends!(profile_and_password_changes_need_a_valid_token);
/// PATCH /auth/me and POST /auth/password without a token, with a malformed or forged
/// one, and with one revoked by logout-all: 401 problems with `WWW-Authenticate`, and
/// nothing changes.
async fn profile_and_password_changes_need_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, email) = app.new_user("guarded").await;
    let revoked = app.login(&email, PASSWORD).await.body["access_token"]
        .as_str()
        .expect("a")
        .to_string();
    let forged = {
        // Right claims, wrong key.
        let parts: Vec<&str> = token.split('.').collect();
        format!("{}.{}.{}", parts[0], parts[1], "A".repeat(43))
    };
    let out = app.logout_all(&revoked).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    // logout-all revoked every access token of the account: log in again for a live one.
    let token = app.login(&email, PASSWORD).await.body["access_token"]
        .as_str()
        .expect("a")
        .to_string();
    assert_ne!(token, revoked);

    let rename = json!({"name": "Hijacked"});
    let change = json!({"current_password": PASSWORD, "new_password": "hijacked password"});
    for bad in [
        None,
        Some("garbage"),
        Some(forged.as_str()),
        Some(revoked.as_str()),
    ] {
        for (method, path, body) in [
            (Method::PATCH, "/api/v1/auth/me", &rename),
            (Method::POST, "/api/v1/auth/password", &change),
        ] {
            let reply = app
                .request(method.clone(), path, bad, Some(body.clone()))
                .await;
            reply.problem(401);
            assert_eq!(
                reply.header("www-authenticate"),
                Some("Bearer"),
                "{method} {path}"
            );
        }
    }
    let me = app.get("/api/v1/auth/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.body["name"], "guarded");
    assert_eq!(app.login(&email, PASSWORD).await.status, StatusCode::OK);
    app.login(&email, "hijacked password").await.problem(401);
}
