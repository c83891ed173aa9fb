//! What is stored is what was meant: dates in and out (RFC 3339, years 1-9999,
//! microseconds), hidden and confusable characters refused, concurrent writers never a
//! 500, stale refresh tokens purged in bounded batches. On both databases where storage
//! is involved.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    Backend, PASSWORD, Reply, TestApp, both_backends, spawn_app, spawn_app_with, task_path,
    unique_email,
};

const BACKENDS: [Backend; 2] = [Backend::Postgres, Backend::Sqlite];
// ---------------------------------------------------------------------------------------
// RFC 3339 in and out, years 0001-9999 in UTC, microseconds.

const OUT_OF_RANGE: [&str; 7] = [
    "-4714-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-10:00",
    "0001-01-01T00:30:00+01:00",
    "0000-06-01T00:00:00Z",
    "2030-01-01 00:00:00Z",
];

#[tokio::test]
async fn dates_outside_years_1_to_9999_are_422_naming_the_field() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("dates").await;
        let task = app.create_task(&token, json!({"title": "Dated"})).await;
        let path = task_path(task["id"].as_str().expect("id"));
        for raw in OUT_OF_RANGE {
            let created = app
                .post(
                    "/api/v1/tasks",
                    Some(&token),
                    json!({"title": "t", "due_date": raw}),
                )
                .await;
            assert_eq!(created.invalid_fields(), ["due_date"], "{backend:?} {raw}");
            for method in [Method::PUT, Method::PATCH] {
                let changed = app
                    .request(
                        method.clone(),
                        &path,
                        Some(&token),
                        Some(json!({"title": "t", "due_date": raw})),
                    )
                    .await;
                assert_eq!(changed.invalid_fields(), ["due_date"], "{method} {raw}");
            }
            for param in ["due_before", "due_after"] {
                let query = form_urlencoded(param, raw);
                let listed = app
                    .get(&format!("/api/v1/tasks?{query}"), Some(&token))
                    .await;
                assert_eq!(listed.invalid_fields(), [param], "{backend:?} {raw}");
            }
        }
        // Nothing was stored by the refused writes.
        assert_eq!(app.get(&path, Some(&token)).await.body["version"], 1);
    }
}

fn form_urlencoded(key: &str, value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b':' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("{key}={out}")
}

#[tokio::test]
async fn dates_round_trip_at_microsecond_precision_on_both_databases() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("micro").await;
        let cases = [
            (
                "2030-01-01T00:00:00.123456789Z",
                "2030-01-01T00:00:00.123456Z",
            ),
            ("2030-01-01T02:00:00.5+02:00", "2030-01-01T00:00:00.500Z"),
            ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
            (
                "9999-12-31T23:59:59.9999999Z",
                "9999-12-31T23:59:59.999999Z",
            ),
            ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59Z"),
            // A leap second folds into the next minute, as PostgreSQL itself does.
            ("2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"),
            ("2030-06-01t12:00:00z", "2030-06-01T12:00:00Z"),
        ];
        for (sent, expected) in cases {
            let task = app
                .create_task(&token, json!({"title": sent, "due_date": sent}))
                .await;
            assert_eq!(task["due_date"], expected, "{backend:?} {sent}");
            let path = task_path(task["id"].as_str().expect("id"));
            let fetched = app.get(&path, Some(&token)).await;
            assert_eq!(fetched.body["due_date"], expected, "{backend:?} {sent}");
            // Server-set timestamps have the same precision as the stored ones.
            for field in ["created_at", "updated_at"] {
                let value = fetched.body[field].as_str().expect("timestamp");
                let digits = value
                    .split_once('.')
                    .map_or(0, |(_, frac)| frac.trim_end_matches('Z').len());
                assert!(digits <= 6, "{backend:?} {field} {value}");
                assert_eq!(task[field], fetched.body[field], "{backend:?} {field}");
            }
        }
    }
}

