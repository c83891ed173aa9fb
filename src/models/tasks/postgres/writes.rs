//! Task writes on PostgreSQL as one statement each: the per-user feed lock, the change and
//! its change-feed event in a single round trip, committed by the statement itself.
//!
//! The portable path (`models::tasks` over sea-orm, used on SQLite and inside a caller's
//! transaction) costs five round trips per write: BEGIN, the advisory lock, the change, the
//! event, COMMIT. Under load each round trip is a wake-up of both processes on a shared
//! core, which made a write cost about five times a plain INSERT. Here the statements are
//! fixed strings (prepared once per connection by sqlx's statement cache) whose
//! data-modifying CTEs run in this order:
//! 1. `serialized` takes the owner's transaction-scoped advisory lock
//!    (`tasks::domain::advisory_key`); it is MATERIALIZED and the change reads from it, so the
//!    change, and the event id drawn after it, come after the lock. The lock is held until
//!    the statement commits, which keeps a user's event ids in commit order (see
//!    `models::events`).
//! 2. the change (`INSERT`, `UPDATE` or `DELETE` on `tasks`) returns the row as changed;
//! 3. the event is inserted from that returned row: the database copies the snapshot, so
//!    no round trip is needed to render it first. No row changed, no event.
//!
//! A concurrent writer that changed the row first is handled by PostgreSQL's READ
//! COMMITTED rule for UPDATE/DELETE: the newest version is re-checked against the WHERE
//! clause (so `If-Match`'s version test sees the other writer's change) and changed from
//! there.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sqlx;
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::entities::task;
use crate::error::unauthorized_on_missing_owner;
use crate::models::batch::{Batcher, Job};
use crate::models::tasks::domain::advisory_key;
use crate::models::tasks::postgres::rows::{decode_all, sqlx_err};

type Pool = sqlx::PgPool;

/// The change-feed events of the rows in the CTE `$rows`, of kind `$kind`: each a snapshot
/// of the task as the change left it, copied by the database from the returned row.
macro_rules! record_events {
    ($kind:literal, $rows:literal) => {
        concat!(
            r#"
INSERT INTO "task_events" (
  "user_id", "task_id", "kind", "version", "created_at", "title", "description", "status",
  "priority", "due_date", "task_created_at", "task_updated_at")
SELECT
  "user_id", "id", '"#,
            $kind,
            r#"', "version", "updated_at", "title", "description", "status",
  "priority", "due_date", "created_at", "updated_at"
FROM ""#,
            $rows,
            r#"""#
        )
    };
}

/// What a create does once its new rows are in `"new"`: every owner's lock, taken in key
/// order so that two batches never wait for each other in a cycle, then the rows and their
/// events. `"keys"` holds the lock keys.
macro_rules! create_from_new_rows {
    () => {
        concat!(
            r#"
"serialized" AS MATERIALIZED (
  SELECT count(pg_advisory_xact_lock("key")) AS "locks"
  FROM (SELECT DISTINCT "key" FROM "keys" ORDER BY "key") AS "ordered"
),
"created" AS (
  INSERT INTO "tasks" (
    "id", "user_id", "title", "description", "status", "priority", "due_date", "version",
    "created_at", "updated_at", "title_search", "description_search")
  SELECT "new".* FROM "new", "serialized"
  RETURNING *
)"#,
            record_events!("created", "created")
        )
    };
}

/// New tasks (of one or more owners) in one statement: `$1` holds the lock keys, `$2` to
/// `$13` one array per column.
pub const CREATE_SQL: &str = concat!(
    r#"
WITH "keys" AS (SELECT unnest((SELECT $1::int8[])) AS "key"),
"new" AS (
  SELECT * FROM unnest(
    (SELECT $2::uuid[]), (SELECT $3::uuid[]), (SELECT $4::text[]), (SELECT $5::text[]),
    (SELECT $6::text[]), (SELECT $7::int2[]), (SELECT $8::timestamptz[]), (SELECT $9::int4[]),
    (SELECT $10::timestamptz[]), (SELECT $11::timestamptz[]), (SELECT $12::text[]),
    (SELECT $13::text[]))
),"#,
    create_from_new_rows!()
);

