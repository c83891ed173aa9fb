//! Task routes under `/api/v1/tasks` (and a project's listing, `/api/v1/projects/{id}/tasks`):
//! every call on behalf of the caller, as their role in the task's project allows
//! (`models::projects::policy`). A task of a project the caller is not a member of is a
//! 404, byte-identical to a missing one; `ETag`/`If-Match`/`If-None-Match` carry the
//! version.

use salvo::http::StatusCode;
use salvo::http::headers::{self, ETag, HeaderMapExt, IfMatch, IfNoneMatch};
use salvo::prelude::*;

use crate::auth::CurrentUser;
use crate::entities::task;
use crate::error::{AppError, Result};
use crate::extract::{Payload, Query, ResourceId};
use crate::metrics::{IDEMPOTENT_REPLAYS, TASKS_CREATED, TASKS_DELETED, TASKS_UPDATED};
use crate::models::idempotency::{Once, Scope};
use crate::models::tasks::{TaskChanges, TaskFilter, TaskInput, TaskStore};
use crate::requests::{CreateTaskRequest, ListTasksQuery, PatchTaskRequest, ReplaceTaskRequest};
use crate::routes::idempotent::{self, Idempotent};
use crate::routes::responses::{NoContent, Rendered200, TaskCreated, TaskReply, etag};
use crate::state::AppState;
use crate::views::{MoveReport, TaskPage, TaskView};

/// A precondition field as the request sent it.
enum Sent<H> {
    Absent,
    /// Present but not a valid list of entity tags (or `*`): it names no tag, so it can
    /// never satisfy `If-Match` and never makes `If-None-Match` fail.
    Malformed,
    Given(H),
}

impl<H: headers::Header> Sent<H> {
    /// All field lines of `H` combined (RFC 9110 §5.3), parsed by the `headers` crate.
    fn from_request(req: &Request) -> Self {
        match req.headers().typed_try_get::<H>() {
            Ok(None) => Sent::Absent,
            Ok(Some(header)) => Sent::Given(header),
            Err(_) => Sent::Malformed,
        }
    }
}

/// The strong entity tag of a version: `"3"`.
fn version_tag(version: i32) -> Option<ETag> {
    format!("\"{version}\"").parse().ok()
}

/// The preconditions of a write (PUT, PATCH, DELETE), RFC 9110 §13.2.2: `If-Match` passes
/// only if it names the current version with a strong tag (or is `*`); then
/// `If-None-Match` fails if it names the current version (weakly) or is `*`.
pub(crate) struct WriteConditions {
    if_match: Sent<IfMatch>,
    if_none_match: Sent<IfNoneMatch>,
}

