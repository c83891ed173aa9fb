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
    /// Apply, roll back or list schema migrations.
    Migrate {
        #[arg(value_enum, default_value = "up")]
        direction: MigrateDirection,
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
        Command::Migrate { direction } => {
            let settings = Settings::load()?;
            let db = db::connect_unbounded(&settings).await?;
            match direction {
                MigrateDirection::Up => Migrator::up(&db, None).await?,
                MigrateDirection::Down => Migrator::down(&db, Some(1)).await?,
                MigrateDirection::Status => {
                    for migration in Migrator::get_migration_with_status(&db).await? {
                        println!("{:<50} {:?}", migration.name(), migration.status());
                    }
                }
            }
            Ok(())
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
