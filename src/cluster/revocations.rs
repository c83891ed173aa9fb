//! Revocation fan-out. A revocation is committed to the database first (the token
//! version bump is the truth); then every replica must stop trusting its cached copy of
//! the account. Locally that is immediate; other replicas hear it on a Redis pub/sub
//! channel within milliseconds. While this replica is not subscribed (Redis down, or
//! reconnecting) it bypasses its cache, so a missed message can never keep a revoked
//! token alive; without Redis configured there is one process and nothing to tell.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::auth::cache::AuthCache;
use crate::cluster::redis_link::Subscriber;
use crate::cluster::{Feed, RedisLink};
use crate::metrics::REVOCATIONS_RECEIVED;

const CHANNEL: &str = "revocations";

pub struct Revocations {
    cache: Arc<AuthCache>,
    link: Option<RedisLink>,
    /// How long a revocation is worth telling: the longest life of an access token issued
    /// before it. After that every such token has expired on every replica anyway.
    tell_for: Duration,
    /// Open change-feed streams of a revoked user end (they recheck their token).
    feed: Option<Arc<Feed>>,
}

impl Revocations {
    pub fn new(cache: Arc<AuthCache>, link: Option<RedisLink>, tell_for: Duration) -> Self {
        if link.is_some() {
            // Until the subscription is up, messages from other replicas could be missed.
            cache.set_bypass(true);
        }
        Self {
            cache,
            link,
            tell_for,
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

    /// Call after the revocation has been committed to the database. The other replicas
    /// hear it however Redis behaves: a replica subscribed now gets the publication, which
    /// is retried until Redis takes it (`RedisLink::publish_until_taken`); one that is not
    /// subscribed bypasses its cache meanwhile and clears it when it subscribes again.
    pub async fn announce(&self, user: Uuid) {
        self.invalidate(Some(user));
        if let Some(link) = &self.link {
            link.publish_until_taken(link.key(CHANNEL), user.to_string(), self.tell_for)
                .await;
        }
    }

    /// Keeps a subscription open for the life of the process (no-op without Redis).
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(this.listen(link));
    }

    async fn listen(self: Arc<Self>, link: RedisLink) {
        link.subscribe_forever(link.key(CHANNEL), "revocations", &*self)
            .await;
    }
}

impl Subscriber for Revocations {
    fn subscribed(&self) {
        // Whatever was announced while we were away is unknown: start clean.
        self.invalidate(None);
        self.cache.set_bypass(false);
    }

    fn received(&self, payload: &[u8]) {
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

    /// The auth cache is bypassed until the subscription is back.
    fn unsubscribed(&self) {
        self.cache.set_bypass(true);
    }
}
