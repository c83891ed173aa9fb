//! Counters shared by every replica. Each check is one Lua script: one round trip,
//! atomic on the server, with windows and locks timed by Redis's own clock (key expiry),
//! never by the replicas' clocks. `None` means Redis was unavailable: the caller falls
//! back to its in-memory store.

use std::sync::LazyLock;

use redis::Script;

use super::{AccountCeiling, Backoff, KNOWN_ADDRESS_TTL, Reservation, Settle};
use crate::cluster::RedisLink;

/// INCRBY a fixed window and return (count, ms left); the first hit starts the window.
static WINDOW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
",
    )
});

/// Same rules as `MemoryStore::reserve`. KEYS: failures, lock, account, known.
/// ARGV: address, threshold, base ms, max ms, ceiling on (1/0), ceiling, window ms.
/// Returns {1, failures, counted on the account (1/0)} when granted, {0, retry ms, 0}
/// when refused.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local lock_left = redis.call('PTTL', KEYS[2])
if lock_left > 0 then return {0, lock_left, 0} end
local unknown = false
if ARGV[5] == '1' then
  unknown = redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0
  if unknown then
    local used = tonumber(redis.call('GET', KEYS[3]) or '0')
    if used >= tonumber(ARGV[6]) then
      local left = redis.call('PTTL', KEYS[3])
      if left < 1 then left = 1 end
      return {0, left, 0}
    end
  end
end
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local threshold = math.max(tonumber(ARGV[2]), 1)
if failures >= threshold then
  local doublings = math.min(failures - threshold, 16)
  local lock = math.min(tonumber(ARGV[3]) * (2 ^ doublings), tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], '1', 'PX', string.format('%d', math.max(math.floor(lock), 1)))
end
local counted = 0
if unknown then
  local used = redis.call('INCR', KEYS[3])
  if used == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[7]) end
  counted = 1
end
return {1, failures, counted}
",
    )
});

/// KEYS: failures, lock, known, account. ARGV: address ('' for none), known TTL ms,
/// whether the attempt was counted on the account (1/0).
static CLEAR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1], KEYS[2])
if ARGV[1] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[1])
  redis.call('PEXPIRE', KEYS[3], ARGV[2])
end
if ARGV[3] == '1' and tonumber(redis.call('GET', KEYS[4]) or '0') > 0 then
  redis.call('DECR', KEYS[4])
end
return 1
",
    )
});

pub struct RedisStore {
    link: RedisLink,
}

/// Keys of one script call carry the same `{hash tag}` (see `limits::account_id`), so
/// they also live on one slot of a Redis Cluster.
fn tagged(link: &RedisLink, key: &str) -> String {
    link.key(key)
}

impl RedisStore {
    pub fn new(link: RedisLink) -> Self {
        Self { link }
    }

    /// Adds `units` to the window: (count including them, ms left).
    pub async fn window_hit(&self, key: &str, window_ms: u64, units: u32) -> Option<(u64, u64)> {
        let key = tagged(&self.link, key);
        self.link
            .run("window", |mut conn| async move {
                WINDOW
                    .key(key)
                    .arg(window_ms.max(1))
                    .arg(units)
                    .invoke_async::<(u64, i64)>(&mut conn)
                    .await
            })
            .await
            .map(|(count, ttl)| (count, u64::try_from(ttl).unwrap_or(window_ms)))
    }

    pub async fn reserve(
        &self,
        pair_key: &str,
        backoff: Backoff,
        ceiling: Option<&AccountCeiling>,
    ) -> Option<Reservation> {
        let failures_key = tagged(&self.link, pair_key);
        let lock_key = format!("{failures_key}:lock");
        let (account_key, known_key, address, on, limit, window_ms) = match ceiling {
            Some(c) => (
                tagged(&self.link, &c.account_key),
                tagged(&self.link, &c.known_key),
                c.address.clone(),
                "1",
                c.limit,
                c.window_ms.max(1),
            ),
            // Unused by the script, but every key a script may touch must be declared.
            None => (
                format!("{failures_key}:account"),
                format!("{failures_key}:known"),
                String::new(),
                "0",
                0,
                1,
            ),
        };
        let (granted, value, on_account) = self
            .link
            .run("reserve", |mut conn| async move {
                RESERVE
                    .key(failures_key)
                    .key(lock_key)
                    .key(account_key)
                    .key(known_key)
                    .arg(address)
                    .arg(backoff.threshold)
                    .arg(backoff.base_ms.max(1))
                    .arg(backoff.max_ms.max(1))
                    .arg(on)
                    .arg(limit)
                    .arg(window_ms)
                    .invoke_async::<(i64, i64, i64)>(&mut conn)
                    .await
            })
            .await?;
        let value = u64::try_from(value).unwrap_or(1);
        Some(if granted == 1 {
            Reservation::Granted {
                failures: u32::try_from(value).unwrap_or(u32::MAX),
                on_account: on_account == 1,
            }
        } else {
            Reservation::Refused {
                retry_after_ms: value,
            }
        })
    }

    pub async fn clear(&self, settle: &Settle<'_>) {
        let failures_key = tagged(&self.link, settle.pair_key);
        let lock_key = format!("{failures_key}:lock");
        let (known_key, address) = match settle.known {
            Some((key, address)) => (tagged(&self.link, key), address.to_string()),
            None => (format!("{failures_key}:known"), String::new()),
        };
        let (account_key, counted) = match settle.account_key {
            Some(key) => (tagged(&self.link, key), "1"),
            None => (format!("{failures_key}:account"), "0"),
        };
        let ttl_ms = u64::try_from(KNOWN_ADDRESS_TTL.as_millis()).unwrap_or(u64::MAX);
        self.link
            .run("clear", |mut conn| async move {
                CLEAR
                    .key(failures_key)
                    .key(lock_key)
                    .key(known_key)
                    .key(account_key)
                    .arg(address)
                    .arg(ttl_ms)
                    .arg(counted)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await;
    }
}
