//! `task_events`: the change feed's log (see `models::events`). One row per task change,
//! written in the change's own transaction; the id is the SSE event id.

use sea_orm::entity::prelude::*;

use crate::entities::task::{Priority, Status};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Who receives the event: one row per member of the project at the time of the change.
    pub user_id: Uuid,
    /// The project the task was in; `None` only on rows older than projects (migration
    /// 000011 fills those with the recipient's Inbox).
    pub project_id: Option<Uuid>,
    pub task_id: Uuid,
    /// `created`, `updated` or `deleted` for a task; for other events (`comment.created`,
    /// `label.deleted`, `member.added`...) the SSE event name itself, with `body` holding
    /// the event's data and `task_id` the subject's id (the comment's task, the label, the
    /// member).
    pub kind: String,
    /// The task's version after the change (the deleted version for a deletion).
    pub version: i32,
    /// The task as the API showed it (JSON text), on rows written before the snapshot
    /// columns below existed; `None` on newer rows and for a deletion.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    // The task at `version` (migration 000007), `None` for a deletion: copied from the
    // changed row by the database, rendered by the feed with the API's own view.
    pub title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<ChronoDateTimeUtc>,
    pub task_created_at: Option<ChronoDateTimeUtc>,
    pub task_updated_at: Option<ChronoDateTimeUtc>,
    // Migration 000013, the same way as on `tasks`.
    #[sea_orm(column_type = "Text", nullable)]
    pub assignee_ids: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub label_ids: Option<String>,
    pub comment_count: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
