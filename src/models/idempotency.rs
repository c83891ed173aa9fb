//! Idempotent creates: a client that sends `Idempotency-Key` with `POST /api/v1/tasks` or
//! `POST /api/v1/auth/register` may retry freely; the first success is stored and every
//! retry with the same key and body, on any replica, gets the same response back.
//!
//! How a create runs (one write transaction, PostgreSQL or SQLite):
//! 1. Look the key up (no write): a stored response with this body's fingerprint is
//!    replayed; one with another fingerprint is a 422. Nothing is created either way.
//! 2. Otherwise, in one transaction: insert the key row (primary key (scope, key)), do the
//!    create, store its response in the key row, commit. A concurrent request with the
//!    same key blocks on that primary key (PostgreSQL) or on the write lock (SQLite, which
//!    starts the transaction `BEGIN IMMEDIATE`) until the first commits, then fails on the
//!    key and replays the committed response. So racing duplicates make exactly one
//!    resource, and all of them answer with it; none sees a half-done key (the row only
//!    becomes visible with the response in it). If the first create fails or its process
//!    dies, its transaction rolls back, the key with it, and a retry starts afresh.
//!
//! Only successes are stored: a 422 or 409 leaves no row, so a corrected retry under the
//! same key is a new request. Keys live [`RETENTION`]; expired rows are ignored and
//! deleted by [`purge_periodically`].

use chrono::{DateTime, Duration, Utc};
use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, Set, SqlErr,
};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::mac::hmac_sha256;
use crate::auth::password::PasswordHasher;
use crate::entities::idempotency_key;
use crate::entities::{task, user};
use crate::error::{AppError, Result};
use crate::models::housekeeping;
use crate::models::tasks::{TaskInput, insert_with_event, new_task};
use crate::models::txn;
use crate::models::users::{self, NewUser};
use crate::validate;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The response header set on a replayed response.
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// How long a key is remembered.
pub const RETENTION: Duration = Duration::hours(24);
/// Longest key accepted (characters, all ASCII).
pub const KEY_MAX: usize = 255;
/// Rows deleted per purge statement, and statements per purge run.
pub const PURGE_BATCH: u64 = 1_000;
pub const PURGE_MAX_BATCHES: u32 = 20;
/// How often each replica purges expired keys.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);

const INVALID_KEY: &str = "must be 1-255 visible ASCII characters (no spaces), sent once";
const REUSED_KEY: &str = "was already used with a different request body within 24 hours; send a new key for a different request";
const STILL_RUNNING: &str =
    "A request with this Idempotency-Key is still being processed; retry shortly.";

