//! Account routes under `/api/v1/auth`: register, login, refresh-token rotation, logout
//! (one session or all), the caller's profile and password change. Limits and lockouts are
//! decided in `crate::limits`; these handlers only reserve, settle and report.

use salvo::http::StatusCode;
use salvo::prelude::*;

use crate::auth::CurrentUser;
use crate::entities::user;
use crate::error::{AppError, Result};
use crate::extract::Payload;
use crate::metrics::{IDEMPOTENT_REPLAYS, LOGINS, REFRESHES, REGISTRATIONS};
use crate::models::idempotency::{self, Once, Scope};
use crate::models::sessions::{self, Rotation};
use crate::models::users::{self, NewUser};
use crate::requests::{
    ChangePasswordRequest, LoginRequest, RefreshRequest, RegisterRequest, UpdateMeRequest,
};
use crate::routes::client_ip;
use crate::routes::guard::write_exhausted;
use crate::routes::idempotent::{self, Idempotent};
use crate::routes::responses::{Created, NoContent, Ok200};
use crate::state::AppState;
use crate::telemetry::email_tag;
use crate::views::{TokenResponse, UserView};

/// Register a new account. The first account ever created becomes the administrator.
/// With `Idempotency-Key`, a retry with the same key and the same body (password
/// included) within 24 hours replays the first response (`Idempotent-Replayed: true`);
/// the same key with any other body is a 422 and reveals nothing of the first.
#[endpoint(operation_id = "register", tags("auth"), parameters(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "Client-chosen key (1-255 visible ASCII characters) making the registration safe to retry; remembered 24 hours")), status_codes(201, 400, 409, 413, 415, 422, 429, 503))]
pub async fn register(
    req: &mut Request,
    state: AppState,
    body: Payload<RegisterRequest>,
) -> Result<Idempotent<Created<UserView>>> {
    let claim = idempotent::claim(req, &state, Scope::Register).await?;
    let new = NewUser::try_from(body.0)?;
    let tag = email_tag(new.email.as_str());
    let ip = client_ip(req, &state);
    let Some(claim) = claim else {
        let user = users::register(&state.db, &state.hasher, new).await?;
        metrics::counter!(REGISTRATIONS).increment(1);
        tracing::info!(event = "register", user_id = %user.id, email = %tag, role = user.role.as_str(), client_ip = %ip, "account registered");
        return Ok(Idempotent::Fresh(Created {
            location: format!("/api/v1/admin/users/{}", user.id),
            etag: None,
            body: user.into(),
        }));
    };
    let render = |user: &user::Model| {
        idempotent::stored(
            StatusCode::CREATED,
            format!("/api/v1/admin/users/{}", user.id),
            None,
            &UserView::from(user.clone()),
        )
    };
    match idempotency::register(&state.db, &state.hasher, &claim, new, render).await? {
        Once::Created(user, response) => {
            metrics::counter!(REGISTRATIONS).increment(1);
            tracing::info!(event = "register", user_id = %user.id, email = %tag, role = user.role.as_str(), client_ip = %ip, "account registered");
            Ok(Idempotent::Stored {
                response,
                replayed: false,
            })
        }
        Once::Replayed(response) => {
            metrics::counter!(IDEMPOTENT_REPLAYS, "operation" => "register").increment(1);
            tracing::info!(event = "register", outcome = "replayed", email = %tag, client_ip = %ip, "idempotent registration replayed");
            Ok(Idempotent::Stored {
                response,
                replayed: true,
            })
        }
    }
}

async fn tokens_for(
    state: &AppState,
    user: user::Model,
    session: sessions::IssuedRefresh,
) -> Result<TokenResponse> {
    let access_token = state.jwt.issue(user.id, user.role, user.token_version)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_secs,
        refresh_token: session.token,
        refresh_expires_in: session.expires_in,
        user: user.into(),
    })
}

