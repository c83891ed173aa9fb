//! The application state every handler may reach through the depot: connections, keys,
//! limits and the cross-replica plumbing. Built once in `startup::build_state`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use salvo::Depot;
use sea_orm::DatabaseConnection;

use crate::auth::jwt::JwtKeys;
use crate::auth::password::PasswordHasher;
use crate::client_ip::ClientIpResolver;
use crate::cluster::{Feed, RedisLink, Revocations};
use crate::config::Settings;
use crate::error::AppError;
use crate::limits::Limits;
use crate::models::tasks::TaskStore;

/// Everything a handler may need, cheap to clone, injected into every request's depot.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    /// Where tasks are read and written (see `models::tasks`).
    pub tasks: TaskStore,
    pub settings: Arc<Settings>,
    pub jwt: Arc<JwtKeys>,
    pub hasher: PasswordHasher,
    pub limits: Arc<Limits>,
    /// Owns the auth-state cache and tells other replicas about revocations.
    pub revocations: Arc<Revocations>,
    /// Wakes change-feed streams after task changes, here and on other replicas.
    pub feed: Arc<Feed>,
    /// The shared Redis, when configured (readiness reports on it).
    pub redis: Option<RedisLink>,
    pub client_ip: Arc<ClientIpResolver>,
    /// Serialises admin role/activation changes (see `models::users::admin_update`).
    pub admin_lock: Arc<tokio::sync::Mutex<()>>,
    /// Set when shutdown begins so readiness fails and load balancers stop sending traffic.
    pub draining: Arc<AtomicBool>,
}

impl AppState {
    /// The state the `affix-state` hoop put into this request's depot. Handlers take it as
    /// an argument instead (see `extract`); hoops and probes read it here.
    pub fn from_depot(depot: &Depot) -> Result<&Self, AppError> {
        depot.get_typed::<AppState>().map_err(|_| {
            AppError::Internal(anyhow::anyhow!("application state missing from depot"))
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
