//! `projects`: where tasks live. Every user has one *Inbox* (`inbox_of` set to the user,
//! and the same id as the user), which only they can see; other projects are shared with
//! their members (`project_member`). `version` is bumped on every change and served as the
//! ETag.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// The user whose Inbox this is; `None` for a shared project.
    pub inbox_of: Option<Uuid>,
    pub archived: bool,
    pub version: i32,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

impl Model {
    pub fn is_inbox(&self) -> bool {
        self.inbox_of.is_some()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::project_member::Entity")]
    Members,
}

impl Related<super::project_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Members.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
