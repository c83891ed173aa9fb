//! The portable task store: sea-orm's query builder and transactions, for SQLite (and any
//! database sea-orm speaks). Each statement admits only the projects where the caller's
//! role allows the action (`models::projects::ids_allowed`); each write takes the
//! change-feed locks of the project's members, writes, and records its events in one
//! transaction.

use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect, Set, SqliteTransactionMode, TransactionOptions, TransactionSession,
    TransactionTrait,
};
use uuid::Uuid;

use super::list::cursor::Position;
use super::list::{self, Page, TaskFilter};
use super::postgres::writes::Update;
use crate::domain::id_list;
use crate::entities::task;
use crate::error::{AppError, Result, is_missing_parent};
use crate::models::projects::{self, Action, ids_allowed, lock_feeds_of};
use crate::models::txn::begin_write;
use crate::models::{assignments, events};
use crate::validate;

pub struct PortableTasks {
    db: DatabaseConnection,
}

impl PortableTasks {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn get(&self, caller: Uuid, id: Uuid) -> Result<Option<task::Model>> {
        Ok(task::Entity::find_by_id(id)
            .filter(task::Column::ProjectId.in_subquery(ids_allowed(caller, Action::Read)))
            .one(&self.db)
            .await?)
    }

    pub async fn list(
        &self,
        project: Uuid,
        filter: &TaskFilter,
        cursor: Option<&Position>,
    ) -> Result<Page> {
        list::list_portable(&self.db, project, filter, cursor).await
    }

    pub async fn create(&self, caller: Uuid, task: task::Model) -> Result<Option<task::Model>> {
        insert_with_event(&self.db, caller, task).await
    }

    /// Applies `changes` in one conditional UPDATE (compare-and-set on `version` when the
    /// client sent If-Match), in a transaction with the feed locks and the events; `None`
    /// when nothing matched.
    pub async fn update(
        &self,
        caller: Uuid,
        id: Uuid,
        changes: Update,
        expected_version: Option<i32>,
    ) -> Result<Option<task::Model>> {
        let mut update = task::Entity::update_many()
            .col_expr(
                task::Column::Version,
                Expr::col(task::Column::Version).add(1),
            )
            // Never back in time: the time was taken before waiting for the write lock,
            // and the change that committed first may be newer.
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
            .filter(task::Column::ProjectId.in_subquery(ids_allowed(caller, Action::EditTasks)))
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
        let txn = begin_write(&self.db).await?;
        if let Some(project) = project_of(&txn, id).await? {
            lock_feeds_of(&txn, project).await?;
        }
        let mut rows = update.exec_with_returning(&txn).await?;
        match rows.pop() {
            Some(task) => {
                events::record(&txn, &task, events::Kind::Updated).await?;
                txn.commit().await?;
                Ok(Some(task))
            }
            None => {
                txn.rollback().await?;
                Ok(None)
            }
        }
    }

    /// Deletes task `id` for `caller`; its project, or `None` when nothing matched.
    pub async fn delete(
        &self,
        caller: Uuid,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<Option<Uuid>> {
        let mut delete = task::Entity::delete_many()
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::ProjectId.in_subquery(ids_allowed(caller, Action::EditTasks)));
        if let Some(version) = expected_version {
            delete = delete.filter(task::Column::Version.eq(version));
        }
        let txn = begin_write(&self.db).await?;
        if let Some(project) = project_of(&txn, id).await? {
            lock_feeds_of(&txn, project).await?;
        }
        let Some(deleted) = delete.exec_with_returning(&txn).await?.pop() else {
            txn.rollback().await?;
            return Ok(None);
        };
        // The tombstone carries the version that was deleted.
        events::record(&txn, &deleted, events::Kind::Deleted).await?;
        txn.commit().await?;
        Ok(Some(deleted.project_id))
    }
}

