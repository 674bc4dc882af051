use crate::{
    SessionsTable, marker,
    verify::{NeededIndex, TableDefinition, TableState, inspect, missing_indexes, needed_indexes},
};
use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend, TransactionTrait},
};

/// The name of the default sessions table.
pub const SESSIONS_TABLE: &str = "sessions";

/// The name of the default table's index on `deadline`, which expiry clean-up walks oldest first.
pub const DEADLINE_INDEX: &str = "idx_sessions_deadline";

/// The name this migration has in a migration history, for the default table.
const MIGRATION_NAME: &str = "m20261206_000001_create_sessions_table";

/// The longest subject stored, in bytes: 255 characters of up to 4 bytes in UTF-8.
pub const MAX_SUBJECT_BYTES: u32 = 1020;

/// Creates a sessions table, its indexes and the marker that proves the table is ours.
///
/// | column | PostgreSQL | MySQL / MariaDB | SQLite | holds |
/// |---|---|---|---|---|
/// | `id` (primary key) | `bytea` | `binary(16)` | blob | the session id's SHA-256, first 16 bytes |
/// | `deadline` | `bigint` | `bigint` | integer | Unix epoch milliseconds, database clock |
/// | `state` | `bytea` | `longblob` | blob | the state, as JSON text |
/// | `subject` (nullable) | `bytea` | `varbinary(1020)` | blob | who the session belongs to, UTF-8 |
/// | `sign_in` (nullable) | `bytea` | `varbinary(1020)` | blob | which sign-in it continues, UTF-8 |
/// | `created_at`, `updated_at` | `bigint` | `bigint` | integer | Unix epoch milliseconds |
///
/// Indexes: `idx_<table>_deadline` on `deadline`, and on PostgreSQL and SQLite
/// `idx_<table>_subject` on `(subject, created_at)`, partial (`WHERE subject IS NOT NULL`).
///
/// Beside it, `<table>_revoked` (primary key `(subject, sign_in)`, and `deadline`): the sign-ins
/// that were signed out, so that `pavex_session` cannot bring one back under a new id. On MySQL,
/// which has no partial indexes, also `<table>_by_subject` (primary key `(subject, id)`, and
/// `written_at`): the sessions of each subject, in place of the subject index.
/// The repository's `docs/schema.md` says why each column has its type.
///
/// `up` is idempotent and safe for instances running it at once: it creates the table, its
/// marker and its indexes together (one transaction on PostgreSQL and SQLite, one statement on
/// MySQL), and on a table of ours it only recreates an index that went missing, without blocking
/// traffic (`CREATE INDEX CONCURRENTLY` on PostgreSQL). A table of that name that is not ours (no
/// marker: the application's own, `pavex_session_sqlx`'s), or not a plain table, is refused with
/// [`SchemaMismatch`](crate::SchemaMismatch) and left untouched, whatever its columns.
///
/// `down` drops the table only if it is ours, else it is refused in the same way.
///
/// Its name in a migration history is `m20261206_000001_create_sessions_table` for the default
/// table and `m20261206_000001_create_sessions_table:<schema.table>` for any other, so one
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

/// The columns of the sessions table, for the statements of the migrations.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum Sessions {
    Id,
    Deadline,
    State,
    Subject,
    SignIn,
    CreatedAt,
    UpdatedAt,
}

/// The column of `<table>_by_subject` that the sessions table does not have.
#[derive(DeriveIden, Clone, Copy)]
pub(crate) enum BySubject {
    /// When the entry was last written (Unix epoch milliseconds, database clock): the clean-up
    /// leaves an entry younger than an hour, which a write may be about to use.
    WrittenAt,
}