#[tokio::test]
async fn extreme_dates_filter_and_sort_the_same_on_both_databases() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (token, _, _) = app.new_user("extremes").await;
        for (title, due) in [
            ("last", "9999-12-31T23:59:59.999999Z"),
            ("first", "0001-01-01T00:00:00Z"),
            ("fraction", "2030-01-01T00:00:00.5Z"),
            ("whole", "2030-01-01T00:00:00Z"),
            ("later fraction", "2030-01-01T00:00:00.500001Z"),
        ] {
            app.create_task(&token, json!({"title": title, "due_date": due}))
                .await;
        }
        let titles = |reply: Reply| -> Vec<String> {
            reply.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|t| t["title"].as_str().expect("title").to_string())
                .collect()
        };
        let sorted = app.get("/api/v1/tasks?sort=due_date", Some(&token)).await;
        assert_eq!(
            titles(sorted),
            ["first", "whole", "fraction", "later fraction", "last"],
            "{backend:?}"
        );
        let before = app
            .get(
                "/api/v1/tasks?due_before=2000-01-01T00:00:00Z",
                Some(&token),
            )
            .await;
        assert_eq!(titles(before), ["first"], "{backend:?}");
        let after = app
            .get(
                "/api/v1/tasks?due_after=2030-01-01T00:00:00.5Z&sort=due_date",
                Some(&token),
            )
            .await;
        assert_eq!(titles(after), ["later fraction", "last"], "{backend:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Hidden and confusable characters.

both_backends!(invisible_and_confusable_characters_are_rejected);
async fn invisible_and_confusable_characters_are_rejected(backend: Backend) {
    let app = spawn_app(backend).await;
    let (token, _, _) = app.new_user("unicode").await;
    for (name, email) in [
        ("Ad\u{200b}min", unique_email("zwsp")),
        ("txt.exe\u{202e}", unique_email("rlo")),
        ("Mallory", format!("ad\u{200b}min-{}", unique_email("x"))),
        ("Mallory", format!("a\u{2066}b-{}", unique_email("x"))),
    ] {
        let reply = app.register(name, &email, PASSWORD).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name:?} {email:?}"
        );
    }
    // Latin word with a Cyrillic "а": in a name, and in an email domain.
    let spoofed_name = app
        .register("P\u{0430}ypal Support", &unique_email("mixed"), PASSWORD)
        .await;
    assert_eq!(spoofed_name.invalid_fields(), ["name"]);
    let spoofed_email = app
        .register("Mallory", "support@p\u{0430}ypal.com", PASSWORD)
        .await;
    assert_eq!(spoofed_email.invalid_fields(), ["email"]);
    // Titles and profile names, through every write path.
    let reply = app
        .post(
            "/api/v1/tasks",
            Some(&token),
            json!({"title": "Pay\u{200d}ment"}),
        )
        .await;
    assert_eq!(reply.invalid_fields(), ["title"]);
    let task = app.create_task(&token, json!({"title": "Fine"})).await;
    let path = task_path(task["id"].as_str().expect("id"));
    let patched = app
        .patch(&path, Some(&token), json!({"title": "\u{2067}evil"}))
        .await;
    assert_eq!(patched.invalid_fields(), ["title"]);
    let renamed = app
        .patch(
            "/api/v1/auth/me",
            Some(&token),
            json!({"name": "Bob\u{feff}\u{2060}"}),
        )
        .await;
    assert_eq!(renamed.invalid_fields(), ["name"]);
    // Legitimate non-Latin and mixed-language text still works.
    let fine = app
        .register("Анна Karenina", &unique_email("anna"), PASSWORD)
        .await;
    assert_eq!(fine.status, StatusCode::CREATED, "{}", fine.text);
    app.create_task(&token, json!({"title": "Café ❤\u{fe0f} Ελλάδα"}))
        .await;
}

// ---------------------------------------------------------------------------------------
// Concurrency on SQLite, deadlocks on PostgreSQL: never a 500.

#[tokio::test]
async fn concurrent_refreshes_of_one_token_on_sqlite_never_fail_with_500() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    let (_, _, email) = app.new_user("racer").await;
    for round in 0..3 {
        let login = app.login(&email, PASSWORD).await;
        let refresh = login.body["refresh_token"].as_str().expect("r").to_string();
        let replies = futures::future::join_all((0..16).map(|_| app.refresh(&refresh))).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status.as_u16()).collect();
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "round {round}: {statuses:?} {:?}",
            replies
                .iter()
                .find(|r| r.status.is_server_error())
                .map(|r| &r.text)
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn admins_demoting_each_other_on_two_replicas_never_get_500() {
    use taskapi::startup::Application;

    // PostgreSQL only: replicas share one PostgreSQL; SQLite deployments are one process.
    let app = spawn_app(Backend::Postgres).await;
    // A second replica on the same PostgreSQL database: the in-process admin lock of one
    // replica cannot serialise it against the other; only the database can.
    let url = app.state.settings.database_url();
    let replica = Application::build(crate::helpers::test_settings(url))
        .await
        .expect("replica");
    let replica_url = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until(std::future::pending()));

    let (_, mut admin_id, mut admin_email) = app.new_user("first").await;
    let (_, mut other_id, mut other_email) = app.new_user("second").await;
    let token_of = |email: String| {
        let app = &app;
        async move {
            app.login(&email, PASSWORD).await.body["access_token"]
                .as_str()
                .expect("token")
                .to_string()
        }
    };
    for round in 0..6 {
        let admin = token_of(admin_email.clone()).await;
        let promote = app
            .patch(
                &format!("/api/v1/admin/users/{other_id}"),
                Some(&admin),
                json!({"role": "admin"}),
            )
            .await;
        assert_eq!(promote.status, StatusCode::OK, "{}", promote.text);
        let other = token_of(other_email.clone()).await;
        // Each demotes the other at the same moment, through different replicas.
        let demote_other = app
            .client
            .patch(app.url(&format!("/api/v1/admin/users/{other_id}")))
            .bearer_auth(&admin)
            .json(&json!({"role": "user"}))
            .send();
        let demote_admin = app
            .client
            .patch(format!("{replica_url}/api/v1/admin/users/{admin_id}"))
            .bearer_auth(&other)
            .json(&json!({"role": "user"}))
            .send();
        let (a, b) = tokio::join!(demote_other, demote_admin);
        let a = TestApp::read(a.expect("a")).await;
        let b = TestApp::read(b.expect("b")).await;
        for reply in [&a, &b] {
            assert!(
                matches!(reply.status.as_u16(), 200 | 401 | 403 | 409 | 503),
                "round {round}: {} {}",
                reply.status,
                reply.text
            );
        }
        // Exactly one admin is left, whoever won.
        let admins = app
            .count("SELECT COUNT(*) AS n FROM users WHERE role = 'admin' AND active")
            .await;
        assert_eq!(admins, 1, "round {round}: {} / {}", a.text, b.text);
        let admin_kept = app
            .count(&format!(
                "SELECT COUNT(*) AS n FROM users WHERE id = '{admin_id}' AND role = 'admin'"
            ))
            .await
            == 1;
        if !admin_kept {
            std::mem::swap(&mut admin_id, &mut other_id);
            std::mem::swap(&mut admin_email, &mut other_email);
        }
    }
}

