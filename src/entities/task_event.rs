//! `task_events`: the change feed's log (see `models::events`). One row per task change,
//! written in the change's own transaction; the id is the SSE event id.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: Uuid,
    pub task_id: Uuid,
    /// `created`, `updated` or `deleted`.
    pub kind: String,
    /// The task's version after the change (the deleted version for a deletion).
    pub version: i32,
    /// The task as the API shows it (JSON text); `None` for a deletion.
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
