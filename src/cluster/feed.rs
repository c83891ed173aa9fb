//! Fan-out of the change feed. The log itself is the `task_events` table
//! (`models::events`); what travels here is only "user U has something new" (and "user U
//! was revoked"), after the change has committed. Each open stream then reads its user's
//! rows after the last id it sent, so what a client receives is exactly the log, in the
//! table's order, however many notifications were merged or lost on the way.
//!
//! Locally a notification is a `watch` per user with open streams (one value per user, so
//! a burst of changes costs no memory). Other replicas hear it on a Redis pub/sub channel.
//! While this replica is not subscribed (Redis down or reconnecting), one poller per
//! replica reads the newest event id of every user with a stream here, in one statement
//! per `events.poll_ms`, and wakes the users whose log grew ([`Feed::poll_while_deaf`]):
//! a lost message only delays an event, and the cost of an outage does not grow with the
//! number of streams. A resubscription wakes every stream to catch up. Without Redis
//! there is one process.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::RedisLink;
use crate::cluster::redis_link::Subscriber;
use crate::metrics::SSE_STREAMS_OPEN;
use crate::models::events;
use crate::models::tasks::ChangeListener;

const CHANNEL: &str = "task-events";

/// Streams of one user on this replica, and how to wake them.
struct UserStreams {
    open: usize,
    changes: watch::Sender<u64>,
    revoked: watch::Sender<u64>,
}

/// Why a stream could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user has `events.max_streams_per_user` open on this replica.
    UserFull,
    /// This replica has `events.max_streams_per_replica` open.
    ReplicaFull,
}

/// Open streams on this replica, by user and in all.
#[derive(Default)]
struct Streams {
    by_user: HashMap<Uuid, UserStreams>,
    total: usize,
}

pub struct Feed {
    link: Option<RedisLink>,
    /// Tells this replica's own publications apart from other replicas' on the channel.
    replica: Uuid,
    max_streams_per_user: usize,
    max_streams: usize,
    users: Mutex<Streams>,
    polling: AtomicBool,
    shutdown: watch::Sender<bool>,
}

/// One open stream's registration: its wake-ups, and its place in the per-user count
/// (given back on drop, however the stream ends).
pub struct Subscription {
    feed: Arc<Feed>,
    user: Uuid,
    /// Changes when the user has new events in the log.
    pub changes: watch::Receiver<u64>,
    /// Changes when the user's access may have been revoked: recheck the account.
    pub revoked: watch::Receiver<u64>,
    /// Turns true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl Subscription {
    /// See [`Feed::is_polling`].
    pub fn is_polling(&self) -> bool {
        self.feed.is_polling()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.feed.users();
        if let Some(entry) = streams.by_user.get_mut(&self.user) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 {
                streams.by_user.remove(&self.user);
            }
        }
        streams.total = streams.total.saturating_sub(1);
        metrics::gauge!(SSE_STREAMS_OPEN).decrement(1.0);
    }
}

impl ChangeListener for Feed {
    fn changed(&self, audience: Vec<Uuid>) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.changed_for(audience))
    }
}

impl Feed {
    /// At most `max_streams_per_user` streams of one user, and `max_streams` in all, open
    /// on this replica at once.
    pub fn new(link: Option<RedisLink>, max_streams_per_user: usize, max_streams: usize) -> Self {
        Self {
            // Until the subscription is up, other replicas' changes could be missed.
            polling: AtomicBool::new(link.is_some()),
            link,
            replica: Uuid::new_v4(),
            max_streams_per_user,
            max_streams,
            users: Mutex::default(),
            shutdown: watch::Sender::new(false),
        }
    }

