//! One error type for the whole service, mapped once to an HTTP status and an
//! RFC 9457 `application/problem+json` body. Salvo's own errors (unknown route,
//! wrong method, panics, timeouts) are turned into the same shape by [`ProblemCatcher`].

use salvo::http::{HeaderValue, ResBody, StatusCode, header};
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use sea_orm::{DbErr, RuntimeErr, SqlErr};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";
const PROBLEM_BASE: &str = "https://taskapi.dev/problems/";
/// `Retry-After` of every 503: long enough for a pool to reconnect or a load balancer to
/// move on, short enough that a client does not give up on a brief outage.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u16 = 5;
/// Detail of the 503 an API call gets while the database schema is behind this binary.
pub const MIGRATIONS_PENDING: &str =
    "The database schema is not migrated yet (migrations pending); retry shortly.";

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// One invalid input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[salvo(schema(name = "FieldError"))]
pub struct FieldError {
    /// Name of the offending field, as spelled in the request.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
#[salvo(schema(name = "Problem"))]
pub struct Problem {
    /// URI identifying the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Per-field validation errors (only on 422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

impl Problem {
    /// The one place a problem body is built: `type` is `slug` under the service's problem
    /// base URL and `title` is the status's reason phrase, so no caller spells either.
    pub fn new(status: StatusCode, slug: &str, detail: impl Into<String>) -> Self {
        Self {
            problem_type: format!("{PROBLEM_BASE}{slug}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            errors: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed request: {0}")]
    BadRequest(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("authentication required: {0}")]
    Unauthorized(&'static str),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("payload too large")]
    PayloadTooLarge(usize),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The client-facing body. Internal errors say nothing about their cause; it is logged instead.
    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let (slug, detail, errors) = match self {
            Self::BadRequest(why) => ("malformed-request", why.clone(), None),
            Self::Validation(fields) => (
                "validation-error",
                "One or more fields are invalid.".to_string(),
                Some(fields.clone()),
            ),
            Self::Unauthorized(why) => ("unauthorized", (*why).to_string(), None),
            Self::InvalidCredentials => (
                "invalid-credentials",
                "Invalid email or password.".to_string(),
                None,
            ),
            Self::Forbidden(why) => ("forbidden", (*why).to_string(), None),
            Self::NotFound(what) => ("not-found", format!("{what} not found."), None),
            Self::Conflict(why) => ("conflict", why.clone(), None),
            Self::PreconditionFailed => (
                "precondition-failed",
                "The resource was modified since you fetched it (If-Match does not match its current ETag).".to_string(),
                None,
            ),
            Self::PayloadTooLarge(limit) => (
                "payload-too-large",
                format!("The request body exceeds the limit of {limit} bytes."),
                None,
            ),
            Self::UnsupportedMediaType => (
                "unsupported-media-type",
                "Send the body as application/json.".to_string(),
                None,
            ),
            Self::TooManyRequests { retry_after_secs } => (
                "rate-limited",
                format!("Too many requests; retry after {retry_after_secs} seconds."),
                None,
            ),
            Self::Unavailable(why) => ("service-unavailable", (*why).to_string(), None),
            Self::Internal(_) => (
                "internal-error",
                "An unexpected error occurred; it has been logged.".to_string(),
                None,
            ),
        };
        Problem {
            errors,
            ..Problem::new(status, slug, detail)
        }
    }
}

/// Turns a unique-constraint violation into 409 with `message`; anything else stays an error.
pub fn conflict_on_unique(err: DbErr, message: &str) -> AppError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => AppError::Conflict(message.to_string()),
        _ => AppError::from(err),
    }
}

/// A write naming its owner failed the owner's foreign key: the account was deleted while
/// the request ran (its token was checked just before). The client gets what the same token
/// gets from then on, a 401, instead of a 500.
pub fn unauthorized_on_missing_owner(err: DbErr) -> AppError {
    match err.sql_err() {
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
            AppError::Unauthorized("Invalid or expired token.")
        }
        _ => AppError::from(err),
    }
}

