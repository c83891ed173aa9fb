use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Labels {
    Table,
    Id,
    ProjectId,
    Name,
    NameFolded,
    Color,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Comments {
    Table,
    Id,
    TaskId,
    AuthorId,
    Body,
    Version,
    CreatedAt,
    EditedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

/// Teams (issue #24): a project's labels, and comments on tasks.
///
/// A label's name is unique within its project case-insensitively: `name_folded` holds
/// it case-folded (`fold_for_search`, the same folding as search), under a unique index,
/// so the database refuses the duplicate whatever the race. A comment goes with its task
/// (and so with its project); it outlives its author's account with no author.
/// Expand-only: older binaries never read these tables.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Labels::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Labels::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Labels::ProjectId).uuid().not_null())
                    .col(ColumnDef::new(Labels::Name).string_len(200).not_null())
                    .col(
                        ColumnDef::new(Labels::NameFolded)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Labels::Color).string_len(7).null())
                    .col(
                        ColumnDef::new(Labels::Version)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(Labels::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Labels::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_labels_project")
                            .from(Labels::Table, Labels::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_labels_project_name")
                    .table(Labels::Table)
                    .col(Labels::ProjectId)
                    .col(Labels::NameFolded)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Comments::TaskId).uuid().not_null())
                    .col(ColumnDef::new(Comments::AuthorId).uuid().null())
                    .col(ColumnDef::new(Comments::Body).text().not_null())
                    .col(
                        ColumnDef::new(Comments::Version)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(Comments::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Comments::EditedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comments_task")
                            .from(Comments::Table, Comments::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_comments_author")
                            .from(Comments::Table, Comments::AuthorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // A task's thread, oldest first, paged by id (UUIDv7: time-ordered).
        manager
            .create_index(
                Index::create()
                    .name("idx_comments_task_id")
                    .table(Comments::Table)
                    .col(Comments::TaskId)
                    .col(Comments::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Comments::Table).if_exists().to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Labels::Table).if_exists().to_owned())
            .await
    }
}
