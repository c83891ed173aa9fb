//! Cross-cutting hoops: request ids and spans, request timeout, HTTP metrics, security headers.

use salvo::http::{HeaderValue, StatusCode};
use salvo::prelude::*;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{Problem, write_problem};
use crate::metrics as app_metrics;
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";
const FALLBACK_TIMEOUT_SECS: u64 = 30;

/// Accept a caller's request id only if it is short and harmless to log and echo.
fn sanitize_request_id(raw: &str) -> Option<&str> {
    let ok = (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then_some(raw)
}

/// Wraps the whole request: one span carrying the request id (so every log line of the
/// request has it), the `x-request-id` response header, the request timeout, and the
/// RED metrics keyed by route template.
#[handler]
pub async fn request_context(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(sanitize_request_id)
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_string);
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        "http_request",
        request_id = %request_id,
        method = %method,
        path = %req.uri().path(),
        user_id = tracing::field::Empty,
    );
    // Borrowed, not cloned: this runs on every request.
    let timeout = depot.get_typed::<AppState>().map_or(
        std::time::Duration::from_secs(FALLBACK_TIMEOUT_SECS),
        |state| state.settings.request_timeout(),
    );
    let timer = app_metrics::request_started();
    let outcome = tokio::time::timeout(
        timeout,
        ctrl.call_next(req, depot, res).instrument(span.clone()),
    )
    .await;
    if outcome.is_err() {
        span.in_scope(|| tracing::warn!(timeout_secs = timeout.as_secs(), "request timed out"));
        write_problem(
            res,
            &Problem {
                problem_type: "https://taskapi.dev/problems/timeout".into(),
                title: "Service Unavailable".into(),
                status: 503,
                detail: format!(
                    "The request did not complete within {} seconds.",
                    timeout.as_secs()
                ),
                errors: None,
            },
        );
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    let route = match req.matched_path() {
        "" if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED => {
            "unmatched".to_string()
        }
        path => format!("/{path}"),
    };
    timer.finish(&method, &route, status.as_u16());
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), route = %route, "request completed");
    });
}

/// Headers every response gets.
#[handler]
pub async fn security_headers(res: &mut Response) {
    let headers = res.headers_mut();
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
}

/// API responses are per-user: never stored by shared caches, always revalidated.
#[handler]
pub async fn api_headers(res: &mut Response) {
    res.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("private, no-cache"),
    );
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
    use super::sanitize_request_id;

    #[test]
    fn request_ids_are_sanitized() {
        assert_eq!(sanitize_request_id("abc-123"), Some("abc-123"));
        assert_eq!(sanitize_request_id("bad id\n"), None);
        assert_eq!(sanitize_request_id(&"a".repeat(129)), None);
        assert_eq!(sanitize_request_id(""), None);
    }
}
