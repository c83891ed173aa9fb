//! HTTP layer: thin handlers that extract, call the models and shape the response.

pub mod admin;
pub mod auth;
pub mod comments;
pub mod events;
pub mod frontend;
pub mod guard;
pub mod health;
pub mod idempotent;
pub mod projects;
pub mod responses;
pub mod tasks;

use std::net::{IpAddr, Ipv4Addr};

use salvo::prelude::*;

use crate::error::AppError;
use crate::state::AppState;

pub fn app_state_ref(depot: &Depot) -> Result<&AppState, AppError> {
    AppState::from_depot(depot)
}

/// The client's address: the TCP peer, or what a trusted proxy says it is
/// (`server.trusted_proxies`; see `client_ip`).
pub fn client_ip(req: &Request, state: &AppState) -> IpAddr {
    let peer = req
        .remote_addr()
        .ip()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    state.client_ip.resolve(peer, req.headers())
}
