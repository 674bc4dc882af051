//! A server-side session store for [`pavex_session`] on PostgreSQL, MySQL/MariaDB and SQLite,
//! with every statement built by [SeaORM](https://www.sea-ql.org/SeaORM/).
//!
//! Hand [`SeaOrmSessionStore::new`] the application's [`sea_orm::DatabaseConnection`], create
//! the table once ([`SeaOrmSessionStore::migrate`], the migration binary, or
//! [`CreateSessionsTable`] in the application's own migrator), and turn the store into a
//! [`pavex_session::SessionStore`]:
//!
//! ```
//! use pavex_session::{SessionId, SessionStore, store::SessionRecordRef};
//! use pavex_session_sea_orm::SeaOrmSessionStore;
//! use std::{borrow::Cow, collections::HashMap, time::Duration};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let db = sea_orm::Database::connect("sqlite::memory:").await?;
//! let backend = SeaOrmSessionStore::new(db);
//! backend.migrate().await?;
//! let store: SessionStore = backend.into();
//!
//! let id = SessionId::random();
//! let state = HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!(42))]);
//! let ttl = Duration::from_secs(3600);
//! store.create(&id, SessionRecordRef { state: Cow::Borrowed(&state), ttl }).await?;
//! let record = store.load(&id).await?.expect("a live session");
//! assert_eq!(record.state, state);
//! assert!(record.ttl <= ttl);
//! # Ok(())
//! # }
//! ```
//!
//! # In a Pavex app
//!
//! [`SeaOrmSessionStore::new`] and the conversion into [`SessionStore`] are annotated as
//! singletons, so a blueprint imports them next to `pavex_session`'s own components:
//!
//! ```
//! use pavex::{Blueprint, blueprint::from};
//!
//! let mut bp = Blueprint::new();
//! bp.import(from![pavex_session, pavex_session_sea_orm]);
//! bp.post_process(pavex_session::FINALIZE_SESSION);
//! // Sessions travel in a cookie: the cookie components are needed too.
//! bp.import(from![pavex::cookie]);
//! bp.post_process(pavex::cookie::INJECT_RESPONSE_COOKIES);
//! ```
//!
//! The store needs a [`sea_orm::DatabaseConnection`]: the application provides it, as a
//! singleton, usually the same pool its own queries use:
//!
//! ```
//! use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
//!
//! #[pavex::singleton]
//! pub async fn database() -> Result<DatabaseConnection, DbErr> {
//!     let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".into());
//!     Database::connect(ConnectOptions::new(url)).await
//! }
//! # fn main() {}
//! ```
//!
//! With a chosen table ([`SeaOrmSessionStore::with_table`]), register the conversion alone and
//! construct the store yourself:
//!
//! ```
//! use pavex::{Blueprint, blueprint::from};
//! use pavex_session_sea_orm::{SeaOrmSessionStore, SessionsTable};
//! use sea_orm::DatabaseConnection;
//!
//! #[pavex::singleton]
//! pub fn session_backend(db: &DatabaseConnection) -> SeaOrmSessionStore {
//!     let table = SessionsTable::new("user_sessions").expect("a valid table name");
//!     SeaOrmSessionStore::new(db.clone()).with_table(table).expect("a table without a schema")
//! }
//!
//! # fn main() {
//! let mut bp = Blueprint::new();
//! bp.import(from![pavex_session]);
//! bp.constructor(pavex_session_sea_orm::SESSION_STORE_FROM);
//! # }
//! ```
//!
//! # Connection options for sessions
//!
//! Sessions are read on nearly every request, so the pool's defaults show up in request
//! latency. The pool stays the application's decision; what we recommend, and why:
//!
//! ```
//! use sea_orm::{ConnectOptions, sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous}};
//! use std::time::Duration;
//!
//! let mut options = ConnectOptions::new("sqlite://sessions.sqlite?mode=rwc");
//! options
//!     // SeaORM logs every statement at INFO by default: one log line per request.
//!     .sqlx_logging(false)
//!     // The default pings the server on every checkout (one extra round trip per
//!     // operation); ping only connections that sat idle for a while.
//!     .test_before_acquire_if_idle_for(Duration::from_secs(30))
//!     // Fail a request quickly when the database is down, instead of after 30 s.
//!     .acquire_timeout(Duration::from_secs(3))
//!     // Each operation holds a connection for one statement; size the pool for the
//!     // number of requests in flight. SQLite pools default to ONE connection.
//!     .max_connections(16)
//!     // SQLite only: WAL lets readers run while a writer writes; writers wait for each
//!     // other (busy timeout) instead of failing with SQLITE_BUSY.
//!     .map_sqlx_sqlite_opts(|sqlite| {
//!         sqlite
//!             .journal_mode(SqliteJournalMode::Wal)
//!             .synchronous(SqliteSynchronous::Normal)
//!             .busy_timeout(Duration::from_secs(5))
//!     });
//! ```
//!
//! # On a MariaDB Galera cluster
//!
//! Every node accepts writes, and a node applies other nodes' writes a moment after they commit.
//! So that a session written through one node is found through any other, set
//! `wsrep_sync_wait = 3` on the store's connections (or globally on the servers): reads and
//! `UPDATE`/`DELETE` first wait until the node has applied every committed write.
//!
//! ```
//! use sea_orm::{ConnectOptions, sqlx::{AssertSqlSafe, Executor}};
//!
//! let mut options = ConnectOptions::new("mysql://app@db-node-2:3306/app");
//! options.map_sqlx_mysql_pool_opts(|pool| {
//!     pool.after_connect(|connection, _| {
//!         Box::pin(async move {
//!             connection
//!                 .execute(AssertSqlSafe("SET SESSION wsrep_sync_wait = 3"))
//!                 .await
//!                 .map(|_| ())
//!         })
//!     })
//! });
//! ```
//!
//! A statement that loses a certification conflict (error 1213) is run again, as on one server;
//! see `docs/cluster.md` in the repository for what each error means and the measured figures.
//!
//! # Guarantees, on every backend
//!
//! - Deadlines are Unix epoch **milliseconds** computed and compared by the **database's**
//!   clock, so application servers with skewed clocks agree on which sessions are live.
//! - A record is live while `deadline > now`; an expired record behaves as if it did not exist.
//! - `create` never overwrites a live session: it returns `DuplicateId`, also when requests
//!   race; `change_id` onto a live id returns `DuplicateId` and changes nothing.
//! - One statement per operation on the common path.
//! - No panics on any input or row: a row whose `state` is not a JSON object is a
//!   `LoadError::DeserializationError`; database failures are the `Other` variants, with the
//!   [`sea_orm::DbErr`] as their source.
//! - TTLs longer than [`MAX_TTL_MILLIS`] (1 000 years, e.g. `Duration::MAX`) are
//!   clamped to it.
//!
//! See [`SeaOrmSessionStore`] for each operation's results and errors.

