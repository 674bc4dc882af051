//! Command-line flags and the resolved benchmark configuration.

use crate::{pool::PoolSettings, workload::Op};
use clap::{Parser, ValueEnum};
use serde::Serialize;
use std::{num::NonZeroUsize, path::PathBuf, time::Duration};

/// Benchmarks `pavex_session_sea_orm` ("ours") against `pavex_session_sqlx` 0.2.10 ("theirs")
/// on PostgreSQL, MariaDB/MySQL and SQLite, in alternating rounds, in one process. A third side,
/// "raw", runs theirs' statements on sqlx 0.9 (ours' driver), to split the difference between
/// the store's share and the driver's.
///
/// The Markdown report goes to stdout, progress to stderr, and every number to a JSON file.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
pub struct Args {
    /// Which backend(s) to benchmark.
    #[arg(long, value_enum, default_value_t = BackendChoice::All)]
    pub backend: BackendChoice,

    /// `ab`: ours (A) against theirs (B). `aa`: theirs against itself (two fresh databases), to
    /// show the machine's noise band. `ac`: ours against raw (C: theirs' statements on sqlx 0.9).
    /// `cb`: raw against theirs. `both`: `ab` then `aa`. `all`: `ab`, `ac`, `cb`.
    #[arg(long, value_enum, default_value_t = Mode::Ab)]
    pub mode: Mode,

    /// Live rows prefilled in each side's table before measuring
    /// [default: 100000; 1000000 with --full].
    #[arg(long)]
    pub rows: Option<usize>,

    /// Expired rows prefilled in each side's table beside the live ones, as a table that is
    /// cleaned up now and then holds (an independent benchmark used 147 400 beside 100 000 live)
    /// [default: 147400; 1474000 with --full].
    #[arg(long)]
    pub expired: Option<usize>,

    /// Rows each `delete_expired` call deletes (MySQL and SQLite; pavex_session_sqlx's
    /// PostgreSQL store cannot delete a batch), at one task. The expired rows must last the
    /// whole run: (--warmup + --rounds) x --ops x this.
    #[arg(long, default_value_t = NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN))]
    pub expired_batch: NonZeroUsize,

    /// Calls of each operation per side per round [default: 500; 2000 with --full].
    #[arg(long)]
    pub ops: Option<usize>,

    /// Measured rounds per side and concurrency (ours, theirs, ours, theirs, ...)
    /// [default: 6; 7 with --full].
    #[arg(long)]
    pub rounds: Option<usize>,

    /// Unmeasured rounds per side before the measured ones, at each concurrency.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,

    /// Concurrent tasks issuing operations, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16])]
    pub concurrency: Vec<usize>,

    /// Bigger sizes: 1_000_000 prefilled rows, 2000 calls per operation and round, 7 rounds
    /// (explicit --rows/--ops/--rounds still win).
    #[arg(long)]
    pub full: bool,

    /// Pool: maximum connections (every side).
    #[arg(long, default_value_t = 16)]
    pub max_connections: u32,

    /// Pool: minimum idle connections kept open (every side).
    #[arg(long, default_value_t = 0)]
    pub min_connections: u32,

    /// Pool: acquire timeout in seconds (every side).
    #[arg(long, default_value_t = 30)]
    pub acquire_timeout_secs: u64,

    /// Pool: ping every connection before handing it out (every side). Off by default.
    #[arg(long)]
    pub test_before_acquire: bool,

    /// TTL of every session written, in seconds (long, so nothing expires during a run).
    #[arg(long, default_value_t = 86_400)]
    pub ttl_secs: u64,

    /// PostgreSQL server; each side gets a fresh database created beside this one.
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    pub postgres_url: String,

    /// MariaDB/MySQL server; each side gets a fresh database created beside this one.
    #[arg(
        long,
        env = "PAVEX_SESSION_TEST_MYSQL_URL",
        default_value = "mysql://root@127.0.0.1:3306/test"
    )]
    pub mysql_url: String,

    /// Where to write the JSON results.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results.json"))]
    pub json: PathBuf,

    /// Seed of the random choice of ids (the ids themselves are random v4 UUIDs).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Count the database servers' instructions per call instead of timing calls: the servers
    /// at --postgres-url and --mysql-url run under `valgrind --tool=callgrind`, PostgreSQL
    /// writing its profiles into DIR (`benches/instructions.sh` starts such servers and passes
    /// this); for SQLite the benchmark runs itself under callgrind and counts its own process.
    /// Sides: ours, theirs and raw; --ops calls per operation [default: 2000] after 100
    /// unmeasured, on tables of --rows live sessions [default: 8000] and no expired ones.
    #[arg(long, value_name = "DIR")]
    pub instructions: Option<PathBuf>,

    /// With --instructions: count the client's instructions instead of the servers', on every
    /// backend: the benchmark runs itself under callgrind and counts its own process (the store
    /// or theirs, the driver, the runtime; SQLite too, which runs inside it), against servers
    /// that do not run under valgrind (the default URLs).
    #[arg(long, requires = "instructions")]
    pub client: bool,
}

/// The `--backend` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    Postgres,
    Mysql,
    Sqlite,
    All,
}

pub use crate::support::Backend;

