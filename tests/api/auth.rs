use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, PASSWORD, both_backends, spawn_app, unique_email};

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("object").keys().cloned().collect()
}

const USER_KEYS: [&str; 6] = ["active", "created_at", "email", "id", "name", "role"];

both_backends!(register_returns_the_user_without_any_secret);
async fn register_returns_the_user_without_any_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    let reply = app
        .register("Ada", " Ada.Lovelace@Example.COM ", PASSWORD)
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text);
    assert_eq!(
        keys(&reply.body),
        USER_KEYS.iter().map(|s| s.to_string()).collect()
    );
    assert_eq!(reply.body["email"], "ada.lovelace@example.com");
    assert_eq!(reply.body["name"], "Ada");
    assert!(!reply.text.contains("argon2"));
    assert!(!reply.text.contains(PASSWORD));
    let id = reply.body["id"].as_str().expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(id).expect("uuid").get_version_num(),
        7
    );
    assert!(reply.header("location").is_some_and(|l| l.ends_with(id)));
    // The stored hash is argon2id, never the password.
    let stored = app
        .count("SELECT COUNT(*) AS n FROM users WHERE password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%'")
        .await;
    assert_eq!(stored, 1);
}

both_backends!(first_user_is_admin_and_later_users_are_not);
async fn first_user_is_admin_and_later_users_are_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app
        .register("First", &unique_email("first"), PASSWORD)
        .await;
    let second = app
        .register("Second", &unique_email("second"), PASSWORD)
        .await;
    assert_eq!(first.body["role"], "admin");
    assert_eq!(second.body["role"], "user");
}

both_backends!(simultaneous_first_registrations_make_exactly_one_admin);
async fn simultaneous_first_registrations_make_exactly_one_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let attempts = (0..8).map(|i| {
        let app = &app;
        async move {
            app.register(&format!("racer{i}"), &unique_email("racer"), PASSWORD)
                .await
        }
    });
    let replies = futures::future::join_all(attempts).await;
    assert!(replies.iter().all(|r| r.status == StatusCode::CREATED));
    let admins = replies.iter().filter(|r| r.body["role"] == "admin").count();
    assert_eq!(admins, 1);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin'")
            .await,
        1
    );
}

both_backends!(duplicate_email_is_a_conflict_regardless_of_case);
async fn duplicate_email_is_a_conflict_regardless_of_case(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("dup");
    assert_eq!(
        app.register("One", &email, PASSWORD).await.status,
        StatusCode::CREATED
    );
    let again = app.register("Two", &email.to_uppercase(), PASSWORD).await;
    again.problem(409);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users").await, 1);
}

both_backends!(registration_validation_lists_each_bad_field);
async fn registration_validation_lists_each_bad_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases = [
        (
            json!({"name": "", "email": "a@b.co", "password": PASSWORD}),
            vec!["name"],
        ),
        (
            json!({"name": "n".repeat(101), "email": "a@b.co", "password": PASSWORD}),
            vec!["name"],
        ),
        (
            json!({"name": "ok", "email": "not-an-email", "password": PASSWORD}),
            vec!["email"],
        ),
        (
            json!({"name": "ok", "email": "a@b.co", "password": "1234567"}),
            vec!["password"],
        ),
        (
            json!({"name": "ok", "email": "a@b.co", "password": "p".repeat(129)}),
            vec!["password"],
        ),
        (
            json!({"name": " ", "email": "x", "password": "y"}),
            vec!["name", "email", "password"],
        ),
    ];
    for (body, fields) in cases {
        let reply = app.post("/api/v1/auth/register", None, body.clone()).await;
        assert_eq!(reply.invalid_fields(), fields, "{body}");
    }
    // Boundary values are accepted.
    let ok = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"name": "n".repeat(100), "email": unique_email("edge"), "password": "p".repeat(128)}),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users").await, 1);
}

both_backends!(role_and_unknown_fields_in_register_are_rejected_not_honoured);
async fn role_and_unknown_fields_in_register_are_rejected_not_honoured(backend: Backend) {
    let app = spawn_app(backend).await;
    // Take the admin seat first so a smuggled role would be visible.
    app.new_user("owner").await;
    for extra in [
        json!({"role": "admin"}),
        json!({"is_admin": true}),
        json!({"id": "00000000-0000-0000-0000-000000000000"}),
    ] {
        let mut body =
            json!({"name": "Mallory", "email": unique_email("mallory"), "password": PASSWORD});
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        let reply = app.post("/api/v1/auth/register", None, body).await;
        reply.problem(422);
    }
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM users").await, 1);
    // Missing fields are a 422 too.
    app.post("/api/v1/auth/register", None, json!({"email": "a@b.co"}))
        .await
        .problem(422);
}

both_backends!(login_returns_bearer_token_with_pinned_claims);
async fn login_returns_bearer_token_with_pinned_claims(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("login");
    app.register("Login", &email, PASSWORD).await;
    let reply = app.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 900);
    assert_eq!(
        keys(&reply.body["user"]),
        USER_KEYS.iter().map(|s| s.to_string()).collect()
    );
    let token = reply.body["access_token"].as_str().expect("token");
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let decode = |part: &str| -> Value {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    };
    assert_eq!(decode(parts[0])["alg"], "HS256");
    let claims = decode(parts[1]);
    for claim in ["sub", "role", "iat", "exp", "iss", "aud", "jti"] {
        assert!(!claims[claim].is_null(), "claim {claim} missing: {claims}");
    }
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        900
    );
    assert_eq!(claims["sub"], reply.body["user"]["id"]);
}

both_backends!(unknown_email_and_wrong_password_are_indistinguishable);
async fn unknown_email_and_wrong_password_are_indistinguishable(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email("victim");
    app.register("Victim", &email, PASSWORD).await;
    let wrong_password = app.login(&email, "not the password").await;
    let unknown_email = app.login(&unique_email("ghost"), "not the password").await;
    wrong_password.problem(401);
    unknown_email.problem(401);
    assert_eq!(wrong_password.body, unknown_email.body);
    assert_eq!(wrong_password.header("www-authenticate"), Some("Bearer"));
    assert_eq!(unknown_email.header("www-authenticate"), Some("Bearer"));
}

both_backends!(login_validates_its_body);
async fn login_validates_its_body(backend: Backend) {
    let app = spawn_app(backend).await;
    app.post("/api/v1/auth/login", None, json!({"email": "a@b.co"}))
        .await
        .problem(422);
    app.post(
        "/api/v1/auth/login",
        None,
        json!({"email": "a@b.co", "password": "x", "role": "admin"}),
    )
    .await
    .problem(422);
}
