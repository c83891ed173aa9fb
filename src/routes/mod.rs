//! HTTP layer: thin handlers that extract, call the models and shape the response.

pub mod admin;
pub mod auth;
pub mod health;
pub mod responses;
pub mod tasks;

use std::net::{IpAddr, Ipv4Addr};

use salvo::http::HeaderValue;
use salvo::prelude::*;

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

/// Per-IP limit for the unauthenticated auth routes (register, login, refresh).
#[handler]
pub async fn limit_by_ip(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let verdict = app_state(depot).and_then(|state| state.limits.check_ip(client_ip(req)));
    match verdict {
        Ok(quota) => {
            let headers = res.headers_mut();
            for (name, value) in [
                ("ratelimit-limit", quota.limit.to_string()),
                ("ratelimit-remaining", quota.remaining.to_string()),
                ("ratelimit-reset", quota.reset_secs.to_string()),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
        }
        Err(err) => {
            if let AppError::TooManyRequests { retry_after_secs } = &err
                && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
            {
                res.headers_mut()
                    .insert("ratelimit-remaining", HeaderValue::from_static("0"));
                res.headers_mut().insert("ratelimit-reset", value);
            }
            err.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}
