//! Hoops that guard routes: `authenticate` turns a bearer token into a [`CurrentUser`]
//! in the depot; `require_admin` sits on the admin router so no handler has to check roles.

use salvo::http::header::AUTHORIZATION;
use salvo::prelude::*;
use uuid::Uuid;

use crate::entities::user::Role;
use crate::error::AppError;
use crate::models::users;
use crate::routes::{write_exhausted, write_quota};
use crate::state::AppState;

#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
}

impl CurrentUser {
    /// The authenticated user placed in the depot by [`authenticate`].
    pub fn from_depot(depot: &Depot) -> Result<Self, AppError> {
        depot
            .get_typed::<CurrentUser>()
            .cloned()
            .map_err(|_| AppError::Unauthorized("Authentication required."))
    }
}

fn bearer_token(req: &Request) -> Result<&str, AppError> {
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

async fn resolve(
    req: &Request,
    state: &AppState,
    res: &mut Response,
) -> Result<CurrentUser, AppError> {
    let token = bearer_token(req)?;
    let claims = state
        .jwt
        .verify(token)
        .map_err(|_| AppError::Unauthorized("Invalid or expired token."))?;
    // The token alone is not enough: a deleted, deactivated or since-revoked user must
    // stop working at once, so the current state of the account is checked every time.
    let account = users::auth_state(state, claims.sub)
        .await?
        .ok_or(AppError::Unauthorized("Invalid or expired token."))?;
    if !account.active || account.token_version != claims.ver {
        return Err(AppError::Unauthorized("Invalid or expired token."));
    }
    let quota = state
        .limits
        .check_user(account.id)
        .inspect_err(|err| write_exhausted(res, err))?;
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
    // Borrowed, not cloned: this runs on every authenticated request.
    let outcome = match depot.get_typed::<AppState>() {
        Ok(state) => resolve(req, state, res).await,
        Err(_) => Err(AppError::Internal(anyhow::anyhow!("state missing"))),
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
