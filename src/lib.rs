//! A server-side session store for [`pavex_session`] on PostgreSQL, MySQL/MariaDB and SQLite,
//! with every statement built by [SeaORM](https://www.sea-ql.org/SeaORM/).
//!
//! Hand [`SeaOrmSessionStore::new`] the application's [`sea_orm::DatabaseConnection`], create
//! the table once ([`SeaOrmSessionStore::migrate`], the migration binary, or
//! [`CreateSessionsTable`] in the application's own migrator), and turn the store into a
//! [`pavex_session::SessionStore`].
//!
//! ```
//! use pavex_session::SessionStore;
//! use pavex_session_sea_orm::SeaOrmSessionStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = sea_orm::Database::connect("sqlite::memory:").await?;
//! let backend = SeaOrmSessionStore::new(db);
//! backend.migrate().await?;
//! let store: SessionStore = backend.into();
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees, on every backend
//!
//! - Deadlines are Unix epoch **milliseconds** computed and compared by the **database's**
//!   clock, so application servers with skewed clocks agree on which sessions are live.
//! - A record is live while `deadline > now`; an expired record behaves as if it did not exist.
//! - `create` never overwrites a live session: it returns `DuplicateId`, also when two requests
//!   race; `change_id` onto a live id returns `DuplicateId` and changes nothing.
//! - One statement per operation on the common path.
//! - No panics on any input or row: a row whose `state` is not a JSON object is a
//!   `LoadError::DeserializationError`; database failures are the `Other` variants, with the
//!   [`sea_orm::DbErr`] as their source.
//! - TTLs longer than [`MAX_TTL_MILLIS`] (about 146 million years, e.g. `Duration::MAX`) are
//!   clamped to it.

mod backend;
mod clock;
mod queries;

pub use backend::MAX_TTL_MILLIS;
pub use pavex_session_sea_orm_entity as entity;
pub use pavex_session_sea_orm_migration::{CreateSessionsTable, Migrator};

use pavex::methods;
use pavex_session::SessionStore;
use queries::Queries;
use sea_orm::{DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

/// A [`pavex_session`] storage backend that keeps sessions in a SQL table through SeaORM.
///
/// It holds a [`DatabaseConnection`] (a pool), so cloning it is cheap and clones share the pool.
#[derive(Debug, Clone)]
pub struct SeaOrmSessionStore {
    db: DatabaseConnection,
}

#[methods]
impl SeaOrmSessionStore {
    /// Creates a store on the given database connection (pool).
    ///
    /// The `sessions` table must exist: see [`migrate`](Self::migrate).
    ///
    /// ```
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db);
    /// # }
    /// ```
    #[singleton]
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

impl SeaOrmSessionStore {
    /// Creates the `sessions` table and its `deadline` index if they are missing, recording the
    /// migration in this crate's own history table (see [`Migrator`]).
    ///
    /// Idempotent: running it again, or after the table was created by another migrator, does
    /// nothing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sea_orm::DbErr> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db);
    /// store.migrate().await?;
    /// store.migrate().await?; // a no-op
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<(), DbErr> {
        Migrator::up(&self.db, None).await
    }

    fn queries(&self) -> Result<Queries, DbErr> {
        Queries::new(self.db.get_database_backend())
    }
}

#[methods]
impl From<SeaOrmSessionStore> for SessionStore {
    /// Wraps the store as the [`SessionStore`] that `pavex_session` uses.
    #[singleton]
    fn from(value: SeaOrmSessionStore) -> Self {
        SessionStore::new(value)
    }
}