/// A write naming a parent row (a project, a task) failed its foreign key: the parent was
/// deleted while the request ran. The client gets what it gets from then on: a 404 for
/// `what`, instead of a 500.
pub fn not_found_on_missing_parent(err: DbErr, what: &'static str) -> AppError {
    if is_missing_parent(&err) {
        AppError::NotFound(what)
    } else {
        AppError::from(err)
    }
}

/// Whether `err` is a foreign-key violation: a referenced row is gone.
pub fn is_missing_parent(err: &DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(SqlErr::ForeignKeyConstraintViolation(_))
    )
}

/// Whether `err` means "another transaction got in the way; the same work may succeed if
/// started again": PostgreSQL deadlock or serialization failure, SQLite busy or locked
/// (primary result codes 5 and 6, with any extended code).
pub fn is_contention(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Exec(RuntimeErr::SqlxError(inner))
    | DbErr::Query(RuntimeErr::SqlxError(inner))
    | DbErr::Conn(RuntimeErr::SqlxError(inner))) = err
    else {
        return false;
    };
    let Sqlx::Database(db) = inner.as_ref() else {
        return false;
    };
    let Some(code) = db.code() else {
        return false;
    };
    if db
        .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
        .is_some()
    {
        // SQLite reports extended result codes; the primary code is the low byte.
        code.parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
    } else {
        code == "40P01" || code == "40001"
    }
}

/// Whether a database error means "the database is not reachable right now" (pool
/// exhausted, connection lost, server shutting down or restarting) rather than a bug.
fn is_transient(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                Sqlx::Io(_)
                | Sqlx::Tls(_)
                | Sqlx::Protocol(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed => true,
                // SQLSTATE 08xxx connection exceptions, 57xxx operator intervention
                // (e.g. 57P01 admin shutdown), 53300 too many connections.
                Sqlx::Database(db) => db.code().is_some_and(|code| {
                    code.starts_with("08") || code.starts_with("57") || code == "53300"
                }),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Whether the error says a table or column this binary expects does not exist: the
/// database has not been migrated to this version yet (e.g. pods started before the
/// migrate Job finished). That is an operational state, not a bug, so it is a 503.
fn is_schema_behind(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as Sqlx;
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) =
        err
    else {
        return false;
    };
    let Sqlx::Database(db) = inner.as_ref() else {
        return false;
    };
    // PostgreSQL: 42P01 undefined_table, 42703 undefined_column. SQLite has no SQLSTATE,
    // only its message.
    db.code()
        .is_some_and(|code| code == "42P01" || code == "42703")
        || db.message().starts_with("no such table")
        || db.message().starts_with("no such column")
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_schema_behind(&err) {
            tracing::warn!(error = %err, "database schema behind this binary");
            return AppError::Unavailable(MIGRATIONS_PENDING);
        }
        if is_contention(&err) {
            // A deadlock, serialization failure or busy SQLite that outlasted the retries
            // (models::txn): a lost race, not a bug; the client may simply try again.
            tracing::warn!(error = %err, "database contention");
            return AppError::Unavailable(
                "The database is busy with concurrent changes; retry shortly.",
            );
        }
        if is_transient(&err) {
            // The request may well succeed once the database is back.
            tracing::warn!(error = %err, "database unavailable");
            AppError::Unavailable("The database is temporarily unavailable; retry shortly.")
        } else {
            AppError::Internal(anyhow::Error::new(err))
        }
    }
}

