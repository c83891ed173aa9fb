use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    UserId,
    CreatedAt,
}

/// The index made redundant by `idx_tasks_user_created_id` (migration 000006): that one
/// is `(user_id, created_at, id)`, so it serves every query this prefix served.
const REDUNDANT_INDEX: &str = "idx_tasks_user_created";

/// Free space kept in each heap page of `tasks` on PostgreSQL, in percent.
const FILLFACTOR: u8 = 85;

/// Makes every task write cheaper for the database, without changing what any query can
/// use:
/// - drops [`REDUNDANT_INDEX`], one index entry less per inserted (or moved) row;
/// - on PostgreSQL, leaves free space in the pages of `tasks` ([`FILLFACTOR`]): an
///   update that changes no indexed column (status, priority, title, description, the
///   version and `updated_at`: what most PATCHes change) can then write the new row
///   version on the same page as a heap-only tuple, without a new entry in each index.
///   Applies to pages written from now on; existing pages fill up as before until they
///   are rewritten.
///
/// Safe for an older binary running beside it (its queries use the remaining index).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(REDUNDANT_INDEX)
                    .table(Tasks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(&format!(
                    "ALTER TABLE tasks SET (fillfactor = {FILLFACTOR})"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE tasks RESET (fillfactor)")
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(REDUNDANT_INDEX)
                    .table(Tasks::Table)
                    .col(Tasks::UserId)
                    .col(Tasks::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
