//! Comments on tasks. Whoever may read a task reads its thread; editors and admins of its
//! project comment; an author edits and deletes their own comments (while they may still
//! write in the project), and the project's admins delete any. Every check goes through
//! `models::projects::policy`; a task the caller cannot see is a 404, as everywhere.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::domain::CommentBody;
use crate::entities::{comment, task};
use crate::error::{AppError, Result, not_found_on_missing_parent};
use crate::models::events::{self, About};
use crate::models::projects::{Action, Role, authorize, ids_allowed, lock_feeds_of, require};
use crate::models::txn;
use crate::validate;
use crate::views::{CommentEventData, CommentView, event_json};

const TASK: &str = "Task";
const NOT_FOUND: &str = "Comment";
const NOT_THE_AUTHOR: &str = "Only its author may change a comment.";

/// The project of task `id` and the caller's role in it, if they may read it (404
/// otherwise).
async fn role_on_task<C: ConnectionTrait>(
    conn: &C,
    caller: Uuid,
    id: Uuid,
) -> Result<(Uuid, Role)> {
    let project: Option<Uuid> = task::Entity::find_by_id(id)
        .select_only()
        .column(task::Column::ProjectId)
        .filter(task::Column::ProjectId.in_subquery(ids_allowed(caller, Action::Read)))
        .into_tuple()
        .one(conn)
        .await?;
    let project = project.ok_or(AppError::NotFound(TASK))?;
    let role = require(conn, caller, project, Action::Read, TASK).await?;
    Ok((project, role))
}

