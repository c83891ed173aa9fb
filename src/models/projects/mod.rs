//! Projects and their members (issue #24): what a user can see and share. Who may do what
//! is decided by [`policy`] alone; these functions ask it before they read or write.
//!
//! Every user has an Inbox: a project with the user's own id, created with the account,
//! which cannot be shared, left, archived or deleted. Writes that change who is a member,
//! or with which role, lock the project's row first, so that two of them on one project run
//! one after the other: the guard that a project keeps an admin cannot be raced.

pub mod labels;
pub mod policy;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, JoinType, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
    Set, Statement,
};
use uuid::Uuid;

use crate::domain::{Color, Email, Name};
use crate::entities::{project, project_member, task_event, user};
use crate::error::{AppError, Result, conflict_on_unique};
use crate::models::events::{self, About};
use crate::models::{assignments, txn};
use crate::requests::{CreateProjectRequest, PatchProjectRequest};
use crate::validate::{self, Errors};
use crate::views::{MemberEventData, MemberView, event_json};

pub use policy::{Action, Role, authorize, authorize_in};

pub const NOT_FOUND: &str = "Project";

const INBOX_IS_PRIVATE: &str =
    "An Inbox belongs to its user alone: it cannot be shared, left, archived or deleted.";
const LAST_ADMIN: &str = "A project keeps at least one admin: make another member admin first.";
const ALREADY_MEMBER: &str = "That account is already a member of this project.";

/// `user`'s role in `project` (`None` when not a member, or no such project), and whether
/// the project is archived.
pub async fn standing_in<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    project: Uuid,
) -> Result<(Option<Role>, bool), DbErr> {
    let role = role_of(conn, user, project).await?;
    if role.is_none() {
        return Ok((None, false));
    }
    let archived: Option<bool> = project::Entity::find_by_id(project)
        .select_only()
        .column(project::Column::Archived)
        .into_tuple()
        .one(conn)
        .await?;
    Ok((role, archived.unwrap_or(false)))
}

/// The policy's decision (`policy::authorize_in`) for `user` doing `action` in `project`,
/// from what is stored: the membership, and the project's archive flag only when `action`
/// is one an archive refuses (a read costs one primary-key lookup). The one way the models
/// ask it before they act.
pub async fn require<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    project: Uuid,
    action: Action,
    what: &'static str,
) -> Result<Role> {
    if action.refused_when_archived() {
        let (role, archived) = standing_in(conn, user, project).await?;
        authorize_in(role, archived, action, what)
    } else {
        authorize(role_of(conn, user, project).await?, action, what)
    }
}

/// `user`'s role in `project`; `None` when not a member (or no such project).
pub async fn role_of<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    project: Uuid,
) -> Result<Option<Role>, DbErr> {
    Ok(project_member::Entity::find_by_id((project, user))
        .one(conn)
        .await?
        .map(|member| member.role))
}

/// Creates `owner`'s Inbox, in the transaction that creates the account.
pub async fn create_inbox<C: ConnectionTrait>(conn: &C, owner: &user::Model) -> Result<(), DbErr> {
    project::ActiveModel {
        id: Set(owner.id),
        name: Set("Inbox".to_string()),
        description: Set(None),
        color: Set(None),
        inbox_of: Set(Some(owner.id)),
        archived: Set(false),
        version: Set(1),
        created_at: Set(owner.created_at),
        updated_at: Set(owner.created_at),
    }
    .insert(conn)
    .await?;
    add(conn, owner.id, owner.id, Role::Admin).await
}

async fn add<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    user: Uuid,
    role: Role,
) -> Result<(), DbErr> {
    project_member::ActiveModel {
        project_id: Set(project),
        user_id: Set(user),
        role: Set(role),
        created_at: Set(validate::now()),
        version: Set(1),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// A project as one member sees it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub project: project::Model,
    pub role: Role,
}

/// The projects `user` is a member of: the Inbox first, then by name.
pub async fn visible_to(db: &DatabaseConnection, user: Uuid) -> Result<Vec<Membership>> {
    let rows = project::Entity::find()
        .find_also_related(project_member::Entity)
        .filter(project_member::Column::UserId.eq(user))
        .order_by_asc(Expr::col((project::Entity, project::Column::InboxOf)).is_null())
        .order_by_asc(project::Column::Name)
        .order_by_asc(project::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(project, member)| {
            member.map(|member| Membership {
                project,
                role: member.role,
            })
        })
        .collect())
}

