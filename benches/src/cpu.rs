//! CPU time spent per call, by the benchmark process (the client: the store, the driver, the
//! runtime, and SQLite itself) and by the database server, read from Linux's `/proc`.
//!
//! Wall time alone cannot say whose microseconds a slower call spends, and at 16 tasks on two
//! cores the client and the server compete for the same CPUs: a call's cost is then the CPU it
//! takes on both. Each thread's on-CPU time comes from `/proc/<pid>/task/<tid>/schedstat`
//! (nanoseconds, first field), summed over the process's threads; the server's processes are
//! found by name (`mariadbd`/`mysqld`, `postgres`), so this works only when the server runs on
//! this machine and is visible in `/proc` (otherwise the server column stays empty). Only one
//! side runs at a time, so a block's server time is that side's, plus the server's background
//! work (purge, checkpoints) that its writes cause.

use crate::args::Backend;
use std::{fs, path::Path};

/// CPU time read at one instant.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    client_ns: u64,
    server_ns: Option<u64>,
}

/// CPU time spent between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSpent {
    pub client_ns: u64,
    pub server_ns: Option<u64>,
}

impl CpuSample {
    /// Reads the process's CPU time and, for a server backend, the server's.
    pub fn now(backend: Backend) -> Self {
        let server = match backend {
            Backend::Postgres => Some(&["postgres"][..]),
            Backend::Mysql => Some(&["mariadbd", "mysqld"][..]),
            Backend::Sqlite => None,
        };
        Self {
            client_ns: threads_ns(Path::new("/proc/self")),
            server_ns: server.and_then(processes_ns),
        }
    }

    /// What was spent from `self` to `later` (a thread that ended in between is not counted).
    pub fn until(self, later: CpuSample) -> CpuSpent {
        CpuSpent {
            client_ns: later.client_ns.saturating_sub(self.client_ns),
            server_ns: self
                .server_ns
                .zip(later.server_ns)
                .map(|(before, after)| after.saturating_sub(before)),
        }
    }
}

/// On-CPU nanoseconds of every thread of the process at `proc_dir`.
fn threads_ns(proc_dir: &Path) -> u64 {
    let Ok(tasks) = fs::read_dir(proc_dir.join("task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// On-CPU nanoseconds of every process named one of `names`, or `None` when there is none.
fn processes_ns(names: &[&str]) -> Option<u64> {
    let mut found = false;
    let mut total = 0u64;
    for entry in fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        let is_pid = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid {
            continue;
        }
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if names.contains(&comm.trim_end()) {
            found = true;
            total = total.saturating_add(threads_ns(&path));
        }
    }
    found.then_some(total)
}
