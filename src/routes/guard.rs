//! Hoops that guard routes: `authenticate` turns a bearer token into a [`CurrentUser`]
//! and spends the caller's per-user budget; `require_admin` sits on the admin router so no
//! handler has to check roles; `limit_by_ip` spends the client address's budget on the
//! unauthenticated auth routes. Every response they touch carries `RateLimit-*` headers.

use salvo::http::header::AUTHORIZATION;
use salvo::http::{HeaderName, HeaderValue};
use salvo::prelude::*;

use crate::auth::CurrentUser;
use crate::auth::cache::AuthState;
use crate::entities::user::Role;
use crate::error::AppError;
use crate::limits::{Exhausted, Quota};
use crate::models::users;
use crate::routes::{app_state_ref, client_ip};
use crate::state::AppState;

pub(crate) fn bearer_token(req: &Request) -> Result<&str, AppError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(AppError::Unauthorized("Missing bearer token."))?;
    let value = header
        .to_str()
        .map_err(|_| AppError::Unauthorized("Malformed Authorization header."))?;
    let (scheme, token) = value
        .split_once(' ')
        .ok_or(AppError::Unauthorized("Malformed Authorization header."))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AppError::Unauthorized("Malformed Authorization header."));
    }
    Ok(token.trim())
}

/// The account's current state, from the cache or the database.
async fn account(state: &AppState, id: uuid::Uuid) -> Result<Option<AuthState>, AppError> {
    let cache = state.revocations.cache();
    if let Some(cached) = cache.get(id) {
        return Ok(Some(cached));
    }
    let read_at = cache.epoch();
    let found = users::auth_state(&state.db, id).await?;
    if let Some(account) = &found {
        cache.put(account.clone(), read_at);
    }
    Ok(found)
}

async fn resolve(
    req: &Request,
    state: &AppState,
    res: &mut Response,
) -> Result<CurrentUser, AppError> {
    let token = bearer_token(req)?;
    let claims = state
        .jwt
        .verify_access(token)
        .map_err(|_| AppError::Unauthorized("Invalid or expired token."))?;
    // The token alone is not enough: a deleted, deactivated or since-revoked user must
    // stop working at once, so the current state of the account is checked every time.
    let account = account(state, claims.sub)
        .await?
        .ok_or(AppError::Unauthorized("Invalid or expired token."))?;
    if !account.active || account.token_version != claims.ver {
        return Err(AppError::Unauthorized("Invalid or expired token."));
    }
    let quota = state
        .limits
        .check_user(account.id)
        .await
        .inspect_err(|refusal| write_exhausted(res, refusal))?;
    write_quota(res, &quota);
    Ok(CurrentUser {
        id: account.id,
        role: account.role,
    })
}

#[handler]
pub async fn authenticate(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    // This runs on every authenticated request: the state is borrowed from the depot.
    let outcome = match app_state_ref(depot) {
        Ok(state) => resolve(req, state, res).await,
        Err(err) => Err(err),
    };
    match outcome {
        Ok(user) => {
            tracing::Span::current().record("user_id", tracing::field::display(user.id));
            depot.insert_typed(user);
        }
        Err(err) => {
            err.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

#[handler]
pub async fn require_admin(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let outcome = CurrentUser::from_depot(depot).and_then(|user| match user.role {
        Role::Admin => Ok(()),
        Role::User => Err(AppError::Forbidden("Administrator role required.")),
    });
    if let Err(err) = outcome {
        err.write(req, depot, res).await;
        ctrl.skip_rest();
    }
}

/// Per-IP limit for the unauthenticated auth routes (register, login, refresh, logout).
#[handler]
pub async fn limit_by_ip(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    let verdict = match app_state_ref(depot) {
        Ok(state) => state
            .limits
            .check_ip(client_ip(req, state))
            .await
            .map_err(|refusal| {
                write_exhausted(res, &refusal);
                AppError::from(refusal)
            }),
        Err(err) => Err(err),
    };
    match verdict {
        Ok(quota) => write_quota(res, &quota),
        Err(err) => {
            err.write(req, depot, res).await;
            ctrl.skip_rest();
        }
    }
}

// Names made once: a `&str` name is parsed and validated again on every insert.
const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// `RateLimit-*` headers (IETF draft) describing the caller's remaining budget.
pub fn write_quota(res: &mut Response, quota: &Quota) {
    let headers = res.headers_mut();
    headers.insert(RATELIMIT_LIMIT, HeaderValue::from(quota.limit));
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(quota.remaining));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(quota.reset_secs));
}

/// The headers of the limit that refused a request: nothing left, back at `Retry-After`.
pub fn write_exhausted(res: &mut Response, refusal: &Exhausted) {
    let headers = res.headers_mut();
    // A refusal by a lock (not a counted window) says nothing of another budget.
    headers.remove(RATELIMIT_LIMIT);
    if let Some(limit) = refusal.limit {
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(limit));
    }
    headers.insert(RATELIMIT_REMAINING, HeaderValue::from(0u32));
    headers.insert(RATELIMIT_RESET, HeaderValue::from(refusal.retry_after_secs));
}
