//! Task routes under `/api/v1/tasks`: owner-only CRUD. Another user's task is a 404,
//! byte-identical to a missing one; `ETag`/`If-Match`/`If-None-Match` carry the version.

use salvo::http::header::{IF_MATCH, IF_NONE_MATCH};
use salvo::prelude::*;

use crate::auth::CurrentUser;
use crate::error::Result;
use crate::extract::{Payload, Query, ResourceId};
use crate::metrics::{TASKS_CREATED, TASKS_DELETED, TASKS_UPDATED};
use crate::models::tasks::{self, TaskChanges, TaskFilter, TaskInput};
use crate::requests::{CreateTaskRequest, ListTasksQuery, PatchTaskRequest, ReplaceTaskRequest};
use crate::routes::app_state;
use crate::routes::responses::{Created, NoContent, Ok200, TaskReply, etag};
use crate::views::{TaskPage, TaskView};

/// The version a client's `If-Match` demands: `None` when absent or `*`. A header that
/// names no version of ours can never match, so it yields an impossible version (-> 412).
fn if_match(req: &Request) -> Option<i32> {
    let raw = req
        .headers()
        .get(IF_MATCH)?
        .to_str()
        .ok()
        .unwrap_or("")
        .trim();
    if raw == "*" {
        return None;
    }
    Some(parse_etag(raw).unwrap_or(-1))
}

fn parse_etag(raw: &str) -> Option<i32> {
    raw.trim()
        .trim_start_matches("W/")
        .strip_prefix('"')?
        .strip_suffix('"')?
        .parse()
        .ok()
}

/// Whether `If-None-Match` already names this version (or is `*`).
fn not_modified(req: &Request, version: i32) -> bool {
    let Some(raw) = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    raw.split(',')
        .any(|tag| tag.trim() == "*" || parse_etag(tag) == Some(version))
}

/// Create a task owned by the caller.
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(201, 400, 401, 413, 415, 422, 429, 503))]
pub async fn create(
    depot: &mut Depot,
    body: Payload<CreateTaskRequest>,
) -> Result<Created<TaskView>> {
    let state = app_state(depot)?;
    let caller = CurrentUser::from_depot(depot)?;
    let task = tasks::create(&state.db, caller.id, TaskInput::try_from(body.0)?).await?;
    metrics::counter!(TASKS_CREATED).increment(1);
    tracing::info!(event = "task_create", user_id = %caller.id, task_id = %task.id, "task created");
    Ok(Created {
        location: format!("/api/v1/tasks/{}", task.id),
        etag: Some(etag(task.version)),
        body: task.into(),
    })
}

/// List the caller's tasks: filtered, sorted and paginated (at most 100 per page).
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(200, 401, 422, 429, 503))]
pub async fn list(depot: &mut Depot, query: Query<ListTasksQuery>) -> Result<Ok200<TaskPage>> {
    let state = app_state(depot)?;
    let caller = CurrentUser::from_depot(depot)?;
    let filter = TaskFilter::try_from(query.0)?;
    let (items, total) = tasks::list(&state.db, caller.id, &filter).await?;
    Ok(Ok200(TaskPage {
        items: items.into_iter().map(TaskView::from).collect(),
        total,
        limit: filter.limit,
        offset: filter.offset,
    }))
}

/// Fetch one of the caller's tasks. Honours `If-None-Match` (304).
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(200, 304, 401, 404, 429, 503))]
pub async fn get(req: &mut Request, depot: &mut Depot, id: ResourceId) -> Result<TaskReply> {
    let state = app_state(depot)?;
    let caller = CurrentUser::from_depot(depot)?;
    let task = tasks::get(&state.db, caller.id, id.0).await?;
    if not_modified(req, task.version) {
        return Ok(TaskReply::NotModified(task.version));
    }
    Ok(TaskReply::Fresh(task.into()))
}

async fn apply(
    req: &Request,
    depot: &Depot,
    id: ResourceId,
    changes: TaskChanges,
) -> Result<TaskReply> {
    let state = app_state(depot)?;
    let caller = CurrentUser::from_depot(depot)?;
    let task = tasks::update(&state.db, caller.id, id.0, changes, if_match(req)).await?;
    metrics::counter!(TASKS_UPDATED).increment(1);
    tracing::info!(event = "task_update", user_id = %caller.id, task_id = %task.id, version = task.version, "task updated");
    Ok(TaskReply::Fresh(task.into()))
}

/// Replace a task. Omitted optional fields return to their defaults. Honours `If-Match` (412).
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(200, 400, 401, 404, 412, 413, 415, 422, 429, 503))]
pub async fn replace(
    req: &mut Request,
    depot: &mut Depot,
    id: ResourceId,
    body: Payload<ReplaceTaskRequest>,
) -> Result<TaskReply> {
    let changes = TaskChanges::from(TaskInput::try_from(body.0)?);
    apply(req, depot, id, changes).await
}

/// Change some fields of a task; `null` clears `description` or `due_date`. Honours `If-Match` (412).
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(200, 400, 401, 404, 412, 413, 415, 422, 429, 503))]
pub async fn patch(
    req: &mut Request,
    depot: &mut Depot,
    id: ResourceId,
    body: Payload<PatchTaskRequest>,
) -> Result<TaskReply> {
    let changes = TaskChanges::try_from(body.0)?;
    apply(req, depot, id, changes).await
}

/// Delete a task. Honours `If-Match` (412).
#[endpoint(tags("tasks"), security(("bearer" = [])), status_codes(204, 401, 404, 412, 429, 503))]
pub async fn delete(req: &mut Request, depot: &mut Depot, id: ResourceId) -> Result<NoContent> {
    let state = app_state(depot)?;
    let caller = CurrentUser::from_depot(depot)?;
    tasks::delete(&state.db, caller.id, id.0, if_match(req)).await?;
    metrics::counter!(TASKS_DELETED).increment(1);
    tracing::info!(event = "task_delete", user_id = %caller.id, task_id = %id.0, "task deleted");
    Ok(NoContent)
}

#[cfg(test)]
mod tests {
    use super::parse_etag;

    #[test]
    fn etags_parse_strong_and_weak() {
        assert_eq!(parse_etag("\"7\""), Some(7));
        assert_eq!(parse_etag("W/\"7\""), Some(7));
        assert_eq!(parse_etag("7"), None);
        assert_eq!(parse_etag("\"x\""), None);
    }
}
