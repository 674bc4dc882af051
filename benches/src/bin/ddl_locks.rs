//! Locks while the schema changes: how `load` fares while each schema step runs on a table with
//! rows (1 000 000 by default), per backend.
//!
//! ```sh
//! cargo run --release --manifest-path benches/Cargo.toml --bin ddl_locks -- --backend all
//! ```
//!
//! Per backend, in a fresh database (dropped at the end): our table is created by
//! `SeaOrmSessionStore::migrate()`, filled by the server (`INSERT ... SELECT`) with `--rows`
//! live sessions less the `--known` ones created through the store (whose session ids the load
//! tasks know, the table keeping only their SHA-256), then `--tasks` tasks call `store.load` in
//! a loop, on a pool of their own, while the steps run one after the other from a second pool
//! (as from a newly deployed instance; `migrate()` through a second store on it):
//!
//! 1. `store.migrate()` runs on the up-to-date table (it only reads);
//! 2. `idx_sessions_subject` is dropped by hand (a set-up for the next step, not a migration;
//!    MySQL, which has no subject index, drops `idx_sessions_deadline`);
//! 3. `store.migrate()` recreates it (`CREATE INDEX CONCURRENTLY` on PostgreSQL);
//! 4. the future migration of `tests/future_migration.rs` (`AddLastSeenIp`) adds a nullable
//!    column, as it does: PostgreSQL a plain `ALTER TABLE` under `lock_timeout`, MariaDB
//!    `ALGORITHM=INSTANT`, SQLite `ADD COLUMN`;
//! 5. then its index: PostgreSQL `CREATE INDEX CONCURRENTLY` outside a transaction (the
//!    instance's turn held by an advisory lock, as there), MariaDB `ALGORITHM=INPLACE LOCK=NONE`,
//!    SQLite a plain `CREATE INDEX`.
//!
//! The statements of steps 4 and 5 are written here by hand: this measures, it is not the
//! library. Each load call that overlaps a step's window counts for that step (a call blocked by
//! the step counts, even if it ends after it). One Markdown table per backend goes to stdout,
//! progress to stderr. A failed load call (an error, or no session for a known id), a failed
//! step, or a step that rewrote the table (its storage changed: PostgreSQL's file node, InnoDB's
//! table id, SQLite's root page) makes the run exit non-zero, after the database is dropped.

#[path = "../support/mod.rs"]
mod support;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};
use support::{Backend, Scratch, connect};

/// Connections of the pool the steps run from, all opened before the load starts.
const DDL_CONNECTIONS: u32 = 3;

/// Rows the server inserts per statement while filling (progress is shown between them).
const FILL_CHUNK: u64 = 100_000;

#[derive(Parser)]
#[command(about = "p50/p99/max of load while each schema step runs, per backend")]
struct Args {
    /// postgres, mysql (MariaDB), sqlite or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Rows in the table while the steps run.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Concurrent tasks calling `load` in a loop.
    #[arg(long, default_value_t = 4)]
    tasks: usize,
    /// Sessions created through the store, which the load tasks read (at most `--rows`).
    #[arg(long, default_value_t = 1_000)]
    known: u64,
    /// Seconds of load measured before the first step.
    #[arg(long, default_value_t = 3.0)]
    baseline_secs: f64,
    /// Seconds of load, not measured, between two steps.
    #[arg(long, default_value_t = 1.0)]
    gap_secs: f64,
    /// A step still running after this many seconds fails the run.
    #[arg(long, default_value_t = 1_200)]
    step_timeout_secs: u64,
    /// PostgreSQL server; a fresh database is created beside this one.
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres_url: String,
    /// MariaDB/MySQL server; a fresh database is created beside this one.
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    mysql_url: String,
}

/// One `load` call, as offsets from the start of the load.
#[derive(Debug, Clone, Copy)]
struct Call {
    start: Duration,
    end: Duration,
    ok: bool,
}

/// A measured window: the baseline or a step.
struct Window {
    step: String,
    what: String,
    start: Duration,
    end: Duration,
    error: Option<String>,
    /// Whether the table's storage changed during the step (a rewrite); none for the baseline.
    rewritten: Option<bool>,
}

