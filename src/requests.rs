//! Request bodies and query strings. Every body rejects unknown fields, so a smuggled
//! `role`, `user_id` or `id` is a 422 rather than silently ignored or, worse, honoured.

use chrono::{DateTime, Utc};
use salvo::oapi::{Components, ComposeSchema, RefOr, Schema, ToParameters, ToSchema};
use serde::{Deserialize, Deserializer};
use uuid::Uuid;

use crate::entities::project_member::Role as ProjectRole;
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
#[salvo(schema(name = "RegisterRequest"))]
pub struct RegisterRequest {
    /// Not blank, no control, invisible (zero-width, bidi) characters, no word mixing
    /// Latin, Greek, Cyrillic or Armenian letters.
    #[salvo(schema(schema_with = schema::name))]
    pub name: String,
    /// Trimmed and lower-cased before use (no other normalisation); no invisible
    /// characters, no local part or domain label mixing Latin, Greek, Cyrillic or Armenian.
    #[salvo(schema(schema_with = schema::email))]
    pub email: String,
    #[salvo(schema(schema_with = schema::password))]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "LoginRequest"))]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "RefreshRequest"))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "UpdateMeRequest"))]
pub struct UpdateMeRequest {
    /// Not blank, no control, invisible (zero-width, bidi) characters, no word mixing
    /// Latin, Greek, Cyrillic or Armenian letters.
    #[salvo(schema(schema_with = schema::name))]
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "ChangePasswordRequest"))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    #[salvo(schema(schema_with = schema::password))]
    pub new_password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "CreateTaskRequest"))]
pub struct CreateTaskRequest {
    /// The project to create the task in (editor or admin there); the caller's Inbox when
    /// omitted. On `PUT`, the task's own project or omitted: `PUT` does not move tasks.
    #[serde(default)]
    pub project_id: Option<Uuid>,
    /// Not blank, no control or invisible (zero-width, bidi) characters; stored trimmed.
    #[salvo(schema(schema_with = schema::title))]
    pub title: String,
    /// Free text: newlines and tabs allowed, NUL not.
    #[salvo(schema(schema_with = schema::description))]
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    /// RFC 3339; its UTC value must lie in years 0001-9999. Kept to the microsecond.
    // Published as a nullable date-time: the derived `allOf[oneOf[null, Timestamp]]` became
    // an empty object model in openapi-python-client.
    #[salvo(schema(value_type = Option<DateTime<Utc>>))]
    pub due_date: Option<Timestamp>,
    /// Members of the task's project to assign (at most 25; anyone else is a 422). On
    /// `PUT`, omitted keeps the current assignees.
    pub assignee_ids: Option<Vec<Uuid>>,
    /// Labels of the task's project (at most 25; any other id is a 422). On `PUT`, omitted
    /// keeps the current labels.
    pub label_ids: Option<Vec<Uuid>>,
}

/// Full replacement: omitted optional fields go back to their defaults.
pub type ReplaceTaskRequest = CreateTaskRequest;

/// Partial update: absent fields stay as they are; `null` clears `description` or `due_date`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "UpdateTaskRequest"))]
pub struct PatchTaskRequest {
    /// May be omitted but not `null`: a task always has a title.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(schema_with = schema::patch_title))]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(schema_with = schema::description))]
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
    /// Replaces the assignees (members of the task's project; `[]` or `null` clears them).
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<Vec<Uuid>>))]
    pub assignee_ids: Option<Option<Vec<Uuid>>>,
    /// Replaces the labels (labels of the task's project; `[]` or `null` clears them).
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<Vec<Uuid>>))]
    pub label_ids: Option<Option<Vec<Uuid>>>,
    /// Moves the task to another project (editor or admin in both). Assignees who are not
    /// members there are taken off, and labels are kept only where the target has a label
    /// of the same name (which replaces them); the response's `moved` lists what was
    /// dropped. Not `null`.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Uuid, required = false))]
    pub project_id: Option<Option<Uuid>>,
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
#[salvo(schema(name = "AdminUpdateUserRequest"))]
pub struct AdminUpdateUserRequest {
    pub role: Option<Role>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[salvo(schema(name = "TaskSort"))]
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
    /// Continue after the page that returned this `next_cursor` (keyset paging: constant
    /// cost at any depth, no row skipped or repeated when tasks are added in between).
    /// Opaque and signed; only valid with the same `sort` and filters as that page, and
    /// not together with `offset` (422).
    #[salvo(parameter(max_length = 2048))]
    pub cursor: Option<String>,
    /// Only tasks assigned to `me`, to the member with this id, or to nobody (`none`).
    #[salvo(parameter(max_length = 36, pattern = r"^(me|none|[0-9a-fA-F-]{32,36})$"))]
    pub assignee: Option<String>,
    /// Only tasks with this label; repeat the parameter (`label=a&label=b`) for tasks with
    /// every one of them (at most 10).
    #[salvo(parameter(value_type = Option<Vec<Uuid>>, style = Form, explode = true))]
    pub label: Option<String>,
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

/// OpenAPI schemas of the bounded inputs, built from the constants and character classes
/// that [`validate`] and the [`crate::domain`] types enforce, so the published limits
/// cannot drift from the checks (salvo-oapi's `max_length`/`pattern` attributes take
/// literals only, not constants).
mod schema {
    use salvo::oapi::{BasicType, Object, SchemaType};