/// A client's `Idempotency-Key`: 1-255 characters from `!` to `~`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates the raw header value(s): `None` when the header is absent, a 422 naming
    /// the header when it is malformed or sent more than once.
    pub fn from_values<'a>(
        mut values: impl Iterator<Item = &'a [u8]>,
    ) -> Result<Option<IdempotencyKey>> {
        let Some(first) = values.next() else {
            return Ok(None);
        };
        let invalid = || AppError::validation(HEADER, INVALID_KEY);
        if values.next().is_some() || first.is_empty() || first.len() > KEY_MAX {
            return Err(invalid());
        }
        if !first.iter().all(|b| (0x21..=0x7e).contains(b)) {
            return Err(invalid());
        }
        // All ASCII, so this cannot fail.
        let text = std::str::from_utf8(first).map_err(|_| invalid())?;
        Ok(Some(IdempotencyKey(text.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whose keys a key is compared with.
///
/// Task keys are per user: another user's identical key is a different key. Registration
/// has no user yet, so its keys share one scope; a replay there still requires the same
/// fingerprint, which covers the whole body (password included), so only a client that
/// sent exactly that registration (and so already knows everything in the response) can
/// get it back; anyone else with the same key gets a 422 and learns nothing but that the
/// key is taken. The stored response is the public user view: no token, no hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Tasks(Uuid),
    Register,
    /// A user's project creates.
    Projects(Uuid),
    /// A user's label creates in `project` (one key space per user; the project is part of
    /// the request's fingerprint, so a key reused on another project is another request).
    Labels {
        user: Uuid,
        project: Uuid,
    },
    /// A user's comments on `task` (as labels).
    Comments {
        user: Uuid,
        task: Uuid,
    },
}

impl Scope {
    fn column_value(self) -> String {
        match self {
            Scope::Tasks(owner) => format!("tasks:{owner}"),
            Scope::Register => "register".to_string(),
            Scope::Projects(user) => format!("projects:{user}"),
            Scope::Labels { user, .. } => format!("labels:{user}"),
            Scope::Comments { user, .. } => format!("comments:{user}"),
        }
    }

    /// What the request is created under, besides its body (the path's id).
    fn parent(self) -> Option<Uuid> {
        match self {
            Scope::Labels { project, .. } => Some(project),
            Scope::Comments { task, .. } => Some(task),
            Scope::Tasks(_) | Scope::Register | Scope::Projects(_) => None,
        }
    }
}

/// Hex HMAC-SHA256 of the scope and the canonical request body (see [`fingerprint`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint(String);

/// The fingerprint of a JSON request body: keyed with `key` (derived from the server
/// secret) so a registration's password cannot be guessed offline from a leaked table.
/// Canonical means: object keys sorted, insignificant whitespace dropped, strings and
/// numbers as serde_json writes them, so `{"a":1, "b":2}` and `{"b":2,"a":1}` are the same
/// request. The body was already parsed by the extractor, so it is JSON.
pub fn fingerprint(key: &[u8], scope: Scope, body: &[u8]) -> Result<Fingerprint> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| AppError::BadRequest(format!("The body is not valid JSON: {err}")))?;
    // serde_json's map is ordered by key (its `preserve_order` feature is off; a test pins
    // it) and writes no whitespace: its compact output is the canonical form.
    let canonical = value.to_string();
    let parent = scope.parent().map(|id| id.to_string());
    let scope = scope.column_value();
    // Without a parent, the same input as before parents existed: keys stored by an
    // older binary still match their retries.
    let tag = match &parent {
        Some(parent) => hmac_sha256(
            key,
            &[
                scope.as_bytes(),
                b"\0",
                parent.as_bytes(),
                b"\0",
                canonical.as_bytes(),
            ],
        ),
        None => hmac_sha256(key, &[scope.as_bytes(), b"\0", canonical.as_bytes()]),
    };
    Ok(Fingerprint(hex::encode(tag)))
}

/// A response as sent, stored for replay: nothing in it the client did not already get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The JSON body, byte for byte.
    pub body: String,
    pub location: Option<String>,
    pub etag: Option<String>,
}

impl From<idempotency_key::Model> for StoredResponse {
    fn from(row: idempotency_key::Model) -> Self {
        Self {
            status: u16::try_from(row.status).unwrap_or(500),
            body: row.body,
            location: row.location,
            etag: row.etag,
        }
    }
}

/// What an idempotent create did.
#[derive(Debug)]
pub enum Once<T> {
    /// Created now; the response was stored with the key.
    Created(T, StoredResponse),
    /// An earlier request with this key and body created it; here is its response.
    Replayed(StoredResponse),
}

/// One idempotent request: its scope, key and body fingerprint.
#[derive(Debug, Clone)]
pub struct Claim {
    pub scope: Scope,
    pub key: IdempotencyKey,
    pub fingerprint: Fingerprint,
}

impl Claim {
    fn filter(&self) -> sea_orm::Condition {
        sea_orm::Condition::all()
            .add(idempotency_key::Column::Scope.eq(self.scope.column_value()))
            .add(idempotency_key::Column::IdempotencyKey.eq(self.key.as_str()))
    }
}

/// The stored response for `claim`, if its key is known and unexpired: `Ok(None)` when
/// unknown, a 422 naming the header when the key came with another body.
pub async fn lookup<C: ConnectionTrait>(
    conn: &C,
    claim: &Claim,
    now: DateTime<Utc>,
) -> Result<Option<StoredResponse>> {
    let row = idempotency_key::Entity::find()
        .filter(claim.filter())
        .filter(idempotency_key::Column::CreatedAt.gte(now - RETENTION))
        .one(conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) if row.fingerprint == claim.fingerprint.0 => Ok(Some(row.into())),
        Some(_) => Err(AppError::validation(HEADER, REUSED_KEY)),
    }
}

