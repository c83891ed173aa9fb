//! The portable task store: sea-orm's query builder and transactions, for SQLite (and any
//! database sea-orm speaks). Each write takes the owner's change-feed lock, writes, and
//! records its event in one transaction.

use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, Statement, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::list::cursor::Position;
use super::list::{self, Page, TaskFilter};
use super::postgres::writes::Update;
use crate::entities::task;
use crate::error::{Result, unauthorized_on_missing_owner};
use crate::models::events;
use crate::models::txn::begin_write;
use crate::validate;

use super::domain::{NOT_FOUND, advisory_key, explain_miss};

pub struct PortableTasks {
    db: DatabaseConnection,
}

impl PortableTasks {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    pub async fn get(&self, owner: Uuid, id: Uuid) -> Result<task::Model> {
        task::Entity::find_by_id(id)
            .filter(task::Column::UserId.eq(owner))
            .one(&self.db)
            .await?
            .ok_or(NOT_FOUND)
    }

    pub async fn list(
        &self,
        owner: Uuid,
        filter: &TaskFilter,
        cursor: Option<&Position>,
    ) -> Result<Page> {
        list::list_portable(&self.db, owner, filter, cursor).await
    }

    pub async fn create(&self, task: task::Model) -> Result<task::Model> {
        insert_with_event(&self.db, task).await
    }

    /// Applies `changes` in one conditional UPDATE (compare-and-set on `version` when the
    /// client sent If-Match), in a transaction with the per-user lock and the event.
    pub async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: Update,
        expected_version: Option<i32>,
    ) -> Result<task::Model> {
        let mut update = task::Entity::update_many()
            .col_expr(
                task::Column::Version,
                Expr::col(task::Column::Version).add(1),
            )
            // Never back in time: the time was taken before waiting for the write lock,
            // and the change that committed first may be newer.
            .col_expr(task::Column::UpdatedAt, {
                let now = validate::now();
                CaseStatement::new()
                    .case(
                        Expr::col(task::Column::UpdatedAt).gt(now),
                        Expr::col(task::Column::UpdatedAt),
                    )
                    .finally(now)
                    .into()
            })
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::UserId.eq(owner))
            // The version stops at the largest `i32`: a change past it matches nothing (409).
            .filter(task::Column::Version.lt(i32::MAX));
        if let Some(version) = expected_version {
            update = update.filter(task::Column::Version.eq(version));
        }
        if let Some((title, folded)) = changes.title {
            update = update
                .col_expr(task::Column::TitleSearch, Expr::value(folded))
                .col_expr(task::Column::Title, Expr::value(title));
        }
        if let Some((description, folded)) = changes.description {
            update = update
                .col_expr(task::Column::DescriptionSearch, Expr::value(folded))
                .col_expr(task::Column::Description, Expr::value(description));
        }
        if let Some(status) = changes.status {
            update = update.col_expr(task::Column::Status, Expr::value(status));
        }
        if let Some(priority) = changes.priority {
            update = update.col_expr(task::Column::Priority, Expr::value(priority));
        }
        if let Some(due_date) = changes.due_date {
            update = update.col_expr(task::Column::DueDate, Expr::value(due_date));
        }
        // The change-feed event commits with the change, or neither does.
        let txn = begin_write(&self.db).await?;
        serialize_writes(&txn, owner).await?;
        let mut rows = update.exec_with_returning(&txn).await?;
        match rows.pop() {
            Some(task) => {
                events::record(&txn, &task, events::Kind::Updated).await?;
                txn.commit().await?;
                Ok(task)
            }
            None => {
                txn.rollback().await?;
                Err(explain_miss(self.get(owner, id).await))
            }
        }
    }

    pub async fn delete(&self, owner: Uuid, id: Uuid, expected_version: Option<i32>) -> Result<()> {
        let mut delete = task::Entity::delete_many()
            .filter(task::Column::Id.eq(id))
            .filter(task::Column::UserId.eq(owner));
        if let Some(version) = expected_version {
            delete = delete.filter(task::Column::Version.eq(version));
        }
        let txn = begin_write(&self.db).await?;
        serialize_writes(&txn, owner).await?;
        let Some(deleted) = delete.exec_with_returning(&txn).await?.pop() else {
            txn.rollback().await?;
            return Err(explain_miss(self.get(owner, id).await));
        };
        // The tombstone carries the version that was deleted.
        events::record(&txn, &deleted, events::Kind::Deleted).await?;
        txn.commit().await?;
        Ok(())
    }
}

/// Inserts `task` with its change-feed event, in a transaction of its own or (on a
/// transaction) in a savepoint of the caller's: an idempotent create stores its key and
/// response in the same transaction (`models::idempotency`).
pub async fn insert_with_event<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    task: task::Model,
) -> Result<task::Model> {
    let txn = conn.begin().await?;
    serialize_writes(&txn, task.user_id).await?;
    let task = task::ActiveModel::from(task)
        .insert(&txn)
        .await
        .map_err(unauthorized_on_missing_owner)?;
    events::record(&txn, &task, events::Kind::Created).await?;
    txn.commit().await?;
    Ok(task)
}

/// Makes `owner`'s task writes commit one at a time (see `models::events` on ordering): a
/// transaction-scoped advisory lock on PostgreSQL (an idempotent create goes through
/// [`insert_with_event`] there too), nothing on SQLite (one writer anyway).
/// Call first in the transaction, before the event id is drawn.
async fn serialize_writes<C: ConnectionTrait>(conn: &C, owner: Uuid) -> Result<(), DbErr> {
    if conn.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(());
    }
    conn.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [advisory_key(owner).into()],
    ))
    .await?;
    Ok(())
}
