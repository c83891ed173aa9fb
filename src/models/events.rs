//! The change feed's log: `task_events`, one row per task change and per member of the
//! task's project (its recipient, `user_id`), written by `models::tasks` in the transaction
//! of the change, read by the SSE streams (`routes::events`) and pruned by age and count.
//! A user's log is therefore exactly what they could see when it happened: a member who
//! leaves gets no row of that project's later changes.
//!
//! Ordering: a stream sends a user's rows in id order and remembers the last id it sent,
//! so ids must be handed out in commit order per user, or a row committed late with a
//! smaller id would be skipped. SQLite has one writer at a time; on PostgreSQL every
//! task write takes a transaction-scoped advisory lock on each member of the project first
//! (`models::tasks::portable::serialize_writes`; the PostgreSQL store's statements take
//! the same locks), so the writes that reach a user commit one after another, each with a
//! larger id than the last. Writes that share no member never wait for each other.

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::sea_query::{Alias, Expr, Func, OnConflict, Order, Query, WindowStatement};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::id_list;
use crate::entities::{project_member, task, task_event, user};
use crate::error::Result;
use crate::models::housekeeping;
use crate::validate;
use crate::views::{RenderJson, TaskView};

/// What happened to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Updated,
    Deleted,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Created => "created",
            Kind::Updated => "updated",
            Kind::Deleted => "deleted",
        }
    }

    /// The SSE `event:` name.
    pub fn event_name(stored: &str) -> &'static str {
        match stored {
            "created" => "task.created",
            "deleted" => "task.deleted",
            "updated" => "task.updated",
            other => ABOUT
                .iter()
                .find(|about| about.name() == other)
                .map_or("task.updated", |about| about.name()),
        }
    }

    /// Whether `stored` is one of the task kinds, whose data is a task snapshot.
    pub fn is_task(stored: &str) -> bool {
        matches!(stored, "created" | "updated" | "deleted")
    }
}

/// What happened, besides a task change, that a project's members hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    CommentCreated,
    CommentUpdated,
    CommentDeleted,
    LabelCreated,
    LabelUpdated,
    LabelDeleted,
    MemberAdded,
    MemberUpdated,
    MemberRemoved,
}

const ABOUT: [About; 9] = [
    About::CommentCreated,
    About::CommentUpdated,
    About::CommentDeleted,
    About::LabelCreated,
    About::LabelUpdated,
    About::LabelDeleted,
    About::MemberAdded,
    About::MemberUpdated,
    About::MemberRemoved,
];

impl About {
    /// The SSE `event:` name, also stored as the row's `kind`.
    pub fn name(self) -> &'static str {
        match self {
            About::CommentCreated => "comment.created",
            About::CommentUpdated => "comment.updated",
            About::CommentDeleted => "comment.deleted",
            About::LabelCreated => "label.created",
            About::LabelUpdated => "label.updated",
            About::LabelDeleted => "label.deleted",
            About::MemberAdded => "member.added",
            About::MemberUpdated => "member.updated",
            About::MemberRemoved => "member.removed",
        }
    }
}

/// Who hears of a change in `project`: its members, by id.
pub async fn recipients<C: ConnectionTrait>(conn: &C, project: Uuid) -> Result<Vec<Uuid>, DbErr> {
    project_member::Entity::find()
        .select_only()
        .column(project_member::Column::UserId)
        .filter(project_member::Column::ProjectId.eq(project))
        .into_tuple()
        .all(conn)
        .await
}

