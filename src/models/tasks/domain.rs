//! What a task write is before it reaches a store: validated input, parsed once.

use chrono::{DateTime, Utc};
use migration::fold_for_search;
use uuid::Uuid;

use super::postgres::writes;
use crate::domain::{Title, id_list};
use crate::entities::task::{self, Priority, Status};
use crate::error::{AppError, Result};
use crate::requests::{CreateTaskRequest, PatchTaskRequest};
use crate::validate::{self, Errors};

/// A complete, validated task (POST and PUT).
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub title: Title,
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
    /// `None` when the request did not say: none on a create, unchanged on a `PUT`.
    pub assignees: Option<Vec<Uuid>>,
    pub labels: Option<Vec<Uuid>>,
}

impl TaskInput {
    /// Whether the write names assignees or labels, which must be checked against the
    /// project's members and labels (`models::assignments`) in the transaction that writes.
    pub fn assigns(&self) -> bool {
        self.assignees.as_ref().is_some_and(|ids| !ids.is_empty())
            || self.labels.as_ref().is_some_and(|ids| !ids.is_empty())
    }
}

/// The most assignees, and the most labels, one task may have.
pub const MAX_ASSIGNED: usize = 25;

/// A list of ids from a request, checked for its length; repeats are dropped when stored.
fn id_list(errors: &mut Errors, field: &str, ids: Option<Vec<Uuid>>) -> Option<Vec<Uuid>> {
    let ids = ids?;
    if ids.len() > MAX_ASSIGNED {
        errors.add(field, format!("must list at most {MAX_ASSIGNED} ids"));
    }
    Some(ids)
}

impl TryFrom<CreateTaskRequest> for TaskInput {
    type Error = AppError;

    fn try_from(req: CreateTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let title = Title::parse(&mut errors, &req.title);
        let description = validate::description(&mut errors, req.description);
        let assignees = id_list(&mut errors, "assignee_ids", req.assignee_ids);
        let labels = id_list(&mut errors, "label_ids", req.label_ids);
        errors.finish_parsed(title.map(|title| TaskInput {
            title,
            description,
            status: req.status.unwrap_or_default(),
            priority: req.priority.unwrap_or_default(),
            due_date: req.due_date.map(Into::into),
            assignees,
            labels,
        }))
    }
}

/// A validated partial update; `None` leaves a field unchanged.
#[derive(Debug, Default, Clone)]
pub struct TaskChanges {
    pub title: Option<Title>,
    pub description: Option<Option<String>>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<DateTime<Utc>>>,
    pub assignees: Option<Vec<Uuid>>,
    pub labels: Option<Vec<Uuid>>,
    /// Move the task to this project (editor in both).
    pub project: Option<Uuid>,
}

impl TaskChanges {
    pub fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.due_date.is_none()
            && self.assignees.is_none()
            && self.labels.is_none()
            && self.project.is_none()
    }
}

impl TryFrom<PatchTaskRequest> for TaskChanges {
    type Error = AppError;

    fn try_from(req: PatchTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        // A title that fails its rules is `None` here too, but then `finish` refuses.
        let title = not_null(&mut errors, "title", req.title)
            .and_then(|raw| Title::parse(&mut errors, &raw));
        let status = not_null(&mut errors, "status", req.status);
        let priority = not_null(&mut errors, "priority", req.priority);
        let description = req
            .description
            .map(|text| validate::description(&mut errors, text));
        // `null` empties a list, as `[]` does.
        let assignees = id_list(
            &mut errors,
            "assignee_ids",
            req.assignee_ids.map(Option::unwrap_or_default),
        );
        let labels = id_list(
            &mut errors,
            "label_ids",
            req.label_ids.map(Option::unwrap_or_default),
        );
        let project = not_null(&mut errors, "project_id", req.project_id);
        errors.finish(TaskChanges {
            title,
            description,
            status,
            priority,
            due_date: req.due_date.map(|due| due.map(Into::into)),
            assignees,
            labels,
            project,
        })
    }
}

impl TaskChanges {
    /// The change as stores write it: each text with its folded search copy, which must
    /// change with the text it mirrors.
    pub fn into_update(self) -> writes::Update {
        writes::Update {
            title: self.title.map(|title| {
                let folded = fold_for_search(title.as_str());
                (title.into_inner(), folded)
            }),
            description: self.description.map(|description| {
                let folded = description.as_deref().map(fold_for_search);
                (description, folded)
            }),
            status: self.status,
            priority: self.priority,
            due_date: self.due_date,
            assignees: self.assignees,
            labels: self.labels,
            project: self.project,
        }
    }
}

