//! The store on a private 3-node MariaDB Galera cluster (`scripts/galera.sh`), with stores
//! connected to different nodes: a node lost under load, migrations started on every node at
//! once, and a logout racing an update on another node. The contract itself runs on the cluster
//! in `tests/contract.rs` (`galera::*`). The tests here share one cluster and take turns, since
//! one of them kills a node.

mod common;

use common::{Backend, fresh_db, galera, stores_on_every_node};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{ChangeIdError, CreateError, DeleteError, LoadError, UpdateError},
    },
};
use pavex_session_sea_orm::{SeaOrmSessionStore, SessionsMigrator, SessionsTable};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

type State = HashMap<Cow<'static, str>, Value>;

const TTL: Duration = Duration::from_secs(3600);
/// A call that takes longer than this is a hang.
const HANG: Duration = Duration::from_secs(30);
const TASKS: usize = 12;

/// One test at a time on the shared cluster.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn state(v: u64) -> State {
    serde_json::from_value(json!({ "v": v })).unwrap()
}

fn record(state: &State) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl: TTL,
    }
}

/// The error's kind for the report: the MariaDB error number, or what went wrong on the way.
fn kind(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    for (needle, kind) in [
        ("1213", "1213 deadlock (certification conflict)"),
        ("1047", "1047 node not ready"),
        ("2013", "2013 lost connection during a statement"),
        ("Connection refused", "connection refused (node down)"),
        ("timed out", "pool timed out"),
        ("reset by peer", "connection reset"),
        ("Broken pipe", "broken pipe"),
        ("at EOF", "connection closed mid-statement (EOF)"),
    ] {
        if text.contains(needle) {
            return kind.to_owned();
        }
    }
    text.chars().take(120).collect()
}

/// A session a client wrote. `ids` has one id, or two after a rename whose outcome is unknown;
/// `pending` is the version of a write whose outcome is unknown. Only sessions with one id and
/// nothing pending are used further; the others are checked at the end.
#[derive(Clone)]
struct Tracked {
    ids: Vec<SessionId>,
    version: Option<u64>,
    pending: Option<u64>,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<_> = self.ids.iter().map(|id| id.inner()).collect();
        write!(
            f,
            "ids {ids:?}, version {:?}, pending {:?}",
            self.version, self.pending
        )
    }
}

impl Tracked {
    fn settled(&self) -> bool {
        self.ids.len() == 1 && self.pending.is_none() && self.version.is_some()
    }
}

#[derive(Default)]
struct Log {
    sessions: Vec<Tracked>,
    ok: usize,
    errors: BTreeMap<String, usize>,
    /// Broken promises: wrong answers, hangs.
    violations: Vec<String>,
    /// The slowest successful call through each node, started while node 3 was down.
    slowest_ok_during_outage: [Duration; 3],
}