/// Inserts the key row for `claim` (with the response still empty) in the caller's
/// transaction. An expired row with the same key is deleted first, so an old key can be
/// used again. Fails with a unique violation when the key is taken.
async fn reserve<C: ConnectionTrait>(
    conn: &C,
    claim: &Claim,
    now: DateTime<Utc>,
) -> std::result::Result<(), DbErr> {
    idempotency_key::Entity::delete_many()
        .filter(claim.filter())
        .filter(idempotency_key::Column::CreatedAt.lt(now - RETENTION))
        .exec(conn)
        .await?;
    idempotency_key::ActiveModel {
        scope: Set(claim.scope.column_value()),
        idempotency_key: Set(claim.key.as_str().to_string()),
        fingerprint: Set(claim.fingerprint.0.clone()),
        status: Set(0),
        body: Set(String::new()),
        location: Set(None),
        etag: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// Stores the response in the reserved row (same transaction as the create).
async fn complete<C: ConnectionTrait>(
    conn: &C,
    claim: &Claim,
    response: &StoredResponse,
) -> Result<()> {
    idempotency_key::Entity::update_many()
        .col_expr(
            idempotency_key::Column::Status,
            Expr::value(i16::try_from(response.status).unwrap_or(0)),
        )
        .col_expr(
            idempotency_key::Column::Body,
            Expr::value(response.body.clone()),
        )
        .col_expr(
            idempotency_key::Column::Location,
            Expr::value(response.location.clone()),
        )
        .col_expr(
            idempotency_key::Column::Etag,
            Expr::value(response.etag.clone()),
        )
        .filter(claim.filter())
        .exec(conn)
        .await?;
    Ok(())
}

/// Opens the write transaction and reserves `claim` in it. When the key insert hits the
/// primary key, the other request has committed (the insert waited for it), so its
/// response is returned to replay instead, after this transaction is dropped; if the key
/// was purged or expired in the meantime, which only a pathological clock could cause,
/// the client is asked to retry.
async fn begin_reserved<T>(
    db: &DatabaseConnection,
    claim: &Claim,
) -> Result<std::result::Result<DatabaseTransaction, Once<T>>> {
    let txn = txn::begin_write(db).await?;
    match reserve(&txn, claim, validate::now()).await {
        Ok(()) => Ok(Ok(txn)),
        Err(err) if is_unique_violation(&err) => {
            drop(txn);
            match lookup(db, claim, validate::now()).await? {
                Some(stored) => Ok(Err(Once::Replayed(stored))),
                None => Err(AppError::Conflict(STILL_RUNNING.to_string())),
            }
        }
        Err(err) => Err(err.into()),
    }
}

fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Creates a task at most once per `claim` (see the module documentation). `render`
/// builds the response the client gets, which is stored with the key.
pub async fn create_task(
    db: &DatabaseConnection,
    caller: Uuid,
    project: Uuid,
    claim: &Claim,
    input: TaskInput,
    render: impl FnOnce(&task::Model) -> Result<StoredResponse>,
) -> Result<Once<task::Model>> {
    if let Some(stored) = lookup(db, claim, validate::now()).await? {
        return Ok(Once::Replayed(stored));
    }
    let txn = match begin_reserved(db, claim).await? {
        Ok(txn) => txn,
        Err(replay) => return Ok(replay),
    };
    let Some(task) = insert_with_event(&txn, caller, new_task(project, input)).await? else {
        // The caller's right was checked before the claim (`TaskStore::create_once`): it was
        // taken away while this ran.
        return Err(AppError::Unavailable(
            "The project's members changed meanwhile; try again.",
        ));
    };
    let response = render(&task)?;
    complete(&txn, claim, &response).await?;
    txn.commit().await?;
    Ok(Once::Created(task, response))
}

/// Runs `create` at most once per `claim`, in the transaction that stores the key and the
/// response `render` makes of its result (see the module documentation): for project,
/// label and comment creates, whose models take the transaction.
pub async fn create_once<T, F>(
    db: &DatabaseConnection,
    claim: &Claim,
    create: F,
    render: impl FnOnce(&T) -> Result<StoredResponse>,
) -> Result<Once<T>>
where
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> BoxFuture<'t, Result<T>>,
{
    if let Some(stored) = lookup(db, claim, validate::now()).await? {
        return Ok(Once::Replayed(stored));
    }
    let txn = match begin_reserved(db, claim).await? {
        Ok(txn) => txn,
        Err(replay) => return Ok(replay),
    };
    let outcome = async {
        let created = create(&txn).await?;
        let response = render(&created)?;
        complete(&txn, claim, &response).await?;
        Ok((created, response))
    }
    .await;
    let (created, response) = txn::finish(txn, outcome).await?;
    Ok(Once::Created(created, response))
}

/// Registers an account at most once per `claim`. A replay is decided before the
/// password is hashed, so retries cost no Argon2 time.
pub async fn register(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    claim: &Claim,
    new: NewUser,
    render: impl FnOnce(&user::Model) -> Result<StoredResponse>,
) -> Result<Once<user::Model>> {
    if let Some(stored) = lookup(db, claim, validate::now()).await? {
        return Ok(Once::Replayed(stored));
    }
    let password_hash = hasher.hash(&new.password).await?;
    let txn = match begin_reserved(db, claim).await? {
        Ok(txn) => txn,
        Err(replay) => return Ok(replay),
    };
    let user = users::register_hashed(&txn, new, password_hash).await?;
    let response = render(&user)?;
    complete(&txn, claim, &response).await?;
    txn.commit().await?;
    Ok(Once::Created(user, response))
}

/// Deletes keys created before `cutoff`, at most `batch` rows per statement and
/// `max_batches` statements. Returns the rows deleted.
pub async fn purge_expired(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
    max_batches: u32,
) -> Result<u64> {
    housekeeping::delete_in_batches(batch, max_batches, || async {
        // A bounded subquery on the key stands in for `DELETE ... LIMIT`.
        let oldest = Query::select()
            .columns([
                idempotency_key::Column::Scope,
                idempotency_key::Column::IdempotencyKey,
            ])
            .from(idempotency_key::Entity)
            .and_where(idempotency_key::Column::CreatedAt.lt(cutoff))
            .limit(batch)
            .to_owned();
        let deleted = idempotency_key::Entity::delete_many()
            .filter(
                Expr::tuple([
                    Expr::col(idempotency_key::Column::Scope),
                    Expr::col(idempotency_key::Column::IdempotencyKey),
                ])
                .in_subquery(oldest),
            )
            .exec(db)
            .await?
            .rows_affected;
        Ok(deleted)
    })
    .await
}

/// Runs [`purge_expired`] every `every` for as long as the process lives; any replica
/// may, the deletes are idempotent and bounded. Expired keys are already ignored by
/// lookups, so the purge only reclaims space.
pub async fn purge_periodically(db: DatabaseConnection, every: std::time::Duration) {
    housekeeping::run_every(every, "purging expired idempotency keys", || {
        purge_expired(
            &db,
            validate::now() - RETENTION,
            PURGE_BATCH,
            PURGE_MAX_BATCHES,
        )
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> Result<Option<IdempotencyKey>> {
        IdempotencyKey::from_values(std::iter::once(raw.as_bytes()))
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(key("a").expect("valid").is_some());
        assert!(key(&"k".repeat(255)).expect("valid").is_some());
        assert!(key("").is_err());
        assert!(key(&"k".repeat(256)).is_err());
        assert!(key("has space").is_err());
        assert!(key("caf\u{e9}").is_err());
        assert!(
            IdempotencyKey::from_values(std::iter::empty())
                .expect("absent")
                .is_none()
        );
        let twice = [b"a".as_slice(), b"a".as_slice()];
        assert!(IdempotencyKey::from_values(twice.into_iter()).is_err());
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_scope() {
        let scope = Scope::Tasks(Uuid::nil());
        let a = fingerprint(b"k", scope, br#"{"title":"x","priority":"high"}"#).expect("json");
        let b = fingerprint(
            b"k",
            scope,
            b"{ \"priority\": \"high\",\n \"title\": \"x\" }",
        )
        .expect("json");
        let other_body = fingerprint(b"k", scope, br#"{"title":"y"}"#).expect("json");
        let other_scope = fingerprint(b"k", Scope::Register, br#"{"title":"x","priority":"high"}"#)
            .expect("json");
        let other_key =
            fingerprint(b"j", scope, br#"{"title":"x","priority":"high"}"#).expect("json");
        assert_eq!(a, b);
        assert_ne!(a, other_body);
        // The canonical form is serde_json's compact output with keys sorted at every
        // level: a dependency turning on serde_json's `preserve_order` would change every
        // fingerprint (stored keys would stop matching their retries), and fail here.
        let nested: Value =
            serde_json::from_str(r#"{"b":1, "a":{"d":[2,1], "c":"\u00e9\n"}}"#).expect("json");
        assert_eq!(nested.to_string(), r#"{"a":{"c":"é\n","d":[2,1]},"b":1}"#);
        assert_ne!(a, other_scope);
        assert_ne!(a, other_key);
    }
}
