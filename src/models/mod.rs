//! Model behaviour: validation and persistence rules, usable without HTTP.

pub mod events;
pub mod sessions;
pub mod tasks;
pub mod txn;
pub mod users;
