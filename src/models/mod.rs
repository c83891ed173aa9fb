//! Model behaviour: validation and persistence rules, usable without HTTP.

pub mod batch;
pub mod events;
pub mod housekeeping;
pub mod idempotency;
pub mod sessions;
pub mod task_by_id;
pub mod task_cursor;
pub mod task_list;
pub mod task_rows;
pub mod task_writes;
pub mod tasks;
pub mod txn;
pub mod users;
