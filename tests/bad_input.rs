//! Hostile inputs and rows, each with its expected result, on every backend: no panic, no
//! partial write, a clear error where the input cannot be stored.

mod common;

use common::{Backend, TestDb, assert_every_operation_fails_with_other, store_on};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{CreateError, LoadError, UpdateError},
    },
};
use pavex_session_sea_orm::entity::sessions;
use sea_orm::{ColumnTrait, DbBackend, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};

type State = HashMap<Cow<'static, str>, Value>;

const HOUR: Duration = Duration::from_secs(3600);

fn state(v: Value) -> State {
    serde_json::from_value(v).unwrap()
}

fn record(s: &State, ttl: Duration) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(s),
        ttl,
    }
}

async fn set_deadline(db: &TestDb, id: &SessionId, deadline: i64) {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::Deadline, Expr::val(deadline))
        .filter(sessions::Column::Id.eq(common::key(id)))
        .exec(&db.db)
        .await
        .unwrap();
}

/// Keys and values with quotes, backslashes, SQL, control characters and unicode round-trip;
/// a NUL character is refused everywhere (PostgreSQL's jsonb cannot hold it) and nothing is
/// written.
async fn hostile_strings(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let nasty = [
        "'",
        "\"",
        "\\",
        "'; DROP TABLE sessions; --",
        "\u{1F600}",
        "ключ",
        "中文",
        "\u{202E}rtl",
        "\t\r\n",
        "\u{1}",
        "",
        "\u{FFFF}",
        "\\u0000 (escaped, not a NUL)",
    ];
    for text in nasty {
        let id = SessionId::random();
        let s = state(json!({ text: text, "nested": { text: [text] } }));
        store.create(&id, record(&s, HOUR)).await.unwrap();
        assert_eq!(store.load(&id).await.unwrap().unwrap().state, s, "{text:?}");
    }
    for s in [
        json!({"nul\u{0}key": 1}),
        json!({"k": "nul\u{0}value"}),
        json!({"k": [{"d": "\u{0}"}]}),
    ] {
        let s = state(s);
        let id = SessionId::random();
        let refused = store.create(&id, record(&s, HOUR)).await;
        assert!(
            matches!(refused, Err(CreateError::SerializationError(_))),
            "{refused:?}"
        );
        assert!(store.load(&id).await.unwrap().is_none(), "nothing written");
        let ok = state(json!({"fine": true}));
        store.create(&id, record(&ok, HOUR)).await.unwrap();
        let refused = store.update(&id, record(&s, HOUR)).await;
        assert!(
            matches!(refused, Err(UpdateError::SerializationError(_))),
            "{refused:?}"
        );
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().state,
            ok,
            "the old state is kept"
        );
    }
}

/// Rows written behind the store's back with odd deadlines.
async fn odd_deadlines(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let s = state(json!({"a": 1}));
    // Negative and zero deadlines are long past: invisible, replaceable, collectable.
    for deadline in [i64::MIN, -1, 0] {
        let id = SessionId::random();
        store.create(&id, record(&s, HOUR)).await.unwrap();
        set_deadline(&db, &id, deadline).await;
        assert!(store.load(&id).await.unwrap().is_none(), "{deadline}");
        assert!(store.update_ttl(&id, HOUR).await.is_err());
        store.create(&id, record(&s, HOUR)).await.unwrap();
        set_deadline(&db, &id, deadline).await;
    }
    assert_eq!(
        store.delete_expired(NonZeroUsize::new(10)).await.unwrap(),
        3
    );
    // The largest deadline is live, with a TTL that does not overflow.
    let id = SessionId::random();
    store.create(&id, record(&s, HOUR)).await.unwrap();
    set_deadline(&db, &id, i64::MAX).await;
    let ttl = store.load(&id).await.unwrap().unwrap().ttl;
    assert!(
        ttl > Duration::from_secs(60 * 60 * 24 * 365 * 1_000_000),
        "{ttl:?}"
    );
    store.update(&id, record(&s, Duration::MAX)).await.unwrap();
    store.change_id(&id, &SessionId::random()).await.unwrap();
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
}