/// Exchange email and password for an access token and a refresh token.
#[endpoint(
    operation_id = "login",
    tags("auth"),
    status_codes(200, 400, 401, 413, 415, 422, 429, 503)
)]
pub async fn login(
    req: &mut Request,
    res: &mut Response,
    state: AppState,
    body: Payload<LoginRequest>,
) -> Result<Ok200<TokenResponse>> {
    let LoginRequest { email, password } = body.0;
    let email = users::login_email(&email)?;
    let (tag, ip) = (email_tag(&email), client_ip(req, &state));
    // Counted before the password is checked, so concurrent guesses cannot overrun it.
    let attempt = match state.limits.reserve_login(&email, ip).await {
        Ok(attempt) => attempt,
        Err(refusal) => {
            metrics::counter!(LOGINS, "outcome" => "throttled").increment(1);
            tracing::warn!(event = "login", outcome = "throttled", email = %tag, client_ip = %ip, "login throttled");
            write_exhausted(res, &refusal);
            return Err(refusal.into());
        }
    };
    // A client that disconnects during the check still leaves an outcome in the metrics.
    let in_progress = crate::metrics::LoginInProgress::start();
    let verified = users::verify_credentials(&state.db, &state.hasher, &email, &password).await;
    in_progress.settle();
    match verified {
        Ok(user) => {
            state.limits.login_succeeded(&attempt).await;
            metrics::counter!(LOGINS, "outcome" => "success").increment(1);
            tracing::info!(event = "login", outcome = "success", user_id = %user.id, email = %tag, client_ip = %ip, "login succeeded");
            let session = sessions::start(
                &state.db,
                user.id,
                state.settings.auth.refresh_token_ttl_secs,
            )
            .await?;
            Ok(Ok200(tokens_for(&state, user, session).await?))
        }
        Err(AppError::InvalidCredentials) => {
            metrics::counter!(LOGINS, "outcome" => "failure").increment(1);
            tracing::info!(event = "login", outcome = "failure", email = %tag, client_ip = %ip, "login failed");
            Err(AppError::InvalidCredentials)
        }
        Err(err) => Err(err),
    }
}

/// Rotate a refresh token: returns new tokens; the presented one is spent. Reusing a
/// spent token revokes every token of that login.
#[endpoint(
    operation_id = "refreshToken",
    tags("auth"),
    status_codes(200, 400, 401, 413, 415, 422, 429, 503)
)]
pub async fn refresh(
    req: &mut Request,
    state: AppState,
    body: Payload<RefreshRequest>,
) -> Result<Ok200<TokenResponse>> {
    let ttl = state.settings.auth.refresh_token_ttl_secs;
    let rejected = |state: &AppState| {
        metrics::counter!(REFRESHES, "outcome" => "rejected").increment(1);
        tracing::info!(event = "refresh", outcome = "rejected", client_ip = %client_ip(req, state), "refresh rejected");
        sessions::INVALID
    };
    let (user_id, issued) = match sessions::rotate(&state.db, &body.0.refresh_token, ttl).await? {
        Rotation::Rotated(user_id, issued) => (user_id, issued),
        Rotation::Invalid => return Err(rejected(&state)),
        Rotation::Reused { user_id, .. } => {
            state.revocations.announce(user_id).await;
            return Err(rejected(&state));
        }
    };
    let user = users::get(&state.db, user_id)
        .await
        .map_err(|_| AppError::Unauthorized("Invalid or expired refresh token."))?;
    if !user.active {
        return Err(AppError::Unauthorized("Invalid or expired refresh token."));
    }
    metrics::counter!(REFRESHES, "outcome" => "success").increment(1);
    tracing::info!(event = "refresh", outcome = "success", user_id = %user.id, client_ip = %client_ip(req, &state), "tokens refreshed");
    Ok(Ok200(tokens_for(&state, user, issued).await?))
}