/// `project` as `user` sees it, if `action` is allowed to them.
pub async fn get<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    project: Uuid,
    action: Action,
) -> Result<Membership> {
    let role = require(conn, user, project, action, NOT_FOUND).await?;
    let project = project::Entity::find_by_id(project)
        .one(conn)
        .await?
        .ok_or(AppError::NotFound(NOT_FOUND))?;
    Ok(Membership { project, role })
}

/// A new project's validated fields.
#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: Name,
    pub description: Option<String>,
    pub color: Option<Color>,
}

/// Creates a project with `creator` as its admin.
pub async fn create(db: &DatabaseConnection, creator: Uuid, new: NewProject) -> Result<Membership> {
    let txn = txn::begin_write(db).await?;
    let outcome = create_in(&txn, creator, new).await;
    txn::finish(txn, outcome).await
}

/// [`create`] in the caller's write transaction (an idempotent create's).
pub async fn create_in<C: ConnectionTrait>(
    txn: &C,
    creator: Uuid,
    new: NewProject,
) -> Result<Membership> {
    let now = validate::now();
    let project = project::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name.into_inner()),
        description: Set(new.description),
        color: Set(new.color.map(Color::into_inner)),
        inbox_of: Set(None),
        archived: Set(false),
        version: Set(1),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    add(txn, project.id, creator, Role::Admin)
        .await
        .map_err(crate::error::unauthorized_on_missing_owner)?;
    Ok(Membership {
        project,
        role: Role::Admin,
    })
}

/// A validated partial change of a project; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProjectChanges {
    pub name: Option<Name>,
    pub description: Option<Option<String>>,
    pub color: Option<Option<Color>>,
    pub archived: Option<bool>,
}

impl TryFrom<CreateProjectRequest> for NewProject {
    type Error = AppError;

    fn try_from(req: CreateProjectRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let name = Name::parse(&mut errors, &req.name);
        let description = validate::description(&mut errors, req.description);
        let color = req
            .color
            .and_then(|raw| Color::parse(&mut errors, "color", &raw));
        errors.finish_parsed(name.map(|name| NewProject {
            name,
            description,
            color,
        }))
    }
}

impl TryFrom<PatchProjectRequest> for ProjectChanges {
    type Error = AppError;

    fn try_from(req: PatchProjectRequest) -> Result<Self> {
        let mut errors = Errors::default();
        let name = patched_name(&mut errors, req.name);
        let archived = match req.archived {
            Some(None) => {
                errors.add("archived", "must not be null");
                None
            }
            other => other.flatten(),
        };
        let description = req
            .description
            .map(|text| validate::description(&mut errors, text));
        let color = req
            .color
            .map(|color| color.and_then(|raw| Color::parse(&mut errors, "color", &raw)));
        errors.finish(ProjectChanges {
            name,
            description,
            color,
            archived,
        })
    }
}

/// A PATCH's `name` (of a project or a label): may be absent, never `null`.
pub(crate) fn patched_name(errors: &mut Errors, sent: Option<Option<String>>) -> Option<Name> {
    match sent {
        Some(Some(raw)) => Name::parse(errors, &raw),
        Some(None) => {
            errors.add("name", "must not be null");
            None
        }
        None => None,
    }
}

/// Applies `changes` (project admins), only if `precondition` accepts the current version
/// (the request's `If-Match`; 412 otherwise).
pub async fn update(
    db: &DatabaseConnection,
    user: Uuid,
    id: Uuid,
    changes: ProjectChanges,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<Membership> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<Membership> = async {
        let Membership { project, role } = locked(&txn, user, id, Action::Administer).await?;
        if !precondition(project.version) {
            return Err(AppError::PreconditionFailed);
        }
        if project.is_inbox() && changes.archived == Some(true) {
            return Err(AppError::Conflict(INBOX_IS_PRIVATE.into()));
        }
        let mut row: project::ActiveModel = project.clone().into();
        if let Some(name) = changes.name {
            row.name = Set(name.into_inner());
        }
        if let Some(description) = changes.description {
            row.description = Set(description);
        }
        if let Some(color) = changes.color {
            row.color = Set(color.map(Color::into_inner));
        }
        if let Some(archived) = changes.archived {
            row.archived = Set(archived);
        }
        row.version = Set(project.version.saturating_add(1));
        row.updated_at = Set(Ord::max(validate::now(), project.updated_at));
        let project = row.update(&txn).await?;
        Ok(Membership { project, role })
    }
    .await;
    txn::finish(txn, outcome).await
}

