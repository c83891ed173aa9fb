//! Listing parameters, validated once: what a page of tasks is asked for.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::entities::task::{Priority, Status};
use crate::error::{AppError, Result};
use crate::requests::{ListTasksQuery, TaskSort};
use crate::validate::{self, Errors};

use super::cursor::{Binding, CURSOR_MAX};

/// Validated listing parameters.
#[derive(Debug, Clone)]
pub struct TaskFilter {
    pub limit: u64,
    pub offset: u64,
    pub status: Option<Status>,
    pub priority: Option<Priority>,
    pub due_before: Option<DateTime<Utc>>,
    pub due_after: Option<DateTime<Utc>>,
    pub search: Option<String>,
    pub sort: TaskSort,
    /// A keyset cursor from an earlier page (still to be verified: see [`Self::binding`]).
    pub cursor: Option<String>,
}

impl TaskFilter {
    /// What a cursor for this listing is bound to: the project, the sort and every filter,
    /// in a canonical text (the limit may change from page to page).
    pub fn binding(&self, project: Uuid) -> Binding {
        let instant = |at: &Option<DateTime<Utc>>| at.map(|at| at.timestamp_micros());
        Binding {
            project,
            sort: self.sort,
            filters: format!(
                "status={:?};priority={:?};due_before={:?};due_after={:?};q={:?}",
                self.status,
                self.priority,
                instant(&self.due_before),
                instant(&self.due_after),
                self.search,
            ),
        }
    }
}

impl TryFrom<ListTasksQuery> for TaskFilter {
    type Error = AppError;

    fn try_from(query: ListTasksQuery) -> Result<Self> {
        let mut errors = Errors::default();
        let (limit, offset) = validate::page(&mut errors, query.limit, query.offset);
        let search = validate::search(&mut errors, query.q);
        if query.cursor.is_some() && query.offset.is_some() {
            errors.add(
                "cursor",
                "cannot be combined with offset: a cursor already says where the page starts",
            );
        }
        if query
            .cursor
            .as_ref()
            .is_some_and(|cursor| cursor.len() > CURSOR_MAX)
        {
            errors.add("cursor", format!("must be at most {CURSOR_MAX} characters"));
        }
        errors.finish(TaskFilter {
            limit,
            offset,
            status: query.status,
            priority: query.priority,
            due_before: query.due_before.map(Into::into),
            due_after: query.due_after.map(Into::into),
            search,
            sort: query.sort.unwrap_or_default(),
            cursor: query.cursor,
        })
    }
}

/// The most frequent listing: every task, newest first, by offset (any limit and offset).
pub(super) fn is_default_listing(filter: &TaskFilter) -> bool {
    filter.status.is_none()
        && filter.priority.is_none()
        && filter.due_before.is_none()
        && filter.due_after.is_none()
        && filter.search.is_none()
        && filter.cursor.is_none()
        && matches!(filter.sort, TaskSort::CreatedAtDesc)
}
