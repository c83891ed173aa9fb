use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    UserId,
    Status,
    Priority,
    CreatedAt,
    Id,
}

/// `sort=priority` / `sort=-priority`: `ORDER BY priority, id` (either direction) is a
/// walk of this index from one end of the owner's range, stopping after the page.
const PRIORITY_INDEX: &str = "idx_tasks_user_priority_id";
/// `status=…` with the default order, and its count: the owner's tasks of one status,
/// newest first, from the index alone.
const STATUS_INDEX: &str = "idx_tasks_user_status_created_id";
/// PostgreSQL: trigram indexes on the folded copies that `q` searches with
/// `LIKE '%term%'`, and a partial index on the rows an old binary left unfolded (the third
/// arm of the search), so that the search is one bitmap scan instead of a scan of every
/// task of the owner.
const TRIGRAM_INDEXES: [(&str, &str); 2] = [
    ("idx_tasks_title_search_trgm", "title_search"),
    ("idx_tasks_description_search_trgm", "description_search"),
];
const UNFOLDED_INDEX: &str = "idx_tasks_user_unfolded";

/// Indexes behind the listing's sorts, filters and search, so that the first page of an
/// owner with tens of thousands of tasks costs about what a page of a small owner does
/// (issue #23). Expand-only: an older binary runs unchanged against this schema.
///
/// `pg_trgm` is a trusted extension (PostgreSQL 13+), so the database owner may create it;
/// where it is not installed or not allowed, the trigram indexes are skipped with a notice
/// and search stays correct, only slower. SQLite gets the two B-tree indexes; its search
/// stays a scan of the owner's rows (linear, never quadratic).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let btrees: [(&str, &[Tasks]); 2] = [
            (PRIORITY_INDEX, &[Tasks::UserId, Tasks::Priority, Tasks::Id]),
            (
                STATUS_INDEX,
                &[Tasks::UserId, Tasks::Status, Tasks::CreatedAt, Tasks::Id],
            ),
        ];
        for (name, columns) in btrees {
            let mut index = Index::create();
            index.name(name).table(Tasks::Table).if_not_exists();
            for column in columns {
                index.col(*column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS pg_trgm; \
             EXCEPTION WHEN OTHERS THEN RAISE NOTICE 'pg_trgm unavailable (%): search is not indexed', SQLERRM; END $$",
        )
        .await?;
        for (name, column) in TRIGRAM_INDEXES {
            db.execute_unprepared(&format!(
                "DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN \
                 CREATE INDEX IF NOT EXISTS \"{name}\" ON \"tasks\" USING gin (\"{column}\" gin_trgm_ops); \
                 END IF; END $$"
            ))
            .await?;
        }
        db.execute_unprepared(&format!(
            "CREATE INDEX IF NOT EXISTS \"{UNFOLDED_INDEX}\" ON \"tasks\" (\"user_id\") WHERE \"title_search\" IS NULL"
        ))
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut names = vec![PRIORITY_INDEX, STATUS_INDEX];
        if manager.get_database_backend() == DatabaseBackend::Postgres {
            names.extend(TRIGRAM_INDEXES.map(|(name, _)| name));
            names.push(UNFOLDED_INDEX);
        }
        for name in names {
            manager
                .drop_index(
                    Index::drop()
                        .name(name)
                        .table(Tasks::Table)
                        .if_exists()
                        .to_owned(),
                )
                .await?;
        }
        // pg_trgm stays: other schemas in the database may use it.
        Ok(())
    }
}