impl MigrationName for CreateSessionsTable {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSessionsTable {
    /// The creation runs in a transaction of its own (PostgreSQL, SQLite); an index recreated on
    /// a table with rows must not (`CREATE INDEX CONCURRENTLY` cannot run in one).
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.check_backend(manager)?;
        match inspect(manager.get_connection(), &self.table).await? {
            TableState::Refused(mismatch) => Err(DbErr::Migration(mismatch.to_string())),
            TableState::Missing => {
                // An app's own table under the name of one of ours beside it: refused, untouched.
                let backend = manager.get_database_backend();
                for beside in self.table.beside(backend) {
                    if let TableState::Refused(mismatch) =
                        inspect(manager.get_connection(), &beside).await?
                        && mismatch.kind() != crate::MismatchKind::Altered
                    {
                        return Err(DbErr::Migration(mismatch.to_string()));
                    }
                }
                self.create(manager).await
            }
            TableState::Ours(definition) => self.repair_indexes(manager, &definition).await,
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.check_backend(manager)?;
        match inspect(manager.get_connection(), &self.table).await? {
            TableState::Refused(mismatch) => {
                Err(DbErr::Migration(format!("refusing to drop it: {mismatch}")))
            }
            TableState::Missing => Ok(()),
            TableState::Ours(_) => {
                let backend = manager.get_database_backend();
                manager
                    .drop_table(Table::drop().table(self.table.table_ref()).to_owned())
                    .await?;
                for beside in self.table.beside(backend) {
                    let drop = Table::drop()
                        .table(beside.table_ref())
                        .if_exists()
                        .to_owned();
                    manager.drop_table(drop).await?;
                }
                Ok(())
            }
        }
    }
}

impl CreateSessionsTable {
    fn check_backend(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        self.table
            .check_backend(manager.get_database_backend())
            .map_err(|e| DbErr::Migration(e.to_string()))
    }

    /// The tables, their markers and the indexes, all at once.
    async fn create(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let mut create = Table::create();
        create
            .table(self.table.table_ref())
            .if_not_exists()
            .col(binary_len(Sessions::Id, 16).primary_key())
            .col(big_integer(Sessions::Deadline))
            .col(match backend {
                // MySQL's `blob` stops at 64 KiB.
                DbBackend::MySql => ColumnDef::new(Sessions::State)
                    .custom(Alias::new("longblob"))
                    .not_null()
                    .to_owned(),
                _ => blob(Sessions::State),
            })
            .col(var_binary_null(Sessions::Subject, MAX_SUBJECT_BYTES))
            .col(var_binary_null(Sessions::SignIn, MAX_SUBJECT_BYTES))
            .col(big_integer(Sessions::CreatedAt))
            .col(big_integer(Sessions::UpdatedAt));
        if backend == DbBackend::MySql {
            // No transactional DDL: one statement per table, the tables beside it first, so that
            // a sessions table with a marker always has them; its indexes in the same statement.
            for index in needed_indexes(backend) {
                create.index(&mut self.index(index, backend));
            }
            for beside in self.table.beside(backend) {
                create_marked(db, &mut self.beside_table(&beside), &beside).await?;
            }
            create_marked(db, &mut create, &self.table).await?;
        } else {
            let transaction = db.begin().await?;
            create_marked(&transaction, &mut create, &self.table).await?;
            for beside in self.table.beside(backend) {
                create_marked(&transaction, &mut self.beside_table(&beside), &beside).await?;
            }
            for index in needed_indexes(backend) {
                transaction
                    .execute(self.index(index, backend).if_not_exists())
                    .await?;
            }
            transaction.commit().await?;
        }
        tracing::info!(table = %self.table, "Created the sessions table");
        Ok(())
    }

    /// Recreates what went missing from a table of ours: a table beside it (the subject entries
    /// filled again from the sessions), an index (or one that a failed concurrent build left
    /// invalid), without blocking reads or writes where the backend can.
    async fn repair_indexes(
        &self,
        manager: &SchemaManager<'_>,
        definition: &TableDefinition,
    ) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        for beside in &definition.missing_beside {
            tracing::warn!(table = %beside, "Recreating a missing table");
            let transaction = manager.get_connection().begin().await?;
            create_marked(&transaction, &mut self.beside_table(beside), beside).await?;
            transaction.commit().await?;
            if *beside == self.table.by_subject() {
                manager
                    .get_connection()
                    .execute(&self.refill_by_subject(backend)?)
                    .await?;
            }
        }
        for needed in missing_indexes(definition, backend) {
            let mut index = self.index(needed, backend);
            let name = index
                .get_index_spec()
                .get_name()
                .unwrap_or_default()
                .to_owned();
            match definition.indexes.iter().find(|index| index.name == name) {
                Some(existing) if existing.valid => continue,
                Some(_) => {
                    tracing::warn!(index = %name, "Dropping an invalid index left by a failed build");
                    let mut drop = Index::drop();
                    drop.name(&name).table(self.table.table_ref()).if_exists();
                    if backend == DbBackend::Postgres {
                        drop.concurrently();
                    }
                    manager.drop_index(drop).await?;
                }
                None => {}
            }
            if backend == DbBackend::Postgres {
                index.concurrently();
            }
            if backend != DbBackend::MySql {
                index.if_not_exists();
            }
            tracing::warn!(table = %self.table, index = %name, "Recreating a missing index");
            manager.create_index(index).await?;
        }
        Ok(())
    }

