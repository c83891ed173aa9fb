//! Keyset cursors for `GET /api/v1/tasks`: an opaque, signed token naming the last task a
//! page ended with, so the next page starts right after it (a range scan, not a skip over
//! every earlier row) and stays correct when tasks are inserted or deleted in between.
//!
//! Wire form: `base64url(payload) "." base64url(tag)`, where the payload is a small JSON
//! object (version, the filter binding, the sort key of the last row and its id) and the
//! tag is the first 16 bytes of HMAC-SHA256 over the caller's user id and the payload,
//! keyed by a key derived from the token secret (`auth::mac`). A cursor edited by hand,
//! issued by another deployment or to another user fails the tag check; one from another
//! sort or filter fails the binding check. Both are a 422 naming `cursor`. Cursors do not
//! expire: they name a position, not a snapshot, and reveal nothing the caller cannot list.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::auth::mac::{constant_time_eq, hmac_sha256};
use crate::entities::task;
use crate::error::{AppError, Result};
use crate::requests::TaskSort;

const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Longest cursor accepted: a 200-character title of 4-byte characters, encoded, fits.
pub const CURSOR_MAX: usize = 2048;

const INVALID: &str = "is not a cursor this API issued to you (altered, truncated or from another account); start again without a cursor";
const MISMATCH: &str = "belongs to a listing with another sort or other filters; send the same sort and filters as the page it came from, or start again without a cursor";

/// The value of the sort column on the last row of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SortKey {
    Instant(DateTime<Utc>),
    /// `due_date`, which may be NULL (NULLs sort last in both directions).
    MaybeInstant(Option<DateTime<Utc>>),
    Priority(i16),
    Text(String),
}

/// Where a page ended: the sort key and id of its last row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub key: SortKey,
    pub id: Uuid,
}

impl Position {
    pub fn of(task: &task::Model, sort: TaskSort) -> Self {
        let key = match sort {
            TaskSort::CreatedAt | TaskSort::CreatedAtDesc => SortKey::Instant(task.created_at),
            TaskSort::DueDate | TaskSort::DueDateDesc => SortKey::MaybeInstant(task.due_date),
            TaskSort::Priority | TaskSort::PriorityDesc => {
                SortKey::Priority(sea_orm::ActiveEnum::to_value(&task.priority))
            }
            TaskSort::Title | TaskSort::TitleDesc => SortKey::Text(task.title.clone()),
        };
        Self { key, id: task.id }
    }
}

/// What a cursor is valid for: one user, one sort, one set of filters. `filters` is a
/// canonical text of every filter (built by `TaskFilter::binding`); only its hash travels.
#[derive(Debug, Clone)]
pub struct Binding {
    pub project: Uuid,
    pub sort: TaskSort,
    pub filters: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    v: u8,
    /// Hex prefix of SHA-256 over the sort and filters.
    b: String,
    /// The sort key: an RFC 3339 string, a number, a string or null.
    k: Value,
    id: Uuid,
}

