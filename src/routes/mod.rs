//! HTTP layer: thin handlers that extract, call the models and shape the response.

pub mod admin;
pub mod auth;
pub mod health;
pub mod responses;
pub mod tasks;

use std::net::{IpAddr, Ipv4Addr};

use salvo::http::HeaderValue;
use salvo::prelude::*;

use crate::auth::throttle::Quota;
use crate::error::AppError;
use crate::state::AppState;

pub fn app_state(depot: &Depot) -> Result<AppState, AppError> {
    depot
        .get_typed::<AppState>()
        .cloned()
        .map_err(|_| AppError::Internal(anyhow::anyhow!("application state missing from depot")))
}

/// The peer address. Forwarded headers are not trusted: any client could forge them.
pub fn client_ip(req: &Request) -> IpAddr {
    req.remote_addr()
        .ip()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Per-IP limit for the unauthenticated auth routes (register, login, refresh, logout).
#[handler]
pub async fn limit_by_ip(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let verdict = app_state(depot).and_then(|state| state.limits.check_ip(client_ip(req)));
    match verdict {
        Ok(quota) => write_quota(res, &quota),
        Err(err) => {
            write_exhausted(res, &err);
            err.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

/// `RateLimit-*` headers (IETF draft) describing the caller's remaining budget.
pub fn write_quota(res: &mut Response, quota: &Quota) {
    let headers = res.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(quota.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(quota.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(quota.reset_secs));
}

pub fn write_exhausted(res: &mut Response, err: &AppError) {
    if let AppError::TooManyRequests { retry_after_secs } = err {
        let headers = res.headers_mut();
        headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
        headers.insert("ratelimit-reset", HeaderValue::from(*retry_after_secs));
    }
}
