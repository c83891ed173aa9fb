//! Connection pool for PostgreSQL or the embedded SQLite file, and migrations.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use migration::{Migrator, MigratorTrait, SchemaManager};
use sea_orm::sqlx::Connection;
use sea_orm::{
    ConnectOptions, Database, DatabaseBackend, DatabaseConnection, DbErr, FromQueryResult,
    Statement,
};

use crate::config::Settings;
use crate::models::tasks::postgres::rows::sqlx_err;

/// The pool the server uses: every PostgreSQL statement is bounded by
/// `database.statement_timeout_ms`, so a lock wait or runaway query ends with an error
/// (SQLSTATE 57014, mapped to 503) instead of holding the request until its timeout.
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let timeout = settings.database.statement_timeout_ms;
    open(
        settings,
        (timeout > 0).then(|| Duration::from_millis(timeout)),
    )
    .await
}

/// A pool without a statement timeout, for migrations and other admin commands: a
/// schema change on a large table may legitimately run longer than any request should.
pub async fn connect_unbounded(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    open(settings, None).await
}

async fn open(
    settings: &Settings,
    statement_timeout: Option<Duration>,
) -> Result<DatabaseConnection, DbErr> {
    let url = settings.database_url();
    if let Some(path) = sqlite_file(&url)
        && let Some(dir) = Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)
            .map_err(|err| DbErr::Custom(format!("cannot create {}: {err}", dir.display())))?;
    }
    let db = &settings.database;
    let mut options = ConnectOptions::new(url);
    if let Some(timeout) = statement_timeout {
        // Sent as a start-up parameter: no extra round trip; ignored by SQLite.
        options.statement_timeout(timeout);
    }
    options
        .max_connections(db.max_connections)
        .min_connections(db.min_connections)
        .acquire_timeout(Duration::from_secs(db.acquire_timeout_secs))
        .connect_timeout(Duration::from_secs(db.acquire_timeout_secs))
        .idle_timeout(Duration::from_secs(300))
        // A ping before every checkout doubles the round trips of a simple read. Only
        // connections idle for a while are tested; one that broke in use fails its query,
        // which maps to 503 and makes the pool drop it.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .sqlx_logging(db.sql_logging)
        .sqlx_logging_level(log::LevelFilter::Debug)
        // A connection must never go back to the pool inside a transaction: the next
        // borrower's statements would run in it, uncommitted (see `returns_outside_transaction`).
        .map_sqlx_postgres_pool_opts(|pool| pool.after_release(returns_outside_transaction))
        .map_sqlx_sqlite_pool_opts(|pool| pool.after_release(returns_outside_transaction))
        .map_sqlx_postgres_before_acquire(|conn, _| {
            Box::pin(async move { Ok(returns_outside_transaction_now(conn)) })
        })
        .map_sqlx_sqlite_before_acquire(|conn, _| {
            Box::pin(async move { Ok(returns_outside_transaction_now(conn)) })
        })
        .map_sqlx_sqlite_opts(|opts| {
            // WAL lets readers proceed during a write; the busy timeout makes concurrent
            // writers wait for the lock instead of failing with "database is locked".
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    Database::connect(options).await
}

/// The pool's release hook: `Ok(false)` makes the pool close a connection that is still
/// inside a transaction (the server then rolls it back) instead of keeping it. A future
/// dropped between `BEGIN` and its end leaves one behind: sqlx before 0.9.1 did so when a
/// `begin()` itself was cancelled, and a transaction dropped while one of its statements
/// was in flight does so still (sea-orm cannot queue its rollback then). Writes run to
/// completion anyway (`middleware::run_writes_to_completion`); this is the pool's own
/// guarantee, whatever a future caller does.
fn returns_outside_transaction<'c, C: sea_orm::sqlx::Connection>(
    conn: &'c mut C,
    _meta: sea_orm::sqlx::pool::PoolConnectionMetadata,
) -> futures_util::future::BoxFuture<'c, Result<bool, sea_orm::sqlx::Error>> {
    let keep = returns_outside_transaction_now(conn);
    Box::pin(async move { Ok(keep) })
}

