//! The background cleaner: drains expired sessions in batches and leaves live ones, keeps going
//! through database errors and restarts, and stops when asked.

mod common;

use common::{Backend, server::TempPostgres, sessions_with_ttl, store_on};
use pavex_session_sea_orm::{
    CleanupConfig, CleanupReport, ExpiredSessionCleaner, SeaOrmSessionStore, entity::sessions,
};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, EntityTrait, PaginatorTrait};
use std::{num::NonZeroUsize, time::Duration};
use tokio::{sync::oneshot, task::JoinHandle};

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

/// Starts a cleaner; the returned sender stops it.
fn spawn(
    store: SeaOrmSessionStore,
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

/// Waits (at most 60 s, a guard against hangs, not a timing claim) until `rows` is `expected`.
async fn wait_for_rows(db: &DatabaseConnection, expected: u64) {
    for _ in 0..6000 {
        if rows(db).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the table never came down to {expected} rows (it has {})",
        rows(db).await
    );
}

async fn it_drains_expired_sessions_and_leaves_live_ones(backend: Backend) {
    let (db, store) = store_on(backend).await;
    sessions_with_ttl(&store, 5, HOUR).await;
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    let (stop, task) = spawn(store.clone(), quick());
    wait_for_rows(&db.db, 5).await;
    // A later wave is picked up by a later round.
    sessions_with_ttl(&store, 7, Duration::ZERO).await;
    wait_for_rows(&db.db, 5).await;
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
    let (stop, task) = spawn(store.clone(), quick());
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.migrate().await.unwrap();
    sessions_with_ttl(&store, 15, Duration::ZERO).await;
    wait_for_rows(&db.db, 0).await;
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
    let (stop, task) = spawn(store, config);
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
    let (stop_a, a) = spawn(store.clone(), config.clone());
    let (stop_b, b) = spawn(store.clone(), config);
    wait_for_rows(&db.db, 4).await;
    stop_a.send(()).unwrap();
    stop_b.send(()).unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    // A batch in flight when the cleaner is stopped is abandoned, uncounted, though the database
    // may have applied it: the reports can miss up to one batch each.
    let counted = a.deleted + b.deleted;
    assert!((300 - 2 * 10..=300).contains(&counted), "{a:?} {b:?}");
    assert_eq!(
        (a.errors, b.errors),
        (0, 0),
        "no deadlock or lock error: {a:?} {b:?}"
    );
}

on_every_backend!(
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
    let (stop, task) = spawn(store.clone(), quick());
    wait_for_rows(&db, 0).await;

    // Down for longer than the pool waits for a connection, so batches fail meanwhile.
    server.kill();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.resume();
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    sessions_with_ttl(&store, 3, HOUR).await;
    wait_for_rows(&db, 3).await;
    stop.send(()).unwrap();
    let report = task.await.unwrap();
    assert_eq!(report.deleted, 50, "{report:?}");
    assert!(report.errors >= 1, "the outage was seen: {report:?}");
}
