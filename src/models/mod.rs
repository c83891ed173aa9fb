//! Model behaviour: validation and persistence rules, usable without HTTP.

pub mod assignments;
pub mod batch;
pub mod comments;
pub mod events;
pub mod housekeeping;
pub mod idempotency;
pub mod projects;
pub mod sessions;
pub mod tasks;
pub mod txn;
pub mod users;