/// The same check when a connection is taken from the pool, so that one that slipped back
/// in a transaction (a hook that did not run) is closed rather than handed out.
fn returns_outside_transaction_now<C: sea_orm::sqlx::Connection>(conn: &C) -> bool {
    if conn.is_in_transaction() {
        metrics::counter!(crate::metrics::DB_CONNECTIONS_DISCARDED, "reason" => "in_transaction")
            .increment(1);
        tracing::error!(
            "a pooled database connection was released inside a transaction; closing it (its transaction is rolled back)"
        );
        return false;
    }
    true
}

/// The file path of a `sqlite:` URL, if it names a file.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Applies this binary's pending migrations, one process at a time.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return apply_pending(db).await;
    }
    // Replicas started together on a fresh database would each create the migrations table
    // and apply the same migrations, and all but one fail on a duplicate key. A session
    // advisory lock, held on a connection of its own while the migrations run, makes them
    // take turns: the first applies them, the others find nothing pending. A process that
    // dies while holding it ends its session, and with it the lock.
    let options = db.get_postgres_connection_pool().connect_options();
    let mut holder = sea_orm::sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(sqlx_err)?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await
        .map_err(sqlx_err)?;
    let migrated = apply_pending(db).await;
    // Closing the session releases the lock as well; unlocking first says so plainly.
    let _ = sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await;
    let _ = holder.close().await;
    migrated
}

/// The migrator refuses to run when the database holds a migration it does not know, which
/// is the normal state of a database that a newer version migrated (rolling deploys,
/// rollbacks): with nothing of this binary's pending there is nothing to run, and the
/// database is ahead, which migrations being expand-only makes safe (readiness agrees).
async fn apply_pending(db: &DatabaseConnection) -> Result<(), DbErr> {
    match migration_state(db).await? {
        MigrationState { pending: 0, .. } => Ok(()),
        MigrationState { unknown: 0, .. } => Migrator::up(db, None).await,
        MigrationState { pending, unknown } => Err(DbErr::Custom(format!(
            "the database holds {unknown} migration(s) this binary does not know and lacks \
             {pending} of its own: it was migrated by another branch or version; run that \
             version's `taskapi migrate down` or this one's missing migrations by hand"
        ))),
    }
}

/// The advisory lock key that serialises migrations across processes ("taskmigr").
const MIGRATION_LOCK: i64 = 0x7461_736b_6d69_6772;

/// How the database's applied migrations compare with the ones this binary knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationState {
    /// Known to this binary but not applied: the schema is behind the code.
    pub pending: usize,
    /// Applied but unknown to this binary: a newer version migrated the database. Migrations
    /// are expand-only (see the README), so this binary still works against it.
    pub unknown: usize,
}

impl MigrationState {
    pub fn is_ready(self) -> bool {
        self.pending == 0
    }
}

#[derive(FromQueryResult)]
struct AppliedVersion {
    version: String,
}

/// Read-only comparison of applied and known migrations, safe for a readiness probe: unlike
/// the migrator's own status check it never creates the migration table and does not fail
/// when the database is ahead of this binary (which would take every old pod out of
/// service during a rolling deploy).
pub async fn migration_state(db: &DatabaseConnection) -> Result<MigrationState, DbErr> {
    let table = Migrator::migration_table_name().to_string();
    let known: HashSet<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let applied: HashSet<String> = if SchemaManager::new(db).has_table(&table).await? {
        let backend = db.get_database_backend();
        // The table name comes from the migrator, never from input.
        let sql = format!("SELECT version FROM {table}");
        AppliedVersion::find_by_statement(Statement::from_string(backend, sql))
            .all(db)
            .await?
            .into_iter()
            .map(|row| row.version)
            .collect()
    } else {
        HashSet::new()
    };
    Ok(MigrationState {
        pending: known.difference(&applied).count(),
        unknown: applied.difference(&known).count(),
    })
}

/// The pool's open connections and how many of them are idle.
pub fn pool_usage(db: &DatabaseConnection) -> (u32, usize) {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (pool.size(), pool.num_idle())
        }
        DatabaseBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), pool.num_idle())
        }
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::sqlite_file;

    #[test]
    fn sqlite_paths() {
        assert_eq!(
            sqlite_file("sqlite://data/taskapi.db?mode=rwc"),
            Some("data/taskapi.db")
        );
        assert_eq!(sqlite_file("sqlite:///tmp/x.db"), Some("/tmp/x.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/db"), None);
    }
}