/// Records `about` (of `subject`: the comment's task, the label, the member) for every
/// member of `project` and for `also` (a member being removed hears of it), with `data`
/// as the event's JSON. In the change's transaction, after the project members' feed locks
/// (`models::projects::lock_feeds_of`), like a task change.
pub async fn record_about<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    about: About,
    subject: Uuid,
    data: String,
    also: Option<Uuid>,
) -> Result<Vec<Uuid>, DbErr> {
    let mut audience = recipients(conn, project).await?;
    if let Some(extra) = also.filter(|extra| !audience.contains(extra)) {
        audience.push(extra);
    }
    let now = validate::now();
    for &recipient in &audience {
        task_event::ActiveModel {
            user_id: Set(recipient),
            project_id: Set(Some(project)),
            task_id: Set(subject),
            kind: Set(about.name().to_string()),
            version: Set(0),
            body: Set(Some(data.clone())),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(conn)
        .await?;
    }
    Ok(audience)
}

/// Appends the events of a change (one per member of the task's project), in the change's
/// transaction. (On PostgreSQL the task writes outside a caller's transaction record theirs
/// in the same statement as the change instead: `models::tasks::postgres::writes`.)
pub async fn record<C: ConnectionTrait>(
    conn: &C,
    task: &task::Model,
    kind: Kind,
) -> Result<(), DbErr> {
    for member in recipients(conn, task.project_id).await? {
        recorded_for(task, kind, member).insert(conn).await?;
    }
    Ok(())
}

/// The events of `moved` having moved from project `from`: a tombstone (with `from` as
/// its project) for those who were members there only, who no longer see it;
/// `task.created` for members of its new project only; `task.updated` for members of both.
/// Returns them all, who are to be told.
pub async fn record_move<C: ConnectionTrait>(
    conn: &C,
    from: Uuid,
    moved: &task::Model,
) -> Result<Vec<Uuid>, DbErr> {
    let before = recipients(conn, from).await?;
    let after = recipients(conn, moved.project_id).await?;
    for &member in before.iter().filter(|member| !after.contains(member)) {
        let mut tombstone = recorded_for(moved, Kind::Deleted, member);
        tombstone.project_id = Set(Some(from));
        tombstone.insert(conn).await?;
    }
    for &member in &after {
        let kind = if before.contains(&member) {
            Kind::Updated
        } else {
            Kind::Created
        };
        recorded_for(moved, kind, member).insert(conn).await?;
    }
    let newcomers: Vec<Uuid> = after
        .into_iter()
        .filter(|member| !before.contains(member))
        .collect();
    let mut audience = before;
    audience.extend(newcomers);
    Ok(audience)
}

/// The event row of `task`'s change as `recipient` receives it.
fn recorded_for(task: &task::Model, kind: Kind, recipient: Uuid) -> task_event::ActiveModel {
    let mut row = task_event::ActiveModel {
        user_id: Set(recipient),
        project_id: Set(Some(task.project_id)),
        task_id: Set(task.id),
        kind: Set(kind.as_str().to_string()),
        version: Set(task.version),
        body: Set(None),
        created_at: Set(validate::now()),
        ..Default::default()
    };
    if kind != Kind::Deleted {
        row.title = Set(Some(task.title.clone()));
        row.description = Set(task.description.clone());
        row.status = Set(Some(task.status));
        row.priority = Set(Some(task.priority));
        row.due_date = Set(task.due_date);
        row.task_created_at = Set(Some(task.created_at));
        row.task_updated_at = Set(Some(task.updated_at));
        row.assignee_ids = Set(task.assignee_ids.clone());
        row.label_ids = Set(task.label_ids.clone());
        row.comment_count = Set(Some(task.comment_count));
    }
    row
}

/// The task as the event shows it, as JSON text: the stored `body` of an older row, else
/// the snapshot columns through the API's own view; `null` for a deletion.
pub fn task_json(event: &task_event::Model) -> String {
    if let Some(body) = &event.body {
        return body.clone();
    }
    let view = match (
        &event.title,
        event.status,
        event.priority,
        event.task_created_at,
        event.task_updated_at,
    ) {
        (Some(title), Some(status), Some(priority), Some(created_at), Some(updated_at)) => {
            TaskView {
                id: event.task_id,
                project_id: event.project_id.unwrap_or(event.user_id),
                title: title.clone(),
                description: event.description.clone(),
                status,
                priority,
                due_date: event.due_date,
                assignee_ids: id_list::parse(event.assignee_ids.as_deref()),
                label_ids: id_list::parse(event.label_ids.as_deref()),
                comment_count: event.comment_count.unwrap_or_default(),
                version: event.version,
                created_at,
                updated_at,
                moved: None,
            }
        }
        _ => return "null".to_string(),
    };
    view.render_json()
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "null".to_string())
}

