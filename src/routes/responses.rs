//! Success responses that carry more than a JSON body (status, Location, ETag), each
//! documenting itself in the OpenAPI spec; the caching policy of API responses; and HEAD
//! wherever GET is routed.

use std::sync::Arc;

use salvo::http::{HeaderValue, Method, ResBody, StatusCode, header};
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use salvo::routing::{FilterInfo, MethodFilter};
use serde::Serialize;

use crate::error::{AppError, write_problem};
use crate::views::{RenderJson, TaskView};

fn write_json<T: Serialize>(res: &mut Response, status: StatusCode, body: &T) {
    write_json_bytes(res, status, serde_json::to_vec(body));
}

fn write_json_bytes(res: &mut Response, status: StatusCode, body: serde_json::Result<Vec<u8>>) {
    match body {
        Ok(bytes) => {
            res.status_code(status);
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            let _ = res.write_body(bytes);
        }
        Err(err) => {
            write_problem(res, &AppError::Internal(err.into()).to_problem());
        }
    }
}

/// 200 with a JSON body.
pub struct Ok200<T>(pub T);

#[async_trait]
impl<T: Serialize + Send> Writer for Ok200<T> {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        write_json(res, StatusCode::OK, &self.0);
    }
}

impl<T: ToSchema> EndpointOutRegister for Ok200<T> {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "200",
            oapi::Response::new("OK").add_content("application/json", T::to_schema(components)),
        );
    }
}

/// 200 with a JSON body the view writes itself ([`RenderJson`]): the same bytes and the
/// same documented schema as [`Ok200`], for bodies large and frequent enough that serde's
/// field-by-field writing shows in the profile (a page of tasks).
pub struct Rendered200<T>(pub T);

#[async_trait]
impl<T: RenderJson + Send> Writer for Rendered200<T> {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        write_json_bytes(res, StatusCode::OK, self.0.render_json());
    }
}

impl<T: ToSchema> EndpointOutRegister for Rendered200<T> {
    fn register(components: &mut Components, operation: &mut Operation) {
        Ok200::<T>::register(components, operation);
    }
}

/// 201 with a JSON body and a `Location` header.
pub struct Created<T> {
    pub location: String,
    pub etag: Option<String>,
    pub body: T,
}

#[async_trait]
impl<T: Serialize + Send> Writer for Created<T> {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        let body = serde_json::to_vec(&self.body);
        write_created(res, &self.location, self.etag.as_deref(), body);
    }
}

/// 201 with `Location`, the `ETag` when there is one, and the JSON `body`.
fn write_created(
    res: &mut Response,
    location: &str,
    etag: Option<&str>,
    body: serde_json::Result<Vec<u8>>,
) {
    if let Ok(value) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(etag) = etag.and_then(|tag| HeaderValue::from_str(tag).ok()) {
        res.headers_mut().insert(header::ETAG, etag);
    }
    write_json_bytes(res, StatusCode::CREATED, body);
}

impl<T: ToSchema> EndpointOutRegister for Created<T> {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "201",
            oapi::Response::new("Created; Location names the new resource")
                .add_content("application/json", T::to_schema(components))
                .add_header("Location", location_header(components)),
        );
    }
}

/// 201 for a new task: `Location` names it and `ETag` carries its first version, so a
/// client can go on with conditional requests without fetching it again.
pub struct TaskCreated(pub TaskView);

#[async_trait]
impl Writer for TaskCreated {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        let location = format!("/api/v1/tasks/{}", self.0.id);
        let etag = etag(self.0.version);
        write_created(res, &location, Some(&etag), self.0.render_json());
    }
}

impl EndpointOutRegister for TaskCreated {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "201",
            oapi::Response::new("Created; Location names the new task")
                .add_content("application/json", TaskView::to_schema(components))
                .add_header("Location", location_header(components))
                .add_header("ETag", etag_header(components)),
        );
    }
}

/// 204 without a body.
pub struct NoContent;

#[async_trait]
impl Writer for NoContent {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        res.status_code(StatusCode::NO_CONTENT);
    }
}

impl EndpointOutRegister for NoContent {
    fn register(_components: &mut Components, operation: &mut Operation) {
        operation
            .responses
            .insert("204", oapi::Response::new("Done; no content"));
    }
}

/// The strong ETag of a task version.
pub fn etag(version: i32) -> String {
    format!("\"{version}\"")
}

/// A task with its ETag, or 304 when the client's `If-None-Match` already has it.
pub enum TaskReply {
    Fresh(TaskView),
    NotModified(i32),
}

#[async_trait]
impl Writer for TaskReply {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        let version = match &self {
            TaskReply::Fresh(task) => task.version,
            TaskReply::NotModified(version) => *version,
        };
        if let Ok(value) = HeaderValue::from_str(&etag(version)) {
            res.headers_mut().insert(header::ETAG, value);
        }
        match self {
            TaskReply::Fresh(task) => write_json_bytes(res, StatusCode::OK, task.render_json()),
            TaskReply::NotModified(_) => {
                res.status_code(StatusCode::NOT_MODIFIED);
            }
        }
    }
}

