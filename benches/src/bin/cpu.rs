//! CPU per operation, ours against theirs: this process's CPU time (all its threads) and the
//! database server's, per call, one task, over many calls. On a 2-core machine shared with the
//! server, CPU per call is what throughput at 16 tasks is made of. A diagnostic, not part of the
//! report.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin cpu -- SERVER_PID [mysql://…/db]`

use pavex_session::{SessionId, store::SessionRecordRef, store::SessionStorageBackend};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sqlx::Connection as _;
use std::{borrow::Cow, collections::HashMap, time::Duration, time::Instant};

const CALLS: u32 = 20_000;

/// utime + stime of a process, in seconds, from `/proc/PID/stat`.
fn cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server_pid = std::env::args().nth(1).expect("the database server's pid");
    let server = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into());
    let names = ["ours", "theirs"].map(|side| format!("pss_cpu_{side}_{}", std::process::id()));
    let mut admin = sqlx::MySqlConnection::connect(&server).await?;
    for name in &names {
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
    }
    let [url_ours, url_theirs] = names
        .clone()
        .map(|name| format!("{}/{name}", server.rsplit_once('/').map_or("", |s| s.0)));
    let mut options = sea_orm::ConnectOptions::new(&url_ours);
    options
        .max_connections(16)
        .sqlx_logging(false)
        .test_before_acquire(false);
    let ours = SeaOrmSessionStore::new(sea_orm::Database::connect(options).await?);
    ours.migrate().await?;
    let pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(16)
        .test_before_acquire(false)
        .connect(&url_theirs)
        .await?;
    let theirs = pavex_session_sqlx::MySqlSessionStore::new(pool);
    theirs.migrate().await?;

    let state: HashMap<Cow<'static, str>, serde_json::Value> = [
        (
            "user.id".into(),
            "7f9c2ba4-e88f-4a1b-9d3c-0f1e2d3c4b5a".into(),
        ),
        ("visits".into(), 1.into()),
    ]
    .into_iter()
    .collect();
    let mut other = state.clone();
    other.insert("visits".into(), 2.into());
    let states = [state, other];
    let record = |i: u32| SessionRecordRef {
        state: Cow::Borrowed(&states[i as usize % 2]),
        ttl: Duration::from_secs(3600),
    };
    let id = SessionId::random();
    ours.create(&id, record(0)).await?;
    theirs.create(&id, record(0)).await?;
    let stores: [(&str, &dyn SessionStorageBackend); 2] = [("ours", &ours), ("theirs", &theirs)];
    // Each update writes a state different from the one before, so that no update is a no-op.
    let missing = SessionId::random();
    for op in ["load", "miss", "update"] {
        for round in 0..2 {
            for (label, store) in stores {
                // `SIDE=ours` or `SIDE=theirs` measures one side only (e.g. under `strace -c -f`).
                if std::env::var("SIDE").is_ok_and(|side| side != label) {
                    continue;
                }
                let (client, server, wall) = (
                    cpu_seconds("self")?,
                    cpu_seconds(&server_pid)?,
                    Instant::now(),
                );
                for i in 0..CALLS {
                    match op {
                        "load" => drop(store.load(&id).await?),
                        "miss" => drop(store.load(&missing).await?),
                        _ => store.update(&id, record(i)).await?,
                    }
                }
                let per_call = |seconds: f64| seconds * 1e6 / f64::from(CALLS);
                if round > 0 {
                    println!(
                        "{op:6} {label:6} wall {:6.1} µs  client CPU {:5.1} µs  server CPU {:5.1} µs",
                        per_call(wall.elapsed().as_secs_f64()),
                        per_call(cpu_seconds("self")? - client),
                        per_call(cpu_seconds(&server_pid)? - server),
                    );
                }
            }
        }
    }
    for name in &names {
        sqlx::query(&format!("DROP DATABASE {name}"))
            .execute(&mut admin)
            .await?;
    }
    Ok(())
}
