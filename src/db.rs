//! Connection pool for PostgreSQL or the embedded SQLite file, and migrations.

use std::path::Path;
use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};

use crate::config::Settings;

pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
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

/// The file path of a `sqlite:` URL, if it names a file.
fn sqlite_file(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
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
