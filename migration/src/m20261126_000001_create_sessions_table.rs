use sea_orm_migration::{prelude::*, schema::*};

/// The name of the sessions table.
pub const SESSIONS_TABLE: &str = "sessions";

/// The name of the index on `sessions.deadline`, which expiry clean-up walks oldest first.
pub const DEADLINE_INDEX: &str = "idx_sessions_deadline";

/// Creates the `sessions` table and its `deadline` index.
///
/// | column | PostgreSQL | MySQL / MariaDB | SQLite |
/// |---|---|---|---|
/// | `id` (primary key) | `uuid` | `binary(16)` | 16-byte blob |
/// | `deadline` (Unix epoch milliseconds, indexed) | `bigint` | `bigint` | `integer` |
/// | `state` (a JSON object) | `jsonb` | `json` | JSON text |
///
/// `up` is idempotent: it creates only what is missing, so it can run after the table exists
/// (created by another migrator, or by hand). `down` drops only the sessions table.
pub struct CreateSessionsTable;

/// The identifiers of the sessions table, for the migration's statements.
#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    Deadline,
    State,
}

impl MigrationName for CreateSessionsTable {
    fn name(&self) -> &str {
        "m20261126_000001_create_sessions_table"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSessionsTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(uuid(Sessions::Id).primary_key())
                    .col(big_integer(Sessions::Deadline))
                    .col(json_binary(Sessions::State))
                    .to_owned(),
            )
            .await?;
        // `CREATE INDEX IF NOT EXISTS` is not supported by MySQL (sea-query drops the clause),
        // so ask first.
        if !manager.has_index(SESSIONS_TABLE, DEADLINE_INDEX).await? {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(DEADLINE_INDEX)
                        .table(Sessions::Table)
                        .col(Sessions::Deadline)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).if_exists().to_owned())
            .await
    }
}
