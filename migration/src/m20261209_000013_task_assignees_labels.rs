//! Teams (issue #24), second part: a task's assignees, labels and comment count, on the
//! task row itself, and the same three in the change feed's snapshots.
//!
//! `assignee_ids` and `label_ids` hold ids separated by spaces (NULL when none). On the row
//! they flow through every path that reads or writes a task (the PostgreSQL one-statement
//! writes, the listings, the feed snapshots) with no extra join or round trip, and both
//! databases filter on them with the same `LIKE '%<id>%'` (a UUID's text never occurs
//! inside another's). Removing a member or deleting a label takes its id out of the rows of
//! its project, under the same locks as any task write (`models::projects`), so no task
//! keeps an assignee who is not a member or a label of another project.
//!
//! `comment_count` is kept by the comment writes, in their transactions; existing tasks
//! get it counted here.
//!
//! `project_members.version`: a membership's ETag, so that a role change or a removal can be
//! conditional (`If-Match`) like every other change.
//!
//! Expand-only: every column is nullable or has a default, so a binary that predates them
//! keeps inserting and reading. Not one transaction: each column is added when missing, so
//! a run that stops half-way is resumed by the next.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    AssigneeIds,
    LabelIds,
    CommentCount,
}

#[derive(DeriveIden, Clone, Copy)]
enum ProjectMembers {
    Table,
    Version,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    AssigneeIds,
    LabelIds,
    CommentCount,
}

/// Counts the comments of the tasks that have any (comments made before this column).
const COUNT_EXISTING_COMMENTS: &str = r#"
UPDATE "tasks" SET "comment_count" =
  (SELECT COUNT(*) FROM "comments" WHERE "comments"."task_id" = "tasks"."id")
WHERE EXISTS (SELECT 1 FROM "comments" WHERE "comments"."task_id" = "tasks"."id")"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let task_columns = [
            (
                Tasks::AssigneeIds,
                ColumnDef::new(Tasks::AssigneeIds).text().null().to_owned(),
            ),
            (
                Tasks::LabelIds,
                ColumnDef::new(Tasks::LabelIds).text().null().to_owned(),
            ),
            (
                Tasks::CommentCount,
                ColumnDef::new(Tasks::CommentCount)
                    .integer()
                    .not_null()
                    .default(0)
                    .to_owned(),
            ),
        ];
        for (name, mut column) in task_columns {
            if !manager.has_column("tasks", &name.to_string()).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(Tasks::Table)
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        let event_columns = [
            (
                TaskEvents::AssigneeIds,
                ColumnDef::new(TaskEvents::AssigneeIds)
                    .text()
                    .null()
                    .to_owned(),
            ),
            (
                TaskEvents::LabelIds,
                ColumnDef::new(TaskEvents::LabelIds)
                    .text()
                    .null()
                    .to_owned(),
            ),
            (
                TaskEvents::CommentCount,
                ColumnDef::new(TaskEvents::CommentCount)
                    .integer()
                    .null()
                    .to_owned(),
            ),
        ];
        for (name, mut column) in event_columns {
            if !manager.has_column("task_events", &name.to_string()).await? {
                manager
                    .alter_table(
                        Table::alter()
                            .table(TaskEvents::Table)
                            .add_column(&mut column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        if !manager.has_column("project_members", "version").await? {
            manager
                .alter_table(
                    Table::alter()
                        .table(ProjectMembers::Table)
                        .add_column(
                            ColumnDef::new(ProjectMembers::Version)
                                .integer()
                                .not_null()
                                .default(1),
                        )
                        .to_owned(),
                )
                .await?;
        }
        manager
            .get_connection()
            .execute_unprepared(COUNT_EXISTING_COMMENTS)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ProjectMembers::Table)
                    .drop_column(ProjectMembers::Version)
                    .to_owned(),
            )
            .await?;
        for column in [
            TaskEvents::AssigneeIds,
            TaskEvents::LabelIds,
            TaskEvents::CommentCount,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(TaskEvents::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        for column in [Tasks::AssigneeIds, Tasks::LabelIds, Tasks::CommentCount] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tasks::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
