//! The PostgreSQL task store: fixed statements through sqlx, each operation batched with
//! concurrent ones under load (`models::batch`), each write one statement that also
//! records its change-feed event (`models::tasks::postgres::writes`).
//!
//! A batch statement reads its arrays through scalar subqueries, `unnest((SELECT
//! $1::uuid[]))`: given the arrays themselves, PostgreSQL's planner sees their lengths,
//! finds a plan for them cheaper than the cached generic plan, and so plans the statement
//! again at every execution (a statement of one planned this way ran at half the rate of
//! its generic plan). Behind a subquery the length is unknown to both plans, which are then
//! the same, and the generic one is kept. A lone call still takes its single-row statement.

use std::sync::Arc;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::entities::task;
use crate::error::Result;
pub mod by_id;
pub mod rows;
pub mod writes;

use super::list::cursor::Position;
use super::list::{self, DefaultListings, Page, TaskFilter};
use crate::validate;
use by_id::Lookups;
use writes::{Change, Creates, NewTask, Update, Updates};

/// The statements that serve several calls at once, by name: each must be planned once
/// per connection, not per execution (see the module comment; a test holds them to it).
pub const BATCH_STATEMENTS: [(&str, &str); 4] = [
    ("lookup", by_id::LOOKUP_SQL),
    ("create", writes::CREATE_SQL),
    ("update", writes::UPDATE_SQL),
    ("default listing", list::DEFAULT_PAGES_SQL),
];

pub struct PostgresTasks {
    db: DatabaseConnection,
    /// `GET /tasks/{id}` lookups, batched under load.
    pub lookups: Arc<Lookups>,
    /// Creates, batched under load.
    pub creates: Arc<Creates>,
    /// Changes (PUT, PATCH), batched under load.
    pub updates: Arc<Updates>,
    /// Default listings, batched under load.
    pub pages: Arc<DefaultListings>,
}

impl PostgresTasks {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            lookups: by_id::lookups(db.clone()),
            creates: writes::creates(db.clone()),
            updates: writes::updates(db.clone()),
            pages: list::default_listings(db.clone()),
            db,
        }
    }

    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Task `id` if `caller` may read it.
    pub async fn get(&self, caller: Uuid, id: Uuid) -> Result<Option<task::Model>> {
        self.lookups.call((caller, id)).await
    }

    /// A page of `project`'s tasks, if `reader` may read it (404 otherwise).
    pub async fn list(
        &self,
        reader: Uuid,
        project: Uuid,
        filter: &TaskFilter,
        cursor: Option<&Position>,
    ) -> Result<Page> {
        list::list_postgres(&self.db, &self.pages, reader, project, filter, cursor).await
    }

    /// Creates `task` if `caller` may; `None` when not.
    pub async fn create(&self, caller: Uuid, task: task::Model) -> Result<Option<task::Model>> {
        self.creates.call(NewTask { caller, task }).await
    }

    /// Applies `update` if `caller` may and the version matches; `None` when nothing matched.
    pub async fn update(
        &self,
        caller: Uuid,
        id: Uuid,
        update: Update,
        expected_version: Option<i32>,
    ) -> Result<Option<task::Model>> {
        let change = Change {
            caller,
            id,
            update,
            expected_version,
        };
        self.updates.call(change).await
    }

    /// Deletes task `id` if `caller` may and the version matches; its project, or `None`
    /// when nothing matched.
    pub async fn delete(
        &self,
        caller: Uuid,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<Option<Uuid>> {
        let pool = self.db.get_postgres_connection_pool();
        let now = validate::now();
        Ok(writes::delete(pool, caller, id, expected_version, now).await?)
    }
}
