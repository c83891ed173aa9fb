//! `GET /api/v1/tasks/events`: the caller's task changes as Server-Sent Events.
//!
//! A stream pulls from the log (`models::events`): woken by the feed (`cluster::feed`) or,
//! while this replica cannot hear other replicas, by a poll timer, it reads its user's
//! rows after the last id it sent, a batch at a time, and only when the client has taken
//! the previous chunk (the body is polled by the connection as it drains). A slow client
//! therefore holds at most one batch in memory and simply falls behind in the table; if
//! it falls behind what the pruner keeps, it gets `reset` and goes on from the head.
//!
//! The stream ends, with `event: end` and the reason, when the access token expires, when
//! the account's tokens are revoked (logout-all, password change, deactivation, deletion:
//! the revocation fan-out wakes the stream to recheck), and at shutdown.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use salvo::ConnCtrl;
use salvo::http::header::{self, HeaderValue};
use salvo::http::{Method, StatusCode};
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use salvo::sse::SseEvent;
use sea_orm::DatabaseConnection;
use tokio::time::{Instant, Interval};
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::auth::jwt::unix_now;
use crate::cluster::feed::{Refusal, Subscription};
use crate::entities::task_event;
use crate::error::{AppError, Result};
use crate::extract::Query;
use crate::metrics::SSE_EVENTS_SENT;
use crate::models::projects::{self, Action};
use crate::models::{events, users};
use crate::requests::FeedQuery;
use crate::routes::guard::bearer_token;
use crate::state::AppState;
use crate::views::{CommentEventData, LabelEventData, MemberEventData, StreamEnd, TaskEventData};

/// Events read from the table at a time.
const BATCH: u64 = 50;
/// A batch is cut once its events take this many bytes (it holds at least one), so a slow
/// client of an account with large tasks holds about this much here, not 50 of them.
const BATCH_BYTES: usize = 128 * 1024;
/// How often a stream's watchdog looks at it (see [`watch_stream`]).
const WATCHDOG_EVERY: Duration = Duration::from_secs(1);
/// After its token's expiry, how long a stream may take to send `end` itself before its
/// watchdog closes the connection.
const EXPIRY_GRACE: Duration = Duration::from_secs(2);

/// Why a stream ended, sent as the data of its last event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndReason {
    TokenExpired,
    Revoked,
    Shutdown,
    Unavailable,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::TokenExpired => "token_expired",
            EndReason::Revoked => "revoked",
            EndReason::Shutdown => "shutdown",
            EndReason::Unavailable => "unavailable",
        }
    }
}

/// One task event, and the bytes of its data. The task's JSON comes from the log's own
/// writer (`events::task_json`), already compact; salvo frames it.
fn task_event(row: &task_event::Model) -> (SseEvent, usize) {
    let data = match (&row.body, events::Kind::is_task(&row.kind)) {
        // A comment, label or membership event: its data was written with it.
        (Some(body), false) => body.clone(),
        _ => format!(
            "{{\"task_id\":\"{}\",\"project_id\":\"{}\",\"version\":{},\"task\":{}}}",
            row.task_id,
            row.project_id.unwrap_or(row.user_id),
            row.version,
            events::task_json(row),
        ),
    };
    let bytes = data.len();
    let event = SseEvent::default()
        .id(row.id.to_string())
        .name(events::Kind::event_name(&row.kind))
        .text(data);
    (event, bytes)
}

