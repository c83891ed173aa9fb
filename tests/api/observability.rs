//! What the service tells its operators stays bounded and honest: invented methods and
//! long paths cannot grow /metrics or the logs, probes and scrapes are not traffic, and
//! every counter family exists at zero before its first event.

//!
//! Each test reads a server process of its own ([`spawn_metrics_app`]): the metrics registry
//! is global to a process, so in the test process other tests' traffic would be in it.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, metric_value, spawn_metrics_app};

// ---------------------------------------------------------------------------------------
// Item 1: invented methods and long paths cannot grow /metrics or the logs.

#[tokio::test]
async fn invented_methods_share_one_label_and_logged_fields_are_capped() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_metrics_app(Backend::Sqlite).await;
    let invented = format!("BOGUS{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let method = Method::from_bytes(invented.as_bytes()).expect("method");
    let reply = app
        .client
        .request(method, app.url("/api/v1/tasks"))
        .send()
        .await
        .expect("send");
    assert!(reply.status().is_client_error());
    let metrics = app.metrics().await;
    assert!(
        !metrics.contains(&invented),
        "an invented method became a label"
    );
    assert_eq!(
        metric_value(&metrics, "http_requests_total", &[("method", "OTHER")]),
        Some(1.0),
        "the invented method is counted once, as OTHER"
    );

    let request_id = format!("cap-{}", uuid::Uuid::new_v4().simple());
    let long_path = format!("/api/v1/{}", "a".repeat(20_000));
    let reply = app
        .client
        .get(app.url(&long_path))
        .header("x-request-id", &request_id)
        .send()
        .await
        .expect("send");
    assert_eq!(reply.status(), StatusCode::NOT_FOUND);
    let line = app.completed_line(&request_id).await;
    let logged_path = line["path"].as_str().expect("path field");
    assert!(
        logged_path.len() < 400,
        "path logged at {} bytes",
        logged_path.len()
    );
    assert!(logged_path.starts_with("/api/v1/aaaa"));
    assert!(
        line.to_string().len() < 2_000,
        "one request wrote a huge log line"
    );
}

// ---------------------------------------------------------------------------------------
// Items 14 and 13: probes are not traffic; counters exist before their first event.

#[tokio::test]
async fn probes_and_scrapes_are_neither_counted_nor_logged_at_info() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_metrics_app(Backend::Sqlite).await;
    let probe_id = format!("probe-{}", uuid::Uuid::new_v4().simple());
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let reply = app
            .client
            .get(app.url(path))
            .header("x-request-id", &probe_id)
            .send()
            .await
            .expect("send");
        assert_eq!(reply.status(), StatusCode::OK);
    }
    // A later ordinary request: once its line is in the log, the probes' would be too.
    let marker = format!("marker-{}", uuid::Uuid::new_v4().simple());
    app.client
        .get(app.url("/api/v1/tasks"))
        .header("x-request-id", &marker)
        .send()
        .await
        .expect("send");
    app.completed_line(&marker).await;
    assert!(
        !app.log_lines()
            .iter()
            .any(|l| l["request_id"] == probe_id.as_str()),
        "probe requests logged at info"
    );
    let metrics = app.metrics().await;
    for route in ["/metrics", "/health/live", "/health/ready"] {
        assert_eq!(
            metric_value(&metrics, "http_requests_total", &[("route", route)]),
            None,
            "{route} counted as traffic"
        );
    }
    // The readiness polls at start-up, the probes and the scrapes were not counted; the
    // marker request was, and it is this process's only traffic.
    assert_eq!(
        metric_value(&metrics, "http_requests_total", &[]),
        Some(1.0),
        "probes or scrapes counted as traffic"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "http_requests_total",
            &[("method", "GET"), ("route", "/api/v1/tasks")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn counter_families_are_exported_at_zero_before_their_first_event() {
    let server = spawn_metrics_app(Backend::Sqlite).await;
    let text = server.metrics().await;
    for (name, labels) in [
        (
            "http_requests_total",
            vec![
                ("method", "POST"),
                ("route", "/api/v1/tasks"),
                ("status", "503"),
            ],
        ),
        (
            "http_requests_total",
            vec![
                ("method", "GET"),
                ("route", "/api/v1/tasks/{id}"),
                ("status", "500"),
            ],
        ),
        (
            "http_requests_total",
            vec![
                ("method", "POST"),
                ("route", "/api/v1/auth/login"),
                ("status", "200"),
            ],
        ),
        ("auth_login_total", vec![("outcome", "failure")]),
        ("auth_login_total", vec![("outcome", "success")]),
        ("auth_login_total", vec![("outcome", "cancelled")]),
        ("rate_limit_refusals_total", vec![("limit", "login")]),
        ("rate_limit_fallbacks_total", vec![("limit", "auth_per_ip")]),
        ("redis_errors_total", vec![("op", "reserve")]),
        ("auth_revocations_received_total", vec![]),
        ("auth_refresh_total", vec![("outcome", "rejected")]),
        ("auth_registrations_total", vec![]),
        ("tasks_created_total", vec![]),
        ("tasks_updated_total", vec![]),
        ("tasks_deleted_total", vec![]),
    ] {
        assert_eq!(
            metric_value(&text, name, &labels),
            Some(0.0),
            "{name} {labels:?} not exported at 0"
        );
    }
    // Readiness probes and this scrape are not traffic: nothing is in flight.
    assert_eq!(
        metric_value(&text, "http_requests_in_flight", &[]),
        Some(0.0)
    );
}

// Found by an attack helper: on SQLite, refused project writes (403, 404, 409) dropped
// their transaction instead of rolling it back, so its connection went back to the pool
// inside it, to be closed and logged at error level (235 lines for 640 refusals).
#[tokio::test]
async fn refused_project_writes_roll_back_on_their_connection() {
    let app = spawn_metrics_app(Backend::Sqlite).await;
    let (admin, _, _) = app.new_user("admin").await;
    let (viewer, viewer_id, viewer_email) = app.new_user("viewer").await;
    let created = app
        .post("/api/v1/projects", Some(&admin), json!({"name": "P"}))
        .await;
    let project = created.body["id"].as_str().expect("id").to_string();
    let members = format!("/api/v1/projects/{project}/members");
    let added = app
        .post(
            &members,
            Some(&admin),
            json!({"email": viewer_email, "role": "viewer"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let before = app
        .metric(
            "db_connections_discarded_total",
            &[("reason", "in_transaction")],
        )
        .await
        .unwrap_or(0.0);
    for _ in 0..10 {
        // 403: a viewer deleting the project and promoting themself; 409: a duplicate.
        let refused = app
            .request(
                Method::DELETE,
                &format!("/api/v1/projects/{project}"),
                Some(&viewer),
                None,
            )
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let promoted = app
            .request(
                Method::PATCH,
                &format!("{members}/{viewer_id}"),
                Some(&viewer),
                Some(json!({"role": "admin"})),
            )
            .await;
        assert_eq!(promoted.status, StatusCode::FORBIDDEN);
        let again = app
            .post(
                &members,
                Some(&admin),
                json!({"email": viewer_email, "role": "viewer"}),
            )
            .await;
        assert_eq!(again.status, StatusCode::CONFLICT);
    }
    let after = app
        .metric(
            "db_connections_discarded_total",
            &[("reason", "in_transaction")],
        )
        .await
        .unwrap_or(0.0);
    assert_eq!(
        after, before,
        "refusals left connections inside a transaction"
    );
}