#![deny(missing_docs)]

mod audit;
mod backend;
mod bulk;
mod cap;
mod cleanup;
#[cfg(feature = "encryption")]
mod encryption;
mod execute;
mod expiry;
mod prepared;
mod queries;
mod subjects;
mod transaction;

pub use audit::AUDIT_TARGET;
pub use backend::MAX_TTL_MILLIS;
pub use bulk::*;
pub use cap::{AtCap, TooManySessions};
pub use cleanup::{CleanupConfig, CleanupReport, ExpiredSessionCleaner};
#[cfg(feature = "encryption")]
pub use encryption::{InvalidStateKey, StateEncryption, StateKey, UnreadableState};
pub use pavex_session_sea_orm_entity as entity;
pub use pavex_session_sea_orm_migration::{
    AdoptPavexSessionSqlxTable, AdoptionReport, CreateSessionsTable, InvalidIdentifier,
    InvalidSubject, MAX_SUBJECT_CHARS, Migrator, MismatchKind, SchemaCheckError, SchemaMismatch,
    SchemaNotSupported, SessionsMigrator, SessionsTable,
};
pub use subjects::{
    DEFAULT_PAGE_SIZE, InvalidHandle, MAX_PAGE_SIZE, PageCursor, SessionHandle, SessionsPage,
    SubjectError, SubjectSession,
};

use execute::MetricCallback;
use pavex::methods;
use pavex_session::SessionStore;
use pavex_session_sea_orm_migration::CheckedTable;
use prepared::Statements;
use queries::Writes;
use sea_orm::{DatabaseConnection, DatabaseConnectionType, DbBackend, DbErr, RuntimeErr};
use std::sync::Arc;
use tokio::sync::OnceCell;

