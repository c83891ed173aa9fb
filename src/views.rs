//! Response shapes. They are built from entities and never carry secrets (no hashes, no versions of tokens).

use chrono::{DateTime, Utc};
use salvo::oapi::ToSchema;
use serde::Serialize;
use uuid::Uuid;

use crate::entities::task::{self, Priority, Status};
use crate::entities::user::{self, Role};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub active: bool,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for UserView {
    fn from(user: user::Model) -> Self {
        Self {
            id: user.id,
            name: user.name,
            email: user.email,
            role: user.role,
            active: user.active,
            created_at: user.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TaskView {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub due_date: Option<DateTime<Utc>>,
    /// Increases by one on every change; the ETag carries it.
    pub version: i32,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<task::Model> for TaskView {
    fn from(task: task::Model) -> Self {
        Self {
            id: task.id,
            title: task.title,
            description: task.description,
            status: task.status,
            priority: task.priority,
            due_date: task.due_date,
            version: task.version,
            created_at: task.created_at,
            updated_at: task.updated_at,
        }
    }
}

/// The `data:` of a change-feed event (`task.created`, `task.updated`, `task.deleted`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskEventData {
    pub task_id: Uuid,
    /// The task's version after the change; for a deletion, the version deleted.
    pub version: i32,
    /// The task as `GET /api/v1/tasks/{id}` shows it; `null` for a deletion (tombstone).
    pub task: Option<TaskView>,
}

/// The `data:` of the change feed's last event, `end`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamEnd {
    /// `token_expired` (refresh, then reconnect), `revoked` (log in again), `shutdown` or
    /// `unavailable` (reconnect after the `retry:` hint).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskPage {
    pub items: Vec<TaskView>,
    /// Number of tasks matching the filters, across all pages; `null` on a page fetched
    /// with `cursor` (counting every match would cost what the cursor saves).
    pub total: Option<u64>,
    pub limit: u64,
    pub offset: u64,
    /// Pass as `cursor` (with the same `sort` and filters) for the next page; `null` on
    /// the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always "Bearer".
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// Opaque single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    pub refresh_expires_in: u64,
    pub user: UserView,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<&'static str>,
    /// `up`, `down` or `disabled`. Informational: a Redis outage degrades limits to
    /// per-replica ones but does not take the instance out of rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<&'static str>,
}

/// Timestamps exactly as chrono's own `Serialize` writes them (RFC 3339, UTC as `Z`, as
/// many sub-second digits as needed), but formatted in one piece: chrono's impl goes
/// through `collect_str`, which serde_json escapes fragment by fragment, and that was
/// the largest cost of serialising a page of tasks.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    pub fn serialize_option<S: Serializer>(
        at: &Option<DateTime<Utc>>,
        out: S,
    ) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => serialize(at, out),
            None => out.serialize_none(),
        }
    }

    #[cfg(test)]
    mod tests {
        use chrono::{DateTime, TimeZone, Utc};

        #[derive(serde::Serialize)]
        struct Ours(#[serde(serialize_with = "super::serialize")] DateTime<Utc>);

        #[test]
        fn same_text_as_chrono() {
            let base = Utc
                .with_ymd_and_hms(2030, 1, 5, 9, 0, 0)
                .single()
                .expect("date");
            for nanos in [0, 120_000_000, 123_456_000, 123_456_789, 1_000, 5] {
                let at = base + chrono::Duration::nanoseconds(nanos);
                let theirs = serde_json::to_string(&at).expect("chrono");
                let ours = serde_json::to_string(&Ours(at)).expect("ours");
                assert_eq!(ours, theirs, "{nanos} ns");
            }
        }
    }
}
