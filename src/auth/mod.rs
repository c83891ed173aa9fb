//! Authentication primitives: password hashing, JWT access tokens, refresh tokens and
//! the hoops that guard routes.

pub mod cache;
pub mod guard;
pub mod jwt;
pub mod password;
pub mod refresh;
pub mod throttle;

pub use guard::{CurrentUser, authenticate, require_admin};
