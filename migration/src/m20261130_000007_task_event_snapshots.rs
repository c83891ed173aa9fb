use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum TaskEvents {
    Table,
    Title,
    Description,
    Status,
    Priority,
    DueDate,
    TaskCreatedAt,
    TaskUpdatedAt,
}

/// The task's fields at the event's version, as typed columns beside the JSON `body`.
/// A write can then record its event in the same SQL statement as the change itself
/// (`INSERT ... SELECT` from the changed row's `RETURNING`), one round trip instead of a
/// transaction of five, since the database copies the row rather than the application
/// rendering it first. The feed renders these columns with the same view as the API;
/// `body` stays for rows written before (and by binaries older than) this migration.
/// Every column is nullable, so an older binary keeps inserting. But an older binary
/// *reads* only `body`, which this version no longer writes: its streams show `"task":
/// null` for the events newer replicas write while both run (README, "One exception").
/// `down` drops the columns, so events written meanwhile keep no task.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    // SQLite adds one column per ALTER TABLE; a run that stops half-way is resumed by the
    // next (columns that exist are kept).
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in columns() {
            let name = column.get_column_name();
            if manager.has_column("task_events", &name).await? {
                continue;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(TaskEvents::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            TaskEvents::Title,
            TaskEvents::Description,
            TaskEvents::Status,
            TaskEvents::Priority,
            TaskEvents::DueDate,
            TaskEvents::TaskCreatedAt,
            TaskEvents::TaskUpdatedAt,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(TaskEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// The snapshot columns, typed as in `tasks` but all nullable (a deletion has none).
fn columns() -> [ColumnDef; 7] {
    [
        ColumnDef::new(TaskEvents::Title)
            .string_len(200)
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::Description)
            .text()
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::Status)
            .string_len(16)
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::Priority)
            .small_integer()
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::DueDate)
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::TaskCreatedAt)
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
        ColumnDef::new(TaskEvents::TaskUpdatedAt)
            .timestamp_with_time_zone()
            .null()
            .to_owned(),
    ]
}
