//! Every row of the contract's operations table, on every backend. Stored rows that are not
//! JSON objects (`LoadError::DeserializationError`) are covered in `tests/bad_input.rs`.

mod common;

use common::{
    Backend, TestDb, assert_every_operation_fails_with_other, store_on, stores_on_every_node,
};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{ChangeIdError, CreateError, DeleteError, UpdateError, UpdateTtlError},
    },
};
use pavex_session_sea_orm::{SeaOrmSessionStore, entity::sessions};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use std::{
    borrow::Cow,
    collections::HashMap,
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

type State = HashMap<Cow<'static, str>, Value>;

const HOUR: Duration = Duration::from_secs(3600);

fn state(value: Value) -> State {
    serde_json::from_value(value).expect("a JSON object")
}

fn record(state: &State, ttl: Duration) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl,
    }
}

/// Moves the deadline of `id` `ms` milliseconds into the past (by the database clock).
async fn expire(test_db: &TestDb, id: &SessionId, ms: i64) {
    let past = test_db.db_now_millis().await - ms;
    let updated = sessions::Entity::update_many()
        .col_expr(sessions::Column::Deadline, Expr::val(past))
        .filter(sessions::Column::Id.eq(common::key(id)))
        .exec(&test_db.db)
        .await
        .expect("expire a record");
    assert_eq!(updated.rows_affected, 1, "the record to expire exists");
}

async fn stored(test_db: &TestDb, id: &SessionId) -> Option<sessions::Model> {
    sessions::Entity::find_by_id(common::key(id))
        .one(&test_db.db)
        .await
        .expect("read a row")
}

async fn row_count(test_db: &TestDb) -> usize {
    sessions::Entity::find()
        .all(&test_db.db)
        .await
        .expect("read rows")
        .len()
}

async fn create_then_load_returns_state_and_ttl(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let id = SessionId::random();
    let s = state(json!({"user": "ada", "n": 1, "nested": {"a": [1, 2]}}));
    store.create(&id, record(&s, HOUR)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().expect("a live record");
    assert_eq!(loaded.state, s);
    assert!(
        loaded.ttl <= HOUR && loaded.ttl > HOUR - Duration::from_secs(60),
        "{:?}",
        loaded.ttl
    );
    assert!(store.load(&SessionId::random()).await.unwrap().is_none());
}

async fn create_on_live_id_is_duplicate_and_keeps_record(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    let first = state(json!({"who": "first"}));
    store.create(&id, record(&first, HOUR)).await.unwrap();
    let before = stored(&db, &id).await.unwrap();
    let second = state(json!({"who": "second"}));
    let err = store
        .create(&id, record(&second, 2 * HOUR))
        .await
        .unwrap_err();
    match err {
        CreateError::DuplicateId(e) => assert_eq!(e.id.inner(), id.inner()),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert_eq!(
        stored(&db, &id).await.unwrap(),
        before,
        "the live record is untouched"
    );
}

async fn create_on_expired_id_overwrites(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({"old": true})), HOUR))
        .await
        .unwrap();
    expire(&db, &id, 1000).await;
    let fresh = state(json!({"new": true}));
    store.create(&id, record(&fresh, HOUR)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().expect("the new record");
    assert_eq!(loaded.state, fresh);
    assert!(loaded.ttl > HOUR - Duration::from_secs(60));
    assert_eq!(row_count(&db).await, 1);
}

async fn zero_ttl_is_expired_at_once(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    let s = state(json!({"a": 1}));
    store.create(&id, record(&s, Duration::ZERO)).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_none());
    assert_eq!(row_count(&db).await, 1, "stored, but expired");
    // Expired means free: the id can be created again.
    store.create(&id, record(&s, HOUR)).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    // A zero TTL on update expires the record too.
    store.update_ttl(&id, Duration::ZERO).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_none());
}

