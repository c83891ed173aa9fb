//! Listing an owner's tasks: filters, sorts, offset and keyset pages.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use migration::fold_for_search;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, IdenStatic, Iterable, Order, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select,
};
use uuid::Uuid;

use crate::entities::task::{self, Priority, Status};
use crate::error::{AppError, Result};
use crate::models::batch::Batcher;
use crate::models::task_cursor::{Binding, CURSOR_MAX, Position, SortKey};
use crate::requests::{ListTasksQuery, TaskSort};
use crate::validate::{self, Errors};

/// Validated listing parameters.
#[derive(Debug, Clone)]
pub struct TaskFilter {
    pub limit: u64,
    pub offset: u64,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    pub search: Option<String>,
    pub sort: TaskSort,
    /// A keyset cursor from an earlier page (still to be verified: see [`Self::binding`]).
    pub cursor: Option<String>,
}

impl TaskFilter {
    /// What a cursor for this listing is bound to: the owner, the sort and every filter,
    /// in a canonical text (the limit may change from page to page).
    pub fn binding(&self, owner: Uuid) -> Binding {
        let instant = |at: &Option<DateTime<Utc>>| at.map(|at| at.timestamp_micros());
        Binding {
            owner,
            sort: self.sort,
            filters: format!(
                "status={:?};priority={:?};due_before={:?};due_after={:?};q={:?}",
                self.status,
                self.priority,
                instant(&self.due_before),
                instant(&self.due_after),
                self.search,
            ),
        }
    }
}

impl TryFrom<ListTasksQuery> for TaskFilter {
    type Error = AppError;

    fn try_from(query: ListTasksQuery) -> Result<Self> {
        let mut errors = Errors::default();
        let (limit, offset) = validate::page(&mut errors, query.limit, query.offset);
        let search = validate::search(&mut errors, query.q);
        if query.cursor.is_some() && query.offset.is_some() {
            errors.add(
                "cursor",
                "cannot be combined with offset: a cursor already says where the page starts",
            );
        }
        if query
            .cursor
            .as_ref()
            .is_some_and(|cursor| cursor.len() > CURSOR_MAX)
        {
            errors.add("cursor", format!("must be at most {CURSOR_MAX} characters"));
        }
        errors.finish(TaskFilter {
            limit,
            offset,
            status: query.status,
            priority: query.priority,
            due_before: query.due_before.map(Into::into),
            due_after: query.due_after.map(Into::into),
            search,
            sort: query.sort.unwrap_or_default(),
            cursor: query.cursor,
        })
    }
}

fn filtered(owner: Uuid, filter: &TaskFilter) -> Select<task::Entity> {
    let mut query = task::Entity::find().filter(task::Column::UserId.eq(owner));
    if let Some(status) = filter.status {
        query = query.filter(task::Column::Status.eq(status));
    }
    if let Some(priority) = filter.priority {
        query = query.filter(task::Column::Priority.eq(priority));
    }
    if let Some(before) = filter.due_before {
        query = query.filter(task::Column::DueDate.lt(before));
    }
    if let Some(after) = filter.due_after {
        query = query.filter(task::Column::DueDate.gt(after));
    }
    if let Some(search) = &filter.search {
        query = query.filter(search_condition(search));
    }
    query
}

/// `q` matches a substring of the title or the description, compared case-insensitively by
/// Rust's Unicode lower case on both databases: the term is folded here and compared with
/// the folded copies written with every task (`fold_for_search`), so SQLite (whose
/// `lower()` and `LIKE` only know ASCII) and PostgreSQL match the same rows, with no
/// function call per row. Rows an older binary inserted before it knew the folded columns
/// (`title_search` NULL) fall back to the database's `lower()`.
fn search_condition(search: &str) -> Condition {
    let pattern = format!("%{}%", escape_like(&fold_for_search(search)));
    let like =
        |expr: SimpleExpr| -> SimpleExpr { expr.like(LikeExpr::new(pattern.clone()).escape('\\')) };
    let lowered = |column: task::Column| like(Func::lower(Expr::col(column)).into());
    Condition::any()
        .add(like(Expr::col(task::Column::TitleSearch)))
        .add(like(Expr::col(task::Column::DescriptionSearch)))
        .add(
            Condition::all()
                .add(task::Column::TitleSearch.is_null())
                .add(
                    Condition::any()
                        .add(lowered(task::Column::Title))
                        .add(lowered(task::Column::Description)),
                ),
        )
}

