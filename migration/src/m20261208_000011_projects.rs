use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{DatabaseBackend, Statement};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
    Name,
    Description,
    Color,
    InboxOf,
    Archived,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ProjectMembers {
    Table,
    ProjectId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    ProjectId,
}

/// The key a writer locks for each user whose change feed it appends to, in SQL; the same
/// value as `models::tasks::domain::advisory_key` (a test holds the two together): the low
/// 48 bits of the UUID's last 8 bytes, tagged 0x7461 in the top 16.
pub const FEED_KEY_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION "taskapi_feed_key"("user_id" uuid) RETURNS int8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT (('x' || right(replace("user_id"::text, '-', ''), 16))::bit(64)::int8
    & x'0000ffffffffffff'::int8) | (x'7461'::int8 << 48)
$$"#;

/// Teams (issue #24): projects and their members.
///
/// Every user gets an *Inbox*, a project whose id is the user's own id, with the user as
/// its only admin; every task moves into its owner's Inbox. Tasks keep their `user_id`
/// column, which from here on holds the task's **project** id: for every task that exists
/// today that is the same value (the Inbox's id is its owner's), so nothing is rewritten,
/// every index keyed by it now serves listings per project, and an older binary still
/// running during a rolling upgrade reads and writes exactly its user's Inbox. The
/// column's foreign key moves from `users` to `projects` (deleting a user still deletes
/// their Inbox, and with it its tasks, through `projects.inbox_of`).
///
/// `project_members.role` is a small integer ordered by power (1 viewer, 2 editor,
/// 3 admin), so that "at least editor" is one comparison in SQL.
///
/// `task_events` rows stay one per recipient (`user_id`) and gain the project they are
/// about. PostgreSQL gains [`FEED_KEY_FUNCTION`], so that a write can lock the feed of
/// every member of a project in the statement that makes the change.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Projects::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Projects::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Projects::Name).string_len(200).not_null())
                    .col(ColumnDef::new(Projects::Description).text().null())
                    .col(ColumnDef::new(Projects::Color).string_len(7).null())
                    .col(ColumnDef::new(Projects::InboxOf).uuid().null().unique_key())
                    .col(
                        ColumnDef::new(Projects::Archived)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Projects::Version)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(
                        ColumnDef::new(Projects::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Projects::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_projects_inbox_of")
                            .from(Projects::Table, Projects::InboxOf)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ProjectMembers::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ProjectMembers::ProjectId).uuid().not_null())
                    .col(ColumnDef::new(ProjectMembers::UserId).uuid().not_null())
                    .col(
                        ColumnDef::new(ProjectMembers::Role)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ProjectMembers::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ProjectMembers::ProjectId)
                            .col(ProjectMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_members_project")
                            .from(ProjectMembers::Table, ProjectMembers::ProjectId)
                            .to(Projects::Table, Projects::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_project_members_user")
                            .from(ProjectMembers::Table, ProjectMembers::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "The projects of user U" (the project list, the sidebar).
        manager
            .create_index(
                Index::create()
                    .name("idx_project_members_user_project")
                    .table(ProjectMembers::Table)
                    .col(ProjectMembers::UserId)
                    .col(ProjectMembers::ProjectId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Every existing user's Inbox, with its owner as admin. Idempotent, so that a run
        // interrupted on SQLite (no transaction around a migration there) can go again.
        db.execute_unprepared(
            r#"INSERT INTO "projects" ("id", "name", "inbox_of", "archived", "version", "created_at", "updated_at")
SELECT "id", 'Inbox', "id", FALSE, 1, "created_at", "created_at" FROM "users"
WHERE NOT EXISTS (SELECT 1 FROM "projects" WHERE "projects"."id" = "users"."id")"#,
        )
        .await?;
        db.execute_unprepared(
            r#"INSERT INTO "project_members" ("project_id", "user_id", "role", "created_at")
SELECT "id", "id", 3, "created_at" FROM "users"
WHERE NOT EXISTS (
  SELECT 1 FROM "project_members" WHERE "project_id" = "users"."id" AND "user_id" = "users"."id")"#,
        )
        .await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    r#"ALTER TABLE "tasks" DROP CONSTRAINT IF EXISTS "fk_tasks_user";
ALTER TABLE "tasks" DROP CONSTRAINT IF EXISTS "fk_tasks_project";
ALTER TABLE "tasks" ADD CONSTRAINT "fk_tasks_project"
  FOREIGN KEY ("user_id") REFERENCES "projects" ("id") ON DELETE CASCADE"#,
                )
                .await?;
                db.execute_unprepared(FEED_KEY_FUNCTION).await?;
            }
            _ => point_sqlite_tasks_at(manager, "users", "projects").await?,
        }
        if !manager.has_column("task_events", "project_id").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(TaskEvents::Table)
                        .add_column(ColumnDef::new(TaskEvents::ProjectId).uuid().null())
                        .to_owned(),
                )
                .await?;
        }
        // Every event so far was about its recipient's own tasks: their Inbox.
        db.execute_unprepared(
            r#"UPDATE "task_events" SET "project_id" = "user_id" WHERE "project_id" IS NULL"#,
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        // Tasks of shared projects have no owner to go back to.
        db.execute_unprepared(
            r#"DELETE FROM "tasks" WHERE "user_id" NOT IN (SELECT "id" FROM "users")"#,
        )
        .await?;
        match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    r#"ALTER TABLE "tasks" DROP CONSTRAINT IF EXISTS "fk_tasks_project";
ALTER TABLE "tasks" ADD CONSTRAINT "fk_tasks_user"
  FOREIGN KEY ("user_id") REFERENCES "users" ("id") ON DELETE CASCADE;
DROP FUNCTION IF EXISTS "taskapi_feed_key"(uuid)"#,
                )
                .await?;
            }
            _ => point_sqlite_tasks_at(manager, "projects", "users").await?,
        }
        db.execute_unprepared(r#"DELETE FROM "task_events" WHERE "project_id" <> "user_id""#)
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TaskEvents::Table)
                    .drop_column(TaskEvents::ProjectId)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(ProjectMembers::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Projects::Table).to_owned())
            .await
    }
}