/// Deletes a project with its tasks, labels and memberships (project admins; never an
/// Inbox), only if `precondition` accepts the current version. Each member's change feed
/// gets a tombstone of each task, in the same transaction, so that open pages drop them;
/// returns the members to tell.
pub async fn delete(
    db: &DatabaseConnection,
    user: Uuid,
    id: Uuid,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<Vec<Uuid>> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<Vec<Uuid>> = async {
        // The members' feed locks before the project's row: task writes take them in that
        // order too (the feed locks, then the row's key for their foreign key), so the two
        // never wait for each other in a cycle (a deadlock, seen as a 503 under a test's
        // concurrent creates). Only an admin gets as far as taking them.
        require(&txn, user, id, Action::Administer, NOT_FOUND).await?;
        lock_feeds_of(&txn, id).await?;
        let Membership { project, .. } = locked(&txn, user, id, Action::Administer).await?;
        if !precondition(project.version) {
            return Err(AppError::PreconditionFailed);
        }
        if project.is_inbox() {
            return Err(AppError::Conflict(INBOX_IS_PRIVATE.into()));
        }
        let audience = events::recipients(&txn, id).await?;
        record_tombstones(&txn, id).await?;
        project::Entity::delete_by_id(id).exec(&txn).await?;
        Ok(audience)
    }
    .await;
    txn::finish(txn, outcome).await
}

/// A `deleted` event of every task of `project` for every member (the project is going).
async fn record_tombstones<C: ConnectionTrait>(conn: &C, project: Uuid) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let (project_param, now_param) = match backend {
        DatabaseBackend::Postgres => ("$1", "$2"),
        _ => ("?", "?"),
    };
    let sql = format!(
        r#"INSERT INTO "task_events" ("user_id", "project_id", "task_id", "kind", "version", "created_at")
SELECT "m"."user_id", "t"."user_id", "t"."id", 'deleted', "t"."version", {now_param}
FROM "tasks" AS "t" JOIN "project_members" AS "m" ON "m"."project_id" = "t"."user_id"
WHERE "t"."user_id" = {project_param}"#
    );
    let values: Vec<sea_orm::Value> = match backend {
        DatabaseBackend::Postgres => vec![project.into(), validate::now().into()],
        _ => vec![validate::now().into(), project.into()],
    };
    conn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// Makes the writes that reach a user's change feed commit one at a time (see
/// `models::events` on ordering): the transaction-scoped advisory lock of every member of
/// `project`, in key order, on PostgreSQL (the same locks as the PostgreSQL task store's
/// statements take), nothing on SQLite (one writer anyway). Call first in the transaction,
/// before the event ids are drawn.
pub async fn lock_feeds_of<C: ConnectionTrait>(conn: &C, project: Uuid) -> Result<(), DbErr> {
    lock_feeds(conn, &[project], None).await
}

/// [`lock_feeds_of`] two projects at once (a task moving from one to the other): all the
/// keys in one order, so that two moves in opposite directions never wait on each other.
pub async fn lock_feeds_of_both<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    other: Uuid,
) -> Result<(), DbErr> {
    lock_feeds(conn, &[project, other], None).await
}

/// The feed locks of the members of `projects` and of `also` (an account about to join,
/// whose feed hears of it), all in key order in one statement.
async fn lock_feeds<C: ConnectionTrait>(
    conn: &C,
    projects: &[Uuid],
    also: Option<Uuid>,
) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres || projects.is_empty() {
        return Ok(());
    }
    // `$1` is `also`; the projects follow.
    let placeholders: Vec<String> = (2..projects.len() + 2).map(|n| format!("${n}")).collect();
    let sql = format!(
        r#"SELECT count(pg_advisory_xact_lock("key")) FROM (
  SELECT DISTINCT "key" FROM (
    SELECT taskapi_feed_key("user_id") AS "key" FROM "project_members"
    WHERE "project_id" IN ({})
    UNION ALL
    SELECT taskapi_feed_key($1::uuid) WHERE $1::uuid IS NOT NULL
  ) AS "keys" ORDER BY 1) AS "ordered""#,
        placeholders.join(", ")
    );
    let mut values: Vec<sea_orm::Value> = vec![also.into()];
    values.extend(
        projects
            .iter()
            .map(|&project| sea_orm::Value::from(project)),
    );
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        sql,
        values,
    ))
    .await?;
    Ok(())
}