/// Tells the client its view may be missing changes: refetch, then go on from `id`.
fn reset_event(id: i64) -> SseEvent {
    metrics::counter!(SSE_EVENTS_SENT, "event" => "reset").increment(1);
    SseEvent::default()
        .id(id.to_string())
        .name("reset")
        .text(r#"{"reason":"gap"}"#)
}

/// What woke a waiting stream.
enum Wake {
    Shutdown,
    Expired,
    Revoked,
    Changed,
    Heartbeat,
}

/// One open stream.
struct Feeder {
    db: DatabaseConnection,
    user: Uuid,
    /// `?project_id=`: only this project's events.
    project: Option<Uuid>,
    token_version: i32,
    expires_at: Instant,
    sub: Subscription,
    last_id: i64,
    /// Events ready to send: at most one batch.
    queue: VecDeque<SseEvent>,
    /// The last read filled a batch: read again before waiting.
    backlog: bool,
    heartbeat: Interval,
    /// The reconnection delay the stream suggests (`events.retry_ms`).
    retry: Duration,
    /// See `EventSettings::write_timeout_secs`.
    write_timeout: Duration,
    done: bool,
}

impl Feeder {
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                return Some(chunk);
            }
            if self.done {
                return None;
            }
            if self.backlog {
                if let Some(last) = self.interrupted().await {
                    return Some(last);
                }
                if let Err(err) = self.read().await {
                    return Some(self.failed(&err));
                }
                continue;
            }
            let polling = self.sub.is_polling();
            let wake = tokio::select! {
                biased;
                _ = self.sub.shutdown.wait_for(|stopping| *stopping) => Wake::Shutdown,
                () = tokio::time::sleep_until(self.expires_at) => Wake::Expired,
                Ok(()) = self.sub.revoked.changed() => Wake::Revoked,
                // While this replica cannot hear the others, the feed's poller wakes it.
                Ok(()) = self.sub.changes.changed() => Wake::Changed,
                _ = self.heartbeat.tick() => Wake::Heartbeat,
            };
            let outcome = match wake {
                Wake::Shutdown => return Some(self.end(EndReason::Shutdown)),
                Wake::Expired => return Some(self.end(EndReason::TokenExpired)),
                Wake::Revoked => self.still_authorized().await,
                Wake::Changed => self.read().await.map(|()| true),
                Wake::Heartbeat => {
                    // Without the fan-out, a revocation elsewhere could go unheard: check.
                    let checked = if polling {
                        self.still_authorized().await
                    } else {
                        Ok(true)
                    };
                    if let Ok(true) = checked {
                        return Some(SseEvent::default().comment("keep-alive"));
                    }
                    checked
                }
            };
            match outcome {
                Ok(true) => {}
                Ok(false) => return Some(self.end(EndReason::Revoked)),
                Err(err) => return Some(self.failed(&err)),
            }
        }
    }

    /// Between backlog batches, the checks the wait above makes. A stream that is always
    /// behind (a slow reader of a busy account) never reaches that wait, and must still
    /// end at shutdown, at its token's expiry and when the account's tokens are revoked,
    /// rather than go on sending what was written after.
    async fn interrupted(&mut self) -> Option<SseEvent> {
        if *self.sub.shutdown.borrow() {
            return Some(self.end(EndReason::Shutdown));
        }
        if Instant::now() >= self.expires_at {
            return Some(self.end(EndReason::TokenExpired));
        }
        // Unsubscribed, a revocation elsewhere goes unheard: check the account per batch.
        let recheck = self.sub.revoked.has_changed().unwrap_or(false) || self.sub.is_polling();
        if recheck {
            self.sub.revoked.borrow_and_update();
            match self.still_authorized().await {
                Ok(true) => {}
                Ok(false) => return Some(self.end(EndReason::Revoked)),
                Err(err) => return Some(self.failed(&err)),
            }
        }
        None
    }

    /// Queues the user's events after `last_id` (one batch), or `reset` if some of them
    /// were pruned before this stream sent them.
    async fn read(&mut self) -> Result<()> {
        let rows = events::after(&self.db, self.user, self.project, self.last_id, BATCH).await?;
        // The floor is read after the rows: a prune that commits between the two reads
        // could otherwise have taken rows in (last_id, floor] out of `rows` unnoticed.
        let pruned_through = events::pruned_through(&self.db, self.user).await?;
        if pruned_through > self.last_id {
            let position = events::position(&self.db, self.user).await?;
            self.last_id = position.latest;
            self.backlog = false;
            self.queue.push_back(reset_event(self.last_id));
            return Ok(());
        }
        self.backlog = rows.len() as u64 == BATCH;
        let mut bytes = 0;
        for row in &rows {
            if bytes >= BATCH_BYTES {
                // The rest is read again, after the client has taken these.
                self.backlog = true;
                break;
            }
            metrics::counter!(SSE_EVENTS_SENT, "event" => events::Kind::event_name(&row.kind))
                .increment(1);
            let (event, size) = task_event(row);
            bytes += size;
            self.queue.push_back(event);
            self.last_id = row.id;
        }
        Ok(())
    }

    /// Whether the token this stream was opened with still holds (same checks as the
    /// auth guard, against the database: the cache was just invalidated anyway).
    async fn still_authorized(&self) -> Result<bool> {
        Ok(users::auth_state(&self.db, self.user)
            .await?
            .is_some_and(|account| account.active && account.token_version == self.token_version))
    }

    fn end(&mut self, reason: EndReason) -> SseEvent {
        self.done = true;
        self.queue.clear();
        metrics::counter!(SSE_EVENTS_SENT, "event" => "end").increment(1);
        tracing::debug!(user_id = %self.user, reason = reason.as_str(), "change feed stream ended");
        SseEvent::default()
            .name("end")
            .retry(self.retry)
            .text(format!(r#"{{"reason":"{}"}}"#, reason.as_str()))
    }

    fn failed(&mut self, err: &AppError) -> SseEvent {
        tracing::warn!(user_id = %self.user, error = %err, "change feed stream failed; the client will reconnect");
        self.end(EndReason::Unavailable)
    }
}

/// A `Last-Event-ID` that names an event id (a number); anything else is ignored.
fn last_event_id(req: &Request) -> Option<i64> {
    req.headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<i64>().ok())
        .filter(|id| *id >= 0)
}