fn instant_text(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Binding {
    fn digest(&self) -> String {
        let hash = Sha256::digest(format!("{:?}\n{}", self.sort, self.filters).as_bytes());
        hex::encode(&hash[..8])
    }

    fn tag(&self, key: &[u8], payload: &[u8]) -> [u8; 32] {
        hmac_sha256(key, &[self.project.as_bytes(), payload])
    }

    /// The cursor that continues after `position`.
    pub fn encode(&self, key: &[u8], position: &Position) -> String {
        let k = match &position.key {
            SortKey::Instant(at) => Value::String(instant_text(at)),
            SortKey::MaybeInstant(at) => at
                .as_ref()
                .map_or(Value::Null, |at| Value::String(instant_text(at))),
            SortKey::Priority(level) => Value::from(*level),
            SortKey::Text(text) => Value::String(text.clone()),
        };
        let payload = Payload {
            v: VERSION,
            b: self.digest(),
            k,
            id: position.id,
        };
        // Serialising a struct of strings, numbers and a UUID cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let tag = self.tag(key, &json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
        )
    }

    /// The position a cursor names, after checking its tag and that it was issued for
    /// this binding.
    pub fn decode(&self, key: &[u8], raw: &str) -> Result<Position> {
        let invalid = || AppError::validation("cursor", INVALID);
        let (body, tag) = raw.split_once('.').ok_or_else(invalid)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if !constant_time_eq(&tag, &self.tag(key, &json)[..TAG_LEN]) {
            return Err(invalid());
        }
        // Signed by this server, so well-formed unless the format changed.
        let payload: Payload = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if payload.v != VERSION {
            return Err(invalid());
        }
        if payload.b != self.digest() {
            return Err(AppError::validation("cursor", MISMATCH));
        }
        let instant = |value: &Value| -> Result<DateTime<Utc>> {
            let text = value.as_str().ok_or_else(invalid)?;
            DateTime::parse_from_rfc3339(text)
                .map(|at| at.with_timezone(&Utc))
                .map_err(|_| invalid())
        };
        let sort_key = match self.sort {
            TaskSort::CreatedAt | TaskSort::CreatedAtDesc => SortKey::Instant(instant(&payload.k)?),
            TaskSort::DueDate | TaskSort::DueDateDesc => match &payload.k {
                Value::Null => SortKey::MaybeInstant(None),
                other => SortKey::MaybeInstant(Some(instant(other)?)),
            },
            TaskSort::Priority | TaskSort::PriorityDesc => SortKey::Priority(
                payload
                    .k
                    .as_i64()
                    .and_then(|level| i16::try_from(level).ok())
                    .ok_or_else(invalid)?,
            ),
            TaskSort::Title | TaskSort::TitleDesc => {
                SortKey::Text(payload.k.as_str().ok_or_else(invalid)?.to_string())
            }
        };
        Ok(Position {
            key: sort_key,
            id: payload.id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(project: Uuid, sort: TaskSort, filters: &str) -> Binding {
        Binding {
            project,
            sort,
            filters: filters.to_string(),
        }
    }

    #[test]
    fn round_trips_every_key_kind() {
        let project = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("instant");
        for (sort, key) in [
            (TaskSort::CreatedAtDesc, SortKey::Instant(at)),
            (TaskSort::DueDate, SortKey::MaybeInstant(Some(at))),
            (TaskSort::DueDateDesc, SortKey::MaybeInstant(None)),
            (TaskSort::Priority, SortKey::Priority(3)),
            (TaskSort::TitleDesc, SortKey::Text("Ünïcode . title".into())),
        ] {
            let binding = binding(project, sort, "status=todo");
            let position = Position {
                key,
                id: Uuid::now_v7(),
            };
            let cursor = binding.encode(b"key", &position);
            assert_eq!(binding.decode(b"key", &cursor).expect("valid"), position);
        }
    }

    #[test]
    fn tampered_foreign_and_mismatched_cursors_are_refused() {
        let project = Uuid::now_v7();
        let mine = binding(project, TaskSort::Title, "");
        let position = Position {
            key: SortKey::Text("a".into()),
            id: Uuid::now_v7(),
        };
        let cursor = mine.encode(b"key", &position);
        let field = |err: AppError| match err {
            AppError::Validation(errors) => errors[0].message.clone(),
            other => panic!("unexpected {other:?}"),
        };
        // Another user, another server key, a flipped byte: the tag fails.
        let theirs = binding(Uuid::now_v7(), TaskSort::Title, "");
        assert_eq!(field(theirs.decode(b"key", &cursor).unwrap_err()), INVALID);
        assert_eq!(field(mine.decode(b"other", &cursor).unwrap_err()), INVALID);
        let (body, tag) = cursor.split_once('.').expect("dot");
        let mut json = URL_SAFE_NO_PAD.decode(body).expect("b64");
        json[10] ^= 1;
        let forged = format!("{}.{tag}", URL_SAFE_NO_PAD.encode(&json));
        assert_eq!(field(mine.decode(b"key", &forged).unwrap_err()), INVALID);
        assert_eq!(field(mine.decode(b"key", "garbage").unwrap_err()), INVALID);
        // Same user, another sort or filter: a binding mismatch.
        let other_sort = binding(project, TaskSort::TitleDesc, "");
        assert_eq!(
            field(other_sort.decode(b"key", &cursor).unwrap_err()),
            MISMATCH
        );
        let other_filter = binding(project, TaskSort::Title, "q=x");
        assert_eq!(
            field(other_filter.decode(b"key", &cursor).unwrap_err()),
            MISMATCH
        );
    }
}
