//! A private 3-node MariaDB Galera cluster on loopback, run by `scripts/galera.sh`: never the
//! shared server. A test binary starts at most one (see [`shared`]); the script's watchdog stops
//! it when the binary exits, and [`Cluster`]'s `Drop` stops one that a test owns.
#![allow(dead_code)]

use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

/// `wsrep_sync_wait` for every connection of the tests, as docs/cluster.md recommends: reads (1) and
/// `UPDATE`/`DELETE` (2) first wait until this node has applied every write the cluster has
/// committed, so a session written through one node is seen through any other.
pub const SYNC_WAIT: u32 = 3;

pub struct Cluster {
    dir: PathBuf,
    /// `mysql://root@127.0.0.1:<port>/test` of nodes 1, 2 and 3.
    pub urls: Vec<String>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/galera.sh")
}

fn run(args: &[&str]) -> Result<String, String> {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .map_err(|e| format!("cannot run scripts/galera.sh: {e}"))?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

impl Cluster {
    /// Starts three nodes, trying other ports if some are taken. Panics (failing the test) if
    /// the cluster cannot start: a cluster test is never skipped.
    pub fn start() -> Self {
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("pss_galera_{pid}_{nanos}"));
        let dir_arg = dir.to_string_lossy().into_owned();
        let mut errors = Vec::new();
        for attempt in 0..5 {
            // Below 32768, outside the range the kernel hands out to outgoing connections.
            let base = 10_000 + ((pid + attempt * 397) % 1_100) * 20;
            let owner = pid.to_string();
            match run(&["start", &dir_arg, &base.to_string(), "--owner", &owner]) {
                Ok(stdout) => {
                    let urls: Vec<String> = stdout.lines().map(str::to_owned).collect();
                    assert_eq!(urls.len(), 3, "galera.sh start printed {stdout:?}");
                    return Self { dir, urls };
                }
                Err(e) => {
                    let _ = run(&["stop", &dir_arg]);
                    errors.push(format!("ports from {base}: {e}"));
                }
            }
        }
        panic!("the Galera cluster did not start:\n{}", errors.join("\n"));
    }

    fn dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// SIGKILLs node `n` (1-based): no clean shutdown.
    pub fn kill(&self, n: usize) {
        run(&["kill", &self.dir(), &n.to_string()]).expect("kill a node");
    }

    /// Starts node `n` again and waits until it has caught up and the cluster has 3 nodes.
    pub fn restart(&self, n: usize) {
        run(&["restart", &self.dir(), &n.to_string()]).expect("restart a node");
    }

    /// The URL of database `name` on node `n` (1-based).
    pub fn url(&self, n: usize, name: &str) -> String {
        let server = self.urls[n - 1]
            .rsplit_once('/')
            .map_or(self.urls[n - 1].as_str(), |(server, _)| server);
        format!("{server}/{name}")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = run(&["stop", &self.dir()]) {
            eprintln!("warning: could not stop the Galera cluster: {e}");
        }
    }
}

/// The cluster this test binary shares among its tests, started on first use.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// Pool options for a cluster node: [`SYNC_WAIT`] on every connection, as an app would set it.
pub fn options(url: &str, max_connections: u32) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_mysql_pool_opts(|pool| {
            pool.after_connect(|connection, _| {
                Box::pin(async move {
                    use sea_orm::sqlx::Executor as _;
                    connection
                        .execute(sea_orm::sqlx::AssertSqlSafe(format!(
                            "SET SESSION wsrep_sync_wait = {SYNC_WAIT}"
                        )))
                        .await
                        .map(|_| ())
                })
            })
        });
    options
}

/// Connects to `url`, retrying while the node does not know the database yet (a `CREATE
/// DATABASE` run on another node is applied here a moment later).
pub async fn connect(url: &str, max_connections: u32) -> DatabaseConnection {
    let mut last = None;
    for _ in 0..50 {
        match Database::connect(options(url, max_connections)).await {
            Ok(db) => return db,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {url}: {last:?}");
}
