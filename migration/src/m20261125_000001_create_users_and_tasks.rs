//! The first schema: `users`, `tasks` (with their indexes) and also `bootstrap_claims`,
//! which the file name does not say: one row per one-time event that must happen at most
//! once across all replicas ("first_admin", see `models::users`). The name stays, since
//! renaming an applied migration would make every existing database run it again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    Email,
    PasswordHash,
    Role,
    Active,
    TokenVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    UserId,
    Title,
    Description,
    Status,
    Priority,
    DueDate,
    Version,
    CreatedAt,
    UpdatedAt,
}

/// One row per one-time event that must happen at most once across all replicas
/// (e.g. "first_admin"): the primary key makes the claim race-free on every back end.
#[derive(DeriveIden)]
enum BootstrapClaims {
    Table,
    Name,
    ClaimedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Users::Name).string_len(100).not_null())
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Users::PasswordHash)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Users::Role).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Users::Active)
                            .boolean()
                            .not_null()
                            .default(true),
                    )
                    .col(
                        ColumnDef::new(Users::TokenVersion)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Users::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_role")
                    .table(Users::Table)
                    .col(Users::Role)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Tasks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Tasks::UserId).uuid().not_null())
                    .col(ColumnDef::new(Tasks::Title).string_len(200).not_null())
                    .col(ColumnDef::new(Tasks::Description).text().null())
                    .col(ColumnDef::new(Tasks::Status).string_len(16).not_null())
                    // 1 = low, 2 = medium, 3 = high: stored as a number so that sorting by priority is natural.
                    .col(ColumnDef::new(Tasks::Priority).small_integer().not_null())
                    .col(
                        ColumnDef::new(Tasks::DueDate)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Tasks::Version)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(Tasks::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Tasks::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tasks_user")
                            .from(Tasks::Table, Tasks::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Every task query is scoped to one owner; these serve the default listing order
        // and the due-date filters/sort without scanning other users' rows.
        for (name, second) in [
            ("idx_tasks_user_created", Tasks::CreatedAt),
            ("idx_tasks_user_due", Tasks::DueDate),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tasks::Table)
                        .col(Tasks::UserId)
                        .col(second)
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(BootstrapClaims::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(BootstrapClaims::Name)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(BootstrapClaims::ClaimedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BootstrapClaims::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Tasks::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}
