//! Every abuse limit of the service, and only here:
//!
//! - fixed one-minute windows per client IP (the unauthenticated auth routes) and per user
//!   (every authenticated route);
//! - login back-off per (email, client IP): after `login_failures_before_lock` failures
//!   the pair is locked, the lock doubling with each further failure up to a cap;
//! - a ceiling per account across every address that has never logged in to it, so a
//!   slow guess spread over many IPs stops, while the owner's usual address (one with a
//!   successful login in the last 30 days) is never locked out by strangers;
//! - back-off on wrong current passwords (`POST /auth/password`), per account.
//!
//! Attempts are counted *before* the password is checked (reserve, then settle), so
//! concurrent requests cannot exceed a budget. Counters live in Redis when one is
//! configured, shared by every replica and timed by Redis's clock; otherwise (and while
//! Redis is unreachable) in this process's memory, bounded in entries.

mod lease;
mod memory;
mod redis_store;

use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cluster::RedisLink;
use crate::config::LimitSettings;
use crate::error::AppError;
use crate::metrics::{LIMIT_FALLBACKS, LIMIT_REFUSALS};

use lease::Leases;
use memory::MemoryStore;
use redis_store::RedisStore;

pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a successful login makes an address "known" to the account.
pub const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A permitted request's remaining budget, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// A refusal: which budget ran out (if it is a counted one) and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub limit: Option<u32>,
    pub retry_after_secs: u64,
}

impl From<Exhausted> for AppError {
    fn from(refusal: Exhausted) -> Self {
        AppError::TooManyRequests {
            retry_after_secs: refusal.retry_after_secs,
        }
    }
}

/// Which limit spoke, for metrics and logs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    AuthPerIp,
    PerUser,
    Login,
    PasswordCheck,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::AuthPerIp => "auth_per_ip",
            Kind::PerUser => "per_user",
            Kind::Login => "login",
            Kind::PasswordCheck => "password_check",
        }
    }
}

/// Parameters of one exponential back-off.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    threshold: u32,
    base_ms: u64,
    max_ms: u64,
}

impl Backoff {
    /// Lock length once `failures` (this one included) reached the threshold.
    fn lock_ms(&self, failures: u32) -> Option<u64> {
        let threshold = self.threshold.max(1);
        (failures >= threshold).then(|| {
            let doublings = (failures - threshold).min(16);
            self.base_ms.saturating_mul(1 << doublings).min(self.max_ms)
        })
    }
}

/// The per-account ceiling for addresses unknown to the account.
#[derive(Debug, Clone)]
struct AccountCeiling {
    account_key: String,
    known_key: String,
    address: String,
    limit: u32,
    window_ms: u64,
}

/// What a success undoes: the pair's failures, and the attempt's count on the account's
/// ceiling (it was no failure); and the address it makes known to the account.
#[derive(Debug, Clone, Copy)]
struct Settle<'a> {
    pair_key: &'a str,
    account_key: Option<&'a str>,
    known: Option<(&'a str, &'a str)>,
}

/// Outcome of a reservation in a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reservation {
    /// Go ahead; `failures` counts this attempt as a failure until it is settled, and
    /// `on_account` says whether it was also counted against the account's ceiling.
    Granted {
        failures: u32,
        on_account: bool,
    },
    Refused {
        retry_after_ms: u64,
    },
}

/// A login attempt that was allowed to check the password; settle it on success.
#[derive(Debug)]
pub struct LoginAttempt {
    pair_key: String,
    known_key: String,
    address: String,
    /// Set when the attempt was counted against the account's ceiling (an unknown address).
    account_key: Option<String>,
}

/// A password check that was allowed to run.
#[derive(Debug)]
pub struct PasswordAttempt {
    key: String,
    /// Consecutive failures so far, this attempt included.
    pub failures: u32,
}

pub struct Limits {
    settings: LimitSettings,
    memory: MemoryStore,
    redis: Option<RedisStore>,
    leases: Leases,
}

