//! The page query on PostgreSQL, sent through sqlx directly (as `models::tasks::postgres::by_id`
//! does): sea-query still writes the SQL for the filter shape (its values bound by
//! `sea_query_sqlx`), but the statement skips sea-orm's large generic futures and its
//! per-row decoding by column name (a map lookup and a type check per column per row,
//! 15% of a list request under callgrind); `postgres::rows` finds the columns by name once
//! per statement.

use sea_orm::sea_query::Values;
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool};
use sea_query_sqlx::SqlxValues;
use std::sync::Arc;

use sea_orm::{
    AccessMode, DatabaseBackend, DatabaseConnection, DbErr, IsolationLevel, QueryTrait, Statement,
};
use uuid::Uuid;

use crate::entities::task;
use crate::error::{AppError, Result as AppResult};
use crate::models::batch::{Job, shared_problem};
use crate::models::projects::{self, Action};
use crate::models::tasks::postgres::rows::{TaskColumns, decode_all, get, place_of, sqlx_err};

use super::cursor::Position;
use super::filter::is_default_listing;
use super::search;
use super::{Counted, DefaultListings, Dialect, Page, TaskFilter, finish_page, page_query};

/// Default listings (of one or more projects) in one statement: each listing's count and
/// page through LATERAL joins, its rows tagged with its place in the batch (`ord`, after
/// the entity's columns and before the count). The page is a LEFT JOIN: a listing past
/// its last page still gets one row, with NULL task columns, that carries its count, so
/// `total` always comes from the same snapshot as the items (a count read afterwards
/// could include a task created in between). There is
/// no outer ORDER BY: rows are put back in their listing by `ord` and each page is
/// sorted here ([`newest_first`]), which spares PostgreSQL a sort of every row of the
/// batch (14% of its time per page with `pgbench`, deploy/bench/RESULTS.md).
///
/// Each listing names its `reader`: a project's tasks are counted and listed only when the
/// reader is the project (their own Inbox) or a member with at least the role `$6` that
/// `models::projects::policy` asks for reading. The test depends on the listing alone, so
/// PostgreSQL evaluates it once per listing (a one-time filter): reading a shared project
/// costs no round trip of its own (a separate role query had cost a page of a shared
/// project 2.6 times an Inbox page's rate, 0.19 times `pgbench -S`). A reader refused gets
/// an empty page, which the caller tells apart from an empty project with the policy.
pub const DEFAULT_PAGES_SQL: &str = r#"
SELECT "page".*, "wanted"."ord", "counted"."total_matching"
FROM unnest(
  (SELECT $1::uuid[]), (SELECT $2::int8[]), (SELECT $3::int8[]), (SELECT $5::uuid[])
) WITH ORDINALITY AS "wanted" ("project", "probe", "skip", "reader", "ord")
CROSS JOIN LATERAL (
  SELECT ("wanted"."reader" = "wanted"."project" OR EXISTS (
    SELECT 1 FROM "project_members" AS "m"
    WHERE "m"."project_id" = "wanted"."project" AND "m"."user_id" = "wanted"."reader"
      AND "m"."role" >= $6::int2)) AS "allowed"
) AS "reading"
CROSS JOIN LATERAL (
  SELECT COUNT(*) AS "total_matching"
  FROM (
    SELECT 1 FROM "tasks" WHERE "tasks"."user_id" = "wanted"."project" AND "reading"."allowed"
    LIMIT (SELECT $4::int8)
  ) AS "capped"
) AS "counted"
LEFT JOIN LATERAL (
  SELECT
    "id", "user_id", "title", "description", "status", "priority", "due_date", "version",
    "created_at", "updated_at", NULL AS "title_search", NULL AS "description_search",
    "assignee_ids", "label_ids", "comment_count"
  FROM "tasks"
  WHERE "tasks"."user_id" = "wanted"."project" AND "reading"."allowed"
  ORDER BY "tasks"."created_at" DESC, "tasks"."id" DESC
  LIMIT "wanted"."probe" OFFSET "wanted"."skip"
) AS "page" ON true"#;

