//! Tracing set-up: bunyan JSON on stdout for containers and a daily-rotated file log.

use tracing::Subscriber;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_bunyan_formatter::{BunyanFormattingLayer, JsonStorageLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::LogSettings;

/// Keeps the file writer's background thread alive; dropping it flushes the log.
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

fn filter(settings: &LogSettings, sql_logging: bool) -> EnvFilter {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.level.clone());
    // SQL statements are noisy and may contain user data; they are opt-in.
    let sql = if sql_logging {
        "sqlx=debug"
    } else {
        "sqlx=warn"
    };
    EnvFilter::try_new(format!("{base},{sql}")).unwrap_or_else(|_| EnvFilter::new("info"))
}

fn file_writer(settings: &LogSettings) -> anyhow::Result<RollingFileAppender> {
    std::fs::create_dir_all(&settings.dir)?;
    Ok(RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(&settings.file_name)
        .max_log_files(settings.max_files.max(1))
        .build(&settings.dir)?)
}

/// Builds the subscriber without installing it (tests install it once per process).
pub fn subscriber(
    name: &str,
    settings: &LogSettings,
    sql_logging: bool,
) -> anyhow::Result<(impl Subscriber + Send + Sync, TelemetryGuard)> {
    let (file_layer, guard) = if settings.file_enabled {
        let (writer, guard) = tracing_appender::non_blocking(file_writer(settings)?);
        (
            Some(BunyanFormattingLayer::new(name.to_string(), writer)),
            Some(guard),
        )
    } else {
        (None, None)
    };
    let stdout_layer = match (settings.stdout, settings.json_stdout) {
        (false, _) => None,
        (true, true) => Some(BunyanFormattingLayer::new(name.to_string(), std::io::stdout).boxed()),
        (true, false) => Some(tracing_subscriber::fmt::layer().compact().boxed()),
    };
    let subscriber = Registry::default()
        .with(filter(settings, sql_logging))
        .with(JsonStorageLayer)
        .with(stdout_layer)
        .with(file_layer);
    Ok((subscriber, TelemetryGuard { _file: guard }))
}

pub fn init(settings: &LogSettings, sql_logging: bool) -> anyhow::Result<TelemetryGuard> {
    let (subscriber, guard) = subscriber("taskapi", settings, sql_logging)?;
    subscriber.try_init()?;
    Ok(guard)
}

/// A short, stable, non-reversible tag for an email in logs (never the address itself).
pub fn email_tag(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    hex::encode(&digest[..6])
}