/// A change that sets assignees or labels or moves the task (`Update::needs_checks`), for
/// `caller`, only at `expected_version` when given: in one transaction, the caller's right
/// to edit (in both projects for a move), the feed locks, the check of the assignees and
/// labels against the project the task ends up in (`models::assignments`), the change and
/// its events. `None` when the task is missing or its version moved on (the store asks
/// why); a refusal is the policy's error, a stranger among the ids a 422.
pub async fn update_checked(
    db: &DatabaseConnection,
    caller: Uuid,
    id: Uuid,
    changes: Update,
    expected_version: Option<i32>,
) -> Result<Option<(task::Model, Option<Moved>, Vec<Uuid>)>> {
    let txn = begin_write(db).await?;
    let outcome = async {
        let Some(source) = project_of(&txn, id).await? else {
            return Ok(None);
        };
        // The caller's rights first: a task they cannot see stays a 404 whatever the body.
        projects::require(&txn, caller, source, Action::EditTasks, "Task").await?;
        let target = changes.project.filter(|target| *target != source);
        match target {
            Some(target) => {
                projects::require(&txn, caller, target, Action::EditTasks, projects::NOT_FOUND)
                    .await?;
                projects::lock_feeds_of_both(&txn, source, target).await?;
            }
            None => lock_feeds_of(&txn, source).await?,
        }
        // Read again under the locks: what a concurrent write left is what changes, and
        // the caller's rights as they are now. A removal or demotion that held the locks
        // has committed by now, and this statement sees it (the checks above ran before
        // the wait: a member being removed got past them; found by an attack helper).
        let Some(current) = task::Entity::find_by_id(id).one(&txn).await? else {
            return Ok(None);
        };
        projects::require(&txn, caller, current.project_id, Action::EditTasks, "Task").await?;
        if let Some(target) = target {
            projects::require(&txn, caller, target, Action::EditTasks, projects::NOT_FOUND).await?;
        }
        let stale = expected_version.is_some_and(|version| version != current.version);
        if stale || current.project_id != source || current.version == i32::MAX {
            return Ok(None);
        }
        let destination = target.unwrap_or(source);
        let carried = match target {
            Some(target) => Some(assignments::carried_over(&txn, &current, target).await?),
            None => None,
        };
        assignments::check(
            &txn,
            destination,
            changes.assignees.as_deref(),
            changes.labels.as_deref(),
        )
        .await?;
        let assignees = changes
            .assignees
            .clone()
            .or_else(|| carried.as_ref().map(|carried| carried.assignees.clone()));
        let labels = changes
            .labels
            .clone()
            .or_else(|| carried.as_ref().map(|carried| carried.labels.clone()));
        let mut row: task::ActiveModel = current.clone().into();
        apply(&mut row, changes);
        if let Some(assignees) = assignees {
            row.assignee_ids = Set(id_list::join(&assignees));
        }
        if let Some(labels) = labels {
            row.label_ids = Set(id_list::join(&labels));
        }
        row.project_id = Set(destination);
        row.version = Set(current.version + 1);
        row.updated_at = Set(Ord::max(validate::now(), current.updated_at));
        let changed = row.update(&txn).await.map_err(|err| {
            // The target project was deleted meanwhile (its row is gone): as any write
            // into a missing project, a 404 (a 500 before; found by an attack helper).
            if is_missing_parent(&err) {
                AppError::NotFound(projects::NOT_FOUND)
            } else {
                err.into()
            }
        })?;
        let (moved, audience) = match carried {
            Some(carried) => {
                let audience = events::record_move(&txn, source, &changed).await?;
                let moved = Moved {
                    from: source,
                    dropped_assignees: carried.dropped_assignees,
                    dropped_labels: carried.dropped_labels,
                };
                (Some(moved), audience)
            }
            None => {
                events::record(&txn, &changed, events::Kind::Updated).await?;
                (None, events::recipients(&txn, source).await?)
            }
        };
        Ok(Some((changed, moved, audience)))
    }
    .await;
    crate::models::txn::finish(txn, outcome).await
}

/// What a move changed besides the project (the answer's `moved`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: Uuid,
    pub dropped_assignees: Vec<Uuid>,
    pub dropped_labels: Vec<Uuid>,
}

/// Sets on `row` the plain fields `changes` names.
fn apply(row: &mut task::ActiveModel, changes: Update) {
    if let Some((title, folded)) = changes.title {
        row.title = Set(title);
        row.title_search = Set(Some(folded));
    }
    if let Some((description, folded)) = changes.description {
        row.description = Set(description);
        row.description_search = Set(folded);
    }
    if let Some(status) = changes.status {
        row.status = Set(status);
    }
    if let Some(priority) = changes.priority {
        row.priority = Set(priority);
    }
    if let Some(due_date) = changes.due_date {
        row.due_date = Set(due_date);
    }
}

/// The project task `id` is in, if it exists (whoever asks: only to know whose feeds to
/// lock before the guarded write).
async fn project_of<C: ConnectionTrait>(conn: &C, id: Uuid) -> Result<Option<Uuid>, DbErr> {
    task::Entity::find_by_id(id)
        .select_only()
        .column(task::Column::ProjectId)
        .into_tuple()
        .one(conn)
        .await
}

/// Inserts `task` with its change-feed events if `caller` may write in its project (`None`
/// when not), in a transaction of its own or (on a transaction) in a savepoint of the
/// caller's: an idempotent create stores its key and response in the same transaction
/// (`models::idempotency`).
pub async fn insert_with_event<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    caller: Uuid,
    task: task::Model,
) -> Result<Option<task::Model>> {
    // It reads (the role) before it writes: on SQLite it must hold the write lock from the
    // start (`models::txn`). Inside a caller's transaction this is a savepoint.
    let txn = conn
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let (role, archived) = projects::standing_in(&txn, caller, task.project_id).await?;
    if projects::authorize_in(role, archived, Action::EditTasks, projects::NOT_FOUND).is_err() {
        txn.rollback().await?;
        return Ok(None);
    }
    lock_feeds_of(&txn, task.project_id).await?;
    // Again under the locks: a caller removed or demoted while this waited for them has
    // been by now, and this statement sees it (found by an attack helper).
    let (role, archived) = projects::standing_in(&txn, caller, task.project_id).await?;
    if projects::authorize_in(role, archived, Action::EditTasks, projects::NOT_FOUND).is_err() {
        txn.rollback().await?;
        return Ok(None);
    }
    // After the locks that removing a member or deleting a label takes too
    // (`models::assignments`).
    let assignees = id_list::parse(task.assignee_ids.as_deref());
    let labels = id_list::parse(task.label_ids.as_deref());
    if let Err(refused) =
        assignments::check(&txn, task.project_id, Some(&assignees), Some(&labels)).await
    {
        txn.rollback().await?;
        return Err(refused);
    }
    let task = match task::ActiveModel::from(task).insert(&txn).await {
        Ok(task) => task,
        // The project was deleted meanwhile: refused like any other (the store says why).
        Err(err) if is_missing_parent(&err) => {
            txn.rollback().await?;
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    events::record(&txn, &task, events::Kind::Created).await?;
    txn.commit().await?;
    Ok(Some(task))
}
