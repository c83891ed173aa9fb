//! A project's labels: members read them, the project's admins manage them. A name is
//! unique within its project whatever its case (the database's unique index decides, so
//! two concurrent creates cannot both win).

use migration::fold_for_search;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use uuid::Uuid;

use super::{Action, lock_feeds_of, require};
use crate::domain::{Color, Name};
use crate::entities::label;
use crate::error::{AppError, Result, conflict_on_unique, is_missing_parent};
use crate::models::events::{self, About};
use crate::models::{assignments, txn};
use crate::requests::{CreateLabelRequest, PatchLabelRequest};
use crate::validate::{self, Errors};
use crate::views::{LabelEventData, LabelView, event_json};

const DUPLICATE: &str = "This project already has a label with that name (names ignore case).";
const NOT_FOUND: &str = "Label";

/// A label's validated fields; `None` leaves a field as it is in a change.
#[derive(Debug, Clone, Default)]
pub struct LabelFields {
    pub name: Option<Name>,
    pub color: Option<Option<Color>>,
}

impl TryFrom<CreateLabelRequest> for LabelFields {
    type Error = AppError;

    fn try_from(req: CreateLabelRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let name = Name::parse(&mut errors, &req.name);
        let color = req
            .color
            .map(|raw| Color::parse(&mut errors, "color", &raw));
        errors.finish_parsed(name.map(|name| LabelFields {
            name: Some(name),
            color: Some(color.flatten()),
        }))
    }
}

impl TryFrom<PatchLabelRequest> for LabelFields {
    type Error = AppError;

    fn try_from(req: PatchLabelRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let name = super::patched_name(&mut errors, req.name);
        let color = req
            .color
            .map(|color| color.and_then(|raw| Color::parse(&mut errors, "color", &raw)));
        errors.finish(LabelFields { name, color })
    }
}

/// The labels of `project` (any member), by name.
pub async fn list(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
) -> Result<Vec<label::Model>> {
    require(db, caller, project, Action::Read, super::NOT_FOUND).await?;
    Ok(label::Entity::find()
        .filter(label::Column::ProjectId.eq(project))
        .order_by_asc(label::Column::NameFolded)
        .order_by_asc(label::Column::Id)
        .all(db)
        .await?)
}

/// Creates a label in `project` (its admins); the label and who heard of it
/// (`label.created`).
pub async fn create(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    fields: LabelFields,
) -> Result<(label::Model, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome = create_in(&txn, caller, project, fields).await;
    txn::finish(txn, outcome).await
}

/// [`create`] in the caller's write transaction (an idempotent create's).
pub async fn create_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    caller: Uuid,
    project: Uuid,
    fields: LabelFields,
) -> Result<(label::Model, Vec<Uuid>)> {
    let name = fields
        .name
        .ok_or_else(|| AppError::validation("name", "is required"))?
        .into_inner();
    locked_to_announce(txn, caller, project).await?;
    let now = validate::now();
    let created = label::ActiveModel {
        id: Set(Uuid::now_v7()),
        project_id: Set(project),
        name_folded: Set(fold_for_search(&name)),
        name: Set(name),
        color: Set(fields.color.flatten().map(Color::into_inner)),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await
    // Deleted meanwhile: the project is gone.
    .map_err(|err| match is_missing_parent(&err) {
        true => AppError::NotFound(super::NOT_FOUND),
        false => conflict_on_unique(err, DUPLICATE),
    })?;
    let audience = announce(txn, &created, About::LabelCreated).await?;
    Ok((created, audience))
}

/// Renames or recolours a label (the project's admins), if `precondition` accepts its
/// version; the label and who heard of it (`label.updated`).
pub async fn update(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    id: Uuid,
    fields: LabelFields,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<(label::Model, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<(label::Model, Vec<Uuid>)> = async {
        locked_to_announce(&txn, caller, project).await?;
        let found = find(&txn, project, id).await?;
        if !precondition(found.version) {
            return Err(AppError::PreconditionFailed);
        }
        let mut row: label::ActiveModel = found.clone().into();
        if let Some(name) = fields.name {
            let name = name.into_inner();
            row.name_folded = Set(fold_for_search(&name));
            row.name = Set(name);
        }
        if let Some(color) = fields.color {
            row.color = Set(color.map(Color::into_inner));
        }
        row.version = Set(found.version.saturating_add(1));
        row.updated_at = Set(Ord::max(validate::now(), found.updated_at));
        let updated = row
            .update(&txn)
            .await
            .map_err(|err| conflict_on_unique(err, DUPLICATE))?;
        let audience = announce(&txn, &updated, About::LabelUpdated).await?;
        Ok((updated, audience))
    }
    .await;
    txn::finish(txn, outcome).await
}

/// Deletes a label (the project's admins) and takes it off the project's tasks (each gets
/// a new version and a `task.updated` event); who heard of it (`label.deleted`).
pub async fn delete(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    id: Uuid,
) -> Result<Vec<Uuid>> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<Vec<Uuid>> = async {
        locked_to_announce(&txn, caller, project).await?;
        let found = find(&txn, project, id).await?;
        label::Entity::delete_by_id(id).exec(&txn).await?;
        assignments::unlabel(&txn, project, id).await?;
        let data = LabelEventData {
            project_id: project,
            label_id: found.id,
            label: None,
        };
        let audience = events::record_about(
            &txn,
            project,
            About::LabelDeleted,
            found.id,
            event_json(&data),
            None,
        )
        .await?;
        Ok(audience)
    }
    .await;
    txn::finish(txn, outcome).await
}

/// The policy's answer for a label change (the project's admins), then the feed locks of
/// the project's members, whose feeds hear of it (and, for a deletion, of the tasks that
/// lose the label).
async fn locked_to_announce<C: sea_orm::ConnectionTrait>(
    conn: &C,
    caller: Uuid,
    project: Uuid,
) -> Result<()> {
    require(conn, caller, project, Action::Administer, super::NOT_FOUND).await?;
    lock_feeds_of(conn, project).await?;
    // Again under the locks: an admin removed or demoted while this waited for them has
    // been by now, and this statement sees it (found by an attack helper).
    require(conn, caller, project, Action::Administer, super::NOT_FOUND).await?;
    Ok(())
}

/// Records `about` `label` for the project's members; who heard of it.
async fn announce<C: sea_orm::ConnectionTrait>(
    conn: &C,
    label: &label::Model,
    about: About,
) -> Result<Vec<Uuid>, sea_orm::DbErr> {
    let data = LabelEventData {
        project_id: label.project_id,
        label_id: label.id,
        label: Some(LabelView::from(label.clone())),
    };
    events::record_about(
        conn,
        label.project_id,
        about,
        label.id,
        event_json(&data),
        None,
    )
    .await
}

async fn find<C: sea_orm::ConnectionTrait>(
    conn: &C,
    project: Uuid,
    id: Uuid,
) -> Result<label::Model> {
    label::Entity::find_by_id(id)
        .filter(label::Column::ProjectId.eq(project))
        .one(conn)
        .await?
        .ok_or(AppError::NotFound(NOT_FOUND))
}
