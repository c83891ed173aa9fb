//! End-to-end tests over HTTP against a real server and a real database.

mod admin;
mod auth;
mod cancellation;
mod cursors;
mod errors;
mod events;
mod hardening_input;
mod hardening_ops;
mod helpers;
mod idempotency;
mod openapi;
mod operations;
mod replicas;
mod sessions;
mod sqlite;
mod standards;
mod tasks;
mod tokens;
