//! `tasks.title_search`/`description_search`: Rust-lowercased copies that `q` matches, so
//! SQLite and PostgreSQL fold the same non-ASCII text; backfilled in batches.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::sea_orm::prelude::Uuid;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tasks {
    Table,
    Id,
    Title,
    Description,
    TitleSearch,
    DescriptionSearch,
}

/// Rows folded per transaction by the backfill: bounded so a large table never holds one
/// long write transaction (SQLite has a single writer; PostgreSQL would bloat).
const BATCH: u64 = 500;

/// The case-folded form of text that `q` searches: Rust's Unicode `to_lowercase` (not a
/// database's `lower()`, which is ASCII-only on SQLite and collation-dependent on
/// PostgreSQL), so both databases match the same rows. Final sigma `ς` becomes `σ`, because
/// `to_lowercase` chooses between the two from context and a search term's context differs
/// from the title's. No locale rules: Turkish `I` folds to `i` and `ı` stays `ı`; `ß` stays
/// `ß` (no full case folding to `ss`), `ẞ` folds to `ß`. One definition, used by this
/// backfill and by the application on every write and for every search term.
pub fn fold_for_search(text: &str) -> String {
    text.to_lowercase().replace('ς', "σ")
}

/// Adds `title_search` / `description_search`, the folded copies the task search compares
/// with (plain `LIKE`, no per-row function call), and fills them for existing rows.
/// Expand-only: both are nullable, so a binary that predates them keeps inserting; the
/// search falls back to `lower()` on rows it left NULL. Not one transaction: the columns
/// are added first, then each batch commits on its own; a run that stops half-way is
/// resumed by the next (columns that exist are kept, only NULL rows are folded).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tasks::TitleSearch, Tasks::DescriptionSearch] {
            if manager.has_column("tasks", &column.to_string()).await? {
                continue;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .add_column(ColumnDef::new(column).text().null())
                        .to_owned(),
                )
                .await?;
        }
        backfill(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Tasks::TitleSearch, Tasks::DescriptionSearch] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

/// Folds every row whose `title_search` is still NULL, in id order (keyset pages, so a row
/// is visited once even if an older binary inserts concurrently).
async fn backfill(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let mut after: Option<Uuid> = None;
    loop {
        let mut select = Query::select();
        select
            .columns([Tasks::Id, Tasks::Title, Tasks::Description])
            .from(Tasks::Table)
            .and_where(Expr::col(Tasks::TitleSearch).is_null())
            .order_by(Tasks::Id, Order::Asc)
            .limit(BATCH);
        if let Some(last) = after {
            select.and_where(Expr::col(Tasks::Id).gt(last));
        }
        let rows = db.query_all(&select).await?;
        let Some(last_row) = rows.last() else {
            return Ok(());
        };
        after = Some(last_row.try_get::<Uuid>("", "id")?);
        let batch = manager.begin().await?;
        for row in &rows {
            let id: Uuid = row.try_get("", "id")?;
            let title: String = row.try_get("", "title")?;
            let description: Option<String> = row.try_get("", "description")?;
            let update = Query::update()
                .table(Tasks::Table)
                .value(Tasks::TitleSearch, fold_for_search(&title))
                .value(
                    Tasks::DescriptionSearch,
                    description.as_deref().map(fold_for_search),
                )
                .and_where(Expr::col(Tasks::Id).eq(id))
                .to_owned();
            batch.get_connection().execute(&update).await?;
        }
        batch.commit().await?;
        if (rows.len() as u64) < BATCH {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fold_for_search;

    #[test]
    fn folds_beyond_ascii_with_rust_lowercase_rules() {
        assert_eq!(fold_for_search("Äpfel KAUFEN"), "äpfel kaufen");
        assert_eq!(fold_for_search("ÄPFEL"), fold_for_search("äpfel"));
        assert_eq!(fold_for_search("ΟΔΟΣ"), "οδοσ");
        assert_eq!(fold_for_search("οδος"), fold_for_search("ΟΔΟΣ"));
        assert_eq!(fold_for_search("STRAẞE"), "straße");
        assert_eq!(fold_for_search("DIŞ ISI"), "diş isi");
        assert_eq!(fold_for_search("ı"), "ı");
    }
}
