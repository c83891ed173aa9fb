//! Task writes on PostgreSQL as one statement each: the authorization, the feed locks, the
//! change and its change-feed events in a single round trip, committed by the statement
//! itself.
//!
//! The portable path (`models::tasks` over sea-orm, used on SQLite and inside a caller's
//! transaction) costs several round trips per write: BEGIN, the role, the locks, the change,
//! the events, COMMIT. Under load each round trip is a wake-up of both processes on a shared
//! core, which made a write cost about five times a plain INSERT. Here the statements are
//! fixed strings (prepared once per connection by sqlx's statement cache) whose
//! data-modifying CTEs run in this order:
//! 1. only the changes whose caller's role in the task's project is at least the one
//!    `models::projects::policy` asks for (`$least`), in a project that is not archived, go
//!    on; the others match nothing, and the store asks the policy why (404, 403 or 409).
//!    The membership is read `FOR SHARE`: a removal or demotion that held the feed locks
//!    this statement waited for has committed, but the statement's snapshot predates it;
//!    locking the row makes PostgreSQL read its newest version (a deleted row is skipped,
//!    a changed role checked again), so a member removed meanwhile writes nothing (found
//!    by an attack helper). The check names `"serialized"`, so it runs after the feed locks:
//!    a row lock taken before them would wait in a cycle with a removal that holds them
//!    and deletes the row. The caller's own Inbox (the project with their id) needs no
//!    row: it is theirs alone, and its writes take no lock;
//! 2. `serialized` takes the transaction-scoped advisory lock of every member of the
//!    projects concerned (`taskapi_feed_key`, migration 000011), in key order so that two
//!    statements never wait for each other in a cycle; it is MATERIALIZED and the change
//!    reads from it, so the change, and the event ids drawn after it, come after the locks.
//!    They are held until the statement commits, which keeps each user's event ids in
//!    commit order (see `models::events`);
//! 3. the change (`INSERT`, `UPDATE` or `DELETE` on `tasks`) returns the row as changed;
//! 4. one event per member of the task's project is inserted from that returned row: the
//!    database copies the snapshot, so no round trip is needed to render it first. No row
//!    changed, no event.
//!
//! A concurrent writer that changed the row first is handled by PostgreSQL's READ
//! COMMITTED rule for UPDATE/DELETE: the newest version is re-checked against the WHERE
//! clause (so `If-Match`'s version test sees the other writer's change) and changed from
//! there.
//!
//! (The `tasks` column `user_id` holds the task's project: see `entities::task`.)

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sqlx;
use sea_orm::{DatabaseConnection, DbErr};
use uuid::Uuid;

use crate::entities::task;
use crate::error::is_missing_parent;
use crate::models::batch::{Batcher, Job};
use crate::models::projects::policy::Action;
use crate::models::tasks::postgres::rows::{decode_all, sqlx_err};

type Pool = sqlx::PgPool;

/// The least role a task write needs, as stored (`models::projects::policy`).
fn least_role_to_write() -> i16 {
    Action::EditTasks.least_role().stored()
}

/// The change-feed events of the rows in the CTE `$rows`, of kind `$kind`, one per member
/// of the row's project: each a snapshot of the task as the change left it, copied by the
/// database from the returned row.
macro_rules! record_events {
    ($kind:literal, $rows:literal) => {
        concat!(
            r#"
INSERT INTO "task_events" (
  "user_id", "project_id", "task_id", "kind", "version", "created_at", "title",
  "description", "status", "priority", "due_date", "task_created_at", "task_updated_at",
  "assignee_ids", "label_ids", "comment_count")
SELECT
  "m"."user_id", "r"."user_id", "r"."id", '"#,
            $kind,
            r#"', "r"."version", "r"."updated_at", "r"."title", "r"."description", "r"."status",
  "r"."priority", "r"."due_date", "r"."created_at", "r"."updated_at", "r"."assignee_ids",
  "r"."label_ids", "r"."comment_count"
FROM ""#,
            $rows,
            r#"" AS "r" JOIN "project_members" AS "m" ON "m"."project_id" = "r"."user_id""#
        )
    };
}

