//! `tasks` rows read through sqlx directly on PostgreSQL (`by_id`, `writes`, and
//! `tasks::list`): one decoder by column position, one error mapping, one column count.
//! Every such statement selects the entity's columns in declaration order first (each
//! module's tests hold its SQL to that); listings select NULL in place of the two search
//! copies (`tasks::list::listed`), which decode as `None`.

use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{self, Row};
use sea_orm::{DbErr, RuntimeErr};

use crate::entities::task::{self, Priority, Status};

/// Columns of `task::Model`; anything a statement selects beyond them comes after.
pub const COLUMNS: usize = 12;

/// The same error shape sea-orm gives, so `AppError` classifies it the same way
/// (connection loss and pool time-outs are 503s, lost races 503s, a schema behind the
/// binary "migrations pending").
pub fn sqlx_err(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(err.into()))
}

/// The task in the first [`COLUMNS`] columns of `row`. Read by position and unchecked:
/// sea-orm's decoding by name (a map lookup per column per row) and sqlx's per-value
/// check of the declared type against the Rust type were most of a page's decoding cost,
/// and the types here are the entity's, which the migrations create; a migration that
/// changed one without the entity would fail the HTTP tests, which read every statement.
pub fn decode(row: &PgRow) -> Result<task::Model, DbErr> {
    let status: &str = row.try_get_unchecked(4).map_err(sqlx_err)?;
    let priority: i16 = row.try_get_unchecked(5).map_err(sqlx_err)?;
    Ok(task::Model {
        id: row.try_get_unchecked(0).map_err(sqlx_err)?,
        user_id: row.try_get_unchecked(1).map_err(sqlx_err)?,
        title: row.try_get_unchecked(2).map_err(sqlx_err)?,
        description: row.try_get_unchecked(3).map_err(sqlx_err)?,
        status: status_of(status)?,
        priority: priority_of(priority)?,
        due_date: row.try_get_unchecked(6).map_err(sqlx_err)?,
        version: row.try_get_unchecked(7).map_err(sqlx_err)?,
        created_at: row.try_get_unchecked(8).map_err(sqlx_err)?,
        updated_at: row.try_get_unchecked(9).map_err(sqlx_err)?,
        title_search: row.try_get_unchecked(10).map_err(sqlx_err)?,
        description_search: row.try_get_unchecked(11).map_err(sqlx_err)?,
    })
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

/// The entity's columns in declaration order, quoted as the statements write them
/// (`"title"`, or `"tasks"."title"` with a table): what every statement here must select
/// first, so that [`decode`] reads the right values.
#[cfg(test)]
pub fn quoted_columns(table: Option<&str>) -> Vec<String> {
    use sea_orm::{IdenStatic, Iterable};

    let prefix = table
        .map(|table| format!("\"{table}\"."))
        .unwrap_or_default();
    task::Column::iter()
        .map(|column| format!("{prefix}\"{}\"", column.as_str()))
        .collect()
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

    #[test]
    fn the_entity_has_as_many_columns_as_are_decoded() {
        assert_eq!(task::Column::iter().count(), COLUMNS);
    }
}