/// [`locked`], after the feed locks of the project's members and of `joining` (taken
/// first, in the order task writes take them: see [`delete`]), for a change its members
/// hear of. A caller refused never gets as far as the locks.
async fn locked_to_announce<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    id: Uuid,
    action: Action,
    joining: Option<Uuid>,
) -> Result<Membership> {
    require(conn, user, id, action, NOT_FOUND).await?;
    lock_feeds(conn, &[id], joining).await?;
    locked(conn, user, id, action).await
}

/// The shared projects of an account being deleted, whose feeds are locked
/// ([`lock_feeds_before_deleting`]).
pub struct SharedProjects(Vec<Uuid>);

/// The feed locks of every shared project `user` is a member of, to take before anything
/// else when deleting the account: its deletion takes them off those projects' tasks
/// (`task.updated` events), and a write in those projects that holds the locks may be
/// recording an event for the user, which waits for the user's row; taken after that row,
/// the two would wait for each other (a deadlock seen under a test's racing step-down).
pub async fn lock_feeds_before_deleting<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
) -> Result<SharedProjects, DbErr> {
    let shared: Vec<Uuid> = project_member::Entity::find()
        .select_only()
        .column(project_member::Column::ProjectId)
        .join(JoinType::InnerJoin, project_member::Relation::Project.def())
        .filter(project_member::Column::UserId.eq(user))
        .filter(project::Column::InboxOf.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    lock_feeds(conn, &shared, None).await?;
    Ok(SharedProjects(shared))
}

/// The project, locked for the rest of the transaction, if `user` may do `action` to it.
/// The lock serialises every change of a project's members and settings (module docs).
async fn locked<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    id: Uuid,
    action: Action,
) -> Result<Membership> {
    let project = project::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await?;
    let role = require(conn, user, id, action, NOT_FOUND).await?;
    let project = project.ok_or(AppError::NotFound(NOT_FOUND))?;
    Ok(Membership { project, role })
}

/// A member as the project's members see them.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: user::Model,
    pub role: Role,
    pub joined_at: chrono::DateTime<Utc>,
    /// The membership's version (its ETag).
    pub version: i32,
}

/// The members of `project` (any member may list them), longest-standing first.
pub async fn members(db: &DatabaseConnection, user: Uuid, project: Uuid) -> Result<Vec<Member>> {
    require(db, user, project, Action::Read, NOT_FOUND).await?;
    let rows = project_member::Entity::find()
        .filter(project_member::Column::ProjectId.eq(project))
        .find_also_related(user::Entity)
        .order_by_asc(project_member::Column::CreatedAt)
        .order_by_asc(project_member::Column::UserId)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(member, user)| {
            user.map(|user| Member {
                user,
                role: member.role,
                joined_at: member.created_at,
                version: member.version,
            })
        })
        .collect())
}

/// Adds the account with `email` to `project` as `role` (project admins; never to an Inbox).
/// An address without an account is a 422 naming `email`. Returns the member and who heard
/// of it (`member.added`: the members, the new one included).
pub async fn add_member(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    email: Email,
    role: Role,
) -> Result<(Member, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<(Member, Vec<Uuid>)> = async {
        require(&txn, caller, project, Action::Administer, NOT_FOUND).await?;
        // The body names an account that does not exist: a field error, not a missing
        // resource (the project exists; schemathesis read a 404 here as "created project
        // not found").
        let user = user::Entity::find()
            .filter(user::Column::Email.eq(email.as_str()))
            .one(&txn)
            .await?
            .ok_or_else(|| AppError::validation("email", "no account has this e-mail address"))?;
        let Membership { project, .. } =
            locked_to_announce(&txn, caller, project, Action::Administer, Some(user.id)).await?;
        if project.is_inbox() {
            return Err(AppError::Conflict(INBOX_IS_PRIVATE.into()));
        }
        add(&txn, project.id, user.id, role)
            .await
            .map_err(|err| conflict_on_unique(err, ALREADY_MEMBER))?;
        let joined = project_member::Entity::find_by_id((project.id, user.id))
            .one(&txn)
            .await?
            .ok_or(AppError::NotFound("User"))?;
        let member = Member {
            user,
            role,
            joined_at: joined.created_at,
            version: joined.version,
        };
        let audience = announce_member(&txn, project.id, &member, About::MemberAdded).await?;
        Ok((member, audience))
    }
    .await;
    txn::finish(txn, outcome).await
}