/// What a stream's watchdog sees of it.
#[derive(Default)]
struct Pulse {
    /// Milliseconds (since `start`) at which the body handed the connection a chunk that
    /// the connection has not yet asked past; 0 while the body is being asked for more.
    handed_at_ms: AtomicU64,
    /// The body was dropped: the stream ended, or the connection went away.
    gone: AtomicBool,
}

/// Marks the pulse gone when the body is dropped, however that happens.
struct BodyAlive(Arc<Pulse>);

impl Drop for BodyAlive {
    fn drop(&mut self) {
        self.0.gone.store(true, Ordering::Release);
    }
}

/// Closes the stream's connection when its client has stopped taking data for
/// `write_timeout` while a chunk waits, or when the stream is still open `EXPIRY_GRACE`
/// after its token expired. A client that does not read never lets the body be asked for
/// its next chunk, so neither the stream's own expiry check nor a shutdown would reach it:
/// its buffers would stay held and the stream would outlive its token.
async fn watch_stream(
    pulse: Arc<Pulse>,
    conn: ConnCtrl,
    expires_at: Instant,
    write_timeout: Duration,
) {
    let start = Instant::now();
    let mut tick = tokio::time::interval(WATCHDOG_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pulse.gone.load(Ordering::Acquire) {
            return;
        }
        let now = Instant::now();
        let handed_at = pulse.handed_at_ms.load(Ordering::Acquire);
        let stalled = handed_at != 0
            && now.duration_since(start)
                > Duration::from_millis(handed_at).saturating_add(write_timeout);
        let expired = now >= expires_at + EXPIRY_GRACE;
        if stalled || expired {
            tracing::info!(
                stalled,
                expired,
                "change feed client is not reading; closing its connection"
            );
            conn.abort();
            return;
        }
    }
}

/// A started stream: the opening event and the feeder behind it.
pub struct EventStream(Option<(SseEvent, Feeder)>);

#[async_trait]
impl Writer for EventStream {
    async fn write(self, req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(StatusCode::OK);
        let headers = res.headers_mut();
        // Proxies that buffer responses (nginx) must pass each event on at once.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        let Some((opening, feeder)) = self.0 else {
            // HEAD: the headers a stream would have, no body.
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            return;
        };
        let pulse = Arc::new(Pulse::default());
        if let Some(conn) = req.extensions().get::<ConnCtrl>() {
            tokio::spawn(watch_stream(
                Arc::clone(&pulse),
                conn.clone(),
                feeder.expires_at,
                feeder.write_timeout,
            ));
        }
        let start = Instant::now();
        let alive = BodyAlive(pulse);
        let body = futures_util::stream::unfold(
            (Some(opening), feeder, alive),
            move |(opening, mut feeder, alive)| async move {
                // Asked again: the connection took the last chunk.
                alive.0.handed_at_ms.store(0, Ordering::Release);
                let event = match opening {
                    Some(opening) => opening,
                    None => feeder.next().await?,
                };
                let since_start = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
                alive
                    .0
                    .handed_at_ms
                    .store(since_start.max(1), Ordering::Release);
                Some((Ok::<_, Infallible>(event), (None, feeder, alive)))
            },
        );
        salvo::sse::stream(res, body);
    }
}

impl EndpointOutRegister for EventStream {
    fn register(components: &mut Components, operation: &mut Operation) {
        let data = TaskEventData::to_schema(components);
        let _ = StreamEnd::to_schema(components);
        let _ = CommentEventData::to_schema(components);
        let _ = LabelEventData::to_schema(components);
        let _ = MemberEventData::to_schema(components);
        operation.responses.insert(
            "200",
            oapi::Response::new(
                "A stream of Server-Sent Events (`text/event-stream`), open until the token \
                 expires or is revoked, or the server shuts down. It starts with a `retry:` \
                 hint. `task.created`, `task.updated` and `task.deleted` carry an `id:` (send \
                 the last one back as `Last-Event-ID` when reconnecting) and `data:` as \
                 `TaskEventData` (`task` is `null` for a deletion). `comment.created`, \
                 `comment.updated`, `comment.deleted` (data `CommentEventData`), \
                 `label.created`, `label.updated`, `label.deleted` (`LabelEventData`) and \
                 `member.added`, `member.updated`, `member.removed` (`MemberEventData`) \
                 carry an `id:` too. `reset` (with an `id:`) \
                 means events were missed for good: refetch the tasks, then go on. `end` \
                 closes the stream; its data is `StreamEnd`. Comment lines (`: keep-alive`) \
                 arrive every heartbeat.",
            )
            .add_content("text/event-stream", data),
        );
    }
}

