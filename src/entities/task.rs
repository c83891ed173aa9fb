//! `tasks`: each in one project (`project`); `version` is bumped on every write and served as the ETag.

use salvo::oapi::ToSchema;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The project the task is in. The column keeps its first name, `user_id`: a task's
    /// project was its owner's Inbox, whose id is the owner's (migration 000011), so older
    /// binaries read and write exactly their user's Inbox through it.
    #[sea_orm(column_name = "user_id")]
    pub project_id: Uuid,
    pub title: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub due_date: Option<ChronoDateTimeUtc>,
    /// Optimistic-concurrency counter; exposed as the ETag.
    pub version: i32,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// `title` case-folded (`migration::fold_for_search`), written with every title; what
    /// `q` compares with. NULL only on rows written by a binary older than the column.
    #[sea_orm(column_type = "Text", nullable)]
    pub title_search: Option<String>,
    /// `description` case-folded, kept in step with it (NULL when it is NULL).
    #[sea_orm(column_type = "Text", nullable)]
    pub description_search: Option<String>,
    /// The members assigned, as `domain::id_list` stores them (migration 000013); each a
    /// member of the project (a member who leaves is taken off).
    #[sea_orm(column_type = "Text", nullable)]
    pub assignee_ids: Option<String>,
    /// The project's labels on the task, stored the same way (a deleted label is taken off).
    #[sea_orm(column_type = "Text", nullable)]
    pub label_ids: Option<String>,
    /// How many comments the task has, kept by the comment writes. Not part of `version`: a
    /// comment does not change the task, so it never fails someone's `If-Match` edit.
    pub comment_count: i32,
}

#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
#[salvo(schema(name = "TaskStatus"))]
pub enum Status {
    #[default]
    #[sea_orm(string_value = "todo")]
    Todo,
    #[sea_orm(string_value = "in_progress")]
    InProgress,
    #[sea_orm(string_value = "done")]
    Done,
}

#[derive(
    Copy,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "i16", db_type = "SmallInteger")]
#[serde(rename_all = "snake_case")]
#[salvo(schema(name = "Priority"))]
pub enum Priority {
    #[sea_orm(num_value = 1)]
    Low,
    #[default]
    #[sea_orm(num_value = 2)]
    Medium,
    #[sea_orm(num_value = 3)]
    High,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::project::Entity",
        from = "Column::ProjectId",
        to = "super::project::Column::Id",
        on_delete = "Cascade"
    )]
    Project,
}

impl Related<super::project::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
