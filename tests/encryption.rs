//! Session states encrypted at rest (feature `encryption`): the table holds no state value, every
//! operation works on sealed states, a rotated key ring opens old states and moves them to the
//! newest key when written, and a state that does not open (unknown key, altered bytes, copied
//! from another session, plaintext where none is accepted) is a typed error that deletes nothing.

mod common;

use common::{Backend, HOUR, TestDb, key, record, state, stores_on_every_node};
use pavex_session::{
    SessionId,
    store::{
        SessionStorageBackend,
        errors::{ChangeIdError, LoadError},
    },
};
use pavex_session_sea_orm::{
    SeaOrmSessionStore, SessionHandle, StateEncryption, StateKey, UnreadableState, entity::sessions,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::json;

const SECRET: &str = "card-4111-1111";

fn key_of(byte: u8) -> StateKey {
    StateKey::from_bytes([byte; 32])
}

fn sealed(store: SeaOrmSessionStore, encryption: StateEncryption) -> SeaOrmSessionStore {
    store
        .with_subject_key("user_id")
        .with_state_encryption(encryption)
}

/// The stored state of `id`, as the table holds it.
async fn stored_state(db: &TestDb, id: &SessionId) -> Option<Vec<u8>> {
    sessions::Entity::find_by_id(key(id))
        .one(&db.db)
        .await
        .unwrap()
        .map(|row| row.state)
}

async fn set_stored_state(db: &TestDb, id: &SessionId, state: Vec<u8>) {
    let done = sessions::Entity::update_many()
        .col_expr(sessions::Column::State, Expr::val(state))
        .filter(sessions::Column::Id.eq(key(id)))
        .exec(&db.db)
        .await
        .unwrap();
    assert_eq!(done.rows_affected, 1);
}

fn unreadable(e: &LoadError) -> Option<UnreadableState> {
    match e {
        LoadError::DeserializationError(e) => e.downcast_ref::<UnreadableState>().copied(),
        _ => None,
    }
}

/// The stored key id of a sealed state: bytes 1 to 4.
fn key_id(stored: &[u8]) -> u32 {
    u32::from_be_bytes(stored[1..5].try_into().unwrap())
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// Every operation works on sealed states, on every node of a cluster; the table never holds
/// the state's text (nor its JSON), and the device list opens the states it shows.
async fn every_operation_works_on_sealed_states(backend: Backend) {
    let (db, _) = common::store_on(backend).await;
    let stores: Vec<_> = stores_on_every_node(&db)
        .into_iter()
        .map(|store| sealed(store, StateEncryption::new(1, key_of(7))))
        .collect();
    let (first, last) = (&stores[0], &stores[stores.len() - 1]);
    let id = SessionId::random();
    let s = state(json!({"user_id": "3", "card": SECRET}));
    first.create(&id, record(&s)).await.unwrap();
    assert_eq!(last.load(&id).await.unwrap().unwrap().state, s);
    let stored = stored_state(&db, &id).await.unwrap();
    assert_eq!((stored[0], key_id(&stored)), (1, 1));
    assert!(!contains(&stored, SECRET) && !contains(&stored, "card"));

    let updated = state(json!({"user_id": "3", "card": SECRET, "step": 2}));
    last.update(&id, record(&updated)).await.unwrap();
    first.update_ttl(&id, HOUR * 2).await.unwrap();
    assert_eq!(first.load(&id).await.unwrap().unwrap().state, updated);
    let renamed = SessionId::random();
    last.change_id(&id, &renamed).await.unwrap();
    assert!(first.load(&id).await.unwrap().is_none());
    let loaded = first.load(&renamed).await.unwrap().unwrap();
    assert_eq!(loaded.state, updated);
    assert!(loaded.ttl > HOUR, "change_id keeps the deadline");
    // `change_id`'s errors are the contract's.
    let other = SessionId::random();
    first.create(&other, record(&s)).await.unwrap();
    assert!(matches!(
        first.change_id(&renamed, &other).await,
        Err(ChangeIdError::DuplicateId(_))
    ));
    assert!(matches!(
        first.change_id(&renamed, &renamed).await,
        Err(ChangeIdError::DuplicateId(_))
    ));
    assert!(matches!(
        first.change_id(&id, &SessionId::random()).await,
        Err(ChangeIdError::UnknownId(_))
    ));
    let list = last.sessions_of("3").await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        list.iter()
            .all(|session| session.state["card"] == json!(SECRET))
    );
    assert!(
        list.iter()
            .any(|session| session.handle == SessionHandle::of(&renamed))
    );

    for row in common::all_rows(&db).await {
        assert!(!contains(&row, SECRET), "a state value in the table");
    }
    first.delete(&renamed).await.unwrap();
    assert!(stored_state(&db, &renamed).await.is_none());
}

/// An expired sealed session is absent to every operation, as a plain one is: `load` (whose
/// statement returns expired rows too, for the store to drop) and the sealed rename, which reads
/// the state through the same statement, both see it gone.
async fn an_expired_sealed_session_is_absent(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let store = sealed(store, StateEncryption::new(1, key_of(7)));
    let s = state(json!({"user_id": "3", "card": SECRET}));
    let id = SessionId::random();
    store.create(&id, record(&s)).await.unwrap();
    common::expire(&db, &id).await;
    assert!(store.load(&id).await.unwrap().is_none());
    for new in [SessionId::random(), id] {
        let renamed = store.change_id(&id, &new).await;
        assert!(
            matches!(renamed, Err(ChangeIdError::UnknownId(_))),
            "{renamed:?}"
        );
    }
    assert!(store.update_ttl(&id, HOUR).await.is_err());
    // Still stored, untouched, for the clean-up to collect.
    assert!(stored_state(&db, &id).await.is_some());
    assert_eq!(store.delete_expired(None).await.unwrap(), 1);
}

/// A rename racing writes of the same session loses none of them: whichever order they take,
/// the session ends up under the new id with a state that opens and is one that was written.
async fn a_rename_racing_updates_keeps_a_readable_state(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let store = sealed(store, StateEncryption::new(1, key_of(7)));
    for round in 0..10 {
        let id = SessionId::random();
        store
            .create(&id, record(&state(json!({"round": round, "write": -1}))))
            .await
            .unwrap();
        let renamed = SessionId::random();
        let writes = (0..4).map(|i| {
            let (store, id) = (store.clone(), id);
            async move {
                let s = state(json!({"round": round, "write": i}));
                store.update(&id, record(&s)).await.is_ok()
            }
        });
        let (rename, _) = futures::join!(
            store.change_id(&id, &renamed),
            futures::future::join_all(writes)
        );
        rename.unwrap();
        let loaded = store.load(&renamed).await.unwrap().unwrap();
        assert_eq!(loaded.state["round"], json!(round));
        assert!(store.load(&id).await.unwrap().is_none());
    }
    drop(db);
}

/// Rotation: a store whose newest key is 2 opens states sealed with key 1 and seals them with 2
/// when written; a store that no longer has key 1 refuses the old states with `UnknownKey` and
/// deletes nothing.
async fn a_rotated_key_ring_opens_old_states_and_moves_them(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let old = sealed(store.clone(), StateEncryption::new(1, key_of(1)));
    let rotated = sealed(
        store.clone(),
        StateEncryption::new(2, key_of(2)).with_previous_key(1, key_of(1)),
    );
    let only_new = sealed(store, StateEncryption::new(2, key_of(2)));
    let (a, b) = (SessionId::random(), SessionId::random());
    let s = state(json!({"user_id": "4", "card": SECRET}));
    old.create(&a, record(&s)).await.unwrap();
    old.create(&b, record(&s)).await.unwrap();

    assert_eq!(rotated.load(&a).await.unwrap().unwrap().state, s);
    rotated.update_ttl(&a, HOUR).await.unwrap();
    assert_eq!(
        key_id(&stored_state(&db, &a).await.unwrap()),
        1,
        "a TTL write keeps the seal"
    );
    rotated.update(&a, record(&s)).await.unwrap();
    assert_eq!(key_id(&stored_state(&db, &a).await.unwrap()), 2);
    assert_eq!(only_new.load(&a).await.unwrap().unwrap().state, s);

    let e = only_new.load(&b).await.unwrap_err();
    assert_eq!(
        unreadable(&e),
        Some(UnreadableState::UnknownKey { key_id: 1 }),
        "{e:?}"
    );
    assert!(stored_state(&db, &b).await.is_some(), "the row is kept");
    assert_eq!(rotated.load(&b).await.unwrap().unwrap().state, s);
}

/// Altered bytes, a state copied from another session, a plaintext state and bytes in no known
/// format are each a typed error on `load` (never a panic, never an empty session) and the row
/// stays as it was. Plaintext is read when accepted, and sealed at the next write.
async fn a_state_that_does_not_open_is_a_typed_error_and_is_kept(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let plain = store.clone().with_subject_key("user_id");
    let store = sealed(store, StateEncryption::new(1, key_of(9)));
    let s = state(json!({"user_id": "5", "card": SECRET}));
    let [a, b, c, d] = [(); 4].map(|()| SessionId::random());
    for id in [&a, &b, &c] {
        store.create(id, record(&s)).await.unwrap();
    }
    plain.create(&d, record(&s)).await.unwrap();

    // One bit flipped in the ciphertext.
    let mut altered = stored_state(&db, &a).await.unwrap();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    set_stored_state(&db, &a, altered.clone()).await;
    // B's state copied onto C.
    set_stored_state(&db, &c, stored_state(&db, &b).await.unwrap()).await;
    for id in [&a, &c] {
        let e = store.load(id).await.unwrap_err();
        assert_eq!(unreadable(&e), Some(UnreadableState::Tampered), "{e:?}");
    }
    assert_eq!(
        stored_state(&db, &a).await.unwrap(),
        altered,
        "kept as it was"
    );
    let e = store.load(&d).await.unwrap_err();
    assert_eq!(unreadable(&e), Some(UnreadableState::NotSealed), "{e:?}");
    set_stored_state(&db, &b, b"\x07not a state".to_vec()).await;
    let e = store.load(&b).await.unwrap_err();
    assert_eq!(
        unreadable(&e),
        Some(UnreadableState::UnknownFormat),
        "{e:?}"
    );
    set_stored_state(&db, &b, vec![1, 0, 0]).await;
    let e = store.load(&b).await.unwrap_err();
    assert_eq!(
        unreadable(&e),
        Some(UnreadableState::UnknownFormat),
        "{e:?}"
    );
    // A rename of an unreadable session fails and changes nothing.
    assert!(matches!(
        store.change_id(&a, &SessionId::random()).await,
        Err(ChangeIdError::Other(_))
    ));
    assert_eq!(stored_state(&db, &a).await.unwrap(), altered);
    assert_eq!(common::all_rows(&db).await.len(), 4, "nothing deleted");

    // Turning encryption on in a fleet: first every instance opens sealed states but writes
    // plaintext (an instance without encryption reads what it writes)...
    let first_step = sealed(
        SeaOrmSessionStore::new(db.store_connection()),
        StateEncryption::new(1, key_of(9)).writing_plaintext(),
    );
    assert_eq!(first_step.load(&d).await.unwrap().unwrap().state, s);
    first_step.update(&d, record(&s)).await.unwrap();
    assert_eq!(stored_state(&db, &d).await.unwrap()[0], b'{');
    assert_eq!(plain.load(&d).await.unwrap().unwrap().state, s);
    let sealed_earlier = SessionId::random();
    store.create(&sealed_earlier, record(&s)).await.unwrap();
    assert_eq!(
        first_step
            .load(&sealed_earlier)
            .await
            .unwrap()
            .unwrap()
            .state,
        s
    );
    // ...then every instance seals, still accepting plaintext.
    let migrating = sealed(
        SeaOrmSessionStore::new(db.store_connection()),
        StateEncryption::new(1, key_of(9)).accepting_plaintext(),
    );
    assert_eq!(migrating.load(&d).await.unwrap().unwrap().state, s);
    migrating.update(&d, record(&s)).await.unwrap();
    let stored = stored_state(&db, &d).await.unwrap();
    assert_eq!(stored[0], 1, "sealed at the next write");
    assert_eq!(store.load(&d).await.unwrap().unwrap().state, s);
}

on_every_backend!(and_galera:
    every_operation_works_on_sealed_states,
    an_expired_sealed_session_is_absent,
    a_rename_racing_updates_keeps_a_readable_state,
    a_rotated_key_ring_opens_old_states_and_moves_them,
    a_state_that_does_not_open_is_a_typed_error_and_is_kept,
);