async fn duration_max_ttl_never_expires(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    let s = state(json!({"forever": true}));
    store.create(&id, record(&s, Duration::MAX)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().expect("live");
    let max = Duration::from_millis(pavex_session_sea_orm::MAX_TTL_MILLIS as u64);
    assert!(
        loaded.ttl <= max && loaded.ttl > max - Duration::from_secs(60),
        "{:?}",
        loaded.ttl
    );
    store.update(&id, record(&s, Duration::MAX)).await.unwrap();
    store.update_ttl(&id, Duration::MAX).await.unwrap();
    let deadline = stored(&db, &id)
        .await
        .unwrap()
        .deadline
        .0
        .timestamp_millis();
    assert!(deadline > pavex_session_sea_orm::MAX_TTL_MILLIS);
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
}

async fn update_replaces_state_and_restarts_ttl(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let id = SessionId::random();
    store
        .create(
            &id,
            record(&state(json!({"v": 1})), Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let s2 = state(json!({"v": 2, "extra": "yes"}));
    store.update(&id, record(&s2, HOUR)).await.unwrap();
    let loaded = store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.state, s2);
    assert!(
        loaded.ttl > HOUR - Duration::from_secs(60),
        "{:?}",
        loaded.ttl
    );
}

async fn update_ttl_moves_deadline_and_keeps_state(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let id = SessionId::random();
    let s = state(json!({"keep": "me"}));
    store
        .create(&id, record(&s, Duration::from_secs(60)))
        .await
        .unwrap();
    store.update_ttl(&id, HOUR).await.unwrap();
    let loaded = store.load(&id).await.unwrap().unwrap();
    assert_eq!(loaded.state, s);
    assert!(
        loaded.ttl > HOUR - Duration::from_secs(60),
        "{:?}",
        loaded.ttl
    );
    // Back-to-back calls often compute the same deadline within one millisecond: still Ok
    // (MySQL counts matched rows, not changed rows).
    for _ in 0..20 {
        store.update_ttl(&id, HOUR).await.unwrap();
    }
    assert_eq!(store.load(&id).await.unwrap().unwrap().state, s);
}

async fn load_ttl_has_millisecond_precision(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({})), Duration::from_millis(1500)))
        .await
        .unwrap();
    let ttl = store.load(&id).await.unwrap().expect("live").ttl;
    assert!(
        ttl >= Duration::from_millis(1300) && ttl <= Duration::from_millis(1500),
        "{ttl:?}"
    );
    // Sub-second TTLs are kept, not rounded to whole seconds.
    let short = SessionId::random();
    store
        .create(
            &short,
            record(&state(json!({})), Duration::from_millis(999)),
        )
        .await
        .unwrap();
    let ttl = store.load(&short).await.unwrap().expect("still live").ttl;
    assert!(
        ttl <= Duration::from_millis(999) && ttl >= Duration::from_millis(800),
        "{ttl:?}"
    );
}

/// On PostgreSQL `load` reads `CURRENT_TIMESTAMP` (which is `now()`) and the store computes the
/// clock's milliseconds itself (`millis_of`): the same value as the clock every other statement
/// evaluates (`now_millis`), compared in one statement, so at one instant, many times over.
#[tokio::test]
async fn postgres_now_read_by_the_store_is_the_statements_clock() {
    let db = common::fresh_db(Backend::Postgres).await;
    let select = sea_orm::sea_query::Query::select()
        .expr_as(Expr::current_timestamp(), "current")
        .expr_as(Expr::cust("now()"), "now")
        .expr_as(
            pavex_session_sea_orm_migration::now_millis(db.db_backend()).expect("a clock"),
            "in_sql",
        )
        .to_owned();
    let clock = db.db_backend().build(&select).to_string();
    for _ in 0..500 {
        let row = sea_orm::ConnectionTrait::query_one_raw(
            &db.db,
            sea_orm::Statement::from_string(db.db_backend(), clock.clone()),
        )
        .await
        .unwrap()
        .expect("a row");
        let current: chrono::DateTime<chrono::Utc> = row.try_get("", "current").unwrap();
        let now: chrono::DateTime<chrono::Utc> = row.try_get("", "now").unwrap();
        let in_sql: i64 = row.try_get("", "in_sql").unwrap();
        assert_eq!(current, now);
        assert_eq!(
            pavex_session_sea_orm_migration::millis_of(current),
            in_sql,
            "{current}"
        );
    }
}

async fn deadline_is_database_now_plus_ttl(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let ttl_ms = 123_456;
    let id = SessionId::random();
    let s = state(json!({}));
    let before = db.db_now_millis().await;
    store
        .create(&id, record(&s, Duration::from_millis(ttl_ms)))
        .await
        .unwrap();
    let after = db.db_now_millis().await;
    let deadline = stored(&db, &id)
        .await
        .unwrap()
        .deadline
        .0
        .timestamp_millis();
    let ttl_ms = ttl_ms as i64;
    assert!(
        (before + ttl_ms..=after + ttl_ms).contains(&deadline),
        "deadline {deadline} not in [{}, {}]",
        before + ttl_ms,
        after + ttl_ms
    );
    // The remaining TTL is measured against the same clock.
    let before = db.db_now_millis().await;
    let loaded = store.load(&id).await.unwrap().unwrap().ttl.as_millis() as i64;
    let after = db.db_now_millis().await;
    assert!(
        (deadline - after..=deadline - before).contains(&loaded),
        "{loaded}"
    );
}