/// What one backend's run found.
struct Outcome {
    version: String,
    rows: u64,
    fill: Duration,
    windows: Vec<Window>,
    calls: Vec<Call>,
    first_load_error: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.tasks > 0, "--tasks must be positive");
    ensure!(args.rows > 0, "--rows must be positive");
    let backends = Backend::parse_list(&args.backend)?;
    let args = Arc::new(args);
    let mut failures = Vec::new();
    for backend in backends {
        let scratch = Scratch::create(backend, "ddl", &args.postgres_url, &args.mysql_url).await?;
        // A panic is caught here too, so that the database is dropped whatever happens.
        let run = tokio::spawn(run(backend, scratch.url.clone(), args.clone())).await;
        let dropped = scratch.destroy().await;
        let outcome = match run {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => return Err(e.context(format!("{}: the run failed", backend.name()))),
            Err(e) => bail!("{}: the run panicked: {e}", backend.name()),
        };
        dropped.with_context(|| format!("{}: dropping the database", backend.name()))?;
        failures.extend(print(backend, &args, &outcome));
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("FAILED: {failure}");
        }
        bail!("{} failure(s)", failures.len());
    }
    Ok(())
}

async fn run(backend: Backend, url: String, args: Arc<Args>) -> anyhow::Result<Outcome> {
    let name = backend.name();
    // The load tasks' pool, one connection each.
    let db = connect(&url, args.tasks as u32).await?;
    let store = SeaOrmSessionStore::new(db.clone());
    // The steps run from a pool of their own, as from a newly deployed instance while the running
    // ones serve: `migrate()` through a second store on it, and the hand-written DDL
    // (PostgreSQL's future migration holds its turn on one connection while it works on another).
    let ddl = connect(&url, DDL_CONNECTIONS).await?;
    let migrator = SeaOrmSessionStore::new(ddl.clone());
    migrator.migrate().await.context("creating the table")?;
    let version = scalar_text(
        &ddl,
        match backend {
            Backend::Postgres => "SELECT current_setting('server_version') AS v",
            Backend::Mysql => "SELECT VERSION() AS v",
            Backend::Sqlite => "SELECT sqlite_version() AS v",
        },
    )
    .await?;

    let fill_started = Instant::now();
    let known = args.known.clamp(1, args.rows);
    fill(&ddl, backend, args.rows - known).await?;
    let state = HashMap::from([(Cow::Borrowed("user"), serde_json::json!(1))]);
    let mut ids = Vec::new();
    for _ in 0..known {
        let id = SessionId::random();
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl: Duration::from_secs(86_400),
        };
        store.create(&id, record).await?;
        ids.push(id);
    }
    eprintln!("{name}: settling (statistics, checkpoint)");
    for sql in match backend {
        Backend::Postgres => &["VACUUM ANALYZE sessions", "CHECKPOINT"][..],
        Backend::Mysql => &["ANALYZE TABLE sessions"][..],
        Backend::Sqlite => &["ANALYZE", "PRAGMA wal_checkpoint(TRUNCATE)"][..],
    } {
        ddl.execute_unprepared(sql)
            .await
            .with_context(|| sql.to_string())?;
    }
    let fill = fill_started.elapsed();
    let rows = count(&ddl).await?;
    ensure!(
        rows == args.rows,
        "{rows} rows after the fill, not {}",
        args.rows
    );
    eprintln!("{name}: {rows} rows in {:.1} s", fill.as_secs_f64());
    // Every connection of the steps' pool open now, not during a step.
    let open = futures::future::try_join_all((0..DDL_CONNECTIONS).map(|_| ddl.begin())).await?;
    for transaction in open {
        transaction.commit().await?;
    }

    // The load, until `stop` (or, whatever happens, once every step could have timed out).
    let stop = Arc::new(AtomicBool::new(false));
    let cap = Duration::from_secs_f64(args.baseline_secs + 6.0 * args.gap_secs)
        + Duration::from_secs(6 * args.step_timeout_secs + 60);
    let ids = Arc::new(ids);
    let t0 = Instant::now();
    let tasks = args.tasks;
    let loaders: Vec<_> = (0..tasks)
        .map(|task| {
            let (store, stop, ids) = (store.clone(), stop.clone(), ids.clone());
            tokio::spawn(async move {
                let mut calls = Vec::new();
                let mut first_error = None;
                let offset = task * ids.len() / tasks;
                for id in ids.iter().cycle().skip(offset) {
                    if stop.load(Ordering::Relaxed) || t0.elapsed() > cap {
                        break;
                    }
                    let start = t0.elapsed();
                    let result = store.load(id).await;
                    let end = t0.elapsed();
                    let ok = matches!(result, Ok(Some(_)));
                    if !ok && first_error.is_none() {
                        first_error = Some(match result {
                            Err(e) => format!("{e:#}"),
                            _ => "no session for a known id".to_owned(),
                        });
                    }
                    calls.push(Call { start, end, ok });
                }
                (calls, first_error)
            })
        })
        .collect();

    let gap = Duration::from_secs_f64(args.gap_secs);
    // The load's connections open before the baseline.
    tokio::time::sleep(gap).await;
    let mut windows = Vec::new();
    let baseline_start = t0.elapsed();
    tokio::time::sleep(Duration::from_secs_f64(args.baseline_secs)).await;
    windows.push(Window {
        step: "baseline".to_owned(),
        what: "no DDL".to_owned(),
        start: baseline_start,
        end: t0.elapsed(),
        error: None,
        rewritten: None,
    });
    let steps = Steps {
        backend,
        migrator: &migrator,
        ddl: &ddl,
    };
    let timeout = Duration::from_secs(args.step_timeout_secs);
    // The future migration's turn (PostgreSQL): taken before its first step, released after its
    // last, as `AddLastSeenIp::up` does.
    let mut turn = None;
    for step in STEPS {
        tokio::time::sleep(gap).await;
        if step == Step::AddColumn && backend == Backend::Postgres {
            turn = Some(steps.take_turn().await?);
        }
        eprintln!("{name}: {}", step.label(backend));
        let storage = steps.storage().await?;
        let start = t0.elapsed();
        let result = tokio::time::timeout(timeout, steps.run(step)).await;
        let end = t0.elapsed();
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("still running after {timeout:?}")),
        };
        let result = match result {
            Ok(what) => steps.verify(step).await.map(|()| what),
            Err(e) => Err(e),
        };
        let (what, error) = match result {
            Ok(what) => (what, None),
            Err(e) => (steps.describe(step), Some(format!("{e:#}"))),
        };
        if let Some(error) = &error {
            eprintln!("{name}: {} failed: {error}", step.label(backend));
        }
        let rewritten = steps.storage().await? != storage;
        windows.push(Window {
            step: step.label(backend),
            what,
            start,
            end,
            error,
            rewritten: Some(rewritten),
        });
    }
    if let Some(turn) = turn {
        turn.commit().await?;
    }
    tokio::time::sleep(gap).await;
    stop.store(true, Ordering::Relaxed);
    let mut calls = Vec::new();
    let mut first_load_error = None;
    for loader in loaders {
        let (mine, error) = loader.await?;
        calls.extend(mine);
        first_load_error = first_load_error.or(error);
    }
    let rows_at_end = count(&ddl).await?;
    ensure!(
        rows_at_end == rows,
        "{rows_at_end} rows after the steps, not {rows}"
    );
    drop((store, migrator));
    db.close().await?;
    ddl.close().await?;
    Ok(Outcome {
        version,
        rows,
        fill,
        windows,
        calls,
        first_load_error,
    })
}