/// One new task: [`CREATE_SQL`] with one value per column instead of arrays, which a lone
/// call would pay for nothing (see `by_id::LOOKUP_ONE_SQL`).
const CREATE_ONE_SQL: &str = concat!(
    r#"
WITH "keys" AS (SELECT $1::int8 AS "key"),
"new" AS (
  SELECT
    $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::int2,
    $8::timestamptz, $9::int4, $10::timestamptz, $11::timestamptz, $12::text, $13::text
),"#,
    create_from_new_rows!()
);

/// What a change does once its changes are in `"changes"` (never the same task twice: an
/// UPDATE joined to two rows for one target applies only one of them): every owner's lock
/// in key order, as a create, then each change. A change's `*_set` flags say whether the
/// title, the description and the due date change (the description and due date may
/// change to NULL); status and priority are never NULL, so NULL there means unchanged;
/// `expected` is the `If-Match` version, NULL when none. `updated_at` is taken in the
/// statement, after the owner's lock, and never goes back: a time taken before queueing
/// could be older than the change that committed first. The version stops at the largest
/// `int4`: a change past it matches nothing, and `models::tasks` answers 409. Returns the
/// changed rows; a change whose row is not returned matched nothing.
macro_rules! update_from_changes {
    () => {
        concat!(
            r#"
"serialized" AS MATERIALIZED (
  SELECT count(pg_advisory_xact_lock("key")) AS "locks"
  FROM (SELECT DISTINCT "key" FROM "changes" ORDER BY "key") AS "ordered"
),
"updated" AS (
  UPDATE "tasks" SET
    "title" = CASE WHEN "c"."title_set" THEN "c"."title" ELSE "tasks"."title" END,
    "title_search" =
      CASE WHEN "c"."title_set" THEN "c"."title_search" ELSE "tasks"."title_search" END,
    "description" =
      CASE WHEN "c"."description_set" THEN "c"."description" ELSE "tasks"."description" END,
    "description_search" = CASE WHEN "c"."description_set"
      THEN "c"."description_search" ELSE "tasks"."description_search" END,
    "status" = COALESCE("c"."status", "tasks"."status"),
    "priority" = COALESCE("c"."priority", "tasks"."priority"),
    "due_date" = CASE WHEN "c"."due_date_set" THEN "c"."due_date" ELSE "tasks"."due_date" END,
    "version" = "tasks"."version" + 1,
    "updated_at" = GREATEST(clock_timestamp(), "tasks"."updated_at")
  FROM "changes" AS "c", "serialized"
  WHERE "tasks"."id" = "c"."id" AND "tasks"."user_id" = "c"."user_id"
    AND ("c"."expected" IS NULL OR "tasks"."version" = "c"."expected")
    AND "tasks"."version" < 2147483647
  RETURNING "tasks".*
),
"recorded" AS ("#,
            record_events!("updated", "updated"),
            r#"
)
SELECT * FROM "updated""#
        )
    };
}

/// The columns of `"changes"`, in the order the statements bind them.
macro_rules! change_columns {
    () => {
        r#""key", "id", "user_id", "title_set", "title", "title_search", "description_set",
    "description", "description_search", "status", "priority", "due_date_set", "due_date",
    "expected""#
    };
}

