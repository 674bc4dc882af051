//! `fill_sqlx <DATABASE_URL> <ROWS> [LIVE_FRACTION]`: creates pavex_session_sqlx 0.2.10's
//! `sessions` table with its own `migrate()` and bulk-inserts ROWS sessions in its format, 1 000
//! per statement: a fraction LIVE_FRACTION (default 0.5) of them, spread evenly, live for an hour,
//! the others expired an hour ago; states `{"user_id": n % 1000, "n": n}`. Prints how long it
//! took. For measuring the adoption (`pavex-session-sea-orm adopt-sqlx-table`) of a big table.
//!
//! ```sh
//! cargo run --release --manifest-path interop/Cargo.toml --bin fill_sqlx -- \
//!     sqlite:///tmp/sessions.sqlite?mode=rwc 1000000 0.5
//! ```

use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use std::{process::ExitCode, time::Instant};

/// Rows per INSERT.
const BATCH: u64 = 1_000;
/// How far the deadlines are from the database's now, in seconds.
const HOUR: i64 = 3_600;

const USAGE: &str = "usage: fill_sqlx <DATABASE_URL> <ROWS> [LIVE_FRACTION, default 0.5]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = match args.as_slice() {
        [url, rows] => parse(url, rows, "0.5"),
        [url, rows, fraction] => parse(url, rows, fraction),
        _ => Err(USAGE.to_owned()),
    };
    let outcome = match parsed {
        Ok(fill) => fill.run().await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

struct Fill {
    url: String,
    rows: u64,
    live_fraction: f64,
}

fn parse(url: &str, rows: &str, fraction: &str) -> Result<Fill, String> {
    let rows = rows
        .parse()
        .map_err(|e| format!("ROWS {rows:?}: {e}\n{USAGE}"))?;
    let live_fraction: f64 = fraction
        .parse()
        .map_err(|e| format!("LIVE_FRACTION {fraction:?}: {e}\n{USAGE}"))?;
    if !(0.0..=1.0).contains(&live_fraction) {
        return Err(format!("LIVE_FRACTION must be in [0, 1]\n{USAGE}"));
    }
    Ok(Fill {
        url: url.to_owned(),
        rows,
        live_fraction,
    })
}

/// Whether row `n` is live: the live rows are spread evenly, `floor(rows * fraction)` of them.
fn is_live(n: u64, fraction: f64) -> bool {
    ((n + 1) as f64 * fraction).floor() > (n as f64 * fraction).floor()
}

/// Row `n`: a fresh id, the deadline's offset from now in seconds, the state as JSON text.
fn row(n: u64, fraction: f64) -> (uuid::Uuid, i64, String) {
    let offset = match is_live(n, fraction) {
        true => HOUR,
        false => -HOUR,
    };
    let state = format!(r#"{{"user_id": {}, "n": {n}}}"#, n % 1000);
    (uuid::Uuid::new_v4(), offset, state)
}

const INSERT: &str = "INSERT INTO sessions (id, deadline, state) ";

impl Fill {
    async fn run(self) -> Result<(), String> {
        let started = Instant::now();
        let live = if self.url.starts_with("postgres") {
            self.postgres().await
        } else if self.url.starts_with("mysql") || self.url.starts_with("mariadb") {
            self.mysql().await
        } else if self.url.starts_with("sqlite") {
            self.sqlite().await
        } else {
            return Err(format!(
                "not a postgres://, mysql:// or sqlite: URL\n{USAGE}"
            ));
        }
        .map_err(|e| format!("{e}"))?;
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "Inserted {} sessions ({live} live, {} expired) in {elapsed:.3} s ({:.0} rows/s)",
            self.rows,
            self.rows - live,
            self.rows as f64 / elapsed.max(f64::EPSILON)
        );
        Ok(())
    }

    fn batches(&self) -> impl Iterator<Item = std::ops::Range<u64>> + '_ {
        (0..self.rows.div_ceil(BATCH)).map(|b| b * BATCH..((b + 1) * BATCH).min(self.rows))
    }

    fn progress(&self, done: u64, started: Instant) {
        if done.is_multiple_of(100_000) || done == self.rows {
            eprintln!(
                "... {done} rows in {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }

    fn live_count(&self) -> u64 {
        (0..self.rows)
            .filter(|&n| is_live(n, self.live_fraction))
            .count() as u64
    }

    async fn postgres(&self) -> Result<u64, sqlx::Error> {
        let pool = sqlx::PgPool::connect(&self.url).await?;
        PostgresSessionStore::new(pool.clone()).migrate().await?;
        let started = Instant::now();
        for batch in self.batches() {
            let rows: Vec<_> = batch.clone().map(|n| row(n, self.live_fraction)).collect();
            let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(INSERT);
            insert.push_values(rows, |mut values, (id, offset, state)| {
                values
                    .push_bind(id)
                    .push("now() + ")
                    .push_bind_unseparated(offset as f64)
                    .push_unseparated(" * interval '1 second'")
                    .push("CAST(")
                    .push_bind_unseparated(state)
                    .push_unseparated(" AS JSONB)");
            });
            insert.build().execute(&pool).await?;
            self.progress(batch.end, started);
        }
        pool.close().await;
        Ok(self.live_count())
    }

    async fn mysql(&self) -> Result<u64, sqlx::Error> {
        let pool = sqlx::MySqlPool::connect(&self.url).await?;
        MySqlSessionStore::new(pool.clone()).migrate().await?;
        let started = Instant::now();
        for batch in self.batches() {
            let rows: Vec<_> = batch.clone().map(|n| row(n, self.live_fraction)).collect();
            let mut insert = sqlx::QueryBuilder::<sqlx::MySql>::new(INSERT);
            insert.push_values(rows, |mut values, (id, offset, state)| {
                values
                    .push_bind(id.to_string())
                    .push("UNIX_TIMESTAMP() + ")
                    .push_bind_unseparated(offset)
                    .push_bind(state);
            });
            insert.build().execute(&pool).await?;
            self.progress(batch.end, started);
        }
        pool.close().await;
        Ok(self.live_count())
    }

    async fn sqlite(&self) -> Result<u64, sqlx::Error> {
        let pool = sqlx::SqlitePool::connect(&self.url).await?;
        SqliteSessionStore::new(pool.clone()).migrate().await?;
        let started = Instant::now();
        for batch in self.batches() {
            let rows: Vec<_> = batch.clone().map(|n| row(n, self.live_fraction)).collect();
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INSERT);
            insert.push_values(rows, |mut values, (id, offset, state)| {
                values
                    .push_bind(id.to_string())
                    .push("unixepoch() + ")
                    .push_bind_unseparated(offset)
                    .push_bind(state);
            });
            insert.build().execute(&pool).await?;
            self.progress(batch.end, started);
        }
        pool.close().await;
        Ok(self.live_count())
    }
}