/// Fills `sessions` with `n` live rows on the server, in chunks: ids of 32 pseudo-random bytes,
/// a subject on every other row (signed-in sessions, so that the subject index has entries), the
/// state as the store writes it, `created_at` spread over the past.
async fn fill(db: &DatabaseConnection, backend: Backend, n: u64) -> anyhow::Result<()> {
    let mut from = 1;
    while from <= n {
        let to = (from + FILL_CHUNK - 1).min(n);
        let sql = match backend {
            Backend::Postgres => format!(
                "INSERT INTO sessions (id, deadline, state, subject, created_at, updated_at) \
                 SELECT substring(sha256(i::text::bytea) for 16), \
                 (EXTRACT(EPOCH FROM now()) * 1000)::bigint + 86400000 + i % 1000, \
                 convert_to('{{\"user\": 1}}', 'UTF8'), \
                 CASE WHEN i % 2 = 0 THEN convert_to('user-' || (i % 100000), 'UTF8') END, \
                 (EXTRACT(EPOCH FROM now()) * 1000)::bigint - i, \
                 (EXTRACT(EPOCH FROM now()) * 1000)::bigint - i \
                 FROM generate_series({from}, {to}) i"
            ),
            Backend::Mysql => format!(
                "INSERT INTO sessions (id, deadline, state, subject, created_at, updated_at) \
                 SELECT LEFT(UNHEX(SHA2(seq, 256)), 16), \
                 UNIX_TIMESTAMP() * 1000 + 86400000 + seq % 1000, \
                 CAST('{{\"user\": 1}}' AS BINARY), \
                 IF(seq % 2 = 0, CAST(CONCAT('user-', seq % 100000) AS BINARY), NULL), \
                 UNIX_TIMESTAMP() * 1000 - seq, UNIX_TIMESTAMP() * 1000 - seq \
                 FROM seq_{from}_to_{to}"
            ),
            Backend::Sqlite => format!(
                "WITH RECURSIVE c(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM c WHERE x < {to}) \
                 INSERT INTO sessions (id, deadline, state, subject, created_at, updated_at) \
                 SELECT randomblob(16), \
                 CAST(unixepoch() AS INTEGER) * 1000 + 86400000 + x % 1000, \
                 CAST('{{\"user\": 1}}' AS BLOB), \
                 CASE WHEN x % 2 = 0 THEN CAST('user-' || (x % 100000) AS BLOB) END, \
                 CAST(unixepoch() AS INTEGER) * 1000 - x, CAST(unixepoch() AS INTEGER) * 1000 - x \
                 FROM c"
            ),
        };
        db.execute_unprepared(&sql)
            .await
            .with_context(|| format!("filling rows {from} to {to}"))?;
        eprintln!("{}: filled {to} of {n} rows", backend.name());
        from = to + 1;
    }
    Ok(())
}