/// Changes of several tasks in one statement, one array per column of `"changes"`.
pub const UPDATE_SQL: &str = concat!(
    r#"
WITH "changes" AS (
  SELECT *
  FROM unnest(
    (SELECT $1::int8[]), (SELECT $2::uuid[]), (SELECT $3::uuid[]), (SELECT $4::bool[]),
    (SELECT $5::text[]), (SELECT $6::text[]), (SELECT $7::bool[]), (SELECT $8::text[]),
    (SELECT $9::text[]), (SELECT $10::text[]), (SELECT $11::int2[]), (SELECT $12::bool[]),
    (SELECT $13::timestamptz[]), (SELECT $14::int4[])
  ) AS "c" ("#,
    change_columns!(),
    r#")
),"#,
    update_from_changes!()
);

/// One change: [`UPDATE_SQL`] with one value per column (see [`CREATE_ONE_SQL`] for why).
const UPDATE_ONE_SQL: &str = concat!(
    r#"
WITH "changes" AS (
  SELECT *
  FROM (VALUES (
    $1::int8, $2::uuid, $3::uuid, $4::bool, $5::text, $6::text, $7::bool,
    $8::text, $9::text, $10::text, $11::int2, $12::bool, $13::timestamptz, $14::int4
  )) AS "c" ("#,
    change_columns!(),
    r#")
),"#,
    update_from_changes!()
);

/// `$4` is the `If-Match` version, NULL when none; `$5` the time of the tombstone.
const DELETE_SQL: &str = r#"
WITH "serialized" AS MATERIALIZED (SELECT pg_advisory_xact_lock($1)),
"deleted" AS (
  DELETE FROM "tasks" USING "serialized"
  WHERE "id" = $2 AND "user_id" = $3 AND ($4::int4 IS NULL OR "version" = $4)
  RETURNING "id", "user_id", "version"
)
INSERT INTO "task_events" ("user_id", "task_id", "kind", "version", "created_at")
SELECT "user_id", "id", 'deleted', "version", $5 FROM "deleted""#;

/// Inserts `task` (complete: id, owner, version 1, times) with its `created` event.
async fn create_one(pool: &Pool, task: &task::Model) -> Result<(), DbErr> {
    sqlx::query(CREATE_ONE_SQL)
        .bind(advisory_key(task.user_id))
        .bind(task.id)
        .bind(task.user_id)
        .bind(&task.title)
        .bind(&task.description)
        .bind(status_value(task.status))
        .bind(priority_value(task.priority))
        .bind(task.due_date)
        .bind(task.version)
        .bind(task.created_at)
        .bind(task.updated_at)
        .bind(&task.title_search)
        .bind(&task.description_search)
        .execute(pool)
        .await
        .map_err(sqlx_err)?;
    Ok(())
}

/// Inserts `tasks` and their `created` events in one statement.
async fn create(pool: &Pool, tasks: &[task::Model]) -> Result<(), DbErr> {
    fn column<T>(tasks: &[task::Model], value: impl Fn(&task::Model) -> T) -> Vec<T> {
        tasks.iter().map(value).collect()
    }
    let done = sqlx::query(CREATE_SQL)
        .bind(column(tasks, |task| advisory_key(task.user_id)))
        .bind(column(tasks, |task| task.id))
        .bind(column(tasks, |task| task.user_id))
        .bind(column(tasks, |task| task.title.clone()))
        .bind(column(tasks, |task| task.description.clone()))
        .bind(column(tasks, |task| status_value(task.status)))
        .bind(column(tasks, |task| priority_value(task.priority)))
        .bind(column(tasks, |task| task.due_date))
        .bind(column(tasks, |task| task.version))
        .bind(column(tasks, |task| task.created_at))
        .bind(column(tasks, |task| task.updated_at))
        .bind(column(tasks, |task| task.title_search.clone()))
        .bind(column(tasks, |task| task.description_search.clone()))
        .execute(pool)
        .await
        .map_err(sqlx_err)?;
    if done.rows_affected() != tasks.len() as u64 {
        return Err(DbErr::Custom(format!(
            "a batch of {} creates recorded {} events",
            tasks.len(),
            done.rows_affected()
        )));
    }
    Ok(())
}

/// Task creates that share statements (and commits) under load (see `models::batch`):
/// PostgreSQL only; `models::tasks::create` sends other backends their own way.
pub type Creates = Batcher<CreateJob>;

/// The most writes one statement commits.
const MAX_WRITE_BATCH: usize = 64;

pub struct CreateJob {
    db: DatabaseConnection,
}

/// The creates of a [`Creates`].
pub fn creates(db: DatabaseConnection) -> Arc<Creates> {
    Batcher::new(CreateJob { db }, "task_create", MAX_WRITE_BATCH)
}

impl Job for CreateJob {
    type Input = task::Model;
    type Output = task::Model;

    async fn run(&self, batch: Vec<task::Model>) -> Vec<crate::error::Result<task::Model>> {
        let pool = self.db.get_postgres_connection_pool();
        let outcome = match batch.as_slice() {
            [only] => create_one(pool, only).await,
            tasks => create(pool, tasks).await,
        };
        match outcome {
            Ok(()) => batch.into_iter().map(Ok).collect(),
            Err(err) if batch.len() == 1 => vec![Err(unauthorized_on_missing_owner(err))],
            Err(err) => {
                // The statement rolled back as a whole (one owner deleted meanwhile, a
                // lock wait over the statement timeout...): each create goes again on its
                // own, so each request gets its own outcome, not its neighbours'.
                tracing::warn!(error = %err, creates = batch.len(), "batched create failed; retrying one by one");
                let alone = batch.iter().map(|task| create_one(pool, task));
                let outcomes = futures_util::future::join_all(alone).await;
                batch
                    .into_iter()
                    .zip(outcomes)
                    .map(|(task, outcome)| {
                        outcome
                            .map(|()| task)
                            .map_err(unauthorized_on_missing_owner)
                    })
                    .collect()
            }
        }
    }
}

/// New values of a partial update, already validated and folded for search: `None`
/// leaves a column unchanged.
#[derive(Debug, Default)]
pub struct Update {
    pub title: Option<(String, String)>,
    pub description: Option<(Option<String>, Option<String>)>,
    pub status: Option<task::Status>,
    pub priority: Option<task::Priority>,
    pub due_date: Option<Option<DateTime<Utc>>>,
}

/// One task's change: `update` to `owner`'s task `id`, only at `expected_version` when
/// given.
#[derive(Debug)]
pub struct Change {
    pub owner: Uuid,
    pub id: Uuid,
    pub update: Update,
    pub expected_version: Option<i32>,
}

/// Applies `change` and records its `updated` event; `None` when no row matched.
async fn update_one(pool: &Pool, change: &Change) -> Result<Option<task::Model>, DbErr> {
    let Change {
        owner,
        id,
        update,
        expected_version,
    } = change;
    let title = update.title.as_ref();
    let description = update.description.as_ref();
    let rows = sqlx::query(UPDATE_ONE_SQL)
        .bind(advisory_key(*owner))
        .bind(id)
        .bind(owner)
        .bind(title.is_some())
        .bind(title.map(|(text, _)| text.as_str()))
        .bind(title.map(|(_, folded)| folded.as_str()))
        .bind(description.is_some())
        .bind(description.and_then(|(text, _)| text.as_deref()))
        .bind(description.and_then(|(_, folded)| folded.as_deref()))
        .bind(update.status.map(status_value))
        .bind(update.priority.map(priority_value))
        .bind(update.due_date.is_some())
        .bind(update.due_date.flatten())
        .bind(expected_version)
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    Ok(decode_all(&rows)?.pop())
}

/// Applies `changes` (of distinct tasks) and records their events in one statement; the
/// changed rows, in no particular order.
async fn update(pool: &Pool, changes: &[&Change]) -> Result<Vec<task::Model>, DbErr> {
    fn column<T>(changes: &[&Change], value: impl Fn(&Change) -> T) -> Vec<T> {
        changes.iter().map(|change| value(change)).collect()
    }
    let rows = sqlx::query(UPDATE_SQL)
        .bind(column(changes, |c| advisory_key(c.owner)))
        .bind(column(changes, |c| c.id))
        .bind(column(changes, |c| c.owner))
        .bind(column(changes, |c| c.update.title.is_some()))
        .bind(column(changes, |c| {
            c.update.title.as_ref().map(|t| t.0.clone())
        }))
        .bind(column(changes, |c| {
            c.update.title.as_ref().map(|t| t.1.clone())
        }))
        .bind(column(changes, |c| c.update.description.is_some()))
        .bind(column(changes, |c| {
            c.update.description.as_ref().and_then(|d| d.0.clone())
        }))
        .bind(column(changes, |c| {
            c.update.description.as_ref().and_then(|d| d.1.clone())
        }))
        .bind(column(changes, |c| c.update.status.map(status_value)))
        .bind(column(changes, |c| c.update.priority.map(priority_value)))
        .bind(column(changes, |c| c.update.due_date.is_some()))
        .bind(column(changes, |c| c.update.due_date.flatten()))
        .bind(column(changes, |c| c.expected_version))
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    decode_all(&rows)
}

/// Task changes that share statements (and commits) under load, as [`Creates`].
pub type Updates = Batcher<UpdateJob>;

pub struct UpdateJob {
    db: DatabaseConnection,
}

/// The updates of an [`Updates`].
pub fn updates(db: DatabaseConnection) -> Arc<Updates> {
    Batcher::new(UpdateJob { db }, "task_update", MAX_WRITE_BATCH)
}

impl Job for UpdateJob {
    type Input = Change;
    /// The changed task; `None` when no row matched.
    type Output = Option<task::Model>;

    async fn run(&self, batch: Vec<Change>) -> Vec<crate::error::Result<Option<task::Model>>> {
        let pool = self.db.get_postgres_connection_pool();
        let mut results: Vec<Option<crate::error::Result<Option<task::Model>>>> =
            batch.iter().map(|_| None).collect();
        // Rounds of distinct tasks, in queue order: two changes of one task go in
        // successive statements, each applied on top of the last.
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        while !pending.is_empty() {
            let mut round = Vec::new();
            let mut later = Vec::new();
            for index in pending {
                let id = batch[index].id;
                if round.iter().any(|&taken: &usize| batch[taken].id == id) {
                    later.push(index);
                } else {
                    round.push(index);
                }
            }
            pending = later;
            let changes: Vec<&Change> = round.iter().map(|&index| &batch[index]).collect();
            if let [only] = changes.as_slice() {
                results[round[0]] = Some(update_one(pool, only).await.map_err(Into::into));
                continue;
            }
            match update(pool, &changes).await {
                Ok(rows) => {
                    for (&index, change) in round.iter().zip(&changes) {
                        let row = rows.iter().find(|row| row.id == change.id).cloned();
                        results[index] = Some(Ok(row));
                    }
                }
                Err(err) => {
                    // Rolled back as a whole: each change goes again on its own (see
                    // `CreateJob`).
                    tracing::warn!(error = %err, updates = changes.len(), "batched update failed; retrying one by one");
                    let alone = changes.iter().map(|change| update_one(pool, change));
                    let outcomes = futures_util::future::join_all(alone).await;
                    for (&index, outcome) in round.iter().zip(outcomes) {
                        results[index] = Some(outcome.map_err(Into::into));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(crate::error::AppError::Internal(anyhow::anyhow!(
                        "a batched update was left unanswered"
                    )))
                })
            })
            .collect()
    }
}

/// Deletes `owner`'s task `id` (only at `expected_version` when given) and records its
/// `deleted` event; whether a row matched.
pub async fn delete(
    pool: &Pool,
    owner: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let done = sqlx::query(DELETE_SQL)
        .bind(advisory_key(owner))
        .bind(id)
        .bind(owner)
        .bind(expected_version)
        .bind(now)
        .execute(pool)
        .await
        .map_err(sqlx_err)?;
    Ok(done.rows_affected() == 1)
}

/// The stored forms of the enums, as the entity maps them.
fn status_value(status: task::Status) -> String {
    sea_orm::ActiveEnum::to_value(&status)
}

fn priority_value(priority: task::Priority) -> i16 {
    sea_orm::ActiveEnum::to_value(&priority)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_bind_as_the_entity_stores_them() {
        assert_eq!(status_value(task::Status::InProgress), "in_progress");
        assert_eq!(priority_value(task::Priority::High), 3);
    }
}
