//! The database pool: one `DatabaseConnection` for the whole app, built once at start-up; and
//! the expired-session cleaner's own one-connection pool.
use crate::{
    configuration::{DatabaseConfig, SessionPolicyConfig},
    routes::{SIGN_IN_ID, USER_ID},
};
use pavex_session_sea_orm::{AtCap, SeaOrmSessionStore};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};
use std::time::Duration;

/// Connects to the configured database and, if `migrate_on_start` is set, creates the sessions
/// table.
///
/// A singleton: pavexc calls it once, in `ApplicationState::new`; every component that needs the
/// pool (the session store, `GET /health`) borrows it.
///
/// An error here makes `ApplicationState::new` fail (`ApplicationStateError::Database`), so the
/// server does not start without its database; [`session_store`] then checks the table.
#[pavex::singleton]
pub async fn database(config: &DatabaseConfig) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(config.url.clone());
    options
        // SeaORM logs every statement at INFO by default: one line per request.
        .sqlx_logging(false)
        // Ping only connections that sat idle, not on every checkout.
        .test_before_acquire_if_idle_for(Duration::from_secs(30))
        .acquire_timeout(Duration::from_secs(config.acquire_timeout_seconds))
        .max_connections(config.max_connections)
        // SQLite only (ignored on the other backends): readers do not wait for the writer,
        // writers wait for each other instead of failing with SQLITE_BUSY.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
        });
    let db = Database::connect(options).await?;
    if config.migrate_on_start {
        // Idempotent, and safe when several instances start at once.
        SeaOrmSessionStore::new(db.clone()).migrate().await?;
    }
    Ok(db)
}

/// The session store, on the app's pool, with the signed-in user's id (`user_id` in the state)
/// as the subject it indexes sessions by (what the device routes, `routes::devices`, query) and
/// the sign-in's random id (`sign_in_id`) as the sign-in it records, so that a sign-in the device
/// routes end cannot come back through a request that was in flight on it.
///
/// And the session policy (`session_policy` in the configuration, OWASP ASVS 7.1.2 and 7.3.2):
/// at most `max_devices_per_user` live sessions per user, a sign-in beyond that signing out the
/// user's oldest session (`AtCap::EndOldest`, in the sign-in's own transaction, so racing
/// sign-ins never leave more); and no session living past `absolute_lifetime_days` after its
/// creation, however active (`with_absolute_lifetime`: every write caps the deadline).
///
/// Checked at start-up (`checked`): the table exists, is the store's, has the current schema and
/// its indexes, and the store's statements are prepared. A wrong or missing table makes
/// `ApplicationState::new` fail (`ApplicationStateError::SessionStore`), so the server refuses
/// to start with the mismatch instead of failing its first request. It runs after `database`
/// (which it borrows), hence after the migration when `migrate_on_start` is set.
///
/// The error is a `DbErr` (a mismatch becomes `DbErr::Migration` with its message) rather than
/// the `SchemaCheckError` itself: pavexc names that type by its defining crate,
/// `pavex_session_sea_orm_migration`, which would then be a dependency of `server_sdk`.
///
/// The app builds the store itself (instead of importing `SeaOrmSessionStore::new` from
/// `pavex_session_sea_orm`) to set these keys; the blueprint registers only the crate's
/// conversion into `pavex_session::SessionStore`. That conversion takes the store by value while
/// the device routes borrow it, hence `clone_if_necessary` (a clone shares the pool and the
/// prepared statements).
#[pavex::singleton(clone_if_necessary)]
pub async fn session_store(
    db: &DatabaseConnection,
    policy: &SessionPolicyConfig,
) -> Result<SeaOrmSessionStore, DbErr> {
    let store = SeaOrmSessionStore::new(db.clone())
        .with_subject_key(USER_ID)
        .with_sign_in_key(SIGN_IN_ID)
        .with_max_sessions_per_subject(policy.max_devices_per_user, AtCap::EndOldest)
        .with_absolute_lifetime(policy.absolute_lifetime())
        .checked()
        .await?;
    Ok(store)
}

/// The store the server's expired-session cleaner deletes through: the app's table (`sessions`,
/// as [`session_store`]'s), on a pool of its own with one connection, built with [`database`]'s
/// settings (busy timeout and WAL on SQLite, acquire timeout, idle ping).
///
/// Its own pool rather than the app's: the cleaner runs one statement at a time, so one
/// connection is all it uses, and its batches never hold one of the connections requests wait
/// for (`database.max_connections`), so that under load a request never waits, or times out,
/// because of it. It costs one more
/// connection per instance. (docs/connection-options.md's "more than one" is for request pools:
/// with one connection a statement may wait for the previous one's return ping, microseconds
/// next to the cleaner's pauses.) Call it after `ApplicationState::new`, which has created (if asked)
/// and checked the table; it does not migrate.
///
/// It has [`session_store`]'s absolute lifetime (`session_policy.absolute_lifetime_days`), so
/// that the cleaner tells the sessions that reached it from the idle ones: each is an audit
/// event (`pavex_session_sea_orm::AUDIT_TARGET`, reason `absolute_lifetime`) and counted in its
/// report (`CleanupReport::ended_at_lifetime`). Deleting needs nothing else of the app's store.
pub async fn cleaner_store(
    config: &DatabaseConfig,
    policy: &SessionPolicyConfig,
) -> Result<SeaOrmSessionStore, DbErr> {
    let config = DatabaseConfig {
        max_connections: 1,
        migrate_on_start: false,
        ..config.clone()
    };
    let store = SeaOrmSessionStore::new(database(&config).await?)
        .with_absolute_lifetime(policy.absolute_lifetime());
    Ok(store)
}