/// Repeatable read: one snapshot for both statements of a recount. The word index is made
/// by migration `m20261207_000010_task_search_words`.
const POSTGRES: Dialect = Dialect {
    isolation: Some(IsolationLevel::RepeatableRead),
    access: Some(AccessMode::ReadOnly),
    word_index: true,
};

/// One default listing: `probe` rows (the limit and one) after `offset`.
#[derive(Debug, Clone, Copy)]
pub struct DefaultPage {
    pub project: Uuid,
    /// Who reads it (see [`DEFAULT_PAGES_SQL`]).
    pub reader: Uuid,
    pub probe: u64,
    pub offset: u64,
}

pub struct PageJob {
    pub(super) db: sea_orm::DatabaseConnection,
}

impl Job for PageJob {
    type Input = DefaultPage;
    type Output = Counted;

    async fn run(&self, batch: Vec<DefaultPage>) -> Vec<crate::error::Result<Counted>> {
        // A lone listing takes the same statement: it is what answers past the last
        // page with a count.
        let pool = self.db.get_postgres_connection_pool();
        match fetch_defaults(pool, &batch).await {
            Ok(pages) => pages.into_iter().map(Ok).collect(),
            Err(err) => {
                // Converted (and logged) once; every caller gets the same problem.
                let err = AppError::from(err);
                batch.iter().map(|_| Err(shared_problem(&err))).collect()
            }
        }
    }
}

async fn fetch_defaults(pool: &PgPool, batch: &[DefaultPage]) -> Result<Vec<Counted>, DbErr> {
    let number = |value: u64| i64::try_from(value).map_err(|err| DbErr::Custom(err.to_string()));
    let projects: Vec<Uuid> = batch.iter().map(|page| page.project).collect();
    let readers: Vec<Uuid> = batch.iter().map(|page| page.reader).collect();
    let probes = batch
        .iter()
        .map(|page| number(page.probe))
        .collect::<Result<Vec<_>, _>>()?;
    let offsets = batch
        .iter()
        .map(|page| number(page.offset))
        .collect::<Result<Vec<_>, _>>()?;
    let rows = sqlx::query(DEFAULT_PAGES_SQL)
        .bind(projects)
        .bind(probes)
        .bind(offsets)
        .bind(number(super::TOTAL_CAP + 1)?)
        .bind(readers)
        .bind(Action::Read.least_role().stored())
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    let mut pages: Vec<Counted> = batch
        .iter()
        .map(|_| Counted {
            items: Vec::new(),
            total: None,
        })
        .collect();
    if let Some(first) = rows.first() {
        let columns = TaskColumns::of(first)?;
        let ord_at = place_of(first, "ord")?;
        let total_at = place_of(first, "total_matching")?;
        for row in &rows {
            // 1-based, from WITH ORDINALITY.
            let ord: i64 = get(row, ord_at)?;
            let page = usize::try_from(ord - 1)
                .ok()
                .and_then(|index| pages.get_mut(index))
                .ok_or_else(|| DbErr::Custom(format!("listing {ord} is not in the batch")))?;
            page.total = Some(get(row, total_at)?);
            // NULL task columns (no task decoded): the listing is past its last page.
            page.items.extend(columns.decode(row)?);
        }
    }
    for page in &mut pages {
        newest_first(&mut page.items);
    }
    Ok(pages)
}

/// The default order (`created_at` then `id`, both descending), as the page's subquery
/// reads it; PostgreSQL compares both the way Rust does (instants, then the uuids' bytes).
/// The rows nearly always arrive in this order already, which a stable sort checks in
/// one pass.
pub(super) fn newest_first(items: &mut [task::Model]) {
    items.sort_by_key(|task| std::cmp::Reverse((task.created_at, task.id)));
}

/// Whether a statement is planned for its values at every execution. A prepared
/// statement that sqlx keeps is planned for its values five times, after which PostgreSQL
/// may settle on a generic plan that ignores them; a search narrowed by words must not:
/// knowing the words `'12345':*` are rare, it takes the word index (0.1 ms on a
/// 50,000-task project), while the generic plan walks the project's newest tasks testing each
/// one, about 40 ms (wrk, 16 connections: 345 req/s against 2,300). An unnamed statement
/// is planned with its values each time, for the price of parsing it again, which a
/// single-word search does not need (1,440 req/s unnamed against 1,950 kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PlannedPerValue {
    Yes,
    No,
}

