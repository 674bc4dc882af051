//! Bulk inserts of live rows, each in its side's own schema, before anything is measured.
//!
//! Ours: `id` uuid/binary(16)/blob, `deadline` epoch milliseconds, `state` JSON, inserted with
//! sea-query. Theirs (`pavex_session_sqlx`'s `migration_query()`): PostgreSQL `uuid`,
//! `timestamptz`, `jsonb`; MySQL `CHAR(36)`, epoch seconds, `JSON`; SQLite `TEXT` id, epoch
//! seconds, JSON text.

use crate::side::{Conn, Side};
use anyhow::{Context as _, ensure};
use futures::{StreamExt as _, TryStreamExt as _};
use pavex_session::SessionId;
use pavex_session_sea_orm::entity::sessions;
use sea_orm::{
    ConnectionTrait as _,
    sea_query::{Expr, Query},
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Rows per `INSERT` (three bound values each: well under every backend's parameter limit).
const CHUNK: usize = 1_000;

/// Inserts one live row per id into the side's table, with `state` and a deadline `ttl` from
/// now (by this machine's clock, which is also the databases' clock here).
pub async fn prefill(
    side: &Side,
    ids: &[SessionId],
    state: &serde_json::Value,
    ttl: Duration,
    parallel: usize,
) -> anyhow::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("The system clock is before 1970")?;
    let deadline = now + ttl;
    futures::stream::iter(ids.chunks(CHUNK))
        .map(|chunk| insert_chunk(side, chunk, state, deadline))
        .buffer_unordered(parallel.max(1))
        .try_collect::<()>()
        .await
        .with_context(|| format!("prefilling {} rows for {}", ids.len(), side.label))
}

/// Inserts one chunk; `deadline` is the Unix time at which the rows expire.
async fn insert_chunk(
    side: &Side,
    chunk: &[SessionId],
    state: &serde_json::Value,
    deadline: Duration,
) -> anyhow::Result<()> {
    let deadline_secs = i64::try_from(deadline.as_secs()).context("deadline overflow")?;
    let deadline_ms = i64::try_from(deadline.as_millis()).context("deadline overflow")?;
    let inserted = match &side.conn {
        Conn::SeaOrm(db) => {
            let mut insert = Query::insert();
            insert.into_table(sessions::Entity).columns([
                sessions::Column::Id,
                sessions::Column::Deadline,
                sessions::Column::State,
            ]);
            for id in chunk {
                insert.values([
                    Expr::val(id.inner()),
                    Expr::val(deadline_ms),
                    Expr::val(state.clone()),
                ])?;
            }
            db.execute(&insert).await?.rows_affected()
        }
        Conn::Postgres(db) => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO sessions (id, deadline, state) ");
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(id.inner())
                    .push("to_timestamp(")
                    .push_bind_unseparated(deadline_secs as f64)
                    .push_unseparated(")")
                    .push_bind(state);
            });
            insert.build().execute(db).await?.rows_affected()
        }
        Conn::Mysql(db) => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO sessions (id, deadline, state) ");
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(id.inner().to_string())
                    .push_bind(deadline_secs)
                    .push_bind(state);
            });
            insert.build().execute(db).await?.rows_affected()
        }
        Conn::Sqlite(db) => {
            let mut insert = sqlx::QueryBuilder::new("INSERT INTO sessions (id, deadline, state) ");
            insert.push_values(chunk, |mut row, id| {
                row.push_bind(id.inner().to_string())
                    .push_bind(deadline_secs)
                    .push_bind(state);
            });
            insert.build().execute(db).await?.rows_affected()
        }
    };
    ensure!(
        inserted == chunk.len() as u64,
        "inserted {inserted} rows instead of {}",
        chunk.len()
    );
    Ok(())
}

/// Refreshes the planner statistics of the side's table after the bulk insert, so that an
/// automatic `ANALYZE` does not land in the middle of a measurement.
pub async fn analyze(side: &Side) -> anyhow::Result<()> {
    let sql = match side.backend {
        crate::args::Backend::Postgres => "VACUUM ANALYZE sessions",
        crate::args::Backend::Mysql => "ANALYZE TABLE sessions",
        crate::args::Backend::Sqlite => "ANALYZE",
    };
    side.execute(sql).await
}