async fn scalar_text(db: &DatabaseConnection, sql: &str) -> anyhow::Result<String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get::<String>("", "v")?)
}

async fn scalar_i64(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
        .with_context(|| format!("no row from {sql}"))?;
    Ok(row.try_get::<i64>("", "n")?)
}

async fn count(db: &DatabaseConnection) -> anyhow::Result<u64> {
    Ok(scalar_i64(db, "SELECT COUNT(*) AS n FROM sessions").await? as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    MigrateUpToDate,
    DropSubjectIndex,
    MigrateRecreatesIndex,
    AddColumn,
    AddIndex,
}

const STEPS: [Step; 5] = [
    Step::MigrateUpToDate,
    Step::DropSubjectIndex,
    Step::MigrateRecreatesIndex,
    Step::AddColumn,
    Step::AddIndex,
];

/// The index steps 2 and 3 drop and recreate: the subject index, which MySQL does not have
/// (its subjects' sessions are a table of their own), where the deadline index.
fn repaired_index(backend: Backend) -> &'static str {
    match backend {
        Backend::Mysql => "idx_sessions_deadline",
        _ => "idx_sessions_subject",
    }
}
const LAST_SEEN_IP: &str = "last_seen_ip";
const LAST_SEEN_IP_INDEX: &str = "idx_sessions_last_seen_ip";

impl Step {
    fn label(self, backend: Backend) -> String {
        let index = repaired_index(backend);
        match self {
            Step::MigrateUpToDate => "1. migrate(), table up to date".to_owned(),
            Step::DropSubjectIndex => format!("2. (set-up) drop {index} by hand"),
            Step::MigrateRecreatesIndex => format!("3. migrate() recreates {index}"),
            Step::AddColumn => "4. future: add nullable column last_seen_ip".to_owned(),
            Step::AddIndex => "5. future: index on last_seen_ip".to_owned(),
        }
    }
}

/// The steps, on one backend.
struct Steps<'a> {
    backend: Backend,
    /// A store on the steps' pool, for `migrate()`.
    migrator: &'a SeaOrmSessionStore,
    ddl: &'a DatabaseConnection,
}

