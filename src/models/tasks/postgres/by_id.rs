//! The hottest read, `GET /tasks/{id}`, as one fixed statement. On PostgreSQL it goes to the
//! pool through sqlx directly: a static SQL string (prepared once per connection by sqlx's
//! statement cache) instead of building the query with sea-query on every request, and none
//! of the large per-call futures of sea-orm's generic query path, which were copied
//! several times per request (a third of the request's instructions under callgrind). The
//! row is decoded by `rows::decode`, as the list's and the writes' are. This is the
//! PostgreSQL store's; the portable store takes the query builder.
//!
//! Under load, [`Lookups`] answers concurrent lookups with one statement per batch
//! (`models::batch`).

use std::sync::Arc;

use sea_orm::sqlx;
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::entities::task;
use crate::error::{AppError, Result};
use crate::models::batch::{Batcher, Job, shared_problem};
use crate::models::tasks::postgres::rows::{decode, sqlx_err};

/// Every column of `tasks`, in the entity's order (a test keeps them in step).
const POSTGRES_SQL: &str = r#"SELECT "id", "user_id", "title", "description", "status", "priority", "due_date", "version", "created_at", "updated_at", "title_search", "description_search" FROM "tasks" WHERE "id" = $1 AND "user_id" = $2"#;

/// The same columns for a batch of (id, owner) pairs, each matched on both: a pair whose
/// task belongs to someone else finds no row, exactly as [`POSTGRES_SQL`] does.
const POSTGRES_BATCH_SQL: &str = r#"SELECT "tasks"."id", "tasks"."user_id", "tasks"."title", "tasks"."description", "tasks"."status", "tasks"."priority", "tasks"."due_date", "tasks"."version", "tasks"."created_at", "tasks"."updated_at", "tasks"."title_search", "tasks"."description_search" FROM unnest($1::uuid[], $2::uuid[]) AS "wanted" ("id", "user_id") JOIN "tasks" ON "tasks"."id" = "wanted"."id" AND "tasks"."user_id" = "wanted"."user_id""#;

/// The task `id` if `owner` owns it (PostgreSQL).
pub async fn find(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
) -> std::result::Result<Option<task::Model>, DbErr> {
    let row = sqlx::query(POSTGRES_SQL)
        .bind(id)
        .bind(owner)
        .fetch_optional(db.get_postgres_connection_pool())
        .await
        .map_err(sqlx_err)?;
    row.as_ref().map(decode).transpose()
}

/// Task lookups by id that share statements under load (see `models::batch`). Only the
/// PostgreSQL store batches: SQLite reads from the process's own file, with no round trip
/// to save.
pub type Lookups = Batcher<LookupJob>;

/// The most lookups one statement answers (the rest wait for the next round trip).
const MAX_BATCH: usize = 128;

pub struct LookupJob {
    db: DatabaseConnection,
}

/// The lookups of a [`Lookups`].
pub fn lookups(db: DatabaseConnection) -> Arc<Lookups> {
    Batcher::new(LookupJob { db }, "task_lookup", MAX_BATCH)
}

impl Job for LookupJob {
    /// (owner, id)
    type Input = (Uuid, Uuid);
    type Output = Option<task::Model>;

    async fn run(&self, batch: Vec<(Uuid, Uuid)>) -> Vec<Result<Option<task::Model>>> {
        if let [(owner, id)] = batch[..] {
            return vec![find(&self.db, owner, id).await.map_err(AppError::from)];
        }
        match self.fetch(&batch).await {
            Ok(rows) => batch
                .iter()
                .map(|(owner, id)| {
                    Ok(rows
                        .iter()
                        .find(|task| task.id == *id && task.user_id == *owner)
                        .cloned())
                })
                .collect(),
            Err(err) => {
                // Converted (and logged) once; every caller gets the same problem.
                let err = AppError::from(err);
                batch.iter().map(|_| Err(shared_problem(&err))).collect()
            }
        }
    }
}

impl LookupJob {
    async fn fetch(&self, batch: &[(Uuid, Uuid)]) -> std::result::Result<Vec<task::Model>, DbErr> {
        let (owners, ids): (Vec<Uuid>, Vec<Uuid>) = batch.iter().copied().unzip();
        let rows = sqlx::query(POSTGRES_BATCH_SQL)
            .bind(ids)
            .bind(owners)
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(sqlx_err)?;
        rows.iter().map(decode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column added to the entity must be added to the statement too, or decoding the
    /// row would fail at run time.
    #[test]
    fn the_statements_select_every_column_of_the_entity() {
        for (sql, table) in [(POSTGRES_SQL, None), (POSTGRES_BATCH_SQL, Some("tasks"))] {
            let listed = crate::models::tasks::postgres::rows::quoted_columns(table);
            let select = sql
                .strip_prefix("SELECT ")
                .and_then(|rest| rest.split(" FROM ").next())
                .expect("select list");
            let selected: Vec<String> = select.split(", ").map(str::to_string).collect();
            assert_eq!(selected, listed, "{sql}");
        }
    }
}
