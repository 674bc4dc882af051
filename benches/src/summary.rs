//! Turns the raw measurements of alternating rounds into per-operation statistics.

use crate::{
    args::{Backend, Mode},
    stats::{geomean, median, percentile},
    workload::{Measurement, Op},
};
use serde::Serialize;

/// The two sides' measurements of one round, in [`Op::ALL`] order (the operations that run on
/// the backend).
pub type Round = [Vec<(Op, Measurement)>; 2];

/// One side's numbers for one operation, over all measured rounds.
#[derive(Debug, Clone, Serialize)]
pub struct SideStats {
    /// Median over rounds of the round's throughput.
    pub ops_per_sec_median: f64,
    /// Each round's throughput.
    pub ops_per_sec_rounds: Vec<f64>,
    /// Latency percentiles over every call of every measured round, in microseconds.
    pub p50_us: f64,
    pub p99_us: f64,
    /// This operation's p50 divided by the same side's floor (`SELECT 1`) p50.
    pub p50_over_floor: f64,
    pub calls: usize,
    /// Median over rounds of the CPU µs per call spent by the client and by the server, and of
    /// the buffer pool's page reads per call ([`Measurement::per_call`]).
    pub client_cpu_us: f64,
    pub server_cpu_us: Option<f64>,
    pub page_reads: Option<f64>,
}

/// Both sides' numbers for one operation.
#[derive(Debug, Clone, Serialize)]
pub struct OpRow {
    pub op: Op,
    pub name: &'static str,
    /// The mode's first side (ours in `ab`/`ac`, theirs A in `aa`, raw in `cb`), then its second.
    pub sides: [SideStats; 2],
    /// Median over rounds of (first side's ops/s) / (second side's ops/s) in the same round
    /// pair: above 1, the first side is faster.
    pub ratio_median: f64,
    pub ratio_rounds: Vec<f64>,
}

/// All operations at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    pub concurrency: usize,
    pub rows: Vec<OpRow>,
    /// Geometric mean of `ratio_median` over the session operations measured (not the floor):
    /// eight at one task on MySQL and SQLite, seven elsewhere ([`Op::runs_on`]).
    pub geomean_ratio: f64,
}

/// Labels and drivers of the two sides.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub label: String,
    pub driver: String,
}

/// Everything measured on one backend in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct BackendRun {
    pub backend: Backend,
    pub mode: Mode,
    pub server_version: String,
    pub sides: [SideInfo; 2],
    /// Live rows in each table before measuring.
    pub rows: usize,
    /// Expired rows in each table, beside the live ones, before measuring (`delete_expired`
    /// removes a batch per call where it runs).
    pub expired: usize,
    /// Rows in each table at the end: `rows` plus the expired rows left, checked.
    pub rows_at_end: [i64; 2],
    /// Bytes of each side's table with its indexes after the prefill and settle
    /// ([`crate::side::Side::table_bytes`]).
    pub table_bytes: [i64; 2],
    /// Seconds to prefill both sides' tables (their inserts alternate).
    pub prefill_secs: f64,
    /// Seconds to refresh both tables' statistics and write their dirty pages after the
    /// prefill (see [`crate::prefill::settle`]).
    pub settle_secs: f64,
    pub elapsed_secs: f64,
    pub tables: Vec<Table>,
}

/// Summarizes the measured rounds at one concurrency.
pub fn summarize(concurrency: usize, rounds: &[Round]) -> Table {
    let per_side = |side: usize, op: Op| -> Vec<&Measurement> {
        rounds
            .iter()
            .flat_map(|round| round[side].iter())
            .filter(|(o, _)| *o == op)
            .map(|(_, m)| m)
            .collect()
    };
    let side_stats = |side: usize, op: Op, floor_p50_us: f64| -> SideStats {
        let measured = per_side(side, op);
        let ops_per_sec_rounds: Vec<f64> = measured.iter().map(|m| m.ops_per_sec()).collect();
        let mut all: Vec<u64> = measured
            .iter()
            .flat_map(|m| m.latencies_ns.iter().copied())
            .collect();
        all.sort_unstable();
        let p50_us = percentile(&all, 0.50) as f64 / 1e3;
        let per_call: Vec<_> = measured.iter().map(|m| m.per_call()).collect();
        let median_of = |values: Vec<Option<f64>>| -> Option<f64> {
            let values: Option<Vec<f64>> = values.into_iter().collect();
            values.map(|values| median(&values))
        };
        SideStats {
            client_cpu_us: median(&per_call.iter().map(|c| c.0).collect::<Vec<_>>()),
            server_cpu_us: median_of(per_call.iter().map(|c| c.1).collect()),
            page_reads: median_of(per_call.iter().map(|c| c.2).collect()),
            ops_per_sec_median: median(&ops_per_sec_rounds),
            ops_per_sec_rounds,
            p50_us,
            p99_us: percentile(&all, 0.99) as f64 / 1e3,
            p50_over_floor: p50_us / floor_p50_us,
            calls: all.len(),
        }
    };
    let floor_p50 = |side: usize| -> f64 {
        let mut all: Vec<u64> = per_side(side, Op::Floor)
            .iter()
            .flat_map(|m| m.latencies_ns.iter().copied())
            .collect();
        all.sort_unstable();
        percentile(&all, 0.50) as f64 / 1e3
    };
    let floors = [floor_p50(0), floor_p50(1)];
    let rows: Vec<OpRow> = Op::ALL
        .iter()
        .filter(|&&op| !per_side(0, op).is_empty())
        .map(|&op| {
            let a = side_stats(0, op, floors[0]);
            let b = side_stats(1, op, floors[1]);
            let ratio_rounds: Vec<f64> = a
                .ops_per_sec_rounds
                .iter()
                .zip(&b.ops_per_sec_rounds)
                .map(|(a, b)| a / b)
                .collect();
            OpRow {
                op,
                name: op.name(),
                ratio_median: median(&ratio_rounds),
                ratio_rounds,
                sides: [a, b],
            }
        })
        .collect();
    let session_ratios: Vec<f64> = rows
        .iter()
        .filter(|row| row.op.is_session_op())
        .map(|row| row.ratio_median)
        .collect();
    Table {
        concurrency,
        geomean_ratio: geomean(&session_ratios),
        rows,
    }
}
