//! The background cleaner: drains expired sessions in batches and leaves live ones, keeps going
//! through database errors and restarts, and stops when asked.

mod common;

use common::{Backend, server::TempPostgres, sessions_with_ttl, store_on};
use pavex_session::{
    SessionId,
    store::{SessionRecord, SessionRecordRef, SessionStorageBackend, errors::*},
};
use pavex_session_sea_orm::{
    CleanupConfig, CleanupReport, ExpiredSessionCleaner, SeaOrmSessionStore, entity::sessions,
};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, EntityTrait, PaginatorTrait};
use std::{num::NonZeroUsize, time::Duration};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

const HOUR: Duration = Duration::from_secs(3600);

fn quick() -> CleanupConfig {
    CleanupConfig {
        batch_size: NonZeroUsize::new(10).unwrap(),
        pause_between_batches: Duration::from_millis(1),
        pause_between_rounds: Duration::from_millis(20),
        jitter: 0.5,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    }
}

/// The store, publishing the running total of rows its `delete_expired` calls reported.
///
/// The total is published in the same poll in which the cleaner receives the batch, so once the
/// test sees a total, the cleaner has that batch in hand: a stop sent afterwards cannot make it
/// abandon the batch (stopping on the table's row count could, and then the report misses it).
#[derive(Debug, Clone)]
struct Observed {
    store: SeaOrmSessionStore,
    deleted: watch::Sender<u64>,
}

impl Observed {
    fn new(store: SeaOrmSessionStore) -> Self {
        Self {
            store,
            deleted: watch::Sender::new(0),
        }
    }

    /// Another view of the same store that adds to the same total.
    fn sharing_total(&self, store: SeaOrmSessionStore) -> Self {
        Self {
            store,
            deleted: self.deleted.clone(),
        }
    }

    /// Waits (at most 60 s, a guard against hangs, not a timing claim) until the cleaners have
    /// been handed `expected` deleted rows in all.
    async fn wait_for_deleted(&self, expected: u64) {
        let mut total = self.deleted.subscribe();
        let reached = total.wait_for(|total| *total >= expected);
        match tokio::time::timeout(Duration::from_secs(60), reached).await {
            Ok(Ok(total)) => assert_eq!(*total, expected, "more rows deleted than expired"),
            _ => panic!("only {} of {expected} rows deleted", *self.deleted.borrow()),
        }
    }
}

#[async_trait::async_trait]
impl SessionStorageBackend for Observed {
    async fn create(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), CreateError> {
        self.store.create(id, record).await
    }
    async fn update(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), UpdateError> {
        self.store.update(id, record).await
    }
    async fn update_ttl(&self, id: &SessionId, ttl: Duration) -> Result<(), UpdateTtlError> {
        self.store.update_ttl(id, ttl).await
    }
    async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, LoadError> {
        self.store.load(id).await
    }
    async fn delete(&self, id: &SessionId) -> Result<(), DeleteError> {
        self.store.delete(id).await
    }
    async fn change_id(&self, old: &SessionId, new: &SessionId) -> Result<(), ChangeIdError> {
        self.store.change_id(old, new).await
    }
    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let deleted = self.store.delete_expired(batch_size).await?;
        self.deleted.send_modify(|total| *total += deleted as u64);
        Ok(deleted)
    }
}

/// Starts a cleaner; the returned sender stops it.
fn spawn(
    store: Observed,
    config: CleanupConfig,
) -> (oneshot::Sender<()>, JoinHandle<CleanupReport>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let cleaner = ExpiredSessionCleaner::new(store).with_config(config);
    let task = tokio::spawn(cleaner.run_until(async {
        stopped.await.ok();
    }));
    (stop, task)
}

async fn rows(db: &DatabaseConnection) -> u64 {
    sessions::Entity::find().count(db).await.unwrap()
}

