//! Shared test support: the databases ([`db`]) and a migrated store on one.
#![allow(dead_code)]

pub mod audit;
mod db;
pub mod galera;
pub mod plans;
pub mod server;
pub use db::*;

/// A session state, as `pavex_session` hands it to the store.
pub type State = std::collections::HashMap<std::borrow::Cow<'static, str>, serde_json::Value>;

/// The TTL of the sessions the tests write, unless they say otherwise.
pub const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

/// The state of a JSON object.
pub fn state(value: serde_json::Value) -> State {
    serde_json::from_value(value).expect("a JSON object")
}

/// A record of `state` that lives an [`HOUR`].
pub fn record(state: &State) -> pavex_session::store::SessionRecordRef<'_> {
    pavex_session::store::SessionRecordRef {
        state: std::borrow::Cow::Borrowed(state),
        ttl: HOUR,
    }
}

/// The stored id of `id` (its hash), for looking rows up through the entity.
pub fn key(id: &pavex_session::SessionId) -> Vec<u8> {
    pavex_session_sea_orm::SessionHandle::of(id)
        .as_bytes()
        .to_vec()
}

/// Moves the deadline of `id` one millisecond into the past (by the database clock).
pub async fn expire(test_db: &TestDb, id: &pavex_session::SessionId) {
    use pavex_session_sea_orm::entity::sessions;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    let past = test_db.db_now_millis().await - 1;
    let updated = sessions::Entity::update_many()
        .col_expr(sessions::Column::Deadline, Expr::val(past))
        .filter(sessions::Column::Id.eq(key(id)))
        .exec(&test_db.db)
        .await
        .expect("expire a record");
    assert_eq!(updated.rows_affected, 1, "the record to expire exists");
}

/// The rows of `sessions_revoked` (revoked sign-ins and guard rows).
#[allow(dead_code)]
pub async fn revoked_rows(test_db: &TestDb) -> u64 {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = "SELECT COUNT(*) AS n FROM sessions_revoked";
    let row = test_db
        .db
        .query_one_raw(Statement::from_string(test_db.db_backend(), sql.to_owned()))
        .await
        .expect("count the revoked sign-ins")
        .expect("a count");
    row.try_get::<i64>("", "n").expect("n") as u64
}

/// Every row of the `sessions` table as bytes (its id, its state and its subject), read with the
/// test's own SQL rather than the store's.
pub async fn all_rows(test_db: &TestDb) -> Vec<Vec<u8>> {
    use sea_orm::{ConnectionTrait, Statement};
    let sql = "SELECT id, state, subject FROM sessions ORDER BY id";
    let rows = test_db
        .db
        .query_all_raw(Statement::from_string(test_db.db_backend(), sql.to_owned()))
        .await
        .expect("read the table");
    rows.iter()
        .map(|row| {
            let mut bytes: Vec<u8> = row.try_get("", "id").expect("id");
            bytes.extend(row.try_get::<Vec<u8>>("", "state").expect("state"));
            bytes.extend(
                row.try_get::<Option<Vec<u8>>>("", "subject")
                    .expect("subject")
                    .unwrap_or_default(),
            );
            bytes
        })
        .collect()
}

/// The ids of the `sessions` table that are stored raw (16 bytes, or a `uuid` column).
pub async fn raw_ids(test_db: &TestDb) -> Vec<Vec<u8>> {
    use sea_orm::{
        ConnectionTrait,
        sea_query::{Expr, Query},
    };
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A new SQL text each time: PostgreSQL refuses a cached plan once the column changed type.
    static CALL: AtomicUsize = AtomicUsize::new(0);
    let call = CALL.fetch_add(1, Ordering::Relaxed);
    let select = Query::select()
        .column("id")
        .from("sessions")
        .and_where(Expr::cust(format!("{call} = {call}")))
        .to_owned();
    let rows = test_db.db.query_all(&select).await.expect("read the ids");
    rows.iter()
        .filter_map(|row| match row.try_get::<Vec<u8>>("", "id") {
            Ok(id) => (id.len() == 16).then_some(id),
            Err(_) => row
                .try_get::<sea_orm::prelude::Uuid>("", "id")
                .ok()
                .map(|id| id.as_bytes().to_vec()),
        })
        .collect()
}

/// A Unix epoch millisecond time as the entity holds it.
pub fn millis(ms: i64) -> sea_orm::prelude::ChronoUnixTimestampMillis {
    sea_orm::prelude::ChronoUnixTimestampMillis(
        sea_orm::prelude::ChronoDateTimeUtc::from_timestamp_millis(ms)
            .expect("a representable time"),
    )
}

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

/// Inserts `rows` into the `sessions` table (in statements of 500 rows), then has the database
/// refresh its statistics, so that the plans the tests read are the real ones.
pub async fn insert_and_analyze(
    test_db: &TestDb,
    rows: Vec<pavex_session_sea_orm::entity::sessions::ActiveModel>,
) {
    use pavex_session_sea_orm::entity::sessions;
    use sea_orm::{ConnectionTrait, DbBackend, EntityTrait};
    for chunk in rows.chunks(500) {
        sessions::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&test_db.db)
            .await
            .expect("insert the rows");
    }
    let analyze = match test_db.db_backend() {
        DbBackend::Postgres => "ANALYZE sessions",
        DbBackend::MySql => "ANALYZE TABLE sessions",
        _ => "ANALYZE",
    };
    test_db
        .db
        .execute_unprepared(analyze)
        .await
        .expect("analyze");
}