async fn delete_removes_a_live_record(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    let other = SessionId::random();
    let s = state(json!({"x": 1}));
    store.create(&id, record(&s, HOUR)).await.unwrap();
    store.create(&other, record(&s, HOUR)).await.unwrap();
    store.delete(&id).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_none());
    assert!(stored(&db, &id).await.is_none());
    assert!(
        store.load(&other).await.unwrap().is_some(),
        "other records stay"
    );
}

/// Every operation on an id that was never created reports it unknown.
async fn missing_ids_are_unknown(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    assert_unknown_everywhere(&store, &SessionId::random()).await;
}

/// Every operation on an expired id reports it unknown, as if it did not exist.
async fn expired_ids_are_unknown(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({"a": 1})), HOUR))
        .await
        .unwrap();
    expire(&db, &id, 1).await;
    assert_unknown_everywhere(&store, &id).await;
    assert!(
        stored(&db, &id).await.is_some(),
        "failed operations changed nothing"
    );
}

async fn assert_unknown_everywhere(store: &impl SessionStorageBackend, id: &SessionId) {
    let s = state(json!({"b": 2}));
    assert!(store.load(id).await.unwrap().is_none());
    match store.update(id, record(&s, HOUR)).await {
        Err(UpdateError::UnknownIdError(e)) => assert_eq!(e.id.inner(), id.inner()),
        other => panic!("update: {other:?}"),
    }
    match store.update_ttl(id, HOUR).await {
        Err(UpdateTtlError::UnknownId(e)) => assert_eq!(e.id.inner(), id.inner()),
        other => panic!("update_ttl: {other:?}"),
    }
    match store.delete(id).await {
        Err(DeleteError::UnknownId(e)) => assert_eq!(e.id.inner(), id.inner()),
        other => panic!("delete: {other:?}"),
    }
    match store.change_id(id, &SessionId::random()).await {
        Err(ChangeIdError::UnknownId(e)) => assert_eq!(e.id.inner(), id.inner()),
        other => panic!("change_id: {other:?}"),
    }
    assert!(store.load(id).await.unwrap().is_none());
}

async fn change_id_moves_state_and_deadline(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let (old, new) = (SessionId::random(), SessionId::random());
    let s = state(json!({"cart": [1, 2, 3]}));
    store.create(&old, record(&s, HOUR)).await.unwrap();
    let before = stored(&db, &old).await.unwrap();
    store.change_id(&old, &new).await.unwrap();
    assert!(store.load(&old).await.unwrap().is_none());
    assert_eq!(store.load(&new).await.unwrap().unwrap().state, s);
    let after = stored(&db, &new).await.unwrap();
    assert_eq!(
        (after.deadline, &after.state),
        (before.deadline, &before.state)
    );
    assert_eq!(row_count(&db).await, 1);
}

