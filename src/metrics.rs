//! Prometheus metrics: HTTP RED metrics by route template, auth and task counters,
//! DB pool gauges and build info.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use salvo::http::Method;
use salvo::oapi::{OpenApi, PathItemType};

pub const HTTP_REQUESTS: &str = "http_requests_total";
pub const HTTP_DURATION: &str = "http_request_duration_seconds";
pub const HTTP_IN_FLIGHT: &str = "http_requests_in_flight";
pub const LOGINS: &str = "auth_login_total";
pub const REGISTRATIONS: &str = "auth_registrations_total";
pub const REFRESHES: &str = "auth_refresh_total";
pub const TASKS_CREATED: &str = "tasks_created_total";
pub const TASKS_UPDATED: &str = "tasks_updated_total";
pub const TASKS_DELETED: &str = "tasks_deleted_total";
/// Creates answered from a stored `Idempotency-Key` response instead of creating again.
pub const IDEMPOTENT_REPLAYS: &str = "idempotent_replays_total";
/// `operation` label values of [`IDEMPOTENT_REPLAYS`].
pub const IDEMPOTENT_OPERATIONS: &[&str] = &["create_task", "register"];
pub const DB_POOL: &str = "db_pool_connections";
/// Pooled connections closed instead of reused, by reason (`in_transaction`: released
/// inside a transaction, see `db::returns_outside_transaction`). Anything but 0 is a bug.
pub const DB_CONNECTIONS_DISCARDED: &str = "db_connections_discarded_total";
pub const BUILD_INFO: &str = "taskapi_build_info";
/// 1 while the configured Redis answers, 0 while its breaker is open.
pub const REDIS_UP: &str = "redis_up";
pub const REDIS_ERRORS: &str = "redis_errors_total";
/// Limit checks answered by the local in-memory fallback because Redis was unavailable.
pub const LIMIT_FALLBACKS: &str = "rate_limit_fallbacks_total";
/// Requests refused with 429, by the limit that refused them.
pub const LIMIT_REFUSALS: &str = "rate_limit_refusals_total";
/// Auth-cache invalidations received from other replicas.
pub const REVOCATIONS_RECEIVED: &str = "auth_revocations_received_total";
/// Change-feed (SSE) streams open on this replica.
pub const SSE_STREAMS_OPEN: &str = "sse_streams_open";
/// Change-feed events written to streams, by SSE event name.
pub const SSE_EVENTS_SENT: &str = "sse_events_sent_total";
/// Every `event` label value of `sse_events_sent_total`, registered at 0 on start-up.
pub const SSE_EVENT_NAMES: &[&str] = &[
    "task.created",
    "task.updated",
    "task.deleted",
    "reset",
    "end",
];

/// Calls answered per database statement by a `models::batch::Batcher`, by `operation`
/// (1 when a call was alone).
pub const DB_BATCH_SIZE: &str = "db_batch_size";
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// Every `outcome` the login and refresh counters use, registered at 0 on start-up.
pub const LOGIN_OUTCOMES: &[&str] = &["success", "failure", "throttled", "cancelled"];
pub const REFRESH_OUTCOMES: &[&str] = &["success", "rejected"];
/// `limit` label values of the rate-limit counters (`limits::Kind::label`) and `op` values
/// of `redis_errors_total` (`RedisLink::run` callers), registered at 0 on start-up.
pub const LIMIT_KINDS: &[&str] = &["auth_per_ip", "per_user", "login", "password_check"];
pub const REDIS_OPS: &[&str] = &["window", "reserve", "clear", "publish"];
/// `status` label of a request whose client went away before the response (nginx's 499).
pub const STATUS_CANCELLED: u16 = 499;

