//! The database server's instructions per call, counted under callgrind: a measure that does
//! not move with the machine's load, where timings on a shared 2-core machine move by 10%.
//!
//! The servers run under `valgrind --tool=callgrind` (`benches/instructions.sh` starts them).
//! Each side gets a fresh database and a pool of one connection:
//!
//! - MariaDB (one process, a thread per connection, its pid in `mariadb.pid` beside the
//!   profiles): its counters are zeroed before the calls and dumped after them
//!   (`callgrind_control -z` / `-d`); the count is every server thread's, InnoDB's background
//!   threads included, with the purge of the calls' old row versions waited for before the
//!   dump (and the earlier operation's before the zero).
//! - PostgreSQL (a process per connection): callgrind writes a backend's total when it exits. Two
//!   connections run the same unmeasured calls, then the second runs the measured ones too;
//!   the difference of their totals is the calls' cost, connection set-up and teardown
//!   cancelled out.
//! - SQLite (no server: the database runs in the benchmark's process): the benchmark runs
//!   itself again under callgrind for it, and counts every instruction of its own process
//!   during the calls (the store or theirs, the driver, SQLite), zeroed on entering
//!   [`pss_callgrind_zero`] and dumped on entering [`pss_callgrind_dump`].
//! - The client (`--client`): the same self-count on every backend, against servers that do not
//!   run under valgrind: what a call costs the application's process (the store or theirs, the
//!   driver, the runtime), the other half of the per-call budget.

use crate::{
    args::{Backend, Config},
    ids::{LiveIds, fresh_ids},
    payload::Payload,
    pool::PoolSettings,
    side::{Kind, Side},
    support::Scratch,
    workload::{Op, run_calls},
};
use anyhow::{Context as _, bail};
use pavex_session::store::SessionRecordRef;
use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// Set in the environment of the benchmark's copy that runs under callgrind and counts its own
/// process: on SQLite, or with `--client` on every backend.
const COUNTING_ITSELF: &str = "PSS_BENCH_COUNTING_ITSELF";

/// Unmeasured calls of each operation before the measured ones (statements prepared, caches
/// warm).
const WARM_UP: usize = 100;

/// The sides counted: label, store, database tag.
const SIDES: [(&str, Kind, &str); 3] = [
    ("ours", Kind::Ours, "ours"),
    ("theirs", Kind::Theirs, "theirs"),
    ("raw", Kind::Raw, "raw"),
];

/// Counts every operation on every side of each server backend; returns the Markdown report.
pub async fn run(cfg: &Config, profiles: &Path) -> anyhow::Result<String> {
    let pool = PoolSettings {
        max_connections: 1,
        min_connections: 0,
        ..cfg.pool.clone()
    };
    anyhow::ensure!(
        cfg.expired == 0,
        "--instructions counts on tables of live sessions only: leave --expired at 0"
    );
    let payload = Payload::new(cfg.ttl);
    let mut report = format!(
        "# Instructions per call\n\n- {} live sessions per table (created through each \
         side's store), {} calls of each operation after {WARM_UP} unmeasured, one connection\n- \
         sides: ours (pavex_session_sea_orm), theirs (pavex_session_sqlx 0.2.10, sqlx 0.8), raw \
         (theirs' statements on sqlx 0.9)\n",
        cfg.rows, cfg.ops
    );
    if std::env::var_os(COUNTING_ITSELF).is_some() {
        let mut tables = String::new();
        for &backend in &cfg.backends {
            if cfg.client || backend == Backend::Sqlite {
                tables.push_str(&count_backend(backend, cfg, &pool, &payload, profiles).await?);
            }
        }
        return Ok(tables);
    }
    if cfg.client {
        report.push_str(
            "- counted: the benchmark's own process (client), not the database servers\n",
        );
        report.push_str(&itself_under_callgrind(profiles)?);
        return Ok(report);
    }
    for &backend in &cfg.backends {
        let table = match backend {
            Backend::Sqlite => itself_under_callgrind(profiles)?,
            _ => count_backend(backend, cfg, &pool, &payload, profiles).await?,
        };
        report.push_str(&table);
    }
    Ok(report)
}