/// Log out this session: revokes the refresh token's whole family. Possession of the
/// refresh token is the proof, so this works even after the access token expired.
/// Unknown tokens are accepted silently (idempotent, and reveals nothing).
#[endpoint(
    operation_id = "logout",
    tags("auth"),
    status_codes(204, 400, 413, 415, 422, 429, 503)
)]
pub async fn logout(
    req: &mut Request,
    state: AppState,
    body: Payload<RefreshRequest>,
) -> Result<NoContent> {
    let revoked_for = sessions::logout(&state.db, &body.0.refresh_token).await?;
    if let Some(user_id) = revoked_for {
        tracing::info!(event = "logout", user_id = %user_id, client_ip = %client_ip(req, &state), "session revoked");
    }
    Ok(NoContent)
}

/// Log out everywhere: revokes all refresh tokens and every access token issued so far.
#[endpoint(operation_id = "logoutAll", tags("auth"), security(("bearer" = [])), status_codes(204, 401, 429, 503))]
pub async fn logout_all(state: AppState, caller: CurrentUser) -> Result<NoContent> {
    sessions::revoke_user_atomically(&state.db, caller.id).await?;
    state.revocations.announce(caller.id).await;
    tracing::info!(event = "logout_all", user_id = %caller.id, "all sessions revoked");
    Ok(NoContent)
}

/// The authenticated user's profile.
#[endpoint(operation_id = "getMe", tags("auth"), security(("bearer" = [])), status_codes(200, 401, 429, 503))]
pub async fn me(state: AppState, caller: CurrentUser) -> Result<Ok200<UserView>> {
    Ok(Ok200(users::get(&state.db, caller.id).await?.into()))
}

/// Change the authenticated user's display name.
#[endpoint(operation_id = "updateMe", tags("auth"), security(("bearer" = [])), status_codes(200, 400, 401, 413, 415, 422, 429, 503))]
pub async fn update_me(
    state: AppState,
    caller: CurrentUser,
    body: Payload<UpdateMeRequest>,
) -> Result<Ok200<UserView>> {
    let user = users::update_name(&state.db, caller.id, &body.0.name).await?;
    tracing::info!(event = "profile_update", user_id = %caller.id, "profile updated");
    Ok(Ok200(user.into()))
}

/// Change password; every existing session and access token stops working.
/// A wrong current password is a 403. Wrong guesses back off like logins (429), and
/// after `limits.password_failures_before_revoke` in a row every session of the account
/// is revoked: whoever keeps guessing holds a token they should not have.
#[endpoint(operation_id = "changePassword", tags("auth"), security(("bearer" = [])), status_codes(204, 400, 401, 403, 413, 415, 422, 429, 503))]
pub async fn change_password(
    res: &mut Response,
    state: AppState,
    caller: CurrentUser,
    body: Payload<ChangePasswordRequest>,
) -> Result<NoContent> {
    let ChangePasswordRequest {
        current_password,
        new_password,
    } = body.0;
    // A malformed new password is the caller's typo, not a guess: refuse it uncounted.
    let new_password = users::new_password(new_password)?;
    let attempt = state
        .limits
        .reserve_password_check(caller.id)
        .await
        .inspect_err(|refusal| write_exhausted(res, refusal))?;
    let changed = users::change_password(
        &state.db,
        &state.hasher,
        caller.id,
        &current_password,
        &new_password,
    )
    .await;
    match changed {
        Ok(()) => {
            state.limits.password_check_succeeded(&attempt).await;
            state.revocations.announce(caller.id).await;
            tracing::info!(event = "password_change", user_id = %caller.id, "password changed; sessions revoked");
            Ok(NoContent)
        }
        Err(AppError::Forbidden(why)) if state.limits.should_revoke_after(&attempt) => {
            sessions::revoke_user_atomically(&state.db, caller.id).await?;
            state.revocations.announce(caller.id).await;
            tracing::warn!(event = "password_change", outcome = "revoked", user_id = %caller.id, failures = attempt.failures, "repeated wrong current password; all sessions revoked");
            Err(AppError::Forbidden(why))
        }
        Err(err) => Err(err),
    }
}
