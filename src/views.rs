//! Response shapes. They are built from entities and never carry secrets (no hashes, no versions of tokens).

use chrono::{DateTime, Utc};
use salvo::oapi::ToSchema;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::id_list;
use crate::entities::project::Model as Project;
use crate::entities::project_member::Role as ProjectRole;
use crate::entities::task::{self, Priority, Status};
use crate::entities::user::{self, Role};
use crate::entities::{comment, label};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[salvo(schema(name = "User"))]
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
#[salvo(schema(name = "Task"))]
pub struct TaskView {
    pub id: Uuid,
    /// The project the task is in (the owner's Inbox has the owner's id).
    pub project_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub due_date: Option<DateTime<Utc>>,
    /// Members of the project assigned to the task, by id.
    pub assignee_ids: Vec<Uuid>,
    /// Labels of the project on the task, by id.
    pub label_ids: Vec<Uuid>,
    /// Comments on the task (`/tasks/{id}/comments`). Not covered by `version`: a comment
    /// leaves the task's ETag as it is.
    pub comment_count: i32,
    /// Increases by one on every change; the ETag carries it.
    pub version: i32,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
    // Boxed: only a move's answer has it, and every other task view stays small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub moved: Option<Box<MoveReport>>,
}

/// What a move to another project changed besides the project (only in the answer to the
/// `PATCH` that moved the task).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[salvo(schema(name = "TaskMove"))]
pub struct MoveReport {
    /// The project the task was in.
    pub from_project_id: Uuid,
    /// Labels taken off: the target project has no label of the same name.
    pub dropped_label_ids: Vec<Uuid>,
    /// Assignees taken off: they are not members of the target project.
    pub dropped_assignee_ids: Vec<Uuid>,
}

impl From<task::Model> for TaskView {
    fn from(task: task::Model) -> Self {
        Self {
            id: task.id,
            project_id: task.project_id,
            title: task.title,
            description: task.description,
            status: task.status,
            priority: task.priority,
            due_date: task.due_date,
            assignee_ids: id_list::parse(task.assignee_ids.as_deref()),
            label_ids: id_list::parse(task.label_ids.as_deref()),
            comment_count: task.comment_count,
            version: task.version,
            created_at: task.created_at,
            updated_at: task.updated_at,
            moved: None,
        }
    }
}

/// The `data:` of a change-feed event (`task.created`, `task.updated`, `task.deleted`).
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "TaskEventData"))]
pub struct TaskEventData {
    pub task_id: Uuid,
    /// The project the task was in.
    pub project_id: Uuid,
    /// The task's version after the change; for a deletion, the version deleted.
    pub version: i32,
    /// The task as `GET /api/v1/tasks/{id}` shows it; `null` for a deletion (tombstone).
    pub task: Option<TaskView>,
}

/// The `data:` of the change feed's last event, `end`.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "StreamEnd"))]
pub struct StreamEnd {
    /// `token_expired` (refresh, then reconnect), `revoked` (log in again), `shutdown` or
    /// `unavailable` (reconnect after the `retry:` hint).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "TaskPage"))]
pub struct TaskPage {
    pub items: Vec<TaskView>,
    /// Number of tasks matching the filters, across all pages, counted up to 100: when
    /// more match, this is 100 and `total_capped` is `true` (page on with `next_cursor`,
    /// which costs the same however deep). `null` on a page fetched with `cursor`
    /// (counting every match would cost what the cursor saves).
    pub total: Option<u64>,
    /// `true` when more tasks match than `total` says (it stopped counting at 100).
    pub total_capped: bool,
    pub limit: u64,
    pub offset: u64,
    /// Pass as `cursor` (with the same `sort` and filters) for the next page; `null` on
    /// the last page.
    pub next_cursor: Option<String>,
}

/// A body that writes its own JSON, byte for byte what its `Serialize` implementation
/// gives (each implementation has a test comparing the two); `Serialize` stays the
/// documented shape.
pub trait RenderJson {
    fn render_json(&self) -> serde_json::Result<Vec<u8>>;
}

/// A page is the largest frequent body: written by hand, keys, ids and timestamps are
/// copied as they are instead of going through serde_json's byte-by-byte string escaping
/// (with the per-field serializer calls, most of the cost of a 20-task page under
/// callgrind); the free text, enum values and numbers still go through serde_json.
impl RenderJson for TaskPage {
    fn render_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(128 + 384 * self.items.len());
        out.extend_from_slice(b"{\"items\":[");
        for (n, item) in self.items.iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            item.write_json(&mut out)?;
        }
        out.extend_from_slice(b"],\"total\":");
        serde_json::to_writer(&mut out, &self.total)?;
        out.extend_from_slice(b",\"total_capped\":");
        serde_json::to_writer(&mut out, &self.total_capped)?;
        out.extend_from_slice(b",\"limit\":");
        serde_json::to_writer(&mut out, &self.limit)?;
        out.extend_from_slice(b",\"offset\":");
        serde_json::to_writer(&mut out, &self.offset)?;
        out.extend_from_slice(b",\"next_cursor\":");
        serde_json::to_writer(&mut out, &self.next_cursor)?;
        out.push(b'}');
        Ok(out)
    }
}

