//! The adoption of pavex_session_sqlx's table under load: how the old version's requests fare
//! while `adopt-sqlx-table --copy-only` copies a large table (step 1 of the runbook in
//! docs/adoption.md, run while the old version serves), and how long the final run (copy again,
//! prune, rename; run with the old version stopped) takes.
//!
//! ```sh
//! cargo run --release --manifest-path benches/Cargo.toml --bin adoption_load -- --backend all
//! ```
//!
//! Per backend, in a fresh database (dropped at the end): pavex_session_sqlx 0.2.10's own
//! `migrate()` creates its table, the server fills it with `--rows` sessions, half of them
//! expired (`INSERT ... SELECT`), less the `--known` live ones created through its store. Then
//! `--tasks` tasks call its `load` on the known sessions, and one task its `update_ttl`, in a
//! loop, on a pool of their own, while from a second pool (sea-orm) the copy runs:
//! `AdoptPavexSessionSqlxTable::new(SessionsTable::default()).with_subject_key("user_id")
//! .copy_only().run(..)`, a baseline of the same length before it. The load stops, the final
//! run renames, and this store then loads every known session. A failed call, a failed step or
//! a known session that does not load after the rename makes the run exit non-zero.

#[path = "../support/mod.rs"]
mod support;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{AdoptPavexSessionSqlxTable, SeaOrmSessionStore, SessionsTable};
use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use std::{
    borrow::Cow,
    collections::HashMap,
    str::FromStr as _,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use support::{Backend, Scratch};

/// Rows the server inserts per statement while filling.
const FILL_CHUNK: u64 = 100_000;

#[derive(Parser)]
#[command(about = "pavex_session_sqlx's load and update_ttl while the adoption copies its table")]
struct Args {
    /// postgres, mysql, sqlite or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Rows in their table, half of them expired.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Live sessions created through their store, which the load tasks use.
    #[arg(long, default_value_t = 1_000)]
    known: u64,
    /// Tasks calling `load` (one more calls `update_ttl`).
    #[arg(long, default_value_t = 4)]
    tasks: usize,
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    mysql_url: String,
}

/// One call of the old version: when it started and ended, since the run's start.
struct Call {
    start: Duration,
    end: Duration,
    ok: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.tasks > 0 && args.known > 0,
        "--tasks and --known must be positive"
    );
    ensure!(
        args.rows >= 2 * args.known,
        "--rows must be at least twice --known"
    );
    let backends = Backend::parse_list(&args.backend)?;
    let args = Arc::new(args);
    for backend in backends {
        let scratch =
            Scratch::create(backend, "adopt", &args.postgres_url, &args.mysql_url).await?;
        // A panic is caught here too, so that the database is dropped whatever happens.
        let outcome = tokio::spawn(run(backend, scratch.url.clone(), args.clone())).await;
        scratch.destroy().await?;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e.context(format!("{}: the run failed", backend.display()))),
            Err(e) => bail!("{}: the run panicked: {e}", backend.display()),
        }
    }
    Ok(())
}

/// Their store on a pool of `connections` (sqlx 0.8, statement logging off; SQLite in WAL with
/// `synchronous = NORMAL`), its table created by its own `migrate()`.
async fn their_store(
    backend: Backend,
    url: &str,
    connections: u32,
) -> anyhow::Result<Arc<dyn SessionStorageBackend>> {
    use sqlx::ConnectOptions as _;
    fn pool<DB: sqlx::Database>(connections: u32) -> sqlx::pool::PoolOptions<DB> {
        sqlx::pool::PoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
    }
    Ok(match backend {
        Backend::Postgres => {
            let options =
                sqlx::postgres::PgConnectOptions::from_str(url)?.disable_statement_logging();
            let store = PostgresSessionStore::new(pool(connections).connect_with(options).await?);
            store.migrate().await?;
            Arc::new(store)
        }
        Backend::Mysql => {
            let options =
                sqlx::mysql::MySqlConnectOptions::from_str(url)?.disable_statement_logging();
            let store = MySqlSessionStore::new(pool(connections).connect_with(options).await?);
            store.migrate().await?;
            Arc::new(store)
        }
        Backend::Sqlite => {
            use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
            let options = SqliteConnectOptions::from_str(url)?
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .disable_statement_logging();
            let store = SqliteSessionStore::new(pool(connections).connect_with(options).await?);
            store.migrate().await?;
            Arc::new(store)
        }
    })
}

