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