/// One task, as GET, PUT, PATCH, POST and the change feed send it: the page's writer.
impl RenderJson for TaskView {
    fn render_json(&self) -> serde_json::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(384);
        self.write_json(&mut out)?;
        Ok(out)
    }
}

impl TaskView {
    /// The fields in declaration order, as the derived `Serialize` writes them.
    fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        out.extend_from_slice(b"{\"id\":\"");
        out.extend_from_slice(
            self.id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"project_id\":\"");
        out.extend_from_slice(
            self.project_id
                .hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.extend_from_slice(b"\",\"title\":");
        write_json_str(out, &self.title)?;
        out.extend_from_slice(b",\"description\":");
        match &self.description {
            Some(text) => write_json_str(out, text)?,
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"status\":");
        serde_json::to_writer(&mut *out, &self.status)?;
        out.extend_from_slice(b",\"priority\":");
        serde_json::to_writer(&mut *out, &self.priority)?;
        out.extend_from_slice(b",\"due_date\":");
        match &self.due_date {
            Some(at) => rfc3339::write_quoted(out, at),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"assignee_ids\":");
        write_ids(out, &self.assignee_ids);
        out.extend_from_slice(b",\"label_ids\":");
        write_ids(out, &self.label_ids);
        out.extend_from_slice(b",\"comment_count\":");
        serde_json::to_writer(&mut *out, &self.comment_count)?;
        out.extend_from_slice(b",\"version\":");
        serde_json::to_writer(&mut *out, &self.version)?;
        out.extend_from_slice(b",\"created_at\":");
        rfc3339::write_quoted(out, &self.created_at);
        out.extend_from_slice(b",\"updated_at\":");
        rfc3339::write_quoted(out, &self.updated_at);
        if let Some(moved) = &self.moved {
            out.extend_from_slice(b",\"moved\":");
            serde_json::to_writer(&mut *out, moved)?;
        }
        out.push(b'}');
        Ok(())
    }
}

/// Ids as a JSON array of strings (ids need no escaping).
fn write_ids(out: &mut Vec<u8>, ids: &[Uuid]) {
    out.push(b'[');
    for (n, id) in ids.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(
            id.hyphenated()
                .encode_lower(&mut Uuid::encode_buffer())
                .as_bytes(),
        );
        out.push(b'"');
    }
    out.push(b']');
}