/// A [`pavex_session`] storage backend that keeps sessions in a SQL table through SeaORM.
///
/// It holds a [`DatabaseConnection`] (a pool), so cloning it is cheap and clones share the pool.
///
/// # Operations
///
/// A record is *live* while its deadline is after the database's `now`; an expired record is
/// treated exactly as a missing one. Every operation's database failure (connection lost,
/// pool closed or timed out, statement rejected) is its `Other` variant, with the
/// [`sea_orm::DbErr`] as the error's source.
///
/// | operation | `Ok` | errors besides `Other` |
/// |---|---|---|
/// | `create(id, record)` | stored with `deadline = now + ttl`; an expired record with `id` is replaced | `DuplicateId` if `id` is live (the record is left untouched); `SerializationError` if the state cannot be serialized |
/// | `update(id, record)` | state replaced, `deadline = now + ttl` | `UnknownIdError` if `id` is not live; `SerializationError` |
/// | `update_ttl(id, ttl)` | `deadline = now + ttl`, state untouched | `UnknownId` if `id` is not live |
/// | `load(id)` | `Some(record)` with the remaining TTL in milliseconds; `None` if `id` is not live | `DeserializationError` if the stored state is not a JSON object |
/// | `delete(id)` | removed | `UnknownId` if `id` is not live |
/// | `change_id(old, new)` | the record moves to `new`, state and deadline unchanged; an expired record at `new` is discarded | `DuplicateId` if `new` is live (both records untouched, also when `old == new`); otherwise `UnknownId` if `old` is not live |
/// | `delete_expired(None)` | every expired record deleted; returns how many | |
/// | `delete_expired(Some(n))` | at most `n` expired records deleted, oldest deadline first; returns how many | |
#[derive(Debug, Clone)]
pub struct SeaOrmSessionStore {
    db: DatabaseConnection,
    table: SessionsTable,
    /// The state key whose value is copied into the `subject` column.
    subject_key: Option<Arc<str>>,
    /// The state key whose value is copied into the `sign_in` column.
    sign_in_key: Option<Arc<str>>,
    /// How long a session may live after its creation, however often it is extended.
    absolute_lifetime: Option<std::time::Duration>,
    /// At most so many live sessions per subject (see [`with_max_sessions_per_subject`](Self::with_max_sessions_per_subject)).
    cap: Option<cap::SubjectCap>,
    /// Seals states at rest (see [`with_state_encryption`](Self::with_state_encryption)).
    #[cfg(feature = "encryption")]
    encryption: Option<encryption::StateEncryption>,
    /// Rendered on first use, once the table has passed [`check_table`](Self::check_table), then shared by clones.
    statements: Arc<OnceCell<Statements>>,
    /// Told about each statement (see [`with_metric_callback`](Self::with_metric_callback)).
    metric_callback: Option<MetricCallback>,
}

#[methods]
impl SeaOrmSessionStore {
    /// Creates a store on the given database connection (pool), for the `sessions` table in the
    /// connection's default schema (see [`with_table`](Self::with_table) for another).
    ///
    /// The table must exist: see [`migrate`](Self::migrate).
    ///
    /// ```
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db);
    /// # }
    /// ```
    #[singleton]
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            table: SessionsTable::default(),
            subject_key: None,
            sign_in_key: None,
            absolute_lifetime: None,
            cap: None,
            #[cfg(feature = "encryption")]
            encryption: None,
            statements: Arc::default(),
            metric_callback: None,
        }
    }
}

impl SeaOrmSessionStore {
    /// The same store, keeping sessions in `table` (a name, and optionally a schema) instead of
    /// `sessions`. Every statement, the index and [`migrate`](Self::migrate) use it.
    ///
    /// ```
    /// use pavex_session_sea_orm::{SeaOrmSessionStore, SessionsTable};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// // An invalid name is an error here, before any statement runs.
    /// let table: SessionsTable = "user_sessions".parse()?;
    /// let store = SeaOrmSessionStore::new(db).with_table(table)?;
    /// store.migrate().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// A schema is supported on PostgreSQL only: on another backend this is
    /// [`SchemaNotSupported`].
    pub fn with_table(self, table: SessionsTable) -> Result<Self, SchemaNotSupported> {
        // Without a connection there is no backend to check; every operation will say so.
        if let Ok(backend) = backend_of(&self.db) {
            table.check_backend(backend)?;
        }
        Ok(Self {
            table,
            statements: Arc::default(),
            ..self
        })
    }