/// Records `about` `member` for the project's members; who heard of it.
async fn announce_member<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    member: &Member,
    about: About,
) -> Result<Vec<Uuid>, DbErr> {
    let data = MemberEventData {
        project_id: project,
        user_id: member.user.id,
        member: Some(MemberView::new(
            member.user.clone(),
            member.role,
            member.joined_at,
            member.version,
        )),
    };
    events::record_about(
        conn,
        project,
        about,
        member.user.id,
        event_json(&data),
        None,
    )
    .await
}

/// Changes `member`'s role (project admins), if `precondition` accepts the membership's
/// version; the last admin cannot be demoted. Returns the member and who heard of it
/// (`member.updated`).
pub async fn set_role(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    member: Uuid,
    role: Role,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<(Member, Vec<Uuid>)> {
    let txn = txn::begin_write(db).await?;
    let outcome: Result<(Member, Vec<Uuid>)> = async {
        let Membership { project, .. } =
            locked_to_announce(&txn, caller, project, Action::Administer, None).await?;
        let (current, user) = membership_of(&txn, project.id, member).await?;
        if !precondition(current.version) {
            return Err(AppError::PreconditionFailed);
        }
        if current.role == Role::Admin && role != Role::Admin {
            keep_an_admin(&txn, project.id, member).await?;
        }
        let mut row: project_member::ActiveModel = current.clone().into();
        row.role = Set(role);
        row.version = Set(current.version.saturating_add(1));
        let updated = row.update(&txn).await?;
        let member = Member {
            user,
            role,
            joined_at: updated.created_at,
            version: updated.version,
        };
        let audience = announce_member(&txn, project.id, &member, About::MemberUpdated).await?;
        Ok((member, audience))
    }
    .await;
    txn::finish(txn, outcome).await
}

/// Removes `member` from `project` if `precondition` accepts the membership's version: an
/// admin removes anyone, a member removes themself (leaving). The last admin cannot go, and nobody leaves an Inbox. The member is taken off
/// the project's tasks; returns who heard of it (`member.removed`: the members and the one
/// who left, who hears nothing of the project after it).
pub async fn remove_member(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    member: Uuid,
    precondition: impl FnOnce(i32) -> bool,
) -> Result<Vec<Uuid>> {
    let action = if caller == member {
        Action::Read
    } else {
        Action::Administer
    };
    let txn = txn::begin_write(db).await?;
    let outcome: Result<Vec<Uuid>> = async {
        let Membership { project, .. } =
            locked_to_announce(&txn, caller, project, action, None).await?;
        if project.is_inbox() {
            return Err(AppError::Conflict(INBOX_IS_PRIVATE.into()));
        }
        let (current, _) = membership_of(&txn, project.id, member).await?;
        if !precondition(current.version) {
            return Err(AppError::PreconditionFailed);
        }
        if current.role == Role::Admin {
            keep_an_admin(&txn, project.id, member).await?;
        }
        project_member::Entity::delete_by_id((project.id, member))
            .exec(&txn)
            .await?;
        // What they heard of the project goes with their access: a replay from an old
        // `Last-Event-ID` must not hand it back (found by an attack helper).
        task_event::Entity::delete_many()
            .filter(task_event::Column::UserId.eq(member))
            .filter(task_event::Column::ProjectId.eq(project.id))
            .exec(&txn)
            .await?;
        assignments::unassign(&txn, project.id, member).await?;
        let data = MemberEventData {
            project_id: project.id,
            user_id: member,
            member: None,
        };
        let heard = events::record_about(
            &txn,
            project.id,
            About::MemberRemoved,
            member,
            event_json(&data),
            Some(member),
        )
        .await?;
        Ok(heard)
    }
    .await;
    txn::finish(txn, outcome).await
}

async fn membership_of<C: ConnectionTrait>(
    conn: &C,
    project: Uuid,
    member: Uuid,
) -> Result<(project_member::Model, user::Model)> {
    project_member::Entity::find_by_id((project, member))
        .find_also_related(user::Entity)
        .one(conn)
        .await?
        .and_then(|(member, user)| user.map(|user| (member, user)))
        .ok_or(AppError::NotFound("Member"))
}

/// Refuses when `leaving` is the only admin of `project`. Runs under the project's lock.
async fn keep_an_admin<C: ConnectionTrait>(conn: &C, project: Uuid, leaving: Uuid) -> Result<()> {
    let others = project_member::Entity::find()
        .filter(project_member::Column::ProjectId.eq(project))
        .filter(project_member::Column::Role.eq(Role::Admin))
        .filter(project_member::Column::UserId.ne(leaving))
        .count(conn)
        .await?;
    if others == 0 {
        return Err(AppError::Conflict(LAST_ADMIN.into()));
    }
    Ok(())
}

/// Before `user`'s account is deleted: every shared project where they are the only admin
/// passes to its longest-standing other member (as admin), or, with no other member, is
/// deleted with its tasks. Runs in the deleting transaction.
pub async fn hand_over_before_deleting<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    shared: &SharedProjects,
) -> Result<(), DbErr> {
    // The user is taken off the tasks of every shared project they are in (their
    // membership goes by ON DELETE CASCADE).
    for &project in &shared.0 {
        assignments::unassign(conn, project, user).await?;
    }
    let administered: Vec<Uuid> = project_member::Entity::find()
        .select_only()
        .column(project_member::Column::ProjectId)
        .join(JoinType::InnerJoin, project_member::Relation::Project.def())
        .filter(project_member::Column::UserId.eq(user))
        .filter(project_member::Column::Role.eq(Role::Admin))
        .filter(project::Column::InboxOf.is_null())
        .into_tuple()
        .all(conn)
        .await?;
    // The same lock every change of a project's members takes (`locked`), in id order: a
    // member leaving or being demoted at this moment either finished before (and is seen
    // below) or waits for this deletion (and then finds the user gone). Without it, both
    // could count the other as the remaining admin (found by an attack helper: 9 of 12
    // races left a project with no admin on PostgreSQL).
    project::Entity::find()
        .filter(project::Column::Id.is_in(administered.iter().copied()))
        .order_by_asc(project::Column::Id)
        .lock_exclusive()
        .all(conn)
        .await?;
    for project in administered {
        let others = project_member::Entity::find()
            .filter(project_member::Column::ProjectId.eq(project))
            .filter(project_member::Column::UserId.ne(user))
            .order_by_asc(project_member::Column::CreatedAt)
            .order_by_asc(project_member::Column::UserId)
            .all(conn)
            .await?;
        if others.iter().any(|member| member.role == Role::Admin) {
            continue;
        }
        match others.into_iter().next() {
            Some(heir) => {
                let mut row: project_member::ActiveModel = heir.into();
                row.role = Set(Role::Admin);
                row.update(conn).await?;
            }
            None => {
                project::Entity::delete_by_id(project).exec(conn).await?;
            }
        }
    }
    Ok(())
}

/// The ids of the projects `user` may do `action` in, as the policy decides (an archived
/// project refuses changes of its tasks), as a subquery for statements that filter by
/// project.
pub fn ids_allowed(user: Uuid, action: Action) -> sea_orm::sea_query::SelectStatement {
    let mut query = Query::select()
        .column(project_member::Column::ProjectId)
        .from(project_member::Entity)
        .and_where(ExprTrait::eq(
            Expr::col(project_member::Column::UserId),
            user,
        ))
        .and_where(Expr::col(project_member::Column::Role).gte(action.least_role().stored()))
        .to_owned();
    if action.refused_when_archived() {
        query.and_where(
            Expr::col(project_member::Column::ProjectId).not_in_subquery(
                Query::select()
                    .column(project::Column::Id)
                    .from(project::Entity)
                    .and_where(ExprTrait::eq(Expr::col(project::Column::Archived), true))
                    .to_owned(),
            ),
        );
    }
    query
}
