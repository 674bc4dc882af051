//! The migration of [`pavex_session_sea_orm`](https://docs.rs/pavex_session_sea_orm): one,
//! [`CreateSessionsTable`], which creates the `sessions` table, its indexes and the marker that
//! proves the table is ours. Nothing runs on a table without that marker ([`check_table`]).
//!
//! Two ways to run it:
//!
//! - **Our migrator** ([`Migrator`], [`SessionsMigrator`]), through the
//!   `pavex_session_sea_orm_migration` binary or `SeaOrmSessionStore::migrate`. It records its
//!   history in its own table, [`MIGRATION_TABLE`], so it never touches the host application's
//!   `seaql_migrations`.
//! - **Your migrator**: list [`CreateSessionsTable`] in your own `MigratorTrait::migrations()`
//!   (or extend it with [`migrations`]).
//!
//! The table is `sessions` unless you choose another name or schema ([`SessionsTable`]):
//! [`SessionsMigrator`] and [`CreateSessionsTable::new`] take one.
//!
//! Both are idempotent with each other: the migration creates what is missing and leaves what
//! exists, so switching from one to the other later is a no-op.
//!
//! ```
//! use pavex_session_sea_orm_migration::CreateSessionsTable;
//! use sea_orm_migration::prelude::*;
//!
//! /// The host application's own migrator, with the sessions table added to it.
//! pub struct AppMigrator;
//!
//! #[async_trait::async_trait]
//! impl MigratorTrait for AppMigrator {
//!     fn migrations() -> Vec<Box<dyn MigrationTrait>> {
//!         vec![
//!             // ... the application's own migrations ...
//!             Box::new(CreateSessionsTable::default()),
//!         ]
//!     }
//! }
//! ```

#![deny(missing_docs)]

pub use sea_orm_migration;
use sea_orm_migration::{
    MigratorTraitSelf,
    prelude::*,
    sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement},
    seaql_migrations,
};

mod adopt;
mod clock;
mod m20261206_000001_create_sessions_table;
mod marker;
mod stored_id;
mod subject;
mod table;
mod verify;
pub use adopt::{
    ADOPTION_STAGING_TABLE, AdoptPavexSessionSqlxTable, AdoptionReport, MAX_BATCH_BYTES,
    SQLX_BACKUP_TABLE, SQLX_SESSIONS_TABLE,
};
pub use clock::{millis_of, now_millis};
pub use m20261206_000001_create_sessions_table::{
    CreateSessionsTable, DEADLINE_INDEX, MAX_SUBJECT_BYTES, SESSIONS_TABLE,
};
pub use marker::SCHEMA_VERSION;
pub use stored_id::{STORED_ID_LEN, stored_id};
pub use subject::{InvalidSubject, MAX_SUBJECT_CHARS, subject_of};
pub use table::{
    InvalidIdentifier, MAX_SCHEMA_NAME_LEN, MAX_TABLE_NAME_LEN, SchemaNotSupported, SessionsTable,
};
pub use verify::{CheckedTable, MismatchKind, SchemaCheckError, SchemaMismatch, check_table};

/// The migrations of `table`, in order: put them in your own `MigratorTrait::migrations()`.
///
/// ```
/// use pavex_session_sea_orm_migration::{SessionsTable, migrations};
///
/// let names: Vec<String> = migrations(SessionsTable::default())
///     .iter()
///     .map(|m| m.name().to_owned())
///     .collect();
/// assert_eq!(names, ["m20261206_000001_create_sessions_table"]);
/// ```
pub fn migrations(table: SessionsTable) -> Vec<Box<dyn MigrationTrait>> {
    vec![Box::new(CreateSessionsTable::new(table))]
}

/// The table in which [`Migrator`] records which of its migrations ran.
///
/// It is not `seaql_migrations`, so the host application's own migration history is untouched.
pub const MIGRATION_TABLE: &str = "pavex_session_sea_orm_migrations";

/// The migrator of the default `sessions` table, with its own history table
/// ([`MIGRATION_TABLE`]). For another table, see [`SessionsMigrator`].
///
/// ```no_run
/// use pavex_session_sea_orm_migration::Migrator;
/// use sea_orm_migration::MigratorTrait;
///
/// # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::sea_orm::DbErr> {
/// Migrator::up(db, None).await?;
/// # Ok(())
/// # }
/// ```
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        SessionsMigrator::default().migrations()
    }

    fn migration_table_name() -> DynIden {
        MIGRATION_TABLE.into_iden()
    }

    async fn get_migration_models<C>(db: &C) -> Result<Vec<seaql_migrations::Model>, DbErr>
    where
        C: ConnectionTrait,
    {
        SessionsMigrator::default().get_migration_models(db).await
    }
}

/// The migrator of a chosen sessions table, with the same history table as [`Migrator`].
///
/// ```no_run
/// use pavex_session_sea_orm_migration::{SessionsMigrator, SessionsTable};
/// use sea_orm_migration::MigratorTraitSelf;
///
/// # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let migrator = SessionsMigrator::new(SessionsTable::new("user_sessions")?.in_schema("auth")?);
/// migrator.up(db, None).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SessionsMigrator {
    table: SessionsTable,
}

