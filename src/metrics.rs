//! Prometheus metrics: HTTP RED metrics by route template, auth and task counters,
//! DB pool gauges and build info.

use std::sync::OnceLock;
use std::time::Instant;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseBackend, DatabaseConnection};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "http_requests_in_flight";
pub const LOGINS: &str = "auth_login_total";
pub const REGISTRATIONS: &str = "auth_registrations_total";
pub const REFRESHES: &str = "auth_refresh_total";
pub const TASKS_CREATED: &str = "tasks_created_total";
pub const TASKS_UPDATED: &str = "tasks_updated_total";
pub const TASKS_DELETED: &str = "tasks_deleted_total";
pub const DB_POOL: &str = "db_pool_connections";
pub const BUILD_INFO: &str = "taskapi_build_info";

/// Latency buckets from 1 ms (cached reads) to 10 s (timeouts).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the global recorder once per process and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), DURATION_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another thread may have won the race; only the winner's recorder is installed.
    if HANDLE.set(handle.clone()).is_ok() {
        metrics::set_global_recorder(recorder)?;
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("metrics handle missing"))
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by method and route template."
    );
    describe_gauge!(HTTP_IN_FLIGHT, "HTTP requests currently being served.");
    describe_counter!(LOGINS, "Login attempts by outcome.");
    describe_counter!(REGISTRATIONS, "Successful registrations.");
    describe_counter!(REFRESHES, "Refresh-token rotations by outcome.");
    describe_counter!(TASKS_CREATED, "Tasks created.");
    describe_counter!(TASKS_UPDATED, "Tasks updated.");
    describe_counter!(TASKS_DELETED, "Tasks deleted.");
    describe_gauge!(
        DB_POOL,
        "Database pool connections by state (size, idle, in_use)."
    );
    describe_gauge!(BUILD_INFO, "Build information; always 1.");
}

pub struct RequestTimer {
    started: Instant,
}

pub fn request_started() -> RequestTimer {
    gauge!(HTTP_IN_FLIGHT).increment(1.0);
    RequestTimer {
        started: Instant::now(),
    }
}

impl RequestTimer {
    pub fn finish(self, method: &str, route: &str, status: u16) {
        gauge!(HTTP_IN_FLIGHT).decrement(1.0);
        let elapsed = self.started.elapsed().as_secs_f64();
        let (method, route) = (method.to_string(), route.to_string());
        counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
            .increment(1);
        histogram!(HTTP_DURATION, "method" => method, "route" => route).record(elapsed);
    }
}

/// Refreshes the pool gauges; called on every scrape so they are current.
pub fn record_pool(db: &DatabaseConnection) {
    let (size, idle) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    gauge!(DB_POOL, "state" => "size").set(f64::from(size));
    gauge!(DB_POOL, "state" => "idle").set(f64::from(idle));
    gauge!(DB_POOL, "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
}
