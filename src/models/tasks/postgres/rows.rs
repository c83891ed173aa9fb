//! `tasks` rows read through sqlx directly on PostgreSQL (`by_id`, `writes`, and
//! `tasks::list`): one decoder, by column name, and one error mapping.
//!
//! A statement's columns are found by name once per result set ([`TaskColumns::of`]) and
//! every row of it is then read at those places, unchecked: sea-orm's decoding (a map
//! lookup per column per row) and sqlx's per-value check of the declared type against
//! the Rust type were most of a page's decoding cost, and the types here are the
//! entity's, which the migrations create. A statement that forgot a column fails on its
//! first row with the column's name, which the HTTP tests would show.

use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, Row};
use sea_orm::{DbErr, IdenStatic, RuntimeErr};

use crate::entities::task::{self, Column, Priority, Status};

/// The same error shape sea-orm gives, so `AppError` classifies it the same way
/// (connection loss and pool time-outs are 503s, lost races 503s, a schema behind the
/// binary "migrations pending").
pub fn sqlx_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(err.into()))
}

/// The place of each column of `task::Model` in the rows of one statement.
#[derive(Debug, Clone, Copy)]
pub struct TaskColumns {
    id: usize,
    project_id: usize,
    title: usize,
    description: usize,
    status: usize,
    priority: usize,
    due_date: usize,
    version: usize,
    created_at: usize,
    updated_at: usize,
    title_search: usize,
    description_search: usize,
    assignee_ids: usize,
    label_ids: usize,
    comment_count: usize,
}

impl TaskColumns {
    /// Where `row` (and every row of the same statement) holds the task's columns.
    pub fn of(row: &PgRow) -> Result<Self, DbErr> {
        let place = |column: Column| place_of(row, column.as_str());
        Ok(Self {
            id: place(Column::Id)?,
            project_id: place(Column::ProjectId)?,
            title: place(Column::Title)?,
            description: place(Column::Description)?,
            status: place(Column::Status)?,
            priority: place(Column::Priority)?,
            due_date: place(Column::DueDate)?,
            version: place(Column::Version)?,
            created_at: place(Column::CreatedAt)?,
            updated_at: place(Column::UpdatedAt)?,
            title_search: place(Column::TitleSearch)?,
            description_search: place(Column::DescriptionSearch)?,
            assignee_ids: place(Column::AssigneeIds)?,
            label_ids: place(Column::LabelIds)?,
            comment_count: place(Column::CommentCount)?,
        })
    }

    /// The task in `row`; `None` when its id is NULL (the row of an outer join that
    /// matched no task).
    pub fn decode(&self, row: &PgRow) -> Result<Option<task::Model>, DbErr> {
        let Some(id) = get(row, self.id)? else {
            return Ok(None);
        };
        let status: &str = get(row, self.status)?;
        Ok(Some(task::Model {
            id,
            project_id: get(row, self.project_id)?,
            title: get(row, self.title)?,
            description: get(row, self.description)?,
            status: status_of(status)?,
            priority: priority_of(get(row, self.priority)?)?,
            due_date: get(row, self.due_date)?,
            version: get(row, self.version)?,
            created_at: get(row, self.created_at)?,
            updated_at: get(row, self.updated_at)?,
            title_search: get(row, self.title_search)?,
            description_search: get(row, self.description_search)?,
            assignee_ids: get(row, self.assignee_ids)?,
            label_ids: get(row, self.label_ids)?,
            comment_count: get(row, self.comment_count)?,
        }))
    }
}

/// Every task in `rows` (rows without one are skipped, see [`TaskColumns::decode`]).
pub fn decode_all(rows: &[PgRow]) -> Result<Vec<task::Model>, DbErr> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns = TaskColumns::of(first)?;
    rows.iter()
        .filter_map(|row| columns.decode(row).transpose())
        .collect()
}

/// Where `row` holds the column `name`.
pub fn place_of(row: &PgRow, name: &str) -> Result<usize, DbErr> {
    row.try_column(name)
        .map(sqlx::Column::ordinal)
        .map_err(sqlx_err)
}

/// The value at `place`, read without sqlx's type check (see the module comment).
pub fn get<'r, T>(row: &'r PgRow, place: usize) -> Result<T, DbErr>
where
    T: sqlx::Decode<'r, sqlx::Postgres>,
{
    row.try_get_unchecked(place).map_err(sqlx_err)
}

/// The entity's stored values, matched without allocating (a test checks every variant
/// against `ActiveEnum::to_value`).
fn status_of(stored: &str) -> Result<Status, DbErr> {
    match stored {
        "todo" => Ok(Status::Todo),
        "in_progress" => Ok(Status::InProgress),
        "done" => Ok(Status::Done),
        other => Err(DbErr::Type(format!("unknown task status {other:?}"))),
    }
}

fn priority_of(stored: i16) -> Result<Priority, DbErr> {
    match stored {
        1 => Ok(Priority::Low),
        2 => Ok(Priority::Medium),
        3 => Ok(Priority::High),
        other => Err(DbErr::Type(format!("unknown task priority {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    #[test]
    fn stored_enum_values_decode_to_every_variant() {
        for status in Status::iter() {
            assert_eq!(status_of(&status.to_value()).expect("known"), status);
        }
        for priority in Priority::iter() {
            assert_eq!(priority_of(priority.to_value()).expect("known"), priority);
        }
        assert!(status_of("later").is_err());
        assert!(priority_of(0).is_err());
    }
}
