//! The migrations of [`pavex_session_sea_orm`](https://docs.rs/pavex_session_sea_orm): they create the
//! `sessions` table and its `deadline` index.
//!
//! Two ways to run them:
//!
//! - **Our migrator** ([`Migrator`]), through the `pavex_session_sea_orm_migration` binary or
//!   `SeaOrmSessionStore::migrate`. It records its history in its own table,
//!   [`MIGRATION_TABLE`], so it never touches the host application's `seaql_migrations`.
//! - **Your migrator**: list [`CreateSessionsTable`] in your own `MigratorTrait::migrations()`.
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
//!             Box::new(CreateSessionsTable),
//!         ]
//!     }
//! }
//! ```

#![deny(missing_docs)]

pub use sea_orm_migration;
use sea_orm_migration::prelude::*;

mod m20261126_000001_create_sessions_table;
pub use m20261126_000001_create_sessions_table::{
    CreateSessionsTable, DEADLINE_INDEX, SESSIONS_TABLE,
};

/// The table in which [`Migrator`] records which of its migrations ran.
///
/// It is not `seaql_migrations`, so the host application's own migration history is untouched.
pub const MIGRATION_TABLE: &str = "pavex_session_sea_orm_migrations";

/// The migrator of the sessions table, with its own history table ([`MIGRATION_TABLE`]).
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
        vec![Box::new(CreateSessionsTable)]
    }

    fn migration_table_name() -> DynIden {
        MIGRATION_TABLE.into_iden()
    }
}
