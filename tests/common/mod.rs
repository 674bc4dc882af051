//! Shared test support: the databases ([`db`]) and a migrated store on one.
#![allow(dead_code)]

mod db;
pub mod galera;
pub mod server;
pub use db::*;

/// A migrated store on a fresh database of `backend`.
pub async fn store_on(backend: Backend) -> (TestDb, pavex_session_sea_orm::SeaOrmSessionStore) {
    let test_db = fresh_db(backend).await;
    let store = pavex_session_sea_orm::SeaOrmSessionStore::new(test_db.store_connection());
    store.migrate().await.expect("migrate");
    (test_db, store)
}

/// A store on each node of `test_db`'s database: one per node of a cluster, else one.
pub fn stores_on_every_node(test_db: &TestDb) -> Vec<pavex_session_sea_orm::SeaOrmSessionStore> {
    test_db
        .node_connections()
        .iter()
        .map(|node| pavex_session_sea_orm::SeaOrmSessionStore::new(node.clone()))
        .collect()
}

/// Creates `n` sessions with an empty state that expire `ttl` from now.
pub async fn sessions_with_ttl(
    store: &impl pavex_session::store::SessionStorageBackend,
    n: usize,
    ttl: std::time::Duration,
) {
    use pavex_session::{SessionId, store::SessionRecordRef};
    use std::{borrow::Cow, collections::HashMap};
    let state = HashMap::<Cow<'static, str>, serde_json::Value>::new();
    for _ in 0..n {
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl,
        };
        store.create(&SessionId::random(), record).await.unwrap();
    }
}

/// Asserts that every operation of `store` on `id` fails with its `Other` variant, keeping the
/// database error as the source, and returns that source's message.
pub async fn assert_every_operation_fails_with_other(
    store: &impl pavex_session::store::SessionStorageBackend,
    id: &pavex_session::SessionId,
) -> String {
    use pavex_session::{
        SessionId,
        store::{SessionRecordRef, errors::*},
    };
    use std::{borrow::Cow, collections::HashMap, error::Error as _, time::Duration};
    let state = HashMap::<Cow<'static, str>, serde_json::Value>::new();
    let record = || SessionRecordRef {
        state: Cow::Borrowed(&state),
        ttl: Duration::from_secs(3600),
    };
    let created = store.create(&SessionId::random(), record()).await;
    assert!(matches!(created, Err(CreateError::Other(_))), "{created:?}");
    let updated = store.update(id, record()).await;
    assert!(matches!(updated, Err(UpdateError::Other(_))), "{updated:?}");
    let extended = store.update_ttl(id, Duration::from_secs(60)).await;
    assert!(
        matches!(extended, Err(UpdateTtlError::Other(_))),
        "{extended:?}"
    );
    let deleted = store.delete(id).await;
    assert!(matches!(deleted, Err(DeleteError::Other(_))), "{deleted:?}");
    let renamed = store.change_id(id, &SessionId::random()).await;
    assert!(
        matches!(renamed, Err(ChangeIdError::Other(_))),
        "{renamed:?}"
    );
    let err = store.delete_expired(None).await.unwrap_err();
    let source = err.source().expect("the cause is kept");
    assert!(!source.to_string().is_empty());
    let err = store.load(id).await.unwrap_err();
    assert!(matches!(err, LoadError::Other(_)), "{err:?}");
    err.source().expect("the DbErr is the source").to_string()
}
