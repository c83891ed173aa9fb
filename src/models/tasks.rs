//! Tasks are always read and written through their owner: every query is filtered by
//! `user_id`, so another user's task is indistinguishable from a missing one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use migration::fold_for_search;
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, QueryFilter, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::task::{self, Priority, Status};
use crate::error::{AppError, Result, unauthorized_on_missing_owner};
use crate::models::task_by_id::Lookups;
use crate::models::task_writes::{Creates, Updates};
use crate::models::txn::begin_write;
use crate::models::{events, task_writes};
use crate::requests::{CreateTaskRequest, PatchTaskRequest};
use crate::validate::{self, Errors};

// Listing lives in its own module; re-exported so callers keep saying `tasks::list`.
pub use crate::models::task_list::{FirstPages, Page, TaskFilter, list};

const NOT_FOUND: AppError = AppError::NotFound("Task");

/// A complete, validated task (POST and PUT).
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub title: String,
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
}

impl TryFrom<CreateTaskRequest> for TaskInput {
    type Error = AppError;

    fn try_from(req: CreateTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let title = validate::title(&mut errors, &req.title);
        let description = validate::description(&mut errors, req.description);
        errors.finish(TaskInput {
            title,
            description,
            status: req.status.unwrap_or_default(),
            priority: req.priority.unwrap_or_default(),
            due_date: req.due_date.map(Into::into),
        })
    }
}

/// A validated partial update; `None` leaves a field unchanged.
#[derive(Debug, Default, Clone)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<DateTime<Utc>>>,
}

impl TaskChanges {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.due_date.is_none()
    }
}

impl TryFrom<PatchTaskRequest> for TaskChanges {
    type Error = AppError;

    fn try_from(req: PatchTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let title =
            not_null(&mut errors, "title", req.title).map(|raw| validate::title(&mut errors, &raw));
        let status = not_null(&mut errors, "status", req.status);
        let priority = not_null(&mut errors, "priority", req.priority);
        let description = req
            .description
            .map(|text| validate::description(&mut errors, text));
        errors.finish(TaskChanges {
            title,
            description,
            status,
            priority,
            due_date: req.due_date.map(|due| due.map(Into::into)),
        })
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
        }
    }
}

/// Creates `owner`'s task with its change-feed event: on PostgreSQL in one statement
/// (`models::task_writes`), elsewhere in a transaction.
pub async fn create(
    db: &DatabaseConnection,
    creates: &Arc<Creates>,
    owner: Uuid,
    input: TaskInput,
) -> Result<task::Model> {
    let task = new_task(owner, input);
    if db.get_database_backend() == DatabaseBackend::Postgres {
        return creates.call(task).await;
    }
    // Boxed: unboxed, sea-orm's large futures would size (and be copied with) every
    // write's future, PostgreSQL ones included (the route moves it into a task of its own).
    Box::pin(insert_with_event(db, task)).await
}

/// [`create`] inside a caller's transaction (an idempotent create stores its key and
/// response in the same transaction, see `models::idempotency`).
pub async fn create_in<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    owner: Uuid,
    input: TaskInput,
) -> Result<task::Model> {
    insert_with_event(conn, new_task(owner, input)).await
}

/// The row a create writes: whatever must be stored with every new task belongs here.
fn new_task(owner: Uuid, input: TaskInput) -> task::Model {
    let now = validate::now();
    task::Model {
        id: Uuid::now_v7(),
        user_id: owner,
        status: input.status,
        priority: input.priority,
        due_date: input.due_date,
        version: 1,
        created_at: now,
        updated_at: now,
        title_search: Some(fold_for_search(&input.title)),
        description_search: input.description.as_deref().map(fold_for_search),
        title: input.title,
        description: input.description,
    }
}

async fn insert_with_event<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    task: task::Model,
) -> Result<task::Model> {
    // The change-feed event commits with the task (a savepoint in a caller's transaction).
    let txn = conn.begin().await?;
    events::serialize_writes(&txn, task.user_id).await?;
    let task = task::ActiveModel::from(task)
        .insert(&txn)
        .await
        .map_err(unauthorized_on_missing_owner)?;
    events::record(&txn, &task, events::Kind::Created).await?;
    txn.commit().await?;
    Ok(task)
}

pub async fn get(db: &DatabaseConnection, owner: Uuid, id: Uuid) -> Result<task::Model> {
    crate::models::task_by_id::find(db, owner, id)
        .await?
        .ok_or(NOT_FOUND)
}

/// [`get`] through lookups that share round trips with concurrent ones (the read route).
pub async fn get_batched(lookups: &Arc<Lookups>, owner: Uuid, id: Uuid) -> Result<task::Model> {
    lookups.find(owner, id).await?.ok_or(NOT_FOUND)
}

/// Whether a request's `If-Match` version (if any) allows changing `task`.
fn check_version(task: &task::Model, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(version) if version != task.version => Err(AppError::PreconditionFailed),
        _ => Ok(()),
    }
}

const LAST_VERSION: &str = "This task has reached its last version and cannot be changed again; create a new task from it.";

