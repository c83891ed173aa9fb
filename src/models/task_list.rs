//! Listing an owner's tasks: filters, sorts, offset and keyset pages.

use chrono::{DateTime, Utc};
use migration::fold_for_search;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, FromQueryResult, Order,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::entities::task::{self, Priority, Status};
use crate::error::{AppError, Result};
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

/// A page row plus the number of rows matching the filters, computed by the same query
/// (`COUNT(*) OVER ()`) so a page costs one round trip instead of two.
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
    /// Tasks matching the filters across all pages; `None` on a page read after a cursor,
    /// where counting every match would cost what the cursor saves.
    pub total: Option<u64>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Position>,
}

/// A page of the owner's tasks: after `cursor` when given (keyset), else at the offset.
/// One row more than the limit is read to know whether a next page exists.
pub async fn list(
    db: &DatabaseConnection,
    owner: Uuid,
    filter: &TaskFilter,
    cursor: Option<&Position>,
) -> Result<Page> {
    let probe = filter.limit + 1;
    let (mut items, total) = match cursor {
        Some(position) => {
            let items = sorted(filtered(owner, filter), filter.sort)
                .filter(after(position, filter.sort))
                .limit(probe)
                .all(db)
                .await?;
            (items, None)
        }
        None => {
            let rows = sorted(filtered(owner, filter), filter.sort)
                .column_as(Expr::cust("COUNT(*) OVER ()"), "total_matching")
                .limit(probe)
                .offset(filter.offset)
                .into_model::<CountedTask>()
                .all(db)
                .await?;
            let total = match rows.first() {
                Some(row) => u64::try_from(row.total_matching).unwrap_or(0),
                // Past the last page the window has no row to ride on; count separately.
                None if filter.offset > 0 => filtered(owner, filter).count(db).await?,
                None => 0,
            };
            (rows.into_iter().map(|row| row.task).collect(), Some(total))
        }
    };
    let more = u64::try_from(items.len()).unwrap_or(u64::MAX) > filter.limit;
    items.truncate(usize::try_from(filter.limit).unwrap_or(usize::MAX));
    let next = if more {
        items.last().map(|last| Position::of(last, filter.sort))
    } else {
        None
    };
    Ok(Page { items, total, next })
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
}
