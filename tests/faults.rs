//! Faults: a database server that the test starts itself (never the shared one) is killed under
//! load and started again. Every call made while it is down fails with an `Other` error within
//! the pool's timeout (no hang, no panic); afterwards the same store works again; no
//! acknowledged write is lost.

mod common;

use common::server::{TempMariadb, TempPostgres};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{CreateError, LoadError, UpdateError},
    },
};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectOptions, Database};
use serde_json::{Value, json};
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

type State = HashMap<Cow<'static, str>, Value>;

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
const TASKS: usize = 8;
const OUTAGE: Duration = Duration::from_secs(3);

fn state(v: u64) -> State {
    serde_json::from_value(json!({"v": v})).unwrap()
}

/// What one task saw: the sessions whose writes were acknowledged, with the last acknowledged
/// version and, if a later write failed, that write's version (its outcome is unknown).
#[derive(Default)]
struct Log {
    sessions: Vec<(SessionId, u64, Option<u64>)>,
    ok: usize,
    failed: usize,
    slowest_failure: Duration,
}

async fn client(store: SeaOrmSessionStore, stop: Arc<AtomicBool>) -> Log {
    let mut log = Log::default();
    let ttl = Duration::from_secs(3600);
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        // Either a new session, or a new version of one we created.
        let outcome = match log.ok % 3 == 0 || log.sessions.is_empty() {
            true => {
                let id = SessionId::random();
                let s = state(0);
                match store
                    .create(
                        &id,
                        SessionRecordRef {
                            state: Cow::Borrowed(&s),
                            ttl,
                        },
                    )
                    .await
                {
                    Ok(()) => {
                        log.sessions.push((id, 0, None));
                        Ok(())
                    }
                    Err(CreateError::Other(e)) => Err(e),
                    Err(e) => panic!("create of a fresh id: {e:?}"),
                }
            }
            false => {
                let i = log.ok % log.sessions.len();
                let (id, version, pending) = log.sessions[i];
                let next = pending.unwrap_or(version) + 1;
                let s = state(next);
                match store
                    .update(
                        &id,
                        SessionRecordRef {
                            state: Cow::Borrowed(&s),
                            ttl,
                        },
                    )
                    .await
                {
                    Ok(()) => {
                        log.sessions[i] = (id, next, None);
                        Ok(())
                    }
                    Err(UpdateError::Other(e)) => {
                        log.sessions[i] = (id, version, Some(next));
                        Err(e)
                    }
                    Err(e) => panic!("update of a live session: {e:?}"),
                }
            }
        };
        match outcome {
            Ok(()) => log.ok += 1,
            Err(_) => {
                log.failed += 1;
                log.slowest_failure = log.slowest_failure.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

async fn kill_under_load(url: String, kill: impl Fn(), resume: impl Fn()) {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(TASKS as u32)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .sqlx_logging(false);
    let store = SeaOrmSessionStore::new(Database::connect(options).await.unwrap());
    store.migrate().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..TASKS)
        .map(|_| tokio::spawn(client(store.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill();
    // While it is down, direct calls fail with `Other`.
    let load = store.load(&SessionId::random()).await;
    assert!(matches!(load, Err(LoadError::Other(_))), "{load:?}");
    tokio::time::sleep(OUTAGE).await;
    resume();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::SeqCst);
    let mut logs = Vec::new();
    for client in clients {
        logs.push(client.await.expect("no client panicked"));
    }
    let (ok, failed): (usize, usize) = logs
        .iter()
        .fold((0, 0), |(o, f), l| (o + l.ok, f + l.failed));
    let slowest = logs
        .iter()
        .map(|l| l.slowest_failure)
        .max()
        .unwrap_or_default();
    eprintln!(
        "{ok} calls succeeded, {failed} failed during the outage; slowest failure {slowest:?}"
    );
    assert!(failed > 0, "the outage was seen");
    assert!(ok > TASKS * 10, "the load ran before and after the outage");
    // No hang: a failing call returns within the pool's timeout (plus slack for a loaded machine).
    assert!(
        slowest < ACQUIRE_TIMEOUT + Duration::from_secs(5),
        "{slowest:?}"
    );
    // The same store works again, and every acknowledged write is there.
    let mut checked = 0;
    for log in &logs {
        for (id, version, pending) in &log.sessions {
            let loaded = store
                .load(id)
                .await
                .unwrap()
                .expect("an acknowledged session survives");
            let v = loaded.state["v"].as_u64().unwrap();
            assert!(
                v == *version || Some(v) == *pending,
                "acknowledged version {version} (pending {pending:?}), found {v}"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} acknowledged sessions verified after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_under_load() {
    let server = TempPostgres::start();
    kill_under_load(server.url(), || server.kill(), || server.resume()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_under_load() {
    let server = TempMariadb::start();
    kill_under_load(server.url(), || server.kill(), || server.resume()).await;
}
