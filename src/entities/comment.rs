//! `comments`: a task's thread. Deleted with the task; kept without an author when the
//! author's account is deleted.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub task_id: Uuid,
    pub author_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub version: i32,
    pub created_at: ChronoDateTimeUtc,
    pub edited_at: Option<ChronoDateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