/// The advisory locks of every member of the projects in `$projects` (a relation with a
/// `"project"` column; not named `"projects"`, which would hide the table), taken in key
/// order, as the CTE `"serialized"`.
macro_rules! lock_feeds_of {
    ($projects:literal) => {
        concat!(
            r#"
"serialized" AS MATERIALIZED (
  SELECT count(pg_advisory_xact_lock("key")) AS "locks"
  FROM (
    SELECT DISTINCT taskapi_feed_key("m"."user_id") AS "key"
    FROM "project_members" AS "m"
    WHERE "m"."project_id" IN (SELECT "project" FROM "#,
            $projects,
            r#")
    ORDER BY 1
  ) AS "ordered"
)"#
        )
    };
}

/// The columns of `"new"`, in the order the statements bind them.
macro_rules! new_columns {
    () => {
        r#""caller", "id", "user_id", "title", "description", "status", "priority", "due_date",
    "version", "created_at", "updated_at", "title_search", "description_search""#
    };
}

/// What a create does once its new rows are in `"new"`: keep those the caller may write
/// (`$14` is the least role), lock the feeds of their projects' members, insert them and
/// their events. Returns the ids created.
macro_rules! create_from_new_rows {
    () => {
        concat!(
            r#"
"allowed" AS (
  SELECT * FROM "new"
  WHERE EXISTS (
    SELECT 1 FROM "project_members" AS "m"
    WHERE "m"."project_id" = "new"."user_id" AND "m"."user_id" = "new"."caller"
      AND "m"."role" >= $14::int2)
  AND NOT EXISTS (
    SELECT 1 FROM "projects" AS "p" WHERE "p"."id" = "new"."user_id" AND "p"."archived")
),
"touched" AS (SELECT DISTINCT "user_id" AS "project" FROM "allowed"),"#,
            lock_feeds_of!(r#""touched""#),
            r#",
"created" AS (
  INSERT INTO "tasks" (
    "id", "user_id", "title", "description", "status", "priority", "due_date", "version",
    "created_at", "updated_at", "title_search", "description_search")
  SELECT
    "id", "user_id", "title", "description", "status", "priority", "due_date", "version",
    "created_at", "updated_at", "title_search", "description_search"
  FROM "allowed", "serialized"
  WHERE "allowed"."user_id" = "allowed"."caller" OR EXISTS (
    SELECT 1 FROM "project_members" AS "m"
    WHERE "m"."project_id" = "allowed"."user_id" AND "m"."user_id" = "allowed"."caller"
      AND "m"."role" >= $14::int2 AND "serialized"."locks" IS NOT NULL
    FOR SHARE)
  RETURNING *
),
"recorded" AS ("#,
            record_events!("created", "created"),
            r#"
)
SELECT "id" FROM "created""#
        )
    };
}

/// New tasks (of one or more callers and projects) in one statement: `$1` to `$13` one
/// array per column of `"new"`.
pub const CREATE_SQL: &str = concat!(
    r#"
WITH "new" AS (
  SELECT * FROM unnest(
    (SELECT $1::uuid[]), (SELECT $2::uuid[]), (SELECT $3::uuid[]), (SELECT $4::text[]),
    (SELECT $5::text[]), (SELECT $6::text[]), (SELECT $7::int2[]), (SELECT $8::timestamptz[]),
    (SELECT $9::int4[]), (SELECT $10::timestamptz[]), (SELECT $11::timestamptz[]),
    (SELECT $12::text[]), (SELECT $13::text[])
  ) AS "n" ("#,
    new_columns!(),
    r#")
),"#,
    create_from_new_rows!()
);

/// One new task: [`CREATE_SQL`] with one value per column instead of arrays, which a lone
/// call would pay for nothing (see `by_id::LOOKUP_ONE_SQL`).
const CREATE_ONE_SQL: &str = concat!(
    r#"
WITH "new" AS (
  SELECT * FROM (VALUES (
    $1::uuid, $2::uuid, $3::uuid, $4::text, $5::text, $6::text, $7::int2,
    $8::timestamptz, $9::int4, $10::timestamptz, $11::timestamptz, $12::text, $13::text
  )) AS "n" ("#,
    new_columns!(),
    r#")
),"#,
    create_from_new_rows!()
);

/// What a change does once its changes are in `"changes"` (never the same task twice: an
/// UPDATE joined to two rows for one target applies only one of them): the feed locks of
/// the members of the tasks' projects, as a create, then each change the caller may make
/// (`$14` is the least role). A change's `*_set` flags say whether the title, the
/// description and the due date change (the description and due date may change to NULL);
/// status and priority are never NULL, so NULL there means unchanged; `expected` is the
/// `If-Match` version, NULL when none. `updated_at` is taken in the statement, after the
/// locks, and never goes back: a time taken before queueing could be older than the change
/// that committed first. The version stops at the largest `int4`: a change past it matches
/// nothing, and `models::tasks` answers 409. Returns the changed rows; a change whose row
/// is not returned matched nothing.
macro_rules! update_from_changes {
    () => {
        concat!(
            r#"
"touched" AS (
  SELECT DISTINCT "tasks"."user_id" AS "project"
  FROM "changes" JOIN "tasks" ON "tasks"."id" = "changes"."id"
),"#,
            lock_feeds_of!(r#""touched""#),
            r#",
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
  WHERE "tasks"."id" = "c"."id"
    AND ("tasks"."user_id" = "c"."caller" OR EXISTS (
      SELECT 1 FROM "project_members" AS "m"
      WHERE "m"."project_id" = "tasks"."user_id" AND "m"."user_id" = "c"."caller"
        AND "m"."role" >= $14::int2 AND "serialized"."locks" IS NOT NULL
      FOR SHARE))
    AND NOT EXISTS (
      SELECT 1 FROM "projects" AS "p" WHERE "p"."id" = "tasks"."user_id" AND "p"."archived")
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
        r#""caller", "id", "title_set", "title", "title_search", "description_set",
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
    (SELECT $1::uuid[]), (SELECT $2::uuid[]), (SELECT $3::bool[]), (SELECT $4::text[]),
    (SELECT $5::text[]), (SELECT $6::bool[]), (SELECT $7::text[]), (SELECT $8::text[]),
    (SELECT $9::text[]), (SELECT $10::int2[]), (SELECT $11::bool[]),
    (SELECT $12::timestamptz[]), (SELECT $13::int4[])
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
    $1::uuid, $2::uuid, $3::bool, $4::text, $5::text, $6::bool, $7::text, $8::text,
    $9::text, $10::int2, $11::bool, $12::timestamptz, $13::int4
  )) AS "c" ("#,
    change_columns!(),
    r#")
),"#,
    update_from_changes!()
);

/// `$1` is the task, `$2` the caller, `$3` the `If-Match` version (NULL when none), `$4` the
/// time of the tombstones, `$5` the least role. Returns the deleted task's project.
const DELETE_SQL: &str = concat!(
    r#"
WITH "touched" AS (SELECT "user_id" AS "project" FROM "tasks" WHERE "id" = $1),"#,
    lock_feeds_of!(r#""touched""#),
    r#",
"deleted" AS (
  DELETE FROM "tasks" USING "serialized"
  WHERE "id" = $1 AND ($3::int4 IS NULL OR "version" = $3)
    AND ("tasks"."user_id" = $2 OR EXISTS (
      SELECT 1 FROM "project_members" AS "m"
      WHERE "m"."project_id" = "tasks"."user_id" AND "m"."user_id" = $2
        AND "m"."role" >= $5::int2 AND "serialized"."locks" IS NOT NULL
      FOR SHARE))
    AND NOT EXISTS (
      SELECT 1 FROM "projects" AS "p" WHERE "p"."id" = "tasks"."user_id" AND "p"."archived")
  RETURNING "id", "user_id", "version"
),
"recorded" AS (
  INSERT INTO "task_events" ("user_id", "project_id", "task_id", "kind", "version", "created_at")
  SELECT "m"."user_id", "d"."user_id", "d"."id", 'deleted', "d"."version", $4
  FROM "deleted" AS "d" JOIN "project_members" AS "m" ON "m"."project_id" = "d"."user_id"
)
SELECT "user_id" FROM "deleted""#
);

/// A task to create, and who asks.
#[derive(Debug, Clone)]
pub struct NewTask {
    pub caller: Uuid,
    pub task: task::Model,
}

/// Inserts `new.task` (complete: id, project, version 1, times) with its `created` events,
/// if the caller may; whether it was.
async fn create_one(pool: &Pool, new: &NewTask) -> Result<bool, DbErr> {
    let task = &new.task;
    let created = sqlx::query(CREATE_ONE_SQL)
        .bind(new.caller)
        .bind(task.id)
        .bind(task.project_id)
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
        .bind(least_role_to_write())
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    Ok(!created.is_empty())
}

/// Inserts those of `tasks` their callers may create, with their `created` events, in one
/// statement; the ids created.
async fn create(pool: &Pool, tasks: &[NewTask]) -> Result<Vec<Uuid>, DbErr> {
    fn column<T>(tasks: &[NewTask], value: impl Fn(&NewTask) -> T) -> Vec<T> {
        tasks.iter().map(value).collect()
    }
    let rows = sqlx::query(CREATE_SQL)
        .bind(column(tasks, |new| new.caller))
        .bind(column(tasks, |new| new.task.id))
        .bind(column(tasks, |new| new.task.project_id))
        .bind(column(tasks, |new| new.task.title.clone()))
        .bind(column(tasks, |new| new.task.description.clone()))
        .bind(column(tasks, |new| status_value(new.task.status)))
        .bind(column(tasks, |new| priority_value(new.task.priority)))
        .bind(column(tasks, |new| new.task.due_date))
        .bind(column(tasks, |new| new.task.version))
        .bind(column(tasks, |new| new.task.created_at))
        .bind(column(tasks, |new| new.task.updated_at))
        .bind(column(tasks, |new| new.task.title_search.clone()))
        .bind(column(tasks, |new| new.task.description_search.clone()))
        .bind(least_role_to_write())
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    use sea_orm::sqlx::Row;
    rows.iter()
        .map(|row| row.try_get::<Uuid, _>("id").map_err(sqlx_err))
        .collect()
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
    type Input = NewTask;
    /// The created task; `None` when the caller may not create it there.
    type Output = Option<task::Model>;

    async fn run(&self, batch: Vec<NewTask>) -> Vec<crate::error::Result<Option<task::Model>>> {
        let pool = self.db.get_postgres_connection_pool();
        if let [only] = batch.as_slice() {
            let outcome = create_one(pool, only).await;
            return vec![created_or_refused(outcome, only.task.clone())];
        }
        match create(pool, &batch).await {
            Ok(created) => batch
                .into_iter()
                .map(|new| Ok(created.contains(&new.task.id).then_some(new.task)))
                .collect(),
            Err(err) => {
                // The statement rolled back as a whole (a project deleted meanwhile, a
                // lock wait over the statement timeout...): each create goes again on its
                // own, so each request gets its own outcome, not its neighbours'.
                tracing::warn!(error = %err, creates = batch.len(), "batched create failed; retrying one by one");
                let alone = batch.iter().map(|new| create_one(pool, new));
                let outcomes = futures_util::future::join_all(alone).await;
                batch
                    .into_iter()
                    .zip(outcomes)
                    .map(|(new, outcome)| created_or_refused(outcome, new.task))
                    .collect()
            }
        }
    }
}

/// A create's outcome for its caller: the task, or `None` when it was not written because
/// the caller may not, or because its project was deleted while the statement ran (a
/// foreign-key failure); the store asks the policy which, and answers 404, 403 or (the
/// caller's own account gone) 401.
fn created_or_refused(
    outcome: Result<bool, DbErr>,
    task: task::Model,
) -> crate::error::Result<Option<task::Model>> {
    match outcome {
        Ok(created) => Ok(created.then_some(task)),
        Err(err) if is_missing_parent(&err) => Ok(None),
        Err(err) => Err(err.into()),
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
    /// Set only through the checked path (`models::assignments`), never by these statements.
    pub assignees: Option<Vec<Uuid>>,
    pub labels: Option<Vec<Uuid>>,
    pub project: Option<Uuid>,
}

impl Update {
    /// Whether the change sets assignees or labels or moves the task: such a change is
    /// checked against the projects' members and labels in its own transaction
    /// (`PortableTasks::update`), not by the one-statement writes here.
    pub fn needs_checks(&self) -> bool {
        self.assignees.is_some() || self.labels.is_some() || self.project.is_some()
    }
}

/// One task's change: `update` to task `id` asked by `caller`, only at `expected_version`
/// when given.
#[derive(Debug)]
pub struct Change {
    pub caller: Uuid,
    pub id: Uuid,
    pub update: Update,
    pub expected_version: Option<i32>,
}

/// Applies `change` and records its `updated` event; `None` when no row matched.
async fn update_one(pool: &Pool, change: &Change) -> Result<Option<task::Model>, DbErr> {
    let Change {
        caller,
        id,
        update,
        expected_version,
    } = change;
    let title = update.title.as_ref();
    let description = update.description.as_ref();
    let rows = sqlx::query(UPDATE_ONE_SQL)
        .bind(caller)
        .bind(id)
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
        .bind(least_role_to_write())
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
        .bind(column(changes, |c| c.caller))
        .bind(column(changes, |c| c.id))
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
        .bind(least_role_to_write())
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

/// Deletes task `id` for `caller` (only at `expected_version` when given) and records its
/// `deleted` events; the task's project when a row matched.
pub async fn delete(
    pool: &Pool,
    caller: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
    now: DateTime<Utc>,
) -> Result<Option<Uuid>, DbErr> {
    use sea_orm::sqlx::Row;
    let rows = sqlx::query(DELETE_SQL)
        .bind(id)
        .bind(caller)
        .bind(expected_version)
        .bind(now)
        .bind(least_role_to_write())
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    rows.first()
        .map(|row| row.try_get::<Uuid, _>("user_id"))
        .transpose()
        .map_err(sqlx_err)
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