impl Steps<'_> {
    /// The statement a step sends (for the migrations: what the library or the test migration
    /// sends for it).
    fn describe(&self, step: Step) -> String {
        let sql = |s: &[&str]| s.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>();
        match (step, self.backend) {
            (Step::MigrateUpToDate, _) => "`store.migrate()` on the up-to-date table".to_owned(),
            (Step::MigrateRecreatesIndex, Backend::Postgres) => {
                "`store.migrate()`: `CREATE INDEX CONCURRENTLY IF NOT EXISTS ...`".to_owned()
            }
            (Step::MigrateRecreatesIndex, Backend::Mysql) => {
                "`store.migrate()`: `CREATE INDEX ...` (server's default algorithm)".to_owned()
            }
            (Step::MigrateRecreatesIndex, Backend::Sqlite) => {
                "`store.migrate()`: `CREATE INDEX IF NOT EXISTS ...`".to_owned()
            }
            (step, _) => sql(&self.statements(step)).join(" then "),
        }
    }

    /// The hand-written statements of a step (none for `migrate()`).
    fn statements(&self, step: Step) -> Vec<&'static str> {
        match (step, self.backend) {
            (Step::MigrateUpToDate | Step::MigrateRecreatesIndex, _) => vec![],
            (Step::DropSubjectIndex, Backend::Postgres) => {
                vec!["DROP INDEX CONCURRENTLY idx_sessions_subject"]
            }
            (Step::DropSubjectIndex, Backend::Mysql) => {
                vec!["DROP INDEX idx_sessions_deadline ON sessions"]
            }
            (Step::DropSubjectIndex, Backend::Sqlite) => vec!["DROP INDEX idx_sessions_subject"],
            (Step::AddColumn, Backend::Postgres) => vec![
                "BEGIN",
                "SET LOCAL lock_timeout = '5s'",
                "ALTER TABLE sessions ADD COLUMN last_seen_ip bytea NULL",
                "COMMIT",
            ],
            (Step::AddColumn, Backend::Mysql) => vec![
                "ALTER TABLE sessions ADD COLUMN last_seen_ip varbinary(16) NULL, ALGORITHM=INSTANT",
            ],
            (Step::AddColumn, Backend::Sqlite) => {
                vec!["ALTER TABLE sessions ADD COLUMN last_seen_ip varbinary_blob(16) NULL"]
            }
            (Step::AddIndex, Backend::Postgres) => vec![
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_sessions_last_seen_ip ON sessions (last_seen_ip)",
            ],
            (Step::AddIndex, Backend::Mysql) => vec![
                "CREATE INDEX idx_sessions_last_seen_ip ON sessions (last_seen_ip) ALGORITHM=INPLACE LOCK=NONE",
            ],
            (Step::AddIndex, Backend::Sqlite) => vec![
                "CREATE INDEX IF NOT EXISTS idx_sessions_last_seen_ip ON sessions (last_seen_ip)",
            ],
        }
    }

    /// Runs a step; returns what it ran, for the report.
    async fn run(&self, step: Step) -> anyhow::Result<String> {
        match step {
            Step::MigrateUpToDate | Step::MigrateRecreatesIndex => {
                self.migrator.migrate().await?;
            }
            Step::AddColumn if self.backend == Backend::Postgres => {
                let transaction = self.ddl.begin().await?;
                for sql in &self.statements(step)[1..3] {
                    transaction.execute_unprepared(sql).await?;
                }
                transaction.commit().await?;
            }
            _ => {
                for sql in self.statements(step) {
                    self.ddl
                        .execute_unprepared(sql)
                        .await
                        .with_context(|| sql.to_owned())?;
                }
            }
        }
        Ok(self.describe(step))
    }

    /// Checks that the step did what it is for.
    async fn verify(&self, step: Step) -> anyhow::Result<()> {
        match step {
            Step::MigrateUpToDate | Step::MigrateRecreatesIndex => {
                let index = repaired_index(self.backend);
                ensure!(
                    self.index_valid(index).await?,
                    "{index} is missing or invalid"
                )
            }
            Step::DropSubjectIndex => {
                let index = repaired_index(self.backend);
                ensure!(!self.index_valid(index).await?, "{index} is still there")
            }
            Step::AddColumn => {
                let sql = match self.backend {
                    Backend::Postgres => format!(
                        "SELECT COUNT(*) AS n FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = 'sessions' \
                         AND column_name = '{LAST_SEEN_IP}'"
                    ),
                    Backend::Mysql => format!(
                        "SELECT COUNT(*) AS n FROM information_schema.columns \
                         WHERE table_schema = DATABASE() AND table_name = 'sessions' \
                         AND column_name = '{LAST_SEEN_IP}'"
                    ),
                    Backend::Sqlite => format!(
                        "SELECT COUNT(*) AS n FROM pragma_table_info('sessions') \
                         WHERE name = '{LAST_SEEN_IP}'"
                    ),
                };
                ensure!(
                    scalar_i64(self.ddl, &sql).await? == 1,
                    "{LAST_SEEN_IP} is missing"
                );
            }
            Step::AddIndex => ensure!(
                self.index_valid(LAST_SEEN_IP_INDEX).await?,
                "{LAST_SEEN_IP_INDEX} is missing or invalid"
            ),
        }
        Ok(())
    }

    /// What identifies the table's storage, which a rewrite changes: PostgreSQL's file node,
    /// InnoDB's table id, SQLite's root page.
    async fn storage(&self) -> anyhow::Result<i64> {
        let sql = match self.backend {
            Backend::Postgres => "SELECT pg_relation_filenode('sessions')::bigint AS n",
            Backend::Mysql => {
                "SELECT CAST(TABLE_ID AS SIGNED) AS n FROM information_schema.INNODB_SYS_TABLES \
                 WHERE NAME = CONCAT(DATABASE(), '/sessions')"
            }
            Backend::Sqlite => {
                "SELECT rootpage AS n FROM sqlite_master WHERE type = 'table' AND name = 'sessions'"
            }
        };
        scalar_i64(self.ddl, sql).await
    }

    /// Whether the index exists (and, on PostgreSQL, is valid).
    async fn index_valid(&self, name: &str) -> anyhow::Result<bool> {
        let sql = match self.backend {
            Backend::Postgres => format!(
                "SELECT COUNT(*) AS n FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_namespace s ON s.oid = c.relnamespace \
                 WHERE c.relname = '{name}' AND s.nspname = current_schema() AND i.indisvalid"
            ),
            Backend::Mysql => format!(
                "SELECT COUNT(DISTINCT index_name) AS n FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() AND table_name = 'sessions' \
                 AND index_name = '{name}'"
            ),
            Backend::Sqlite => format!(
                "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'index' AND name = '{name}'"
            ),
        };
        Ok(scalar_i64(self.ddl, &sql).await? == 1)
    }

    /// PostgreSQL: the future migration's turn, an advisory lock held by an idle transaction
    /// (`AddLastSeenIp::take_turn`); alone here, it is granted at once.
    async fn take_turn(&self) -> anyhow::Result<sea_orm::DatabaseTransaction> {
        let turn = self.ddl.begin().await?;
        let row = turn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock(hashtext('pavex_session_sea_orm \
                 m20270115_000001_add_last_seen_ip sessions')) AS mine",
            ))
            .await?
            .context("no row from pg_try_advisory_xact_lock")?;
        ensure!(row.try_get::<bool>("", "mine")?, "the turn is taken");
        Ok(turn)
    }
}