/// A page of task `id`'s comments, oldest first, after comment `after` when given.
pub async fn list(
    db: &DatabaseConnection,
    caller: Uuid,
    id: Uuid,
    after: Option<Uuid>,
    limit: u64,
) -> Result<Vec<comment::Model>> {
    role_on_task(db, caller, id).await?;
    let mut query = comment::Entity::find().filter(comment::Column::TaskId.eq(id));
    if let Some(after) = after {
        query = query.filter(comment::Column::Id.gt(after));
    }
    Ok(query
        .order_by_asc(comment::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Comments on task `id` as the caller (editors and admins); the comment and who heard of
/// it (`comment.created`).
pub async fn create(
    db: &DatabaseConnection,
    caller: Uuid,
    id: Uuid,
    body: CommentBody,
) -> Result<(comment::Model, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome = create_in(&txn, caller, id, body).await;
    txn::finish(txn, outcome).await
}

/// Whether the caller may comment on task `id` now (the policy's error if not): asked
/// before an idempotent create looks its key up, so that a replay too is only shown to
/// someone who may still comment there.
pub async fn may_comment(db: &DatabaseConnection, caller: Uuid, id: Uuid) -> Result<()> {
    let (_, role) = role_on_task(db, caller, id).await?;
    authorize(Some(role), Action::EditTasks, TASK)?;
    Ok(())
}

/// [`create`] in the caller's write transaction (an idempotent create's).
pub async fn create_in<C: ConnectionTrait>(
    txn: &C,
    caller: Uuid,
    id: Uuid,
    body: CommentBody,
) -> Result<(comment::Model, Vec<Uuid>)> {
    let (project, role) = role_on_task(txn, caller, id).await?;
    authorize(Some(role), Action::EditTasks, TASK)?;
    lock_feeds_of(txn, project).await?;
    let (_, role) = recheck_under_locks(txn, caller, id, project).await?;
    authorize(Some(role), Action::EditTasks, TASK)?;
    let created = comment::ActiveModel {
        id: Set(Uuid::now_v7()),
        task_id: Set(id),
        author_id: Set(Some(caller)),
        body: Set(body.into_inner()),
        version: Set(1),
        created_at: Set(validate::now()),
        edited_at: Set(None),
    }
    .insert(txn)
    .await
    .map_err(|err| not_found_on_missing_parent(err, TASK))?;
    let count = count_comments(txn, id, 1).await?;
    let audience = announce(txn, project, &created, count, About::CommentCreated).await?;
    Ok((created, audience))
}

/// Edits the caller's own comment, if `precondition` accepts its version; the comment and
/// who heard of it (`comment.updated`).
pub async fn update(
    db: &DatabaseConnection,
    caller: Uuid,
    task_id: Uuid,
    id: Uuid,
    body: CommentBody,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<(comment::Model, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<(comment::Model, Vec<Uuid>)> = async {
        let (project, role) = role_on_task(&txn, caller, task_id).await?;
        let found = find(&txn, task_id, id).await?;
        if found.author_id != Some(caller) {
            return Err(AppError::Forbidden(NOT_THE_AUTHOR));
        }
        authorize(Some(role), Action::EditTasks, TASK)?;
        if !precondition(found.version) {
            return Err(AppError::PreconditionFailed);
        }
        lock_feeds_of(&txn, project).await?;
        let (_, role) = recheck_under_locks(&txn, caller, task_id, project).await?;
        authorize(Some(role), Action::EditTasks, TASK)?;
        let mut row: comment::ActiveModel = found.clone().into();
        row.body = Set(body.into_inner());
        row.version = Set(found.version.saturating_add(1));
        row.edited_at = Set(Some(validate::now()));
        let updated = row.update(&txn).await?;
        // An edit leaves the count as it is: read it, no write of the task row.
        let count: Option<i32> = task::Entity::find_by_id(task_id)
            .select_only()
            .column(task::Column::CommentCount)
            .into_tuple()
            .one(&txn)
            .await?;
        let count = count.ok_or(AppError::NotFound(TASK))?;
        let audience = announce(&txn, project, &updated, count, About::CommentUpdated).await?;
        Ok((updated, audience))
    }
    .await;
    txn::finish(txn, outcome).await
}

/// Deletes a comment: its author (while an editor or admin), or any admin of the project.
/// Who heard of it (`comment.deleted`).
pub async fn delete(
    db: &DatabaseConnection,
    caller: Uuid,
    task_id: Uuid,
    id: Uuid,
) -> Result<Vec<Uuid>> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<Vec<Uuid>> = async {
        let (project, role) = role_on_task(&txn, caller, task_id).await?;
        let found = find(&txn, task_id, id).await?;
        let needed = if found.author_id == Some(caller) {
            Action::EditTasks
        } else {
            Action::Administer
        };
        authorize(Some(role), needed, TASK)?;
        lock_feeds_of(&txn, project).await?;
        let (_, role) = recheck_under_locks(&txn, caller, task_id, project).await?;
        authorize(Some(role), needed, TASK)?;
        comment::Entity::delete_by_id(id).exec(&txn).await?;
        let count = count_comments(&txn, task_id, -1).await?;
        let data = CommentEventData {
            project_id: project,
            task_id,
            comment_id: id,
            comment_count: count,
            comment: None,
        };
        let audience = events::record_about(
            &txn,
            project,
            About::CommentDeleted,
            task_id,
            event_json(&data),
            None,
        )
        .await?;
        Ok(audience)
    }
    .await;
    txn::finish(txn, outcome).await
}

/// The task's project and the caller's role, read again after the feed locks: a move of
/// the task or a removal of the caller that held them has committed by now. A task that
/// moved is refused for a retry (its events would go to the old project's members: found
/// by an attack helper); the caller's rights are the policy's answer as it stands now.
async fn recheck_under_locks<C: ConnectionTrait>(
    conn: &C,
    caller: Uuid,
    task: Uuid,
    locked: Uuid,
) -> Result<(Uuid, Role)> {
    let (project, role) = role_on_task(conn, caller, task).await?;
    if project != locked {
        return Err(AppError::Unavailable(
            "The task moved to another project meanwhile; try again.",
        ));
    }
    authorize(Some(role), Action::Read, TASK)?;
    Ok((project, role))
}

/// Adds `by` to task `id`'s `comment_count` (in the comment's transaction, so the count
/// and the comments never disagree); the count after it.
async fn count_comments<C: ConnectionTrait>(conn: &C, id: Uuid, by: i32) -> Result<i32> {
    let changed = task::Entity::update_many()
        .col_expr(
            task::Column::CommentCount,
            Expr::col(task::Column::CommentCount).add(by),
        )
        .filter(task::Column::Id.eq(id))
        .exec_with_returning(conn)
        .await?;
    let task = changed.into_iter().next().ok_or(AppError::NotFound(TASK))?;
    Ok(task.comment_count)
}

/// Records `about` `comment` for the project's members; who heard of it.
async fn announce<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    comment: &comment::Model,
    comment_count: i32,
    about: About,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let data = CommentEventData {
        project_id: project,
        task_id: comment.task_id,
        comment_id: comment.id,
        comment_count,
        comment: Some(CommentView::from(comment.clone())),
    };
    events::record_about(
        conn,
        project,
        about,
        comment.task_id,
        event_json(&data),
        None,
    )
    .await
}

async fn find<C: ConnectionTrait>(conn: &C, task_id: Uuid, id: Uuid) -> Result<comment::Model> {
    comment::Entity::find_by_id(id)
        .filter(comment::Column::TaskId.eq(task_id))
        .one(conn)
        .await?
        .ok_or(AppError::NotFound(NOT_FOUND))
}
