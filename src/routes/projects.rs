//! Project routes under `/api/v1/projects`: projects, their members, and (in `routes::tasks`)
//! their task listings. Every write runs to its end in a task of its own
//! (`models::txn::run_to_completion`), whether or not the client is still there. What a caller may do is decided by `models::projects::policy`;
//! a project the caller is not a member of is a 404 on every route.

use futures_util::future::BoxFuture;
use salvo::http::StatusCode;
use salvo::http::header::{self, HeaderValue};
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::domain::Email;
use crate::entities::label;
use crate::error::{AppError, Result};
use crate::extract::{Payload, ResourceId};
use crate::models::idempotency::{self, Scope};
use crate::models::projects::labels::{self, LabelFields};
use crate::models::projects::{self, Action, Member, Membership, NewProject, ProjectChanges};
use crate::models::txn::run_to_completion;
use crate::requests::{
    AddMemberRequest, CreateLabelRequest, CreateProjectRequest, PatchLabelRequest,
    PatchProjectRequest, UpdateMemberRequest,
};
use crate::routes::idempotent::{self, Idempotent};
use crate::routes::responses::{Created, NoContent, Ok200, etag};
use crate::routes::tasks::WriteConditions;
use crate::state::AppState;
use crate::validate::Errors;
use crate::views::{LabelList, LabelView, MemberList, MemberView, ProjectList, ProjectView};

fn project_view(Membership { project, role }: Membership) -> ProjectView {
    ProjectView::new(project, role)
}

fn member_view(
    Member {
        user,
        role,
        joined_at,
        version,
    }: Member,
) -> MemberView {
    MemberView::new(user, role, joined_at, version)
}

/// A project with its `ETag`.
pub struct ProjectReply(pub ProjectView);

#[async_trait]
impl Writer for ProjectReply {
    async fn write(self, req: &mut Request, depot: &mut Depot, res: &mut Response) {
        if let Ok(value) = HeaderValue::from_str(&etag(self.0.version)) {
            res.headers_mut().insert(header::ETAG, value);
        }
        Ok200(self.0).write(req, depot, res).await;
    }
}

impl EndpointOutRegister for ProjectReply {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "200",
            oapi::Response::new("The project; ETag carries its version")
                .add_content("application/json", ProjectView::to_schema(components)),
        );
    }
}

/// The projects the caller is a member of, their Inbox first.
#[endpoint(operation_id = "listProjects", tags("projects"), security(("bearer" = [])), status_codes(200, 401, 429, 503))]
pub async fn list(state: AppState, caller: CurrentUser) -> Result<Ok200<ProjectList>> {
    let items = projects::visible_to(&state.db, caller.id).await?;
    Ok(Ok200(ProjectList {
        items: items.into_iter().map(project_view).collect(),
    }))
}

/// Create a project; the caller becomes its admin. With `Idempotency-Key`, a retry with the
/// same key and body within 24 hours replays the first response and creates nothing.
#[endpoint(operation_id = "createProject", tags("projects"), security(("bearer" = [])), parameters(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "Client-chosen key (1-255 visible ASCII characters) making the create safe to retry: per user, remembered 24 hours")), status_codes(201, 400, 401, 413, 415, 422, 429, 503))]
pub async fn create(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    body: Payload<CreateProjectRequest>,
) -> Result<Idempotent<Created<ProjectView>>> {
    let claim = idempotent::claim(req, &state, Scope::Projects(caller.id)).await?;
    let new = NewProject::try_from(body.0)?;
    let (db, caller_id) = (state.db.clone(), caller.id);
    let Some(claim) = claim else {
        let project = project_view(
            run_to_completion(async move { projects::create(&db, caller_id, new).await }).await?,
        );
        tracing::info!(event = "project_create", user_id = %caller.id, project_id = %project.id, "project created");
        return Ok(Idempotent::Fresh(created_project(project)));
    };
    let once = run_to_completion(async move {
        let render = |membership: &Membership| {
            let Created {
                location,
                etag,
                body,
            } = created_project(project_view(membership.clone()));
            idempotent::stored(StatusCode::CREATED, location, etag, &body)
        };
        idempotency::create_once(
            &db,
            &claim,
            |txn| -> BoxFuture<'_, _> { Box::pin(projects::create_in(txn, caller_id, new)) },
            render,
        )
        .await
    })
    .await?;
    let (created, answer) = idempotent::answer(once);
    if let Some(membership) = created {
        tracing::info!(event = "project_create", user_id = %caller.id, project_id = %membership.project.id, "project created");
    }
    Ok(answer)
}

fn created_project(project: ProjectView) -> Created<ProjectView> {
    Created {
        location: format!("/api/v1/projects/{}", project.id),
        etag: Some(etag(project.version)),
        body: project,
    }
}

/// One project (any member).
#[endpoint(operation_id = "getProject", tags("projects"), security(("bearer" = [])), status_codes(200, 401, 404, 429, 503))]
pub async fn get(state: AppState, caller: CurrentUser, id: ResourceId) -> Result<ProjectReply> {
    let project = projects::get(&state.db, caller.id, id.0, Action::Read).await?;
    Ok(ProjectReply(project_view(project)))
}