    /// The same store, copying the value of the state key `key` (for example `"user_id"`) into
    /// the indexed `subject` column on every `create` and `update`, in the same statement. The
    /// value must be a JSON string or number (a number is stored as its decimal text) of at most
    /// [`MAX_SUBJECT_CHARS`] characters; a missing key or `null` means no subject. Anything else
    /// fails the write with `SerializationError`, so a session is never left out of
    /// [`end_sessions_of`](Self::end_sessions_of) silently.
    ///
    /// See [`sessions_of`](Self::sessions_of) for what the subject is for.
    ///
    /// ```
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db).with_subject_key("user_id");
    /// # }
    /// ```
    pub fn with_subject_key(self, key: impl Into<String>) -> Self {
        Self {
            subject_key: Some(Arc::from(key.into())),
            // The update statement depends on whether the store knows the key.
            statements: Arc::default(),
            ..self
        }
    }

    /// The same store, copying the value of the state key `key` (for example `"sign_in_id"`)
    /// into the `sign_in` column on every `create` and `update`: a value that names one sign-in
    /// of the user (a random id, or the instant, that the app puts in the state when the user
    /// signs in, and that every later session of that sign-in carries along).
    ///
    /// With it, a sign-in ended by [`end_session_of`](Self::end_session_of) or
    /// [`end_sessions_of`](Self::end_sessions_of) stays ended: `pavex_session` recreates a
    /// session under a new id when a request that loaded it cycles its id after it was ended
    /// (its `change_id` falls back to `create`), and the store refuses that `create` with
    /// [`SignedOut`], in the same statement. Without it, such a request brings the session back.
    /// Use it together with [`with_subject_key`](Self::with_subject_key).
    ///
    /// ```
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db)
    ///     .with_subject_key("user_id")
    ///     .with_sign_in_key("sign_in_id");
    /// # }
    /// ```
    pub fn with_sign_in_key(self, key: impl Into<String>) -> Self {
        Self {
            sign_in_key: Some(Arc::from(key.into())),
            statements: Arc::default(),
            ..self
        }
    }

    /// The same store, under an absolute lifetime (OWASP ASVS 5.0, 7.3.2; Keycloak's "SSO
    /// Session Max"): however often a session is used, extended or renamed, it never lives past
    /// its `created_at + lifetime`. Every write sets the deadline to the earlier of `now + ttl`
    /// and that instant, in the same statement and by the database's clock (`update`,
    /// `update_ttl`; `change_id` keeps the deadline and `created_at`), so `load` reports the TTL
    /// that is really left. A lifetime longer than [`MAX_TTL_MILLIS`] is clamped to it.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db)
    ///     .with_absolute_lifetime(Duration::from_secs(30 * 24 * 3600)); // 30 days
    /// # }
    /// ```
    pub fn with_absolute_lifetime(self, lifetime: std::time::Duration) -> Self {
        Self {
            absolute_lifetime: Some(lifetime),
            statements: Arc::default(),
            ..self
        }
    }

    /// The same store, sealing every session state it writes with `encryption`'s newest key
    /// (XChaCha20-Poly1305, the session's stored id as associated data) and opening the states
    /// it reads with the key they name: a dump of the table shows no state value, and a state
    /// copied onto another session does not open. A state that does not open is
    /// [`UnreadableState`], the cause of `LoadError::DeserializationError`; the row is kept.
    /// See docs/asvs.md for the threat model. Feature `encryption`.
    ///
    /// ```
    /// use pavex_session_sea_orm::{SeaOrmSessionStore, StateEncryption, StateKey};
    ///
    /// # fn build(db: sea_orm::DatabaseConnection) -> Result<(), Box<dyn std::error::Error>> {
    /// let key: StateKey = std::env::var("SESSION_STATE_KEY")?.parse()?; // 64 hex digits
    /// let store = SeaOrmSessionStore::new(db).with_state_encryption(StateEncryption::new(1, key));
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "encryption")]
    pub fn with_state_encryption(self, encryption: StateEncryption) -> Self {
        Self {
            encryption: Some(encryption),
            ..self
        }
    }

    /// The same store, calling `callback` after each statement it runs, with the statement, how
    /// long it took and whether it failed: what SeaORM's
    /// [`DatabaseConnection::set_metric_callback`] is told about the app's own statements.
    ///
    /// The store runs its statements on the sqlx pool inside the `DatabaseConnection`, not
    /// through sea-orm's statement path (which costs about 2 300 instructions more per call, see
    /// BENCHMARKS.md), so a callback set on the connection does not see them. Pass the same
    /// callback here to see them too.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    ///
    /// # async fn build(db: sea_orm::DatabaseConnection) {
    /// let slow = Arc::new(Mutex::new(Vec::new()));
    /// let seen = Arc::clone(&slow);
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db).with_metric_callback(
    ///     move |info: &sea_orm::metric::Info<'_>| {
    ///         if info.elapsed > std::time::Duration::from_millis(50) {
    ///             if let Ok(mut slow) = seen.lock() {
    ///                 slow.push(info.statement.sql.clone());
    ///             }
    ///         }
    ///     },
    /// );
    /// # }
    /// ```
    pub fn with_metric_callback(
        self,
        callback: impl Fn(&sea_orm::metric::Info<'_>) + Send + Sync + 'static,
    ) -> Self {
        Self {
            metric_callback: Some(MetricCallback(Arc::new(callback))),
            ..self
        }
    }

    /// The table this store keeps its sessions in.
    pub fn table(&self) -> &SessionsTable {
        &self.table
    }

    /// Creates the sessions table and its indexes if they are missing, recording the migration
    /// in this crate's own history table (see [`Migrator`], [`SessionsMigrator`]).
    ///
    /// Idempotent: running it again, or after the table was created by another migrator, does
    /// nothing, and on an up-to-date table it only reads (no DDL). A table of that name that is
    /// not ours is refused with [`SchemaCheckError::Mismatch`], untouched.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let store = pavex_session_sea_orm::SeaOrmSessionStore::new(db);
    /// store.migrate().await?;
    /// store.migrate().await?; // only reads
    /// # Ok(())
    /// # }
    /// ```
    pub async fn migrate(&self) -> Result<(), SchemaCheckError> {
        backend_of(&self.db)?;
        SessionsMigrator::new(self.table.clone())
            .migrate(&self.db)
            .await
    }

    /// Checks that the table is one the store can use (see
    /// [`check_table`](pavex_session_sea_orm_migration::check_table)) without running any
    /// statement on it. Every operation does this before its first statement, once per store.
    ///
    /// ```
    /// use pavex_session_sea_orm::{MismatchKind, SchemaCheckError, SeaOrmSessionStore};
    /// use sea_orm::ConnectionTrait;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// db.execute_unprepared("CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT)").await?;
    /// let store = SeaOrmSessionStore::new(db);
    /// let Err(SchemaCheckError::Mismatch(mismatch)) = store.check_table().await else {
    ///     panic!("the app's own table is refused");
    /// };
    /// assert_eq!(mismatch.kind(), MismatchKind::Foreign);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn check_table(&self) -> Result<(), SchemaCheckError> {
        self.checked_table().await.map(|_| ())
    }

    /// The same store, once its table has passed the check (it exists, is ours, has the current
    /// schema and its indexes) and its statements are rendered: call it at start-up, so that an
    /// app with a wrong or missing table refuses to start with the [`SchemaMismatch`] instead of
    /// failing its first request, and the first request costs no catalog read. Clones share
    /// what it prepared.
    ///
    /// ```
    /// use pavex_session_sea_orm::{SchemaCheckError, SeaOrmSessionStore};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let unmigrated = SeaOrmSessionStore::new(db.clone()).checked().await;
    /// assert!(matches!(unmigrated, Err(SchemaCheckError::Mismatch(_))));
    ///
    /// let store = SeaOrmSessionStore::new(db);
    /// store.migrate().await?;
    /// let store = store.checked().await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn checked(self) -> Result<Self, SchemaCheckError> {
        self.statements().await?;
        Ok(self)
    }

    async fn checked_table(&self) -> Result<CheckedTable, SchemaCheckError> {
        backend_of(&self.db)?;
        pavex_session_sea_orm_migration::check_table(&self.db, &self.table).await
    }

    /// The store's statements, rendered once the table has passed the check. A failed check is
    /// not remembered: the next operation checks again (the table may have been migrated since).
    ///
    /// The check's future is boxed and taken only on the way to the first success: inline, it
    /// would be part of every operation's future, which is copied as it is boxed and moved
    /// (BENCHMARKS.md, "Copying futures").
    async fn statements(&self) -> Result<&Statements, SchemaCheckError> {
        if let Some(statements) = self.statements.get() {
            return Ok(statements);
        }
        Box::pin(self.statements.get_or_try_init(|| async {
            let checked = self.checked_table().await?;
            let writes = Writes {
                subject: self.subject_key.is_some(),
                sign_in: self.sign_in_key.is_some(),
                lifetime_capped: self.absolute_lifetime.is_some(),
            };
            Ok(Statements::new(
                backend_of(&self.db)?,
                &self.table,
                checked.primary_key_name().to_owned(),
                writes,
            )?)
        }))
        .await
    }
}

