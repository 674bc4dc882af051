//! The absolute lifetime (OWASP ASVS 5.0, 7.3.2): however often a session is written, it never
//! lives past `created_at + lifetime`, decided by the database in the statement that writes it.

mod common;

use common::{Backend, TestDb, key, stores_on_every_node};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{SeaOrmSessionStore, entity::sessions};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use std::{borrow::Cow, collections::HashMap, time::Duration};

const LIFETIME: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

fn record(ttl: Duration) -> SessionRecordRef<'static> {
    static EMPTY: std::sync::OnceLock<HashMap<Cow<'static, str>, serde_json::Value>> =
        std::sync::OnceLock::new();
    SessionRecordRef {
        state: Cow::Borrowed(EMPTY.get_or_init(HashMap::new)),
        ttl,
    }
}

/// Makes the session `id` look created `age` ago, by the database clock.
async fn age(db: &TestDb, id: &SessionId, age: Duration) {
    let created = db.db_now_millis().await - i64::try_from(age.as_millis()).unwrap();
    let updated = sessions::Entity::update_many()
        .col_expr(sessions::Column::CreatedAt, Expr::val(created))
        .filter(sessions::Column::Id.eq(key(id)))
        .exec(&db.db)
        .await
        .unwrap();
    assert_eq!(updated.rows_affected, 1);
}

async fn ttl_left(store: &SeaOrmSessionStore, id: &SessionId) -> Option<Duration> {
    store.load(id).await.unwrap().map(|record| record.ttl)
}

async fn a_session_never_outlives_its_absolute_lifetime(backend: Backend) {
    let db = common::fresh_db(backend).await;
    let stores = stores_on_every_node(&db);
    stores[0].migrate().await.unwrap();
    let store = stores[stores.len() - 1]
        .clone()
        .with_absolute_lifetime(LIFETIME);
    // A new session: its deadline is the earlier of the TTL and the lifetime.
    let id = SessionId::random();
    store.create(&id, record(DAY)).await.unwrap();
    let left = ttl_left(&store, &id).await.unwrap();
    assert!(
        left <= LIFETIME && left > LIFETIME - Duration::from_secs(60),
        "{left:?}"
    );
    let short = SessionId::random();
    store
        .create(&short, record(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(ttl_left(&store, &short).await.unwrap() <= Duration::from_secs(60));

    // Two seconds of its lifetime left: no write extends it past them.
    age(&db, &id, LIFETIME - Duration::from_secs(2)).await;
    store.update(&id, record(DAY)).await.unwrap();
    assert!(ttl_left(&store, &id).await.unwrap() <= Duration::from_secs(2));
    store.update_ttl(&id, DAY).await.unwrap();
    assert!(ttl_left(&store, &id).await.unwrap() <= Duration::from_secs(2));
    let renamed = SessionId::random();
    store.change_id(&id, &renamed).await.unwrap();
    let left = ttl_left(&store, &renamed).await.unwrap();
    assert!(
        left <= Duration::from_secs(2) && left > Duration::ZERO,
        "{left:?}"
    );

    // Past its lifetime: the write that would extend it ends it instead.
    age(&db, &renamed, LIFETIME + Duration::from_millis(1)).await;
    store.update_ttl(&renamed, DAY).await.unwrap();
    assert_eq!(ttl_left(&store, &renamed).await, None, "ended");
    assert!(store.update(&renamed, record(DAY)).await.is_err());
    assert_eq!(store.delete_expired(None).await.unwrap(), 1);

    // A store without the lifetime (another service's) extends as the contract says: the cap
    // is the store's configuration, so every store that writes sessions needs it.
    age(&db, &short, LIFETIME * 2).await;
    let uncapped = SeaOrmSessionStore::new(db.store_connection());
    uncapped.update_ttl(&short, DAY).await.unwrap();
    assert!(ttl_left(&uncapped, &short).await.unwrap() > LIFETIME);
}

on_every_backend!(and_galera: a_session_never_outlives_its_absolute_lifetime,);
