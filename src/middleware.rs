//! Cross-cutting hoops: request ids and spans, request timeout, database stall deadline,
//! HTTP metrics, draining, security headers.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use salvo::http::{HeaderName, HeaderValue, Method, StatusCode, Version, header};
use salvo::prelude::*;
use sea_orm::DatabaseConnection;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Problem, write_problem};
use crate::metrics as app_metrics;
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";
// Names made once: a `&str` name is parsed and validated again on every insert.
const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static(REQUEST_ID);
const CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");
const REFERRER_POLICY: HeaderName = HeaderName::from_static("referrer-policy");
const FALLBACK_TIMEOUT_SECS: u64 = 30;
/// How long the stall check's ping may take before the database counts as stalled.
const STALL_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest client-chosen string (method, path) copied into a log line. Anything longer is
/// cut, so one request cannot write megabytes of log.
const MAX_LOGGED_CHARS: usize = 256;

/// Accept a caller's request id only if it is short and harmless to log and echo.
fn sanitize_request_id(raw: &str) -> Option<&str> {
    let ok = (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(raw)
}

/// `raw` cut to at most `max` characters (on a character boundary), marked when cut.
fn capped(raw: &str, max: usize) -> Cow<'_, str> {
    match raw.char_indices().nth(max) {
        None => Cow::Borrowed(raw),
        Some((cut, _)) => Cow::Owned(format!("{}…[{} bytes]", &raw[..cut], raw.len())),
    }
}

/// Health probes and scrapes, by matched route template (`is_probe_route` of its label,
/// without building the label on every request).
fn is_probe_template(matched: &str) -> bool {
    matched == "metrics" || matched.starts_with("health/")
}

enum Outcome {
    Completed,
    TimedOut,
    DatabaseStalled,
}

/// Runs the rest of the chain under the request timeout and, when `stall` is set, the
/// client-side database deadline: every `after`, a request still running pings the
/// database; no answer within `STALL_PROBE_TIMEOUT` means the database (or the network to
/// it) is stalled, and waiting for the request timeout would only hold the client.
async fn run_bounded(
    work: impl Future<Output = bool>,
    timeout: Duration,
    stall: Option<(Duration, DatabaseConnection)>,
) -> Outcome {
    let watch_for_stall = async move {
        let Some((after, db)) = stall else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep(after).await;
            // Boxed: the ping future is large, and unboxed it would be part of every
            // request's future (copied each time that future moves) though it rarely runs.
            if !matches!(
                tokio::time::timeout(STALL_PROBE_TIMEOUT, Box::pin(db.ping())).await,
                Ok(Ok(()))
            ) {
                return;
            }
        }
    };
    tokio::select! {
        _ = work => Outcome::Completed,
        () = tokio::time::sleep(timeout) => Outcome::TimedOut,
        () = watch_for_stall => Outcome::DatabaseStalled,
    }
}

/// Logs a request the client abandoned: the handler future is dropped without running to
/// its end, so nothing after the `await` in `request_context` runs.
struct CancelLog {
    span: tracing::Span,
    armed: bool,
}

impl Drop for CancelLog {
    fn drop(&mut self) {
        if self.armed {
            self.span.in_scope(|| {
                tracing::info!(
                    status = app_metrics::STATUS_CANCELLED,
                    "request cancelled: the client went away before the response"
                );
            });
        }
    }
}

/// Wraps the whole request: one span carrying the request id (so every log line of the
/// request has it), the `x-request-id` response header, the request timeout, the database
/// stall deadline, `Connection: close` while draining, and the RED metrics keyed by route
/// template. Health probes and scrapes are neither counted nor logged above debug.
#[handler]
pub async fn request_context(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(sanitize_request_id)
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_string);
    let method = app_metrics::method_label(req.method());
    let probe = is_probe_template(req.matched_path());
    // Probes get a debug-level span: the span's own start/end lines are written at its level.
    macro_rules! request_span {
        ($level:expr) => {
            tracing::span!(
                $level,
                "http_request",
                request_id = %request_id,
                method = method,
                // Only set for invented methods, and never at full length.
                raw_method = tracing::field::Empty,
                path = %capped(req.uri().path(), MAX_LOGGED_CHARS),
                user_id = tracing::field::Empty,
            )
        };
    }
    let span = if probe {
        request_span!(tracing::Level::DEBUG)
    } else {
        request_span!(tracing::Level::INFO)
    };
    if method == "OTHER" {
        span.record(
            "raw_method",
            tracing::field::display(capped(req.method().as_str(), 32)),
        );
    }
    // The state is read in place, since this runs on every request; the stall check needs
    // its own pool handle because it outlives this borrow (it runs beside the handler).
    let (timeout, stall) = match depot.get_typed::<AppState>() {
        Ok(state) => {
            let after = state.settings.database.stall_check_after_ms;
            (
                state.settings.request_timeout(),
                (after > 0 && !probe).then(|| (Duration::from_millis(after), state.db.clone())),
            )
        }
        Err(_) => (Duration::from_secs(FALLBACK_TIMEOUT_SECS), None),
    };
    let timer = (!probe).then(|| app_metrics::request_started(method, req.matched_path()));
    let mut cancel_log = CancelLog {
        span: span.clone(),
        armed: true,
    };
    let outcome = run_bounded(
        ctrl.call_next(req, depot, res).instrument(span.clone()),
        timeout,
        stall,
    )
    .await;
    cancel_log.armed = false;
    match outcome {
        Outcome::Completed => {}
        Outcome::TimedOut => {
            span.in_scope(|| tracing::warn!(timeout_secs = timeout.as_secs(), "request timed out"));
            write_problem(
                res,
                &Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "timeout",
                    format!(
                        "The request did not complete within {} seconds.",
                        timeout.as_secs()
                    ),
                ),
            );
        }
        Outcome::DatabaseStalled => {
            span.in_scope(|| tracing::warn!("database did not answer; request abandoned"));
            write_problem(
                res,
                &Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service-unavailable",
                    "The database is not answering; retry shortly.",
                ),
            );
        }
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    // While draining, every HTTP/1 response closes its connection, so keep-alive clients
    // reconnect (through the load balancer, to another instance) instead of reusing a
    // connection this instance is about to close. HTTP/2 has no such header (GOAWAY is
    // sent by the server's graceful stop).
    let draining = depot
        .get_typed::<AppState>()
        .is_ok_and(AppState::is_draining);
    if draining && req.version() <= Version::HTTP_11 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    if let Some(timer) = timer {
        timer.finish(status.as_u16());
    }
    // Field values are only evaluated when the line is enabled: no label is built otherwise.
    let route = || app_metrics::route_label(req.matched_path(), status.as_u16());
    span.in_scope(|| {
        if probe {
            tracing::debug!(status = status.as_u16(), route = %route(), "request completed");
        } else {
            tracing::info!(status = status.as_u16(), route = %route(), "request completed");
        }
    });
}