/// Up to `limit` of `recipient`'s events after `after` (of `project` only, when given),
/// oldest first.
pub async fn after(
    db: &DatabaseConnection,
    recipient: Uuid,
    project: Option<Uuid>,
    after: i64,
    limit: u64,
) -> Result<Vec<task_event::Model>> {
    let mut query = task_event::Entity::find().filter(task_event::Column::UserId.eq(recipient));
    if let Some(project) = project {
        query = query.filter(task_event::Column::ProjectId.eq(project));
    }
    // Only what the recipient may still see: events of projects they are a member of now.
    // A write that committed just after their removal may have counted them among the
    // members when it fanned out (on PostgreSQL its statement read the members before it
    // waited for the locks the removal held; found by an attack helper); this hides it.
    // Tombstones (ids only; a deleted project has no members left to check) and their own
    // `member.removed` always pass.
    let still_member = Query::select()
        .expr(Expr::val(1))
        .from(project_member::Entity)
        .and_where(sea_orm::sea_query::ExprTrait::equals(
            Expr::col((project_member::Entity, project_member::Column::ProjectId)),
            (task_event::Entity, task_event::Column::ProjectId),
        ))
        .and_where(project_member::Column::UserId.eq(recipient))
        .to_owned();
    let visible = sea_orm::Condition::any()
        .add(task_event::Column::ProjectId.is_null())
        .add(task_event::Column::Kind.is_in([Kind::Deleted.as_str(), About::MemberRemoved.name()]))
        .add(Expr::exists(still_member));
    Ok(query
        .filter(visible)
        .filter(task_event::Column::Id.gt(after))
        .order_by_asc(task_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The newest event id of each of `owners` that has events, in one statement: a
/// correlated `MAX` per user, which both databases answer from the (user_id, id) index
/// with one probe each, however long the users' logs are.
pub async fn latest_ids(db: &DatabaseConnection, owners: &[Uuid]) -> Result<HashMap<Uuid, i64>> {
    let rows: Vec<(Uuid, Option<i64>)> = user::Entity::find()
        .select_only()
        .column(user::Column::Id)
        .column_as(
            Expr::cust(
                "(SELECT MAX(task_events.id) FROM task_events WHERE task_events.user_id = users.id)",
            ),
            "latest",
        )
        .filter(user::Column::Id.is_in(owners.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(owner, latest)| Some((owner, latest?)))
        .collect())
}

/// Where `owner`'s log stands: the newest event id (0 if none) and the newest id the
/// pruner deleted (a reader behind it has missed events for good).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Position {
    pub latest: i64,
    pub pruned_through: i64,
}

pub async fn position(db: &DatabaseConnection, owner: Uuid) -> Result<Position> {
    let latest: Option<Option<i64>> = task_event::Entity::find()
        .select_only()
        .column_as(task_event::Column::Id.max(), "latest")
        .filter(task_event::Column::UserId.eq(owner))
        .into_tuple()
        .one(db)
        .await?;
    let pruned_through = pruned_through(db, owner).await?;
    Ok(Position {
        latest: latest.flatten().unwrap_or(0).max(pruned_through),
        pruned_through,
    })
}

/// `task_event_floors`, which has no entity: one row per user, written only here.
#[derive(sea_orm::DeriveIden)]
enum Floors {
    #[sea_orm(iden = "task_event_floors")]
    Table,
    UserId,
    PrunedThrough,
}

pub async fn pruned_through(db: &DatabaseConnection, owner: Uuid) -> Result<i64> {
    #[derive(FromQueryResult)]
    struct Floor {
        pruned_through: i64,
    }
    use sea_orm::sea_query::ExprTrait;
    let query = Query::select()
        .column(Floors::PrunedThrough)
        .from(Floors::Table)
        .and_where(Expr::col(Floors::UserId).eq(owner))
        .to_owned();
    let floor = match db.query_one(&query).await? {
        Some(row) => Some(Floor::from_query_result(&row, "")?),
        None => None,
    };
    Ok(floor.map_or(0, |floor| floor.pruned_through))
}

/// Raises `owner`'s floor to `through` (never lowers it).
async fn raise_floor<C: ConnectionTrait>(conn: &C, owner: Uuid, through: i64) -> Result<(), DbErr> {
    let mut insert = Query::insert();
    insert
        .into_table(Floors::Table)
        .columns([Floors::UserId, Floors::PrunedThrough])
        .values([owner.into(), through.into()])
        .map_err(|err| DbErr::Custom(err.to_string()))?
        .on_conflict(
            OnConflict::column(Floors::UserId)
                // GREATEST on PostgreSQL, MAX on SQLite: sea-query writes each its own.
                .value(
                    Floors::PrunedThrough,
                    Func::greatest([
                        Expr::col((Floors::Table, Floors::PrunedThrough)),
                        Expr::col((Alias::new("excluded"), Floors::PrunedThrough)),
                    ]),
                )
                .to_owned(),
        );
    conn.execute(&insert).await?;
    Ok(())
}

/// How much of the log is kept: `max_age`, and at most `max_per_user` events per user.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_age: Duration,
    pub max_per_user: u64,
}

/// Deletes what `retention` does not keep, recording per user the newest id deleted (so a
/// reconnect from before it gets `reset`). Returns the number of events deleted.
pub async fn prune(db: &DatabaseConnection, retention: Retention) -> Result<u64> {
    #[derive(FromQueryResult)]
    struct Cut {
        user_id: Uuid,
        cut: i64,
    }
    let cutoff = validate::now()
        - chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::days(1));
    // Per user: everything at or below `cut` goes, where `cut` is the newest event that is
    // too old, or the newest beyond the count (the (max_per_user + 1)-th newest).
    let too_old: Vec<Cut> = task_event::Entity::find()
        .select_only()
        .column(task_event::Column::UserId)
        .column_as(task_event::Column::Id.max(), "cut")
        .filter(task_event::Column::CreatedAt.lt(cutoff))
        .group_by(task_event::Column::UserId)
        .into_model::<Cut>()
        .all(db)
        .await?;
    // The (max_per_user + 1)-th newest event of each user: everything from it down goes.
    let keep = i64::try_from(retention.max_per_user.saturating_add(1)).unwrap_or(i64::MAX);
    let newer = {
        use sea_orm::sea_query::ExprTrait;
        Expr::col(Alias::new("newer")).eq(keep)
    };
    let ranked = Query::select()
        .columns([task_event::Column::UserId, task_event::Column::Id])
        .expr_window_as(
            Expr::cust("ROW_NUMBER()"),
            WindowStatement::partition_by(task_event::Column::UserId)
                .order_by(task_event::Column::Id, Order::Desc)
                .to_owned(),
            Alias::new("newer"),
        )
        .from(task_event::Entity)
        .to_owned();
    let beyond = Query::select()
        .column(task_event::Column::UserId)
        .expr_as(Expr::col(task_event::Column::Id), Alias::new("cut"))
        .from_subquery(ranked, Alias::new("ranked"))
        .and_where(newer)
        .to_owned();
    let beyond_count = db
        .query_all(&beyond)
        .await?
        .iter()
        .map(|row| Cut::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let mut cuts = std::collections::HashMap::<Uuid, i64>::new();
    for Cut { user_id, cut } in too_old.into_iter().chain(beyond_count) {
        let entry = cuts.entry(user_id).or_insert(cut);
        *entry = (*entry).max(cut);
    }
    let mut deleted = 0;
    for (user, cut) in cuts {
        // One transaction per user: the floor and the deletion are seen together.
        let txn = db.begin().await?;
        raise_floor(&txn, user, cut).await?;
        deleted += task_event::Entity::delete_many()
            .filter(task_event::Column::UserId.eq(user))
            .filter(task_event::Column::Id.lte(cut))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
    }
    Ok(deleted)
}

/// Prunes every `every` for the life of the process.
pub async fn prune_periodically(db: DatabaseConnection, retention: Retention, every: Duration) {
    housekeeping::run_every(every, "pruning old task events", || prune(&db, retention)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_of(task: &task::Model, kind: Kind) -> task_event::Model {
        let live = kind != Kind::Deleted;
        task_event::Model {
            id: 7,
            user_id: task.project_id,
            project_id: Some(task.project_id),
            task_id: task.id,
            kind: kind.as_str().to_string(),
            version: task.version,
            body: None,
            created_at: task.updated_at,
            title: live.then(|| task.title.clone()),
            description: task.description.clone().filter(|_| live),
            status: live.then_some(task.status),
            priority: live.then_some(task.priority),
            due_date: task.due_date.filter(|_| live),
            task_created_at: live.then_some(task.created_at),
            task_updated_at: live.then_some(task.updated_at),
            assignee_ids: task.assignee_ids.clone().filter(|_| live),
            label_ids: task.label_ids.clone().filter(|_| live),
            comment_count: live.then_some(task.comment_count),
        }
    }

    /// The feed shows a task exactly as `GET /tasks/{id}` does, whichever way the event
    /// stored it: snapshot columns (this binary) or a rendered body (older rows).
    #[test]
    fn an_event_renders_its_task_like_the_api() {
        let task = task::Model {
            id: Uuid::now_v7(),
            project_id: Uuid::now_v7(),
            title: "Ship \"it\"".into(),
            description: Some("line\nbreak".into()),
            status: task::Status::InProgress,
            priority: task::Priority::High,
            due_date: Some(chrono::Utc::now()),
            version: 4,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            title_search: None,
            description_search: None,
            assignee_ids: crate::domain::id_list::join(&[Uuid::now_v7(), Uuid::now_v7()]),
            label_ids: None,
            comment_count: 3,
        };
        let api = serde_json::to_string(&TaskView::from(task.clone())).expect("json");
        assert_eq!(task_json(&event_of(&task, Kind::Updated)), api);
        assert!(!task_json(&event_of(&task, Kind::Updated)).contains('\n'));
        let legacy = task_event::Model {
            body: Some(api.clone()),
            ..event_of(&task, Kind::Deleted)
        };
        assert_eq!(task_json(&legacy), api);
        assert_eq!(task_json(&event_of(&task, Kind::Deleted)), "null");
    }
}
