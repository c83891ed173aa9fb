//! A short-lived in-process cache of each account's auth state (role, active, token
//! version), so that authenticated requests do not all pay a database round trip.
//!
//! Revocations (logout-all, password change, role change, deactivation, deletion)
//! invalidate the entry on the replica that made them at once, and on every other replica
//! within milliseconds through the revocation fan-out (`cluster::revocations`). The TTL
//! (`auth.state_cache_ttl_ms`, 1 s) is only the safety net for a lost message; while the
//! fan-out is disconnected the cache is bypassed entirely.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use uuid::Uuid;

use crate::entities::user::Role;

/// Bound on cached accounts; the least recently used go first.
const MAX_ENTRIES: u64 = 100_000;

/// What the auth guard needs to know about an account on every request.
#[derive(Debug, Clone)]
pub struct AuthState {
    pub id: Uuid,
    pub role: Role,
    pub active: bool,
    pub token_version: i32,
}

pub struct AuthCache {
    entries: Option<Cache<Uuid, AuthState>>,
    /// Bumped by every invalidation. A load that started before an invalidation must not
    /// store what it read: it may be the state from just before the revocation.
    epoch: AtomicU64,
    bypass: AtomicBool,
}

/// Taken before reading an account from the database; see [`AuthCache::put`].
#[derive(Debug, Clone, Copy)]
pub struct Epoch(u64);

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        let entries = (!ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(MAX_ENTRIES)
                .time_to_live(ttl)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build()
        });
        Self {
            entries,
            epoch: AtomicU64::new(0),
            bypass: AtomicBool::new(false),
        }
    }

    pub fn get(&self, id: Uuid) -> Option<AuthState> {
        if self.bypass.load(Ordering::Acquire) {
            return None;
        }
        self.entries.as_ref()?.get(&id)
    }

    pub fn epoch(&self) -> Epoch {
        Epoch(self.epoch.load(Ordering::Acquire))
    }

    /// Stores `state` unless an invalidation happened since `read_at`.
    pub fn put(&self, state: AuthState, read_at: Epoch) {
        let Some(entries) = &self.entries else {
            return;
        };
        if self.bypass.load(Ordering::Acquire) || self.epoch.load(Ordering::Acquire) != read_at.0 {
            return;
        }
        let id = state.id;
        entries.insert(id, state);
        // An invalidation that raced with the insert must win: take the entry back out.
        if self.epoch.load(Ordering::Acquire) != read_at.0 {
            entries.invalidate(&id);
        }
    }

    pub fn invalidate(&self, id: Uuid) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate(&id);
        }
    }

    pub fn invalidate_all(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if let Some(entries) = &self.entries {
            entries.invalidate_all();
        }
    }

    /// While on, nothing is served from or stored in the cache (every request reads the
    /// database): used while revocations from other replicas might be missed.
    pub fn set_bypass(&self, on: bool) {
        self.bypass.store(on, Ordering::Release);
        if on {
            self.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        cache.put(state(id), cache.epoch());
        assert!(cache.get(id).is_some());
        cache.invalidate(id);
        assert!(cache.get(id).is_none());
        cache.put(state(id), cache.epoch());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn a_read_older_than_an_invalidation_is_not_cached() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let id = Uuid::now_v7();
        let read_at = cache.epoch();
        // The revocation lands while the (stale) row is on its way from the database.
        cache.invalidate(id);
        cache.put(state(id), read_at);
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn bypass_serves_nothing_until_lifted() {
        let cache = AuthCache::new(Duration::from_secs(60));
        let id = Uuid::now_v7();
        cache.put(state(id), cache.epoch());
        cache.set_bypass(true);
        assert!(cache.get(id).is_none());
        cache.put(state(id), cache.epoch());
        assert!(cache.get(id).is_none());
        cache.set_bypass(false);
        cache.put(state(id), cache.epoch());
        assert!(cache.get(id).is_some());
    }

    #[test]
    fn zero_ttl_disables_the_cache() {
        let cache = AuthCache::new(Duration::ZERO);
        let id = Uuid::now_v7();
        cache.put(state(id), cache.epoch());
        assert!(cache.get(id).is_none());
    }
}
