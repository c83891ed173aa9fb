//! The one way tasks are stored: [`TaskStore`], with a PostgreSQL implementation and a
//! portable one (SQLite), chosen once when the store is built. Handlers and models call the
//! store; only the two implementations know which database they are on.
//!
//! Every call names its caller, and every statement checks the caller's role in the task's
//! project against `models::projects::policy` (in the statement itself: no round trip of
//! its own). A call that matched nothing asks the policy why: not a member (404), a role
//! too low (403), or a version that moved on (412/409).
//!
//! Every write is a unit of work that runs to its end in a task of its own, whether or not
//! its caller is still waiting: the change commits whole, and then the change-feed streams
//! of the project's members are told (here and on other replicas), in that order, every
//! time. Were the announcement part of the caller's future, a client hanging up between the
//! commit and the announcement would leave a change that no open stream hears of.

use std::future::Future;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use sea_orm::{DatabaseBackend, DatabaseConnection};
use uuid::Uuid;

use crate::entities::task;
use crate::error::{AppError, Result};
use crate::models::events;
use crate::models::idempotency::{self, Claim, Once, StoredResponse};
use crate::models::projects::{self, Action, authorize_in};
use crate::models::tasks::list::cursor::Position;
use crate::models::tasks::list::{Page, TaskFilter};
use crate::models::txn::run_to_completion;

use super::domain::{self, NOT_FOUND, TaskChanges, TaskInput, check_version, new_task};
use super::portable::{Moved, PortableTasks, insert_with_event, update_checked};
use super::postgres::PostgresTasks;

/// Told after every committed change of a project's tasks, with the users whose change
/// feed it reached (the change feed, `cluster::Feed`). A trait so that the store does not
/// depend on the cluster plumbing.
pub trait ChangeListener: Send + Sync + 'static {
    fn changed(&self, audience: Vec<Uuid>) -> BoxFuture<'_, ()>;
}

enum Backend {
    Postgres(PostgresTasks),
    Portable(PortableTasks),
}

