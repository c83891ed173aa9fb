//! taskapi: a task management REST API (salvo + sea-orm) on SQLite or PostgreSQL.

pub mod auth;
pub mod cli;
pub mod cli_healthcheck;
pub mod client_ip;
pub mod cluster;
pub mod config;
pub mod db;
pub mod domain;
pub mod entities;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod models;
pub mod requests;
pub mod routes;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validate;
pub mod views;
