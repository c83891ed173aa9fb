//! Leases for the per-user window when it is counted in Redis. The per-user limit is on
//! every authenticated request, so one Redis round trip each would be its main cost; a
//! replica instead takes a few units at once (`INCRBY`) and spends them locally. Units are
//! counted in Redis the moment they are leased, so the limit is never exceeded; at worst a
//! user is refused while other replicas still hold unspent units, at most
//! (replicas - 1) x (units - 1) of the budget, for the rest of the window.

use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::Quota;

#[derive(Debug, Clone, Copy)]
struct Lease {
    /// Units still to spend here.
    left: u32,
    /// Budget left in Redis (beyond this lease) when it was taken.
    beyond: u32,
    /// End of the Redis window the units belong to.
    expires: Instant,
}

pub struct Leases {
    held: Cache<String, Lease>,
}

impl Leases {
    pub fn new(capacity: u64, window: Duration) -> Self {
        Self {
            held: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(window)
                .eviction_policy(EvictionPolicy::lru())
                .build(),
        }
    }

    /// Spends one leased unit of `key`, if this replica holds one for the current window.
    pub fn take(&self, key: &str, limit: u32) -> Option<Quota> {
        let now = Instant::now();
        let mut spent = None;
        self.held
            .entry(key.to_string())
            .and_compute_with(|current| match current.map(|entry| entry.into_value()) {
                Some(lease) if lease.left > 0 && lease.expires > now => {
                    let lease = Lease {
                        left: lease.left - 1,
                        ..lease
                    };
                    spent = Some(lease);
                    Op::Put(lease)
                }
                _ => Op::Nop,
            });
        spent.map(|lease| Quota {
            limit,
            remaining: lease.beyond.saturating_add(lease.left).min(limit),
            reset_secs: super::secs_from_ms(
                u64::try_from(lease.expires.duration_since(now).as_millis()).unwrap_or(0),
            ),
        })
    }

    /// Keeps `left` units taken from Redis, whose window ends in `ttl_ms`.
    pub fn hold(&self, key: String, left: u32, beyond: u32, ttl_ms: u64) {
        if left == 0 {
            return;
        }
        let lease = Lease {
            left,
            beyond,
            expires: Instant::now() + Duration::from_millis(ttl_ms),
        };
        self.held.insert(key, lease);
    }
}