/// Runs calls until `stop`, each through the next node in turn (so writes and reads of one
/// session cross nodes), and records what was acknowledged.
async fn client(
    task: usize,
    stores: Vec<SeaOrmSessionStore>,
    stop: Arc<AtomicBool>,
    outage: Arc<AtomicBool>,
) -> Log {
    let mut log = Log::default();
    let mut call = 0usize;
    while !stop.load(Ordering::SeqCst) {
        call += 1;
        let node = (task + call) % stores.len();
        let store = &stores[node];
        let settled: Vec<usize> = (0..log.sessions.len())
            .filter(|&i| log.sessions[i].settled())
            .collect();
        let pick = settled.get(call % settled.len().max(1)).copied();
        let during_outage = outage.load(Ordering::SeqCst);
        let started = Instant::now();
        let outcome: Result<(), anyhow::Error> = match (call % 4, pick) {
            (0, _) | (_, None) => {
                let id = SessionId::random();
                let done = tokio::time::timeout(HANG, store.create(&id, record(&state(0)))).await;
                let mut tracked = Tracked {
                    ids: vec![id],
                    version: None,
                    pending: Some(0),
                };
                let outcome = match done {
                    Ok(Ok(())) => {
                        tracked = Tracked {
                            ids: vec![id],
                            version: Some(0),
                            pending: None,
                        };
                        Ok(())
                    }
                    Ok(Err(CreateError::Other(e))) => Err(e),
                    Ok(Err(e)) => Err(anyhow::anyhow!("violation: create of a new id: {e:?}")),
                    Err(_) => Err(anyhow::anyhow!("violation: create hung")),
                };
                log.sessions.push(tracked);
                outcome
            }
            (1, Some(i)) => {
                let (id, version) = (log.sessions[i].ids[0], log.sessions[i].version.unwrap_or(0));
                let next = version + 1;
                match tokio::time::timeout(HANG, store.update(&id, record(&state(next)))).await {
                    Ok(Ok(())) => {
                        log.sessions[i].version = Some(next);
                        Ok(())
                    }
                    Ok(Err(UpdateError::Other(e))) => {
                        log.sessions[i].pending = Some(next);
                        Err(e)
                    }
                    Ok(Err(e)) => Err(anyhow::anyhow!(
                        "violation: update of a live session: {e:?}"
                    )),
                    Err(_) => Err(anyhow::anyhow!("violation: update hung")),
                }
            }
            (2, Some(i)) => {
                let (id, version) = (log.sessions[i].ids[0], log.sessions[i].version);
                match tokio::time::timeout(HANG, store.load(&id)).await {
                    Ok(Ok(Some(found))) if found.state["v"].as_u64() == version => Ok(()),
                    Ok(Ok(found)) => Err(anyhow::anyhow!(
                        "violation: read through node {} saw {found:?} instead of version {version:?}",
                        node + 1
                    )),
                    Ok(Err(LoadError::Other(e))) => Err(e),
                    Ok(Err(e)) => Err(anyhow::anyhow!("violation: load: {e:?}")),
                    Err(_) => Err(anyhow::anyhow!("violation: load hung")),
                }
            }
            (_, Some(i)) => {
                let (old, new) = (log.sessions[i].ids[0], SessionId::random());
                match tokio::time::timeout(HANG, store.change_id(&old, &new)).await {
                    Ok(Ok(())) => {
                        log.sessions[i].ids = vec![new];
                        Ok(())
                    }
                    Ok(Err(ChangeIdError::Other(e))) => {
                        log.sessions[i].ids = vec![old, new];
                        Err(e)
                    }
                    Ok(Err(e)) => Err(anyhow::anyhow!(
                        "violation: change_id of a live session: {e:?}"
                    )),
                    Err(_) => Err(anyhow::anyhow!("violation: change_id hung")),
                }
            }
        };
        match outcome {
            Ok(()) => {
                log.ok += 1;
                if during_outage {
                    let slowest = &mut log.slowest_ok_during_outage[node];
                    *slowest = (*slowest).max(started.elapsed());
                }
            }
            Err(e) if e.to_string().starts_with("violation") => log.violations.push(e.to_string()),
            Err(e) => {
                *log.errors.entry(kind(&e)).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    log
}

/// Kills node 3 under load from clients spread over the three nodes, starts it again, and checks
/// that every acknowledged write is there, read through the rejoined node and through node 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_under_load_loses_no_acknowledged_write() {
    let _turn = TURN.lock().await;
    let db = fresh_db(Backend::Galera).await;
    let stores = stores_on_every_node(&db);
    stores[0].migrate().await.unwrap();
    let (stop, outage) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let clients: Vec<_> = (0..TASKS)
        .map(|task| tokio::spawn(client(task, stores.clone(), stop.clone(), outage.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let cluster = galera::shared();
    outage.store(true, Ordering::SeqCst);
    let killed = Instant::now();
    cluster.kill(3);
    tokio::time::sleep(Duration::from_secs(6)).await;
    outage.store(false, Ordering::SeqCst);
    let restarted = Instant::now();
    tokio::task::spawn_blocking(|| galera::shared().restart(3))
        .await
        .unwrap();
    let rejoin = restarted.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);

    let mut logs = Vec::new();
    for client in clients {
        logs.push(client.await.expect("no client panicked"));
    }
    let ok: usize = logs.iter().map(|l| l.ok).sum();
    let mut errors = BTreeMap::<String, usize>::new();
    for (kind, n) in logs.iter().flat_map(|l| &l.errors) {
        *errors.entry(kind.clone()).or_default() += n;
    }
    let stall: Vec<Duration> = (0..3)
        .map(|n| {
            logs.iter()
                .map(|l| l.slowest_ok_during_outage[n])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let violations: Vec<&String> = logs.iter().flat_map(|l| &l.violations).collect();

    // Every acknowledged write is there, through the rejoined node and through node 1.
    let (mut acknowledged, mut lost, mut in_doubt) = (0, Vec::new(), 0);
    for tracked in logs.iter().flat_map(|l| &l.sessions) {
        let in_doubt_here = !tracked.settled();
        in_doubt += usize::from(in_doubt_here);
        acknowledged += usize::from(!in_doubt_here);
        for store in [&stores[2], &stores[0]] {
            let mut found = None;
            for id in &tracked.ids {
                if let Some(record) = store.load(id).await.expect("the cluster serves reads") {
                    assert!(found.is_none(), "{tracked:?} is under two ids");
                    found = record.state["v"].as_u64();
                }
            }
            let fine = match found {
                Some(v) => Some(v) == tracked.version || Some(v) == tracked.pending,
                // Only a create whose outcome is unknown may be missing.
                None => tracked.version.is_none(),
            };
            if !fine {
                lost.push(format!("{tracked:?}: found version {found:?}"));
            }
        }
    }
    eprintln!(
        "Galera node loss: {ok} calls acknowledged, errors by kind {errors:?}; slowest successful \
         call per node while node 3 was down (killed {:?} before restart) {stall:?}; rejoin took \
         {rejoin:?}; {acknowledged} settled sessions and {in_doubt} in doubt checked through \
         nodes 3 and 1; lost: {}",
        restarted - killed,
        lost.len()
    );
    assert!(violations.is_empty(), "broken promises: {violations:#?}");
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:#?}");
    assert!(ok > 1000, "a few thousand calls ran");
    assert!(
        errors.values().sum::<usize>() > 0,
        "the clients of node 3 saw it go"
    );
    assert!(acknowledged > 100);
}

/// `GET_LOCK` is per node, so migrations started on every node at once race for real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_started_on_every_node_at_once_apply_once() {
    let _turn = TURN.lock().await;
    for round in 0..3 {
        let db = fresh_db(Backend::Galera).await;
        let migrations: Vec<_> = db
            .node_connections()
            .iter()
            .map(|node| {
                let node = node.clone();
                tokio::spawn(async move {
                    SessionsMigrator::new(SessionsTable::default())
                        .migrate(&node)
                        .await
                })
            })
            .collect();
        for migration in migrations {
            migration
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        for (n, node) in db.node_connections().iter().enumerate() {
            let applied = node
                .query_one_raw(Statement::from_string(
                    node.get_database_backend(),
                    "SELECT COUNT(*) AS n FROM pavex_session_sea_orm_migrations",
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get::<i64>("", "n")
                .unwrap();
            // One row for the one migration, whatever the number of instances.
            assert_eq!(applied, 1, "round {round}, node {}: history rows", n + 1);
            let store = SeaOrmSessionStore::new(node.clone());
            assert_eq!(
                store.delete_expired(None).await.unwrap(),
                0,
                "the table is there"
            );
        }
        // Every instance restarting migrates again: on an up-to-date table that replicates
        // nothing (a DDL statement would raise the cluster's sequence number, and take a
        // cluster-wide lock).
        let before = last_committed(&db.node_connections()[0]).await;
        for node in db.node_connections() {
            SessionsMigrator::new(SessionsTable::default())
                .migrate(node)
                .await
                .unwrap();
        }
        assert_eq!(
            last_committed(&db.node_connections()[0]).await,
            before,
            "round {round}: a migration on an up-to-date table replicated something"
        );
    }
}

/// The cluster's sequence number of the last write committed, as node `node` reports it.
async fn last_committed(node: &sea_orm::DatabaseConnection) -> i64 {
    let row = node
        .query_one_raw(Statement::from_string(
            node.get_database_backend(),
            "SELECT CAST(VARIABLE_VALUE AS SIGNED) AS n FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME = 'WSREP_LAST_COMMITTED'",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A logout on one node is never undone by an update racing it on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_is_not_undone_by_an_update_on_another_node() {
    let _turn = TURN.lock().await;
    let db = fresh_db(Backend::Galera).await;
    let stores = stores_on_every_node(&db);
    stores[0].migrate().await.unwrap();
    for round in 0..20 {
        let id = SessionId::random();
        stores[round % 3]
            .create(&id, record(&state(0)))
            .await
            .unwrap();
        let (logout, writer) = (stores[round % 3].clone(), stores[(round + 1) % 3].clone());
        let delete = tokio::spawn(async move { logout.delete(&id).await });
        let update = tokio::spawn(async move { writer.update(&id, record(&state(1))).await });
        let (delete, update) = (delete.await.unwrap(), update.await.unwrap());
        assert!(
            matches!(delete, Ok(()) | Err(DeleteError::UnknownId(_))),
            "{delete:?}"
        );
        assert!(
            matches!(update, Ok(()) | Err(UpdateError::UnknownIdError(_))),
            "{update:?}"
        );
        assert!(
            delete.is_ok(),
            "round {round}: the logout of a live session succeeds"
        );
        for store in &stores {
            assert!(
                store.load(&id).await.unwrap().is_none(),
                "round {round}: logged out"
            );
        }
    }
}