/// Stream the changes of every project the caller is a member of (Server-Sent Events), or of
/// one with `project_id`; a member who leaves a project hears nothing more of it. Reconnect with `Last-Event-ID`
/// to replay what was missed. At most `events.max_streams_per_user` open streams per user
/// per replica (429 beyond), and `events.max_streams_per_replica` of all users together
/// (503 with `Retry-After` beyond).
#[endpoint(operation_id = "streamTaskEvents", 
    tags("tasks"),
    security(("bearer" = [])),
    parameters(("Last-Event-ID" = Option<String>, Header, description = "The `id:` of the last event received: events after it are replayed, or `reset` is sent if they are no longer kept")),
    status_codes(200, 401, 429, 503)
)]
pub async fn task_events(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    query: Query<FeedQuery>,
) -> Result<EventStream> {
    if state.is_draining() || state.feed.is_shut_down() {
        // A stream opened now would only get `end` with reason shutdown: send the client
        // to another replica (the load balancer has stopped routing here) after a pause.
        return Err(AppError::Unavailable(
            "This server is shutting down; reconnect shortly.",
        ));
    }
    let project = query.0.project_id;
    if let Some(project) = project {
        projects::get(&state.db, caller.id, project, Action::Read).await?;
    }
    // The guard checked the token; the stream also needs its expiry and version.
    let claims = state
        .jwt
        .verify(bearer_token(req)?)
        .map_err(|_| AppError::Unauthorized("Invalid or expired token."))?;
    let sub = state
        .feed
        .subscribe(caller.id)
        .map_err(|refusal| match refusal {
            Refusal::UserFull => AppError::TooManyRequests {
                retry_after_secs: 5,
            },
            Refusal::ReplicaFull => AppError::Unavailable(
                "This server has as many change-feed streams open as it takes; reconnect shortly.",
            ),
        })?;
    if req.method() == Method::HEAD {
        // Same status as GET (429 above when the user has no stream left), no body.
        drop(sub);
        return Ok(EventStream(None));
    }
    // Subscribed first, then positioned: a change committed after this read wakes the
    // stream, one committed before it is in what the client fetches itself.
    let position = events::position(&state.db, caller.id).await?;
    let settings = &state.settings.events;
    let retry = Duration::from_millis(settings.retry_ms);
    let mut queue = VecDeque::new();
    let (last_id, backlog) = match last_event_id(req) {
        None => (position.latest, false),
        Some(id) if id >= position.pruned_through && id <= position.latest => (id, true),
        // Older than what is kept (or not an id this user was ever sent): refetch.
        Some(_) => {
            queue.push_back(reset_event(position.latest));
            (position.latest, false)
        }
    };
    let heartbeat_every = Duration::from_secs(settings.heartbeat_secs.max(1));
    let mut heartbeat = tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let feeder = Feeder {
        db: state.db.clone(),
        user: caller.id,
        project,
        token_version: claims.ver,
        expires_at: Instant::now() + Duration::from_secs(claims.exp.saturating_sub(unix_now())),
        sub,
        last_id,
        queue,
        backlog,
        heartbeat,
        retry,
        write_timeout: Duration::from_secs(settings.write_timeout_secs.max(1)),
        done: false,
    };
    tracing::debug!(user_id = %caller.id, last_id, "change feed stream opened");
    let opening = SseEvent::default().comment("stream open").retry(retry);
    Ok(EventStream(Some((opening, feeder))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_events_are_one_sse_event_with_json_data() {
        let row = task_event::Model {
            id: 42,
            user_id: Uuid::now_v7(),
            project_id: Some(Uuid::now_v7()),
            task_id: Uuid::now_v7(),
            kind: "deleted".into(),
            version: 3,
            body: None,
            created_at: chrono::Utc::now(),
            title: None,
            description: None,
            status: None,
            priority: None,
            due_date: None,
            task_created_at: None,
            task_updated_at: None,
            assignee_ids: None,
            label_ids: None,
            comment_count: None,
        };
        let (event, bytes) = task_event(&row);
        let text = event.to_string();
        assert!(text.starts_with("event: task.deleted\ndata: "), "{text}");
        assert!(text.ends_with("\nid: 42\n\n"), "{text}");
        let data = text
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .expect("data line");
        let parsed: serde_json::Value = serde_json::from_str(data).expect("json");
        assert_eq!(parsed["version"], 3);
        assert_eq!(parsed["task"], serde_json::Value::Null);
        assert_eq!(parsed["task_id"], row.task_id.to_string());
        assert_eq!(bytes, data.len());
    }
}
