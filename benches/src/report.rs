//! The Markdown report (stdout) and the JSON file.

use crate::{
    args::{Config, Mode},
    pool::sqlite,
    summary::{BackendRun, Table},
};
use serde::Serialize;
use std::fmt::Write as _;

/// Everything written to the JSON file.
#[derive(Debug, Serialize)]
pub struct Results<'a> {
    pub config: &'a Config,
    pub sqlite_settings: String,
    pub total_secs: f64,
    pub runs: &'a [BackendRun],
}

/// Renders the whole report as Markdown.
pub fn markdown(cfg: &Config, runs: &[BackendRun], total_secs: f64) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, cfg, runs, total_secs);
    out
}

fn write_report(
    out: &mut String,
    cfg: &Config,
    runs: &[BackendRun],
    total_secs: f64,
) -> std::fmt::Result {
    writeln!(
        out,
        "# pavex_session_sea_orm vs pavex_session_sqlx 0.2.10\n"
    )?;
    writeln!(
        out,
        "- rows prefilled per table: {} live + {} expired, in random order; calls per operation, \
         side and round: {} (`delete_expired`: a batch of {} per call, MySQL and SQLite, one task); measured rounds per side: {} (+{} warm-up), the side going first \
         alternating; concurrency: {:?} task(s); TTL {} s; {} CPU core(s)",
        cfg.rows,
        cfg.expired,
        cfg.ops,
        cfg.expired_batch,
        cfg.rounds,
        cfg.warmup,
        cfg.concurrency,
        cfg.ttl.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    )?;
    writeln!(out, "- pool (every side): {}", cfg.pool.describe())?;
    writeln!(out, "- SQLite (every side): {}", sqlite::describe())?;
    writeln!(
        out,
        "- sides: A = ours, B = theirs, C = raw (theirs' statements on sqlx 0.9, ours' driver: \
         A/C is the store's share, C/B the driver's)"
    )?;
    writeln!(
        out,
        "- ratio = first side's ops/s / second side's ops/s within one round pair, median over \
         rounds (> 1: the first side faster); \
         p50/p99 over every call of every measured round; x floor = p50 / the same side's \
         `SELECT 1` p50 at the same concurrency"
    )?;
    writeln!(out, "- total time: {total_secs:.0} s\n")?;

    for run in runs {
        let mode = match run.mode {
            Mode::Aa => "A/A (noise band)",
            Mode::Ac => "A/C (the store's share: same driver)",
            Mode::Cb => "C/B (the driver's share: same statements)",
            _ => "A/B",
        };
        let [x, y] = run.mode.letters();
        writeln!(
            out,
            "## {} ({}), {mode}: {x} = {}, {y} = {}\n",
            run.backend.name(),
            run.server_version,
            run.sides[0].label,
            run.sides[1].label
        )?;
        writeln!(
            out,
            "{x} = {}: {}; {y} = {}: {}. Prefill of both tables: {:.1} s, then analyze + flush: \
             {:.1} s; table + indexes after it: {} {:.1} MiB, {} {:.1} MiB ({:.1} / {:.1} MiB per \
             100 000 sessions); rows at the end: {} / {}; run time {:.0} s.\n",
            run.sides[0].label,
            run.sides[0].driver,
            run.sides[1].label,
            run.sides[1].driver,
            run.prefill_secs,
            run.settle_secs,
            run.sides[0].label,
            mib(run.table_bytes[0]),
            run.sides[1].label,
            mib(run.table_bytes[1]),
            mib(run.table_bytes[0]) * 100_000.0 / (run.rows + run.expired) as f64,
            mib(run.table_bytes[1]) * 100_000.0 / (run.rows + run.expired) as f64,
            run.rows_at_end[0],
            run.rows_at_end[1],
            run.elapsed_secs
        )?;
        for table in &run.tables {
            write_table(out, run, table)?;
        }
    }

    writeln!(
        out,
        "## Geometric mean of the ratios (first side / second side) over the 7 session operations\n"
    )?;
    write!(out, "| backend | mode |")?;
    for c in &cfg.concurrency {
        write!(out, " {c} task(s) |")?;
    }
    writeln!(out)?;
    write!(out, "|---|---|")?;
    for _ in &cfg.concurrency {
        write!(out, "---:|")?;
    }
    writeln!(out)?;
    for run in runs {
        write!(
            out,
            "| {} | {} vs {} |",
            run.backend.name(),
            run.sides[0].label,
            run.sides[1].label
        )?;
        for table in &run.tables {
            write!(out, " {:.3} |", table.geomean_ratio)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

fn write_table(out: &mut String, run: &BackendRun, table: &Table) -> std::fmt::Result {
    let [a, b] = [&run.sides[0].label, &run.sides[1].label];
    writeln!(
        out,
        "### {}, {} task(s): geomean {a}/{b} = {:.3}\n",
        run.backend.name(),
        table.concurrency,
        table.geomean_ratio
    )?;
    writeln!(
        out,
        "| op | {a} ops/s | {b} ops/s | {a}/{b} | {a} p50 µs | {a} p99 µs | {b} p50 µs | \
         {b} p99 µs | {a} x floor | {b} x floor |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in &table.rows {
        let [x, y] = &row.sides;
        writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            row.name,
            x.ops_per_sec_median,
            y.ops_per_sec_median,
            row.ratio_median,
            x.p50_us,
            x.p99_us,
            y.p50_us,
            y.p99_us,
            x.p50_over_floor,
            y.p50_over_floor,
        )?;
    }
    writeln!(out)?;
    write_cpu_table(out, [a, b], table)
}

/// CPU per call: what each side's calls cost the client and the server (see `cpu.rs`), and on
/// MariaDB/MySQL the buffer pool's page reads per call; medians over rounds.
fn write_cpu_table(out: &mut String, [a, b]: [&String; 2], table: &Table) -> std::fmt::Result {
    let cell =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    writeln!(
        out,
        "CPU per call, µs (client = this process, server = the database's processes), and \
         buffer-pool page reads per call:\n"
    )?;
    writeln!(
        out,
        "| op | {a} client | {b} client | {a} server | {b} server | {a} client+server | \
         {b} client+server | {a} page reads | {b} page reads |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|")?;
    for row in &table.rows {
        let [x, y] = &row.sides;
        let total = |s: &crate::summary::SideStats| s.server_cpu_us.map(|v| v + s.client_cpu_us);
        writeln!(
            out,
            "| {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} |",
            row.name,
            x.client_cpu_us,
            y.client_cpu_us,
            cell(x.server_cpu_us, 1),
            cell(y.server_cpu_us, 1),
            cell(total(x), 1),
            cell(total(y), 1),
            cell(x.page_reads, 3),
            cell(y.page_reads, 3),
        )?;
    }
    writeln!(out)
}

/// Bytes as MiB.
fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
