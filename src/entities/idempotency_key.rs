//! `idempotency_keys`: the stored outcome of a create sent with an `Idempotency-Key`, so a
//! retry replays it (see `models::idempotency`). Secrets are never stored: the body is the
//! response the client already got, and the request is kept only as a keyed fingerprint.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// Whose key this is: `tasks:<user id>` or `register`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idempotency_key: String,
    /// Hex HMAC-SHA256 of the canonical request body (see `models::idempotency`).
    pub fingerprint: String,
    pub status: i16,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub location: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub etag: Option<String>,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
