//! Write transactions that behave alike on PostgreSQL and SQLite, and what to do when
//! concurrent writers collide.
//!
//! SQLite starts a plain `BEGIN` as a *read* transaction and upgrades it at the first
//! write; if another connection committed in between, the upgrade fails at once with
//! `SQLITE_BUSY` ("database is locked") without waiting for the busy timeout. A
//! read-then-write transaction must therefore start `BEGIN IMMEDIATE`, which takes the
//! write lock up front and waits (busy timeout) instead of failing. PostgreSQL ignores
//! the mode. PostgreSQL can still abort one of two transactions with a deadlock (40P01)
//! or serialization failure (40001); those, and a busy timeout that ran out on SQLite,
//! are lost races: retried here a few times, then reported as 503 (never 500).

use std::future::Future;
use std::time::Duration;

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// Attempts of a transaction that lost a race, including the first.
const ATTEMPTS: u32 = 3;

/// Begins a transaction that will write: `BEGIN IMMEDIATE` on SQLite, plain on PostgreSQL.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Runs `work` (one whole transaction) again when it fails with contention, at most
/// [`ATTEMPTS`] times in all, after a short randomised pause so that the colliding
/// writers do not collide again in lockstep.
pub async fn retrying<T, F, Fut>(mut work: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbErr>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(err) if attempt < ATTEMPTS && crate::error::is_contention(&err) => {
                tracing::debug!(error = %err, attempt, "transaction lost a race; retrying");
                let pause = rand::random_range(5..=25u64) * u64::from(attempt);
                tokio::time::sleep(Duration::from_millis(pause)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Runs `work` in a task of its own and waits for it: dropping the wait does not stop it. A
/// unit of work that writes (its transaction, and what must follow its commit, such as
/// telling the change feed) goes through this, so a client that hangs up cannot cut it in
/// two.
pub async fn run_to_completion<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
) -> crate::error::Result<T> {
    tokio::spawn(work).await.map_err(|failed| {
        crate::error::AppError::Internal(anyhow::anyhow!("a write failed: {failed}"))
    })?
}

/// Ends a write transaction by its outcome: committed when the work succeeded, rolled back
/// (explicitly, on its connection, before it goes back to the pool) when it failed. A
/// refusal (404, 403, 409) that only dropped the transaction left SQLite's connection
/// inside it, for the pool to close and log.
pub async fn finish<T>(
    txn: DatabaseTransaction,
    outcome: crate::error::Result<T>,
) -> crate::error::Result<T> {
    match outcome {
        Ok(done) => {
            txn.commit().await?;
            Ok(done)
        }
        Err(err) => {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(error = %rollback, "rolling back a refused write failed");
            }
            Err(err)
        }
    }
}