/// Tasks, always read and written on behalf of a caller. Cheap to clone.
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

    /// Task `id`, if `caller` may read it (404 otherwise: missing and hidden look alike).
    pub async fn get(&self, caller: Uuid, id: Uuid) -> Result<task::Model> {
        self.backend.get(caller, id).await
    }

    /// A page of `project`'s tasks for `caller` (404 unless they may read it): after
    /// `cursor` when given (keyset), else at the offset. The caller's Inbox (whose id is
    /// theirs) needs no check: it is theirs alone, by construction.
    pub async fn list(
        &self,
        caller: Uuid,
        project: Uuid,
        filter: &TaskFilter,
        cursor: Option<&Position>,
    ) -> Result<Page> {
        match &*self.backend {
            // Checked in the listing's statement where it can be (no round trip of its own).
            Backend::Postgres(store) => store.list(caller, project, filter, cursor).await,
            Backend::Portable(store) => {
                if project != caller {
                    let db = self.connection();
                    projects::require(db, caller, project, Action::Read, projects::NOT_FOUND)
                        .await?;
                }
                Box::pin(store.list(project, filter, cursor)).await
            }
        }
    }

    /// Creates a task in `project` for `caller`, with its change-feed events.
    pub async fn create(
        &self,
        caller: Uuid,
        project: Uuid,
        input: TaskInput,
    ) -> Result<task::Model> {
        // Assignees and labels are checked in the transaction that writes them
        // (`models::assignments`): the portable path's, on either database.
        let checked = input.assigns();
        let task = new_task(project, input);
        let db = self.connection().clone();
        self.unit_of_work(caller, project, move |backend| async move {
            let created = match &*backend {
                _ if checked => Box::pin(insert_with_event(&db, caller, task)).await?,
                Backend::Postgres(store) => store.create(caller, task).await?,
                Backend::Portable(store) => Box::pin(store.create(caller, task)).await?,
            };
            match created {
                Some(task) => Ok(task),
                None => Err(refusal_to_write(&db, caller, project).await),
            }
        })
        .await
    }

    /// Creates a task in `project` at most once per `claim` (`models::idempotency`);
    /// `render` builds the response that is stored with the key and replayed to retries.
    /// The caller's right to write there is checked first, so that a replay, too, is only
    /// ever shown to someone who may still write in the project.
    pub async fn create_once(
        &self,
        caller: Uuid,
        project: Uuid,
        claim: Claim,
        input: TaskInput,
        render: impl FnOnce(&task::Model) -> Result<StoredResponse> + Send + 'static,
    ) -> Result<Once<task::Model>> {
        let db = self.connection().clone();
        if project != caller {
            projects::require(&db, caller, project, Action::EditTasks, projects::NOT_FOUND).await?;
        }
        let listener = Arc::clone(&self.listener);
        run_to_completion(async move {
            let once =
                idempotency::create_task(&db, caller, project, &claim, input, render).await?;
            // A replay changed nothing: only a create is announced.
            if let Once::Created(..) = once {
                listener.changed(audience(&db, caller, project).await).await;
            }
            Ok(once)
        })
        .await
    }

    /// Applies `changes` to task `id` for `caller`, only at `expected_version` when given (a
    /// compare-and-set: concurrent writers never silently overwrite each other). What a move
    /// to another project dropped comes with the task.
    pub async fn update(
        &self,
        caller: Uuid,
        id: Uuid,
        changes: TaskChanges,
        expected_version: Option<i32>,
    ) -> Result<(task::Model, Option<Moved>)> {
        if changes.is_empty() {
            let task = self.get(caller, id).await?;
            let db = self.connection();
            projects::require(db, caller, task.project_id, Action::EditTasks, "Task").await?;
            check_version(&task, expected_version)?;
            return Ok((task, None));
        }
        let update = changes.into_update();
        let store = self.clone();
        if update.needs_checks() {
            return run_to_completion(async move {
                let db = store.connection().clone();
                let Some((task, moved, audience)) =
                    update_checked(&db, caller, id, update, expected_version).await?
                else {
                    return Err(store.explain_miss(caller, id, expected_version).await);
                };
                store.listener.changed(audience).await;
                Ok((task, moved))
            })
            .await;
        }
        run_to_completion(async move {
            let changed = match &*store.backend {
                Backend::Postgres(pg) => pg.update(caller, id, update, expected_version).await?,
                Backend::Portable(portable) => {
                    Box::pin(portable.update(caller, id, update, expected_version)).await?
                }
            };
            let Some(task) = changed else {
                return Err(store.explain_miss(caller, id, expected_version).await);
            };
            store.announce(caller, task.project_id).await;
            Ok((task, None))
        })
        .await
    }

    /// Deletes task `id` for `caller`, only at `expected_version` when given.
    pub async fn delete(
        &self,
        caller: Uuid,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<()> {
        let store = self.clone();
        run_to_completion(async move {
            let deleted = match &*store.backend {
                Backend::Postgres(pg) => pg.delete(caller, id, expected_version).await?,
                Backend::Portable(portable) => {
                    Box::pin(portable.delete(caller, id, expected_version)).await?
                }
            };
            let Some(project) = deleted else {
                return Err(store.explain_miss(caller, id, expected_version).await);
            };
            store.announce(caller, project).await;
            Ok(())
        })
        .await
    }

    fn connection(&self) -> &DatabaseConnection {
        match &*self.backend {
            Backend::Postgres(store) => store.connection(),
            Backend::Portable(store) => store.connection(),
        }
    }

    /// Why a write of task `id` by `caller` matched no row: the task is hidden or gone
    /// (404), the caller's role does not allow it (403), or its version moved on.
    async fn explain_miss(&self, caller: Uuid, id: Uuid, expected: Option<i32>) -> AppError {
        let task = match self.get(caller, id).await {
            Ok(task) => task,
            Err(err) => return err,
        };
        let db = self.connection();
        match projects::require(db, caller, task.project_id, Action::EditTasks, "Task").await {
            Err(refused) => refused,
            Ok(_) => domain::explain_miss(Ok(task), expected),
        }
    }

    /// Tells the members of `project` that it changed.
    async fn announce(&self, caller: Uuid, project: Uuid) {
        let audience = audience(self.connection(), caller, project).await;
        self.listener.changed(audience).await;
    }

    /// Runs `write` and then announces the change to `project`'s members, to the end
    /// (module docs).
    async fn unit_of_work<T, F, Fut>(&self, caller: Uuid, project: Uuid, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Backend>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        let store = self.clone();
        run_to_completion(async move {
            let done = write(Arc::clone(&store.backend)).await?;
            store.announce(caller, project).await;
            Ok(done)
        })
        .await
    }
}

impl Backend {
    async fn get(&self, caller: Uuid, id: Uuid) -> Result<task::Model> {
        match self {
            Backend::Postgres(store) => store.get(caller, id).await,
            // Boxed here and below: unboxed, sea-orm's large futures would size (and be
            // copied with) every call's future, PostgreSQL ones included.
            Backend::Portable(store) => Box::pin(store.get(caller, id)).await,
        }
        .and_then(|found| found.ok_or(NOT_FOUND))
    }
}

/// Who hears of a change in `project`: its members. A change in the caller's own Inbox
/// reaches the caller alone (an Inbox is never shared), with no statement to find out.
async fn audience(db: &DatabaseConnection, caller: Uuid, project: Uuid) -> Vec<Uuid> {
    if project == caller {
        return vec![caller];
    }
    match events::recipients(db, project).await {
        Ok(members) => members,
        Err(err) => {
            // The change is committed; the streams catch up on their next wake-up or poll.
            tracing::warn!(error = %err, %project, "could not find whom to tell of a change");
            vec![caller]
        }
    }
}

/// Why `caller` could not create a task in `project`: the policy's answer. No role in their
/// own Inbox means the account was deleted while the request ran: the client gets what the
/// same token gets from then on, a 401.
async fn refusal_to_write(db: &DatabaseConnection, caller: Uuid, project: Uuid) -> AppError {
    match projects::standing_in(db, caller, project).await {
        Err(err) => err.into(),
        Ok((None, _)) if project == caller => AppError::Unauthorized("Invalid or expired token."),
        Ok((role, archived)) => {
            match authorize_in(role, archived, Action::EditTasks, projects::NOT_FOUND) {
                Err(refused) => refused,
                // Allowed now: the role changed while the create ran. Worth a retry.
                Ok(_) => {
                    AppError::Unavailable("The project's members changed meanwhile; try again.")
                }
            }
        }
    }
}
