//! The measured operations, the calls each round makes, and the loop that times them.
//!
//! Every call takes the common path: `load` hits live ids (or misses fresh ones), `update`,
//! `update_ttl` and `delete` target live ids, `change_id` moves live ids to fresh random ids,
//! `create` uses fresh random ids, `delete_expired` deletes a batch of the prefilled expired rows. Each call's outcome is checked; an unexpected one stops the
//! benchmark with the operation's name.

use crate::{
    args::Backend,
    cpu::{CpuSample, CpuSpent},
    ids::{LiveIds, fresh_ids},
    payload::Payload,
    side::Side,
};
use anyhow::{Context as _, bail};
use pavex_session::SessionId;
use serde::Serialize;
use std::{
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// A measured operation. [`Op::Floor`] is the bare `SELECT 1` baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Floor,
    Create,
    LoadHit,
    LoadMiss,
    Update,
    UpdateTtl,
    ChangeId,
    Delete,
    DeleteExpired,
}

impl Op {
    /// Every operation, in the order a round runs them.
    pub const ALL: [Op; 9] = [
        Op::Floor,
        Op::Create,
        Op::LoadHit,
        Op::LoadMiss,
        Op::Update,
        Op::UpdateTtl,
        Op::ChangeId,
        Op::Delete,
        Op::DeleteExpired,
    ];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Op::Floor => "floor (SELECT 1)",
            Op::Create => "create",
            Op::LoadHit => "load hit",
            Op::LoadMiss => "load miss",
            Op::Update => "update",
            Op::UpdateTtl => "update_ttl",
            Op::ChangeId => "change_id",
            Op::Delete => "delete",
            Op::DeleteExpired => "delete_expired",
        }
    }

    /// Whether every side can run this operation on `backend` with `concurrency` tasks.
    /// `delete_expired` runs on MySQL and SQLite only (pavex_session_sqlx's PostgreSQL store
    /// sends `DELETE ... LIMIT`, which PostgreSQL rejects), and at one task only: a clean-up is
    /// one task, and concurrent ones on MySQL wait on each other's row locks or deadlock (1213,
    /// theirs as well as ours), which measures the locks, not the store.
    pub fn runs_on(self, backend: Backend, concurrency: usize) -> bool {
        match self {
            Op::DeleteExpired => backend != Backend::Postgres && concurrency == 1,
            _ => true,
        }
    }

    /// Whether this is a session-store operation (everything but the floor).
    pub fn is_session_op(self) -> bool {
        self != Op::Floor
    }
}

/// One call, with its input.
#[derive(Clone, Copy)]
enum Job {
    Floor,
    Create(SessionId),
    LoadHit(SessionId),
    LoadMiss(SessionId),
    Update(SessionId),
    UpdateTtl(SessionId),
    ChangeId(SessionId, SessionId),
    Delete(SessionId),
    DeleteExpired(NonZeroUsize),
}

/// The outcome of running one operation `n` times.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Wall time from the first call's start to the last call's end.
    pub elapsed: Duration,
    /// Each call's latency, in nanoseconds (unsorted).
    pub latencies_ns: Vec<u64>,
    /// CPU time the client and the server spent from the first call's start to the last
    /// call's end ([`crate::cpu`]).
    pub cpu: CpuSpent,
    /// MariaDB/MySQL: pages InnoDB read because its buffer pool lacked them, in the same span.
    pub page_reads: Option<i64>,
}

