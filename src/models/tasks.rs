//! Tasks are always read and written through their owner: every query is filtered by
//! `user_id`, so another user's task is indistinguishable from a missing one.

use chrono::{DateTime, Utc};
use migration::fold_for_search;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Set,
    TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use crate::entities::task::{self, Priority, Status};
use crate::error::{AppError, Result};
use crate::models::events;
use crate::models::task_cursor::{Binding, CURSOR_MAX, Position, SortKey};
use crate::models::txn::begin_write;
use crate::requests::{CreateTaskRequest, ListTasksQuery, PatchTaskRequest, TaskSort};
use crate::validate::{self, Errors};

const NOT_FOUND: AppError = AppError::NotFound("Task");

/// A complete, validated task (POST and PUT).
#[derive(Debug, Clone)]
pub struct TaskInput {
    pub title: String,
    pub description: Option<String>,
    pub status: Status,
    pub priority: Priority,
    pub due_date: Option<DateTime<Utc>>,
}

impl TryFrom<CreateTaskRequest> for TaskInput {
    type Error = AppError;

    fn try_from(req: CreateTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let title = validate::title(&mut errors, &req.title);
        let description = validate::description(&mut errors, req.description);
        errors.finish(TaskInput {
            title,
            description,
            status: req.status.unwrap_or_default(),
            priority: req.priority.unwrap_or_default(),
            due_date: req.due_date.map(Into::into),
        })
    }
}

/// A validated partial update; `None` leaves a field unchanged.
#[derive(Debug, Default, Clone)]
pub struct TaskChanges {
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_date: Option<Option<DateTime<Utc>>>,
}

impl TaskChanges {
    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.status.is_none()
            && self.priority.is_none()
            && self.due_date.is_none()
    }
}

impl TryFrom<PatchTaskRequest> for TaskChanges {
    type Error = AppError;

    fn try_from(req: PatchTaskRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let title =
            not_null(&mut errors, "title", req.title).map(|raw| validate::title(&mut errors, &raw));
        let status = not_null(&mut errors, "status", req.status);
        let priority = not_null(&mut errors, "priority", req.priority);
        let description = req
            .description
            .map(|text| validate::description(&mut errors, text));
        errors.finish(TaskChanges {
            title,
            description,
            status,
            priority,
            due_date: req.due_date.map(|due| due.map(Into::into)),
        })
    }
}

/// A PATCH field that may be absent but, when present, must not be `null`.
fn not_null<T>(errors: &mut Errors, field: &str, value: Option<Option<T>>) -> Option<T> {
    match value {
        Some(None) => {
            errors.add(field, "must not be null");
            None
        }
        Some(Some(value)) => Some(value),
        None => None,
    }
}

impl From<TaskInput> for TaskChanges {
    fn from(input: TaskInput) -> Self {
        TaskChanges {
            title: Some(input.title),
            description: Some(input.description),
            status: Some(input.status),
            priority: Some(input.priority),
            due_date: Some(input.due_date),
        }
    }
}

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

/// Generic over the connection so that a caller's transaction can include the create
/// (an idempotent create stores its key and response in the same transaction, see
/// `models::idempotency`): whatever must be written with every new task belongs here.
pub async fn create<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    owner: Uuid,
    input: TaskInput,
) -> Result<task::Model> {
    let now = validate::now();
    // The change-feed event commits with the task (a savepoint in a caller's transaction).
    let txn = db.begin().await?;
    events::serialize_writes(&txn, owner).await?;
    let task = task::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(owner),
        status: Set(input.status),
        priority: Set(input.priority),
        due_date: Set(input.due_date),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
        title_search: Set(Some(fold_for_search(&input.title))),
        description_search: Set(input.description.as_deref().map(fold_for_search)),
        title: Set(input.title),
        description: Set(input.description),
    }
    .insert(&txn)
    .await?;
    events::record(&txn, &task, events::Kind::Created).await?;
    txn.commit().await?;
    Ok(task)
}

pub async fn get(db: &DatabaseConnection, owner: Uuid, id: Uuid) -> Result<task::Model> {
    crate::models::task_by_id::find(db, owner, id)
        .await?
        .ok_or(NOT_FOUND)
}

/// Whether a request's `If-Match` version (if any) allows changing `task`.
fn check_version(task: &task::Model, expected: Option<i32>) -> Result<()> {
    match expected {
        Some(version) if version != task.version => Err(AppError::PreconditionFailed),
        _ => Ok(()),
    }
}