impl WriteConditions {
    pub(crate) fn from_request(req: &Request) -> Self {
        Self {
            if_match: Sent::from_request(req),
            if_none_match: Sent::from_request(req),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(
            (&self.if_match, &self.if_none_match),
            (Sent::Absent, Sent::Absent)
        )
    }

    pub(crate) fn allow(&self, version: i32) -> bool {
        let Some(tag) = version_tag(version) else {
            return false;
        };
        // `precondition_passes` compares strongly for If-Match, weakly for If-None-Match.
        let matched = match &self.if_match {
            Sent::Absent => true,
            Sent::Malformed => false,
            Sent::Given(if_match) => if_match.precondition_passes(&tag),
        };
        let not_excluded = match &self.if_none_match {
            Sent::Absent | Sent::Malformed => true,
            Sent::Given(if_none_match) => if_none_match.precondition_passes(&tag),
        };
        matched && not_excluded
    }
}

/// The version a conditional write must still find (compare-and-set in the model), after
/// checking the request's preconditions against the current task: `None` when the request
/// has none. The check and the write are two statements, but the write only happens if
/// the version is still the one checked, so a concurrent change in between is a 412 too.
async fn expected_version(
    req: &Request,
    store: &TaskStore,
    caller: uuid::Uuid,
    id: uuid::Uuid,
) -> Result<Option<i32>> {
    let conditions = WriteConditions::from_request(req);
    if conditions.is_empty() {
        return Ok(None);
    }
    let task = store.get(caller, id).await?;
    if !conditions.allow(task.version) {
        return Err(AppError::PreconditionFailed);
    }
    Ok(Some(task.version))
}

/// Whether `If-None-Match` already names this version (or is `*`): a GET answers 304.
fn not_modified(req: &Request, version: i32) -> bool {
    match (Sent::<IfNoneMatch>::from_request(req), version_tag(version)) {
        (Sent::Given(if_none_match), Some(tag)) => !if_none_match.precondition_passes(&tag),
        _ => false,
    }
}

/// Create a task in `project_id` (editor or admin there), or in the caller's Inbox. With `Idempotency-Key`, a retry with the same key
/// and body within 24 hours replays the first response (`Idempotent-Replayed: true`) and
/// creates nothing; the same key with another body is a 422. A duplicate sent while the
/// first is still running waits for it and then replays it.
#[endpoint(operation_id = "createTask", tags("tasks"), security(("bearer" = [])), parameters(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "Client-chosen key (1-255 visible ASCII characters) making the create safe to retry: per user, remembered 24 hours")), status_codes(201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503))]
pub async fn create(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    body: Payload<CreateTaskRequest>,
) -> Result<Idempotent<TaskCreated>> {
    let claim = idempotent::claim(req, &state, Scope::Tasks(caller.id)).await?;
    let project = body.0.project_id.unwrap_or(caller.id);
    let input = TaskInput::try_from(body.0)?;
    let Some(claim) = claim else {
        let task = state.tasks.create(caller.id, project, input).await?;
        metrics::counter!(TASKS_CREATED).increment(1);
        tracing::info!(event = "task_create", user_id = %caller.id, task_id = %task.id, "task created");
        return Ok(Idempotent::Fresh(TaskCreated(task.into())));
    };
    let render = |task: &task::Model| {
        let view = TaskView::from(task.clone());
        idempotent::stored(
            StatusCode::CREATED,
            format!("/api/v1/tasks/{}", view.id),
            Some(etag(view.version)),
            &view,
        )
    };
    match state
        .tasks
        .create_once(caller.id, project, claim, input, render)
        .await?
    {
        Once::Created(task, response) => {
            metrics::counter!(TASKS_CREATED).increment(1);
            tracing::info!(event = "task_create", user_id = %caller.id, task_id = %task.id, "task created");
            Ok(Idempotent::Stored {
                response,
                replayed: false,
            })
        }
        Once::Replayed(response) => {
            metrics::counter!(IDEMPOTENT_REPLAYS, "operation" => "create_task").increment(1);
            tracing::info!(event = "task_create", outcome = "replayed", user_id = %caller.id, "idempotent create replayed");
            Ok(Idempotent::Stored {
                response,
                replayed: true,
            })
        }
    }
}

/// List the tasks of the caller's Inbox (`/projects/{id}/tasks` lists another project's):
/// filtered, sorted and paginated (at most 100 per page), by `offset` or by the `cursor` a
/// previous page returned as `next_cursor` (422 for a cursor that is altered, another
/// user's or project's, or from another sort or filter, or sent with `offset`).
#[endpoint(operation_id = "listTasks", tags("tasks"), security(("bearer" = [])), status_codes(200, 401, 422, 429, 503))]
pub async fn list(
    state: AppState,
    caller: CurrentUser,
    query: Query<ListTasksQuery>,
) -> Result<Rendered200<TaskPage>> {
    list_project(&state, &caller, caller.id, query.0).await
}

/// List a project's tasks (any member), with the filters, sorts and cursors of `GET /tasks`.
#[endpoint(operation_id = "listProjectTasks", tags("projects"), security(("bearer" = [])), status_codes(200, 401, 404, 422, 429, 503))]
pub async fn list_in_project(
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    query: Query<ListTasksQuery>,
) -> Result<Rendered200<TaskPage>> {
    list_project(&state, &caller, id.0, query.0).await
}

async fn list_project(
    state: &AppState,
    caller: &CurrentUser,
    project: uuid::Uuid,
    query: ListTasksQuery,
) -> Result<Rendered200<TaskPage>> {
    let filter = TaskFilter::try_from(query)?.for_caller(caller.id);
    // A cursor is bound to the project it pages through, so it cannot be replayed on
    // another one; the caller's right to read the project is checked on every page.
    let (binding, key) = (filter.binding(project), &state.jwt.derived.cursor);
    let after = filter
        .cursor
        .as_deref()
        .map(|raw| binding.decode(key, raw))
        .transpose()?;
    let page = state
        .tasks
        .list(caller.id, project, &filter, after.as_ref())
        .await?;
    Ok(Rendered200(TaskPage {
        items: page.items.into_iter().map(TaskView::from).collect(),
        total: page.total,
        total_capped: page.total_capped,
        limit: filter.limit,
        offset: filter.offset,
        next_cursor: page.next.map(|position| binding.encode(key, &position)),
    }))
}

/// Fetch one of the caller's tasks. Honours `If-None-Match` (304).
#[endpoint(operation_id = "getTask", tags("tasks"), security(("bearer" = [])), parameters(("If-None-Match" = Option<String>, Header, description = "Entity tags or `*`: 304 if one names the current version (weak comparison)")), status_codes(200, 304, 401, 404, 429, 503))]
pub async fn get(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
) -> Result<TaskReply> {
    let task = state.tasks.get(caller.id, id.0).await?;
    if not_modified(req, task.version) {
        return Ok(TaskReply::NotModified(task.version));
    }
    Ok(TaskReply::Fresh(task.into()))
}

async fn apply(
    req: &Request,
    state: &AppState,
    caller: &CurrentUser,
    id: ResourceId,
    changes: TaskChanges,
) -> Result<TaskReply> {
    let expected = expected_version(req, &state.tasks, caller.id, id.0).await?;
    let (task, moved) = state
        .tasks
        .update(caller.id, id.0, changes, expected)
        .await?;
    metrics::counter!(TASKS_UPDATED).increment(1);
    tracing::info!(event = "task_update", user_id = %caller.id, task_id = %task.id, version = task.version, "task updated");
    let mut view = TaskView::from(task);
    view.moved = moved.map(|moved| {
        Box::new(MoveReport {
            from_project_id: moved.from,
            dropped_label_ids: moved.dropped_labels,
            dropped_assignee_ids: moved.dropped_assignees,
        })
    });
    Ok(TaskReply::Fresh(view))
}

/// Replace a task. Omitted optional fields return to their defaults. Honours `If-Match` (412).
#[endpoint(operation_id = "replaceTask", tags("tasks"), security(("bearer" = [])), parameters(("If-Match" = Option<String>, Header, description = "Entity tags (`\"3\"`, a list, or `*`) one of which must be the current version, compared strongly; else 412"), ("If-None-Match" = Option<String>, Header, description = "Entity tags or `*`: 412 if one names the current version")), status_codes(200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503))]
pub async fn replace(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<ReplaceTaskRequest>,
) -> Result<TaskReply> {
    if let Some(project) = body.0.project_id {
        let task = state.tasks.get(caller.id, id.0).await?;
        if task.project_id != project {
            return Err(AppError::Conflict(
                "PUT does not move a task to another project: omit project_id or give the task's own."
                    .into(),
            ));
        }
    }
    let changes = TaskChanges::from(TaskInput::try_from(body.0)?);
    apply(req, &state, &caller, id, changes).await
}

/// Change some fields of a task; `null` clears `description` or `due_date`. Honours `If-Match` (412).
#[endpoint(operation_id = "updateTask", tags("tasks"), security(("bearer" = [])), parameters(("If-Match" = Option<String>, Header, description = "Entity tags (`\"3\"`, a list, or `*`) one of which must be the current version, compared strongly; else 412"), ("If-None-Match" = Option<String>, Header, description = "Entity tags or `*`: 412 if one names the current version")), status_codes(200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503))]
pub async fn patch(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<PatchTaskRequest>,
) -> Result<TaskReply> {
    let changes = TaskChanges::try_from(body.0)?;
    apply(req, &state, &caller, id, changes).await
}

/// Delete a task. Honours `If-Match` (412).
#[endpoint(operation_id = "deleteTask", tags("tasks"), security(("bearer" = [])), parameters(("If-Match" = Option<String>, Header, description = "Entity tags (`\"3\"`, a list, or `*`) one of which must be the current version, compared strongly; else 412"), ("If-None-Match" = Option<String>, Header, description = "Entity tags or `*`: 412 if one names the current version")), status_codes(204, 401, 403, 404, 409, 412, 429, 503))]
pub async fn delete(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
) -> Result<NoContent> {
    let expected = expected_version(req, &state.tasks, caller.id, id.0).await?;
    state.tasks.delete(caller.id, id.0, expected).await?;
    metrics::counter!(TASKS_DELETED).increment(1);
    tracing::info!(event = "task_delete", user_id = %caller.id, task_id = %id.0, "task deleted");
    Ok(NoContent)
}
