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
//!    (`events::advisory_key`); it is MATERIALIZED and the change reads from it, so the
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

use chrono::{DateTime, Utc};
use sea_orm::DbErr;
use sea_orm::sqlx::{self, postgres::PgArguments, query::Query};
use uuid::Uuid;

use crate::entities::task;
use crate::models::events::advisory_key;
use crate::models::task_rows::{decode, sqlx_err};

type Pool = sqlx::PgPool;

const CREATE_SQL: &str = r#"WITH "serialized" AS MATERIALIZED (SELECT pg_advisory_xact_lock($1)),
"created" AS (
  INSERT INTO "tasks" ("id", "user_id", "title", "description", "status", "priority", "due_date", "version", "created_at", "updated_at", "title_search", "description_search")
  SELECT $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13 FROM "serialized"
  RETURNING "id", "user_id", "title", "description", "status", "priority", "due_date", "version", "created_at", "updated_at"
)
INSERT INTO "task_events" ("user_id", "task_id", "kind", "version", "created_at", "title", "description", "status", "priority", "due_date", "task_created_at", "task_updated_at")
SELECT "user_id", "id", 'created', "version", "updated_at", "title", "description", "status", "priority", "due_date", "created_at", "updated_at" FROM "created""#;

/// Returns every column of `tasks` in the entity's order (a test keeps them in step).
/// `$4`, `$7` and `$12` say whether the title, the description and the due date change
/// (the description and due date may change to NULL); status and priority are never NULL,
/// so NULL there means unchanged. `$15` is the `If-Match` version, NULL when none.
const UPDATE_SQL: &str = r#"WITH "serialized" AS MATERIALIZED (SELECT pg_advisory_xact_lock($1)),
"updated" AS (
  UPDATE "tasks" SET
    "title" = CASE WHEN $4 THEN $5 ELSE "title" END,
    "title_search" = CASE WHEN $4 THEN $6 ELSE "title_search" END,
    "description" = CASE WHEN $7 THEN $8 ELSE "description" END,
    "description_search" = CASE WHEN $7 THEN $9 ELSE "description_search" END,
    "status" = COALESCE($10, "status"),
    "priority" = COALESCE($11, "priority"),
    "due_date" = CASE WHEN $12 THEN $13 ELSE "due_date" END,
    "version" = "version" + 1,
    "updated_at" = $14
  FROM "serialized"
  WHERE "id" = $2 AND "user_id" = $3 AND ($15::int4 IS NULL OR "version" = $15)
  RETURNING "tasks".*
),
"recorded" AS (
  INSERT INTO "task_events" ("user_id", "task_id", "kind", "version", "created_at", "title", "description", "status", "priority", "due_date", "task_created_at", "task_updated_at")
  SELECT "user_id", "id", 'updated', "version", "updated_at", "title", "description", "status", "priority", "due_date", "created_at", "updated_at" FROM "updated"
)
SELECT "id", "user_id", "title", "description", "status", "priority", "due_date", "version", "created_at", "updated_at", "title_search", "description_search" FROM "updated""#;

/// `$4` is the `If-Match` version, NULL when none; `$5` the time of the tombstone.
const DELETE_SQL: &str = r#"WITH "serialized" AS MATERIALIZED (SELECT pg_advisory_xact_lock($1)),
"deleted" AS (
  DELETE FROM "tasks" USING "serialized"
  WHERE "id" = $2 AND "user_id" = $3 AND ($4::int4 IS NULL OR "version" = $4)
  RETURNING "id", "user_id", "version"
)
INSERT INTO "task_events" ("user_id", "task_id", "kind", "version", "created_at")
SELECT "user_id", "id", 'deleted', "version", $5 FROM "deleted""#;

/// Inserts `task` (complete: id, owner, version 1, times) with its `created` event.
pub async fn create(pool: &Pool, task: &task::Model) -> Result<(), DbErr> {
    sqlx::query(CREATE_SQL)
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

/// Applies `update` to `owner`'s task `id` (only at `expected_version` when given) and
/// records its `updated` event; `None` when no row matched.
pub async fn update(
    pool: &Pool,
    owner: Uuid,
    id: Uuid,
    update: Update,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<Option<task::Model>, DbErr> {
    let (title_set, (title, title_search)) = present(update.title);
    let (description_set, (description, description_search)) = present(update.description);
    let (due_date_set, due_date) = present(update.due_date);
    let row = bind_update(sqlx::query(UPDATE_SQL), owner, id)
        .bind(title_set)
        .bind(title)
        .bind(title_search)
        .bind(description_set)
        .bind(description)
        .bind(description_search)
        .bind(update.status.map(status_value))
        .bind(update.priority.map(priority_value))
        .bind(due_date_set)
        .bind(due_date)
        .bind(now)
        .bind(expected_version)
        .fetch_optional(pool)
        .await
        .map_err(sqlx_err)?;
    row.as_ref().map(decode).transpose()
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
    let done = bind_update(sqlx::query(DELETE_SQL), owner, id)
        .bind(expected_version)
        .bind(now)
        .execute(pool)
        .await
        .map_err(sqlx_err)?;
    Ok(done.rows_affected() == 1)
}

/// `$1` to `$3` of the UPDATE and the DELETE: the owner's lock key, the task, the owner.
fn bind_update(
    query: Query<'static, sqlx::Postgres, PgArguments>,
    owner: Uuid,
    id: Uuid,
) -> Query<'static, sqlx::Postgres, PgArguments> {
    query.bind(advisory_key(owner)).bind(id).bind(owner)
}

/// A CASE flag and the value it guards (the type's default when absent, never written).
fn present<T: Default>(value: Option<T>) -> (bool, T) {
    match value {
        Some(value) => (true, value),
        None => (false, T::default()),
    }
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

    /// A column added to the entity must be returned by the UPDATE too, or decoding the
    /// row would fail at run time.
    #[test]
    fn the_update_returns_every_column_of_the_entity() {
        let listed = crate::models::task_rows::quoted_columns(None);
        let returned = UPDATE_SQL
            .rsplit_once("SELECT ")
            .and_then(|(_, last)| last.strip_suffix(r#" FROM "updated""#))
            .expect("the final SELECT");
        let returned: Vec<String> = returned.split(", ").map(str::to_string).collect();
        assert_eq!(returned, listed);
    }

    #[test]
    fn enums_bind_as_the_entity_stores_them() {
        assert_eq!(status_value(task::Status::InProgress), "in_progress");
        assert_eq!(priority_value(task::Priority::High), 3);
    }
}