async fn run(backend: Backend, url: String, args: Arc<Args>) -> anyhow::Result<()> {
    let name = backend.display();
    let theirs = their_store(backend, &url, args.tasks as u32 + 1).await?;
    let mut options = ConnectOptions::new(&url);
    options
        .max_connections(2)
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|sqlite| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
    let db = Database::connect(options).await?;
    let version = scalar(
        &db,
        match backend {
            Backend::Postgres => "SELECT current_setting('server_version') AS v",
            Backend::Mysql => "SELECT VERSION() AS v",
            Backend::Sqlite => "SELECT sqlite_version() AS v",
        },
    )
    .await?;

    let filled = Instant::now();
    fill(&db, backend, args.rows - args.known).await?;
    let mut ids = Vec::new();
    for i in 0..args.known {
        let state = HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!(i))]);
        let id = SessionId::random();
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl: Duration::from_secs(86_400),
        };
        theirs.create(&id, record).await?;
        ids.push(id);
    }
    for sql in match backend {
        Backend::Postgres => &["VACUUM ANALYZE sessions", "CHECKPOINT"][..],
        Backend::Mysql => &["ANALYZE TABLE sessions"][..],
        Backend::Sqlite => &["ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"][..],
    } {
        db.execute_unprepared(sql)
            .await
            .with_context(|| sql.to_owned())?;
    }
    eprintln!(
        "{name}: {} rows in {:.1} s",
        args.rows,
        filled.elapsed().as_secs_f64()
    );

    // The old version's traffic: `tasks` loads and one update_ttl, in a loop until `stop`.
    let stop = Arc::new(AtomicBool::new(false));
    let ids = Arc::new(ids);
    let t0 = Instant::now();
    let tasks = args.tasks;
    let clients: Vec<_> = (0..=tasks)
        .map(|task| {
            let (theirs, stop, ids) = (theirs.clone(), stop.clone(), ids.clone());
            let writer = task == tasks;
            tokio::spawn(async move {
                let mut calls = Vec::new();
                let offset = task * ids.len() / (tasks + 1);
                for id in ids.iter().cycle().skip(offset) {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let start = t0.elapsed();
                    let ok = match writer {
                        true => theirs
                            .update_ttl(id, Duration::from_secs(86_400))
                            .await
                            .is_ok(),
                        false => matches!(theirs.load(id).await, Ok(Some(_))),
                    };
                    calls.push(Call {
                        start,
                        end: t0.elapsed(),
                        ok,
                    });
                }
                (writer, calls)
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    eprintln!("{name}: copying (--copy-only) under load");
    let adoption =
        AdoptPavexSessionSqlxTable::new(SessionsTable::default()).with_subject_key("user_id");
    let copy_start = t0.elapsed();
    let copied = adoption.clone().copy_only().run(&db).await;
    let copy_end = t0.elapsed();
    let copy = copy_end - copy_start;
    // A baseline as long as the copy, after it (the copy's reads no longer compete).
    tokio::time::sleep(copy.max(Duration::from_secs(3))).await;
    let baseline = (copy_end + Duration::from_millis(200), t0.elapsed());
    stop.store(true, Ordering::Relaxed);
    let (mut loads, mut writes) = (Vec::new(), Vec::new());
    for client in clients {
        let (writer, calls) = client.await?;
        match writer {
            true => writes.extend(calls),
            false => loads.extend(calls),
        }
    }
    let copied = copied.context("the copy failed")?;

    eprintln!("{name}: the final run (old version stopped)");
    let finish_start = Instant::now();
    let finished = adoption.run(&db).await.context("the final run failed")?;
    let finish = finish_start.elapsed();
    ensure!(
        finished.renamed,
        "the final run did not rename: {finished:?}"
    );
    let ours = SeaOrmSessionStore::new(db.clone()).checked().await?;
    let mut missing = 0;
    for id in ids.iter() {
        if ours.load(id).await?.is_none() {
            missing += 1;
        }
    }

    println!(
        "### {name} ({version}), {} rows (half expired), {} load tasks + 1 update_ttl\n",
        args.rows, args.tasks
    );
    println!(
        "| window | duration ms | load calls | failed | load p50 ms | load p99 ms | load max ms | update_ttl calls | failed | update_ttl p99 ms | update_ttl max ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut failed = 0;
    for (label, (from, to)) in [
        ("`--copy-only` copying", (copy_start, copy_end)),
        ("after the copy (baseline)", baseline),
    ] {
        let (l, w) = (stats(&loads, from, to), stats(&writes, from, to));
        failed += l.failed + w.failed;
        println!(
            "| {label} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            (to - from).as_secs_f64() * 1e3,
            l.calls,
            l.failed,
            ms(l.p50),
            ms(l.p99),
            ms(l.max),
            w.calls,
            w.failed,
            ms(w.p99),
            ms(w.max)
        );
    }
    println!(
        "\nThe copy: {} sessions copied, {} unreadable, {} subjects refused, in {:.1} s. The final \
         run (old version stopped): {} copied again, {} pruned, renamed, in {:.1} s. Known \
         sessions that did not load through this store afterwards: {missing} of {}.\n",
        copied.copied,
        copied.unreadable,
        copied.subject_refused,
        copy.as_secs_f64(),
        finished.copied,
        finished.pruned,
        finish.as_secs_f64(),
        ids.len()
    );
    ensure!(failed == 0, "{failed} call(s) of the old version failed");
    ensure!(
        missing == 0,
        "{missing} known session(s) did not load after the rename"
    );
    Ok(())
}

/// Fills their table with `n` sessions on the server, every other one expired, a `user_id` in
/// each state, ids as their store writes them (a UUID; hyphenated text on MySQL and SQLite).
async fn fill(db: &DatabaseConnection, backend: Backend, n: u64) -> anyhow::Result<()> {
    let mut from = 1;
    while from <= n {
        let to = (from + FILL_CHUNK - 1).min(n);
        let sql = match backend {
            Backend::Postgres => format!(
                "INSERT INTO sessions (id, deadline, state) \
                 SELECT gen_random_uuid(), now() + CASE WHEN i % 2 = 0 THEN interval '1 day' ELSE interval '-1 day' END, \
                 jsonb_build_object('user_id', i) FROM generate_series({from}, {to}) i"
            ),
            Backend::Mysql => format!(
                "INSERT INTO sessions (id, deadline, state) \
                 SELECT UUID(), UNIX_TIMESTAMP() + IF(seq % 2 = 0, 86400, -86400), \
                 JSON_OBJECT('user_id', seq) FROM seq_{from}_to_{to}"
            ),
            Backend::Sqlite => format!(
                "WITH RECURSIVE c(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM c WHERE x < {to}), \
                 h(x, v) AS (SELECT x, lower(hex(randomblob(16))) FROM c) \
                 INSERT INTO sessions (id, deadline, state) \
                 SELECT substr(v, 1, 8) || '-' || substr(v, 9, 4) || '-' || substr(v, 13, 4) || '-' \
                 || substr(v, 17, 4) || '-' || substr(v, 21, 12), \
                 unixepoch() + CASE WHEN x % 2 = 0 THEN 86400 ELSE -86400 END, \
                 json_object('user_id', x) FROM h"
            ),
        };
        db.execute_unprepared(&sql)
            .await
            .with_context(|| format!("filling rows {from} to {to}"))?;
        from = to + 1;
    }
    Ok(())
}

async fn scalar(db: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get::<String>("", "v")?)
}

struct Stats {
    calls: usize,
    failed: usize,
    p50: Option<Duration>,
    p99: Option<Duration>,
    max: Option<Duration>,
}

/// The calls that overlap `[from, to)`: a call blocked by the step counts, even if it ends after.
fn stats(calls: &[Call], from: Duration, to: Duration) -> Stats {
    let during: Vec<&Call> = calls
        .iter()
        .filter(|c| c.start < to && c.end > from)
        .collect();
    let mut latencies: Vec<Duration> = during
        .iter()
        .filter(|c| c.ok)
        .map(|c| c.end - c.start)
        .collect();
    latencies.sort();
    let pct = |q: f64| {
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len().max(1));
        latencies.get(rank - 1).copied()
    };
    Stats {
        calls: during.len(),
        failed: during.iter().filter(|c| !c.ok).count(),
        p50: pct(0.5),
        p99: pct(0.99),
        max: latencies.last().copied(),
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "–".to_owned(),
        |d| format!("{:.2}", d.as_secs_f64() * 1e3),
    )
}
