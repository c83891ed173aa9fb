//! A shared, self-healing Redis connection. Every command has a deadline; the first
//! failure opens a breaker for [`BREAKER_OPEN`], during which callers use their local
//! fallback at once instead of each waiting for a dead server.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Client, RedisResult};

use crate::config::{RedisSettings, SecretUrl};
use crate::metrics::{REDIS_ERRORS, REDIS_UP};

/// How long callers skip Redis after a failure before trying it again.
const BREAKER_OPEN: Duration = Duration::from_secs(1);

/// Longest pause between two attempts to (re)subscribe to a channel.
const MAX_RESUBSCRIBE_BACKOFF: Duration = Duration::from_secs(2);

/// What a process-long subscription ([`RedisLink::subscribe_forever`]) tells its owner.
pub trait Subscriber: Send + Sync {
    /// Now subscribed (again): whatever was published while away is unknown.
    fn subscribed(&self);
    fn received(&self, payload: &[u8]);
    /// Not subscribed (lost, or an attempt failed): publications are being missed.
    fn unsubscribed(&self);
}

#[derive(Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    started: Instant,
    /// Milliseconds since `started` until which the breaker is open.
    open_until_ms: AtomicU64,
}

impl RedisLink {
    /// Holds a subscription to `channel` for the life of the process, resubscribing with
    /// a backoff (100 ms doubling to 2 s) whenever it is lost. `what` names it in logs.
    pub async fn subscribe_forever(
        &self,
        channel: String,
        what: &'static str,
        subscriber: &impl Subscriber,
    ) {
        let mut backoff = Duration::from_millis(100);
        // The first failure of an outage (at start-up too) is a warning: until this
        // replica is subscribed it hears nothing from the others. Retries are debug.
        let mut warned = false;
        loop {
            let subscribed = async {
                let mut pubsub = self.client().get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                Ok(Ok(pubsub)) => {
                    warned = false;
                    subscriber.subscribed();
                    tracing::info!(channel = %channel, "listening for {what} from other replicas");
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        subscriber.received(message.get_payload_bytes());
                    }
                    tracing::warn!(channel = %channel, "subscription to {what} lost");
                }
                Ok(Err(err)) if !warned => {
                    warned = true;
                    tracing::warn!(channel = %channel, error = %err, "cannot subscribe to {what}: Redis unreachable; retrying, and until then this replica does not hear the others");
                }
                Err(_) if !warned => {
                    warned = true;
                    tracing::warn!(channel = %channel, "cannot subscribe to {what}: Redis does not answer; retrying, and until then this replica does not hear the others");
                }
                Ok(Err(err)) => tracing::debug!(error = %err, "subscription to {what} failed"),
                Err(_) => tracing::debug!("subscription to {what} timed out"),
            }
            subscriber.unsubscribed();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_RESUBSCRIBE_BACKOFF);
        }
    }

    /// `None` when no Redis is configured. Connecting is lazy: a Redis that is down at
    /// start-up does not stop the service from starting (limits then run locally).
    pub fn from_settings(settings: &RedisSettings) -> anyhow::Result<Option<Self>> {
        let Some(url) = settings
            .url
            .as_ref()
            .map(SecretUrl::expose)
            .filter(|url| !url.trim().is_empty())
        else {
            return Ok(None);
        };
        let client = Client::open(url).context("parsing the Redis URL")?;
        let timeout = Duration::from_millis(settings.command_timeout_ms.max(1));
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .context("creating the Redis connection manager")?;
        metrics::gauge!(REDIS_UP).set(1.0);
        Ok(Some(Self {
            inner: Arc::new(Inner {
                client,
                conn,
                prefix: settings.key_prefix.clone(),
                timeout,
                started: Instant::now(),
                open_until_ms: AtomicU64::new(0),
            }),
        }))
    }

    /// `prefix + name`: every key and channel of this deployment.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.inner.prefix)
    }

    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// False while the breaker is open (Redis failed within the last second).
    pub fn is_available(&self) -> bool {
        self.now_ms() >= self.inner.open_until_ms.load(Ordering::Relaxed)
    }

    fn trip(&self, op: &'static str, error: &dyn std::fmt::Display) {
        let was_closed = self.is_available();
        let until = self.now_ms() + u64::try_from(BREAKER_OPEN.as_millis()).unwrap_or(1000);
        self.inner.open_until_ms.store(until, Ordering::Relaxed);
        metrics::counter!(REDIS_ERRORS, "op" => op).increment(1);
        metrics::gauge!(REDIS_UP).set(0.0);
        // One line per breaker opening, not one per request.
        if was_closed {
            tracing::warn!(op, error = %error, "Redis unavailable; using local fallbacks for {}s", BREAKER_OPEN.as_secs());
        }
    }

    /// Runs one command (or script) with the deadline; `None` when Redis is unavailable,
    /// and the caller falls back to its local behaviour.
    pub async fn run<T, F, Fut>(&self, op: &'static str, command: F) -> Option<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_available() {
            return None;
        }
        match tokio::time::timeout(self.inner.timeout, command(self.inner.conn.clone())).await {
            Ok(Ok(value)) => {
                metrics::gauge!(REDIS_UP).set(1.0);
                Some(value)
            }
            Ok(Err(err)) => {
                self.trip(op, &err);
                None
            }
            Err(_) => {
                self.trip(op, &"command timed out");
                None
            }
        }
    }

    /// Publishes `message` on `channel` until Redis has taken it, or until `give_up_after`
    /// has passed. The first attempt is made now, past an open breaker: the breaker is for
    /// callers with a local fallback, and a publication has none. A replica that
    /// resubscribed after a blip, while this one's breaker was still open, would otherwise
    /// miss it. Later attempts run in the background, 100 ms apart doubling to 2 s; the
    /// caller goes on at once.
    pub async fn publish_until_taken(
        &self,
        channel: String,
        message: String,
        give_up_after: Duration,
    ) {
        if self.publish_once(&channel, &message).await {
            return;
        }
        let link = self.clone();
        let deadline = Instant::now() + give_up_after;
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            while Instant::now() < deadline {
                tokio::time::sleep(backoff).await;
                if link.publish_once(&channel, &message).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_RESUBSCRIBE_BACKOFF);
            }
            tracing::error!(channel = %channel, "gave up publishing to Redis: other replicas may not have heard this");
        });
    }

    async fn publish_once(&self, channel: &str, message: &str) -> bool {
        let mut conn = self.inner.conn.clone();
        let mut command = redis::cmd("PUBLISH");
        command.arg(channel).arg(message);
        let sent = command.query_async::<i64>(&mut conn);
        match tokio::time::timeout(self.inner.timeout, sent).await {
            Ok(Ok(_)) => {
                metrics::gauge!(REDIS_UP).set(1.0);
                true
            }
            Ok(Err(err)) => {
                self.trip("publish", &err);
                false
            }
            Err(_) => {
                self.trip("publish", &"command timed out");
                false
            }
        }
    }

    /// For readiness: a PING within the command deadline.
    pub async fn ping(&self) -> bool {
        // A health probe should see the truth even while the breaker is open.
        let fut = async {
            let mut conn = self.inner.conn.clone();
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        let ok = matches!(
            tokio::time::timeout(self.inner.timeout, fut).await,
            Ok(Ok(_))
        );
        metrics::gauge!(REDIS_UP).set(if ok { 1.0 } else { 0.0 });
        ok
    }
}
