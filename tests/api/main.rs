//! End-to-end tests over HTTP against a real server and a real database.

mod admin;
mod auth;
mod errors;
mod helpers;
mod openapi;
mod operations;
mod sessions;
mod sqlite;
mod tasks;
mod tokens;
