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
    /// Only tasks assigned to this member, or to nobody.
    pub assignee: Option<Assignee>,
    /// Only tasks with every one of these labels.
    pub labels: Vec<Uuid>,
}

/// The `assignee` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignee {
    /// `me`: the caller ([`TaskFilter::for_caller`] makes it [`Assignee::Member`]).
    Me,
    Member(Uuid),
    /// `none`: tasks nobody is assigned to.
    Nobody,
}

/// The most `label` parameters one listing takes.
pub const MAX_LABEL_FILTERS: usize = 10;

impl TaskFilter {
    /// The filter as `caller` means it (`assignee=me` is them).
    pub fn for_caller(mut self, caller: Uuid) -> Self {
        if self.assignee == Some(Assignee::Me) {
            self.assignee = Some(Assignee::Member(caller));
        }
        self
    }
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
                "status={:?};priority={:?};due_before={:?};due_after={:?};q={:?};assignee={:?};labels={:?}",
                self.status,
                self.priority,
                instant(&self.due_before),
                instant(&self.due_after),
                self.search,
                self.assignee,
                self.labels,
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
        let assignee = query.assignee.and_then(|raw| match raw.as_str() {
            "me" => Some(Assignee::Me),
            "none" => Some(Assignee::Nobody),
            other => match Uuid::parse_str(other) {
                Ok(id) => Some(Assignee::Member(id)),
                Err(_) => {
                    errors.add("assignee", "must be `me`, `none` or a user id");
                    None
                }
            },
        });
        let mut labels = Vec::new();
        for raw in query.label.iter().flat_map(|joined| joined.split(',')) {
            match Uuid::parse_str(raw.trim()) {
                Ok(id) if !labels.contains(&id) => labels.push(id),
                Ok(_) => {}
                Err(_) => errors.add("label", "must be label ids"),
            }
        }
        if labels.len() > MAX_LABEL_FILTERS {
            errors.add("label", format!("at most {MAX_LABEL_FILTERS} labels"));
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
            assignee,
            labels,
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
        && filter.assignee.is_none()
        && filter.labels.is_empty()
        && matches!(filter.sort, TaskSort::CreatedAtDesc)
}
