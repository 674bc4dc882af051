//! One benchmark run: a backend, a mode, two scratch databases, alternating rounds.

use crate::{
    args::{Backend, Config, Mode},
    ids::{LiveIds, fresh_ids},
    payload::Payload,
    prefill::{prefill, settle},
    side::{Kind, Side},
    summary::{BackendRun, Round, SideInfo, summarize},
    support::Scratch,
    workload::run_round,
};
use anyhow::{anyhow, bail};
use futures::FutureExt as _;
use std::{panic::AssertUnwindSafe, sync::Arc, time::Instant};

/// The raw side's label: theirs' statements, on sqlx 0.9.
const RAW: &str = "raw (their SQL, sqlx 0.9)";

/// The two sides of a mode: labels, store kinds and database tags.
fn sides_of(mode: Mode) -> anyhow::Result<[(&'static str, Kind, &'static str); 2]> {
    match mode {
        Mode::Ab => Ok([
            ("ours", Kind::Ours, "ours"),
            ("theirs", Kind::Theirs, "theirs"),
        ]),
        Mode::Aa => Ok([
            ("theirs A", Kind::Theirs, "theirs_a"),
            ("theirs B", Kind::Theirs, "theirs_b"),
        ]),
        Mode::Ac => Ok([("ours", Kind::Ours, "ours"), (RAW, Kind::Raw, "raw")]),
        Mode::Cb => Ok([(RAW, Kind::Raw, "raw"), ("theirs", Kind::Theirs, "theirs")]),
        Mode::Both | Mode::All => bail!("`both` and `all` are expanded before running"),
    }
}

/// Runs `mode` on `backend`: creates a fresh database per side, measures, and drops them again
/// whatever happened (a failure or a panic while measuring included).
pub async fn run_backend(backend: Backend, mode: Mode, cfg: &Config) -> anyhow::Result<BackendRun> {
    let sides = sides_of(mode)?;
    let (postgres, mysql) = (cfg.postgres_url.as_str(), cfg.mysql_url.as_str());
    let a = Scratch::create(backend, sides[0].2, postgres, mysql).await?;
    let b = match Scratch::create(backend, sides[1].2, postgres, mysql).await {
        Ok(b) => b,
        Err(e) => {
            warn_on_error(a.destroy().await);
            return Err(e);
        }
    };
    let urls = [a.url.clone(), b.url.clone()];
    // A panic while measuring still drops the databases before it is reported.
    let outcome = AssertUnwindSafe(measure(backend, mode, urls, cfg))
        .catch_unwind()
        .await;
    warn_on_error(a.destroy().await);
    warn_on_error(b.destroy().await);
    outcome.map_err(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        anyhow!("the benchmark of {} panicked: {message}", backend.name())
    })?
}

fn warn_on_error(result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("warning: could not drop a scratch database: {e:#}");
    }
}

/// Connects both sides, measures, and closes their pools.
async fn measure(
    backend: Backend,
    mode: Mode,
    urls: [String; 2],
    cfg: &Config,
) -> anyhow::Result<BackendRun> {
    let started = Instant::now();
    let [(label_a, kind_a, _), (label_b, kind_b, _)] = sides_of(mode)?;
    let sides = [
        Side::connect(label_a, kind_a, backend, &urls[0], &cfg.pool).await?,
        Side::connect(label_b, kind_b, backend, &urls[1], &cfg.pool).await?,
    ];
    let result = measure_sides(backend, mode, &sides, cfg, started).await;
    for side in &sides {
        side.close().await;
    }
    result
}

