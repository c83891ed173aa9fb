//! Attacks on the bearer token: every variant must be a 401 problem with WWW-Authenticate.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, JWT_SECRET, TestApp, both_backends, spawn_app, spawn_app_with};

fn now() -> u64 {
    taskapi::auth::jwt::unix_now()
}

fn claims(sub: &str) -> Value {
    json!({
        "sub": sub, "role": "admin", "iat": now(), "exp": now() + 600,
        "iss": "taskapi", "aud": "taskapi", "jti": uuid::Uuid::now_v7(), "ver": 0
    })
}

fn sign(claims: &Value, algorithm: Algorithm, secret: &str) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode")
}

async fn assert_rejected(app: &TestApp, header: Option<String>) {
    let mut request = app.client.request(Method::GET, app.url("/api/v1/tasks"));
    if let Some(header) = &header {
        request = request.header("authorization", header);
    }
    let reply = TestApp::read(request.send().await.expect("send")).await;
    reply.problem(401);
    assert_eq!(
        reply.header("www-authenticate"),
        Some("Bearer"),
        "{header:?}"
    );
}

both_backends!(a_valid_token_works_and_every_forgery_fails);
async fn a_valid_token_works_and_every_forgery_fails(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, user_id, _) = app.new_user("holder").await;
    assert_eq!(
        app.get("/api/v1/tasks", Some(&token)).await.status,
        StatusCode::OK
    );

    // Our own secret and claims, signed correctly: accepted (proves the forgeries below
    // fail for the reason each one tests).
    let genuine = sign(&claims(&user_id), Algorithm::HS256, JWT_SECRET);
    assert_eq!(
        app.get("/api/v1/tasks", Some(&genuine)).await.status,
        StatusCode::OK
    );

    let mut forged = Vec::new();
    forged.push(None);
    forged.push(Some("Bearer".to_string()));
    forged.push(Some("Bearer ".to_string()));
    forged.push(Some(format!("Basic {token}")));
    forged.push(Some("Bearer not.a.jwt".to_string()));
    forged.push(Some(format!("Bearer {token}x")));

    // Tampered payload keeping the original signature.
    let parts: Vec<&str> = token.split('.').collect();
    let mut escalated = claims(&user_id);
    escalated["role"] = json!("admin");
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&escalated).expect("json"));
    forged.push(Some(format!("Bearer {}.{}.{}", parts[0], body, parts[2])));

    // alg: none, with and without a trailing signature.
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    forged.push(Some(format!("Bearer {none_header}.{body}.")));
    forged.push(Some(format!("Bearer {none_header}.{body}")));

    // Expired, wrong issuer, wrong audience, other secret, other HMAC algorithm.
    let mut expired = claims(&user_id);
    expired["iat"] = json!(now() - 7200);
    expired["exp"] = json!(now() - 3600);
    forged.push(Some(format!(
        "Bearer {}",
        sign(&expired, Algorithm::HS256, JWT_SECRET)
    )));
    let mut wrong_iss = claims(&user_id);
    wrong_iss["iss"] = json!("someone-else");
    forged.push(Some(format!(
        "Bearer {}",
        sign(&wrong_iss, Algorithm::HS256, JWT_SECRET)
    )));
    let mut wrong_aud = claims(&user_id);
    wrong_aud["aud"] = json!("another-api");
    forged.push(Some(format!(
        "Bearer {}",
        sign(&wrong_aud, Algorithm::HS256, JWT_SECRET)
    )));
    forged.push(Some(format!(
        "Bearer {}",
        sign(
            &claims(&user_id),
            Algorithm::HS256,
            "a-completely-different-secret-of-32-bytes!"
        )
    )));
    forged.push(Some(format!(
        "Bearer {}",
        sign(&claims(&user_id), Algorithm::HS512, JWT_SECRET)
    )));

    // Each required claim missing in turn.
    for missing in ["sub", "iat", "exp", "iss", "aud", "jti"] {
        let mut partial = claims(&user_id);
        partial.as_object_mut().expect("object").remove(missing);
        forged.push(Some(format!(
            "Bearer {}",
            sign(&partial, Algorithm::HS256, JWT_SECRET)
        )));
    }

    // A well-signed token for a user that does not exist.
    let ghost = sign(
        &claims(&uuid::Uuid::now_v7().to_string()),
        Algorithm::HS256,
        JWT_SECRET,
    );
    forged.push(Some(format!("Bearer {ghost}")));

    for header in forged {
        assert_rejected(&app, header).await;
    }
}

both_backends!(a_deleted_users_token_stops_working);
async fn a_deleted_users_token_stops_working(backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _, _) = app.new_user("admin").await;
    let (token, user_id, _) = app.new_user("doomed").await;
    assert_eq!(
        app.get("/api/v1/tasks", Some(&token)).await.status,
        StatusCode::OK
    );
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/v1/admin/users/{user_id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    app.get("/api/v1/tasks", Some(&token)).await.problem(401);
}

both_backends!(an_expired_token_from_a_short_lifetime_is_rejected);
async fn an_expired_token_from_a_short_lifetime_is_rejected(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.auth.access_token_ttl_secs = 1;
        s.auth.clock_skew_secs = 0;
    })
    .await;
    let (token, _, _) = app.new_user("brief").await;
    assert_eq!(
        app.get("/api/v1/tasks", Some(&token)).await.status,
        StatusCode::OK
    );
    // Expired once a whole second has passed its `exp` (whole seconds, no leeway here).
    crate::helpers::eventually(
        std::time::Duration::from_secs(5),
        "the token expired",
        async || app.get("/api/v1/tasks", Some(&token)).await.status == StatusCode::UNAUTHORIZED,
    )
    .await;
    app.get("/api/v1/tasks", Some(&token)).await.problem(401);
}
