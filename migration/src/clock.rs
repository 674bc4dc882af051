//! The database clock: the one clock that sets and compares deadlines.

use sea_orm_migration::sea_orm::{DbBackend, DbErr, sea_query::Expr};

/// The database server's current time in Unix epoch milliseconds, as an SQL expression that the
/// server evaluates inside the statement.
///
/// Application servers' clocks are never consulted, so instances with skewed clocks agree on
/// which sessions are live. Each form is constant within one statement.
///
/// ```
/// use pavex_session_sea_orm_migration::now_millis;
/// use sea_orm_migration::sea_orm::DbBackend;
///
/// assert!(now_millis(DbBackend::Sqlite).is_ok());
/// ```
pub fn now_millis(backend: DbBackend) -> Result<Expr, DbErr> {
    let sql = match backend {
        // `now()` is the transaction's start time, with microseconds; time-zone independent.
        DbBackend::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now()) * 1000) AS BIGINT)",
        // `UTC_TIMESTAMP` ignores the session time zone, so no DST hour is ambiguous.
        DbBackend::MySql => {
            "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)"
        }
        // `julianday('now')` is the statement's time, kept by SQLite in whole milliseconds;
        // ROUND undoes the floating-point division.
        DbBackend::Sqlite => "CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)",
        other => {
            return Err(DbErr::BackendNotSupported {
                db: other.as_str(),
                ctx: "pavex_session_sea_orm",
            });
        }
    };
    Ok(Expr::cust(sql))
}