async fn it_drains_expired_sessions_and_leaves_live_ones(backend: Backend) {
    let (db, store) = store_on(backend).await;
    sessions_with_ttl(&store, 5, HOUR).await;
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    let observed = Observed::new(store.clone());
    let (stop, task) = spawn(observed.clone(), quick());
    observed.wait_for_deleted(25).await;
    // A later wave is picked up by a later round.
    sessions_with_ttl(&store, 7, Duration::ZERO).await;
    observed.wait_for_deleted(32).await;
    // Before the stop, as in `two_cleaners_at_once_share_the_work`.
    assert_eq!(rows(&db.db).await, 5, "the live sessions are left");
    stop.send(()).unwrap();
    let report = task.await.unwrap();
    assert_eq!(report.deleted, 32);
    assert!(report.batches >= 4 && report.rounds >= 2, "{report:?}");
    assert_eq!(report.errors, 0);
}

async fn it_keeps_going_after_database_errors(backend: Backend) {
    // No table yet: every batch fails until the table appears.
    let db = common::fresh_db(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone());
    let observed = Observed::new(store.clone());
    let (stop, task) = spawn(observed.clone(), quick());
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.migrate().await.unwrap();
    sessions_with_ttl(&store, 15, Duration::ZERO).await;
    observed.wait_for_deleted(15).await;
    assert_eq!(rows(&db.db).await, 0);
    stop.send(()).unwrap();
    let report = task.await.unwrap();
    assert!(report.errors >= 2, "{report:?}");
    assert_eq!(report.deleted, 15);
}

async fn it_stops_promptly_when_asked(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let config = CleanupConfig {
        pause_between_rounds: HOUR,
        ..quick()
    };
    let (stop, task) = spawn(Observed::new(store), config);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    // A guard, not a timing claim: without it a cleaner asleep for an hour would hang the test.
    let report = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the cleaner stops during its pause")
        .unwrap();
    assert_eq!(report.rounds, 1);
}

async fn two_cleaners_at_once_share_the_work(backend: Backend) {
    let (db, store) = store_on(backend).await;
    sessions_with_ttl(&store, 4, HOUR).await;
    sessions_with_ttl(&store, 300, Duration::ZERO).await;
    let config = CleanupConfig {
        pause_between_batches: Duration::ZERO,
        ..quick()
    };
    let observed = Observed::new(store.clone());
    let (stop_a, a) = spawn(observed.clone(), config.clone());
    let (stop_b, b) = spawn(observed.sharing_total(store.clone()), config);
    // Each row is reported once, by one cleaner: a total of exactly 300 means no row was counted
    // twice (and `wait_for_deleted` fails on more).
    observed.wait_for_deleted(300).await;
    // Counted before the stop: a batch in flight at shutdown is abandoned, and sqlx closes the
    // connection it ran on, which takes an in-memory SQLite database (one connection) with it.
    assert_eq!(rows(&db.db).await, 4, "the live sessions are left");
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(a.deleted + b.deleted, 300, "{a:?} {b:?}");
    assert_eq!(
        (a.errors, b.errors),
        (0, 0),
        "no deadlock or lock error: {a:?} {b:?}"
    );
}

