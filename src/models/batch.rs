//! Concurrent calls of one kind answered together, one database statement per batch.
//!
//! Under load, a round trip to PostgreSQL (pool checkout, socket writes and reads on both
//! sides, the wake-ups of two processes, executor start-up, and for a write its commit)
//! costs several times what one indexed row costs; with dozens of requests in flight it was
//! most of a request's CPU time. A [`Batcher`] keeps at most [`RUNNERS`] statements in flight
//! for its kind of call. A call that finds a runner slot free starts a runner at once, so a
//! lone request waits for nobody; calls that arrive while every runner is busy queue, and
//! the next free runner answers all of them (up to `max_batch`) with one statement. The
//! batch size thus follows the load, with no timer and no added latency when idle.
//!
//! Runners are tasks of their own: a caller that hangs up drops only its own wait, never
//! the statement other callers are waiting on (nor a write that then commits unseen).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::error::{AppError, Result};
use crate::metrics::DB_BATCH_SIZE;

/// Statements in flight at once per kind of call. One would leave the two cores idle while
/// its round trip is on the wire; many would stop calls from batching at all (each would
/// find a free runner and go alone). Two measured best (SCALABILITY.md, decision D1);
/// under more load batches grow rather than statements.
pub const RUNNERS: usize = 2;

/// One kind of batched call.
pub trait Job: Send + Sync + 'static {
    type Input: Send + 'static;
    type Output: Send + 'static;

    /// Answers `batch`: exactly one result per input, in the inputs' order.
    fn run(
        &self,
        batch: Vec<Self::Input>,
    ) -> impl Future<Output = Vec<Result<Self::Output>>> + Send;
}

pub struct Batcher<J: Job> {
    job: J,
    runners: usize,
    max_batch: usize,
    queue: Mutex<Queue<J>>,
    statements: AtomicU64,
    calls: AtomicU64,
    /// Resolved once: looking the series up by its labels costs more than recording.
    sizes: metrics::Histogram,
}

struct Queue<J: Job> {
    waiting: Vec<Waiter<J>>,
    runners: usize,
}

struct Waiter<J: Job> {
    input: J::Input,
    reply: oneshot::Sender<Result<J::Output>>,
}

/// What a [`Batcher`] has done since it was made, and what waits now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Batches run (each one statement, or one per input after a failed batch).
    pub statements: u64,
    /// Calls taken into those batches.
    pub calls: u64,
    /// Calls queued for the next free runner.
    pub waiting: usize,
}

impl<J: Job> Batcher<J> {
    /// A batcher with [`RUNNERS`] statements in flight at most. `operation` labels the
    /// batch-size histogram. Made after the metrics recorder is installed (`startup`), or
    /// the histogram records nowhere.
    pub fn new(job: J, operation: &'static str, max_batch: usize) -> Arc<Self> {
        Self::with_runners(job, operation, RUNNERS, max_batch)
    }

    fn with_runners(
        job: J,
        operation: &'static str,
        runners: usize,
        max_batch: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            job,
            runners: runners.max(1),
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue {
                waiting: Vec::new(),
                runners: 0,
            }),
            statements: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            sizes: metrics::histogram!(DB_BATCH_SIZE, "operation" => operation),
        })
    }

    pub fn job(&self) -> &J {
        &self.job
    }

    pub fn stats(&self) -> Stats {
        Stats {
            statements: self.statements.load(Ordering::Relaxed),
            calls: self.calls.load(Ordering::Relaxed),
            waiting: self.lock().waiting.len(),
        }
    }

    /// `input`'s result, from the batch it joins.
    pub async fn call(self: &Arc<Self>, input: J::Input) -> Result<J::Output> {
        let (reply, answer) = oneshot::channel();
        let start_runner = {
            let mut queue = self.lock();
            queue.waiting.push(Waiter { input, reply });
            let free = queue.runners < self.runners;
            if free {
                queue.runners += 1;
            }
            free
        };
        if start_runner {
            tokio::spawn(Arc::clone(self).run());
        }
        answer.await.unwrap_or_else(|_| {
            Err(AppError::Internal(anyhow::anyhow!(
                "batch runner stopped without an answer"
            )))
        })
    }

    fn lock(&self) -> MutexGuard<'_, Queue<J>> {
        // The queue is consistent at every unlock (plain pushes and drains), so a panic
        // elsewhere while it was held leaves nothing half-done.
        self.queue.lock()
    }

    /// Answers queued calls, a batch at a time, until none are left. The runner count is
    /// given back under the same lock that saw the queue empty, so a call queued just after
    /// always finds a runner slot free.
    async fn run(self: Arc<Self>) {
        let mut slot = RunnerSlot {
            batcher: Arc::clone(&self),
            held: true,
        };
        loop {
            let batch: Vec<Waiter<J>> = {
                let mut queue = self.lock();
                if queue.waiting.is_empty() {
                    queue.runners -= 1;
                    slot.held = false;
                    return;
                }
                let take = queue.waiting.len().min(self.max_batch);
                queue.waiting.drain(..take).collect()
            };
            self.statements.fetch_add(1, Ordering::Relaxed);
            self.calls.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.sizes.record(batch.len() as f64);
            let (inputs, replies): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .map(|waiter| (waiter.input, waiter.reply))
                .unzip();
            let mut results = self.job.run(inputs).await.into_iter();
            for reply in replies {
                let result = results.next().unwrap_or_else(|| {
                    Err(AppError::Internal(anyhow::anyhow!(
                        "batch answered fewer calls than it was given"
                    )))
                });
                // A caller that hung up no longer listens; nothing to do for it.
                let _ = reply.send(result);
            }
        }
    }
}

