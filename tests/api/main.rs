//! End-to-end tests over HTTP against a real server and a real database.

mod admin;
mod assignments;
mod auth;
mod cancellation;
mod cursors;
mod data_integrity;
mod database_faults;
mod errors;
mod events;
mod helpers;
mod http_semantics;
mod idempotency;
mod lifecycle;
mod observability;
mod openapi;
mod operations;
mod projects;
mod replicas;
mod search;
mod sessions;
mod sqlite;
mod tasks;
mod tokens;