/// Nearest-rank percentile of sorted `v`.
fn pct(v: &[Duration], q: f64) -> Option<Duration> {
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len().max(1));
    v.get(rank - 1).copied()
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.2}", d.as_secs_f64() * 1e3),
        None => "–".to_owned(),
    }
}

/// Prints the backend's table; returns its failures.
fn print(backend: Backend, args: &Args, outcome: &Outcome) -> Vec<String> {
    let name = backend.name();
    let mut failures = Vec::new();
    println!(
        "### {name} ({}), {} rows, {} load tasks\n",
        outcome.version, outcome.rows, args.tasks
    );
    println!(
        "| step | what runs | table rewritten | duration ms | load calls | failed | load p50 ms | load p99 ms | load max ms |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|");
    for window in &outcome.windows {
        let during: Vec<&Call> = outcome
            .calls
            .iter()
            .filter(|c| c.start < window.end && c.end > window.start)
            .collect();
        let failed = during.iter().filter(|c| !c.ok).count();
        let mut latencies: Vec<Duration> = during
            .iter()
            .filter(|c| c.ok)
            .map(|c| c.end - c.start)
            .collect();
        latencies.sort();
        let what = match &window.error {
            Some(error) => {
                failures.push(format!("{name}: {}: {error}", window.step));
                format!(
                    "**failed**: {}",
                    error.replace('|', "/").lines().next().unwrap_or_default()
                )
            }
            None => window.what.clone(),
        };
        let rewritten = match window.rewritten {
            None => "",
            Some(false) => "no",
            Some(true) => {
                failures.push(format!("{name}: {}: the table was rewritten", window.step));
                "**yes**"
            }
        };
        println!(
            "| {} | {what} | {rewritten} | {:.1} | {} | {failed} | {} | {} | {} |",
            window.step,
            (window.end - window.start).as_secs_f64() * 1e3,
            during.len(),
            ms(pct(&latencies, 0.5)),
            ms(pct(&latencies, 0.99)),
            ms(latencies.last().copied()),
        );
    }
    let failed = outcome.calls.iter().filter(|c| !c.ok).count();
    println!(
        "\nFill and settle: {:.1} s. Load calls in all: {}, failed: {failed}.\n",
        outcome.fill.as_secs_f64(),
        outcome.calls.len()
    );
    if failed > 0 {
        failures.push(format!(
            "{name}: {failed} load call(s) failed, the first: {}",
            outcome.first_load_error.as_deref().unwrap_or("?")
        ));
    }
    failures
}
