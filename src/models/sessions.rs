//! Refresh-token sessions with rotation and reuse detection (RFC 9700 §4.14.2): each
//! refresh spends the presented token and issues a new one in the same family; presenting
//! a spent token means it leaked, so the whole family is revoked.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::auth::refresh_secret;
use crate::entities::{refresh_token, user};
use crate::error::{AppError, Result};
use crate::models::housekeeping;
use crate::models::txn;
use crate::validate;

pub const INVALID: AppError = AppError::Unauthorized("Invalid or expired refresh token.");

#[derive(Debug)]
pub struct IssuedRefresh {
    pub token: String,
    pub expires_in: u64,
}

/// Starts a new session family (a login).
pub async fn start<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    ttl_secs: u64,
) -> Result<IssuedRefresh> {
    Ok(issue(conn, user_id, Uuid::now_v7(), ttl_secs).await?)
}

async fn issue<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    family_id: Uuid,
    ttl_secs: u64,
) -> std::result::Result<IssuedRefresh, DbErr> {
    let token = refresh_secret::generate();
    let now = validate::now();
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        family_id: Set(family_id),
        token_hash: Set(refresh_secret::digest(&token)),
        expires_at: Set(now + Duration::seconds(ttl)),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(IssuedRefresh {
        token,
        expires_in: ttl_secs,
    })
}

/// What presenting a refresh token led to.
pub enum Rotation {
    Rotated(Uuid, IssuedRefresh),
    /// Unknown, expired or revoked.
    Invalid,
    /// Already spent: the token leaked. All of the user's access has just been revoked
    /// (`revoke_user`); announce it to the other replicas.
    Reused {
        user_id: Uuid,
        family_id: Uuid,
    },
}

/// Spends `raw`: its owner gets a fresh token of the same family, unless it was unknown,
/// expired, revoked or already spent.
pub async fn rotate(db: &DatabaseConnection, raw: &str, ttl_secs: u64) -> Result<Rotation> {
    let hash = refresh_secret::digest(raw);
    let rotation = txn::retrying(|| rotate_once(db, &hash, ttl_secs)).await?;
    if let Rotation::Reused { user_id, family_id } = &rotation {
        tracing::warn!(user_id = %user_id, family_id = %family_id, "refresh token reuse detected; revoking all of the user's access");
    }
    Ok(rotation)
}

/// One attempt, in one write transaction (IMMEDIATE on SQLite: it reads, then writes, and
/// concurrent refreshes of one token must queue rather than fail with "database is
/// locked").
async fn rotate_once(
    db: &DatabaseConnection,
    hash: &str,
    ttl_secs: u64,
) -> std::result::Result<Rotation, DbErr> {
    let txn = txn::begin_write(db).await?;
    let Some(found) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash))
        .one(&txn)
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let now = validate::now();
    if found.revoked_at.is_some() || found.expires_at <= now {
        return Ok(Rotation::Invalid);
    }
    // Conditional update: of two concurrent refreshes with one token, only one spends it.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(found.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if found.used_at.is_some() || spent.rows_affected == 0 {
        // A spent token coming back means someone else holds the family; the access tokens
        // it produced are as compromised as the refresh tokens, so they all go.
        revoke_user(&txn, found.user_id).await?;
        txn.commit().await?;
        return Ok(Rotation::Reused {
            user_id: found.user_id,
            family_id: found.family_id,
        });
    }
    let issued = issue(&txn, found.user_id, found.family_id, ttl_secs).await?;
    txn.commit().await?;
    Ok(Rotation::Rotated(found.user_id, issued))
}

async fn revoke_family<C: ConnectionTrait>(
    conn: &C,
    family_id: Uuid,
) -> std::result::Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            Expr::value(validate::now()),
        )
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Logout: revokes the family of `raw` and returns its owner; unknown tokens are ignored
/// so that logout is idempotent and reveals nothing.
pub async fn logout(db: &DatabaseConnection, raw: &str) -> Result<Option<Uuid>> {
    let found = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(refresh_secret::digest(raw)))
        .one(db)
        .await?;
    match found {
        Some(token) => {
            revoke_family(db, token.family_id).await?;
            Ok(Some(token.user_id))
        }
        None => Ok(None),
    }
}

pub async fn revoke_all<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> std::result::Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(
            refresh_token::Column::RevokedAt,
            Expr::value(validate::now()),
        )
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}

/// Makes every access token issued so far fail (the guard compares token versions).
pub async fn revoke_access_tokens<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> std::result::Result<(), DbErr> {
    user::Entity::update_many()
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .filter(user::Column::Id.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Revokes all of a user's access: every access token issued so far and every refresh
/// session. The one place for this rule (logout-all, password change, deactivation,
/// refresh-token reuse). After it commits, announce it (`cluster::Revocations::announce`)
/// so that every replica's auth cache forgets the account too.
pub async fn revoke_user<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
) -> std::result::Result<(), DbErr> {
    revoke_access_tokens(conn, user_id).await?;
    revoke_all(conn, user_id).await
}

/// [`revoke_user`] as a transaction of its own: either every access token and every
/// refresh session of the user is revoked, or (on failure) none is. Two autocommit
/// statements could leave the refresh tokens alive after the access tokens were revoked.
pub async fn revoke_user_atomically(db: &DatabaseConnection, user_id: Uuid) -> Result<()> {
    txn::retrying(|| async {
        let txn = txn::begin_write(db).await?;
        revoke_user(&txn, user_id).await?;
        txn.commit().await
    })
    .await?;
    Ok(())
}

/// Rows kept this long after they expired or were revoked, for investigating an incident;
/// past that they can never matter again (an expired or revoked token is refused before
/// reuse detection looks at it), so they are purged.
pub const PURGE_AFTER: Duration = Duration::days(1);
/// Rows deleted per statement: keeps each purge transaction (and its locks) short.
pub const PURGE_BATCH: u64 = 1_000;
/// How often each replica purges.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// Batches per purge run, so one run over a large backlog cannot monopolise the database;
/// the next run continues where this one stopped.
pub const PURGE_MAX_BATCHES: u32 = 20;

/// Deletes refresh-token rows that expired or were revoked before `cutoff`, at most
/// `batch` rows per statement and `max_batches` statements. Returns the rows deleted.
/// Live rows, spent ones included (they are needed to detect reuse), are never touched.
pub async fn purge_stale(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
    max_batches: u32,
) -> Result<u64> {
    housekeeping::delete_in_batches(batch, max_batches, || async {
        // A bounded id subquery stands in for `DELETE ... LIMIT`.
        let ids = Query::select()
            .column(refresh_token::Column::Id)
            .from(refresh_token::Entity)
            .cond_where(
                Condition::any()
                    .add(refresh_token::Column::ExpiresAt.lt(cutoff))
                    .add(refresh_token::Column::RevokedAt.lt(cutoff)),
            )
            .limit(batch)
            .to_owned();
        let deleted = refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::Id.in_subquery(ids))
            .exec(db)
            .await?
            .rows_affected;
        Ok(deleted)
    })
    .await
}

/// Runs [`purge_stale`] every `every`, for as long as the process lives. Each replica
/// may run it: the deletes are idempotent and bounded.
pub async fn purge_periodically(db: DatabaseConnection, every: std::time::Duration) {
    housekeeping::run_every(every, "purging stale refresh tokens", || {
        purge_stale(
            &db,
            validate::now() - PURGE_AFTER,
            PURGE_BATCH,
            PURGE_MAX_BATCHES,
        )
    })
    .await;
}