/// The revoked sign-ins and the cap's guard rows go once their deadline has passed, at the end
/// of each of the cleaner's rounds; those still in force stay.
async fn expired_revoked_sign_ins_and_guard_rows_are_deleted(backend: Backend) {
    use pavex_session_sea_orm::{AtCap, SessionHandle};
    use std::{borrow::Cow, collections::HashMap};
    let (test_db, store) = store_on(backend).await;
    let store = store
        .with_subject_key("user_id")
        .with_sign_in_key("sign_in")
        .with_max_sessions_per_subject(std::num::NonZeroU32::MIN, AtCap::EndOldest);
    let mut ids = Vec::new();
    for (user, sign_in) in [("1", "a"), ("2", "b"), ("3", "c")] {
        let state = HashMap::from([
            (Cow::Borrowed("user_id"), serde_json::json!(user)),
            (Cow::Borrowed("sign_in"), serde_json::json!(sign_in)),
        ]);
        let id = SessionId::random();
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl: HOUR,
        };
        store.create(&id, record).await.unwrap();
        ids.push(id);
    }
    for (user, id) in [("1", &ids[0]), ("2", &ids[1])] {
        assert!(
            store
                .end_session_of(user, &SessionHandle::of(id))
                .await
                .unwrap()
        );
    }
    // Three guard rows (one per capped subject) and two revoked sign-ins.
    assert_eq!(common::revoked_rows(&test_db).await, 5);
    // Subject 1's revoked sign-in and guard row have expired; the rest are in force.
    let placeholder = match test_db.db_backend() {
        sea_orm::DbBackend::Postgres => "$1",
        _ => "?",
    };
    let sql = format!("UPDATE sessions_revoked SET deadline = 0 WHERE subject = {placeholder}");
    test_db.run(&sql, vec![b"1".to_vec().into()]).await;
    // `delete_expired` deletes sessions only: one statement, as the contract says.
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
    assert_eq!(common::revoked_rows(&test_db).await, 5);
    // The cleaner, at the end of a round, deletes the expired ones.
    let cleaner = ExpiredSessionCleaner::new(store.clone()).with_config(quick());
    assert_eq!(cleaner.drain(|_| {}).await.unwrap(), 0);
    assert_eq!(common::revoked_rows(&test_db).await, 3);
    // Once per round, a batch at most: with batches of one and an expired session, the round
    // is a full batch then an empty one, and one revoked row goes (not one per batch).
    test_db
        .run("UPDATE sessions_revoked SET deadline = 0", vec![])
        .await;
    common::expire(&test_db, &ids[2]).await;
    let cleaner = ExpiredSessionCleaner::new(store.clone()).with_config(CleanupConfig {
        batch_size: NonZeroUsize::new(1).unwrap(),
        ..quick()
    });
    let mut seen = Vec::new();
    assert_eq!(cleaner.drain(|batch| seen.push(batch)).await.unwrap(), 1);
    assert_eq!(seen, [1, 0]);
    assert_eq!(common::revoked_rows(&test_db).await, 2);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(cleaner.run_until(async {
        stopped.await.ok();
    }));
    // The next rounds (20 ms apart) take the rest.
    for _ in 0..500 {
        if common::revoked_rows(&test_db).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(common::revoked_rows(&test_db).await, 0);
    stop.send(()).unwrap();
    running.await.unwrap();
}

on_every_backend!(
    expired_revoked_sign_ins_and_guard_rows_are_deleted,
    two_cleaners_at_once_share_the_work,
    it_drains_expired_sessions_and_leaves_live_ones,
    it_keeps_going_after_database_errors,
    it_stops_promptly_when_asked,
);

/// The cleaner outlives a PostgreSQL crash and restart (a server of the test's own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_survives_a_database_restart() {
    let server = TempPostgres::start();
    let mut options = ConnectOptions::new(server.url());
    options
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(1))
        .sqlx_logging(false);
    let db = Database::connect(options).await.unwrap();
    let store = SeaOrmSessionStore::new(db.clone());
    store.migrate().await.unwrap();
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    let observed = Observed::new(store.clone());
    let (stop, task) = spawn(observed.clone(), quick());
    observed.wait_for_deleted(25).await;

    // Down for longer than the pool waits for a connection, so batches fail meanwhile.
    server.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.resume();
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    sessions_with_ttl(&store, 3, HOUR).await;
    observed.wait_for_deleted(50).await;
    stop.send(()).unwrap();
    let report = task.await.unwrap();
    assert_eq!(report.deleted, 50, "{report:?}");
    assert!(report.errors >= 1, "the outage was seen: {report:?}");
    assert_eq!(rows(&db).await, 3, "the live sessions are left");
}