/// Latency buckets from 1 ms (cached reads) to 10 s (timeouts).
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
/// Set once the global recorder is installed: metric handles resolved before that are
/// no-ops for good, so the per-route handle cache (`RouteSeries`) only fills after it.
static INSTALLED: AtomicBool = AtomicBool::new(false);
/// How often histogram samples are folded into their buckets (what `install()` of the
/// exporter's builder would do; `build_recorder` leaves it to the caller).
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the global recorder once per process and returns its handle.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_string()), DURATION_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(DB_BATCH_SIZE.to_string()), BATCH_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    // Another thread may have won the race; only the winner's recorder is installed.
    if HANDLE.set(handle.clone()).is_ok() {
        metrics::set_global_recorder(recorder)?;
        INSTALLED.store(true, Ordering::Release);
        describe();
        gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    }
    HANDLE
        .get()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("metrics handle missing"))
}

/// Folds recorded histogram samples into their buckets every `every`. Without it each
/// sample (a value and an `Instant`, 24 bytes) stays queued until the next scrape: a
/// service nobody scrapes grows by that much per request, without bound.
pub async fn upkeep_periodically(handle: PrometheusHandle, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
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
    describe_counter!(
        IDEMPOTENT_REPLAYS,
        "Creates answered by replaying the response stored for their Idempotency-Key, by operation."
    );
    describe_gauge!(
        DB_POOL,
        "Database pool connections by state (size, idle, in_use)."
    );
    describe_counter!(
        DB_CONNECTIONS_DISCARDED,
        "Pooled database connections closed instead of reused, by reason (in_transaction: released inside a transaction; always a bug)."
    );
    describe_gauge!(BUILD_INFO, "Build information; always 1.");
    describe_gauge!(
        REDIS_UP,
        "1 while the configured Redis answers, 0 while its breaker is open."
    );
    describe_counter!(
        REDIS_ERRORS,
        "Failed or timed-out Redis commands by operation."
    );
    describe_counter!(
        LIMIT_FALLBACKS,
        "Limit checks answered by the in-memory fallback because Redis was unavailable, by limit."
    );
    describe_counter!(
        LIMIT_REFUSALS,
        "Requests refused with 429, by the limit that refused them."
    );
    describe_counter!(
        REVOCATIONS_RECEIVED,
        "Auth-cache invalidations received from other replicas over Redis pub/sub."
    );
    describe_gauge!(
        SSE_STREAMS_OPEN,
        "Change-feed (SSE) streams open on this replica."
    );
    describe_counter!(
        SSE_EVENTS_SENT,
        "Change-feed events written to SSE streams, by event name."
    );
    describe_histogram!(
        DB_BATCH_SIZE,
        "Calls answered per database statement, by operation (batched under load)."
    );
}

/// The `method` label: one of the standard verbs, or `OTHER`. Clients choose the method,
/// and every invented one would otherwise create a set of series that is never removed.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "OTHER",
    }
}

/// The HTTP series of one route template, resolved once: building a metric key (label
/// strings, hashing, a registry lookup) on every request cost more than the rest of the
/// metrics work together. Routes are templates and statuses come from the service, so the
/// set is bounded like the series themselves.
struct RouteSeries {
    /// `/` + the matched route template.
    label: String,
    durations: RwLock<Vec<(&'static str, Histogram)>>,
    requests: RwLock<Vec<(&'static str, u16, Counter)>>,
}

impl RouteSeries {
    fn record(&self, method: &'static str, status: u16, elapsed: f64) {
        let counter = cached(
            &self.requests,
            |(m, s, _)| *m == method && *s == status,
            || {
                let c = counter!(HTTP_REQUESTS, "method" => method, "route" => self.label.clone(), "status" => status.to_string());
                (method, status, c)
            },
        );
        counter.2.increment(1);
        let duration = cached(
            &self.durations,
            |(m, _)| *m == method,
            || {
                (
                    method,
                    histogram!(HTTP_DURATION, "method" => method, "route" => self.label.clone()),
                )
            },
        );
        duration.1.record(elapsed);
    }
}

/// The entry of `list` that `found` picks, made (once) by `make` if there is none.
fn cached<T: Clone>(
    list: &RwLock<Vec<T>>,
    found: impl Fn(&T) -> bool,
    make: impl FnOnce() -> T,
) -> T {
    if let Some(hit) = list
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|entry| found(entry))
    {
        return hit.clone();
    }
    let mut list = list.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(hit) = list.iter().find(|entry| found(entry)) {
        return hit.clone();
    }
    let made = make();
    list.push(made.clone());
    made
}

type RouteTable = RwLock<HashMap<String, Arc<RouteSeries>>>;

fn routes() -> &'static RouteTable {
    static ROUTES: OnceLock<RouteTable> = OnceLock::new();
    ROUTES.get_or_init(RouteTable::default)
}