/// `text` as a JSON string, byte for byte what serde_json writes: text with nothing to
/// escape (no control character, `"` or `\`: nearly every title and description) is
/// copied whole after one scan, instead of serde_json's lookup and branch per byte (7% of
/// a 20-task page under callgrind).
fn write_json_str(out: &mut Vec<u8>, text: &str) -> serde_json::Result<()> {
    // `fold`, not `all`: no early exit, so no branch per byte.
    let plain = text.bytes().fold(true, |plain, byte| {
        plain & (byte >= 0x20 && byte != b'"' && byte != b'\\')
    });
    if !plain {
        return serde_json::to_writer(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "UserPage"))]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "TokenPair"))]
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
#[salvo(schema(name = "Health"))]
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
    use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, out: S) -> Result<S::Ok, S::Error> {
        out.serialize_str(&text(at))
    }

    fn text(at: &DateTime<Utc>) -> String {
        at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// The same text as a JSON string, written as it is (only digits, `-`, `:`, `.`, `T`
    /// and `Z`, none of which JSON escapes) and digit by digit: chrono's formatter was half
    /// the cost of rendering a page. Years outside 0..=9999 and leap seconds, which chrono
    /// writes differently, take chrono's formatter.
    pub fn write_quoted(out: &mut Vec<u8>, at: &DateTime<Utc>) {
        let (date, time) = (at.date_naive(), at.time());
        let nanos = time.nanosecond();
        let Ok(year) = u32::try_from(date.year()) else {
            return write_slow(out, at);
        };
        if year > 9999 || nanos >= 1_000_000_000 {
            return write_slow(out, at);
        }
        // `"YYYY-MM-DDTHH:MM:SS`, then `.` and 3, 6 or 9 digits when the instant has a
        // fraction, then `Z"`: at most 32 bytes, filled in place and copied once (pushing
        // digit by digit, with a power of ten per digit, cost 700 instructions a timestamp).
        let mut text = *b"\"0000-00-00T00:00:00.000000000Z\"";
        let digits = |text: &mut [u8; 32], end: usize, mut value: u32, width: usize| {
            for place in (end - width..end).rev() {
                // One decimal digit: the cast cannot truncate.
                text[place] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        };
        digits(&mut text, 5, year, 4);
        digits(&mut text, 8, date.month(), 2);
        digits(&mut text, 11, date.day(), 2);
        digits(&mut text, 14, time.hour(), 2);
        digits(&mut text, 17, time.minute(), 2);
        digits(&mut text, 20, time.second(), 2);
        let (fraction, width) = match nanos {
            0 => (0, 0),
            n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
            n if n % 1_000 == 0 => (n / 1_000, 6),
            n => (n, 9),
        };
        let mut end = 20;
        if width > 0 {
            end += 1 + width;
            digits(&mut text, end, fraction, width);
        }
        text[end] = b'Z';
        text[end + 1] = b'"';
        out.extend_from_slice(&text[..end + 2]);
    }

    fn write_slow(out: &mut Vec<u8>, at: &DateTime<Utc>) {
        out.push(b'"');
        out.extend_from_slice(text(at).as_bytes());
        out.push(b'"');
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

        #[test]
        fn written_by_hand_the_same_as_chrono() {
            let instants = [
                Utc.with_ymd_and_hms(2030, 12, 31, 23, 59, 59),
                Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0),
                Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 0),
                Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59),
                Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0),
                Utc.with_ymd_and_hms(-1, 6, 15, 12, 30, 5),
            ];
            for base in instants {
                let base = base.single().expect("date");
                for nanos in [0, 1, 5, 999, 1_000, 120_000_000, 123_456_000, 999_999_999] {
                    let at = base + chrono::Duration::nanoseconds(nanos);
                    let mut ours = Vec::new();
                    super::write_quoted(&mut ours, &at);
                    let theirs = serde_json::to_string(&at).expect("chrono");
                    assert_eq!(String::from_utf8(ours).expect("utf-8"), theirs);
                }
            }
            // A leap second (nanoseconds past 1e9) takes chrono's own formatter.
            let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
                .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
                .expect("leap second")
                .and_utc();
            let mut ours = Vec::new();
            super::write_quoted(&mut ours, &leap);
            let theirs = serde_json::to_string(&leap).expect("chrono");
            assert_eq!(String::from_utf8(ours).expect("utf-8"), theirs);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn view(n: u32, title: &str, description: Option<&str>, due: Option<i64>) -> TaskView {
        let at = Utc
            .with_ymd_and_hms(2030, 1, 5, 9, 0, n)
            .single()
            .expect("date");
        TaskView {
            id: Uuid::now_v7(),
            project_id: Uuid::now_v7(),
            title: title.into(),
            description: description.map(Into::into),
            status: [Status::Todo, Status::InProgress, Status::Done][n as usize % 3],
            priority: [Priority::Low, Priority::Medium, Priority::High][n as usize % 3],
            due_date: due.map(|nanos| at + chrono::Duration::nanoseconds(nanos)),
            assignee_ids: (0..n % 3).map(|k| Uuid::from_u128(u128::from(k))).collect(),
            label_ids: (0..n % 2)
                .map(|k| Uuid::from_u128(u128::from(k) + 7))
                .collect(),
            comment_count: i32::try_from(n).expect("small"),
            version: i32::try_from(n).expect("small") * 1000 + 1,
            created_at: at + chrono::Duration::nanoseconds(123_456_000),
            updated_at: at,
            moved: (n == 4).then(|| {
                Box::new(MoveReport {
                    from_project_id: Uuid::from_u128(9),
                    dropped_label_ids: vec![Uuid::from_u128(10)],
                    dropped_assignee_ids: Vec::new(),
                })
            }),
        }
    }

    #[test]
    fn a_rendered_task_and_page_are_byte_identical_to_serde() {
        let items = vec![
            view(0, "plain", None, None),
            view(
                1,
                "quote \" back\\slash \u{1} tab\t Ünïcode ✓",
                Some("line\nbreak"),
                Some(5),
            ),
            view(2, "", Some(""), Some(123_456_789)),
            view(3, "</script>", Some("€ 😀"), Some(0)),
            view(
                4,
                "del \u{7f} and \u{1f} unit separator",
                Some("plain words"),
                None,
            ),
        ];
        for item in &items {
            let rendered = item.render_json().expect("render");
            let serde = serde_json::to_vec(item).expect("serde");
            assert_eq!(String::from_utf8(rendered), String::from_utf8(serde));
        }
        for (items, total, next_cursor) in [
            (items.clone(), Some(42), Some("abc.def".to_string())),
            (items, None, None),
            (Vec::new(), Some(0), None),
        ] {
            let page = TaskPage {
                items,
                total,
                total_capped: total == Some(42),
                limit: 20,
                offset: 7,
                next_cursor,
            };
            let rendered = page.render_json().expect("render");
            let serde = serde_json::to_vec(&page).expect("serde");
            assert_eq!(String::from_utf8(rendered), String::from_utf8(serde));
        }
    }
}

