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

    /// Keeps `left` units taken from Redis, whose window ends in `ttl_ms`. Units this
    /// replica still holds for the same window are kept too: concurrent requests that found
    /// no lease each take one from Redis, and keeping only the last would lose the others'
    /// units (counted in Redis, never spent), refusing a client well inside its budget.
    pub fn hold(&self, key: String, left: u32, beyond: u32, ttl_ms: u64) {
        if left == 0 {
            return;
        }
        let now = Instant::now();
        let fresh = Lease {
            left,
            beyond,
            expires: now + Duration::from_millis(ttl_ms),
        };
        self.held.entry(key).and_compute_with(|current| {
            match current.map(|entry| entry.into_value()) {
                // A held lease that has not expired is of the same Redis window.
                Some(held) if held.left > 0 && held.expires > now => Op::Put(Lease {
                    left: held.left.saturating_add(left),
                    beyond: held.beyond.min(beyond),
                    expires: held.expires.min(fresh.expires),
                }),
                _ => Op::Put(fresh),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_taken_concurrently_for_one_window_add_up() {
        let leases = Leases::new(100, Duration::from_secs(60));
        // Three requests missed at once and each leased 10 units (1 spent, 9 kept).
        leases.hold("user:a".into(), 9, 570, 60_000);
        leases.hold("user:a".into(), 9, 560, 60_000);
        leases.hold("user:a".into(), 9, 550, 60_000);
        let spent = (0..30).map_while(|_| leases.take("user:a", 600)).count();
        assert_eq!(spent, 27, "every leased unit is spent here");
    }

    #[test]
    fn an_expired_lease_is_replaced_not_added_to() {
        let leases = Leases::new(100, Duration::from_secs(60));
        leases.hold("user:b".into(), 5, 100, 0);
        leases.hold("user:b".into(), 2, 100, 60_000);
        let spent = (0..10).map_while(|_| leases.take("user:b", 600)).count();
        assert_eq!(spent, 2);
    }
}
