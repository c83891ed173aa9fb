//! What the service tells its operators stays bounded and honest: invented methods and
//! long paths cannot grow /metrics or the logs, probes and scrapes are not traffic, and
//! every counter family exists at zero before its first event.

use std::process::Stdio;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::helpers::{
    Backend, PATIENCE, TempDir, completed_line, metric_value, read_log_lines, scratch_dir,
    spawn_app, spawn_on_own_port, taskapi,
};

// ---------------------------------------------------------------------------------------
// Item 1: invented methods and long paths cannot grow /metrics or the logs.

#[tokio::test]
async fn invented_methods_share_one_label_and_logged_fields_are_capped() {
    // No stored data involved: SQLite, so this never needs PostgreSQL.
    let app = spawn_app(Backend::Sqlite).await;
    let invented = format!("BOGUS{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let method = Method::from_bytes(invented.as_bytes()).expect("method");
    let reply = app
        .client
        .request(method, app.url("/api/v1/tasks"))
        .send()
        .await
        .expect("send");
    assert!(reply.status().is_client_error());
    let metrics = app.get("/metrics", None).await.text;
    assert!(
        !metrics.contains(&invented),
        "an invented method became a label"
    );
    assert!(
        metric_value(&metrics, "http_requests_total", &[("method", "OTHER")]).unwrap_or(0.0) >= 1.0,
        "invented methods are counted as OTHER"
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
    let line = completed_line(&request_id).await;
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
    let app = spawn_app(Backend::Sqlite).await;
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
    completed_line(&marker).await;
    assert!(
        !read_log_lines()
            .iter()
            .any(|l| l["request_id"] == probe_id.as_str()),
        "probe requests logged at info"
    );
    let metrics = app.get("/metrics", None).await.text;
    for route in ["/metrics", "/health/live", "/health/ready"] {
        assert_eq!(
            metric_value(&metrics, "http_requests_total", &[("route", route)]),
            None,
            "{route} counted as traffic"
        );
    }
}

/// A server process of its own (its own metrics registry) on SQLite.
struct Process {
    child: std::process::Child,
    base: String,
    _dir: TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_process() -> Process {
    let dir = scratch_dir("fresh");
    let mut command = taskapi(&dir.0);
    command
        .arg("serve")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite?mode=rwc", dir.0.display()),
        )
        .env("JWT_SECRET_KEY", crate::helpers::JWT_SECRET)
        .env("TASKAPI_LOG__DIR", dir.0.join("logs"))
        .stderr(Stdio::null());
    let (child, port) = spawn_on_own_port(command);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let client = reqwest::Client::new();
    while client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .map(|r| r.status() != StatusCode::OK)
        .unwrap_or(true)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Process {
        child,
        base,
        _dir: dir,
    }
}

#[tokio::test]
async fn counter_families_are_exported_at_zero_before_their_first_event() {
    let server = start_process().await;
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
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
