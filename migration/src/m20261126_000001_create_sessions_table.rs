use crate::{
    SessionsTable,
    verify::{TableState, inspect, read_definition},
};
use sea_orm_migration::{prelude::*, schema::*};

/// The name of the default sessions table.
pub const SESSIONS_TABLE: &str = "sessions";

/// The name of the default table's index on `deadline`, which expiry clean-up walks oldest first.
pub const DEADLINE_INDEX: &str = "idx_sessions_deadline";

/// The name this migration has in a migration history, for the default table.
const MIGRATION_NAME: &str = "m20261126_000001_create_sessions_table";

/// Creates a sessions table and its `deadline` index.
///
/// | column | PostgreSQL | MySQL / MariaDB | SQLite |
/// |---|---|---|---|
/// | `id` (primary key) | `uuid` | `binary(16)` | 16-byte blob |
/// | `deadline` (Unix epoch milliseconds, indexed) | `bigint` | `bigint` | `integer` |
/// | `state` (a JSON object) | `jsonb` | `json` | JSON text |
///
/// `up` is idempotent: it creates only what is missing, so it can run after the table exists
/// (created by another migrator, or by hand). An existing table that is not of this schema or
/// of a later one of this crate is refused with [`SchemaMismatch`](crate::SchemaMismatch), and
/// left untouched. `down` drops only the sessions table.
///
/// [`HashIdsAndAddSubjects`](crate::HashIdsAndAddSubjects) then brings the table to the current
/// schema.
///
/// Its name in a migration history is `m20261126_000001_create_sessions_table` for the default
/// table and `m20261126_000001_create_sessions_table:<schema.table>` for any other, so one
/// migrator can create several sessions tables.
#[derive(Debug, Clone)]
pub struct CreateSessionsTable {
    table: SessionsTable,
    name: String,
}

impl CreateSessionsTable {
    /// The migration of a chosen table (see [`SessionsTable`]).
    pub fn new(table: SessionsTable) -> Self {
        let name = table.migration_name(MIGRATION_NAME);
        Self { table, name }
    }
}

impl Default for CreateSessionsTable {
    /// The migration of the default `sessions` table.
    fn default() -> Self {
        Self::new(SessionsTable::default())
    }
}

/// The columns of the sessions table, for the migration's statements.
#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Id,
    Deadline,
    State,
}

impl MigrationName for CreateSessionsTable {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSessionsTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.check_backend(manager)?;
        // An existing table must be ours (of this migration's schema or a later one): anything
        // else is left untouched.
        if let TableState::Other(mismatch) = inspect(manager.get_connection(), &self.table).await? {
            return Err(DbErr::Migration(mismatch.to_string()));
        }
        manager
            .create_table(
                Table::create()
                    .table(self.table.table_ref())
                    .if_not_exists()
                    .col(uuid(Sessions::Id).primary_key())
                    .col(big_integer(Sessions::Deadline))
                    .col(json_binary(Sessions::State))
                    .to_owned(),
            )
            .await?;
        if !self.deadline_index_exists(manager).await? {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(self.table.deadline_index())
                        .table(self.table.table_ref())
                        .col(Sessions::Deadline)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.check_backend(manager)?;
        manager
            .drop_table(
                Table::drop()
                    .table(self.table.table_ref())
                    .if_exists()
                    .to_owned(),
            )
            .await
    }
}

impl CreateSessionsTable {
    fn check_backend(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        self.table
            .check_backend(manager.get_database_backend())
            .map_err(|e| DbErr::Custom(e.to_string()))
    }

    /// Whether an index that starts with `deadline` exists, whatever its name (a table adopted
    /// from another name keeps its index names). MySQL has no `CREATE INDEX IF NOT EXISTS`
    /// (sea-query drops it), so this is looked up on every backend.
    async fn deadline_index_exists(&self, manager: &SchemaManager<'_>) -> Result<bool, DbErr> {
        Ok(read_definition(manager.get_connection(), &self.table)
            .await?
            .is_some_and(|definition| definition.index_leads.iter().any(|c| c == "deadline")))
    }
}