impl Measurement {
    /// Calls per second of wall time.
    pub fn ops_per_sec(&self) -> f64 {
        self.latencies_ns.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// Per call: the client's CPU µs, the server's CPU µs and the buffer pool's page reads.
    pub fn per_call(&self) -> (f64, Option<f64>, Option<f64>) {
        let calls = self.latencies_ns.len().max(1) as f64;
        (
            self.cpu.client_ns as f64 / 1e3 / calls,
            self.cpu.server_ns.map(|ns| ns as f64 / 1e3 / calls),
            self.page_reads.map(|reads| reads as f64 / calls),
        )
    }
}

/// Runs one round on `side`: every operation of [`Op::ALL`] that runs on its backend, `n` calls
/// each, with `concurrency` tasks, and keeps `live` up to date.
pub async fn run_round(
    side: &Side,
    live: &mut LiveIds,
    payload: &Arc<Payload>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<(Op, Measurement)>> {
    let mut results = Vec::with_capacity(Op::ALL.len());
    for op in Op::ALL
        .into_iter()
        .filter(|op| op.runs_on(side.backend, concurrency))
    {
        let jobs = Arc::new(jobs(side, op, live, n)?);
        let measurement = run_jobs(side, op, jobs.clone(), payload, concurrency).await?;
        made_live(&jobs, live);
        results.push((op, measurement));
    }
    Ok(results)
}

/// Runs `n` calls of `op` on `side`, one after the other, untimed, and keeps `live` up to date:
/// the calls whose cost the server counts ([`crate::instructions`]).
pub async fn run_calls(
    side: &Side,
    op: Op,
    live: &mut LiveIds,
    payload: &Payload,
    n: usize,
) -> anyhow::Result<()> {
    let jobs = jobs(side, op, live, n)?;
    for job in &jobs {
        call(side, job, payload)
            .await
            .with_context(|| format!("{} failed on {}", op.name(), side.label))?;
    }
    made_live(&jobs, live);
    Ok(())
}

/// `n` calls of `op`, with their inputs: live ids for the calls that need one (taken out of
/// `live` for the calls that end or move them), fresh ids for the others.
fn jobs(side: &Side, op: Op, live: &mut LiveIds, n: usize) -> anyhow::Result<Vec<Job>> {
    let jobs: Vec<Job> = match op {
        Op::Floor => vec![Job::Floor; n],
        Op::Create => fresh_ids(n).into_iter().map(Job::Create).collect(),
        Op::LoadHit => live.sample(n).into_iter().map(Job::LoadHit).collect(),
        Op::LoadMiss => fresh_ids(n).into_iter().map(Job::LoadMiss).collect(),
        Op::Update => live.sample(n).into_iter().map(Job::Update).collect(),
        Op::UpdateTtl => live.sample(n).into_iter().map(Job::UpdateTtl).collect(),
        Op::ChangeId => live
            .take(n)
            .into_iter()
            .zip(fresh_ids(n))
            .map(|(old, new)| Job::ChangeId(old, new))
            .collect(),
        Op::Delete => live.take(n).into_iter().map(Job::Delete).collect(),
        Op::DeleteExpired => live
            .take_expired(n)
            .into_iter()
            .map(Job::DeleteExpired)
            .collect(),
    };
    if jobs.len() < n {
        bail!(
            "{} on {}: only {} live ids (or expired batches) left for {n} calls",
            op.name(),
            side.label,
            jobs.len()
        );
    }
    Ok(jobs)
}

/// Every call of `jobs` succeeded: records the ids they made live.
fn made_live(jobs: &[Job], live: &mut LiveIds) {
    for job in jobs {
        match *job {
            Job::Create(id) | Job::ChangeId(_, id) => live.add([id]),
            _ => {}
        }
    }
}

/// Runs `jobs` with `concurrency` tasks pulling from one shared queue, timing each call.
async fn run_jobs(
    side: &Side,
    op: Op,
    jobs: Arc<Vec<Job>>,
    payload: &Arc<Payload>,
    concurrency: usize,
) -> anyhow::Result<Measurement> {
    let next = Arc::new(AtomicUsize::new(0));
    let reads_before = side.page_reads().await?;
    let cpu_before = CpuSample::now(side.backend);
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (side, jobs, next, payload) =
                (side.clone(), jobs.clone(), next.clone(), payload.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(jobs.len() / concurrency + 1);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let t0 = Instant::now();
                    call(&side, job, &payload).await.with_context(|| {
                        format!(
                            "{} failed on {} ({})",
                            op.name(),
                            side.label,
                            side.backend.name()
                        )
                    })?;
                    latencies.push(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(u64::MAX));
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies_ns = Vec::with_capacity(jobs.len());
    for task in tasks {
        let task_latencies = task
            .await
            .with_context(|| format!("a {} task on {} panicked", op.name(), side.label))??;
        latencies_ns.extend(task_latencies);
    }
    let elapsed = start.elapsed();
    let cpu = cpu_before.until(CpuSample::now(side.backend));
    let reads_after = side.page_reads().await?;
    Ok(Measurement {
        elapsed,
        latencies_ns,
        cpu,
        page_reads: reads_before
            .zip(reads_after)
            .map(|(before, after)| after.saturating_sub(before)),
    })
}

/// Runs one call and checks that it took the common path.
async fn call(side: &Side, job: &Job, payload: &Payload) -> anyhow::Result<()> {
    let store = &*side.store;
    match job {
        Job::Floor => side.select_one().await?,
        Job::Create(id) => store.create(id, payload.record(false)).await?,
        Job::LoadHit(id) => match store.load(id).await? {
            Some(record) if !record.state.is_empty() => {}
            Some(_) => bail!("load returned a record with an empty state"),
            None => bail!("load returned None for a live id"),
        },
        Job::LoadMiss(id) => {
            if store.load(id).await?.is_some() {
                bail!("load returned a record for an id that was never stored");
            }
        }
        Job::Update(id) => store.update(id, payload.record(true)).await?,
        Job::UpdateTtl(id) => store.update_ttl(id, payload.ttl).await?,
        Job::ChangeId(old, new) => store.change_id(old, new).await?,
        Job::Delete(id) => store.delete(id).await?,
        Job::DeleteExpired(batch) => {
            let deleted = store.delete_expired(Some(*batch)).await?;
            if deleted != batch.get() {
                bail!("delete_expired deleted {deleted} rows, not a batch of {batch}");
            }
        }
    }
    Ok(())
}
