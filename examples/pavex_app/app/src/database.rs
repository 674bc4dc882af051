//! The database pool: one `DatabaseConnection` for the whole app, built once at start-up.
use crate::{configuration::DatabaseConfig, routes::USER_ID};
use pavex_session_sea_orm::SeaOrmSessionStore;
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
/// An error here makes `ApplicationState::new` fail, so the server does not start without its
/// table.
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
/// as the subject it indexes sessions by: what the device routes (`routes::devices`) query.
///
/// The app builds the store itself (instead of importing `SeaOrmSessionStore::new` from
/// `pavex_session_sea_orm`) to set the subject key; the blueprint registers only the crate's
/// conversion into `pavex_session::SessionStore`. That conversion takes the store by value while
/// the device routes borrow it, hence `clone_if_necessary` (a clone shares the pool).
#[pavex::singleton(clone_if_necessary)]
pub fn session_store(db: &DatabaseConnection) -> SeaOrmSessionStore {
    SeaOrmSessionStore::new(db.clone()).with_subject_key(USER_ID)
}