    /// The table `beside` this one (one of [`SessionsTable::beside`]).
    fn beside_table(&self, beside: &SessionsTable) -> TableCreateStatement {
        match *beside == self.table.by_subject() {
            true => self.by_subject_table(),
            false => self.revoked_table(),
        }
    }

    /// `<table>_by_subject` (MySQL): an entry `(subject, id)` for every session of a subject. An
    /// entry whose session is gone or has another subject is stale: every read joins the entries
    /// to the sessions by id and subject, and the clean-up deletes stale entries.
    fn by_subject_table(&self) -> TableCreateStatement {
        Table::create()
            .table(self.table.by_subject().table_ref())
            .if_not_exists()
            .col(var_binary(Sessions::Subject, MAX_SUBJECT_BYTES))
            .col(binary_len(Sessions::Id, 16))
            .col(big_integer(BySubject::WrittenAt))
            .primary_key(Index::create().col(Sessions::Subject).col(Sessions::Id))
            .to_owned()
    }

    /// An entry for every session of the table that has a subject: `<table>_by_subject` made
    /// again after it went missing.
    fn refill_by_subject(&self, backend: DbBackend) -> Result<InsertStatement, DbErr> {
        let sessions = Query::select()
            .columns([Sessions::Subject, Sessions::Id])
            .expr(crate::now_millis(backend)?)
            .from(self.table.table_ref())
            .and_where(Expr::col(Sessions::Subject).is_not_null())
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(self.table.by_subject().table_ref())
            .columns([
                Sessions::Subject.into_iden(),
                Sessions::Id.into_iden(),
                BySubject::WrittenAt.into_iden(),
            ])
            .select_from(sessions)
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::columns([Sessions::Subject, Sessions::Id])
                    .update_column(BySubject::WrittenAt)
                    .to_owned(),
            );
        Ok(insert)
    }

    /// `<table>_revoked`: a sign-in of a subject, ended by a sign-out, until `deadline` (after
    /// which no session of it can still be in flight).
    fn revoked_table(&self) -> TableCreateStatement {
        Table::create()
            .table(self.table.revoked().table_ref())
            .if_not_exists()
            .col(var_binary(Sessions::Subject, MAX_SUBJECT_BYTES))
            .col(var_binary(Sessions::SignIn, MAX_SUBJECT_BYTES))
            .col(big_integer(Sessions::Deadline))
            .primary_key(Index::create().col(Sessions::Subject).col(Sessions::SignIn))
            .to_owned()
    }

    fn index(&self, needed: &NeededIndex, backend: DbBackend) -> IndexCreateStatement {
        let mut index = Index::create();
        index.table(self.table.table_ref());
        match needed.columns {
            ["deadline"] => {
                index
                    .name(self.table.deadline_index())
                    .col(Sessions::Deadline);
            }
            _ => {
                index
                    .name(self.table.subject_index())
                    .col(Sessions::Subject)
                    .col(Sessions::CreatedAt);
                // Anonymous sessions cost a partial index nothing; MySQL has none.
                if backend != DbBackend::MySql {
                    index.and_where(Expr::col(Sessions::Subject).is_not_null());
                }
            }
        }
        index
    }
}

/// Runs `create` for `table` with our marker on it: in the statement (MySQL's table comment,
/// SQLite's `CREATE TABLE` text) or right after it (PostgreSQL's comment, in the caller's
/// transaction).
async fn create_marked<C: ConnectionTrait>(
    db: &C,
    create: &mut TableCreateStatement,
    table: &SessionsTable,
) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    match backend {
        DbBackend::MySql => {
            db.execute(create.comment(marker::current())).await?;
        }
        DbBackend::Postgres => {
            db.execute(&*create).await?;
            db.execute_unprepared(&format!(
                "COMMENT ON TABLE {} IS '{}'",
                table.quoted(),
                marker::current()
            ))
            .await?;
        }
        _ => {
            let ddl = backend.build(&*create).to_string();
            let ddl = marker::into_sqlite_ddl(&ddl)
                .ok_or_else(|| DbErr::Custom(format!("unexpected CREATE TABLE: {ddl}")))?;
            db.execute_unprepared(&ddl).await?;
        }
    }
    Ok(())
}