/// Counts every side on `backend`, each on a fresh database; returns the backend's table.
async fn count_backend(
    backend: Backend,
    cfg: &Config,
    pool: &PoolSettings,
    payload: &Payload,
    profiles: &Path,
) -> anyhow::Result<String> {
    let mut counts = Vec::with_capacity(SIDES.len());
    for (label, kind, tag) in SIDES {
        let scratch = Scratch::create(backend, tag, &cfg.postgres_url, &cfg.mysql_url).await?;
        let counted = count_side(
            backend,
            label,
            kind,
            &scratch.url,
            pool,
            payload,
            cfg,
            profiles,
        )
        .await;
        scratch.destroy().await?;
        counts.push(counted?);
    }
    let mut table = String::new();
    write_table(&mut table, backend, &counts)?;
    if backend == Backend::Sqlite && !cfg.client {
        table.push_str(
            "\nSQLite has no server: its counts are every instruction of the benchmark's \
             process during the calls (the store or theirs, the driver, SQLite).\n",
        );
    }
    Ok(table)
}

/// Runs this benchmark again under callgrind to count its own process (there
/// [`count_backend`]): SQLite, or with `--client` every backend; returns its tables.
fn itself_under_callgrind(profiles: &Path) -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("locating the benchmark's executable")?;
    let output = Command::new("valgrind")
        .args(["--tool=callgrind", "-q"])
        .arg(format!(
            "--callgrind-out-file={}",
            profiles.join("itself.%p").display()
        ))
        .arg("--zero-before=pss_callgrind_zero")
        .arg("--dump-before=pss_callgrind_dump")
        .arg(exe)
        .args(std::env::args_os().skip(1))
        .env(COUNTING_ITSELF, "1")
        .stderr(Stdio::inherit())
        .output()
        .context("running the benchmark under valgrind (Debian's valgrind)")?;
    if !output.status.success() {
        bail!("counting under callgrind failed: {}", output.status);
    }
    String::from_utf8(output.stdout).context("the count's report is not UTF-8")
}

/// Callgrind zeroes its counters when the process enters this function (`--zero-before`).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pss_callgrind_zero() {
    std::hint::black_box(());
}

/// Callgrind writes a dump of its counters when the process enters this function
/// (`--dump-before`), and zeroes them.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn pss_callgrind_dump() {
    std::hint::black_box(());
}