/// After a conditional write matched no row: was the task missing, or was it changed?
async fn explain_miss(db: &DatabaseConnection, owner: Uuid, id: Uuid) -> AppError {
    match get(db, owner, id).await {
        Ok(task) if task.version == i32::MAX => AppError::Conflict(LAST_VERSION.into()),
        Ok(_) => AppError::PreconditionFailed,
        Err(err) => err,
    }
}

/// Applies `changes` in one conditional UPDATE (compare-and-set on `version` when the
/// client sent If-Match), so concurrent writers can never silently overwrite each other.
pub async fn update(
    db: &DatabaseConnection,
    updates: &Arc<Updates>,
    owner: Uuid,
    id: Uuid,
    changes: TaskChanges,
    expected_version: Option<i32>,
) -> Result<task::Model> {
    if changes.is_empty() {
        let task = get(db, owner, id).await?;
        check_version(&task, expected_version)?;
        return Ok(task);
    }
    // The folded copies change with the text they mirror, on either path.
    let update = task_writes::Update {
        title: changes.title.map(|title| {
            let folded = fold_for_search(&title);
            (title, folded)
        }),
        description: changes.description.map(|description| {
            let folded = description.as_deref().map(fold_for_search);
            (description, folded)
        }),
        status: changes.status,
        priority: changes.priority,
        due_date: changes.due_date,
    };
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let change = task_writes::Change {
            owner,
            id,
            update,
            expected_version,
        };
        return match updates.call(change).await? {
            Some(task) => Ok(task),
            None => Err(explain_miss(db, owner, id).await),
        };
    }
    // Boxed, as in `create`.
    Box::pin(update_in_transaction(
        db,
        owner,
        id,
        update,
        expected_version,
    ))
    .await
}

/// [`update`] through sea-orm, in a transaction with the per-user lock and the event.
async fn update_in_transaction(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
    changes: task_writes::Update,
    expected_version: Option<i32>,
) -> Result<task::Model> {
    let mut update = task::Entity::update_many()
        .col_expr(
            task::Column::Version,
            Expr::col(task::Column::Version).add(1),
        )
        // Never back in time: the time was taken before waiting for the write lock, and
        // the change that committed first may be newer.
        .col_expr(task::Column::UpdatedAt, {
            let now = validate::now();
            CaseStatement::new()
                .case(
                    Expr::col(task::Column::UpdatedAt).gt(now),
                    Expr::col(task::Column::UpdatedAt),
                )
                .finally(now)
                .into()
        })
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(owner))
        // The version stops at the largest `i32`: a change past it matches nothing (409).
        .filter(task::Column::Version.lt(i32::MAX));
    if let Some(version) = expected_version {
        update = update.filter(task::Column::Version.eq(version));
    }
    if let Some((title, folded)) = changes.title {
        update = update
            .col_expr(task::Column::TitleSearch, Expr::value(folded))
            .col_expr(task::Column::Title, Expr::value(title));
    }
    if let Some((description, folded)) = changes.description {
        update = update
            .col_expr(task::Column::DescriptionSearch, Expr::value(folded))
            .col_expr(task::Column::Description, Expr::value(description));
    }
    if let Some(status) = changes.status {
        update = update.col_expr(task::Column::Status, Expr::value(status));
    }
    if let Some(priority) = changes.priority {
        update = update.col_expr(task::Column::Priority, Expr::value(priority));
    }
    if let Some(due_date) = changes.due_date {
        update = update.col_expr(task::Column::DueDate, Expr::value(due_date));
    }
    // The change-feed event commits with the change, or neither does.
    let txn = begin_write(db).await?;
    events::serialize_writes(&txn, owner).await?;
    let mut rows = update.exec_with_returning(&txn).await?;
    match rows.pop() {
        Some(task) => {
            events::record(&txn, &task, events::Kind::Updated).await?;
            txn.commit().await?;
            Ok(task)
        }
        None => {
            txn.rollback().await?;
            Err(explain_miss(db, owner, id).await)
        }
    }
}

pub async fn delete(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<()> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        let pool = db.get_postgres_connection_pool();
        let now = validate::now();
        if task_writes::delete(pool, owner, id, expected_version, now).await? {
            return Ok(());
        }
        return Err(explain_miss(db, owner, id).await);
    }
    // Boxed, as in `create`.
    Box::pin(delete_in_transaction(db, owner, id, expected_version)).await
}

/// [`delete`] through sea-orm, in a transaction with the per-user lock and the event.
async fn delete_in_transaction(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<()> {
    let mut delete = task::Entity::delete_many()
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(owner));
    if let Some(version) = expected_version {
        delete = delete.filter(task::Column::Version.eq(version));
    }
    let txn = begin_write(db).await?;
    events::serialize_writes(&txn, owner).await?;
    let Some(deleted) = delete.exec_with_returning(&txn).await?.pop() else {
        txn.rollback().await?;
        return Err(explain_miss(db, owner, id).await);
    };
    // The tombstone carries the version that was deleted.
    events::record(&txn, &deleted, events::Kind::Deleted).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_without_optional_fields_resets_them_to_defaults() {
        let input = TaskInput::try_from(CreateTaskRequest {
            title: "  Write docs ".into(),
            description: None,
            status: None,
            priority: None,
            due_date: None,
        })
        .expect("valid");
        assert_eq!(input.title, "Write docs");
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
}