fn secs_from_ms(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

/// Keys stay short whatever the input: an email is hashed (never stored or sent to Redis
/// in clear, and a megabyte of "email" costs the same 32 characters as a real one).
/// In braces: the Redis Cluster hash tag that keeps an account's keys on one slot.
fn account_id(email: &str) -> String {
    let digest = Sha256::digest(email.as_bytes());
    format!("{{{}}}", hex::encode(&digest[..16]))
}

fn refused(kind: Kind, refusal: Exhausted) -> Exhausted {
    metrics::counter!(LIMIT_REFUSALS, "limit" => kind.label()).increment(1);
    refusal
}

fn fell_back(kind: Kind) {
    metrics::counter!(LIMIT_FALLBACKS, "limit" => kind.label()).increment(1);
}

impl Limits {
    pub fn new(settings: LimitSettings, redis: Option<RedisLink>) -> Self {
        Self::with_capacity(settings, redis, memory::DEFAULT_CAPACITY)
    }

    fn with_capacity(settings: LimitSettings, redis: Option<RedisLink>, capacity: u64) -> Self {
        let longest = Duration::from_secs(
            settings
                .login_lock_max_secs
                .max(settings.account_window_secs)
                .max(WINDOW.as_secs()),
        );
        Self {
            memory: MemoryStore::new(capacity, longest),
            redis: redis.map(RedisStore::new),
            leases: Leases::new(capacity, WINDOW),
            settings,
        }
    }

    /// Entries held in process memory (the Redis-backed counters are not here).
    pub fn local_entries(&self) -> u64 {
        self.memory.entry_count()
    }

    fn login_backoff(&self) -> Backoff {
        Backoff {
            threshold: self.settings.login_failures_before_lock,
            base_ms: self.settings.login_lock_base_secs.saturating_mul(1000),
            max_ms: self.settings.login_lock_max_secs.saturating_mul(1000),
        }
    }

    /// Counts one request in `key`'s fixed window. With Redis, `lease` > 1 takes that many
    /// units at once and spends the rest locally (see `lease`); 1 counts every request.
    async fn window(
        &self,
        kind: Kind,
        key: String,
        limit: u32,
        lease: u32,
    ) -> Result<Quota, Exhausted> {
        let window_ms = u64::try_from(WINDOW.as_millis()).unwrap_or(60_000);
        if let Some(redis) = &self.redis {
            if let Some(quota) = self.leases.take(&key, limit) {
                return Ok(quota);
            }
            let units = lease.max(1);
            match redis.window_hit(&key, window_ms, units).await {
                Some((total, ttl_ms)) => {
                    let total = u32::try_from(total).unwrap_or(u32::MAX);
                    let before = total.saturating_sub(units);
                    let granted = limit.saturating_sub(before).min(units);
                    if granted == 0 {
                        return Err(refused(
                            kind,
                            Exhausted {
                                limit: Some(limit),
                                retry_after_secs: secs_from_ms(ttl_ms),
                            },
                        ));
                    }
                    let beyond = limit.saturating_sub(total);
                    self.leases.hold(key, granted - 1, beyond, ttl_ms);
                    return Ok(Quota {
                        limit,
                        remaining: beyond + granted - 1,
                        reset_secs: secs_from_ms(ttl_ms),
                    });
                }
                None => fell_back(kind),
            }
        }
        let (count, ttl_ms) = self.memory.window_hit(&key, window_ms);
        if count > u64::from(limit) {
            return Err(refused(
                kind,
                Exhausted {
                    limit: Some(limit),
                    retry_after_secs: secs_from_ms(ttl_ms),
                },
            ));
        }
        Ok(Quota {
            limit,
            remaining: limit.saturating_sub(u32::try_from(count).unwrap_or(u32::MAX)),
            reset_secs: secs_from_ms(ttl_ms),
        })
    }

    /// Register, login, refresh and logout: counted per client IP.
    pub async fn check_ip(&self, ip: IpAddr) -> Result<Quota, Exhausted> {
        let limit = self.settings.auth_per_ip_per_minute;
        // Counted one by one: it guards the password routes, and they are not hot.
        self.window(Kind::AuthPerIp, format!("ip:{ip}"), limit, 1)
            .await
    }

    /// Every authenticated request: counted per user.
    pub async fn check_user(&self, user: Uuid) -> Result<Quota, Exhausted> {
        let limit = self.settings.per_user_per_minute;
        // Leased in blocks of up to 10 (a sixtieth of the limit): a Redis round trip per
        // ten requests instead of per request, never above the limit.
        self.window(
            Kind::PerUser,
            format!("user:{user}"),
            limit,
            (limit / 60).clamp(1, 10),
        )
        .await
    }

    async fn reserve(
        &self,
        kind: Kind,
        pair_key: &str,
        backoff: Backoff,
        ceiling: Option<&AccountCeiling>,
    ) -> Reservation {
        if let Some(redis) = &self.redis {
            match redis.reserve(pair_key, backoff, ceiling).await {
                Some(reservation) => return reservation,
                None => fell_back(kind),
            }
        }
        self.memory.reserve(pair_key, backoff, ceiling)
    }

    async fn settle_success(&self, settle: &Settle<'_>) {
        // Both stores: a success must clear a lock wherever it was counted (the memory
        // store may hold failures counted while Redis was away).
        if let Some(redis) = &self.redis {
            redis.clear(settle).await;
        }
        self.memory.clear(settle);
    }

    /// Counts a login attempt before the password is checked. Refused while the (email,
    /// IP) pair is locked, or when the account's ceiling for unknown addresses is reached.
    /// Identical for known and unknown emails, so it reveals nothing about accounts.
    pub async fn reserve_login(&self, email: &str, ip: IpAddr) -> Result<LoginAttempt, Exhausted> {
        let account = account_id(email);
        let mut attempt = LoginAttempt {
            pair_key: format!("login:{account}:{ip}"),
            known_key: format!("known:{account}"),
            address: ip.to_string(),
            account_key: None,
        };
        let account_key = format!("account:{account}");
        let ceiling = AccountCeiling {
            account_key: account_key.clone(),
            known_key: attempt.known_key.clone(),
            address: attempt.address.clone(),
            limit: self.settings.account_failures_before_lock,
            window_ms: self.settings.account_window_secs.saturating_mul(1000),
        };
        match self
            .reserve(
                Kind::Login,
                &attempt.pair_key,
                self.login_backoff(),
                Some(&ceiling),
            )
            .await
        {
            Reservation::Granted { on_account, .. } => {
                attempt.account_key = on_account.then_some(account_key);
                Ok(attempt)
            }
            Reservation::Refused { retry_after_ms } => Err(refused(
                Kind::Login,
                Exhausted {
                    limit: None,
                    retry_after_secs: secs_from_ms(retry_after_ms),
                },
            )),
        }
    }

    /// The password was right: forget this pair's failures and remember the address.
    pub async fn login_succeeded(&self, attempt: &LoginAttempt) {
        self.settle_success(&Settle {
            pair_key: &attempt.pair_key,
            account_key: attempt.account_key.as_deref(),
            known: Some((&attempt.known_key, &attempt.address)),
        })
        .await;
    }

    /// Counts a current-password check of `POST /auth/password` before it runs.
    pub async fn reserve_password_check(&self, user: Uuid) -> Result<PasswordAttempt, Exhausted> {
        let key = format!("password:{{{user}}}");
        match self
            .reserve(Kind::PasswordCheck, &key, self.login_backoff(), None)
            .await
        {
            Reservation::Granted { failures, .. } => Ok(PasswordAttempt { key, failures }),
            Reservation::Refused { retry_after_ms } => Err(refused(
                Kind::PasswordCheck,
                Exhausted {
                    limit: None,
                    retry_after_secs: secs_from_ms(retry_after_ms),
                },
            )),
        }
    }

    pub async fn password_check_succeeded(&self, attempt: &PasswordAttempt) {
        self.settle_success(&Settle {
            pair_key: &attempt.key,
            account_key: None,
            known: None,
        })
        .await;
    }

    /// After this many consecutive wrong current passwords the account's sessions go.
    pub fn should_revoke_after(&self, attempt: &PasswordAttempt) -> bool {
        attempt.failures >= self.settings.password_failures_before_revoke.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn settings() -> LimitSettings {
        LimitSettings {
            auth_per_ip_per_minute: 3,
            per_user_per_minute: 2,
            login_failures_before_lock: 5,
            login_lock_base_secs: 10,
            login_lock_max_secs: 40,
            account_failures_before_lock: 8,
            account_window_secs: 900,
            password_failures_before_revoke: 10,
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
    }

    #[test]
    fn backoff_doubles_from_the_threshold_and_is_capped() {
        let backoff = Backoff {
            threshold: 5,
            base_ms: 10_000,
            max_ms: 40_000,
        };
        assert_eq!(backoff.lock_ms(4), None);
        assert_eq!(backoff.lock_ms(5), Some(10_000));
        assert_eq!(backoff.lock_ms(6), Some(20_000));
        assert_eq!(backoff.lock_ms(50), Some(40_000));
    }

    #[tokio::test]
    async fn window_refuses_past_the_limit_with_the_limit_named() {
        let limits = Limits::new(settings(), None);
        for remaining in [2, 1, 0] {
            let quota = limits.check_ip(ip(1)).await.expect("within limit");
            assert_eq!((quota.limit, quota.remaining), (3, remaining));
        }
        let refusal = limits.check_ip(ip(1)).await.unwrap_err();
        assert_eq!(refusal.limit, Some(3));
        assert!((1..=60).contains(&refusal.retry_after_secs));
        assert!(
            limits.check_ip(ip(2)).await.is_ok(),
            "other addresses unaffected"
        );
    }

    #[tokio::test]
    async fn concurrent_logins_cannot_exceed_the_budget() {
        let limits = Arc::new(Limits::new(settings(), None));
        let attempts = (0..25).map(|_| {
            let limits = Arc::clone(&limits);
            tokio::spawn(async move { limits.reserve_login("a@x.io", ip(1)).await.is_ok() })
        });
        let granted = futures_util::future::join_all(attempts)
            .await
            .into_iter()
            .filter(|outcome| matches!(outcome, Ok(true)))
            .count();
        assert_eq!(granted, 5);
    }

    #[tokio::test]
    async fn success_clears_the_pair_and_makes_the_address_known() {
        let limits = Limits::new(settings(), None);
        for _ in 0..4 {
            limits
                .reserve_login("a@x.io", ip(1))
                .await
                .expect("granted");
        }
        let attempt = limits.reserve_login("a@x.io", ip(1)).await.expect("fifth");
        limits.login_succeeded(&attempt).await;
        // Cleared: a fresh budget of five.
        for _ in 0..5 {
            limits
                .reserve_login("a@x.io", ip(1))
                .await
                .expect("granted again");
        }
        assert!(limits.reserve_login("a@x.io", ip(1)).await.is_err());
    }

    #[tokio::test]
    async fn distributed_guessing_hits_the_account_ceiling_but_not_the_owner() {
        let limits = Limits::new(settings(), None);
        // The owner logs in once from home (a success: it does not eat into the ceiling).
        let home = limits
            .reserve_login("a@x.io", ip(200))
            .await
            .expect("granted");
        limits.login_succeeded(&home).await;
        // Four attacker addresses, two guesses each: eight failures, the ceiling.
        for address in 1..=4 {
            for _ in 0..2 {
                limits
                    .reserve_login("a@x.io", ip(address))
                    .await
                    .expect("below ceiling");
            }
        }
        let refusal = limits.reserve_login("a@x.io", ip(9)).await.unwrap_err();
        assert!(refusal.retry_after_secs > 0);
        // The owner's known address still gets in; other accounts are untouched.
        assert!(limits.reserve_login("a@x.io", ip(200)).await.is_ok());
        assert!(limits.reserve_login("b@x.io", ip(9)).await.is_ok());
    }

    #[tokio::test]
    async fn password_checks_back_off_and_count_towards_revocation() {
        let mut config = settings();
        config.password_failures_before_revoke = 3;
        let limits = Limits::new(config, None);
        let user = Uuid::now_v7();
        let mut last = None;
        for expected in 1..=3 {
            let attempt = limits.reserve_password_check(user).await.expect("granted");
            assert_eq!(attempt.failures, expected);
            last = Some(attempt);
        }
        assert!(limits.should_revoke_after(&last.expect("attempt")));
    }

    #[tokio::test]
    async fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let limits = Limits::with_capacity(settings(), None, 1_000);
        for n in 0..20_000u32 {
            // Each attempt is a new (huge) email: keys are hashes, entries are capped.
            let email = format!("{n}{}", "x".repeat(10_000));
            let _ = limits.reserve_login(&email, ip(1)).await;
        }
        // Two maps take a key per attempt (the pair's failures, the account's ceiling):
        // without the cap they would hold 40,000 entries.
        limits.memory.sync();
        assert!(
            limits.local_entries() <= 2_000,
            "{} entries",
            limits.local_entries()
        );
    }
}