/// After a conditional write matched no row: was the task missing, or was it changed?
async fn explain_miss(db: &DatabaseConnection, owner: Uuid, id: Uuid) -> AppError {
    match get(db, owner, id).await {
        Ok(_) => AppError::PreconditionFailed,
        Err(err) => err,
    }
}

/// Applies `changes` in one conditional UPDATE (compare-and-set on `version` when the
/// client sent If-Match), so concurrent writers can never silently overwrite each other.
pub async fn update(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
    changes: TaskChanges,
    expected_version: Option<i32>,
) -> Result<task::Model> {
    if changes.is_empty() {
        let task = get(db, owner, id).await?;
        check_version(&task, expected_version)?;
        return Ok(task);
    }
    let mut update = task::Entity::update_many()
        .col_expr(
            task::Column::Version,
            Expr::col(task::Column::Version).add(1),
        )
        .col_expr(task::Column::UpdatedAt, Expr::value(validate::now()))
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(owner));
    if let Some(version) = expected_version {
        update = update.filter(task::Column::Version.eq(version));
    }
    // The folded copies change in the same statement as the text they mirror.
    if let Some(title) = changes.title {
        update = update
            .col_expr(
                task::Column::TitleSearch,
                Expr::value(fold_for_search(&title)),
            )
            .col_expr(task::Column::Title, Expr::value(title));
    }
    if let Some(description) = changes.description {
        let folded = description.as_deref().map(fold_for_search);
        update = update
            .col_expr(task::Column::DescriptionSearch, Expr::value(folded))
            .col_expr(task::Column::Description, Expr::value(description));
    }
    if let Some(status) = changes.status {
        update = update.col_expr(task::Column::Status, Expr::value(status));
    }
    if let Some(priority) = changes.priority {
        update = update.col_expr(task::Column::Priority, Expr::value(priority));
    }
    if let Some(due_date) = changes.due_date {
        update = update.col_expr(task::Column::DueDate, Expr::value(due_date));
    }
    // The change-feed event commits with the change, or neither does.
    let txn = begin_write(db).await?;
    events::serialize_writes(&txn, owner).await?;
    let mut rows = update.exec_with_returning(&txn).await?;
    match rows.pop() {
        Some(task) => {
            events::record(&txn, &task, events::Kind::Updated).await?;
            txn.commit().await?;
            Ok(task)
        }
        None => {
            txn.rollback().await?;
            Err(explain_miss(db, owner, id).await)
        }
    }
}

pub async fn delete(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
    expected_version: Option<i32>,
) -> Result<()> {
    let mut delete = task::Entity::delete_many()
        .filter(task::Column::Id.eq(id))
        .filter(task::Column::UserId.eq(owner));
    if let Some(version) = expected_version {
        delete = delete.filter(task::Column::Version.eq(version));
    }
    let txn = begin_write(db).await?;
    events::serialize_writes(&txn, owner).await?;
    let Some(deleted) = delete.exec_with_returning(&txn).await?.pop() else {
        txn.rollback().await?;
        return Err(explain_miss(db, owner, id).await);
    };
    // The tombstone carries the version that was deleted.
    events::record(&txn, &deleted, events::Kind::Deleted).await?;
    txn.commit().await?;
    Ok(())
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
    fn put_without_optional_fields_resets_them_to_defaults() {
        let input = TaskInput::try_from(CreateTaskRequest {
            title: "  Write docs ".into(),
            description: None,
            status: None,
            priority: None,
            due_date: None,
        })
        .expect("valid");
        assert_eq!(input.title, "Write docs");
        let changes = TaskChanges::from(input);
        assert_eq!(changes.status, Some(Status::Todo));
        assert_eq!(changes.priority, Some(Priority::Medium));
        assert_eq!(changes.description, Some(None));
    }

    #[test]
    fn patch_with_null_clears_and_absent_keeps() {
        let patch: PatchTaskRequest =
            serde_json::from_str(r#"{"description": null}"#).expect("json");
        let changes = TaskChanges::try_from(patch).expect("valid");
        assert_eq!(changes.description, Some(None));
        assert_eq!(changes.due_date, None);
    }

    #[test]
    fn patch_refuses_null_for_required_fields() {
        let patch: PatchTaskRequest =
            serde_json::from_str(r#"{"title": null, "status": null}"#).expect("json");
        let Err(AppError::Validation(errors)) = TaskChanges::try_from(patch) else {
            panic!("expected validation error");
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "status"]);
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