/// Writes `problem` as the response: its status, `application/problem+json`, and the
/// headers its status calls for (`WWW-Authenticate` on 401, `Retry-After` on 503).
pub fn write_problem(res: &mut Response, problem: &Problem) {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.status_code(status);
    let body = serde_json::to_vec(problem).unwrap_or_else(|_| b"{}".to_vec());
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    // Every 503 (database down, schema behind, draining, timeout, stalled database) is
    // temporary by definition; say when to come back (RFC 9110 §10.2.3).
    if status == StatusCode::SERVICE_UNAVAILABLE && !res.headers().contains_key(header::RETRY_AFTER)
    {
        res.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECS),
        );
    }
    res.body(ResBody::Once(body.into()));
}

#[async_trait]
impl Writer for AppError {
    async fn write(self, _req: &mut Request, _depot: &mut Depot, res: &mut Response) {
        match &self {
            AppError::Internal(err) => tracing::error!(error = ?err, "internal error"),
            AppError::Unavailable(_) => tracing::warn!(error = %self, "request failed"),
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        if let AppError::TooManyRequests { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            res.headers_mut().insert(header::RETRY_AFTER, value);
        }
        write_problem(res, &self.to_problem());
    }
}

/// Documents every error status with the Problem schema; each endpoint keeps only the
/// statuses it can really return through `status_codes(...)`.
impl EndpointOutRegister for AppError {
    fn register(components: &mut Components, operation: &mut Operation) {
        let schema = Problem::to_schema(components);
        for (code, description) in [
            (400, "Malformed request"),
            (401, "Missing, invalid or expired credentials"),
            (403, "Authenticated but not allowed"),
            (404, "Not found (also: owned by someone else)"),
            (409, "Conflict with current state"),
            (
                412,
                "A precondition failed: If-Match names no current ETag, or If-None-Match names it",
            ),
            (413, "Body larger than the limit"),
            (415, "Body is not application/json"),
            (422, "Validation failed"),
            (429, "Rate limited; see Retry-After"),
            (500, "Unexpected error"),
            (503, "Database unavailable or server draining"),
        ] {
            operation.responses.insert(
                code.to_string(),
                oapi::Response::new(description)
                    .add_content(PROBLEM_JSON, oapi::Content::new(schema.clone())),
            );
        }
    }
}

/// Catcher goal: whatever error salvo produced itself (no route, wrong method, panic,
/// timeout, oversized body) leaves as problem+json instead of an HTML page.
pub struct ProblemCatcher;

#[async_trait]
impl Handler for ProblemCatcher {
    async fn handle(
        &self,
        _req: &mut Request,
        _depot: &mut Depot,
        res: &mut Response,
        _ctrl: &mut FlowCtrl,
    ) {
        let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
        if !(status.is_client_error() || status.is_server_error()) {
            return;
        }
        let (status, brief) = match &res.body {
            ResBody::Error(err) => (err.code, err.brief.clone()),
            _ => (status, String::new()),
        };
        let slug = match status {
            StatusCode::NOT_FOUND => "not-found",
            StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
            StatusCode::SERVICE_UNAVAILABLE => "service-unavailable",
            StatusCode::GATEWAY_TIMEOUT | StatusCode::REQUEST_TIMEOUT => "timeout",
            _ if status.is_server_error() => "internal-error",
            _ => "http-error",
        };
        let detail = match status {
            StatusCode::NOT_FOUND => "No resource at this path.".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => {
                "This method is not allowed on this path.".to_string()
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                "An unexpected error occurred; it has been logged.".to_string()
            }
            _ if !brief.is_empty() => brief,
            _ => status.canonical_reason().unwrap_or("Error").to_string(),
        };
        write_problem(res, &Problem::new(status, slug, detail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = AppError::Internal(anyhow::anyhow!("password column missing at 10.0.0.3"));
        let body = serde_json::to_string(&err.to_problem()).expect("serializes");
        assert!(!body.contains("10.0.0.3"));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn validation_problem_lists_fields() {
        let problem = AppError::validation("email", "must be a valid email").to_problem();
        assert_eq!(problem.status, 422);
        let errors = problem.errors.expect("field errors present");
        assert_eq!(errors[0].field, "email");
    }
}