/// A runner that ends without giving its slot back itself (its job panicked) hands the
/// slot to a new runner when calls are still queued, or gives it back: the queued calls
/// were waiting for this runner and would otherwise wait until some later call came.
struct RunnerSlot<J: Job> {
    batcher: Arc<Batcher<J>>,
    held: bool,
}

impl<J: Job> Drop for RunnerSlot<J> {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let queued = {
            let mut queue = self.batcher.lock();
            let queued = !queue.waiting.is_empty();
            if !queued {
                queue.runners -= 1;
            }
            queued
        };
        if queued {
            tokio::spawn(Arc::clone(&self.batcher).run());
        }
    }
}

/// The problem for every call of a batch that failed as a whole. A database error
/// converts to one of two problems (`From<DbErr> for AppError`): a 503 with its detail, or
/// a 500 whose cause is only logged; each caller gets its own copy.
pub fn shared_problem(err: &AppError) -> AppError {
    match err {
        AppError::Unavailable(detail) => AppError::Unavailable(detail),
        other => AppError::Internal(anyhow::anyhow!("batched statement failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Doubles numbers; each batch waits on a gate so the test decides when batches end.
    struct Doubler {
        gate: tokio::sync::Semaphore,
        batches: Mutex<Vec<usize>>,
    }

    impl Job for Doubler {
        type Input = u32;
        type Output = u32;

        async fn run(&self, batch: Vec<u32>) -> Vec<Result<u32>> {
            self.batches.lock().push(batch.len());
            self.gate.acquire().await.expect("gate").forget();
            batch.into_iter().map(|n| Ok(n * 2)).collect()
        }
    }

    fn doubler(runners: usize) -> Arc<Batcher<Doubler>> {
        let job = Doubler {
            gate: tokio::sync::Semaphore::new(0),
            batches: Mutex::default(),
        };
        Batcher::with_runners(job, "test", runners, 64)
    }

    #[tokio::test]
    async fn calls_queued_behind_busy_runners_share_one_batch_and_get_their_own_answers() {
        let batcher = doubler(2);
        let spawn_call = |n: u32| {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move { batcher.call(n).await })
        };
        // One call at a time until each runner holds one, waiting on the gate.
        let mut calls = Vec::new();
        for n in 0..2 {
            calls.push(spawn_call(n));
            while batcher.stats().statements < u64::from(n) + 1 {
                tokio::task::yield_now().await;
            }
        }
        calls.extend((2..20).map(spawn_call));
        while batcher.stats().waiting < 18 {
            tokio::task::yield_now().await;
        }
        batcher.job().gate.add_permits(3);
        for (n, call) in (0..20).zip(calls) {
            assert_eq!(call.await.expect("join").expect("answer"), n * 2);
        }
        let mut sizes = batcher.job().batches.lock().clone();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1, 18]);
        let stats = batcher.stats();
        assert_eq!((stats.statements, stats.calls, stats.waiting), (3, 20, 0));
        // Runners gave their slots back: a later call starts one at once.
        batcher.job().gate.add_permits(1);
        assert_eq!(batcher.call(21).await.expect("answer"), 42);
    }

    /// More calls wait than one statement takes: they go in successive statements of at
    /// most the batch size, in queue order, each call answered with its own result.
    #[tokio::test]
    async fn a_queue_longer_than_the_batch_size_is_split_across_statements() {
        let job = Doubler {
            gate: tokio::sync::Semaphore::new(0),
            batches: Mutex::default(),
        };
        let batcher = Batcher::with_runners(job, "test", 1, 4);
        let spawn_call = |n: u32| {
            let batcher = Arc::clone(&batcher);
            tokio::spawn(async move { batcher.call(n).await })
        };
        let deadline = std::time::Duration::from_secs(10);
        let mut calls = vec![spawn_call(0)];
        tokio::time::timeout(deadline, async {
            while batcher.stats().statements < 1 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the first call holds the runner");
        calls.extend((1..11).map(spawn_call));
        tokio::time::timeout(deadline, async {
            while batcher.stats().waiting < 10 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("ten calls queued");
        batcher.job().gate.add_permits(4);
        for (n, call) in (0..11).zip(calls) {
            let answer = tokio::time::timeout(deadline, call)
                .await
                .expect("answered in time")
                .expect("join")
                .expect("answer");
            assert_eq!(answer, n * 2);
        }
        assert_eq!(*batcher.job().batches.lock(), vec![1, 4, 4, 2]);
        assert_eq!(batcher.stats().statements, 4);
    }

    #[tokio::test]
    async fn a_caller_that_hangs_up_does_not_stop_the_batch() {
        let batcher = doubler(1);
        let first = tokio::spawn({
            let batcher = Arc::clone(&batcher);
            async move { batcher.call(1).await }
        });
        while batcher.stats().statements < 1 {
            tokio::task::yield_now().await;
        }
        let quitter = tokio::spawn({
            let batcher = Arc::clone(&batcher);
            async move { batcher.call(2).await }
        });
        let stayer = tokio::spawn({
            let batcher = Arc::clone(&batcher);
            async move { batcher.call(3).await }
        });
        while batcher.stats().waiting < 2 {
            tokio::task::yield_now().await;
        }
        quitter.abort();
        batcher.job().gate.add_permits(2);
        assert_eq!(first.await.expect("join").expect("answer"), 2);
        assert_eq!(stayer.await.expect("join").expect("answer"), 6);
        assert_eq!(batcher.job().batches.lock().clone(), vec![1, 2]);
    }

    /// Panics on a batch holding 0; each batch waits on a gate first.
    struct Panicky {
        gate: tokio::sync::Semaphore,
        batches: Mutex<Vec<usize>>,
    }

    impl Job for Panicky {
        type Input = u32;
        type Output = u32;

        async fn run(&self, batch: Vec<u32>) -> Vec<Result<u32>> {
            self.batches.lock().push(batch.len());
            self.gate.acquire().await.expect("gate").forget();
            assert!(!batch.contains(&0), "a job that panics");
            batch.into_iter().map(|n| Ok(n * 2)).collect()
        }
    }

    /// A job that panics fails its own batch's calls (500), and the calls queued behind it
    /// are still answered, in batches of at most `max_batch` (a queue longer than a batch
    /// is split across statements).
    #[tokio::test]
    async fn a_panicking_job_fails_its_batch_and_the_queue_behind_it_is_still_served() {
        let job = Panicky {
            gate: tokio::sync::Semaphore::new(0),
            batches: Mutex::default(),
        };
        let batcher = Batcher::with_runners(job, "test", 1, 2);
        let first = tokio::spawn({
            let batcher = Arc::clone(&batcher);
            async move { batcher.call(0).await }
        });
        while batcher.job().batches.lock().is_empty() {
            tokio::task::yield_now().await;
        }
        let queued: Vec<_> = (1..=3)
            .map(|n| {
                let batcher = Arc::clone(&batcher);
                tokio::spawn(async move { batcher.call(n).await })
            })
            .collect();
        while batcher.stats().waiting < 3 {
            tokio::task::yield_now().await;
        }
        batcher.job().gate.add_permits(3);
        let failed = first.await.expect("caller");
        assert!(matches!(failed, Err(AppError::Internal(_))), "{failed:?}");
        let mut answers = Vec::new();
        for call in queued {
            answers.push(call.await.expect("caller").expect("answered"));
        }
        assert_eq!(answers, [2, 4, 6]);
        assert_eq!(*batcher.job().batches.lock(), [1, 2, 1]);
    }
}