/// Rows whose id is not a hash the store could have written (a raw UUID left behind, a few
/// odd bytes): invisible to every operation on real ids, collected once expired.
async fn ids_of_the_wrong_shape(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let insert = match db.db_backend() {
        DbBackend::Postgres => {
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) \
             VALUES ($1, $2, '{}', 0, 0)"
        }
        _ => {
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) \
             VALUES (?, ?, '{}', 0, 0)"
        }
    };
    let now = db.db_now_millis().await;
    let raw = SessionId::random();
    db.run(
        insert,
        vec![
            raw.inner().as_bytes().to_vec().into(),
            (now + 3_600_000).into(),
        ],
    )
    .await;
    assert!(
        store.load(&raw).await.unwrap().is_none(),
        "a raw id opens nothing"
    );
    db.run(insert, vec![vec![0xFFu8; 3].into(), (now - 1).into()])
        .await;
    let id = SessionId::random();
    let s = state(json!({"real": true}));
    store.create(&id, record(&s, HOUR)).await.unwrap();
    store.change_id(&id, &SessionId::random()).await.unwrap();
    assert_eq!(
        store.delete_expired(None).await.unwrap(),
        1,
        "the expired odd row is collected"
    );
}

/// States as large as the backend takes round-trip; beyond its limit, a clear error and no write.
async fn huge_states(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    let big = state(json!({"blob": "x".repeat(10 << 20)}));
    store.create(&id, record(&big, HOUR)).await.unwrap();
    assert_eq!(store.load(&id).await.unwrap().unwrap().state, big, "10 MiB");
    if db.db_backend() == DbBackend::MySql {
        // Beyond `max_allowed_packet` (16 MiB by default on MariaDB 10.11).
        let too_big = state(json!({"blob": "y".repeat(17 << 20)}));
        let other = SessionId::random();
        let refused = store.create(&other, record(&too_big, HOUR)).await;
        let Err(CreateError::Other(e)) = refused else {
            panic!("{refused:?}")
        };
        // MariaDB either answers 1153 (a packet bigger than `max_allowed_packet`) or, depending
        // on timing, closes the connection before the client reads that answer.
        let message = format!("{e:#}");
        assert!(
            ["packet", "Connection reset", "communicating with database"]
                .iter()
                .any(|m| message.contains(m)),
            "{message}"
        );
        assert!(
            store.load(&other).await.unwrap().is_none(),
            "nothing written"
        );
        let refused = store.update(&id, record(&too_big, HOUR)).await;
        assert!(matches!(refused, Err(UpdateError::Other(_))), "{refused:?}");
        assert_eq!(
            store.load(&id).await.unwrap().unwrap().state,
            big,
            "the old state is kept"
        );
    }
}

/// A new session whose stored state is then overwritten by hand with `bytes`.
async fn session_with_stored_state(
    db: &common::TestDb,
    store: &pavex_session_sea_orm::SeaOrmSessionStore,
    bytes: Vec<u8>,
) -> SessionId {
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({})), HOUR))
        .await
        .unwrap();
    sessions::Entity::update_many()
        .col_expr(sessions::Column::State, Expr::val(bytes))
        .filter(sessions::Column::Id.eq(common::key(&id)))
        .exec(&db.db)
        .await
        .unwrap();
    id
}