/// Instructions per call of each operation of [`Op::ALL`] that runs on `backend`, on one side.
/// For `delete_expired` the side's store first creates the sessions it will delete, with a TTL
/// of one second, and the count waits until they have expired.
#[allow(clippy::too_many_arguments)]
async fn count_side(
    backend: Backend,
    label: &str,
    kind: Kind,
    url: &str,
    pool: &PoolSettings,
    payload: &Payload,
    cfg: &Config,
    profiles: &Path,
) -> anyhow::Result<Vec<(Op, f64)>> {
    let side = Side::connect(label, kind, backend, url, pool).await?;
    let mut live = LiveIds::new(Vec::new(), cfg.seed);
    run_calls(&side, Op::Create, &mut live, payload, cfg.rows).await?;
    if Op::DeleteExpired.runs_on(backend, 1) {
        let expired = (WARM_UP + cfg.ops) * cfg.expired_batch.get();
        create_expiring(&side, payload, expired).await?;
        live = live.with_expired(expired, cfg.expired_batch);
    }
    let ops: Vec<Op> = Op::ALL
        .into_iter()
        .filter(|op| op.runs_on(backend, 1))
        .collect();
    let mut per_call = Vec::with_capacity(ops.len());
    let counted = match backend {
        _ if cfg.client => Some(Counted::Itself(std::process::id().to_string())),
        Backend::Sqlite => Some(Counted::Itself(std::process::id().to_string())),
        Backend::Mysql => Some(Counted::Mariadb(mariadb_pid(profiles)?)),
        Backend::Postgres => None,
    };
    match counted {
        Some(counted) => {
            counted.settle(&side).await?;
            if let Counted::Mariadb(_) = counted {
                // The prefill's dirty pages are written out in the background, about once a
                // second.
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
            for &op in &ops {
                run_calls(&side, op, &mut live, payload, WARM_UP).await?;
                counted.settle(&side).await?;
                counted.zero()?;
                run_calls(&side, op, &mut live, payload, cfg.ops).await?;
                counted.settle(&side).await?;
                let total = counted.dump(profiles)?;
                let count = total as f64 / cfg.ops as f64;
                per_call.push((op, count));
                eprintln!("[{}] {label} {}: {count:.0}", backend.name(), op.name());
            }
            side.close().await;
        }
        None => {
            close(&side).await;
            for &op in &ops {
                let short =
                    postgres_connection(&side, url, pool, op, &mut live, payload, 0, profiles)
                        .await?;
                let long = postgres_connection(
                    &side, url, pool, op, &mut live, payload, cfg.ops, profiles,
                )
                .await?;
                let calls = long
                    .checked_sub(short)
                    .context("the longer connection counted fewer instructions")?;
                let count = calls as f64 / cfg.ops as f64;
                per_call.push((op, count));
                eprintln!("[postgres] {label} {}: {count:.0}", op.name());
            }
        }
    }
    Ok(per_call)
}

/// The instructions one PostgreSQL connection of `side`'s kind runs in all: set-up, the
/// store's migration check, [`WARM_UP`] calls of `op`, then `measured` more, teardown.
#[allow(clippy::too_many_arguments)]
async fn postgres_connection(
    like: &Side,
    url: &str,
    pool: &PoolSettings,
    op: Op,
    live: &mut LiveIds,
    payload: &Payload,
    measured: usize,
    profiles: &Path,
) -> anyhow::Result<u64> {
    let side = Side::connect(&like.label, like.kind, Backend::Postgres, url, pool).await?;
    let pid = side
        .scalar("SELECT CAST(pg_backend_pid() AS BIGINT)")
        .await?;
    run_calls(&side, op, live, payload, WARM_UP + measured).await?;
    close(&side).await;
    let profile = profiles.join(format!("pg.{pid}"));
    let total = wait_for_totals(&profile)?;
    eprintln!(
        "[postgres] {} {}, {} calls: {total} in {}",
        like.label,
        op.name(),
        WARM_UP + measured,
        profile.display()
    );
    Ok(total)
}

/// Creates `n` sessions through `side`'s store that expire a second later, and waits until
/// they have (theirs keeps whole seconds on MySQL and SQLite, so two seconds and a half).
async fn create_expiring(side: &Side, payload: &Payload, n: usize) -> anyhow::Result<()> {
    for id in fresh_ids(n) {
        let record = SessionRecordRef {
            ttl: Duration::from_secs(1),
            ..payload.record(false)
        };
        side.store
            .create(&id, record)
            .await
            .with_context(|| format!("creating an expiring session on {}", side.label))?;
    }
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    Ok(())
}

/// Closes `side`'s pool once its connection is back in it: sqlx 0.8 returns a connection to
/// its pool on a task of its own, and a pool closed before that leaves the connection open.
async fn close(side: &Side) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    side.close().await;
}

