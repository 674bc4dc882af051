//! Every sized or numeric parameter of the public API at its extremes, on every backend: a
//! defined result, never a panic.

mod common;

use common::{Backend, sessions_with_ttl, store_on};
use pavex_session::store::SessionStorageBackend;
use pavex_session_sea_orm::{
    CleanupConfig, ExpiredSessionCleaner, SeaOrmSessionStore, SessionsTable,
};
use pavex_session_sea_orm_migration::MAX_TABLE_NAME_LEN;
use std::{num::NonZeroUsize, time::Duration};

/// Batch sizes 1 and `NonZeroUsize::MAX` (clamped to the largest LIMIT the drivers bind).
async fn batch_sizes_at_their_extremes(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    sessions_with_ttl(&store, 3, Duration::ZERO).await;
    sessions_with_ttl(&store, 2, Duration::from_secs(3600)).await;
    assert_eq!(
        store.delete_expired(Some(NonZeroUsize::MIN)).await.unwrap(),
        1
    );
    assert_eq!(
        store.delete_expired(Some(NonZeroUsize::MAX)).await.unwrap(),
        2
    );
    assert_eq!(
        store.delete_expired(Some(NonZeroUsize::MAX)).await.unwrap(),
        0
    );
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
}

/// A table name of the longest length accepted works end to end, indexes included.
async fn the_longest_table_name(backend: Backend) {
    let db = common::fresh_db(backend).await;
    let table = SessionsTable::new("t".repeat(MAX_TABLE_NAME_LEN)).unwrap();
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table(table)
        .unwrap();
    store.migrate().await.unwrap();
    store.check_table().await.unwrap();
    sessions_with_ttl(&store, 2, Duration::ZERO).await;
    assert_eq!(store.delete_expired(NonZeroUsize::new(5)).await.unwrap(), 2);
    assert!(SessionsTable::new("t".repeat(MAX_TABLE_NAME_LEN + 1)).is_err());
}

/// Zero and huge pauses and backoffs, and jitters that are not in `0..=1`, drain the backlog.
async fn cleanup_configs_at_their_extremes(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for jitter in [f64::NAN, -1.0, 0.0, 1.0, f64::INFINITY, f64::MAX] {
        sessions_with_ttl(&store, 3, Duration::ZERO).await;
        let config = CleanupConfig {
            batch_size: NonZeroUsize::MIN,
            pause_between_batches: Duration::ZERO,
            pause_between_rounds: Duration::MAX,
            jitter,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::MAX,
        };
        let cleaner = ExpiredSessionCleaner::new(store.clone()).with_config(config);
        assert_eq!(cleaner.drain(|_| {}).await.unwrap(), 3, "jitter {jitter}");
    }
}

on_every_backend!(
    batch_sizes_at_their_extremes,
    the_longest_table_name,
    cleanup_configs_at_their_extremes,
);
