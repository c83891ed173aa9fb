//! Administration of accounts. The admin role is enforced by the `require_admin` hoop on
//! this router, never inside the handlers.

use salvo::prelude::*;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::extract::{Payload, Query, ResourceId};
use crate::models::users;
use crate::requests::{AdminUpdateUserRequest, PageQuery};
use crate::routes::responses::{NoContent, Ok200};
use crate::state::AppState;
use crate::validate::{self, Errors};
use crate::views::{UserPage, UserView};

/// List all users (paginated).
#[endpoint(operation_id = "listUsers", tags("admin"), security(("bearer" = [])), status_codes(200, 401, 403, 422, 429, 503))]
pub async fn list_users(state: AppState, query: Query<PageQuery>) -> Result<Ok200<UserPage>> {
    let mut errors = Errors::default();
    let (limit, offset) = validate::page(&mut errors, query.0.limit, query.0.offset);
    errors.finish(())?;
    let (items, total) = users::list(&state.db, limit, offset).await?;
    Ok(Ok200(UserPage {
        items: items.into_iter().map(UserView::from).collect(),
        total,
        limit,
        offset,
    }))
}

/// One user.
#[endpoint(operation_id = "getUser", tags("admin"), security(("bearer" = [])), status_codes(200, 401, 403, 404, 429, 503))]
pub async fn get_user(state: AppState, id: ResourceId) -> Result<Ok200<UserView>> {
    let user = users::get(&state.db, id.0).await?;
    Ok(Ok200(user.into()))
}

/// Change a user's role and/or activation. The last active admin cannot lose admin rights.
#[endpoint(operation_id = "updateUser", tags("admin"), security(("bearer" = [])), status_codes(200, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503))]
pub async fn update_user(
    state: AppState,
    admin: CurrentUser,
    id: ResourceId,
    body: Payload<AdminUpdateUserRequest>,
) -> Result<Ok200<UserView>> {
    let AdminUpdateUserRequest { role, active } = body.0;
    let (user, revoked) =
        users::admin_update(&state.db, &state.admin_lock, id.0, role, active).await?;
    if revoked {
        state.revocations.announce(user.id).await;
    }
    tracing::info!(event = "admin_user_update", admin_id = %admin.id, target_user_id = %user.id, role = user.role.as_str(), active = user.active, "user updated by admin");
    Ok(Ok200(user.into()))
}

/// Delete a user and all their tasks. The last active admin cannot be deleted.
#[endpoint(operation_id = "deleteUser", tags("admin"), security(("bearer" = [])), status_codes(204, 401, 403, 404, 409, 429, 503))]
pub async fn delete_user(state: AppState, admin: CurrentUser, id: ResourceId) -> Result<NoContent> {
    users::delete(&state.db, &state.admin_lock, id.0).await?;
    state.revocations.announce(id.0).await;
    tracing::info!(event = "admin_user_delete", admin_id = %admin.id, target_user_id = %id.0, "user deleted by admin");
    Ok(NoContent)
}