/// Whether a request of this method may change state. GET, HEAD and OPTIONS never do here,
/// so they run inline: no task per read, and an SSE stream's body outlives its handler
/// anyway.
fn may_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Runs the rest of a request that may write in a task of its own, and waits for it.
///
/// A client can hang up at any await, and `request_context` stops waiting at its timeout;
/// either drops only this wait. The unit of work itself (its transaction, and what must
/// follow its commit: change-feed wake-ups, revocation announcements) runs to its end,
/// so what the server decided is done whole, and no transaction is abandoned between its
/// `BEGIN` and its end by a dropped future.
///
/// The body is read before the task starts (see below), so the task only ever waits on
/// the server's own work. While the task runs, the request, depot and response it works on are its own; what is
/// left here is what `request_context` reads if it stops waiting (the route, the state,
/// the headers set so far).
#[handler]
pub async fn run_writes_to_completion(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    if !may_write(req.method()) {
        ctrl.call_next(req, depot, res).await;
        return;
    }
    // The body is read here, while the wait can still be dropped: a client that never
    // finishes sending it is cut off by the request timeout like any other, instead of
    // holding a detached task open. The handler then parses the copy kept in the request.
    if let Err(err) = crate::extract::read_body(req, depot).await {
        err.write(req, depot, res).await;
        ctrl.skip_rest();
        return;
    }
    let mut left_req = Request::new();
    *left_req.method_mut() = req.method().clone();
    *left_req.version_mut() = req.version();
    left_req.matched_path_mut().push_str(req.matched_path());
    let mut left_depot = Depot::new();
    if let Ok(state) = depot.get_typed::<AppState>() {
        left_depot.insert_typed(state.clone());
    }
    let mut left_res = Response::new();
    *left_res.headers_mut() = res.headers().clone();
    let mut own_req = std::mem::replace(req, left_req);
    let mut own_depot = std::mem::replace(depot, left_depot);
    let mut own_res = std::mem::replace(res, left_res);
    let mut own_ctrl = std::mem::replace(ctrl, FlowCtrl::new(Vec::new()));
    let work = tokio::spawn(
        async move {
            own_ctrl
                .call_next(&mut own_req, &mut own_depot, &mut own_res)
                .await;
            (own_req, own_depot, own_res, own_ctrl)
        }
        .in_current_span(),
    );
    match work.await {
        Ok((own_req, own_depot, own_res, own_ctrl)) => {
            *req = own_req;
            *depot = own_depot;
            *res = own_res;
            *ctrl = own_ctrl;
        }
        // `CatchPanic` inside the task turns a handler's panic into a 500 already; this is
        // a panic outside any handler, or a runtime shutting down.
        Err(err) => {
            tracing::error!(error = %err, "request task failed");
            write_problem(
                res,
                &Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "The server failed to complete the request.",
                ),
            );
        }
    }
}

/// Headers every response gets.
#[handler]
pub async fn security_headers(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}

/// Every API response is personal (tokens, profiles, a user's own tasks): no cache, shared
/// or private, may store it (`no-store`; RFC 6749 §5.1 requires it for token responses),
/// and `Pragma` covers HTTP/1.0 caches. ETags keep working: clients revalidate what they
/// hold themselves with `If-None-Match`, and `If-Match` is unaffected.
#[handler]
pub async fn api_headers(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The front end has no inline code, so it can run under a strict policy.
#[handler]
pub async fn static_headers(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::{capped, sanitize_request_id};

    #[test]
    fn request_ids_are_sanitized() {
        assert_eq!(sanitize_request_id("abc-123"), Some("abc-123"));
        assert_eq!(sanitize_request_id("bad id\n"), None);
        assert_eq!(sanitize_request_id(&"a".repeat(129)), None);
        assert_eq!(sanitize_request_id(""), None);
    }

    #[test]
    fn logged_strings_are_capped_on_char_boundaries() {
        assert_eq!(capped("short", 10), "short");
        let long = "é".repeat(1000);
        let cut = capped(&long, 256);
        assert!(cut.starts_with(&"é".repeat(256)));
        assert!(cut.ends_with("…[2000 bytes]"));
        assert!(cut.len() < 600);
    }
}
