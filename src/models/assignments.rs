//! What a task is assigned to (issue #24): members of its project (`assignee_ids`) and the
//! project's labels (`label_ids`), kept on the task row (`domain::id_list`).
//!
//! The rule "only members, only the project's labels" holds under concurrency because both
//! sides take the same locks first: a write that sets assignees or labels, or moves a task,
//! checks them after taking the change-feed locks of the project's members
//! (`models::projects::lock_feeds_of`), and removing a member or deleting a label takes the
//! same locks before it takes the id off the project's tasks. Whichever commits first, the
//! other sees it (each statement of a PostgreSQL transaction reads what committed before
//! it; SQLite has one writer).

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use uuid::Uuid;

use crate::domain::id_list;
use crate::entities::{label, project_member, task};
use crate::error::Result;
use crate::models::events::{self, Kind};
use crate::validate::{self, Errors};

/// 422 naming the field unless every id of `assignees` is a member of `project` and every
/// id of `labels` one of its labels (`None` or empty: nothing to check).
pub async fn check<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    assignees: Option<&[Uuid]>,
    labels: Option<&[Uuid]>,
) -> Result<()> {
    let mut errors = Errors::default();
    if let Some(ids) = assignees.filter(|ids| !ids.is_empty()) {
        let members = members_among(conn, project, ids).await?;
        if let Some(stranger) = ids.iter().find(|id| !members.contains(id)) {
            errors.add(
                "assignee_ids",
                format!("{stranger} is not a member of the task's project"),
            );
        }
    }
    if let Some(ids) = labels.filter(|ids| !ids.is_empty()) {
        let found: Vec<Uuid> = label::Entity::find()
            .select_only()
            .column(label::Column::Id)
            .filter(label::Column::ProjectId.eq(project))
            .filter(label::Column::Id.is_in(ids.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        if let Some(stranger) = ids.iter().find(|id| !found.contains(id)) {
            errors.add(
                "label_ids",
                format!("{stranger} is not a label of the task's project"),
            );
        }
    }
    errors.finish(())
}

/// Those of `ids` who are members of `project`.
async fn members_among<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, DbErr> {
    project_member::Entity::find()
        .select_only()
        .column(project_member::Column::UserId)
        .filter(project_member::Column::ProjectId.eq(project))
        .filter(project_member::Column::UserId.is_in(ids.iter().copied()))
        .into_tuple()
        .all(conn)
        .await
}

/// What a task moving to another project keeps of its assignees and labels, and what it
/// loses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Carried {
    /// Its assignees who are members of the target too.
    pub assignees: Vec<Uuid>,
    /// The target's labels named like the task's labels (ignoring case, as label names
    /// are compared everywhere).
    pub labels: Vec<Uuid>,
    pub dropped_assignees: Vec<Uuid>,
    pub dropped_labels: Vec<Uuid>,
}

/// What `task` keeps of its assignees and labels in project `target`.
pub async fn carried_over<C: ConnectionTrait>(
    conn: &C,
    task: &task::Model,
    target: Uuid,
) -> Result<Carried, DbErr> {
    let assignees = id_list::parse(task.assignee_ids.as_deref());
    let staying = members_among(conn, target, &assignees).await?;
    let (kept, dropped_assignees) = assignees
        .into_iter()
        .partition(|assignee| staying.contains(assignee));
    let labels = id_list::parse(task.label_ids.as_deref());
    let names: Vec<(Uuid, String)> = label::Entity::find()
        .select_only()
        .column(label::Column::Id)
        .column(label::Column::NameFolded)
        .filter(label::Column::ProjectId.eq(task.project_id))
        .filter(label::Column::Id.is_in(labels.iter().copied()))
        .into_tuple()
        .all(conn)
        .await?;
    let targets: Vec<(Uuid, String)> = label::Entity::find()
        .select_only()
        .column(label::Column::Id)
        .column(label::Column::NameFolded)
        .filter(label::Column::ProjectId.eq(target))
        .filter(label::Column::NameFolded.is_in(names.iter().map(|(_, name)| name.clone())))
        .into_tuple()
        .all(conn)
        .await?;
    let mut carried = Carried {
        assignees: kept,
        dropped_assignees,
        ..Carried::default()
    };
    for label in labels {
        let name = names
            .iter()
            .find(|(id, _)| *id == label)
            .map(|(_, name)| name);
        match name.and_then(|name| targets.iter().find(|(_, other)| other == name)) {
            Some((same_name, _)) => carried.labels.push(*same_name),
            None => carried.dropped_labels.push(label),
        }
    }
    Ok(carried)
}

/// Takes `member` (leaving `project`) off the project's tasks.
pub async fn unassign<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    member: Uuid,
) -> Result<(), DbErr> {
    detach(conn, project, task::Column::AssigneeIds, member).await
}

/// Takes label `id` (being deleted) off the tasks of `project`.
pub async fn unlabel<C: ConnectionTrait>(conn: &C, project: Uuid, id: Uuid) -> Result<(), DbErr> {
    detach(conn, project, task::Column::LabelIds, id).await
}

/// Takes `id` out of `column` of every task of `project` that holds it: a change of the
/// task like any other, with a new version (so an `If-Match` on the old one fails and a
/// cached copy is refetched) and its `task.updated` event for the project's members. In the
/// caller's transaction, after the feed locks (module docs).
async fn detach<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    column: task::Column,
    id: Uuid,
) -> Result<(), DbErr> {
    let holding = task::Entity::find()
        .filter(task::Column::ProjectId.eq(project))
        .filter(column.like(id_list::containing(id)))
        .all(conn)
        .await?;
    let now = validate::now();
    for found in holding {
        let stored = match column {
            task::Column::LabelIds => found.label_ids.as_deref(),
            _ => found.assignee_ids.as_deref(),
        };
        let remaining: Vec<Uuid> = id_list::parse(stored)
            .into_iter()
            .filter(|other| *other != id)
            .collect();
        let mut row: task::ActiveModel = found.clone().into();
        match column {
            task::Column::LabelIds => row.label_ids = Set(id_list::join(&remaining)),
            _ => row.assignee_ids = Set(id_list::join(&remaining)),
        }
        row.version = Set(found.version.saturating_add(1));
        row.updated_at = Set(later(now, found.updated_at));
        let changed = row.update(conn).await?;
        events::record(conn, &changed, Kind::Updated).await?;
    }
    Ok(())
}

/// `now`, unless the row's time is already later (a clock never goes back on a task).
fn later(now: DateTime<Utc>, stored: DateTime<Utc>) -> DateTime<Utc> {
    now.max(stored)
}