/// Waits for a profile that callgrind writes when the process exits, and reads its total.
fn wait_for_totals(profile: &Path) -> anyhow::Result<u64> {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(profile)
            && let Some(total) = totals(&text)
        {
            return Ok(total);
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "no callgrind totals in {} after 60 s: is the server running under callgrind, \
                 writing its profiles there?",
                profile.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `totals:` line of a callgrind profile.
fn totals(profile: &str) -> Option<u64> {
    profile
        .lines()
        .find_map(|line| line.strip_prefix("totals:"))
        .and_then(|n| n.trim().parse().ok())
}

/// Waits until InnoDB has purged every old row version: the calls' own clean-up is counted with
/// them, and none of an earlier operation's.
async fn purge(side: &Side) -> anyhow::Result<()> {
    side.execute("SET GLOBAL innodb_max_purge_lag_wait = 0")
        .await
}

/// The MariaDB server's process id, from the pid file it writes into `profiles`
/// (`--pid-file`, as `benches/instructions.sh` starts it).
fn mariadb_pid(profiles: &Path) -> anyhow::Result<String> {
    let path = profiles.join("mariadb.pid");
    let pid = std::fs::read_to_string(&path)
        .with_context(|| format!("reading MariaDB's pid file {}", path.display()))?;
    Ok(pid.trim().to_owned())
}

/// A process under callgrind whose counters are zeroed before the calls and dumped after them.
enum Counted {
    /// The MariaDB server (its pid), through `callgrind_control`; every thread's count, InnoDB's
    /// background threads included.
    Mariadb(String),
    /// This process (its pid), run under callgrind for SQLite ([`sqlite_under_callgrind`]),
    /// through the marker functions.
    Itself(String),
}

impl Counted {
    /// Waits until the server has no work of earlier calls left: on MariaDB, the purge of old
    /// row versions, so that the calls' own clean-up is counted with them and none of an
    /// earlier operation's.
    async fn settle(&self, side: &Side) -> anyhow::Result<()> {
        match self {
            Counted::Mariadb(_) => purge(side).await,
            Counted::Itself(_) => Ok(()),
        }
    }

    fn zero(&self) -> anyhow::Result<()> {
        match self {
            Counted::Mariadb(pid) => callgrind_control(&["-z", pid]).map(drop),
            Counted::Itself(_) => {
                pss_callgrind_zero();
                Ok(())
            }
        }
    }

    /// The instructions counted since [`zero`](Self::zero).
    fn dump(&self, profiles: &Path) -> anyhow::Result<u64> {
        match self {
            Counted::Mariadb(pid) => {
                dumped_total(pid, profiles, || callgrind_control(&["-d", pid]).map(drop))
            }
            Counted::Itself(pid) => dumped_total(pid, profiles, || {
                pss_callgrind_dump();
                Ok(())
            }),
        }
    }
}

/// Has callgrind write a dump of process `pid` (`dump`) and reads the new dump's total.
fn dumped_total(
    pid: &str,
    profiles: &Path,
    dump: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<u64> {
    let before = dumps(pid, profiles)?;
    dump()?;
    let newest = dumps(pid, profiles)?
        .into_iter()
        .filter(|dump| !before.contains(dump))
        .max()
        .with_context(|| {
            format!(
                "callgrind wrote no dump of process {pid} into {}",
                profiles.display()
            )
        })?;
    wait_for_totals(&newest)
}

/// The dumps callgrind has written for process `pid` into `profiles` (`<prefix>.<pid>.<n>`).
fn dumps(pid: &str, profiles: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let infix = format!(".{pid}.");
    let mut found = Vec::new();
    for entry in
        std::fs::read_dir(profiles).with_context(|| format!("listing {}", profiles.display()))?
    {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.contains(&infix))
        {
            found.push(path);
        }
    }
    Ok(found)
}

/// Runs `callgrind_control` with `args`; returns what it printed.
fn callgrind_control(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("callgrind_control")
        .args(args)
        .output()
        .context("running callgrind_control (Debian's valgrind)")?;
    if !output.status.success() {
        bail!(
            "callgrind_control {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// One table per backend: instructions per call of each side, and ours against the others.
fn write_table(
    report: &mut String,
    backend: Backend,
    counts: &[Vec<(Op, f64)>],
) -> anyhow::Result<()> {
    let [ours, theirs, raw] = counts else {
        bail!("expected three sides");
    };
    writeln!(
        report,
        "\n## {}\n\n| op | ours | theirs | raw | ours / theirs | ours / raw |\n|---|---:|---:|---:|---:|---:|",
        backend.display()
    )?;
    for (((op, a), (_, b)), (_, c)) in ours.iter().zip(theirs).zip(raw) {
        let (a, b, c) = (*a, *b, *c);
        writeln!(
            report,
            "| {} | {a:.0} | {b:.0} | {c:.0} | {:.2} | {:.2} |",
            op.name(),
            a / b,
            a / c
        )?;
    }
    Ok(())
}
