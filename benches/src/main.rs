//! Benchmark of `pavex_session_sea_orm` against `pavex_session_sqlx` 0.2.10.
//!
//! See `benches/README.md` for the command, the flags and what is measured.

mod args;
mod bench;
mod cpu;
mod ids;
mod instructions;
mod payload;
mod pool;
mod prefill;
mod raw;
mod report;
mod secs;
mod side;
mod stats;
mod summary;
mod support;
mod workload;

use anyhow::Context as _;
use clap::Parser as _;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let cfg = args::Config::from_args(args::Args::parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(cfg))
}

async fn run(cfg: args::Config) -> anyhow::Result<()> {
    if let Some(dir) = &cfg.instructions {
        print!("{}", instructions::run(&cfg, dir).await?);
        return Ok(());
    }
    let started = Instant::now();
    let mut runs = Vec::new();
    for &backend in &cfg.backends {
        for &mode in &cfg.modes {
            eprintln!("[{}] {mode:?}: starting", backend.name());
            runs.push(bench::run_backend(backend, mode, &cfg).await?);
        }
    }
    let total_secs = started.elapsed().as_secs_f64();
    print!("{}", report::markdown(&cfg, &runs, total_secs));
    let results = report::Results {
        config: &cfg,
        sqlite_settings: pool::sqlite::describe(),
        total_secs,
        runs: &runs,
    };
    let json = serde_json::to_string_pretty(&results).context("serializing the results")?;
    std::fs::write(&cfg.json, json).with_context(|| format!("writing {}", cfg.json.display()))?;
    eprintln!("wrote {}", cfg.json.display());
    Ok(())
}
