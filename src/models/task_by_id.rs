//! The hottest read, `GET /tasks/{id}`, as one fixed statement. On PostgreSQL it goes to the
//! pool through sqlx directly: a static SQL string (prepared once per connection by sqlx's
//! statement cache) instead of building the query with sea-query on every request, and none
//! of the large per-call futures of sea-orm's generic query path, which were copied
//! several times per request (a third of the request's instructions under callgrind). The
//! row is decoded by `task_rows::decode`, as the list's and the writes' are. Other backends
//! take the query builder.

use sea_orm::sqlx;
use sea_orm::{ColumnTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::entities::task;
use crate::models::task_rows::{decode, sqlx_err};

/// Every column of `tasks`, in the entity's order (a test keeps them in step).
const POSTGRES_SQL: &str = r#"SELECT "id", "user_id", "title", "description", "status", "priority", "due_date", "version", "created_at", "updated_at", "title_search", "description_search" FROM "tasks" WHERE "id" = $1 AND "user_id" = $2"#;

/// The task `id` if `owner` owns it.
pub async fn find(
    db: &DatabaseConnection,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<task::Model>, DbErr> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        // Boxed: unboxed, this large future would size (and be copied with) every call's
        // future, PostgreSQL ones included.
        return Box::pin(
            task::Entity::find_by_id(id)
                .filter(task::Column::UserId.eq(owner))
                .one(db),
        )
        .await;
    }
    let row = sqlx::query(POSTGRES_SQL)
        .bind(id)
        .bind(owner)
        .fetch_optional(db.get_postgres_connection_pool())
        .await
        .map_err(sqlx_err)?;
    row.as_ref().map(decode).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A column added to the entity must be added to the statement too, or decoding the
    /// row would fail at run time.
    #[test]
    fn the_statement_selects_every_column_of_the_entity() {
        let listed = crate::models::task_rows::quoted_columns(None);
        let select = POSTGRES_SQL
            .strip_prefix("SELECT ")
            .and_then(|rest| rest.split(" FROM ").next())
            .expect("select list");
        let selected: Vec<String> = select.split(", ").map(str::to_string).collect();
        assert_eq!(selected, listed);
    }
}
