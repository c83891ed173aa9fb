//! Revocation fan-out. A revocation is committed to the database first (the token
//! version bump is the truth); then every replica must stop trusting its cached copy of
//! the account. Locally that is immediate; other replicas hear it on a Redis pub/sub
//! channel within milliseconds. While this replica is not subscribed (Redis down, or
//! reconnecting) it bypasses its cache, so a missed message can never keep a revoked
//! token alive; without Redis configured there is one process and nothing to tell.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use uuid::Uuid;

use crate::auth::cache::AuthCache;
use crate::cluster::{Feed, RedisLink};
use crate::metrics::REVOCATIONS_RECEIVED;

const CHANNEL: &str = "revocations";
const MAX_BACKOFF: Duration = Duration::from_secs(2);

pub struct Revocations {
    cache: Arc<AuthCache>,
    link: Option<RedisLink>,
    /// Open change-feed streams of a revoked user end (they recheck their token).
    feed: Option<Arc<Feed>>,
}

impl Revocations {
    pub fn new(cache: Arc<AuthCache>, link: Option<RedisLink>) -> Self {
        if link.is_some() {
            // Until the subscription is up, messages from other replicas could be missed.
            cache.set_bypass(true);
        }
        Self {
            cache,
            link,
            feed: None,
        }
    }

    /// Tells `feed` of every revocation, local or heard from another replica.
    pub fn with_feed(mut self, feed: Arc<Feed>) -> Self {
        self.feed = Some(feed);
        self
    }

    fn invalidate(&self, user: Option<Uuid>) {
        match user {
            Some(user) => self.cache.invalidate(user),
            None => self.cache.invalidate_all(),
        }
        if let Some(feed) = &self.feed {
            feed.revoked(user);
        }
    }

    pub fn cache(&self) -> &AuthCache {
        &self.cache
    }

    /// Call after the revocation has been committed to the database.
    pub async fn announce(&self, user: Uuid) {
        self.invalidate(Some(user));
        if let Some(link) = &self.link {
            let channel = link.key(CHANNEL);
            let message = user.to_string();
            link.run("publish", |mut conn| async move {
                redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await;
        }
    }

    /// Keeps a subscription open for the life of the process (no-op without Redis).
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(async move { this.listen(link).await });
    }

    async fn listen(&self, link: RedisLink) {
        let channel = link.key(CHANNEL);
        let mut backoff = Duration::from_millis(100);
        loop {
            let subscribed = async {
                let mut pubsub = link.client().get_async_pubsub().await?;
                pubsub.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(pubsub)
            };
            match tokio::time::timeout(Duration::from_secs(2), subscribed).await {
                Ok(Ok(pubsub)) => {
                    // Whatever was announced while we were away is unknown: start clean.
                    self.invalidate(None);
                    self.cache.set_bypass(false);
                    tracing::info!(channel = %channel, "listening for revocations from other replicas");
                    backoff = Duration::from_millis(100);
                    let mut messages = pubsub.into_on_message();
                    while let Some(message) = messages.next().await {
                        self.receive(message.get_payload_bytes());
                    }
                    tracing::warn!(
                        "revocation subscription lost; auth cache bypassed until it is back"
                    );
                }
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "revocation subscription failed");
                }
                Err(_) => tracing::debug!("revocation subscription timed out"),
            }
            self.cache.set_bypass(true);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    fn receive(&self, payload: &[u8]) {
        metrics::counter!(REVOCATIONS_RECEIVED).increment(1);
        match std::str::from_utf8(payload)
            .ok()
            .and_then(|text| Uuid::parse_str(text).ok())
        {
            Some(user) => self.invalidate(Some(user)),
            // Unreadable: be safe rather than precise.
            None => self.invalidate(None),
        }
    }
}
