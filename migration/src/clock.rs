//! The database clock: the one clock that sets and compares deadlines.

use sea_orm_migration::sea_orm::{DbBackend, DbErr, prelude::ChronoDateTimeUtc, sea_query::Expr};

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
    // The server keeps the statement's time in microseconds. PostgreSQL and MySQL hand it out
    // cheaply only as a double (seconds): times 10^6 and rounded, that double gives the exact
    // microsecond back (its error stays under 0.5 µs until 2106, when the seconds outgrow 32
    // bits), and an integer division floors it to the millisecond. `EXTRACT(EPOCH ...)` (a
    // `numeric` on PostgreSQL 14+) and `TIMESTAMPDIFF` give the same value for 1 600-2 200 more
    // server instructions per evaluation (docs/schema.md, "The clock").
    let sql = match backend {
        // `CURRENT_TIMESTAMP` is `now()`, the transaction's start time; time-zone independent.
        // PostgreSQL 15 evaluates it without setting up a function at each execution of a
        // prepared statement, as `now()` needs (docs/schema.md, "The clock").
        DbBackend::Postgres => {
            "(CAST(date_part('epoch', CURRENT_TIMESTAMP) * 1000000 AS BIGINT) / 1000)"
        }
        // `@@timestamp` is the statement's start time in Unix seconds, as `UTC_TIMESTAMP(6)`
        // and `NOW()` see it (a session's `SET timestamp` moves all three alike); time-zone
        // independent, so no DST hour is ambiguous.
        DbBackend::MySql => "(CAST(@@timestamp * 1000000 AS SIGNED) DIV 1000)",
        // `julianday()` is `julianday('now')`, the statement's time, kept by SQLite in whole
        // milliseconds, without parsing the text 'now' at each evaluation; ROUND undoes the
        // floating-point division.
        DbBackend::Sqlite => "CAST(ROUND((julianday() - 2440587.5) * 86400000.0) AS INTEGER)",
        other => {
            return Err(DbErr::BackendNotSupported {
                db: other.as_str(),
                ctx: "pavex_session_sea_orm",
            });
        }
    };
    Ok(Expr::cust(sql))
}

/// The database clock's reading in Unix epoch milliseconds for an instant that PostgreSQL's
/// `now()` returned: the value [`now_millis`] computes in SQL for that instant (its exact
/// microsecond, floored to the millisecond).
///
/// For a statement that returns `now()` itself and leaves the arithmetic to the application,
/// which costs PostgreSQL less than the expression (the store's `load` does this).
///
/// ```
/// use pavex_session_sea_orm_migration::millis_of;
/// use sea_orm_migration::sea_orm::prelude::ChronoDateTimeUtc;
///
/// let now = ChronoDateTimeUtc::from_timestamp_micros(1_700_000_000_123_999).ok_or("range")?;
/// assert_eq!(millis_of(now), 1_700_000_000_123);
/// let before_1970 = ChronoDateTimeUtc::from_timestamp_micros(-1).ok_or("range")?;
/// assert_eq!(millis_of(before_1970), -1);
/// # Ok::<(), &str>(())
/// ```
pub fn millis_of(now: ChronoDateTimeUtc) -> i64 {
    now.timestamp_micros().div_euclid(1000)
}