    use crate::domain::{Email, INVISIBLE_CLASS, Name, Password, Title, UserName};
    use crate::validate;

    /// Control (C0, DEL, C1) and invisible characters, as a regex class body.
    fn hidden() -> String {
        format!(r"\x00-\x1f\x7f-\x9f{INVISIBLE_CLASS}")
    }

    /// A one-line text as `Title` and `UserName` accept it: not blank (ECMAScript `\s` is the
    /// blank test), no control or invisible character.
    pub(super) fn line_pattern() -> String {
        let hidden = hidden();
        format!(r"^[^{hidden}]*[^\s{hidden}][^{hidden}]*$")
    }

    /// `Email::parse`'s shape: local@label.label, surrounding whitespace allowed.
    pub(super) fn email_pattern() -> String {
        let hidden = hidden();
        let local_max = Email::LOCAL_MAX_CHARS;
        format!(r"^\s*[^\s@{hidden}]{{1,{local_max}}}@[^\s@.{hidden}]+(\.[^\s@.{hidden}]+)+\s*$")
    }

    /// Also the literal pattern of the `q` parameter (a test keeps them equal).
    pub(super) const NO_NUL: &str = r"^[^\x00]*$";

    fn text(max: usize, what: &str) -> Object {
        Object::with_type(BasicType::String)
            .max_length(max)
            .description(what)
    }

    fn line(max: usize, what: &str) -> Object {
        text(max, &format!("1-{max} characters. {what}"))
            .min_length(1)
            .pattern(line_pattern())
    }

    pub(super) fn name() -> Object {
        line(
            UserName::MAX_CHARS,
            "Not blank, no control, invisible (zero-width, bidi) characters, no word mixing Latin, Greek, Cyrillic or Armenian letters.",
        )
    }

    pub(super) fn email() -> Object {
        text(
            Email::MAX_CHARS,
            "Trimmed and lower-cased before use (no other normalisation); no invisible characters, no local part or domain label mixing Latin, Greek, Cyrillic or Armenian.",
        )
        .pattern(email_pattern())
    }

    pub(super) fn password() -> Object {
        let (min, max) = (Password::MIN_CHARS, Password::MAX_CHARS);
        text(max, &format!("{min}-{max} characters.")).min_length(min)
    }

    pub(super) fn title() -> Object {
        line(
            Title::MAX_CHARS,
            "Not blank, no control or invisible (zero-width, bidi) characters; stored trimmed.",
        )
    }

    /// [`title`] in a PATCH body.
    pub(super) fn patch_title() -> Object {
        line(
            Title::MAX_CHARS,
            "May be omitted but not `null`: a task always has a title. Not blank, no control or invisible (zero-width, bidi) characters; stored trimmed.",
        )
    }

    /// A project's or label's name: a title's rules.
    pub(super) fn short_name() -> Object {
        line(
            Name::MAX_CHARS,
            "Not blank, no control or invisible (zero-width, bidi) characters; stored trimmed.",
        )
    }

    /// [`short_name`] in a PATCH body.
    pub(super) fn patch_short_name() -> Object {
        line(
            Name::MAX_CHARS,
            "May be omitted but not `null`. Not blank, no control or invisible (zero-width, bidi) characters; stored trimmed.",
        )
    }

    /// A comment: not blank, a description's limits.
    pub(super) fn comment() -> Object {
        let max = validate::DESCRIPTION_MAX;
        text(
            max,
            &format!("1-{max} characters, not blank; no NUL (newlines kept)."),
        )
        .min_length(1)
        .pattern(r"^[^\x00]*[^\s\x00][^\x00]*$")
    }

    /// Optional, and `null` means none (or, in a PATCH, clears it).
    pub(super) fn description() -> Object {
        let max = validate::DESCRIPTION_MAX;
        text(max, &format!("At most {max} characters; no NUL."))
            .schema_type(SchemaType::from_iter([BasicType::String, BasicType::Null]))
            .pattern(NO_NUL)
    }
}

#[cfg(test)]
mod tests {
    use salvo::oapi::{Components, ToParameters};
    use serde_json::{Value, json};

    use super::*;
    use crate::domain::{Email, Password, UserName};
    use crate::validate;