/// The `--mode` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Ours against theirs.
    Ab,
    /// Theirs against theirs.
    Aa,
    /// Ours against raw (theirs' statements on sqlx 0.9): the store's share, same driver.
    Ac,
    /// Raw against theirs: the driver's share (sqlx 0.9 vs 0.8), same statements.
    Cb,
    /// `Ab`, then `Aa`.
    Both,
    /// `Ab`, `Ac`, then `Cb`.
    All,
}

impl Mode {
    /// The letters of its two sides in the report: A ours, B theirs, C raw (in `aa`, both
    /// theirs, called A and B).
    pub fn letters(self) -> [&'static str; 2] {
        match self {
            Mode::Ac => ["A", "C"],
            Mode::Cb => ["C", "B"],
            _ => ["A", "B"],
        }
    }
}

/// Everything a run needs, with defaults resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub backends: Vec<Backend>,
    pub modes: Vec<Mode>,
    pub rows: usize,
    pub expired: usize,
    pub expired_batch: NonZeroUsize,
    pub ops: usize,
    pub rounds: usize,
    pub warmup: usize,
    pub concurrency: Vec<usize>,
    pub full: bool,
    pub pool: PoolSettings,
    #[serde(with = "crate::secs")]
    pub ttl: Duration,
    #[serde(skip)]
    pub postgres_url: String,
    #[serde(skip)]
    pub mysql_url: String,
    #[serde(skip)]
    pub json: PathBuf,
    pub seed: u64,
    /// `--instructions`: the directory of the callgrind profiles (and MariaDB's pid file).
    #[serde(skip)]
    pub instructions: Option<PathBuf>,
    /// `--client`: count the benchmark's own process on every backend.
    pub client: bool,
}

impl Config {
    /// Resolves the defaults that depend on `--full` and checks the sizes.
    pub fn from_args(args: Args) -> anyhow::Result<Self> {
        let backends = match args.backend {
            BackendChoice::Postgres => vec![Backend::Postgres],
            BackendChoice::Mysql => vec![Backend::Mysql],
            BackendChoice::Sqlite => vec![Backend::Sqlite],
            BackendChoice::All => vec![Backend::Postgres, Backend::Mysql, Backend::Sqlite],
        };
        let modes = match args.mode {
            Mode::Both => vec![Mode::Ab, Mode::Aa],
            Mode::All => vec![Mode::Ab, Mode::Ac, Mode::Cb],
            one => vec![one],
        };
        let counting = args.instructions.is_some();
        let rows = args.rows.unwrap_or(match (counting, args.full) {
            (true, _) => 8_000,
            (false, true) => 1_000_000,
            (false, false) => 100_000,
        });
        let expired = args.expired.unwrap_or(match (counting, args.full) {
            (true, _) => 0,
            (false, true) => 1_474_000,
            (false, false) => 147_400,
        });
        let ops = args
            .ops
            .unwrap_or(if args.full || counting { 2_000 } else { 500 });
        let rounds = args.rounds.unwrap_or(if args.full { 7 } else { 6 });
        anyhow::ensure!(ops > 0, "--ops must be at least 1");
        anyhow::ensure!(rounds > 0, "--rounds must be at least 1");
        anyhow::ensure!(
            args.concurrency.iter().all(|&c| c > 0),
            "--concurrency values must be at least 1"
        );
        // Each round samples `ops` distinct live ids and removes 2 * ops (change_id, delete)
        // while adding 2 * ops (create, change_id): the table keeps `rows` live rows, but it
        // must hold enough ids to take from.
        anyhow::ensure!(
            rows >= 3 * ops,
            "--rows ({rows}) must be at least 3 x --ops ({ops})"
        );
        // `delete_expired` deletes a batch per call in every round, warm-up included, where a
        // backend runs it; the expired rows must not run out before the last call.
        let single = args.concurrency.iter().filter(|&&c| c == 1).count();
        let batches = (args.warmup + rounds) * single * ops;
        let needed = batches.saturating_mul(args.expired_batch.get());
        anyhow::ensure!(
            counting
                || backends.iter().all(|b| !Op::DeleteExpired.runs_on(*b, 1))
                || expired >= needed,
            "--expired ({expired}) must be at least (--warmup + --rounds) x --ops x \
             --expired-batch ({needed}): delete_expired runs at one task"
        );
        Ok(Self {
            backends,
            modes,
            rows,
            expired,
            expired_batch: args.expired_batch,
            ops,
            rounds,
            warmup: args.warmup,
            concurrency: args.concurrency,
            full: args.full,
            pool: PoolSettings {
                max_connections: args.max_connections,
                min_connections: args.min_connections,
                acquire_timeout: Duration::from_secs(args.acquire_timeout_secs),
                idle_timeout: Duration::from_secs(600),
                max_lifetime: Duration::from_secs(1800),
                test_before_acquire: args.test_before_acquire,
                statement_logging: false,
            },
            ttl: Duration::from_secs(args.ttl_secs),
            postgres_url: args.postgres_url,
            mysql_url: args.mysql_url,
            json: args.json,
            seed: args.seed,
            instructions: args.instructions,
            client: args.client,
        })
    }
}