/// Stored states that are not JSON objects are `DeserializationError`s, and the record can
/// still be overwritten or deleted.
async fn states_that_are_not_objects(backend: Backend) {
    let (db, store) = store_on(backend).await;
    for bad in [
        json!([1]),
        json!(null),
        json!(true),
        json!(1.5),
        json!("s"),
        json!({"a": null}),
    ] {
        let id = session_with_stored_state(&db, &store, bad.to_string().into_bytes()).await;
        let loaded = store.load(&id).await;
        match bad.is_object() {
            true => assert_eq!(loaded.unwrap().unwrap().state, state(bad)),
            false => {
                assert!(
                    matches!(loaded, Err(LoadError::DeserializationError(_))),
                    "{bad}"
                );
                store.delete(&id).await.unwrap();
            }
        }
    }
    // Objects written by hand as serde_json reads them: a later duplicate key wins, white space
    // around the object is allowed, and more keys than the parsed map has room for at first.
    let many: serde_json::Map<String, serde_json::Value> =
        (0..20).map(|i| (format!("k{i}"), json!(i))).collect();
    let many = serde_json::Value::Object(many);
    for (stored, expected) in [
        (r#"{"a": 1, "a": 2}"#.to_owned(), json!({"a": 2})),
        (" \n{\"a\": 1}\t ".to_owned(), json!({"a": 1})),
        (many.to_string(), many.clone()),
    ] {
        let id = session_with_stored_state(&db, &store, stored.clone().into_bytes()).await;
        let loaded = store.load(&id).await.unwrap().expect("live");
        assert_eq!(loaded.state, state(expected), "{stored}");
    }
    // Bytes that are not JSON (trailing bytes after the object included), or not UTF-8, written
    // by hand: an error, and the row stays.
    for bad in [
        &b"{oops"[..],
        &[0xff, 0xfe, b'{', b'}'][..],
        &b"{} x"[..],
        &b"{}{}"[..],
    ] {
        let id = session_with_stored_state(&db, &store, bad.to_vec()).await;
        assert!(matches!(
            store.load(&id).await,
            Err(LoadError::DeserializationError(_))
        ));
        let row = sessions::Entity::find_by_id(common::key(&id))
            .one(&db.db)
            .await
            .unwrap();
        assert_eq!(row.map(|r| r.state), Some(bad.to_vec()), "not deleted");
        // Once expired, the same row is absent like any other expired one: its state is not read.
        let now = db.db_now_millis().await;
        for deadline in [now, now - 1, i64::MIN] {
            set_deadline(&db, &id, deadline).await;
            assert!(store.load(&id).await.unwrap().is_none(), "{deadline}");
        }
    }
}

/// `Duration::MAX` and zero TTLs on every operation that takes one.
async fn extreme_ttls(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    let s = state(json!({}));
    let id = SessionId::random();
    store.create(&id, record(&s, Duration::MAX)).await.unwrap();
    store.update(&id, record(&s, Duration::MAX)).await.unwrap();
    store.update_ttl(&id, Duration::MAX).await.unwrap();
    store
        .update_ttl(&id, Duration::from_nanos(1))
        .await
        .unwrap();
    assert!(
        store.load(&id).await.unwrap().is_none(),
        "a sub-millisecond TTL is expired"
    );
    let zero = SessionId::random();
    store
        .create(&zero, record(&s, Duration::ZERO))
        .await
        .unwrap();
    assert!(store.load(&zero).await.unwrap().is_none());
}

on_every_backend!(
    hostile_strings,
    odd_deadlines,
    ids_of_the_wrong_shape,
    huge_states,
    states_that_are_not_objects,
    extreme_ttls,
);

/// A store handed a `DatabaseConnection::default()` (connected to nothing): every operation is
/// an `Other` error, not a panic (sea-orm itself panics when asked for its backend).
#[tokio::test]
async fn a_connection_to_nothing_is_an_error_not_a_panic() {
    let store = pavex_session_sea_orm::SeaOrmSessionStore::new(Default::default())
        .with_table("other_sessions".parse().unwrap())
        .expect("no backend to refuse the table");
    let cause = assert_every_operation_fails_with_other(&store, &SessionId::random()).await;
    assert!(cause.contains("not connected"), "{cause}");
    let err = store.migrate().await.unwrap_err();
    assert!(err.to_string().contains("not connected"), "{err}");
}
