//! Fan-out of the change feed. The log itself is the `task_events` table
//! (`models::events`); what travels here is only "user U has something new" (and "user U
//! was revoked"), after the change has committed. Each open stream then reads its user's
//! rows after the last id it sent, so what a client receives is exactly the log, in the
//! table's order, however many notifications were merged or lost on the way.
//!
//! Locally a notification is a `watch` per user with open streams (one value per user, so
//! a burst of changes costs no memory). Other replicas hear it on a Redis pub/sub channel.
//! While this replica is not subscribed (Redis down or reconnecting) its streams poll the
//! table instead ([`Feed::is_polling`]), so a lost message only delays an event, and a
//! resubscription wakes every stream to catch up. Without Redis there is one process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;
use uuid::Uuid;

use crate::cluster::RedisLink;
use crate::cluster::redis_link::Subscriber;
use crate::metrics::SSE_STREAMS_OPEN;
use crate::sync::lock;

const CHANNEL: &str = "task-events";

/// Streams of one user on this replica, and how to wake them.
struct UserStreams {
    open: usize,
    changes: watch::Sender<u64>,
    revoked: watch::Sender<u64>,
}

pub struct Feed {
    link: Option<RedisLink>,
    /// Tells this replica's own publications apart from other replicas' on the channel.
    replica: Uuid,
    max_streams_per_user: usize,
    users: Mutex<HashMap<Uuid, UserStreams>>,
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
        let mut users = self.feed.users();
        if let Some(entry) = users.get_mut(&self.user) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 {
                users.remove(&self.user);
            }
        }
        metrics::gauge!(SSE_STREAMS_OPEN).decrement(1.0);
    }
}

impl Feed {
    pub fn new(link: Option<RedisLink>, max_streams_per_user: usize) -> Self {
        Self {
            // Until the subscription is up, other replicas' changes could be missed.
            polling: AtomicBool::new(link.is_some()),
            link,
            replica: Uuid::new_v4(),
            max_streams_per_user,
            users: Mutex::default(),
            shutdown: watch::Sender::new(false),
        }
    }

    fn users(&self) -> MutexGuard<'_, HashMap<Uuid, UserStreams>> {
        // The map stays consistent even if a holder panicked: every update is one step.
        lock(&self.users)
    }

    /// Registers a stream of `user`; `None` when the user already has the maximum open
    /// on this replica (the cap is per replica: see README).
    pub fn subscribe(self: &Arc<Self>, user: Uuid) -> Option<Subscription> {
        let mut users = self.users();
        let entry = users.entry(user).or_insert_with(|| UserStreams {
            open: 0,
            changes: watch::Sender::new(0),
            revoked: watch::Sender::new(0),
        });
        if entry.open >= self.max_streams_per_user {
            return None;
        }
        entry.open += 1;
        metrics::gauge!(SSE_STREAMS_OPEN).increment(1.0);
        Some(Subscription {
            feed: Arc::clone(self),
            user,
            changes: entry.changes.subscribe(),
            revoked: entry.revoked.subscribe(),
            shutdown: self.shutdown.subscribe(),
        })
    }

    /// Open streams of `user` on this replica.
    pub fn open_streams(&self, user: Uuid) -> usize {
        self.users().get(&user).map_or(0, |entry| entry.open)
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

    fn wake(&self, user: Uuid) {
        if let Some(entry) = self.users().get(&user) {
            entry.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for entry in self.users().values() {
            entry.changes.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// `user`'s access may have been revoked (`None`: anyone's): their streams recheck the
    /// account and end if the token no longer holds. Called by the revocation fan-out, for
    /// local revocations and for those heard from other replicas.
    pub fn revoked(&self, user: Option<Uuid>) {
        let users = self.users();
        let bump = |entry: &UserStreams| entry.revoked.send_modify(|n| *n = n.wrapping_add(1));
        match user {
            Some(user) => users.get(&user).into_iter().for_each(bump),
            None => users.values().for_each(bump),
        }
    }

    /// True while notifications from other replicas could be missed: streams then poll
    /// the table.
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

    /// Streams poll the table until the subscription is back.
    fn unsubscribed(&self) {
        self.polling.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_per_user_cap_is_given_back_when_a_stream_ends() {
        let feed = Arc::new(Feed::new(None, 2));
        let user = Uuid::now_v7();
        let first = feed.subscribe(user).expect("first");
        let _second = feed.subscribe(user).expect("second");
        assert!(feed.subscribe(user).is_none());
        assert!(feed.subscribe(Uuid::now_v7()).is_some());
        drop(first);
        assert_eq!(feed.open_streams(user), 1);
        assert!(feed.subscribe(user).is_some());
    }

    #[test]
    fn notifications_wake_only_the_users_streams() {
        let feed = Arc::new(Feed::new(None, 5));
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
