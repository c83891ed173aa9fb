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

use sea_orm::sqlx::{self, Row};
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::entities::task;
use crate::error::{AppError, Result};
use crate::models::batch::{Batcher, Job, shared_problem};
use crate::models::projects::policy::Action;
use crate::models::tasks::postgres::rows::{decode_all, sqlx_err};

/// A lone lookup: the task `$1` if `$2` may read its project (`$3` is the least role that
/// may, as stored; see `models::projects::policy`). Not [`LOOKUP_SQL`] with arrays of one,
/// whose subqueries and `unnest` a lone call would pay for nothing (`pgbench -M prepared`,
/// one connection: 6.0k against 7.1k per second). The membership test is a probe of the
/// `project_members` primary key in the same statement: no round trip of its own.
const LOOKUP_ONE_SQL: &str = r#"
SELECT * FROM "tasks"
WHERE "id" = $1 AND EXISTS (
  SELECT 1 FROM "project_members"
  WHERE "project_id" = "tasks"."user_id" AND "user_id" = $2 AND "role" >= $3::int2)"#;

/// The tasks of a batch of (id, caller) pairs, each returned with its caller when the caller
/// may read it, as with [`LOOKUP_ONE_SQL`].
pub const LOOKUP_SQL: &str = r#"
SELECT "wanted"."caller", "tasks".*
FROM unnest((SELECT $1::uuid[]), (SELECT $2::uuid[])) AS "wanted" ("id", "caller")
JOIN "tasks" ON "tasks"."id" = "wanted"."id"
WHERE EXISTS (
  SELECT 1 FROM "project_members" AS "m"
  WHERE "m"."project_id" = "tasks"."user_id" AND "m"."user_id" = "wanted"."caller"
    AND "m"."role" >= $3::int2)"#;

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
    /// (caller, id)
    type Input = (Uuid, Uuid);
    type Output = Option<task::Model>;

    async fn run(&self, batch: Vec<(Uuid, Uuid)>) -> Vec<Result<Option<task::Model>>> {
        if let [(caller, id)] = batch[..] {
            return vec![self.find(caller, id).await.map_err(AppError::from)];
        }
        match self.fetch(&batch).await {
            Ok(rows) => batch
                .iter()
                .map(|(caller, id)| {
                    Ok(rows
                        .iter()
                        .find(|(reader, task)| task.id == *id && reader == caller)
                        .map(|(_, task)| task.clone()))
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
    async fn find(
        &self,
        caller: Uuid,
        id: Uuid,
    ) -> std::result::Result<Option<task::Model>, DbErr> {
        let rows = sqlx::query(LOOKUP_ONE_SQL)
            .bind(id)
            .bind(caller)
            .bind(least_role_to_read())
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(sqlx_err)?;
        Ok(decode_all(&rows)?.pop())
    }

    /// The tasks found, each with the caller that may read it.
    async fn fetch(
        &self,
        batch: &[(Uuid, Uuid)],
    ) -> std::result::Result<Vec<(Uuid, task::Model)>, DbErr> {
        let (callers, ids): (Vec<Uuid>, Vec<Uuid>) = batch.iter().copied().unzip();
        let rows = sqlx::query(LOOKUP_SQL)
            .bind(ids)
            .bind(callers)
            .bind(least_role_to_read())
            .fetch_all(self.db.get_postgres_connection_pool())
            .await
            .map_err(sqlx_err)?;
        let tasks = decode_all(&rows)?;
        let readers = rows
            .iter()
            .map(|row| row.try_get::<Uuid, _>("caller").map_err(sqlx_err))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(readers.into_iter().zip(tasks).collect())
    }
}

/// The least role that reads a task, as stored (`models::projects::policy`).
fn least_role_to_read() -> i16 {
    Action::Read.least_role().stored()
}
