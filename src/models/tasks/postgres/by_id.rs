//! The hottest read, `GET /tasks/{id}`, as one fixed statement. On PostgreSQL it goes to the
//! pool through sqlx directly: a static SQL string (prepared once per connection by sqlx's
//! statement cache) instead of building the query with sea-query on every request, and none
//! of the large per-call futures of sea-orm's generic query path, which were copied
//! several times per request (a third of the request's instructions under callgrind). The
//! rows are decoded by `rows`, as the list's and the writes' are. This is the
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
use crate::models::tasks::postgres::rows::{decode_all, sqlx_err};

/// A lone lookup: the task `$1` if `$2` owns it. Not [`LOOKUP_SQL`] with arrays of one,
/// whose subqueries and `unnest` a lone call would pay for nothing (`pgbench -M prepared`,
/// one connection: 6.0k against 7.1k per second).
const LOOKUP_ONE_SQL: &str = r#"SELECT * FROM "tasks" WHERE "id" = $1 AND "user_id" = $2"#;

/// The tasks of a batch of (id, owner) pairs, each matched on both: a pair whose task
/// belongs to someone else finds no row, as with [`LOOKUP_ONE_SQL`].
pub const LOOKUP_SQL: &str = r#"
SELECT "tasks".*
FROM unnest((SELECT $1::uuid[]), (SELECT $2::uuid[])) AS "wanted" ("id", "user_id")
JOIN "tasks" ON "tasks"."id" = "wanted"."id" AND "tasks"."user_id" = "wanted"."user_id""#;

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
            return vec![self.find(owner, id).await.map_err(AppError::from)];
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
    async fn find(&self, owner: Uuid, id: Uuid) -> std::result::Result<Option<task::Model>, DbErr> {
        let rows = sqlx::query(LOOKUP_ONE_SQL)
            .bind(id)
            .bind(owner)
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(sqlx_err)?;
        Ok(decode_all(&rows)?.pop())
    }

    async fn fetch(&self, batch: &[(Uuid, Uuid)]) -> std::result::Result<Vec<task::Model>, DbErr> {
        let (owners, ids): (Vec<Uuid>, Vec<Uuid>) = batch.iter().copied().unzip();
        let rows = sqlx::query(LOOKUP_SQL)
            .bind(ids)
            .bind(owners)
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(sqlx_err)?;
        decode_all(&rows)
    }
}
