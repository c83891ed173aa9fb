//! A short-lived in-process cache of each account's auth state (role, active, token
//! version), so that authenticated requests do not all pay a database round trip.
//!
//! Every revocation made through this process (logout-all, password change, role change,
//! deactivation, deletion) invalidates the entry at once, so on a single node revocation
//! stays immediate. With several replicas, another replica may honour a revoked token for
//! at most `auth.state_cache_ttl_ms` (default 1 s); set it to 0 to disable the cache.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::models::users::AuthState;

/// Above this many entries, expired ones are swept so memory stays bounded.
const SWEEP_THRESHOLD: usize = 50_000;

pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<Uuid, (AuthState, Instant)>>,
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::default(),
        }
    }

    pub fn get(&self, id: Uuid) -> Option<AuthState> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(&id)
            .filter(|(_, stored)| stored.elapsed() < self.ttl)
            .map(|(state, _)| state.clone())
    }

    pub fn put(&self, state: AuthState) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > SWEEP_THRESHOLD {
            let ttl = self.ttl;
            entries.retain(|_, (_, stored)| stored.elapsed() < ttl);
        }
        entries.insert(state.id, (state, Instant::now()));
    }

    pub fn invalidate(&self, id: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entities::user::Role;

    fn state(id: Uuid) -> AuthState {
        AuthState {
            id,
            role: Role::User,
            active: true,
            token_version: 0,
        }
    }

    #[test]
    fn entries_expire_and_can_be_invalidated() {
        let cache = AuthCache::new(Duration::from_millis(50));
        let id = Uuid::now_v7();
        cache.put(state(id));
        assert!(cache.get(id).is_some());
        cache.invalidate(id);
        assert!(cache.get(id).is_none());
        cache.put(state(id));
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn zero_ttl_disables_the_cache() {
        let cache = AuthCache::new(Duration::ZERO);
        let id = Uuid::now_v7();
        cache.put(state(id));
        assert!(cache.get(id).is_none());
    }
}