/// Why `create` refused a session: its state names a sign-in of its subject that was ended
/// ([`SeaOrmSessionStore::with_sign_in_key`]). It is the cause of the `CreateError::Other`, so
/// that an app can tell it from a database failure:
///
/// ```
/// # fn is_signed_out(e: &pavex_session::store::errors::CreateError) -> bool {
/// use pavex_session::store::errors::CreateError;
/// matches!(e, CreateError::Other(e) if e.is::<pavex_session_sea_orm::SignedOut>())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the session's sign-in was ended (signed out); it is not created again")]
pub struct SignedOut;

/// Why the store cannot run its statements, as the cause of an operation's `Other` error: the
/// mismatch itself (so that callers can downcast to [`SchemaMismatch`]), or the database error.
fn unusable(e: SchemaCheckError) -> anyhow::Error {
    match e {
        SchemaCheckError::Mismatch(mismatch) => mismatch.into(),
        SchemaCheckError::Db(e) => e.into(),
        other => anyhow::Error::new(other),
    }
}

/// The backend of `db`. sea-orm panics when asked for the backend of a connection to nothing
/// (`DatabaseConnection::default()`): that is an error here.
fn backend_of(db: &DatabaseConnection) -> Result<DbBackend, DbErr> {
    if matches!(db.inner, DatabaseConnectionType::Disconnected) {
        return Err(DbErr::Conn(RuntimeErr::Internal(
            "The session store's DatabaseConnection is not connected to a database \
             (DatabaseConnection::default())"
                .to_owned(),
        )));
    }
    Ok(db.get_database_backend())
}

