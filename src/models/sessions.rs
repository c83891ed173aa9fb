//! Refresh-token sessions with rotation and reuse detection (RFC 9700 §4.14.2): each
//! refresh spends the presented token and issues a new one in the same family; presenting
//! a spent token means it leaked, so the whole family is revoked.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set, TransactionTrait,
};
use uuid::Uuid;

use crate::auth::refresh;
use crate::entities::refresh_token;
use crate::error::{AppError, Result};

const INVALID: AppError = AppError::Unauthorized("Invalid or expired refresh token.");

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
    issue(conn, user_id, Uuid::now_v7(), ttl_secs).await
}

async fn issue<C: ConnectionTrait>(
    conn: &C,
    user_id: Uuid,
    family_id: Uuid,
    ttl_secs: u64,
) -> Result<IssuedRefresh> {
    let token = refresh::generate();
    let now = Utc::now();
    let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX / 2);
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        user_id: Set(user_id),
        family_id: Set(family_id),
        token_hash: Set(refresh::digest(&token)),
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

/// Spends `raw` and returns its owner with a fresh token of the same family.
pub async fn rotate(
    db: &DatabaseConnection,
    raw: &str,
    ttl_secs: u64,
) -> Result<(Uuid, IssuedRefresh)> {
    let txn = db.begin().await?;
    let found = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(refresh::digest(raw)))
        .one(&txn)
        .await?
        .ok_or(INVALID)?;
    let now = Utc::now();
    if found.revoked_at.is_some() || found.expires_at <= now {
        return Err(INVALID);
    }
    // Conditional update: of two concurrent refreshes with one token, only one spends it.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(found.id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if found.used_at.is_some() || spent.rows_affected == 0 {
        tracing::warn!(user_id = %found.user_id, family_id = %found.family_id, "refresh token reuse detected; revoking family");
        revoke_family(&txn, found.family_id).await?;
        txn.commit().await?;
        return Err(INVALID);
    }
    let issued = issue(&txn, found.user_id, found.family_id, ttl_secs).await?;
    txn.commit().await?;
    Ok((found.user_id, issued))
}

async fn revoke_family<C: ConnectionTrait>(conn: &C, family_id: Uuid) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
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
        .filter(refresh_token::Column::TokenHash.eq(refresh::digest(raw)))
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

pub async fn revoke_all<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(conn)
        .await?;
    Ok(())
}