impl EndpointOutRegister for TaskReply {
    fn register(components: &mut Components, operation: &mut Operation) {
        operation.responses.insert(
            "200",
            oapi::Response::new("The task")
                .add_content("application/json", TaskView::to_schema(components))
                .add_header("ETag", etag_header(components)),
        );
        operation.responses.insert(
            "304",
            oapi::Response::new("Not modified (If-None-Match matched)")
                .add_header("ETag", etag_header(components)),
        );
    }
}

fn location_header(components: &mut Components) -> oapi::Header {
    oapi::Header::new(String::to_schema(components))
        .description("Path of the created resource")
        .required(true)
}

fn etag_header(components: &mut Components) -> oapi::Header {
    oapi::Header::new(String::to_schema(components))
        .description(
            "Strong tag of the task's current version (`\"3\"`), for If-Match / If-None-Match",
        )
        .required(true)
}

/// A header whose value is a non-negative integer (a count or delta-seconds), bounded like
/// the 32-bit counters it comes from.
fn count_header(description: &str, required: bool) -> oapi::Header {
    let schema = oapi::Object::with_type(oapi::BasicType::Integer)
        .format(oapi::SchemaFormat::KnownFormat(oapi::KnownFormat::Int32))
        .minimum(0)
        .maximum(i32::MAX);
    oapi::Header::new(schema)
        .description(description)
        .required(required)
}

/// Declares in `doc` the response headers that middleware, not the endpoints, adds (hoops
/// cannot document themselves): `RateLimit-Limit/Remaining/Reset` (IETF RateLimit header
/// fields draft) on every `/api/v1` operation, each of which sits behind the per-IP limit
/// (public auth routes) or the per-user limit (bearer routes), and `Retry-After` on every
/// 429 and 503. The RateLimit fields are optional: a bearer route spends the budget only
/// once the token is verified (so its 401s carry none), and a lockout refusal names no
/// limit. Call on the finished document, after every router is merged.
pub fn declare_middleware_headers(mut doc: oapi::OpenApi) -> oapi::OpenApi {
    for (path, item) in doc.paths.iter_mut() {
        let rate_limited = path.starts_with("/api/v1/");
        for operation in item.operations.values_mut() {
            let bearer = operation
                .securities
                .as_ref()
                .is_some_and(|all| all.iter().any(|requirement| !requirement.is_empty()));
            for (status, response) in operation.responses.iter_mut() {
                let oapi::RefOr::Type(response) = response else {
                    continue;
                };
                if rate_limited && !(bearer && status == "401") {
                    for (name, description) in RATE_LIMIT_HEADERS {
                        response
                            .headers
                            .insert(name.to_string(), count_header(description, false));
                    }
                }
                if status == "429" || status == "503" {
                    response.headers.insert(
                        "Retry-After".to_string(),
                        count_header("Seconds to wait before retrying", true),
                    );
                }
            }
        }
    }
    doc
}

const RATE_LIMIT_HEADERS: [(&str, &str); 3] = [
    (
        "RateLimit-Limit",
        "Requests allowed in the current window of the limit that applies (absent on a lockout)",
    ),
    (
        "RateLimit-Remaining",
        "Requests left in the current window (0 on a 429)",
    ),
    (
        "RateLimit-Reset",
        "Seconds until the window resets (equal to Retry-After on a 429)",
    ),
];

fn routes_only_get(router: &Router) -> bool {
    router.goal.is_some()
        && router.filters.len() == 1
        && matches!(router.filters[0].info(), FilterInfo::Method(method) if method == Method::GET)
}

/// Adds a HEAD route next to every GET route of `router` (RFC 9110 §9.3.2: HEAD is allowed
/// wherever GET is): same hoops, same goal, so status and headers (ETag, RateLimit-*,
/// cache policy) are those of GET. Salvo drops the body of a HEAD response itself. Apply
/// to the served tree, not the one the OpenAPI document is generated from.
pub fn with_head(mut router: Router) -> Router {
    let children = std::mem::take(&mut router.routers);
    for child in children {
        let child = with_head(child);
        let head = routes_only_get(&child).then(|| {
            let mut head = Router::with_filter(MethodFilter(Method::HEAD));
            head.hoops = child.hoops.clone();
            head.goal = child.goal.as_ref().map(Arc::clone);
            head
        });
        router.routers.push(child);
        if let Some(head) = head {
            router.routers.push(head);
        }
    }
    router
}

/// A HEAD response states the `Content-Length` the GET body would have had; without this
/// hook it would be lost with the body salvo drops.
#[handler]
pub async fn head_content_length(
    req: &mut Request,
    depot: &mut Depot,
    res: &mut Response,
    ctrl: &mut FlowCtrl,
) {
    ctrl.call_next(req, depot, res).await;
    if req.method() == Method::HEAD
        && let ResBody::Once(bytes) = &res.body
    {
        let length = HeaderValue::from(bytes.len());
        res.headers_mut().insert(header::CONTENT_LENGTH, length);
    }
}
