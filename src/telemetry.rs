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
    file_error: Option<String>,
}

impl TelemetryGuard {
    /// Why the file log is off although it was asked for (the service then logs to stdout
    /// only), e.g. a read-only root file system without a writable log directory.
    pub fn file_log_error(&self) -> Option<&str> {
        self.file_error.as_deref()
    }
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
    // An unwritable log directory (a read-only container without a volume for it) is not
    // a reason to refuse to start: stdout still reaches the container runtime. `init` warns.
    let (file_layer, guard, file_error) = match settings.file_enabled.then(|| file_writer(settings))
    {
        Some(Ok(appender)) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            (
                Some(BunyanFormattingLayer::new(name.to_string(), writer)),
                Some(guard),
                None,
            )
        }
        Some(Err(error)) => (None, None, Some(format!("{error:#}"))),
        None => (None, None, None),
    };
    // Without its file log the service must not go silent: stdout is then always on.
    let stdout = settings.stdout || file_error.is_some();
    let stdout_layer = match (stdout, settings.json_stdout) {
        (false, _) => None,
        (true, true) => Some(BunyanFormattingLayer::new(name.to_string(), std::io::stdout).boxed()),
        (true, false) => Some(tracing_subscriber::fmt::layer().compact().boxed()),
    };
    let subscriber = Registry::default()
        .with(filter(settings, sql_logging))
        .with(JsonStorageLayer)
        .with(stdout_layer)
        .with(file_layer);
    Ok((
        subscriber,
        TelemetryGuard {
            _file: guard,
            file_error,
        },
    ))
}

pub fn init(settings: &LogSettings, sql_logging: bool) -> anyhow::Result<TelemetryGuard> {
    let (subscriber, guard) = subscriber("taskapi", settings, sql_logging)?;
    subscriber.try_init()?;
    if let Some(error) = guard.file_log_error() {
        tracing::warn!(
            log_dir = %settings.dir.display(),
            error,
            "log directory is not writable; logging to stdout only \
             (mount a writable volume there, or set TASKAPI_LOG__FILE_ENABLED=false)"
        );
    }
    Ok(guard)
}

/// A short, stable, non-reversible tag for an email in logs (never the address itself),
/// the same for every spelling that names the same account.
pub fn email_tag(email: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(crate::domain::Email::normalize(email).as_bytes());
    hex::encode(&digest[..6])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn scratch(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("taskapi-telemetry-{name}-{}", std::process::id()))
    }

    /// A read-only root file system (`docker run --read-only` without a volume at the log
    /// directory) used to make the service exit 1 before it logged anything.
    #[test]
    fn unwritable_log_dir_falls_back_to_stdout_only() {
        // A regular file where a parent directory should be: creating the directory fails
        // even for root, for whom permission bits would not.
        let blocker = scratch("blocker");
        std::fs::write(&blocker, b"not a directory").expect("write blocker file");
        let mut settings = Settings::default().log;
        settings.dir = blocker.join("logs");
        settings.stdout = false;

        let built = subscriber("taskapi-test", &settings, false);
        let _ = std::fs::remove_file(&blocker);
        let (_subscriber, guard) = built.expect("an unwritable log dir must not be fatal");
        assert!(guard.file_log_error().is_some());
    }

    #[test]
    fn writable_log_dir_keeps_the_file_log() {
        let dir = scratch("writable");
        let mut settings = Settings::default().log;
        settings.dir = dir.clone();
        let (_subscriber, guard) =
            subscriber("taskapi-test", &settings, false).expect("subscriber");
        assert_eq!(guard.file_log_error(), None);
        assert!(dir.is_dir());
        drop(guard);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
