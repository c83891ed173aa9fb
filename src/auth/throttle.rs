//! In-process abuse limits: fixed one-minute windows per client IP (auth routes) and per
//! user (everything authenticated), and an exponential back-off on repeated failed logins.
//!
//! State is per replica. With N replicas the effective limits are up to N times higher;
//! SCALABILITY.md explains moving these counters to Redis when that matters.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::LimitSettings;
use crate::error::AppError;

const WINDOW: Duration = Duration::from_secs(60);
/// Above this many tracked keys, expired entries are swept so memory stays bounded.
const SWEEP_THRESHOLD: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
    last_failure: Instant,
}

/// Outcome of a permitted request, for the `RateLimit-*` headers.
#[derive(Debug, Clone, Copy)]
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

pub struct Limits {
    settings: LimitSettings,
    ip_windows: Mutex<HashMap<IpAddr, Window>>,
    user_windows: Mutex<HashMap<Uuid, Window>>,
    login_failures: Mutex<HashMap<(String, IpAddr), Failures>>,
}

fn hit<K: std::hash::Hash + Eq + Copy>(
    map: &Mutex<HashMap<K, Window>>,
    key: K,
    limit: u32,
    now: Instant,
) -> Result<Quota, AppError> {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() > SWEEP_THRESHOLD {
        map.retain(|_, window| now.duration_since(window.started) < WINDOW);
    }
    let window = map.entry(key).or_insert(Window {
        started: now,
        count: 0,
    });
    if now.duration_since(window.started) >= WINDOW {
        *window = Window {
            started: now,
            count: 0,
        };
    }
    let reset_secs = WINDOW
        .saturating_sub(now.duration_since(window.started))
        .as_secs()
        .max(1);
    if window.count >= limit {
        return Err(AppError::TooManyRequests {
            retry_after_secs: reset_secs,
        });
    }
    window.count += 1;
    Ok(Quota {
        limit,
        remaining: limit - window.count,
        reset_secs,
    })
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            ip_windows: Mutex::default(),
            user_windows: Mutex::default(),
            login_failures: Mutex::default(),
        }
    }

    /// Register, login and refresh: counted per client IP.
    pub fn check_ip(&self, ip: IpAddr) -> Result<Quota, AppError> {
        hit(
            &self.ip_windows,
            ip,
            self.settings.auth_per_ip_per_minute,
            Instant::now(),
        )
    }

    pub fn check_user(&self, user: Uuid) -> Result<Quota, AppError> {
        hit(
            &self.user_windows,
            user,
            self.settings.per_user_per_minute,
            Instant::now(),
        )
    }

    /// Refuses a login attempt while the (email, IP) pair is locked. Keyed by the pair so
    /// that an attacker hammering a victim's email locks out only the attacker's address,
    /// and identical for known and unknown emails so it reveals nothing about accounts.
    pub fn check_login(&self, email: &str, ip: IpAddr) -> Result<(), AppError> {
        self.check_login_at(email, ip, Instant::now())
    }

    fn check_login_at(&self, email: &str, ip: IpAddr, now: Instant) -> Result<(), AppError> {
        let map = self
            .login_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match map
            .get(&(email.to_string(), ip))
            .and_then(|f| f.locked_until)
        {
            Some(until) if until > now => Err(AppError::TooManyRequests {
                retry_after_secs: until.duration_since(now).as_secs().max(1),
            }),
            _ => Ok(()),
        }
    }

    pub fn record_login_failure(&self, email: &str, ip: IpAddr) {
        self.record_failure_at(email, ip, Instant::now());
    }

    fn record_failure_at(&self, email: &str, ip: IpAddr, now: Instant) {
        let max_lock = Duration::from_secs(self.settings.login_lock_max_secs);
        let mut map = self
            .login_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if map.len() > SWEEP_THRESHOLD {
            // Forget pairs quiet for longer than the longest lock.
            map.retain(|_, f| now.duration_since(f.last_failure) < max_lock);
        }
        let entry = map.entry((email.to_string(), ip)).or_insert(Failures {
            count: 0,
            locked_until: None,
            last_failure: now,
        });
        // A long quiet period forgives earlier failures, so locks never escalate forever.
        if now.duration_since(entry.last_failure) >= max_lock {
            entry.count = 0;
        }
        entry.count += 1;
        entry.last_failure = now;
        let threshold = self.settings.login_failures_before_lock.max(1);
        if entry.count >= threshold {
            let doublings = (entry.count - threshold).min(16);
            let lock = Duration::from_secs(self.settings.login_lock_base_secs)
                .saturating_mul(1 << doublings)
                .min(max_lock);
            entry.locked_until = Some(now + lock);
        }
    }

    pub fn record_login_success(&self, email: &str, ip: IpAddr) {
        let mut map = self
            .login_failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(&(email.to_string(), ip));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn limits() -> Limits {
        Limits::new(LimitSettings {
            auth_per_ip_per_minute: 3,
            per_user_per_minute: 2,
            login_failures_before_lock: 2,
            login_lock_base_secs: 10,
            login_lock_max_secs: 40,
        })
    }

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    #[test]
    fn window_refuses_after_limit_then_resets() {
        let limits = limits();
        let start = Instant::now();
        for _ in 0..3 {
            hit(&limits.ip_windows, IP, 3, start).expect("within limit");
        }
        let refused = hit(&limits.ip_windows, IP, 3, start).unwrap_err();
        assert!(
            matches!(refused, AppError::TooManyRequests { retry_after_secs } if retry_after_secs > 0)
        );
        assert!(hit(&limits.ip_windows, IP, 3, start + WINDOW).is_ok());
    }

    #[test]
    fn login_lock_backs_off_and_is_capped() {
        let limits = limits();
        let t0 = Instant::now();
        limits.record_failure_at("a@x.io", IP, t0);
        assert!(limits.check_login_at("a@x.io", IP, t0).is_ok());
        limits.record_failure_at("a@x.io", IP, t0);
        assert!(limits.check_login_at("a@x.io", IP, t0).is_err());
        assert!(
            limits
                .check_login_at("a@x.io", IP, t0 + Duration::from_secs(11))
                .is_ok()
        );
        // Further failures double the lock but never beyond the cap.
        for _ in 0..10 {
            limits.record_failure_at("a@x.io", IP, t0);
        }
        assert!(
            limits
                .check_login_at("a@x.io", IP, t0 + Duration::from_secs(39))
                .is_err()
        );
        assert!(
            limits
                .check_login_at("a@x.io", IP, t0 + Duration::from_secs(41))
                .is_ok()
        );
        // Another address is not affected by the attacker's failures.
        let other = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        assert!(limits.check_login_at("a@x.io", other, t0).is_ok());
    }
}