/// `%` and `_` in a search are literal characters, not wildcards.
fn escape_like(raw: &str) -> String {
    let mut escaped = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The column a sort orders by, and its direction. Ties are broken by the id in the same
/// direction; `due_date` also puts NULLs last in both directions (see [`sorted`]).
fn sort_spec(sort: TaskSort) -> (task::Column, Order) {
    match sort {
        TaskSort::CreatedAt => (task::Column::CreatedAt, Order::Asc),
        TaskSort::CreatedAtDesc => (task::Column::CreatedAt, Order::Desc),
        TaskSort::DueDate => (task::Column::DueDate, Order::Asc),
        TaskSort::DueDateDesc => (task::Column::DueDate, Order::Desc),
        TaskSort::Priority => (task::Column::Priority, Order::Asc),
        TaskSort::PriorityDesc => (task::Column::Priority, Order::Desc),
        TaskSort::Title => (task::Column::Title, Order::Asc),
        TaskSort::TitleDesc => (task::Column::Title, Order::Desc),
    }
}

fn sorted(query: Select<task::Entity>, sort: TaskSort) -> Select<task::Entity> {
    let (column, order) = sort_spec(sort);
    let query = if matches!(column, task::Column::DueDate) {
        // Tasks without a due date come last either way, on both PostgreSQL and SQLite.
        query.order_by_asc(Expr::col(task::Column::DueDate).is_null())
    } else {
        query
    };
    // The id (UUIDv7, time-ordered) breaks ties so pages never overlap or skip rows.
    query
        .order_by(column, order.clone())
        .order_by(task::Column::Id, order)
}

/// The entity's columns in declaration order, with NULL in place of the two search copies
/// (`title_search`, `description_search`): a page only shows its tasks, and the copies were
/// a third of the bytes PostgreSQL sent, decrypted and decoded per row. A listed task's
/// model therefore has `None` there; it is never written back.
fn listed(query: Select<task::Entity>) -> Select<task::Entity> {
    let shown = task::Column::iter().filter(|column| {
        SEARCH_COPIES
            .iter()
            .all(|copy| copy.as_str() != column.as_str())
    });
    SEARCH_COPIES
        .iter()
        .fold(query.select_only().columns(shown), |query, column| {
            query.column_as(Expr::cust("NULL"), column.as_str())
        })
}

/// The columns a listing leaves out; the entity's last two, so the selected columns keep
/// their positions (what `task_rows::decode` reads).
const SEARCH_COPIES: [task::Column; 2] =
    [task::Column::TitleSearch, task::Column::DescriptionSearch];

/// The rows that come strictly after `position` in the order [`sorted`] gives: a row-value
/// comparison `(column, id) > (key, id)` (`<` descending), which both databases evaluate
/// like their `ORDER BY` and PostgreSQL turns into a range scan of an index on
/// `(user_id, column, id)` (`idx_tasks_user_created_id` for the default sort). For
/// `due_date`, whose NULLs sort last both ways: after a dated row come later-dated rows and
/// then every undated one; after an undated row, only undated rows with a later id.
fn after(position: &Position, sort: TaskSort) -> Condition {
    let (column, order) = sort_spec(sort);
    let beyond = |left: Expr, right: Expr| match order {
        Order::Desc => left.lt(right),
        _ => left.gt(right),
    };
    let id = Expr::value(position.id);
    let pair = |key: Expr| {
        beyond(
            Expr::tuple([Expr::col(column), Expr::col(task::Column::Id)]),
            Expr::tuple([key, id.clone()]),
        )
    };
    match &position.key {
        SortKey::MaybeInstant(None) => Condition::all()
            .add(Expr::col(column).is_null())
            .add(beyond(Expr::col(task::Column::Id), id.clone())),
        SortKey::MaybeInstant(Some(due)) => Condition::any()
            .add(pair(Expr::value(*due)))
            .add(Expr::col(column).is_null()),
        SortKey::Instant(at) => Condition::all().add(pair(Expr::value(*at))),
        SortKey::Priority(level) => Condition::all().add(pair(Expr::value(*level))),
        SortKey::Text(text) => Condition::all().add(pair(Expr::value(text.clone()))),
    }
}

/// A page row plus the number of rows matching the filters, computed by the same statement
/// (see [`page_query`]) so a page costs one round trip instead of two.
#[derive(Debug, FromQueryResult)]
struct CountedTask {
    #[sea_orm(nested)]
    task: task::Model,
    total_matching: i64,
}

/// One page of a listing.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<task::Model>,
    /// Tasks matching the filters across all pages, at most [`TOTAL_CAP`]; `None` on a
    /// page read after a cursor, where counting would cost what the cursor saves.
    pub total: Option<u64>,
    /// More than [`TOTAL_CAP`] tasks match: `total` is the cap, not the count.
    pub total_capped: bool,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

/// The page's query: one row more than the limit, after `cursor` when given. Without a
/// cursor the page also carries the number of matches (one round trip instead of two);
/// after a cursor it does not (see `Page::total`).
fn page_query(owner: Uuid, filter: &TaskFilter, cursor: Option<&Position>) -> Select<task::Entity> {
    let query = listed(sorted(filtered(owner, filter), filter.sort)).limit(filter.limit + 1);
    match cursor {
        Some(position) => query.filter(after(position, filter.sort)),
        None => query
            .column_as(matching_count(owner, filter), "total_matching")
            .offset(filter.offset),
    }
}

/// `total` counts at most this many matches; beyond it the page says `total_capped` and
/// `total` is this number. Counting every match of an owner with tens of thousands of tasks
/// cost more than the page itself (a full count per request); a count that stops after
/// `TOTAL_CAP + 1` rows costs at most that many index entries, whatever the owner holds.
pub const TOTAL_CAP: u64 = 1000;

/// The owner's tasks matching the filters, counted up to [`TOTAL_CAP`] + 1, as a scalar
/// subquery of the page's statement. PostgreSQL runs it once (an InitPlan), from an index
/// alone when one serves the filters; `COUNT(*) OVER ()` instead kept every match, whole,
/// to count it.
fn matching_count(owner: Uuid, filter: &TaskFilter) -> SimpleExpr {
    SimpleExpr::SubQuery(None, Box::new(capped_count(owner, filter).into()))
}

/// `SELECT COUNT(*) FROM (SELECT 1 FROM tasks WHERE … LIMIT TOTAL_CAP + 1)`.
fn capped_count(owner: Uuid, filter: &TaskFilter) -> sea_orm::sea_query::SelectStatement {
    let matches = filtered(owner, filter)
        .select_only()
        .column_as(Expr::cust("1"), "one")
        .limit(TOTAL_CAP + 1)
        .into_query();
    sea_orm::sea_query::Query::select()
        .expr_as(
            Expr::cust("COUNT(*)"),
            sea_orm::sea_query::Alias::new("matching"),
        )
        .from_subquery(matches, sea_orm::sea_query::Alias::new("capped"))
        .to_owned()
}

/// The most frequent listing: every task, newest first, by offset (any limit and offset).
fn is_default_listing(filter: &TaskFilter) -> bool {
    filter.status.is_none()
        && filter.priority.is_none()
        && filter.due_before.is_none()
        && filter.due_after.is_none()
        && filter.search.is_none()
        && filter.cursor.is_none()
        && matches!(filter.sort, TaskSort::CreatedAtDesc)
}

/// A page of the owner's tasks on PostgreSQL: after `cursor` when given (keyset), else at
/// the offset. One row more than the limit is read to know whether a next page exists.
/// Default listings share statements under load (`pages`).
pub async fn list_postgres(
    db: &DatabaseConnection,
    pages: &Arc<FirstPages>,
    owner: Uuid,
    filter: &TaskFilter,
    cursor: Option<&Position>,
) -> Result<Page> {
    let counted = cursor.is_none();
    let (items, counted_total) = if counted && is_default_listing(filter) {
        pages
            .call(postgres::DefaultPage {
                owner,
                probe: filter.limit + 1,
                offset: filter.offset,
            })
            .await?
    } else {
        let statement = page_query(owner, filter, cursor).build(DatabaseBackend::Postgres);
        postgres::fetch(db.get_postgres_connection_pool(), statement, counted).await?
    };
    finish_page(db, owner, filter, counted, items, counted_total).await
}

/// [`list_postgres`] through sea-orm's query builder, for the portable store (SQLite).
pub async fn list_portable(
    db: &DatabaseConnection,
    owner: Uuid,
    filter: &TaskFilter,
    cursor: Option<&Position>,
) -> Result<Page> {
    let counted = cursor.is_none();
    let (items, counted_total) =
        fetch_generic(db, page_query(owner, filter, cursor), counted).await?;
    finish_page(db, owner, filter, counted, items, counted_total).await
}

/// The page from its rows (one more than the limit, if there are) and the count they
/// carried.
async fn finish_page(
    db: &DatabaseConnection,
    owner: Uuid,
    filter: &TaskFilter,
    counted: bool,
    mut items: Vec<task::Model>,
    counted_total: Option<i64>,
) -> Result<Page> {
    let total = match (counted, counted_total) {
        (false, _) => None,
        (true, Some(total)) => Some(u64::try_from(total).unwrap_or(0)),
        // Past the last page of a filtered listing the count has no row to ride on; count
        // separately (a second snapshot; the default listing on PostgreSQL always gets
        // its count from the page's own statement).
        (true, None) if filter.offset > 0 => {
            let statement = db
                .get_database_backend()
                .build(&capped_count(owner, filter));
            let row = Box::pin(db.query_one_raw(statement)).await?;
            let counted = row
                .map(|row| row.try_get::<i64>("", "matching"))
                .transpose()?;
            Some(u64::try_from(counted.unwrap_or(0)).unwrap_or(0))
        }
        (true, None) => Some(0),
    };
    let total_capped = total.is_some_and(|total| total > TOTAL_CAP);
    let total = total.map(|total| Ord::min(total, TOTAL_CAP));
    let more = u64::try_from(items.len()).unwrap_or(u64::MAX) > filter.limit;
    items.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
    let next = if more {
        items.last().map(|last| Position::of(last, filter.sort))
    } else {
        None
    };
    Ok(Page {
        items,
        total,
        total_capped,
        next,
    })
}

pub use postgres::DefaultPage;

/// Default listings (every task, newest first, by offset) that share statements under load
/// (see `models::batch`); PostgreSQL only.
pub type FirstPages = Batcher<postgres::PageJob>;

/// The most listings one statement answers.
const MAX_PAGE_BATCH: usize = 32;

/// The default listings of a [`FirstPages`].
pub fn first_pages(db: DatabaseConnection) -> Arc<FirstPages> {
    Batcher::new(postgres::PageJob { db }, "task_list", MAX_PAGE_BATCH)
}

/// The page's rows through sea-orm (SQLite), with the count of the first row when
/// the query carries one.
async fn fetch_generic(
    db: &DatabaseConnection,
    query: Select<task::Entity>,
    counted: bool,
) -> Result<(Vec<task::Model>, Option<i64>)> {
    if !counted {
        return Ok((query.all(db).await?, None));
    }
    let rows = query.into_model::<CountedTask>().all(db).await?;
    let total = rows.first().map(|row| row.total_matching);
    Ok((rows.into_iter().map(|row| row.task).collect(), total))
}

/// The page query on PostgreSQL, sent through sqlx directly (as `models::task_by_id`
/// does): sea-query still writes the SQL for the filter shape, but the statement skips
/// sea-orm's large generic futures and its decoding by column name (a map lookup and a
/// type check per column per row, 15% of a list request under callgrind). Columns are
/// read by position: `Entity::find()` selects the entity's columns in declaration order
/// and the count comes last (a test keeps the two in step).
mod postgres {
    use sea_orm::sea_query::{Value, Values};
    use sea_orm::sqlx::postgres::PgArguments;
    use sea_orm::sqlx::{self, Arguments, AssertSqlSafe, PgPool, Row, SqlSafeStr};
    use sea_orm::{DbErr, Statement};
    use uuid::Uuid;

    use crate::entities::task;
    use crate::error::AppError;
    use crate::models::batch::{Job, shared_problem};
    use crate::models::task_rows::{COLUMNS, decode, sqlx_err};

    /// Default listings (of one or more owners) in one statement: each listing's count and
    /// page through LATERAL joins, its rows tagged with its place in the batch (`ord`, after
    /// the entity's columns and before the count). The page is a LEFT JOIN: a listing past
    /// its last page still gets one row, with NULL task columns, that carries its count, so
    /// `total` always comes from the same snapshot as the items (a count read afterwards
    /// could include a task created in between: seen by the outside attack on #14). There is
    /// no outer ORDER BY: rows are put back in their listing by `ord` and each page is
    /// sorted here ([`newest_first`]), which spares PostgreSQL a sort of every row of the
    /// batch (14% of its time per page with `pgbench`, deploy/bench/RESULTS.md).
    pub(super) const DEFAULT_PAGES_SQL: &str = r#"SELECT "page".*, "wanted"."ord", "counted"."total_matching" FROM unnest($1::uuid[], $2::int8[], $3::int8[]) WITH ORDINALITY AS "wanted" ("owner", "probe", "skip", "ord") CROSS JOIN LATERAL (SELECT COUNT(*) AS "total_matching" FROM (SELECT 1 FROM "tasks" WHERE "tasks"."user_id" = "wanted"."owner" LIMIT $4) AS "capped") AS "counted" LEFT JOIN LATERAL (SELECT "tasks"."id", "tasks"."user_id", "tasks"."title", "tasks"."description", "tasks"."status", "tasks"."priority", "tasks"."due_date", "tasks"."version", "tasks"."created_at", "tasks"."updated_at", NULL AS "title_search", NULL AS "description_search" FROM "tasks" WHERE "tasks"."user_id" = "wanted"."owner" ORDER BY "tasks"."created_at" DESC, "tasks"."id" DESC LIMIT "wanted"."probe" OFFSET "wanted"."skip") AS "page" ON true"#;

    /// One default listing: `probe` rows (the limit and one) after `offset`.
    #[derive(Debug, Clone, Copy)]
    pub struct DefaultPage {
        pub owner: Uuid,
        pub probe: u64,
        pub offset: u64,
    }

    /// A page's rows and the count of the owner's tasks.
    pub type Counted = (Vec<task::Model>, Option<i64>);

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
        let number =
            |value: u64| i64::try_from(value).map_err(|err| DbErr::Custom(err.to_string()));
        let owners: Vec<Uuid> = batch.iter().map(|page| page.owner).collect();
        let probes = batch
            .iter()
            .map(|page| number(page.probe))
            .collect::<Result<Vec<_>, _>>()?;
        let offsets = batch
            .iter()
            .map(|page| number(page.offset))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = sqlx::query(DEFAULT_PAGES_SQL)
            .bind(owners)
            .bind(probes)
            .bind(offsets)
            .bind(number(super::TOTAL_CAP + 1)?)
            .fetch_all(pool)
            .await
            .map_err(sqlx_err)?;
        let mut pages: Vec<Counted> = batch.iter().map(|_| (Vec::new(), None)).collect();
        for row in &rows {
            // 1-based, from WITH ORDINALITY.
            let ord: i64 = row.try_get_unchecked(COLUMNS).map_err(sqlx_err)?;
            let page = usize::try_from(ord - 1)
                .ok()
                .and_then(|index| pages.get_mut(index))
                .ok_or_else(|| DbErr::Custom(format!("listing {ord} is not in the batch")))?;
            page.1 = Some(row.try_get_unchecked(COLUMNS + 1).map_err(sqlx_err)?);
            // NULL task columns: the listing is past its last page.
            let id: Option<Uuid> = row.try_get_unchecked(0).map_err(sqlx_err)?;
            if id.is_some() {
                page.0.push(decode(row)?);
            }
        }
        for (items, _) in &mut pages {
            newest_first(items);
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

    pub(super) async fn fetch(
        pool: &PgPool,
        statement: Statement,
        counted: bool,
    ) -> Result<(Vec<task::Model>, Option<i64>), DbErr> {
        let arguments = arguments(statement.values)?;
        run(pool, AssertSqlSafe(statement.sql), arguments, counted).await
    }

    async fn run(
        pool: &PgPool,
        sql: impl SqlSafeStr,
        arguments: PgArguments,
        counted: bool,
    ) -> Result<(Vec<task::Model>, Option<i64>), DbErr> {
        let rows = sqlx::query_with(sql, arguments)
            .fetch_all(pool)
            .await
            .map_err(sqlx_err)?;
        let total = match rows.first() {
            Some(row) if counted => {
                Some(row.try_get_unchecked::<i64, _>(COLUMNS).map_err(sqlx_err)?)
            }
            _ => None,
        };
        let items = rows.iter().map(decode).collect::<Result<_, _>>()?;
        Ok((items, total))
    }

    /// The statement's values as sqlx arguments: only the kinds a listing binds (ids,
    /// text, priorities, instants and the limit and offset); anything else is a bug here,
    /// reported as an error rather than sent wrongly.
    pub(super) fn arguments(values: Option<Values>) -> Result<PgArguments, DbErr> {
        let mut arguments = PgArguments::default();
        for value in values.map(|values| values.0).unwrap_or_default() {
            let added = match value {
                Value::Uuid(id) => arguments.add(id),
                Value::String(text) => arguments.add(text),
                Value::SmallInt(level) => arguments.add(level),
                Value::ChronoDateTimeUtc(at) => arguments.add(at),
                Value::BigUnsigned(count) => arguments.add(
                    count
                        .map(i64::try_from)
                        .transpose()
                        .map_err(|err| DbErr::Custom(err.to_string()))?,
                ),
                other => return Err(DbErr::Custom(format!("unexpected list value {other:?}"))),
            };
            added.map_err(|err| DbErr::Custom(err.to_string()))?;
        }
        Ok(arguments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    }

    #[test]
    fn oversized_filters_are_rejected() {
        let query = ListTasksQuery {
            limit: Some(500),
            q: Some("x".repeat(201)),
            ..Default::default()
        };
        let Err(AppError::Validation(errors)) = TaskFilter::try_from(query) else {
            panic!("expected validation error");
        };
        assert_eq!(errors.len(), 2);
    }

    /// Every listing shape's statement on PostgreSQL: its values bind, and it selects the
    /// entity's columns in declaration order (what `task_rows::decode` reads by position),
    /// NULL for the search copies, then the count.
    #[test]
    fn postgres_statements_bind_and_select_the_entity_columns_in_order() {
        let owner = Uuid::now_v7();
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("instant");
        let filter = TaskFilter {
            limit: 20,
            offset: 40,
            status: Some(Status::InProgress),
            priority: Some(Priority::High),
            due_before: Some(at),
            due_after: Some(at),
            search: Some("Ünï 50%".into()),
            sort: TaskSort::CreatedAt,
            cursor: None,
        };
        let columns = listed_columns();
        assert_eq!(columns.len(), crate::models::task_rows::COLUMNS);
        let keys = [
            SortKey::Instant(at),
            SortKey::MaybeInstant(Some(at)),
            SortKey::MaybeInstant(None),
            SortKey::Priority(2),
            SortKey::Text("x".into()),
        ];
        for sort in [
            TaskSort::CreatedAtDesc,
            TaskSort::DueDate,
            TaskSort::Priority,
            TaskSort::Title,
        ] {
            let filter = TaskFilter {
                sort,
                ..filter.clone()
            };
            for key in &keys {
                let position = Position {
                    key: key.clone(),
                    id: owner,
                };
                let statement =
                    page_query(owner, &filter, Some(&position)).build(DatabaseBackend::Postgres);
                assert_eq!(select_list(&statement.sql), columns);
                postgres::arguments(statement.values).expect("bindable");
            }
            let statement = page_query(owner, &filter, None).build(DatabaseBackend::Postgres);
            let listed = select_list(&statement.sql);
            assert_eq!(listed[..columns.len()], columns[..]);
            assert_eq!(listed[columns.len()], "(SELECT COUNT(*) AS \"matching\"");
            assert!(
                statement
                    .sql
                    .contains(") AS \"total_matching\" FROM \"tasks\" WHERE"),
                "{}",
                statement.sql
            );
            postgres::arguments(statement.values).expect("bindable");
        }
    }

    /// The batched default listing selects, in its page, the entity's columns in order
    /// (what `task_rows::decode` reads) with NULL for the search copies, then the batch
    /// place and the count.
    #[test]
    fn the_batched_default_pages_select_the_entity_columns_in_order() {
        let sql = postgres::DEFAULT_PAGES_SQL;
        assert!(
            sql.starts_with(r#"SELECT "page".*, "wanted"."ord", "counted"."total_matching" FROM"#)
        );
        let page = sql
            .split("JOIN LATERAL (")
            .nth(2)
            .expect("the page's subquery");
        assert_eq!(select_list(page), listed_columns());
    }

    /// A batch's rows may come in any order (its statement has no outer ORDER BY): each
    /// page is put in the listing's order, newest first, ties broken by the larger id.
    #[test]
    fn a_batched_page_is_sorted_newest_first_with_ties_by_id() {
        let at =
            |seconds: i64| DateTime::from_timestamp(1_700_000_000 + seconds, 0).expect("instant");
        let task = |id: u128, seconds| task::Model {
            id: Uuid::from_u128(id),
            user_id: Uuid::nil(),
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
        };
        let mut items = vec![task(1, 5), task(9, 7), task(3, 5), task(2, 9), task(7, 5)];
        postgres::newest_first(&mut items);
        let order: Vec<String> = items.into_iter().map(|task| task.title).collect();
        assert_eq!(order, ["2", "9", "7", "3", "1"]);
    }

    /// The entity's columns as a listing selects them: NULL in place of the search copies.
    fn listed_columns() -> Vec<String> {
        let mut columns = crate::models::task_rows::quoted_columns(Some("tasks"));
        for (column, copy) in columns.iter_mut().rev().zip(SEARCH_COPIES.iter().rev()) {
            *column = format!("NULL AS \"{}\"", copy.as_str());
        }
        columns
    }

    fn select_list(sql: &str) -> Vec<String> {
        sql.strip_prefix("SELECT ")
            .and_then(|rest| rest.split(" FROM ").next())
            .expect("select list")
            .split(", ")
            .map(str::to_string)
            .collect()
    }
}
