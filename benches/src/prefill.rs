//! Bulk inserts of live and expired rows, each in its side's own schema, before anything is
//! measured.
//!
//! Ours: `id` the SHA-256 of the session id (as the store keys it), `deadline` epoch
//! milliseconds, `state` the bytes of the JSON text (the column is binary), `created_at` and
//! `updated_at` the time of the insert (epoch milliseconds: the columns have no default),
//! inserted with sea-query; `subject` is left null (anonymous sessions).
//! Theirs (`pavex_session_sqlx`'s `migration_query()`): PostgreSQL `uuid`,
//! `timestamptz`, `jsonb`; MySQL `CHAR(36)`, epoch seconds, `JSON`; SQLite `TEXT` id, epoch
//! seconds, JSON text. The raw side (theirs' statements on sqlx 0.9) has theirs' table and gets
//! the same rows, written through sqlx 0.9.

use crate::{
    args::Backend,
    side::{Conn, Side},
};
use anyhow::{Context as _, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use pavex_session::SessionId;
use pavex_session_sea_orm::{SessionHandle, entity::sessions};
use rand::seq::SliceRandom as _;
use sea_orm::{
    ConnectionTrait as _,
    sea_query::{Expr, Query},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Rows per `INSERT` (at most five bound values each: well under every backend's parameter
/// limit).
const CHUNK: usize = 1_000;

/// Inserts one live row per id of `live[i]` and one expired row per id of `expired[i]` into
/// `sides[i]`'s table, with `state`; live rows expire `ttl` from now, expired ones expired an
/// hour ago (by this machine's clock, which is also the databases' clock here).
///
/// The rows go in shuffled, live and expired mixed: the table's indexes end up like those of a
/// table filled by sign-ins over time, with their page splits, rather than like a sorted bulk
/// load. The two sides' chunks alternate, so that when the tables
/// outgrow the server's buffer pool (PostgreSQL's `shared_buffers`, InnoDB's buffer pool: 128 MiB
/// by default, about 400k rows) each side keeps a similar share of it, instead of the side filled
/// last having the warm cache.
pub async fn prefill(
    sides: &[Side; 2],
    live: [&[SessionId]; 2],
    expired: [&[SessionId]; 2],
    state: &serde_json::Value,
    ttl: Duration,
    parallel: usize,
) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("The system clock is before 1970")?;
    let deadline = now + ttl;
    let expired_at = now
        .checked_sub(Duration::from_secs(3600))
        .context("The system clock is in 1970")?;
    let rows = [
        mixed(live[0], expired[0], deadline, expired_at),
        mixed(live[1], expired[1], deadline, expired_at),
    ];
    let [a, b] = [rows[0].chunks(CHUNK), rows[1].chunks(CHUNK)];
    let chunks = a
        .map(|chunk| (&sides[0], chunk))
        .zip(b.map(|chunk| (&sides[1], chunk)))
        .flat_map(|(a, b)| [a, b]);
    futures::stream::iter(chunks)
        .map(|(side, chunk)| async move {
            insert_chunk(side, chunk, state)
                .await
                .with_context(|| format!("prefilling {} rows for {}", chunk.len(), side.label))
        })
        .buffer_unordered(parallel.max(1))
        .try_collect::<()>()
        .await
}

/// Each id with its deadline (a Unix time), live and expired shuffled together. (Ordered by id,
/// theirs' rows would go into their primary key in order and ours', keyed by a hash, would not.)
fn mixed(
    live: &[SessionId],
    expired: &[SessionId],
    deadline: Duration,
    expired_at: Duration,
) -> Vec<(SessionId, Duration)> {
    let mut rows: Vec<(SessionId, Duration)> = live
        .iter()
        .map(|id| (*id, deadline))
        .chain(expired.iter().map(|id| (*id, expired_at)))
        .collect();
    rows.shuffle(&mut rand::rng());
    rows
}

/// Inserts `$chunk` into theirs' schema through `$sqlx`'s `QueryBuilder`: `sqlx` (0.8) for
/// theirs, `sqlx09` for the raw side, which thus gets the very same rows. `uuid_id`: the
/// PostgreSQL table (`uuid` id, `timestamptz` deadline); `text_id`: MySQL and SQLite (id as
/// text, deadline in epoch seconds). Evaluates to the number of rows inserted.
macro_rules! insert_theirs {
    ($sqlx:ident, $db:expr, $id:ident, $chunk:expr, $state:expr) => {{
        let mut insert = $sqlx::QueryBuilder::new("INSERT INTO sessions (id, deadline, state) ");
        insert.push_values($chunk, |mut row, (id, deadline)| {
            let secs = i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX);
            insert_theirs!(@row $id, row, id, secs);
            row.push_bind($state);
        });
        insert.build().execute($db).await?.rows_affected()
    }};
    (@row uuid_id, $row:ident, $id:ident, $secs:ident) => {
        $row.push_bind($id.inner())
            .push("to_timestamp(")
            .push_bind_unseparated($secs as f64)
            .push_unseparated(")")
    };
    (@row text_id, $row:ident, $id:ident, $secs:ident) => {
        $row.push_bind($id.inner().to_string()).push_bind($secs)
    };
}

/// Inserts one chunk of ids, each with the Unix time at which its row expires.
async fn insert_chunk(
    side: &Side,
    chunk: &[(SessionId, Duration)],
    state: &serde_json::Value,
) -> anyhow::Result<()> {
    let millis = |deadline: &Duration| i64::try_from(deadline.as_millis()).unwrap_or(i64::MAX);
    let inserted = match &side.conn {
        Conn::SeaOrm(db) => {
            // Our `state` column is binary: it holds the UTF-8 bytes of the JSON text.
            let state = serde_json::to_vec(state).context("serializing the state")?;
            let written = millis(
                &SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .context("The system clock is before 1970")?,
            );
            let mut insert = Query::insert();
            insert.into_table(sessions::Entity).columns([
                sessions::Column::Id,
                sessions::Column::Deadline,
                sessions::Column::State,
                sessions::Column::CreatedAt,
                sessions::Column::UpdatedAt,
            ]);
            for (id, deadline) in chunk {
                insert.values([
                    Expr::val(SessionHandle::of(id).as_bytes().to_vec()),
                    Expr::val(millis(deadline)),
                    Expr::val(state.clone()),
                    Expr::val(written),
                    Expr::val(written),
                ])?;
            }
            db.execute(&insert).await?.rows_affected()
        }
        Conn::Postgres(db) => insert_theirs!(sqlx, db, uuid_id, chunk, state),
        Conn::Mysql(db) => insert_theirs!(sqlx, db, text_id, chunk, state),
        Conn::Sqlite(db) => insert_theirs!(sqlx, db, text_id, chunk, state),
        Conn::RawPostgres(db) => insert_theirs!(sqlx09, db, uuid_id, chunk, state),
        Conn::RawMysql(db) => insert_theirs!(sqlx09, db, text_id, chunk, state),
        Conn::RawSqlite(db) => insert_theirs!(sqlx09, db, text_id, chunk, state),
    };
    ensure!(
        inserted == chunk.len() as u64,
        "inserted {inserted} rows instead of {}",
        chunk.len()
    );
    Ok(())
}

/// Gets the tables ready to measure after the bulk insert: refreshes the planner statistics
/// (so that an automatic `ANALYZE` does not land in a measurement), then writes the dirty pages
/// out (so that the checkpoint or page flushing the bulk insert calls for does not either; at a
/// million rows it made single writes take milliseconds).
///
/// - PostgreSQL: `VACUUM ANALYZE sessions` per side, then one server-wide `CHECKPOINT`.
/// - MySQL/MariaDB: `ANALYZE TABLE sessions`, then `FLUSH TABLES sessions FOR EXPORT` (which
///   writes the table's dirty pages) and `UNLOCK TABLES`, on a dedicated connection per side.
/// - SQLite: `ANALYZE`, then `PRAGMA wal_checkpoint(TRUNCATE)`.
pub async fn settle(sides: &[Side; 2]) -> anyhow::Result<()> {
    use sqlx::{Connection as _, Executor as _};
    for side in sides {
        match side.backend {
            Backend::Postgres => side.execute("VACUUM ANALYZE sessions").await?,
            Backend::Mysql => {
                side.execute("ANALYZE TABLE sessions").await?;
                let context = || format!("flushing the table of {}", side.label);
                let mut conn = sqlx::MySqlConnection::connect(&side.url)
                    .await
                    .with_context(context)?;
                conn.execute("FLUSH TABLES sessions FOR EXPORT")
                    .await
                    .with_context(context)?;
                conn.execute("UNLOCK TABLES").await.with_context(context)?;
                conn.close().await.with_context(context)?;
            }
            Backend::Sqlite => {
                side.execute("ANALYZE").await?;
                side.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
            }
        }
    }
    if sides[0].backend == Backend::Postgres {
        sides[0].execute("CHECKPOINT").await?;
    }
    Ok(())
}
