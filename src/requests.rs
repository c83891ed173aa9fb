//! Request bodies and query strings. Every body rejects unknown fields, so a smuggled
//! `role`, `user_id` or `id` is a 422 rather than silently ignored or, worse, honoured.

use chrono::{DateTime, Utc};
use salvo::oapi::{Components, ComposeSchema, RefOr, Schema, ToParameters, ToSchema};
use serde::{Deserialize, Deserializer};

use crate::entities::task::{Priority, Status};
use crate::entities::user::Role;
use crate::validate;

/// An instant sent by a client: a strict RFC 3339 `date-time` whose UTC value lies in years
/// 0001-9999, at microsecond precision (see [`validate::instant`]). Anything else fails to
/// deserialize, which the extractors turn into a 422 naming the field or parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        validate::instant(&raw)
            .map(Timestamp)
            .map_err(serde::de::Error::custom)
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(value: Timestamp) -> Self {
        value.0
    }
}

/// Documented as what it is on the wire: a `date-time` string.
impl ToSchema for Timestamp {
    fn to_schema(components: &mut Components) -> RefOr<Schema> {
        DateTime::<Utc>::to_schema(components)
    }
}

impl ComposeSchema for Timestamp {
    fn compose(components: &mut Components, _generics: Vec<RefOr<Schema>>) -> RefOr<Schema> {
        DateTime::<Utc>::to_schema(components)
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// 1-100 characters, not blank, no control, invisible (zero-width, bidi) characters,
    /// no word mixing Latin, Greek, Cyrillic or Armenian letters.
    #[salvo(schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb][^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*$"
    ))]
    pub name: String,
    /// Trimmed and lower-cased before use (no other normalisation); no invisible
    /// characters, no local part or domain label mixing Latin, Greek, Cyrillic or Armenian.
    #[salvo(schema(
        max_length = 254,
        pattern = r"^\s*[^\s@\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]{1,64}@[^\s@.\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]+(\.[^\s@.\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]+)+\s*$"
    ))]
    pub email: String,
    /// 8-128 characters.
    #[salvo(schema(min_length = 8, max_length = 128))]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    /// 1-100 characters, not blank, no control, invisible (zero-width, bidi) characters,
    /// no word mixing Latin, Greek, Cyrillic or Armenian letters.
    #[salvo(schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb][^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*$"
    ))]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8-128 characters.
    #[salvo(schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTaskRequest {
    /// 1-200 characters, not blank, no control or invisible (zero-width, bidi) characters;
    /// stored trimmed.
    #[salvo(schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb][^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*$"
    ))]
    pub title: String,
    /// At most 10,000 characters; no NUL.
    #[salvo(schema(max_length = 10000, pattern = r"^[^\x00]*$"))]
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// RFC 3339; its UTC value must lie in years 0001-9999. Kept to the microsecond.
    pub due_date: Option<Timestamp>,
}

/// Full replacement: omitted optional fields go back to their defaults.
pub type ReplaceTaskRequest = CreateTaskRequest;

/// Partial update: absent fields stay as they are; `null` clears `description` or `due_date`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchTaskRequest {
    /// May be omitted but not `null`: a task always has a title.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = String, required = false, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*[^\s\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb][^\x00-\x1f\x7f-\x9f\u00ad\u034f\u061c\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufff9-\ufffb]*$"))]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<String>, max_length = 10000, pattern = r"^[^\x00]*$"))]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Status, required = false))]
    pub status: Option<Option<Status>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Priority, required = false))]
    pub priority: Option<Option<Priority>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<DateTime<Utc>>))]
    pub due_date: Option<Option<Timestamp>>,
}

/// Distinguishes "field present (maybe null)" from "field absent" in a PATCH body.
fn present<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminUpdateUserRequest {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum TaskSort {
    #[serde(rename = "created_at")]
    CreatedAt,
    #[default]
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    #[serde(rename = "due_date")]
    DueDate,
    #[serde(rename = "-due_date")]
    DueDateDesc,
    #[serde(rename = "priority")]
    Priority,
    #[serde(rename = "-priority")]
    PriorityDesc,
    #[serde(rename = "title")]
    Title,
    #[serde(rename = "-title")]
    TitleDesc,
}

#[derive(Debug, Default, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct ListTasksQuery {
    /// Page size, 1-100 (default 20).
    #[salvo(parameter(minimum = 1, maximum = 100))]
    pub limit: Option<u64>,
    /// Number of matching tasks to skip (default 0).
    #[salvo(parameter(minimum = 0, maximum = 1000000))]
    pub offset: Option<u64>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// Only tasks due strictly before this instant (RFC 3339, years 0001-9999 in UTC).
    pub due_before: Option<Timestamp>,
    /// Only tasks due strictly after this instant (RFC 3339, years 0001-9999 in UTC).
    pub due_after: Option<Timestamp>,
    /// Case-insensitive substring of the title or description (at most 200 characters).
    #[salvo(parameter(max_length = 200, pattern = r"^[^\x00]*$"))]
    pub q: Option<String>,
    /// Sort key; prefix with `-` for descending (default `-created_at`).
    pub sort: Option<TaskSort>,
}

#[derive(Debug, Default, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct PageQuery {
    /// Page size, 1-100 (default 20).
    #[salvo(parameter(minimum = 1, maximum = 100))]
    pub limit: Option<u64>,
    /// Number of items to skip (default 0).
    #[salvo(parameter(minimum = 0, maximum = 1000000))]
    pub offset: Option<u64>,
}