/// The cached series of `matched` (a route template without its leading `/`); `None` for
/// unmatched requests (their label depends on the status) and before `install`.
fn route_series(matched: &str) -> Option<Arc<RouteSeries>> {
    if matched.is_empty() || !INSTALLED.load(Ordering::Acquire) {
        return None;
    }
    if let Some(hit) = routes()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(matched)
    {
        return Some(hit.clone());
    }
    let mut table = routes().write().unwrap_or_else(PoisonError::into_inner);
    let entry = table.entry(matched.to_string()).or_insert_with(|| {
        Arc::new(RouteSeries {
            label: format!("/{matched}"),
            durations: RwLock::default(),
            requests: RwLock::default(),
        })
    });
    Some(entry.clone())
}

fn in_flight() -> Gauge {
    static IN_FLIGHT: OnceLock<Gauge> = OnceLock::new();
    if !INSTALLED.load(Ordering::Acquire) {
        return gauge!(HTTP_IN_FLIGHT);
    }
    IN_FLIGHT.get_or_init(|| gauge!(HTTP_IN_FLIGHT)).clone()
}

/// The route label of a request: the matched route template, never a raw path; requests
/// no route matched are `unmatched` when they end in 404, 405 or 499.
pub fn route_label(matched: &str, status: u16) -> String {
    match matched {
        "" if matches!(status, 404 | 405 | STATUS_CANCELLED) => "unmatched".to_string(),
        path => format!("/{path}"),
    }
}

/// One request in flight. Finish it with its status; if it is dropped unfinished (the
/// client disconnected and the server cancelled the handler) it still leaves the in-flight
/// gauge and is counted with status 499, so the gauge cannot leak.
pub struct RequestTimer {
    started: Instant,
    method: &'static str,
    /// The matched route template (without its leading `/`), for unmatched requests only:
    /// matched ones carry their resolved series instead.
    matched: String,
    series: Option<Arc<RouteSeries>>,
    finished: bool,
}

/// `matched` is the request's matched route template (`Request::matched_path`).
pub fn request_started(method: &'static str, matched: &str) -> RequestTimer {
    in_flight().increment(1.0);
    let series = route_series(matched);
    RequestTimer {
        started: Instant::now(),
        method,
        matched: if series.is_some() {
            String::new()
        } else {
            matched.to_string()
        },
        series,
        finished: false,
    }
}

impl RequestTimer {
    pub fn finish(mut self, status: u16) {
        self.record(status);
    }

    fn record(&mut self, status: u16) {
        self.finished = true;
        in_flight().decrement(1.0);
        let elapsed = self.started.elapsed().as_secs_f64();
        if let Some(series) = &self.series {
            series.record(self.method, status, elapsed);
            return;
        }
        let route = route_label(&self.matched, status);
        counter!(HTTP_REQUESTS, "method" => self.method, "route" => route.clone(), "status" => status.to_string())
            .increment(1);
        histogram!(HTTP_DURATION, "method" => self.method, "route" => route).record(elapsed);
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        if !self.finished {
            self.record(STATUS_CANCELLED);
        }
    }
}

/// Counts a login whose client went away before its outcome was known (the handler was
/// dropped mid-check) as `auth_login_total{outcome="cancelled"}`, unless settled first.
pub struct LoginInProgress {
    settled: bool,
}