/// Rename, describe, colour or archive a project (its admins). Honours `If-Match` (412).
#[endpoint(operation_id = "updateProject", tags("projects"), security(("bearer" = [])), parameters(("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the current version, compared strongly; else 412")), status_codes(200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503))]
pub async fn patch(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<PatchProjectRequest>,
) -> Result<ProjectReply> {
    let changes = ProjectChanges::try_from(body.0)?;
    let conditions = WriteConditions::from_request(req);
    let (db, caller_id) = (state.db.clone(), caller.id);
    let project = run_to_completion(async move {
        projects::update(&db, caller_id, id.0, changes, |version| {
            conditions.allow(version)
        })
        .await
    })
    .await?;
    Ok(ProjectReply(project_view(project)))
}

/// Delete a project with its tasks (its admins; never an Inbox). Honours `If-Match` (412).
#[endpoint(operation_id = "deleteProject", tags("projects"), security(("bearer" = [])), parameters(("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the current version, compared strongly; else 412")), status_codes(204, 401, 403, 404, 409, 412, 429, 503))]
pub async fn delete(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
) -> Result<NoContent> {
    let conditions = WriteConditions::from_request(req);
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    run_to_completion(async move {
        let audience =
            projects::delete(&db, caller_id, id.0, |version| conditions.allow(version)).await?;
        // Committed: the members' open streams read the tombstones now.
        feed.changed_for(audience).await;
        Ok(())
    })
    .await?;
    tracing::info!(event = "project_delete", user_id = %caller.id, project_id = %id.0, "project deleted");
    Ok(NoContent)
}

/// The project's members (any member), longest-standing first.
#[endpoint(operation_id = "listMembers", tags("projects"), security(("bearer" = [])), status_codes(200, 401, 404, 429, 503))]
pub async fn members(
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
) -> Result<Ok200<MemberList>> {
    let listed = projects::members(&state.db, caller.id, id.0).await?;
    Ok(Ok200(MemberList {
        items: listed.into_iter().map(member_view).collect(),
    }))
}

/// Add an existing account, by e-mail, with a role (the project's admins; not to an Inbox).
/// An address without an account is a 422 naming `email`.
#[endpoint(operation_id = "addMember", tags("projects"), security(("bearer" = [])), status_codes(201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503))]
pub async fn add_member(
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<AddMemberRequest>,
) -> Result<Created<MemberView>> {
    let AddMemberRequest { email, role } = body.0;
    let mut errors = Errors::default();
    let email = Email::parse(&mut errors, &email);
    let email = errors.finish_parsed(email)?;
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    let member = run_to_completion(async move {
        let (member, audience) = projects::add_member(&db, caller_id, id.0, email, role).await?;
        feed.changed_for(audience).await;
        Ok(member)
    })
    .await?;
    tracing::info!(event = "member_add", user_id = %caller.id, project_id = %id.0, member_id = %member.user.id, "member added");
    Ok(Created {
        location: format!("/api/v1/projects/{}/members/{}", id.0, member.user.id),
        etag: Some(etag(member.version)),
        body: member_view(member),
    })
}

/// The path's `{id}` and its second id `{second}`; a path that names no valid id is a 404
/// for `what`.
pub(crate) fn path_ids(req: &Request, second: &str, what: &'static str) -> Result<(Uuid, Uuid)> {
    let parse = |name: &str| {
        req.param::<String>(name)
            .and_then(|raw| Uuid::parse_str(&raw).ok())
            .ok_or(AppError::NotFound(what))
    };
    Ok((parse("id")?, parse(second)?))
}

fn member_path(req: &Request) -> Result<(Uuid, Uuid)> {
    path_ids(req, "user_id", "Member")
}

/// Change a member's role (the project's admins). The last admin cannot be demoted (409).
/// Honours `If-Match` with the member's `version` (412).
#[endpoint(operation_id = "updateMember", tags("projects"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The project"), ("user_id" = Uuid, Path, description = "The member's user id"), ("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the membership's current version, compared strongly; else 412")), status_codes(200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503))]
pub async fn update_member(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    body: Payload<UpdateMemberRequest>,
) -> Result<Ok200<MemberView>> {
    let (project, member) = member_path(req)?;
    let conditions = WriteConditions::from_request(req);
    let (db, feed, caller_id, role) =
        (state.db.clone(), state.feed.clone(), caller.id, body.0.role);
    let updated = run_to_completion(async move {
        let precondition = |version| conditions.allow(version);
        let (member, audience) =
            projects::set_role(&db, caller_id, project, member, role, precondition).await?;
        feed.changed_for(audience).await;
        Ok(member)
    })
    .await?;
    tracing::info!(event = "member_role", user_id = %caller.id, project_id = %project, member_id = %member, "member role changed");
    Ok(Ok200(member_view(updated)))
}

