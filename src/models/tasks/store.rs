//! The one way tasks are stored: [`TaskStore`], with a PostgreSQL implementation and a
//! portable one (SQLite), chosen once when the store is built. Handlers and models call the
//! store; only the two implementations know which database they are on.
//!
//! Every write is a unit of work that runs to its end in a task of its own, whether or not
//! its caller is still waiting: the change commits whole, and then the owner's change-feed
//! streams are told (here and on other replicas), in that order, every time. Were the
//! announcement part of the caller's future, a client hanging up between the commit and
//! the announcement would leave a change that no open stream hears of.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseBackend, DatabaseConnection};
use uuid::Uuid;

use crate::entities::task;
use crate::error::{AppError, Result};
use crate::models::idempotency::{self, Claim, Once, StoredResponse};
use crate::models::tasks::list::cursor::Position;
use crate::models::tasks::list::{Page, TaskFilter};

use super::domain::{TaskChanges, TaskInput, check_version, new_task};
use super::portable::PortableTasks;
use super::postgres::PostgresTasks;

/// Told after every committed change of a user's tasks (the change feed,
/// `cluster::Feed`). A trait so that the store does not depend on the cluster plumbing.
pub trait ChangeListener: Send + Sync + 'static {
    fn changed(&self, owner: Uuid) -> BoxFuture<'_, ()>;
}

enum Backend {
    Postgres(PostgresTasks),
    Portable(PortableTasks),
}

/// Tasks, always read and written through their owner: every statement is filtered by the
/// owner, so another user's task is indistinguishable from a missing one. Cheap to clone.
#[derive(Clone)]
pub struct TaskStore {
    backend: Arc<Backend>,
    listener: Arc<dyn ChangeListener>,
}

impl TaskStore {
    /// The store for `db`'s database: the only place that asks which one it is.
    pub fn new(db: DatabaseConnection, listener: Arc<dyn ChangeListener>) -> Self {
        let backend = match db.get_database_backend() {
            DatabaseBackend::Postgres => Backend::Postgres(PostgresTasks::new(db)),
            _ => Backend::Portable(PortableTasks::new(db)),
        };
        Self {
            backend: Arc::new(backend),
            listener,
        }
    }

    /// The PostgreSQL implementation, for tests and benchmarks of its batching.
    pub fn postgres(&self) -> Option<&PostgresTasks> {
        match &*self.backend {
            Backend::Postgres(store) => Some(store),
            Backend::Portable(_) => None,
        }
    }

    /// `owner`'s task `id` (404 when missing or someone else's).
    pub async fn get(&self, owner: Uuid, id: Uuid) -> Result<task::Model> {
        match &*self.backend {
            Backend::Postgres(store) => store.get(owner, id).await,
            // Boxed here and below: unboxed, sea-orm's large futures would size (and be
            // copied with) every call's future, PostgreSQL ones included.
            Backend::Portable(store) => Box::pin(store.get(owner, id)).await,
        }
    }

    /// A page of `owner`'s tasks: after `cursor` when given (keyset), else at the offset.
    pub async fn list(
        &self,
        owner: Uuid,
        filter: &TaskFilter,
        cursor: Option<&Position>,
    ) -> Result<Page> {
        match &*self.backend {
            Backend::Postgres(store) => store.list(owner, filter, cursor).await,
            Backend::Portable(store) => Box::pin(store.list(owner, filter, cursor)).await,
        }
    }

    /// Creates `owner`'s task with its change-feed event.
    pub async fn create(&self, owner: Uuid, input: TaskInput) -> Result<task::Model> {
        let task = new_task(owner, input);
        self.unit_of_work(owner, move |backend| async move {
            match &*backend {
                Backend::Postgres(store) => store.create(task).await,
                Backend::Portable(store) => Box::pin(store.create(task)).await,
            }
        })
        .await
    }

    /// Creates `owner`'s task at most once per `claim` (`models::idempotency`); `render`
    /// builds the response that is stored with the key and replayed to retries.
    pub async fn create_once(
        &self,
        owner: Uuid,
        claim: Claim,
        input: TaskInput,
        render: impl FnOnce(&task::Model) -> Result<StoredResponse> + Send + 'static,
    ) -> Result<Once<task::Model>> {
        let db = self.connection().clone();
        let listener = Arc::clone(&self.listener);
        run_to_completion(async move {
            let once = idempotency::create_task(&db, owner, &claim, input, render).await?;
            // A replay changed nothing: only a create is announced.
            if let Once::Created(..) = once {
                listener.changed(owner).await;
            }
            Ok(once)
        })
        .await
    }

    /// Applies `changes` to `owner`'s task `id`, only at `expected_version` when given (a
    /// compare-and-set: concurrent writers never silently overwrite each other).
    pub async fn update(
        &self,
        owner: Uuid,
        id: Uuid,
        changes: TaskChanges,
        expected_version: Option<i32>,
    ) -> Result<task::Model> {
        if changes.is_empty() {
            let task = self.get(owner, id).await?;
            check_version(&task, expected_version)?;
            return Ok(task);
        }
        let update = changes.into_update();
        self.unit_of_work(owner, move |backend| async move {
            match &*backend {
                Backend::Postgres(store) => store.update(owner, id, update, expected_version).await,
                Backend::Portable(store) => {
                    Box::pin(store.update(owner, id, update, expected_version)).await
                }
            }
        })
        .await
    }

    /// Deletes `owner`'s task `id`, only at `expected_version` when given.
    pub async fn delete(&self, owner: Uuid, id: Uuid, expected_version: Option<i32>) -> Result<()> {
        self.unit_of_work(owner, move |backend| async move {
            match &*backend {
                Backend::Postgres(store) => store.delete(owner, id, expected_version).await,
                Backend::Portable(store) => {
                    Box::pin(store.delete(owner, id, expected_version)).await
                }
            }
        })
        .await
    }

    fn connection(&self) -> &DatabaseConnection {
        match &*self.backend {
            Backend::Postgres(store) => store.connection(),
            Backend::Portable(store) => store.connection(),
        }
    }

    /// Runs `write` and then tells the listener about `owner`, to the end (module docs).
    async fn unit_of_work<T, F, Fut>(&self, owner: Uuid, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Backend>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let backend = Arc::clone(&self.backend);
        let listener = Arc::clone(&self.listener);
        run_to_completion(async move {
            let done = write(backend).await?;
            listener.changed(owner).await;
            Ok(done)
        })
        .await
    }
}

/// Runs `work` in a task of its own and waits for it: dropping the wait does not stop it.
async fn run_to_completion<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|failed| AppError::Internal(anyhow::anyhow!("task write failed: {failed}")))?
}
