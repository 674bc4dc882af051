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
