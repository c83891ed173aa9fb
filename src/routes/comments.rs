//! Comment routes under `/api/v1/tasks/{id}/comments`: a task's thread, for whoever may read
//! the task (`models::comments` says who may write). Writes run to their end whether or not
//! the client is still there (`models::txn::run_to_completion`).

use futures_util::future::BoxFuture;
use salvo::http::StatusCode;
use salvo::prelude::*;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::domain::CommentBody;
use crate::entities::comment;
use crate::error::Result;
use crate::extract::{Payload, Query, ResourceId};
use crate::models::comments;
use crate::models::idempotency::{self, Scope};
use crate::models::txn::run_to_completion;
use crate::requests::{CommentRequest, CommentsQuery};
use crate::routes::idempotent::{self, Idempotent};
use crate::routes::projects::path_ids;
use crate::routes::responses::{Created, NoContent, Ok200, etag};
use crate::routes::tasks::WriteConditions;
use crate::state::AppState;
use crate::validate::Errors;
use crate::views::{CommentPage, CommentView};

const DEFAULT_PAGE: u64 = 50;

fn parse_body(req: CommentRequest) -> Result<CommentBody> {
    let mut errors = Errors::default();
    let body = CommentBody::parse(&mut errors, req.body);
    errors.finish_parsed(body)
}

/// The task's comments, oldest first, `limit` at a time (keyset: `cursor` is the previous
/// page's `next_cursor`).
#[endpoint(operation_id = "listComments", tags("comments"), security(("bearer" = [])), status_codes(200, 401, 404, 422, 429, 503))]
pub async fn list(
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    query: Query<CommentsQuery>,
) -> Result<Ok200<CommentPage>> {
    let CommentsQuery { limit, cursor } = query.0;
    let mut errors = Errors::default();
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=100).contains(&limit) {
        errors.add("limit", "must be between 1 and 100");
    }
    let after = cursor.and_then(|raw| match Uuid::parse_str(&raw) {
        Ok(id) => Some(id),
        Err(_) => {
            errors.add("cursor", "is not a cursor this API gave");
            None
        }
    });
    errors.finish(())?;
    let items = comments::list(&state.db, caller.id, id.0, after, limit).await?;
    let next_cursor = (items.len() as u64 == limit)
        .then(|| items.last().map(|last| last.id.to_string()))
        .flatten();
    Ok(Ok200(CommentPage {
        items: items.into_iter().map(CommentView::from).collect(),
        next_cursor,
    }))
}

/// Comment on a task (editors and admins of its project). With `Idempotency-Key`, a retry
/// with the same key and body within 24 hours replays the first response and creates nothing.
#[endpoint(operation_id = "createComment", tags("comments"), security(("bearer" = [])), parameters(("Idempotency-Key" = Option<String>, Header, max_length = 255, pattern = r"^[!-~]{1,255}$", description = "Client-chosen key (1-255 visible ASCII characters) making the create safe to retry: per user, remembered 24 hours")), status_codes(201, 400, 401, 403, 404, 413, 415, 422, 429, 503))]
pub async fn create(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    id: ResourceId,
    body: Payload<CommentRequest>,
) -> Result<Idempotent<Created<CommentView>>> {
    let scope = Scope::Comments {
        user: caller.id,
        task: id.0,
    };
    let claim = idempotent::claim(req, &state, scope).await?;
    let text = parse_body(body.0)?;
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    let Some(claim) = claim else {
        let comment = CommentView::from(
            run_to_completion(async move {
                let (comment, audience) = comments::create(&db, caller_id, id.0, text).await?;
                feed.changed_for(audience).await;
                Ok(comment)
            })
            .await?,
        );
        tracing::info!(event = "comment_create", user_id = %caller.id, task_id = %id.0, comment_id = %comment.id, "comment created");
        return Ok(Idempotent::Fresh(created_comment(comment)));
    };
    // A replay, too, only for someone who may still comment there.
    comments::may_comment(&state.db, caller.id, id.0).await?;
    run_to_completion(async move {
        let render = |(comment, _): &(comment::Model, Vec<Uuid>)| {
            let Created { location, etag, body } =
                created_comment(CommentView::from(comment.clone()));
            idempotent::stored(StatusCode::CREATED, location, etag, &body)
        };
        let once = idempotency::create_once(
            &db,
            &claim,
            |txn| -> BoxFuture<'_, _> { Box::pin(comments::create_in(txn, caller_id, id.0, text)) },
            render,
        ).await?;
        let (created, answer) = idempotent::answer(once);
        if let Some((comment, audience)) = created {
            tracing::info!(event = "comment_create", user_id = %caller_id, task_id = %id.0, comment_id = %comment.id, "comment created");
            feed.changed_for(audience).await;
        }
        Ok(answer)
    })
    .await
}

fn created_comment(comment: CommentView) -> Created<CommentView> {
    Created {
        location: format!("/api/v1/tasks/{}/comments/{}", comment.task_id, comment.id),
        etag: Some(etag(comment.version)),
        body: comment,
    }
}

/// Edit one's own comment. Honours `If-Match` (412).
#[endpoint(operation_id = "updateComment", tags("comments"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The task"), ("comment_id" = Uuid, Path, description = "The comment"), ("If-Match" = Option<String>, Header, description = "Entity tags one of which must be the current version, compared strongly; else 412")), status_codes(200, 400, 401, 403, 404, 412, 413, 415, 422, 429, 503))]
pub async fn update(
    req: &mut Request,
    state: AppState,
    caller: CurrentUser,
    body: Payload<CommentRequest>,
) -> Result<Ok200<CommentView>> {
    let (task, comment) = path_ids(req, "comment_id", "Comment")?;
    let text = parse_body(body.0)?;
    let conditions = WriteConditions::from_request(req);
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    let updated = run_to_completion(async move {
        let (comment, audience) =
            comments::update(&db, caller_id, task, comment, text, |version| {
                conditions.allow(version)
            })
            .await?;
        feed.changed_for(audience).await;
        Ok(comment)
    })
    .await?;
    Ok(Ok200(updated.into()))
}

/// Delete a comment: one's own, or any as an admin of the task's project.
#[endpoint(operation_id = "deleteComment", tags("comments"), security(("bearer" = [])), parameters(("id" = Uuid, Path, description = "The task"), ("comment_id" = Uuid, Path, description = "The comment")), status_codes(204, 401, 403, 404, 429, 503))]
pub async fn delete(req: &mut Request, state: AppState, caller: CurrentUser) -> Result<NoContent> {
    let (task, comment) = path_ids(req, "comment_id", "Comment")?;
    let (db, feed, caller_id) = (state.db.clone(), state.feed.clone(), caller.id);
    run_to_completion(async move {
        let audience = comments::delete(&db, caller_id, task, comment).await?;
        feed.changed_for(audience).await;
        Ok(())
    })
    .await?;
    tracing::info!(event = "comment_delete", user_id = %caller.id, task_id = %task, comment_id = %comment, "comment deleted");
    Ok(NoContent)
}
