//! Running one statement: a statement that lost a lock conflict is run again.
//!
//! A deadlock victim (MySQL/MariaDB 1213, PostgreSQL 40P01) or a serialization failure (SQLSTATE
//! 40001, also what a MariaDB Galera node answers when another node's write to the same row
//! certified first) was rolled back whole. Every statement of the store runs on its own
//! (autocommit), so running it again is safe, and is what the database asks for. Any other error
//! is returned as it is; in particular a lost connection, whose statement may or may not have been
//! applied, is never retried.

use crate::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, DbErr, ExecResult, QueryResult, Statement};
use std::time::Duration;

/// How many times a statement runs at most when it keeps losing lock conflicts.
const ATTEMPTS: u32 = 4;

/// Runs a statement on sea-orm's connection pool for the backend (`SqlxPostgresPoolConnection`,
/// ...) directly, and through `DatabaseConnection`'s own method for any other kind of connection.
///
/// `DatabaseConnection`'s methods box a future big enough for every backend and copy it more than
/// once; this boxes the backend's own future once. Under callgrind (`benches --bin instructions`,
/// SQLite) a `load` went from 59 000 to 40 000 instructions, an `update` from 74 000 to 56 000.
/// The pool's methods run the same statement with the same error mapping and metric callback.
/// What this skips is the `sea_orm.*` span that sea-orm's optional `tracing-spans` feature opens
/// per statement; the store's own span per operation stays.
macro_rules! on_driver {
    ($db:expr, $pool_method:ident, $connection_method:ident, $statement:expr) => {
        // Each backend's future is boxed on its own, so that it is copied once, at its own size,
        // and the futures of the store's operations (which pavex_session boxes in turn) stay
        // small.
        async {
            match &$db.inner {
                #[cfg(feature = "postgres")]
                sea_orm::DatabaseConnectionType::SqlxPostgresPoolConnection(pool) => {
                    Box::pin(pool.$pool_method($statement)).await
                }
                #[cfg(feature = "mysql")]
                sea_orm::DatabaseConnectionType::SqlxMySqlPoolConnection(pool) => {
                    Box::pin(pool.$pool_method($statement)).await
                }
                #[cfg(feature = "sqlite")]
                sea_orm::DatabaseConnectionType::SqlxSqlitePoolConnection(pool) => {
                    Box::pin(pool.$pool_method($statement)).await
                }
                _ => $db.$connection_method($statement).await,
            }
        }
    };
}

impl SeaOrmSessionStore {
    /// Executes a statement that returns no rows.
    pub(crate) async fn execute(&self, statement: &Statement) -> Result<ExecResult, DbErr> {
        retrying_lock_conflicts(|| on_driver!(self.db, execute, execute_raw, statement.clone()))
            .await
    }

    /// Runs a query that matches at most one row (a lookup by primary key) and returns that row.
    ///
    /// The driver stops at the first row instead of reading on to the end of the result (sqlx's
    /// `fetch_optional`, the call `pavex_session_sqlx` makes too).
    pub(crate) async fn query_one(
        &self,
        statement: &Statement,
    ) -> Result<Option<QueryResult>, DbErr> {
        retrying_lock_conflicts(|| on_driver!(self.db, query_one, query_one_raw, statement.clone()))
            .await
    }

    /// Runs a query and returns its rows.
    pub(crate) async fn query(&self, statement: &Statement) -> Result<Vec<QueryResult>, DbErr> {
        retrying_lock_conflicts(|| on_driver!(self.db, query_all, query_all_raw, statement.clone()))
            .await
    }
}

/// Runs `run` again, up to [`ATTEMPTS`] times in all, while it fails with a lock conflict.
async fn retrying_lock_conflicts<T, F, Fut>(mut run: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Err(e) if attempt < ATTEMPTS && is_lock_conflict(&e) => {
                backoff(attempt, &e).await;
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A short, random pause that grows with each attempt, so that the two sides of a conflict do not
/// collide again in lockstep.
async fn backoff(attempt: u32, e: &DbErr) {
    tracing::debug!(attempt, error = %e, "A statement lost a lock conflict; running it again");
    let millis = fastrand::u64(1..=5) * u64::from(attempt);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

/// Whether the database rolled the statement back because of a lock conflict.
pub(crate) fn is_lock_conflict(e: &DbErr) -> bool {
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    {
        use sea_orm::RuntimeErr;
        if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = e
            && let Some(e) = e.as_database_error()
        {
            return matches!(e.code().as_deref(), Some("40001" | "40P01"));
        }
    }
    let _ = e;
    false
}
