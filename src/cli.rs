//! Command line: `serve` (default), `migrate`, `create-admin`, `openapi`, `config`.

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

use crate::auth::password::PasswordHasher;
use crate::config::Settings;
use crate::models::users::{self, NewUser};
use crate::requests::RegisterRequest;
use crate::startup::{Application, openapi};
use crate::{db, telemetry};

#[derive(Debug, Parser)]
#[command(name = "taskapi", version, about = "Task management REST API")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply, roll back or list schema migrations. `status` exits 1 while any is pending
    /// (a pipeline can gate on it); `down` rolls back the newest one and asks first (or
    /// takes `--yes`).
    Migrate {
        #[arg(value_enum, default_value = "up")]
        direction: MigrateDirection,
        /// With `down`: roll back without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Create an administrator (bootstraps production without the first-user rule).
    /// The password is read from TASKAPI_ADMIN_PASSWORD or, if unset, from stdin.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Print the OpenAPI document as JSON.
    Openapi,
    /// Print the effective configuration with secrets redacted.
    Config,
    /// Probe this instance's readiness endpoint; exit 0 when ready (for container
    /// HEALTHCHECKs in images without curl).
    Healthcheck {
        /// Probe `/health/live` instead of `/health/ready`.
        #[arg(long)]
        live: bool,
    },
}

/// A start-up failure that happens before logging is configured (invalid configuration)
/// still leaves one bunyan-shaped JSON line on stdout, where log collectors look.
fn log_early_failure(err: &dyn std::fmt::Display) {
    let line = serde_json::json!({
        "v": 0,
        "name": "taskapi",
        "msg": "start-up failed",
        "level": 50,
        "pid": std::process::id(),
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "error": err.to_string(),
    });
    println!("{line}");
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum MigrateDirection {
    Up,
    Down,
    Status,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!("{}", openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Healthcheck { live } => {
            let settings = Settings::load()?;
            let path = if live {
                "/health/live"
            } else {
                "/health/ready"
            };
            crate::cli_healthcheck::probe(settings.server.port, path).await
        }
        Command::Config => {
            let settings = Settings::load()?;
            println!("{}", serde_json::to_string_pretty(&settings.redacted())?);
            Ok(())
        }
        Command::Serve => {
            let settings = Settings::load().inspect_err(|err| log_early_failure(err))?;
            let _guard = telemetry::init(&settings.log, settings.database.sql_logging)?;
            // Logged through the subscriber (JSON on stdout and in the log file) before the
            // error reaches main, which prints it to stderr as well: log collectors read the
            // former, a person at a terminal the latter. The guard flushes the file on return.
            let app = Application::build(settings).await.inspect_err(|err| {
                tracing::error!(error = %format!("{err:#}"), "start-up failed");
            })?;
            app.run_until_stopped().await
        }
        Command::Migrate { direction, yes } => {
            let settings = Settings::load()?;
            let db = db::connect_unbounded(&settings).await?;
            match direction {
                MigrateDirection::Up => migrate_up(&db).await,
                MigrateDirection::Down => migrate_down(&db, yes).await,
                MigrateDirection::Status => migrate_status(&db).await,
            }
        }
        Command::CreateAdmin { email, name } => {
            let settings = Settings::load()?;
            let password = match std::env::var("TASKAPI_ADMIN_PASSWORD") {
                Ok(password) => password,
                Err(_) => {
                    let mut buffer = String::new();
                    std::io::stdin()
                        .read_to_string(&mut buffer)
                        .context("reading the password from stdin")?;
                    buffer.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let new = NewUser::try_from(RegisterRequest {
                name,
                email,
                password,
            });
            let new = match new {
                Ok(new) => new,
                Err(crate::error::AppError::Validation(errors)) => {
                    let reasons: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect();
                    bail!("invalid admin: {}", reasons.join("; "));
                }
                Err(other) => return Err(other.into()),
            };
            let db = db::connect_unbounded(&settings).await?;
            db::migrate(&db).await?;
            let hasher = PasswordHasher::new(settings.auth.hash_concurrency);
            let user = users::create_admin(&db, &hasher, new).await?;
            println!("created admin {} <{}>", user.id, user.email);
            Ok(())
        }
    }
}

/// Applies what is pending (taking turns with other processes) and says what it did: a
/// Kubernetes Job's log is all an operator sees of it.
async fn migrate_up(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    let pending: Vec<String> = Migrator::get_pending_migrations(db)
        .await?
        .iter()
        .map(|migration| migration.name().to_string())
        .collect();
    db::migrate(db).await?;
    if pending.is_empty() {
        println!("schema up to date: nothing to apply");
    } else {
        println!("applied {} migration(s):", pending.len());
        for name in &pending {
            println!("  {name}");
        }
    }
    Ok(())
}

/// Rolls back the newest applied migration, after `--yes` or a "y" typed at a terminal;
/// never silently from a script.
async fn migrate_down(db: &sea_orm::DatabaseConnection, yes: bool) -> anyhow::Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    let applied = Migrator::get_applied_migrations(db).await?;
    let Some(newest) = applied.last() else {
        println!("nothing to roll back: no migration is applied");
        return Ok(());
    };
    let name = newest.name().to_string();
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!("refusing to roll back {name} without --yes (stdin is not a terminal)");
        }
        print!("Roll back {name}? Data in what it created may be lost. [y/N] ");
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            bail!("not rolled back");
        }
    }
    Migrator::down(db, Some(1)).await?;
    println!("rolled back {name}");
    Ok(())
}

/// Lists every migration with its status; fails (exit 1) while any is pending.
async fn migrate_status(db: &sea_orm::DatabaseConnection) -> anyhow::Result<()> {
    for migration in Migrator::get_migration_with_status(db).await? {
        println!("{:<50} {:?}", migration.name(), migration.status());
    }
    let pending = Migrator::get_pending_migrations(db).await?.len();
    if pending > 0 {
        bail!("{pending} migration(s) pending");
    }
    Ok(())
}
