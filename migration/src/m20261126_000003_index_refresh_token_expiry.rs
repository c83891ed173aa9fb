//! Indexes on `refresh_tokens.expires_at` and `revoked_at`, which the periodic purge filters by.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    ExpiresAt,
    RevokedAt,
}

const INDEXES: [(&str, RefreshTokens); 2] = [
    ("idx_refresh_tokens_expires_at", RefreshTokens::ExpiresAt),
    ("idx_refresh_tokens_revoked_at", RefreshTokens::RevokedAt),
];

/// The periodic purge of dead refresh tokens selects rows by `expires_at` or `revoked_at`;
/// without these indexes each bounded batch would scan the whole table. Expand-only: a
/// binary that predates it runs unchanged against the indexed schema.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .col(column)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(RefreshTokens::Table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