/// Prefills both tables, then runs warm-up and measured rounds at each concurrency. The side
/// that goes first alternates from one round pair to the next (A B, B A, A B, ...), so that
/// neither side always runs right after the other's writes.
async fn measure_sides(
    backend: Backend,
    mode: Mode,
    sides: &[Side; 2],
    cfg: &Config,
    started: Instant,
) -> anyhow::Result<BackendRun> {
    let payload = Arc::new(Payload::new(cfg.ttl));
    let state = payload.initial_json();
    let parallel = match backend {
        Backend::Sqlite => 1,
        _ => 4,
    };
    // Random ids in random order, live and expired mixed: the table looks like one filled by
    // sign-ins over time, not like a freshly sorted bulk load.
    let ids = [fresh_ids(cfg.rows), fresh_ids(cfg.rows)];
    let expired = [fresh_ids(cfg.expired), fresh_ids(cfg.expired)];
    let t0 = Instant::now();
    prefill(
        sides,
        [&ids[0], &ids[1]],
        [&expired[0], &expired[1]],
        &state,
        cfg.ttl,
        parallel,
    )
    .await?;
    let prefill_secs = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    settle(sides).await?;
    let settle_secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "[{}] prefilled {} live + {} expired rows per side in {prefill_secs:.1} s, settled in \
         {settle_secs:.1} s",
        backend.name(),
        cfg.rows,
        cfg.expired,
    );
    let [ids_a, ids_b] = ids;
    let mut live = [
        LiveIds::new(ids_a, cfg.seed).with_expired(cfg.expired, cfg.expired_batch),
        LiveIds::new(ids_b, cfg.seed.wrapping_add(1)).with_expired(cfg.expired, cfg.expired_batch),
    ];
    let server_version = sides[0].server_version().await?;
    let table_bytes = [sides[0].table_bytes().await?, sides[1].table_bytes().await?];

    let mut tables = Vec::with_capacity(cfg.concurrency.len());
    for &concurrency in &cfg.concurrency {
        for side in sides {
            side.fill_pool(cfg.pool.max_connections).await?;
        }
        for _ in 0..cfg.warmup {
            for (side, live) in sides.iter().zip(live.iter_mut()) {
                run_round(side, live, &payload, cfg.ops, concurrency).await?;
            }
        }
        let mut rounds: Vec<Round> = Vec::with_capacity(cfg.rounds);
        for round in 1..=cfg.rounds {
            let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
            let mut measured = [None, None];
            let mut secs = [0.0; 2];
            for i in order {
                let t0 = Instant::now();
                measured[i] =
                    Some(run_round(&sides[i], &mut live[i], &payload, cfg.ops, concurrency).await?);
                secs[i] = t0.elapsed().as_secs_f64();
            }
            eprintln!(
                "[{} {:?}] {concurrency} task(s), round {round}/{} ({} first): {} {:.2} s, {} {:.2} s",
                backend.name(),
                mode,
                cfg.rounds,
                sides[order[0]].label,
                sides[0].label,
                secs[0],
                sides[1].label,
                secs[1],
            );
            let [Some(a), Some(b)] = measured else {
                bail!("a round pair did not measure both sides");
            };
            rounds.push([a, b]);
        }
        tables.push(summarize(concurrency, &rounds));
    }

    let rows_at_end = [sides[0].count_rows().await?, sides[1].count_rows().await?];
    for (side, (rows, live)) in sides.iter().zip(rows_at_end.iter().zip(&live)) {
        if usize::try_from(*rows).ok() != Some(live.len() + live.expired()) {
            bail!(
                "{} ({}) holds {rows} rows, but the benchmark counted {} live and {} expired ids",
                side.label,
                backend.name(),
                live.len(),
                live.expired(),
            );
        }
    }
    Ok(BackendRun {
        backend,
        mode,
        server_version,
        sides: [
            SideInfo {
                label: sides[0].label.clone(),
                driver: sides[0].driver().to_owned(),
            },
            SideInfo {
                label: sides[1].label.clone(),
                driver: sides[1].driver().to_owned(),
            },
        ],
        rows: cfg.rows,
        expired: cfg.expired,
        rows_at_end,
        table_bytes,
        prefill_secs,
        settle_secs,
        elapsed_secs: started.elapsed().as_secs_f64(),
        tables,
    })
}