    fn users(&self) -> MutexGuard<'_, Streams> {
        // The map stays consistent even if a holder panicked: every update is one step.
        self.users.lock()
    }

    /// Registers a stream of `user`, unless the user or this replica has the most streams
    /// open that it may (the caps are per replica: see README).
    pub fn subscribe(self: &Arc<Self>, user: Uuid) -> Result<Subscription, Refusal> {
        let mut streams = self.users();
        if streams.total >= self.max_streams {
            return Err(Refusal::ReplicaFull);
        }
        let entry = streams.by_user.entry(user).or_insert_with(|| UserStreams {
            open: 0,
            changes: watch::Sender::new(0),
            revoked: watch::Sender::new(0),
        });
        if entry.open >= self.max_streams_per_user {
            return Err(Refusal::UserFull);
        }
        entry.open += 1;
        let subscription = Subscription {
            feed: Arc::clone(self),
            user,
            changes: entry.changes.subscribe(),
            revoked: entry.revoked.subscribe(),
            shutdown: self.shutdown.subscribe(),
        };
        streams.total += 1;
        metrics::gauge!(SSE_STREAMS_OPEN).increment(1.0);
        Ok(subscription)
    }

    /// Open streams of `user` on this replica.
    pub fn open_streams(&self, user: Uuid) -> usize {
        self.users()
            .by_user
            .get(&user)
            .map_or(0, |entry| entry.open)
    }

    /// Open streams on this replica.
    pub fn open_streams_total(&self) -> usize {
        self.users().total
    }

    /// While this replica cannot hear the other replicas (see [`Feed::is_polling`]), reads
    /// every `every` the newest event id of each user with a stream here, in one statement,
    /// and wakes the streams of users whose log grew. Runs for the life of the process
    /// (no-op without Redis: one process hears all its own changes).
    pub fn spawn_poller(self: &Arc<Self>, db: DatabaseConnection, every: Duration) {
        if self.link.is_none() {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move { this.poll_while_deaf(db, every).await });
    }

    async fn poll_while_deaf(&self, db: DatabaseConnection, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The newest id seen per user while polling; a user seen for the first time is
        // woken once, since its stream may have positioned itself before the change.
        let mut seen: HashMap<Uuid, i64> = HashMap::new();
        loop {
            tick.tick().await;
            if !self.is_polling() {
                seen.clear();
                continue;
            }
            let users: Vec<Uuid> = self.users().by_user.keys().copied().collect();
            if users.is_empty() {
                seen.clear();
                continue;
            }
            let latest = match events::latest_ids(&db, &users).await {
                Ok(latest) => latest,
                Err(err) => {
                    tracing::warn!(error = %err, "change-feed poll failed; retrying");
                    continue;
                }
            };
            seen.retain(|user, _| latest.contains_key(user));
            for (user, id) in latest {
                if seen.insert(user, id) != Some(id) {
                    self.wake(user);
                }
            }
        }
    }

    /// Call after a change of `user`'s tasks has committed: wakes this replica's streams of
    /// the user at once and tells the other replicas.
    pub async fn changed(&self, user: Uuid) {
        self.wake(user);
        if let Some(link) = &self.link {
            let channel = link.key(CHANNEL);
            let message = format!("{} {user}", self.replica);
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

    /// [`Self::changed`] for each of `audience` (who heard of one committed change).
    pub async fn changed_for(&self, audience: Vec<Uuid>) {
        for user in audience {
            self.changed(user).await;
        }
    }

    fn wake(&self, user: Uuid) {
        if let Some(entry) = self.users().by_user.get(&user) {
            entry.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for entry in self.users().by_user.values() {
            entry.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// `user`'s access may have been revoked (`None`: anyone's): their streams recheck the
    /// account and end if the token no longer holds. Called by the revocation fan-out, for
    /// local revocations and for those heard from other replicas.
    pub fn revoked(&self, user: Option<Uuid>) {
        let streams = self.users();
        let bump = |entry: &UserStreams| entry.revoked.send_modify(|n| *n = n.wrapping_add(1));
        match user {
            Some(user) => streams.by_user.get(&user).into_iter().for_each(bump),
            None => streams.by_user.values().for_each(bump),
        }
    }

    /// True while notifications from other replicas could be missed: the poller then reads
    /// the table for them, and streams recheck their token at every heartbeat.
    pub fn is_polling(&self) -> bool {
        self.polling.load(Ordering::Acquire)
    }

    /// Ends every stream (with `reason: shutdown`) and refuses new ones.
    pub fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    pub fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Keeps a subscription to the other replicas' notifications for the life of the
    /// process (no-op without Redis).
    pub fn spawn_listener(self: &Arc<Self>) {
        let Some(link) = self.link.clone() else {
            return;
        };
        let this = Arc::clone(self);
        tokio::spawn(this.listen(link));
    }

    async fn listen(self: Arc<Self>, link: RedisLink) {
        link.subscribe_forever(link.key(CHANNEL), "task changes", &*self)
            .await;
    }
}

impl Subscriber for Feed {
    fn subscribed(&self) {
        self.polling.store(false, Ordering::Release);
        // Whatever was published while we were away: every stream catches up.
        self.wake_all();
    }

    fn received(&self, payload: &[u8]) {
        let parsed = std::str::from_utf8(payload).ok().and_then(|text| {
            let (replica, user) = text.split_once(' ')?;
            Some((Uuid::parse_str(replica).ok()?, Uuid::parse_str(user).ok()?))
        });
        match parsed {
            // Our own publication: the local streams were woken when it was sent.
            Some((replica, _)) if replica == self.replica => {}
            Some((_, user)) => self.wake(user),
            // Unreadable: waking everyone costs a read per stream, missing one costs an event.
            None => self.wake_all(),
        }
    }

    /// The poller reads the table until the subscription is back.
    fn unsubscribed(&self) {
        self.polling.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_user_cap_is_given_back_when_a_stream_ends() {
        let feed = Arc::new(Feed::new(None, 2, 100));
        let user = Uuid::now_v7();
        let first = feed.subscribe(user).expect("first");
        let _second = feed.subscribe(user).expect("second");
        assert_eq!(feed.subscribe(user).err(), Some(Refusal::UserFull));
        assert!(feed.subscribe(Uuid::now_v7()).is_ok());
        drop(first);
        assert_eq!(feed.open_streams(user), 1);
        assert!(feed.subscribe(user).is_ok());
    }

    #[test]
    fn the_replica_cap_counts_every_users_streams() {
        let feed = Arc::new(Feed::new(None, 5, 3));
        let streams: Vec<_> = (0..3)
            .map(|_| feed.subscribe(Uuid::now_v7()).expect("under the cap"))
            .collect();
        assert_eq!(
            feed.subscribe(Uuid::now_v7()).err(),
            Some(Refusal::ReplicaFull)
        );
        assert_eq!(feed.open_streams_total(), 3);
        drop(streams);
        assert_eq!(feed.open_streams_total(), 0);
        assert!(feed.subscribe(Uuid::now_v7()).is_ok());
    }

    #[test]
    fn notifications_wake_only_the_users_streams() {
        let feed = Arc::new(Feed::new(None, 5, 100));
        let (alice, bob) = (Uuid::now_v7(), Uuid::now_v7());
        let mut a = feed.subscribe(alice).expect("alice");
        let mut b = feed.subscribe(bob).expect("bob");
        feed.wake(alice);
        assert!(a.changes.has_changed().expect("open"));
        assert!(!b.changes.has_changed().expect("open"));
        feed.revoked(None);
        assert!(a.revoked.has_changed().expect("open"));
        assert!(b.revoked.has_changed().expect("open"));
        a.changes.mark_unchanged();
        b.changes.mark_unchanged();
        let foreign = format!("{} {alice}", Uuid::new_v4());
        feed.received(foreign.as_bytes());
        assert!(a.changes.has_changed().expect("open"));
        assert!(!b.changes.has_changed().expect("open"));
    }
}
