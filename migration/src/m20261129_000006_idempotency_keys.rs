use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// One row per `Idempotency-Key` a client sent with a create that succeeded: the
/// response it got, so a retry with the same key replays it instead of creating again.
#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Scope,
    IdempotencyKey,
    Fingerprint,
    Status,
    Body,
    Location,
    Etag,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    UserId,
    CreatedAt,
    Id,
}

const EXPIRY_INDEX: &str = "idx_idempotency_keys_created_at";
const KEYSET_INDEX: &str = "idx_tasks_user_created_id";

/// `idempotency_keys`, keyed by (scope, key): the primary key is what makes two racing
/// requests with one key create one resource (the second insert waits for the first
/// transaction and then fails on the key). The `created_at` index serves the purge.
///
/// Also `tasks (user_id, created_at, id)`: the default listing order (`-created_at`, ties
/// by id) read from a keyset cursor is one range scan of it, `(created_at, id) < (?, ?)`,
/// however deep the page. Expand-only: an older binary runs unchanged against this schema.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(IdempotencyKeys::Scope)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::IdempotencyKey)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKeys::Status)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKeys::Body).text().not_null())
                    .col(ColumnDef::new(IdempotencyKeys::Location).text().null())
                    .col(ColumnDef::new(IdempotencyKeys::Etag).text().null())
                    .col(
                        ColumnDef::new(IdempotencyKeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::Scope)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(EXPIRY_INDEX)
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(KEYSET_INDEX)
                    .table(Tasks::Table)
                    .col(Tasks::UserId)
                    .col(Tasks::CreatedAt)
                    .col(Tasks::Id)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(KEYSET_INDEX)
                    .table(Tasks::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(
                Table::drop()
                    .table(IdempotencyKeys::Table)
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