async fn change_id_onto_a_live_id_is_duplicate(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let (old, taken) = (SessionId::random(), SessionId::random());
    store
        .create(&old, record(&state(json!({"me": "old"})), HOUR))
        .await
        .unwrap();
    store
        .create(&taken, record(&state(json!({"me": "taken"})), HOUR))
        .await
        .unwrap();
    let (old_before, taken_before) = (stored(&db, &old).await, stored(&db, &taken).await);
    match store.change_id(&old, &taken).await {
        Err(ChangeIdError::DuplicateId(e)) => assert_eq!(e.id.inner(), taken.inner()),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert_eq!(stored(&db, &old).await, old_before, "old untouched");
    assert_eq!(stored(&db, &taken).await, taken_before, "taken untouched");
    // Renaming onto itself: the id is taken, by itself.
    match store.change_id(&old, &old).await {
        Err(ChangeIdError::DuplicateId(e)) => assert_eq!(e.id.inner(), old.inner()),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    // A missing old id next to a live new id: DuplicateId, as the in-memory store says.
    match store.change_id(&SessionId::random(), &taken).await {
        Err(ChangeIdError::DuplicateId(e)) => assert_eq!(e.id.inner(), taken.inner()),
        other => panic!("expected DuplicateId, got {other:?}"),
    }
    assert_eq!(stored(&db, &old).await, old_before);
}

async fn change_id_onto_an_expired_id_succeeds(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let (old, stale) = (SessionId::random(), SessionId::random());
    let s = state(json!({"me": "old"}));
    store.create(&old, record(&s, HOUR)).await.unwrap();
    store
        .create(&stale, record(&state(json!({"me": "stale"})), HOUR))
        .await
        .unwrap();
    expire(&db, &stale, 1000).await;
    store.change_id(&old, &stale).await.unwrap();
    assert!(store.load(&old).await.unwrap().is_none());
    assert_eq!(store.load(&stale).await.unwrap().unwrap().state, s);
    assert_eq!(row_count(&db).await, 1, "the expired record was discarded");
}

/// `n` records with distinct deadlines `age_ms + i` milliseconds in the past, oldest last.
async fn expired_records(
    db: &TestDb,
    store: &impl SessionStorageBackend,
    n: usize,
) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let id = SessionId::random();
        store
            .create(&id, record(&state(json!({"i": i})), HOUR))
            .await
            .unwrap();
        expire(db, &id, 10_000 - i as i64 * 10).await;
        ids.push(id);
    }
    ids
}

async fn delete_expired_removes_all_expired_and_no_live(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let expired = expired_records(&db, &store, 7).await;
    let live: Vec<_> = (0..5).map(|_| SessionId::random()).collect();
    for id in &live {
        store
            .create(id, record(&state(json!({"live": true})), HOUR))
            .await
            .unwrap();
    }
    assert_eq!(store.delete_expired(None).await.unwrap(), 7);
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
    for id in &expired {
        assert!(stored(&db, id).await.is_none());
    }
    for id in &live {
        assert!(store.load(id).await.unwrap().is_some());
    }
}

async fn delete_expired_in_batches_drains_oldest_first(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let expired = expired_records(&db, &store, 25).await;
    let live: Vec<_> = (0..5).map(|_| SessionId::random()).collect();
    for id in &live {
        store
            .create(id, record(&state(json!({"live": true})), HOUR))
            .await
            .unwrap();
    }
    let batch = NonZeroUsize::new(10);
    assert_eq!(store.delete_expired(batch).await.unwrap(), 10);
    for (i, id) in expired.iter().enumerate() {
        assert_eq!(
            stored(&db, id).await.is_none(),
            i < 10,
            "record {i}: oldest go first"
        );
    }
    assert_eq!(store.delete_expired(batch).await.unwrap(), 10);
    assert_eq!(store.delete_expired(batch).await.unwrap(), 5);
    assert_eq!(store.delete_expired(batch).await.unwrap(), 0);
    assert_eq!(row_count(&db).await, live.len());
    for id in &live {
        assert!(store.load(id).await.unwrap().is_some());
    }
}

async fn one_statement_per_operation(backend: Backend) {
    let (mut test_db, _) = store_on(backend).await;
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = statements.clone();
    let count_one = move |_: &sea_orm::metric::Info<'_>| {
        counter.fetch_add(1, Ordering::SeqCst);
    };
    // The table check runs through sea-orm's connection, the operations on its pool.
    test_db.db.set_metric_callback(count_one.clone());
    let store = SeaOrmSessionStore::new(test_db.db.clone()).with_metric_callback(count_one);
    let count = async |label: &str, expected: usize| {
        assert_eq!(statements.swap(0, Ordering::SeqCst), expected, "{label}");
    };
    // The first operation of a store reads the table's definition first (columns, keys),
    // once: clones share what it found.
    store.clone().load(&SessionId::random()).await.unwrap();
    let checked = statements.swap(0, Ordering::SeqCst);
    assert!(checked > 1, "{checked}: the check, then the load");
    let (id, new) = (SessionId::random(), SessionId::random());
    let s = state(json!({"a": 1}));
    store.create(&id, record(&s, HOUR)).await.unwrap();
    count("create", 1).await;
    store.load(&id).await.unwrap().unwrap();
    count("load (hit)", 1).await;
    store.load(&new).await.unwrap();
    count("load (miss)", 1).await;
    store.update(&id, record(&s, HOUR)).await.unwrap();
    count("update", 1).await;
    store.update_ttl(&id, HOUR).await.unwrap();
    count("update_ttl", 1).await;
    store.change_id(&id, &new).await.unwrap();
    count("change_id", 1).await;
    store.delete(&new).await.unwrap();
    count("delete", 1).await;
    store.delete_expired(None).await.unwrap();
    count("delete_expired", 1).await;
    store.delete_expired(NonZeroUsize::new(100)).await.unwrap();
    count("delete_expired (batch)", 1).await;
    store.update(&id, record(&s, HOUR)).await.unwrap_err();
    count("update (unknown)", 1).await;
    // The rarer paths take one more statement.
    store.create(&id, record(&s, HOUR)).await.unwrap();
    expire(&test_db, &id, 1000).await;
    statements.store(0, Ordering::SeqCst);
    store.create(&id, record(&s, HOUR)).await.unwrap();
    count("create over an expired record", 2).await;
}

