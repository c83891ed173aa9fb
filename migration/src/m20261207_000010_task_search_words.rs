use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The words of every text a search reads (the folded copies, and the `lower()` of the
/// originals that the search falls back to on rows an old binary wrote): the maximal runs
/// of ASCII letters and digits, as a `tsvector` so that a GIN index answers "holds this
/// word" and "holds a word starting with this" from its posting lists. The character class
/// is spelt out, not a range or `[:alnum:]`, so that it means the same in every database
/// locale, and the same as `models::tasks::list::search`, which splits a search term by it.
/// Runs longer than 255 characters (the most a regex repetition takes) are cut into pieces
/// of 255, because a `tsvector` refuses a lexeme of 2 KiB or more; a search term is at most
/// 200 characters, so the words it proves are unaffected. The listing repeats this
/// expression verbatim so that PostgreSQL matches it to the index.
pub const SEARCH_WORDS_SQL: &str = concat!(
    "array_to_tsvector(array_remove(regexp_split_to_array(regexp_replace(",
    "coalesce(\"title_search\", '') || ' ' || coalesce(\"description_search\", '') || ' ' || ",
    "lower(\"title\") || ' ' || coalesce(lower(\"description\"), ''), ",
    "'([0123456789abcdefghijklmnopqrstuvwxyz]{255})', '\\1 ', 'g'), ",
    "'[^0123456789abcdefghijklmnopqrstuvwxyz]+'), ''))"
);

const WORDS_INDEX: &str = "idx_tasks_search_words";

/// PostgreSQL: a GIN index on [`SEARCH_WORDS_SQL`]. A search for several words (`q=task
/// 12345`) first narrows to the rows holding its whole words (exact) and its last word (as
/// a prefix), then checks the substring on those few rows; on an owner with 50,000 tasks
/// whose titles all share the trigrams of "task", the trigram indexes alone read every
/// title's posting lists (2 ms a search, against 0.1 ms). Single-word searches keep the
/// trigram indexes. An index on an expression, not a stored column: no table rewrite, no
/// column for the entity or SQLite to carry, and writers need not know about it.
/// Expand-only. SQLite: nothing (its search scans the owner's rows).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "CREATE INDEX IF NOT EXISTS \"{WORDS_INDEX}\" ON \"tasks\" USING gin (({SEARCH_WORDS_SQL}))"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DatabaseBackend::Postgres {
            return Ok(());
        }
        manager
            .drop_index(
                Index::drop()
                    .name(WORDS_INDEX)
                    .table(Alias::new("tasks"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}
