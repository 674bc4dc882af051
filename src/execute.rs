//! Running one statement: a statement that lost a lock conflict is run again.
//!
//! A deadlock victim (MySQL/MariaDB 1213, PostgreSQL 40P01) or a serialization failure (SQLSTATE
//! 40001, also what a MariaDB Galera node answers when another node's write to the same row
//! certified first) was rolled back whole. Every statement of the store runs on its own
//! (autocommit), so running it again is safe, and is what the database asks for. Any other error
//! is returned as it is; in particular a lost connection, whose statement may or may not have been
//! applied, is never retried.

use crate::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, DbErr, ExecResult, QueryResult, Statement, metric::Info};
use std::{
    fmt,
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

/// How many times a statement runs at most when it keeps losing lock conflicts.
const ATTEMPTS: u32 = 4;

/// Runs a statement on the sqlx pool inside the application's `DatabaseConnection`, and through
/// `DatabaseConnection`'s own method for any other kind of connection.
///
/// sea-orm's statement path copies the values and wraps sqlx's future in its own; under
/// callgrind (the store's `load` statement for a missing id, SQLite, one connection) sea-orm's
/// pool connection took 32 800 instructions per call and the same statement on its sqlx pool
/// 30 500. The connection is
/// acquired, and every error mapped to [`DbErr`], as sea-orm does ([`sqlx_error`]). What this
/// skips: sea-orm's metric callback (`DatabaseConnection::set_metric_callback`), which the store
/// cannot read, so the store takes its own ([`SeaOrmSessionStore::with_metric_callback`]), and
/// sea-orm's trace span per statement; the store's own span per operation stays.
macro_rules! on_pool {
    ($db_store:expr, $statement:expr, $connection_method:ident, |$conn:ident, $query:ident| $run:expr) => {
        // Each backend's future is boxed on its own, so that it is copied once, at its own size,
        // and the futures of the store's operations (which pavex_session boxes in turn) stay
        // small. The pool getters cannot panic here: the arm has matched their backend.
        async {
            let statement: &Statement = $statement;
            let db = &$db_store.db;
            #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
            macro_rules! run_on {
                ($pool:expr) => {{
                    let pool = $pool;
                    let run = Box::pin(async {
                        let mut $conn = pool.acquire().await.map_err(acquire_error)?;
                        let $query = sqlx_query(statement);
                        $run
                    });
                    $db_store.measured(statement, run).await
                }};
            }
            match &db.inner {
                #[cfg(feature = "postgres")]
                sea_orm::DatabaseConnectionType::SqlxPostgresPoolConnection(_) => {
                    run_on!(db.get_postgres_connection_pool())
                }
                #[cfg(feature = "mysql")]
                sea_orm::DatabaseConnectionType::SqlxMySqlPoolConnection(_) => {
                    run_on!(db.get_mysql_connection_pool())
                }
                #[cfg(feature = "sqlite")]
                sea_orm::DatabaseConnectionType::SqlxSqlitePoolConnection(_) => {
                    run_on!(db.get_sqlite_connection_pool())
                }
                _ => db.$connection_method(statement.clone()).await,
            }
        }
    };
}

impl SeaOrmSessionStore {
    /// Executes a statement that returns no rows.
    pub(crate) async fn execute(&self, statement: &Statement) -> Result<ExecResult, DbErr> {
        retrying_lock_conflicts(|| {
            on_pool!(self, statement, execute_raw, |conn, query| {
                match query.execute(&mut *conn).await {
                    Ok(done) => Ok(done.into()),
                    Err(e) => Err(DbErr::Exec(sqlx_error(e))),
                }
            })
        })
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
        retrying_lock_conflicts(|| {
            on_pool!(self, statement, query_one_raw, |conn, query| {
                match query.fetch_optional(&mut *conn).await {
                    Ok(row) => Ok(row.map(QueryResult::from)),
                    Err(e) => Err(DbErr::Query(sqlx_error(e))),
                }
            })
        })
        .await
    }

    /// Runs a query and returns its rows.
    pub(crate) async fn query(&self, statement: &Statement) -> Result<Vec<QueryResult>, DbErr> {
        retrying_lock_conflicts(|| {
            on_pool!(self, statement, query_all_raw, |conn, query| {
                match query.fetch_all(&mut *conn).await {
                    Ok(rows) => Ok(rows.into_iter().map(QueryResult::from).collect()),
                    Err(e) => Err(DbErr::Query(sqlx_error(e))),
                }
            })
        })
        .await
    }
}

/// How a transaction run by [`SeaOrmSessionStore::finish`] ends.
pub(crate) enum Finish<T> {
    Commit(T),
    Rollback(T),
}

impl SeaOrmSessionStore {
    /// Runs `run`, then reports it to the metric callback, if the store has one.
    pub(crate) async fn measured<T>(
        &self,
        statement: &Statement,
        run: impl Future<Output = Result<T, DbErr>>,
    ) -> Result<T, DbErr> {
        let Some(MetricCallback(callback)) = &self.metric_callback else {
            return run.await;
        };
        let start = Instant::now();
        let outcome = run.await;
        callback(&Info {
            elapsed: start.elapsed(),
            statement,
            failed: outcome.is_err(),
        });
        outcome
    }
}

/// What [`SeaOrmSessionStore::with_metric_callback`] is given: called after each statement the
/// store runs on an sqlx pool.
#[derive(Clone)]
pub(crate) struct MetricCallback(pub(crate) Arc<dyn Fn(&Info<'_>) + Send + Sync>);

impl fmt::Debug for MetricCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MetricCallback")
    }
}

/// The statement as an sqlx query, its values bound as sea-orm binds them.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
pub(crate) fn sqlx_query<DB>(
    statement: &Statement,
) -> sea_orm::sqlx::query::Query<'_, DB, sea_query_sqlx::SqlxValues>
where
    DB: sea_orm::sqlx::Database,
    sea_query_sqlx::SqlxValues: sea_orm::sqlx::IntoArguments<DB>,
{
    let values = (statement.values.clone()).unwrap_or_else(|| sea_orm::Values(Vec::new()));
    sea_orm::sqlx::query_with(
        sea_orm::sqlx::AssertSqlSafe(statement.sql.as_str()),
        sea_query_sqlx::SqlxValues(values),
    )
}

/// An error of the driver, as sea-orm reports it (its source kept).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
fn sqlx_error(e: sea_orm::sqlx::Error) -> sea_orm::RuntimeErr {
    sea_orm::RuntimeErr::SqlxError(e.into())
}

/// A failed statement that returns no rows, as sea-orm reports it.
#[cfg(feature = "mysql")]
pub(crate) fn exec_error(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Exec(sqlx_error(e))
}

/// A failed query (or `BEGIN`, `COMMIT`, `ROLLBACK`), as sea-orm reports it.
#[cfg(feature = "mysql")]
pub(crate) fn query_error(e: sea_orm::sqlx::Error) -> DbErr {
    DbErr::Query(sqlx_error(e))
}

/// An error taking a connection from the pool, as sea-orm reports it.
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
fn acquire_error(e: sea_orm::sqlx::Error) -> DbErr {
    use sea_orm::{ConnAcquireErr, sqlx::Error};
    match e {
        Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(sqlx_error(e)),
    }
}

/// Runs `run` again, up to [`ATTEMPTS`] times in all, while it fails with a lock conflict.
async fn retrying_lock_conflicts<T, F, Fut>(run: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    retrying_lock_conflicts_up_to(ATTEMPTS, run).await
}

/// Runs `run` again, up to `attempts` times in all, while it fails with a lock conflict: a
/// statement, or a whole transaction (which then begins in `run`).
pub(crate) async fn retrying_lock_conflicts_up_to<T, F, Fut>(
    attempts: u32,
    mut run: F,
) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut attempt = 1;
    loop {
        match run().await {
            Err(e) if attempt < attempts && is_lock_conflict(&e) => {
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

/// Whether `e` is a violation of the primary key named `primary_key`, not of another unique
/// index: PostgreSQL names the constraint, SQLite has a code of its own for primary keys (1555,
/// against 2067 for other unique indexes), MySQL names the key at the end of its message.
pub(crate) fn is_primary_key_violation(e: &DbErr, primary_key: &str) -> bool {
    if !matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    ) {
        return false;
    }
    #[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
    {
        use sea_orm::RuntimeErr;
        if let DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) = e
            && let Some(e) = e.as_database_error()
        {
            if let Some(constraint) = e.constraint() {
                return constraint == primary_key;
            }
            return match e.code().as_deref() {
                Some("1555") => true,
                Some("2067") => false,
                _ => {
                    let message = e.message();
                    message.ends_with("for key 'PRIMARY'") || message.ends_with(".PRIMARY'")
                }
            };
        }
    }
    let _ = primary_key;
    false
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