impl LoginInProgress {
    pub fn start() -> Self {
        Self { settled: false }
    }

    /// The outcome is known (and counted by the caller).
    pub fn settle(mut self) {
        self.settled = true;
    }
}

impl Drop for LoginInProgress {
    fn drop(&mut self) {
        if !self.settled {
            counter!(LOGINS, "outcome" => "cancelled").increment(1);
            tracing::info!(
                event = "login",
                outcome = "cancelled",
                "login abandoned by the client"
            );
        }
    }
}

/// Registers every counter family with its known label values at 0, so that error-rate
/// queries and dashboards have data on a healthy service and `rate()` sees the first
/// increment after a restart. HTTP series come from the API description: each documented
/// (method, route, status), plus 500 (any route can fail) and 499 (cancelled requests). Probe and scrape routes are
/// left out: they are not counted (see `middleware::is_probe`).
pub fn register_known_series(api: &OpenApi) {
    // Once per process: the registry is global, and tests build many applications.
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| register(api));
}

fn register(api: &OpenApi) {
    for name in [REGISTRATIONS, TASKS_CREATED, TASKS_UPDATED, TASKS_DELETED] {
        counter!(name).increment(0);
    }
    for outcome in LOGIN_OUTCOMES {
        counter!(LOGINS, "outcome" => *outcome).increment(0);
    }
    for outcome in REFRESH_OUTCOMES {
        counter!(REFRESHES, "outcome" => *outcome).increment(0);
    }
    counter!(REVOCATIONS_RECEIVED).increment(0);
    counter!(DB_CONNECTIONS_DISCARDED, "reason" => "in_transaction").increment(0);
    for event in SSE_EVENT_NAMES {
        counter!(SSE_EVENTS_SENT, "event" => *event).increment(0);
    }
    gauge!(SSE_STREAMS_OPEN).increment(0.0);
    for operation in IDEMPOTENT_OPERATIONS {
        counter!(IDEMPOTENT_REPLAYS, "operation" => *operation).increment(0);
    }
    for kind in LIMIT_KINDS {
        counter!(LIMIT_REFUSALS, "limit" => *kind).increment(0);
        counter!(LIMIT_FALLBACKS, "limit" => *kind).increment(0);
    }
    for op in REDIS_OPS {
        counter!(REDIS_ERRORS, "op" => *op).increment(0);
    }
    gauge!(HTTP_IN_FLIGHT).increment(0.0);
    for (path, item) in api.paths.iter() {
        if is_probe_route(path) {
            continue;
        }
        for (method, operation) in item.operations.iter() {
            let method = operation_method(*method);
            let statuses = operation
                .responses
                .keys()
                .filter_map(|code| code.parse::<u16>().ok())
                .chain([500, STATUS_CANCELLED]);
            for status in statuses {
                counter!(HTTP_REQUESTS, "method" => method, "route" => path.clone(), "status" => status.to_string())
                    .increment(0);
            }
        }
    }
}

fn operation_method(kind: PathItemType) -> &'static str {
    match kind {
        PathItemType::Get => "GET",
        PathItemType::Post => "POST",
        PathItemType::Put => "PUT",
        PathItemType::Delete => "DELETE",
        PathItemType::Options => "OPTIONS",
        PathItemType::Head => "HEAD",
        PathItemType::Patch => "PATCH",
        PathItemType::Trace => "TRACE",
        _ => "OTHER",
    }
}

/// Health probes and metric scrapes: frequent, machine-made, and not user traffic.
pub fn is_probe_route(route: &str) -> bool {
    route == "/metrics" || route.starts_with("/health/")
}

/// Refreshes the pool gauges from the pool's open and idle connections
/// (`db::pool_usage`); called on every scrape so they are current.
pub fn record_pool((size, idle): (u32, usize)) {
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    gauge!(DB_POOL, "state" => "size").set(f64::from(size));
    gauge!(DB_POOL, "state" => "idle").set(f64::from(idle));
    gauge!(DB_POOL, "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
}
