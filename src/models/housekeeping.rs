//! The loop behind every periodic clean-up (stale refresh tokens, expired idempotency keys,
//! old change-feed events): each replica runs it, the jobs are idempotent and bounded.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;

/// Runs `job` every `every` for the life of the process, logging what it removed (`what`
/// names the job, e.g. "purging stale refresh tokens"). The first run waits one period:
/// start-up stays quiet, and a crash loop cannot turn into a clean-up loop.
pub async fn run_every<F, Fut>(every: Duration, what: &'static str, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match job().await {
            Ok(0) => {}
            Ok(rows) => tracing::info!(rows, "{what}"),
            Err(err) => tracing::warn!(error = %err, "{what} failed"),
        }
    }
}

/// Calls `delete_batch` (which deletes at most `batch` rows and returns how many it did)
/// until a batch comes back short or `max_batches` ran: a bounded purge, since
/// `DELETE ... LIMIT` is not portable. Returns the rows deleted.
pub async fn delete_in_batches<F, Fut>(
    batch: u64,
    max_batches: u32,
    mut delete_batch: F,
) -> Result<u64>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64>>,
{
    let mut deleted = 0;
    for _ in 0..max_batches {
        let rows = delete_batch().await?;
        deleted += rows;
        if rows < batch {
            break;
        }
    }
    Ok(deleted)
}
