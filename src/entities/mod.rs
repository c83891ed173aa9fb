//! Database tables as sea-orm entities. Behaviour lives in `crate::models`, API shapes in `crate::views`.

pub mod comment;
pub mod idempotency_key;
pub mod label;
pub mod project;
pub mod project_member;
pub mod refresh_token;
pub mod task;
pub mod task_event;
pub mod user;
