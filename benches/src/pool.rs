//! The pool settings, applied identically to sea-orm's pool (sqlx 0.9), to sqlx 0.8's (theirs)
//! and to the raw side's sqlx 0.9 pool.

use serde::Serialize;
use std::time::Duration;

/// Pool settings shared by every side. Statement logging is always off.
#[derive(Debug, Clone, Serialize)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub min_connections: u32,
    #[serde(with = "crate::secs")]
    pub acquire_timeout: Duration,
    #[serde(with = "crate::secs")]
    pub idle_timeout: Duration,
    #[serde(with = "crate::secs")]
    pub max_lifetime: Duration,
    pub test_before_acquire: bool,
    pub statement_logging: bool,
}

impl PoolSettings {
    /// sea-orm's options for `url`, with these settings.
    pub fn sea_orm(&self, url: &str) -> sea_orm::ConnectOptions {
        let mut options = sea_orm::ConnectOptions::new(url);
        options
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .test_before_acquire(self.test_before_acquire)
            .sqlx_logging(self.statement_logging);
        options
    }

    /// sqlx 0.8's pool options, with these settings (statement logging is switched off on the
    /// connect options, where each side connects in `side.rs`).
    pub fn sqlx<DB: sqlx::Database>(&self) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .test_before_acquire(self.test_before_acquire)
    }

    /// sqlx 0.9's pool options (the raw side's), with these settings (statement logging is
    /// switched off on the connect options, in `raw.rs`).
    pub fn sqlx09<DB: sqlx09::Database>(&self) -> sqlx09::pool::PoolOptions<DB> {
        sqlx09::pool::PoolOptions::new()
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            .max_lifetime(self.max_lifetime)
            .test_before_acquire(self.test_before_acquire)
    }

    /// One line for the report.
    pub fn describe(&self) -> String {
        format!(
            "max_connections={}, min_connections={}, acquire_timeout={}s, idle_timeout={}s, \
             max_lifetime={}s, test_before_acquire={}, statement logging {}; \
             prepared-statement cache: sqlx default (100 per connection) on every side",
            self.max_connections,
            self.min_connections,
            self.acquire_timeout.as_secs_f64(),
            self.idle_timeout.as_secs_f64(),
            self.max_lifetime.as_secs_f64(),
            self.test_before_acquire,
            if self.statement_logging { "on" } else { "off" },
        )
    }
}

/// SQLite connection settings, set explicitly on every side (sqlx 0.8 and 0.9 leave the journal
/// mode alone unless asked, so without this they would run in SQLite's rollback journal).
pub mod sqlite {
    use std::time::Duration;

    /// How long a connection waits for the write lock before `SQLITE_BUSY`.
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

    /// One line for the report.
    pub fn describe() -> String {
        format!(
            "journal_mode=WAL, synchronous=NORMAL, busy_timeout={}s, one file per side",
            BUSY_TIMEOUT.as_secs()
        )
    }

    /// Applies the settings to sqlx 0.9's connect options (sea-orm's, and the raw side's).
    pub fn sqlx09(
        options: sea_orm::sqlx::sqlite::SqliteConnectOptions,
    ) -> sea_orm::sqlx::sqlite::SqliteConnectOptions {
        use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
    }

    /// Applies the settings to sqlx 0.8's connect options.
    pub fn sqlx08(
        options: sqlx::sqlite::SqliteConnectOptions,
    ) -> sqlx::sqlite::SqliteConnectOptions {
        use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
        options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
    }
}
