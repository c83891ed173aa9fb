use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

/// The change feed's log: one row per task change, written in the transaction of the
/// change itself, so the feed can never announce a change that was rolled back nor miss
/// one that committed. The id is the SSE event id: it only grows (AUTOINCREMENT on
/// SQLite, an identity column on PostgreSQL), so a pruned id is never handed out again.
#[derive(DeriveIden)]
enum TaskEvents {
    Table,
    Id,
    UserId,
    TaskId,
    Kind,
    Version,
    Body,
    CreatedAt,
}

/// Per user, the newest event id the pruner has deleted: a reconnect whose
/// `Last-Event-ID` is below it has missed events that are gone and must refetch.
#[derive(DeriveIden)]
enum TaskEventFloors {
    Table,
    UserId,
    PrunedThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TaskEvents::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(TaskEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(TaskEvents::UserId).uuid().not_null())
                    .col(ColumnDef::new(TaskEvents::TaskId).uuid().not_null())
                    .col(ColumnDef::new(TaskEvents::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(TaskEvents::Version).integer().not_null())
                    // The task as the API shows it (JSON), or NULL for a deletion.
                    .col(ColumnDef::new(TaskEvents::Body).text().null())
                    .col(
                        ColumnDef::new(TaskEvents::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_events_user")
                            .from(TaskEvents::Table, TaskEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A stream reads "this user's events after id N"; the pruner deletes by age.
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_user_id")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::UserId)
                    .col(TaskEvents::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_created_at")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskEventFloors::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(TaskEventFloors::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(TaskEventFloors::PrunedThrough)
                            .big_integer()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_task_event_floors_user")
                            .from(TaskEventFloors::Table, TaskEventFloors::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(
                Table::drop()
                    .table(TaskEventFloors::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(TaskEvents::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