pub(super) async fn fetch(
    pool: &PgPool,
    statement: Statement,
    counted: bool,
    planned_per_value: PlannedPerValue,
) -> Result<Counted, DbErr> {
    // sea_query_sqlx converts unsigned values to `int8` and panics past `i64::MAX`: the
    // listing's only ones are its limit and offset, bounded by `validate::page`.
    let values = SqlxValues(statement.values.unwrap_or(Values(Vec::new())));
    let rows = sqlx::query_with(AssertSqlSafe(statement.sql), values)
        .persistent(planned_per_value == PlannedPerValue::No)
        .fetch_all(pool)
        .await
        .map_err(sqlx_err)?;
    let total = match rows.first() {
        Some(row) if counted => Some(get(row, place_of(row, "total_matching")?)?),
        _ => None,
    };
    let items = decode_all(&rows)?;
    Ok(Counted { items, total })
}

/// A page of the project's tasks on PostgreSQL for `reader`: after `cursor` when given
/// (keyset), else at the offset. One row more than the limit is read to know whether a next
/// page exists. Default listings share statements under load (`pages`) and check the
/// reader's right in the statement; other listings, rarer, ask the policy first.
pub async fn list_postgres(
    db: &DatabaseConnection,
    pages: &Arc<DefaultListings>,
    reader: Uuid,
    project: Uuid,
    filter: &TaskFilter,
    cursor: Option<&Position>,
) -> AppResult<Page> {
    let counted = cursor.is_none();
    let default = counted && is_default_listing(filter);
    if !default && reader != project {
        may_read(db, reader, project).await?;
    }
    let Counted {
        items,
        total: counted_total,
    } = if default {
        let page = pages
            .call(DefaultPage {
                project,
                reader,
                probe: filter.limit + 1,
                offset: filter.offset,
            })
            .await?;
        if page.items.is_empty() && reader != project {
            // Refused, or simply empty: the policy says which.
            may_read(db, reader, project).await?;
        }
        page
    } else {
        let statement =
            page_query(project, filter, cursor, POSTGRES).build(DatabaseBackend::Postgres);
        let planned_per_value = if filter
            .search
            .as_deref()
            .is_some_and(search::narrowed_by_words)
        {
            PlannedPerValue::Yes
        } else {
            PlannedPerValue::No
        };
        fetch(
            db.get_postgres_connection_pool(),
            statement,
            counted,
            planned_per_value,
        )
        .await?
    };
    finish_page(db, POSTGRES, project, filter, counted, items, counted_total).await
}

/// Whether `reader` may read `project` (`models::projects::policy`): 404 when not.
async fn may_read(db: &DatabaseConnection, reader: Uuid, project: Uuid) -> AppResult<()> {
    projects::require(db, reader, project, Action::Read, projects::NOT_FOUND).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::entities::task::{Priority, Status};

    /// A batch's rows may come in any order (its statement has no outer ORDER BY): each
    /// page is put in the listing's order, newest first, ties broken by the larger id.
    #[test]
    fn a_batched_page_is_sorted_newest_first_with_ties_by_id() {
        let at =
            |seconds: i64| DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("instant");
        let task = |id: u128, seconds| task::Model {
            id: Uuid::from_u128(id),
            project_id: Uuid::nil(),
            title: format!("{id}"),
            description: None,
            status: Status::Todo,
            priority: Priority::Medium,
            due_date: None,
            version: 1,
            created_at: at(seconds),
            updated_at: at(seconds),
            title_search: None,
            description_search: None,
            assignee_ids: None,
            label_ids: None,
            comment_count: 0,
        };
        let mut items = vec![task(1, 5), task(9, 7), task(3, 5), task(2, 9), task(7, 5)];
        newest_first(&mut items);
        let order: Vec<String> = items.into_iter().map(|task| task.title).collect();
        assert_eq!(order, ["2", "9", "7", "3", "1"]);
    }
}