    /// Query parameters keep literal bounds: salvo-oapi drops a parameter's description
    /// when its schema comes from `schema_with`. This holds them to the validator's numbers.
    #[test]
    fn query_parameter_bounds_are_the_validators() {
        let schema_of = |params: salvo::oapi::Parameters, name: &str| -> Value {
            let params = serde_json::to_value(params).expect("parameters serialize");
            params
                .as_array()
                .and_then(|all| all.iter().find(|p| p["name"] == name))
                .map(|p| p["schema"].clone())
                .unwrap_or_else(|| panic!("no parameter {name}"))
        };
        let page = json!({"minimum": 1, "maximum": validate::PAGE_LIMIT_MAX});
        let offset = json!({"minimum": 0, "maximum": validate::PAGE_OFFSET_MAX});
        for params in [
            || ListTasksQuery::to_parameters(&mut Components::new()),
            || PageQuery::to_parameters(&mut Components::new()),
        ] {
            for (name, bounds) in [("limit", &page), ("offset", &offset)] {
                let schema = schema_of(params(), name);
                for key in ["minimum", "maximum"] {
                    assert_eq!(schema[key], bounds[key], "{name}.{key}");
                }
            }
        }
        let q = schema_of(ListTasksQuery::to_parameters(&mut Components::new()), "q");
        assert_eq!(q["maxLength"], json!(validate::SEARCH_MAX));
        assert_eq!(q["pattern"], json!(schema::NO_NUL));
    }

    /// The body patterns are built, not copied; check what they accept against the rules.
    #[test]
    fn body_patterns_are_built_from_the_validators_classes() {
        let line = schema::line_pattern();
        assert!(line.contains(crate::domain::INVISIBLE_CLASS));
        assert!(line.starts_with(r"^[^\x00-\x1f\x7f-\x9f"));
        let email = schema::email_pattern();
        assert!(email.contains(&format!("{{1,{}}}", Email::LOCAL_MAX_CHARS)));
        let name = serde_json::to_value(schema::name()).expect("schema");
        assert_eq!(name["maxLength"], json!(UserName::MAX_CHARS));
        assert_eq!(name["pattern"], json!(line));
        let password = serde_json::to_value(schema::password()).expect("schema");
        assert_eq!(password["minLength"], json!(Password::MIN_CHARS));
        assert_eq!(password["maxLength"], json!(Password::MAX_CHARS));
    }
}

/// A new project; the caller becomes its admin.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "CreateProjectRequest"))]
pub struct CreateProjectRequest {
    #[salvo(schema(schema_with = schema::short_name))]
    pub name: String,
    /// Free text, the rules of a task description.
    #[salvo(schema(schema_with = schema::description))]
    pub description: Option<String>,
    /// `#rrggbb`.
    #[salvo(schema(pattern = "^#[0-9a-fA-F]{6}$"))]
    pub color: Option<String>,
}

/// Partial change of a project (admins): absent fields stay; `null` clears `description`
/// or `color`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "UpdateProjectRequest"))]
pub struct PatchProjectRequest {
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(schema_with = schema::patch_short_name))]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<String>, required = false))]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<String>, required = false, pattern = "^#[0-9a-fA-F]{6}$"))]
    pub color: Option<Option<String>>,
    /// An archived project stays readable; an Inbox cannot be archived.
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = bool, required = false))]
    pub archived: Option<Option<bool>>,
}

/// Adds an existing account to a project by its e-mail address.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "AddMemberRequest"))]
pub struct AddMemberRequest {
    #[salvo(schema(format = "email", max_length = 254))]
    pub email: String,
    pub role: ProjectRole,
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "UpdateMemberRequest"))]
pub struct UpdateMemberRequest {
    pub role: ProjectRole,
}

/// `GET /tasks/events` options.
#[derive(Debug, Default, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct FeedQuery {
    /// Only this project's events (any member; 404 otherwise).
    pub project_id: Option<Uuid>,
}

/// A new label of a project (its admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "CreateLabelRequest"))]
pub struct CreateLabelRequest {
    /// Unique in the project, ignoring case.
    #[salvo(schema(schema_with = schema::short_name))]
    pub name: String,
    #[salvo(schema(pattern = "^#[0-9a-fA-F]{6}$"))]
    pub color: Option<String>,
}

/// Partial change of a label: absent fields stay; `null` clears `color`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "UpdateLabelRequest"))]
pub struct PatchLabelRequest {
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(schema_with = schema::patch_short_name))]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[salvo(schema(value_type = Option<String>, required = false, pattern = "^#[0-9a-fA-F]{6}$"))]
    pub color: Option<Option<String>>,
}

/// A comment's text, new or edited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[salvo(schema(name = "CommentRequest"))]
pub struct CommentRequest {
    #[salvo(schema(schema_with = schema::comment))]
    pub body: String,
}

/// A page of a task's comments.
#[derive(Debug, Default, Deserialize, ToParameters)]
#[serde(deny_unknown_fields)]
#[salvo(parameters(default_parameter_in = Query))]
pub struct CommentsQuery {
    /// Page size, 1-100 (default 50).
    #[salvo(parameter(minimum = 1, maximum = 100))]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