/// Two transactions lock one row each, then each other's: PostgreSQL aborts one (40P01).
async fn deadlock(
    db: &sea_orm::DatabaseConnection,
    a: &str,
    b: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let touch_a = format!("UPDATE users SET name = name WHERE id = '{a}'");
    let touch_b = format!("UPDATE users SET name = name WHERE id = '{b}'");
    let t1 = db.begin().await?;
    let t2 = db.begin().await?;
    t1.execute_unprepared(&touch_a).await?;
    t2.execute_unprepared(&touch_b).await?;
    let (r1, r2) = tokio::join!(
        t1.execute_unprepared(&touch_b),
        t2.execute_unprepared(&touch_a)
    );
    r1?;
    r2?;
    Ok(())
}

#[tokio::test]
async fn a_postgres_deadlock_is_a_503_problem_not_a_500() {
    use taskapi::error::AppError;
    use taskapi::models::txn;

    let app = spawn_app(Backend::Postgres).await;
    let (_, first, _) = app.new_user("lock-a").await;
    let (_, second, _) = app.new_user("lock-b").await;
    let err = deadlock(&app.state.db, &first, &second)
        .await
        .expect_err("one of the two is the deadlock victim");
    assert!(taskapi::error::is_contention(&err), "{err}");
    assert_eq!(
        AppError::from(err).status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    // The retry helper runs the whole transaction again after such a loss.
    let mut attempts = 0;
    let outcome = txn::retrying(|| {
        attempts += 1;
        let lose = attempts == 1;
        let (db, first, second) = (app.state.db.clone(), first.clone(), second.clone());
        async move {
            if lose {
                deadlock(&db, &first, &second).await?;
            }
            Ok::<_, sea_orm::DbErr>("done")
        }
    })
    .await;
    assert_eq!(outcome.expect("second attempt succeeds"), "done");
    assert_eq!(attempts, 2);
}

// ---------------------------------------------------------------------------------------
// Stale refresh-token rows are purged in bounded batches.

#[tokio::test]
async fn stale_refresh_tokens_are_purged_in_bounded_batches() {
    use chrono::Duration;
    use taskapi::models::sessions;
    use taskapi::validate;

    for backend in BACKENDS {
        let app = spawn_app_with(backend, |_| {}).await;
        let (_, _, email) = app.new_user("purge").await;
        // Live sessions: one fresh, one rotated (its spent row must stay for reuse detection).
        let live = app.login(&email, PASSWORD).await;
        let spent = live.body["refresh_token"].as_str().expect("r").to_string();
        assert_eq!(app.refresh(&spent).await.status, StatusCode::OK);
        // Stale ones: logged out (revoked) sessions.
        for _ in 0..5 {
            let login = app.login(&email, PASSWORD).await;
            let token = login.body["refresh_token"].as_str().expect("r").to_string();
            assert_eq!(app.logout(&token).await.status, StatusCode::NO_CONTENT);
        }
        // new_user's own login session, the live pair, and 5 revoked.
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM refresh_tokens").await,
            8
        );
        let later = validate::now() + Duration::seconds(1);
        // Batches of 2, at most 2 batches: 4 of the 5 revoked rows go.
        let purged = sessions::purge_stale(&app.state.db, later, 2, 2)
            .await
            .expect("purge");
        assert_eq!(purged, 4, "{backend:?}");
        let purged = sessions::purge_stale(&app.state.db, later, 2, 2)
            .await
            .expect("purge");
        assert_eq!(purged, 1, "{backend:?}");
        assert_eq!(
            app.count("SELECT COUNT(*) AS n FROM refresh_tokens").await,
            3
        );
        // The spent token is still recognised as reuse, and the live one still works.
        assert_eq!(app.refresh(&spent).await.status, StatusCode::UNAUTHORIZED);
        // Nothing newer than the cutoff is ever deleted.
        let none =
            sessions::purge_stale(&app.state.db, validate::now() - Duration::days(1), 100, 5)
                .await
                .expect("purge");
        assert_eq!(none, 0);
    }
}