#[methods]
impl From<SeaOrmSessionStore> for SessionStore {
    /// Wraps the store as the [`SessionStore`] that `pavex_session` uses.
    #[singleton]
    fn from(value: SeaOrmSessionStore) -> Self {
        SessionStore::new(value)
    }
}

// The Markdown documentation's Rust snippets, compiled (and run) by `cargo test --doc`.
#[cfg(doctest)]
#[doc = include_str!("../docs/asvs.md")]
mod docs_asvs {}

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

#[cfg(doctest)]
#[doc = include_str!("../docs/adoption.md")]
mod docs_adoption {}

#[cfg(doctest)]
#[doc = include_str!("../docs/behaviour.md")]
mod docs_behaviour {}

#[cfg(doctest)]
#[doc = include_str!("../docs/cleanup.md")]
mod docs_cleanup {}

#[cfg(doctest)]
#[doc = include_str!("../docs/cluster.md")]
mod docs_cluster {}

#[cfg(doctest)]
#[doc = include_str!("../docs/connection-options.md")]
mod docs_connection_options {}

#[cfg(doctest)]
#[doc = include_str!("../docs/pavex.md")]
mod docs_pavex {}

#[cfg(doctest)]
#[doc = include_str!("../docs/schema.md")]
mod docs_schema {}

#[cfg(doctest)]
#[doc = include_str!("../docs/security.md")]
mod docs_security {}

#[cfg(doctest)]
#[doc = include_str!("../docs/subjects.md")]
mod docs_subjects {}

#[cfg(doctest)]
#[doc = include_str!("../docs/testing.md")]
mod docs_testing {}