/// A project as the caller sees it, with `role`, the caller's role in it.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "Project"))]
pub struct ProjectView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// The caller's personal project: private, never shared or deleted; its id is the
    /// caller's user id, and `GET /tasks` lists it.
    pub inbox: bool,
    pub archived: bool,
    // No doc comment: on a `$ref` field it becomes an `allOf` wrapper, which
    // openapi-python-client refuses ("Cannot take allOf a non-object").
    pub role: ProjectRole,
    /// Increases by one on every change; the ETag carries it.
    pub version: i32,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl ProjectView {
    /// `project` as a member with `role` sees it.
    pub fn new(project: Project, role: ProjectRole) -> Self {
        Self {
            id: project.id,
            inbox: project.is_inbox(),
            name: project.name,
            description: project.description,
            color: project.color,
            archived: project.archived,
            role,
            version: project.version,
            created_at: project.created_at,
            updated_at: project.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "ProjectList"))]
pub struct ProjectList {
    /// The Inbox first, then by name.
    pub items: Vec<ProjectView>,
}

/// A member of a project, as its members see them.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "ProjectMember"))]
pub struct MemberView {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: ProjectRole,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub joined_at: DateTime<Utc>,
    /// Increases by one on every role change; send it as `If-Match` (`"2"`) to change or
    /// remove the member only if nobody did meanwhile.
    pub version: i32,
}

impl MemberView {
    pub fn new(
        user: user::Model,
        role: ProjectRole,
        joined_at: DateTime<Utc>,
        version: i32,
    ) -> Self {
        Self {
            user_id: user.id,
            name: user.name,
            email: user.email,
            role,
            joined_at,
            version,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "ProjectMemberList"))]
pub struct MemberList {
    /// Longest-standing first.
    pub items: Vec<MemberView>,
}

/// A project's label.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "Label"))]
pub struct LabelView {
    pub id: Uuid,
    pub project_id: Uuid,
    pub name: String,
    /// `#rrggbb`.
    pub color: Option<String>,
    pub version: i32,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl From<label::Model> for LabelView {
    fn from(label: label::Model) -> Self {
        Self {
            id: label.id,
            project_id: label.project_id,
            name: label.name,
            color: label.color,
            version: label.version,
            created_at: label.created_at,
            updated_at: label.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "LabelList"))]
pub struct LabelList {
    /// By name, ignoring case.
    pub items: Vec<LabelView>,
}

/// A comment on a task.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "Comment"))]
pub struct CommentView {
    pub id: Uuid,
    pub task_id: Uuid,
    /// `null` once the author's account is deleted.
    pub author_id: Option<Uuid>,
    pub body: String,
    pub version: i32,
    #[serde(serialize_with = "rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// When the author last edited it; `null` if never.
    #[serde(serialize_with = "rfc3339::serialize_option")]
    pub edited_at: Option<DateTime<Utc>>,
}

impl From<comment::Model> for CommentView {
    fn from(comment: comment::Model) -> Self {
        Self {
            id: comment.id,
            task_id: comment.task_id,
            author_id: comment.author_id,
            body: comment.body,
            version: comment.version,
            created_at: comment.created_at,
            edited_at: comment.edited_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "CommentPage"))]
pub struct CommentPage {
    /// Oldest first.
    pub items: Vec<CommentView>,
    /// Pass as `cursor` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// The `data:` of `comment.created`, `comment.updated` and `comment.deleted` events.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "CommentEventData"))]
pub struct CommentEventData {
    pub project_id: Uuid,
    pub task_id: Uuid,
    pub comment_id: Uuid,
    /// The task's `comment_count` after the change.
    pub comment_count: i32,
    /// The comment as `GET /tasks/{id}/comments` shows it; `null` for a deletion.
    pub comment: Option<CommentView>,
}

/// The `data:` of `label.created`, `label.updated` and `label.deleted` events.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "LabelEventData"))]
pub struct LabelEventData {
    pub project_id: Uuid,
    pub label_id: Uuid,
    /// The label; `null` for a deletion (tasks that had it lose it: `task.updated` events).
    pub label: Option<LabelView>,
}

/// The `data:` of `member.added`, `member.updated` and `member.removed` events.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "MemberEventData"))]
pub struct MemberEventData {
    pub project_id: Uuid,
    pub user_id: Uuid,
    /// The membership; `null` when the member was removed or left (the removed member
    /// receives this event too, and nothing of the project after it).
    pub member: Option<MemberView>,
}

/// An event's data as the feed stores and sends it: compact JSON.
pub fn event_json<T: Serialize>(data: &T) -> String {
    serde_json::to_string(data).unwrap_or_else(|_| "null".to_string())
}