/// SQLite cannot change a foreign key in place: the table is rebuilt (SQLite's documented
/// procedure), with its definition and indexes as stored in `sqlite_master` and only the
/// referenced table changed, in one transaction on one connection. No table references
/// `tasks`, so dropping the old one cascades nowhere. Does nothing when `tasks` already
/// references `to`.
async fn point_sqlite_tasks_at(
    manager: &SchemaManager<'_>,
    from: &str,
    to: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let read = |sql: &str| Statement::from_string(DatabaseBackend::Sqlite, sql.to_owned());
    let table = db
        .query_one_raw(read(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'",
        ))
        .await?
        .ok_or_else(|| DbErr::Migration("the tasks table is missing".into()))?
        .try_get::<String>("", "sql")?;
    let old_reference = format!(r#"REFERENCES "{from}" ("id")"#);
    if !table.contains(&old_reference) {
        return Ok(());
    }
    let rebuilt = table
        .replacen(
            r#"CREATE TABLE "tasks""#,
            r#"CREATE TABLE "tasks_rebuilt""#,
            1,
        )
        .replacen(&old_reference, &format!(r#"REFERENCES "{to}" ("id")"#), 1)
        .replacen(r#""fk_tasks_user""#, r#""fk_tasks_project""#, 1);
    if !rebuilt.contains("tasks_rebuilt") {
        return Err(DbErr::Migration(format!(
            "unexpected definition of tasks: {table}"
        )));
    }
    let indexes = db
        .query_all_raw(read(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND sql IS NOT NULL",
        ))
        .await?
        .into_iter()
        .map(|row| row.try_get::<String>("", "sql"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut script = format!(
        "BEGIN IMMEDIATE;\n{rebuilt};\nINSERT INTO \"tasks_rebuilt\" SELECT * FROM \"tasks\";\n\
         DROP TABLE \"tasks\";\nALTER TABLE \"tasks_rebuilt\" RENAME TO \"tasks\";\n"
    );
    for index in indexes {
        script.push_str(&index);
        script.push_str(";\n");
    }
    script.push_str("COMMIT;");
    db.execute_unprepared(&script).await?;
    Ok(())
}