/// Remove a member (the project's admins), or leave (any member, their own id). The last
/// admin cannot go (409), and nobody leaves an Inbox. Honours `If-Match` with the member's
/// `version` (412).
#[endpoint(operation_id = "removeMember", tags("projects"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The project"), ("user_id" = Uuid, Path, description = "The member's user id"), ("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the membership's current version, compared strongly; else 412")), status_codes(204, 401, 403, 404, 409, 412, 429, 503))]
pub async fn remove_member(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
) -> Result<NoContent> {
    let (project, member) = member_path(req)?;
    let conditions = WriteConditions::from_request(req);
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    run_to_completion(async move {
        let precondition = |version| conditions.allow(version);
        let audience =
            projects::remove_member(&db, caller_id, project, member, precondition).await?;
        feed.changed_for(audience).await;
        Ok(())
    })
    .await?;
    tracing::info!(event = "member_remove", user_id = %caller.id, project_id = %project, member_id = %member, "member removed");
    Ok(NoContent)
}

/// The project's labels (any member), by name.
#[endpoint(operation_id = "listLabels", tags("projects"), security(("bearer" = [])), status_codes(200, 401, 404, 429, 503))]
pub async fn list_labels(
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
) -> Result<Ok200<LabelList>> {
    let items = labels::list(&state.db, caller.id, id.0).await?;
    Ok(Ok200(LabelList {
        items: items.into_iter().map(LabelView::from).collect(),
    }))
}

/// Create a label (the project's admins). A name the project already has, in any case, is a
/// 409. With `Idempotency-Key`, a retry with the same key and body within 24 hours replays
/// the first response and creates nothing.
#[endpoint(operation_id = "createLabel", tags("projects"), security(("bearer" = [])), parameters(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "Client-chosen key (1-255 visible ASCII characters) making the create safe to retry: per user, remembered 24 hours")), status_codes(201, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503))]
pub async fn create_label(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<CreateLabelRequest>,
) -> Result<Idempotent<Created<LabelView>>> {
    let scope = Scope::Labels {
        user: caller.id,
        project: id.0,
    };
    let claim = idempotent::claim(req, &state, scope).await?;
    let fields = LabelFields::try_from(body.0)?;
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    let Some(claim) = claim else {
        let label = LabelView::from(
            run_to_completion(async move {
                let (label, audience) = labels::create(&db, caller_id, id.0, fields).await?;
                feed.changed_for(audience).await;
                Ok(label)
            })
            .await?,
        );
        return Ok(Idempotent::Fresh(created_label(label)));
    };
    // A replay, too, only for someone who may still manage the project's labels.
    projects::require(
        &state.db,
        caller.id,
        id.0,
        Action::Administer,
        projects::NOT_FOUND,
    )
    .await?;
    run_to_completion(async move {
        let render = |(label, _): &(label::Model, Vec<Uuid>)| {
            let Created {
                location,
                etag,
                body,
            } = created_label(LabelView::from(label.clone()));
            idempotent::stored(StatusCode::CREATED, location, etag, &body)
        };
        let once = idempotency::create_once(
            &db,
            &claim,
            |txn| -> BoxFuture<'_, _> { Box::pin(labels::create_in(txn, caller_id, id.0, fields)) },
            render,
        )
        .await?;
        let (created, answer) = idempotent::answer(once);
        if let Some((_, audience)) = created {
            feed.changed_for(audience).await;
        }
        Ok(answer)
    })
    .await
}

fn created_label(label: LabelView) -> Created<LabelView> {
    Created {
        location: format!("/api/v1/projects/{}/labels/{}", label.project_id, label.id),
        etag: Some(etag(label.version)),
        body: label,
    }
}

/// Rename or recolour a label (the project's admins). Honours `If-Match` (412).
#[endpoint(operation_id = "updateLabel", tags("projects"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The project"), ("label_id" = Uuid, Path, description = "The label"), ("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the current version, compared strongly; else 412")), status_codes(200, 400, 401, 403, 404, 409, 412, 413, 415, 422, 429, 503))]
pub async fn update_label(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    body: Payload<PatchLabelRequest>,
) -> Result<Ok200<LabelView>> {
    let (project, label) = path_ids(req, "label_id", "Label")?;
    let fields = LabelFields::try_from(body.0)?;
    let conditions = WriteConditions::from_request(req);
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    let updated = run_to_completion(async move {
        let (label, audience) = labels::update(&db, caller_id, project, label, fields, |version| {
            conditions.allow(version)
        })
        .await?;
        feed.changed_for(audience).await;
        Ok(label)
    })
    .await?;
    Ok(Ok200(updated.into()))
}

/// Delete a label (the project's admins).
#[endpoint(operation_id = "deleteLabel", tags("projects"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The project"), ("label_id" = Uuid, Path, description = "The label")), status_codes(204, 401, 403, 404, 429, 503))]
pub async fn delete_label(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
) -> Result<NoContent> {
    let (project, label) = path_ids(req, "label_id", "Label")?;
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    run_to_completion(async move {
        let audience = labels::delete(&db, caller_id, project, label).await?;
        feed.changed_for(audience).await;
        Ok(())
    })
    .await?;
    Ok(NoContent)
}