/// A PATCH field that may be absent but, when present, must not be `null`.
fn not_null<T>(errors: &mut Errors, field: &str, value: Option<Option<T>>) -> Option<T> {
    match value {
        Some(None) => {
            errors.add(field, "must not be null");
            None
        }
        Some(Some(value)) => Some(value),
        None => None,
    }
}

impl From<TaskInput> for TaskChanges {
    fn from(input: TaskInput) -> Self {
        TaskChanges {
            title: Some(input.title),
            description: Some(input.description),
            status: Some(input.status),
            priority: Some(input.priority),
            due_date: Some(input.due_date),
            assignees: input.assignees,
            labels: input.labels,
            // `PUT` never moves a task (the route refuses another project).
            project: None,
        }
    }
}

pub const NOT_FOUND: AppError = AppError::NotFound("Task");

const LAST_VERSION: &str = "This task has reached its last version and cannot be changed again; create a new task from it.";

/// What a write that matched no row means, given the task as it is now (or the error
/// finding it) and the `If-Match` version it was made at: missing (404), at its last
/// version (409), changed since that version (412); with no `If-Match`, the task or the
/// caller's role changed while the write waited and allows it now: worth a retry (503), not
/// a 412 for a precondition never sent (found by an attack helper).
pub fn explain_miss(now: Result<task::Model>, expected: Option<i32>) -> AppError {
    match now {
        Ok(task) if task.version == i32::MAX => AppError::Conflict(LAST_VERSION.into()),
        Ok(_) if expected.is_some() => AppError::PreconditionFailed,
        Ok(_) => AppError::Unavailable("The task changed meanwhile; try again."),
        Err(err) => err,
    }
}

/// Whether a request's `If-Match` version (if any) allows changing `task`.
pub fn check_version(task: &task::Model, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(version) if version != task.version => Err(AppError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// The row a create writes: whatever must be stored with every new task belongs here.
pub fn new_task(project: Uuid, input: TaskInput) -> task::Model {
    let now = validate::now();
    task::Model {
        id: Uuid::now_v7(),
        project_id: project,
        status: input.status,
        priority: input.priority,
        due_date: input.due_date,
        version: 1,
        created_at: now,
        updated_at: now,
        title_search: Some(fold_for_search(input.title.as_str())),
        description_search: input.description.as_deref().map(fold_for_search),
        title: input.title.into_inner(),
        description: input.description,
        assignee_ids: input.assignees.as_deref().and_then(id_list::join),
        label_ids: input.labels.as_deref().and_then(id_list::join),
        comment_count: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_without_optional_fields_resets_them_to_defaults() {
        let input = TaskInput::try_from(CreateTaskRequest {
            project_id: None,
            title: "  Write docs ".into(),
            description: None,
            status: None,
            priority: None,
            due_date: None,
            assignee_ids: None,
            label_ids: None,
        })
        .expect("valid");
        assert_eq!(input.title.as_str(), "Write docs");
        let changes = TaskChanges::from(input);
        assert_eq!(changes.status, Some(Status::Todo));
        assert_eq!(changes.priority, Some(Priority::Medium));
        assert_eq!(changes.description, Some(None));
    }

    #[test]
    fn patch_with_null_clears_and_absent_keeps() {
        let patch: PatchTaskRequest =
            serde_json::from_str(r#"{"description": null}"#).expect("json");
        let changes = TaskChanges::try_from(patch).expect("valid");
        assert_eq!(changes.description, Some(None));
        assert_eq!(changes.due_date, None);
    }

    #[test]
    fn patch_refuses_null_for_required_fields() {
        let patch: PatchTaskRequest =
            serde_json::from_str(r#"{"title": null, "status": null}"#).expect("json");
        let Err(AppError::Validation(errors)) = TaskChanges::try_from(patch) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "status"]);
    }

    #[test]
    fn every_invalid_field_is_reported_at_once() {
        let Err(AppError::Validation(errors)) = TaskInput::try_from(CreateTaskRequest {
            project_id: None,
            title: " ".into(),
            description: Some("nul\0".into()),
            status: None,
            priority: None,
            due_date: None,
            assignee_ids: None,
            label_ids: None,
        }) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "description"]);
        let patch: PatchTaskRequest =
            serde_json::from_str(r#"{"title": "tab\tinside"}"#).expect("json");
        let Err(AppError::Validation(errors)) = TaskChanges::try_from(patch) else {
            panic!("expected validation error");
        };
        assert_eq!(errors[0].message, "must not contain control characters");
    }
}
