//! `project_members`: who may do what in a project (`models::projects::policy` decides).

use salvo::oapi::ToSchema;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "project_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub role: Role,
    pub created_at: ChronoDateTimeUtc,
    /// Bumped on every role change; the membership's ETag (migration 000013).
    pub version: i32,
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
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::project::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Project.def()
    }
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}

/// A member's role, stored as a small integer ordered by power, so that "at least editor"
/// is one comparison in SQL.
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[sea_orm(rs_type = "i16", db_type = "SmallInteger")]
#[serde(rename_all = "snake_case")]
#[salvo(schema(name = "ProjectRole"))]
pub enum Role {
    /// Reads the project, its tasks, labels, members and comments.
    #[sea_orm(num_value = 1)]
    Viewer,
    /// Also creates, changes and deletes tasks, and comments.
    #[sea_orm(num_value = 2)]
    Editor,
    /// Also renames, archives and deletes the project, and manages members and labels.
    #[sea_orm(num_value = 3)]
    Admin,
}

impl Role {
    /// The stored value, for SQL that compares roles.
    pub fn stored(self) -> i16 {
        sea_orm::ActiveEnum::to_value(&self)
    }
}