impl SessionsMigrator {
    /// The migrator of `table`.
    pub fn new(table: SessionsTable) -> Self {
        Self { table }
    }

    /// The table this migrator creates.
    pub fn table(&self) -> &SessionsTable {
        &self.table
    }

    /// Applies the pending migrations (`up`), also when other instances migrate the same
    /// database at the same moment.
    ///
    /// On a table that is up to date it only reads (the catalog and the history table): no DDL,
    /// which on a Galera cluster would take a cluster-wide lock at every start of every instance.
    /// A table that is not ours is refused with the typed [`SchemaMismatch`], untouched.
    ///
    /// Concurrent `CREATE ... IF NOT EXISTS` is not race-free (PostgreSQL can fail with a
    /// unique violation in its catalog, MySQL with a duplicate index name), and two instances can
    /// both record the same migration. A run that fails is therefore run again, after a short
    /// random pause, up to [`MIGRATE_ATTEMPTS`] times: the next run finds what the other
    /// instance created and does only what is still missing.
    pub async fn migrate(&self, db: &DatabaseConnection) -> Result<(), SchemaCheckError> {
        // A table that is not ours is refused before anything is created (not even the
        // history table).
        match verify::inspect(db, &self.table).await? {
            verify::TableState::Refused(mismatch) => return Err(mismatch.into()),
            verify::TableState::Ours(definition) => {
                if verify::missing_indexes(&definition, db.get_database_backend())
                    .next()
                    .is_some()
                    || !definition.missing_beside.is_empty()
                {
                    // The history may say it ran: recreate what went missing since.
                    let manager = SchemaManager::new(db);
                    let create = CreateSessionsTable::new(self.table.clone());
                    retrying(|| create.up(&manager)).await?;
                }
                if is_recorded(db, &self.migrations()).await? {
                    return Ok(());
                }
            }
            verify::TableState::Missing => {}
        }
        match retrying(|| self.up(db, None)).await {
            Ok(()) => Ok(()),
            // A refusal found by the migration itself (the table changed meanwhile): typed.
            Err(e) => match verify::inspect(db, &self.table).await? {
                verify::TableState::Refused(mismatch) => Err(mismatch.into()),
                _ => Err(e.into()),
            },
        }
    }
}

/// How many times [`SessionsMigrator::migrate`] runs a failing migration before giving up.
pub const MIGRATE_ATTEMPTS: u32 = 5;

/// Runs `run` until it succeeds, at most [`MIGRATE_ATTEMPTS`] times, pausing 50-250 ms (times
/// the attempt) in between. A `DbErr::Migration` (a migration's refusal) is returned at once.
pub async fn retrying<F, Fut>(mut run: F) -> Result<(), DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), DbErr>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            // A refusal (a table that is not ours, a missing table) stays one: not retried.
            Err(e) if attempt < MIGRATE_ATTEMPTS && !matches!(e, DbErr::Migration(_)) => {
                tracing::warn!(error = %e, attempt, "Migrating failed; running it again");
                let pause = fastrand::u64(50..=250) * u64::from(attempt);
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

#[async_trait::async_trait]
impl MigratorTraitSelf for SessionsMigrator {
    fn migrations(&self) -> Vec<Box<dyn MigrationTrait>> {
        migrations(self.table.clone())
    }

    fn migration_table_name(&self) -> DynIden {
        MIGRATION_TABLE.into_iden()
    }

    async fn get_migration_models<C>(&self, db: &C) -> Result<Vec<seaql_migrations::Model>, DbErr>
    where
        C: ConnectionTrait,
    {
        self.install(db).await?;
        own_history(db, &self.migrations()).await
    }
}

/// Whether [`MIGRATION_TABLE`] records every one of `migrations` (read only).
pub(crate) async fn is_recorded<C: ConnectionTrait>(
    db: &C,
    migrations: &[Box<dyn MigrationTrait>],
) -> Result<bool, DbErr> {
    if !verify::table_exists(db, MIGRATION_TABLE).await? {
        return Ok(false);
    }
    let history = own_history(db, migrations).await?;
    Ok(migrations
        .iter()
        .all(|m| history.iter().any(|row| row.version == m.name())))
}

/// The rows of [`MIGRATION_TABLE`] that record `migrations`.
///
/// The history table is shared by the migrators of every sessions table in the database, so each
/// keeps to its own rows (sea-orm-migration would otherwise refuse rows it has no migration for).
async fn own_history<C: ConnectionTrait>(
    db: &C,
    migrations: &[Box<dyn MigrationTrait>],
) -> Result<Vec<seaql_migrations::Model>, DbErr> {
    let select = format!("SELECT version, applied_at FROM {MIGRATION_TABLE} ORDER BY version");
    let mut history = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), select))
        .await?
        .iter()
        .map(|row| seaql_migrations::Model::from_query_result(row, ""))
        .collect::<Result<Vec<_>, _>>()?;
    history.retain(|row| migrations.iter().any(|m| m.name() == row.version));
    Ok(history)
}
