//! Schema migrations, one dated file per change. They run unchanged on SQLite and PostgreSQL.
//! An applied migration is never renamed (its name is its identity in `seaql_migrations`)
//! and its steps never change; a file whose name undersells it says so in its first comment.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_users_and_tasks;
mod m20261125_000002_create_refresh_tokens;
mod m20261126_000003_index_refresh_token_expiry;
mod m20261127_000004_task_search_text;
mod m20261128_000005_task_events;
mod m20261129_000006_idempotency_keys;
mod m20261130_000007_task_event_snapshots;
mod m20261201_000008_lighter_task_writes;
mod m20261207_000009_listing_indexes;
mod m20261207_000010_task_search_words;
mod m20261208_000011_projects;
mod m20261208_000012_labels_and_comments;
mod m20261209_000013_task_assignees_labels;

pub use m20261127_000004_task_search_text::fold_for_search;
pub use m20261207_000010_task_search_words::SEARCH_WORDS_SQL;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_users_and_tasks::Migration),
            Box::new(m20261125_000002_create_refresh_tokens::Migration),
            Box::new(m20261126_000003_index_refresh_token_expiry::Migration),
            Box::new(m20261127_000004_task_search_text::Migration),
            Box::new(m20261128_000005_task_events::Migration),
            Box::new(m20261129_000006_idempotency_keys::Migration),
            Box::new(m20261130_000007_task_event_snapshots::Migration),
            Box::new(m20261201_000008_lighter_task_writes::Migration),
            Box::new(m20261207_000009_listing_indexes::Migration),
            Box::new(m20261207_000010_task_search_words::Migration),
            Box::new(m20261208_000011_projects::Migration),
            Box::new(m20261208_000012_labels_and_comments::Migration),
            Box::new(m20261209_000013_task_assignees_labels::Migration),
        ]
    }
}