async fn racing_creates_have_exactly_one_winner(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let stores = stores_on_every_node(&db);
    for round in 0..3 {
        let id = SessionId::random();
        if round == 2 {
            // The same race over an expired record.
            store
                .create(&id, record(&state(json!({"stale": true})), HOUR))
                .await
                .unwrap();
            expire(&db, &id, 1000).await;
        }
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                tokio::spawn(async move {
                    let s = state(json!({"winner": i}));
                    (i, store.create(&id, record(&s, HOUR)).await)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                (i, Ok(())) => winners.push(i),
                (_, Err(CreateError::DuplicateId(_))) => {}
                (_, Err(e)) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let loaded = store.load(&id).await.unwrap().unwrap();
        assert_eq!(
            loaded.state,
            state(json!({"winner": winners[0]})),
            "the winner's record"
        );
    }
}

async fn racing_change_ids_have_exactly_one_winner(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let stores = stores_on_every_node(&db);
    let old = SessionId::random();
    let s = state(json!({"who": "racer"}));
    store.create(&old, record(&s, HOUR)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            tokio::spawn(async move {
                let new = SessionId::random();
                (new, store.change_id(&old, &new).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (new, Ok(())) => winners.push(new),
            (_, Err(ChangeIdError::UnknownId(e))) => assert_eq!(e.id.inner(), old.inner()),
            (_, Err(e)) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(store.load(&winners[0]).await.unwrap().unwrap().state, s);
    assert_eq!(row_count(&db).await, 1);
}

async fn big_and_unusual_states_round_trip(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let id = SessionId::random();
    let s = state(json!({
        "big": "x".repeat(1 << 20),
        "quotes": "it's \"quoted\" \\ and `ticked`; DROP TABLE sessions; --",
        "unicode ключ 🔑": "значение ✓ 中文 👩‍👩‍👧",
        "numbers": [0, -1, 1.5, 9007199254740991i64],
        "nothing": null,
        "deep": {"a": {"b": {"c": [true, false]}}}
    }));
    store.create(&id, record(&s, HOUR)).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().state, s);
    let empty = State::new();
    store.update(&id, record(&empty, HOUR)).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().state, empty);
}

async fn a_closed_database_gives_other_errors(backend: Backend) {
    let (db, _) = store_on(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone());
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({"a": 1})), HOUR))
        .await
        .unwrap();
    db.db.clone().close().await.unwrap();
    assert_every_operation_fails_with_other(&store, &id).await;
}

on_every_backend!(and_galera:
    create_then_load_returns_state_and_ttl,
    create_on_live_id_is_duplicate_and_keeps_record,
    create_on_expired_id_overwrites,
    zero_ttl_is_expired_at_once,
    duration_max_ttl_never_expires,
    update_replaces_state_and_restarts_ttl,
    update_ttl_moves_deadline_and_keeps_state,
    load_ttl_has_millisecond_precision,
    deadline_is_database_now_plus_ttl,
    delete_removes_a_live_record,
    missing_ids_are_unknown,
    expired_ids_are_unknown,
    change_id_moves_state_and_deadline,
    change_id_onto_a_live_id_is_duplicate,
    change_id_onto_an_expired_id_succeeds,
    delete_expired_removes_all_expired_and_no_live,
    delete_expired_in_batches_drains_oldest_first,
    one_statement_per_operation,
    racing_creates_have_exactly_one_winner,
    racing_change_ids_have_exactly_one_winner,
    big_and_unusual_states_round_trip,
    a_closed_database_gives_other_errors,
);
