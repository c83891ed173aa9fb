//! Authentication primitives: password hashing, JWT access tokens, refresh-token
//! secrets, the per-account auth-state cache, and who the caller is. The hoops that
//! enforce them on routes live in `routes::guard`; the abuse limits in `limits`.

pub mod cache;
pub mod jwt;
pub mod mac;
pub mod password;
pub mod refresh_secret;

use salvo::Depot;
use uuid::Uuid;

use crate::entities::user::Role;
use crate::error::AppError;

/// The authenticated caller, placed in the depot by `routes::guard::authenticate`.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
}

impl CurrentUser {
    pub fn from_depot(depot: &Depot) -> Result<Self, AppError> {
        depot
            .get_typed::<CurrentUser>()
            .cloned()
            .map_err(|_| AppError::Unauthorized("Authentication required."))
    }
}
