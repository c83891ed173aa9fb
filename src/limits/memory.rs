//! In-process counters: the embedded default, and the fallback while Redis is away.
//! Each map is bounded in entries (least recently used go first) and keys are short
//! (emails arrive hashed), so memory is bounded whatever clients send.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use moka::policy::EvictionPolicy;
use moka::sync::Cache;

use super::{AccountCeiling, Backoff, KNOWN_ADDRESS_TTL, Reservation, Settle};

pub const DEFAULT_CAPACITY: u64 = 100_000;

#[derive(Debug, Clone, Copy)]
struct Counter {
    started: Instant,
    count: u64,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct MemoryStore {
    /// One cell per key, made when its window opens; the cache's time to live is one
    /// window, so an entry leaves when the window it counts ends.
    windows: Cache<String, Arc<Mutex<Counter>>>,
    failures: Cache<String, Failures>,
    accounts: Cache<String, Counter>,
    known: Cache<String, ()>,
    /// A reservation reads and writes several maps; one at a time keeps it atomic.
    /// Only failed-login paths take it, and they are rate limited.
    reserving: Mutex<()>,
}

fn bounded<V: Clone + Send + Sync + 'static>(capacity: u64, ttl: Duration) -> Cache<String, V> {
    Cache::builder()
        .max_capacity(capacity)
        .time_to_live(ttl)
        .eviction_policy(EvictionPolicy::lru())
        .build()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl MemoryStore {
    /// `longest` is the longest window or lock any entry must outlive.
    pub fn new(capacity: u64, longest: Duration) -> Self {
        Self {
            windows: bounded(capacity, super::WINDOW),
            failures: bounded(capacity, longest),
            accounts: bounded(capacity, longest),
            known: bounded(capacity, KNOWN_ADDRESS_TTL),
            reserving: Mutex::new(()),
        }
    }

    pub fn entry_count(&self) -> u64 {
        self.windows.entry_count()
            + self.failures.entry_count()
            + self.accounts.entry_count()
            + self.known.entry_count()
    }

    /// Applies pending evictions now (the caches otherwise do it in batches).
    #[cfg(test)]
    pub fn sync(&self) {
        self.windows.run_pending_tasks();
        self.failures.run_pending_tasks();
        self.accounts.run_pending_tasks();
        self.known.run_pending_tasks();
    }

    /// Counts one request in `key`'s fixed window: (count including this one, ms left).
    /// A hit only looks the cell up and locks it: an upsert through the cache's entry API
    /// (a key copy, a per-key lock, a re-insert) cost several times as much, on every
    /// authenticated request.
    pub fn window_hit(&self, key: &str, window_ms: u64) -> (u64, u64) {
        let window = Duration::from_millis(window_ms);
        let now = Instant::now();
        let fresh = || {
            Arc::new(Mutex::new(Counter {
                started: now,
                count: 0,
            }))
        };
        let cell = match self.windows.get(key) {
            Some(cell) => cell,
            None => self.windows.get_with(key.to_string(), fresh),
        };
        let mut counter = cell.lock();
        // The entry normally leaves with its window; a cell still held past that starts over.
        if now.duration_since(counter.started) >= window {
            *counter = Counter {
                started: now,
                count: 0,
            };
        }
        counter.count += 1;
        let left = window.saturating_sub(now.duration_since(counter.started));
        (counter.count, millis(left))
    }

    fn known_key(known_key: &str, address: &str) -> String {
        format!("{known_key}|{address}")
    }

    pub fn reserve(
        &self,
        pair_key: &str,
        backoff: Backoff,
        ceiling: Option<&AccountCeiling>,
    ) -> Reservation {
        let _one_at_a_time = self.reserving.lock();
        let now = Instant::now();
        let forgiveness = Duration::from_millis(backoff.max_ms);
        let mut failures = self
            .failures
            .get(pair_key)
            // A long quiet period forgives earlier failures, so locks never escalate forever.
            .filter(|f| now.duration_since(f.last) < forgiveness)
            .unwrap_or(Failures {
                count: 0,
                last: now,
                locked_until: None,
            });
        if let Some(until) = failures.locked_until.filter(|until| *until > now) {
            return Reservation::Refused {
                retry_after_ms: millis(until - now),
            };
        }
        let unknown = ceiling.filter(|c| {
            !self
                .known
                .contains_key(&Self::known_key(&c.known_key, &c.address))
        });
        let mut account = None;
        if let Some(ceiling) = unknown {
            let window = Duration::from_millis(ceiling.window_ms);
            let counter = self
                .accounts
                .get(&ceiling.account_key)
                .filter(|c| now.duration_since(c.started) < window)
                .unwrap_or(Counter {
                    started: now,
                    count: 0,
                });
            if counter.count >= u64::from(ceiling.limit) {
                let left = window.saturating_sub(now.duration_since(counter.started));
                return Reservation::Refused {
                    retry_after_ms: millis(left).max(1),
                };
            }
            account = Some((ceiling.account_key.clone(), counter));
        }
        failures.count += 1;
        failures.last = now;
        if let Some(lock_ms) = backoff.lock_ms(failures.count) {
            failures.locked_until = Some(now + Duration::from_millis(lock_ms));
        }
        self.failures.insert(pair_key.to_string(), failures);
        let on_account = account.is_some();
        if let Some((key, counter)) = account {
            self.accounts.insert(
                key,
                Counter {
                    count: counter.count + 1,
                    ..counter
                },
            );
        }
        Reservation::Granted {
            failures: failures.count,
            on_account,
        }
    }

    pub fn clear(&self, settle: &Settle<'_>) {
        self.failures.invalidate(settle.pair_key);
        if let Some(key) = settle.account_key {
            let _one_at_a_time = self.reserving.lock();
            if let Some(counter) = self.accounts.get(key) {
                self.accounts.insert(
                    key.to_string(),
                    Counter {
                        count: counter.count.saturating_sub(1),
                        ..counter
                    },
                );
            }
        }
        if let Some((known_key, address)) = settle.known {
            self.known.insert(Self::known_key(known_key, address), ());
        }
    }
}
