//! Who is signed in where: the subject column, the device list, ending sessions one by one or all
//! at once (also racing writes, on the cluster too), and ids hashed at rest.

mod common;

use common::{Backend, HOUR, TestDb, audit::Audit, record, state, stores_on_every_node};
use pavex_session::{
    SessionId,
    store::{
        SessionStorageBackend,
        errors::{CreateError, UpdateError},
    },
};
use pavex_session_sea_orm::{SeaOrmSessionStore, SessionHandle};
use serde_json::{Value, json};
use tracing::instrument::WithSubscriber as _;

/// A migrated store that indexes `user_id`, on a fresh database.
async fn subject_store(backend: Backend) -> (TestDb, SeaOrmSessionStore) {
    let (db, store) = common::store_on(backend).await;
    (db, store.with_subject_key("user_id"))
}

async fn sign_in(store: &SeaOrmSessionStore, user: Value, device: &str) -> SessionId {
    let id = SessionId::random();
    let s = state(json!({"user_id": user, "device": device}));
    store.create(&id, record(&s)).await.unwrap();
    id
}

async fn the_device_list_shows_a_subjects_live_sessions(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let before = db.db_now_millis().await;
    let laptop = sign_in(&store, json!(7), "laptop").await;
    // The phone signs in later, so it comes first: in a later millisecond than the laptop
    // (the clock's precision), else the two tie and the order is by handle.
    db.next_millisecond().await;
    let phone = sign_in(&store, json!(7), "phone").await;
    let other = sign_in(&store, json!("7x"), "elsewhere").await;
    let anonymous = SessionId::random();
    store
        .create(&anonymous, record(&state(json!({"cart": [1]}))))
        .await
        .unwrap();
    let s = state(json!({"user_id": 7, "device": "phone", "seen": 2}));
    store.update(&phone, record(&s)).await.unwrap();
    let after = db.db_now_millis().await;

    let list = store.sessions_of("7").await.unwrap();
    let handles: Vec<_> = list.iter().map(|s| s.handle).collect();
    assert_eq!(
        handles,
        vec![SessionHandle::of(&phone), SessionHandle::of(&laptop)]
    );
    assert_eq!(list[0].state["seen"], json!(2));
    assert_eq!(list[1].state["device"], json!("laptop"));
    for session in &list {
        let (created, updated, expires) = (
            session.created_at.timestamp_millis(),
            session.updated_at.timestamp_millis(),
            session.expires_at.timestamp_millis(),
        );
        assert!((before..=after).contains(&created), "{session:?}");
        assert!(created <= updated && updated <= after, "{session:?}");
        let hour = HOUR.as_millis() as i64;
        assert!((updated + hour - 5..=updated + hour + 5).contains(&expires));
    }
    assert!(list[0].created_at > list[1].created_at);
    assert_eq!(list.next, None, "one page");
    assert_eq!(store.count_sessions_of("7").await.unwrap(), 2);
    assert_eq!(store.count_sessions_of("7x").await.unwrap(), 1);
    assert_eq!(store.count_sessions_of("nobody").await.unwrap(), 0);
    assert!(store.sessions_of("nobody").await.unwrap().is_empty());

    // An expired session is not listed, counted or ended.
    common::expire(&db, &laptop).await;
    assert_eq!(store.count_sessions_of("7").await.unwrap(), 1);
    assert!(
        !store
            .end_session_of("7", &SessionHandle::of(&laptop))
            .await
            .unwrap()
    );
    // `update_ttl` is a write: it moves `updated_at`, not `created_at`.
    let first = store.sessions_of("7x").await.unwrap().remove(0);
    store.update_ttl(&other, HOUR * 2).await.unwrap();
    let later = store.sessions_of("7x").await.unwrap().remove(0);
    assert_eq!(later.created_at, first.created_at);
    assert!(later.updated_at >= first.updated_at && later.expires_at > first.expires_at);
    // `change_id` keeps the session in the list, under its new handle.
    let moved = SessionId::random();
    store.change_id(&other, &moved).await.unwrap();
    let list = store.sessions_of("7x").await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].handle, SessionHandle::of(&moved));
    assert_eq!(list[0].created_at, first.created_at);
}

/// "Sign out everyone who signed in before the password change": the sessions of the subject
/// created before the instant end, the ones created since and other subjects' stay.
async fn ending_the_sessions_created_before_an_instant(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let old = sign_in(&store, json!(9), "old laptop").await;
    let other = sign_in(&store, json!(10), "someone else").await;
    db.next_millisecond().await;
    let changed_at = chrono::DateTime::from_timestamp_millis(db.db_now_millis().await).unwrap();
    db.next_millisecond().await;
    let new = sign_in(&store, json!(9), "the device that changed it").await;
    assert_eq!(
        store
            .end_sessions_of_created_before("9", changed_at)
            .await
            .unwrap(),
        1
    );
    assert!(store.load(&old).await.unwrap().is_none());
    assert!(store.load(&new).await.unwrap().is_some());
    assert!(store.load(&other).await.unwrap().is_some());
    assert_eq!(
        store
            .end_sessions_of_created_before("9", changed_at)
            .await
            .unwrap(),
        0
    );
}

/// A subject with many sessions is listed page by page: each page at most its size, newest
/// first, every session exactly once, the cursor surviving a trip through its text form.
async fn the_device_list_comes_in_pages(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let mut ids = Vec::new();
    for n in 0..23 {
        ids.push(sign_in(&store, json!("many"), &format!("device {n}")).await);
        if n % 5 == 0 {
            db.next_millisecond().await;
        }
    }
    sign_in(&store, json!("someone else"), "device").await;
    let mut seen = Vec::new();
    let mut page = store.sessions_of_after("many", 5, None).await.unwrap();
    let mut pages = 1;
    loop {
        assert!(page.len() <= 5);
        seen.extend(page.iter().map(|s| (s.created_at, s.handle)));
        let Some(next) = page.next else { break };
        let next: pavex_session_sea_orm::PageCursor = next.to_string().parse().unwrap();
        page = store
            .sessions_of_after("many", 5, Some(&next))
            .await
            .unwrap();
        pages += 1;
    }
    assert_eq!(pages, 5);
    let mut handles: Vec<_> = seen.iter().map(|(_, h)| *h).collect();
    handles.sort_by_key(|h| h.to_string());
    handles.dedup();
    assert_eq!(handles.len(), 23, "every session once");
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    // The first page of `sessions_of` is the default size; a page size of 0 means 1.
    assert_eq!(store.sessions_of("many").await.unwrap().len(), 23);
    let one = store.sessions_of_after("many", 0, None).await.unwrap();
    assert_eq!(one.len(), 1);
    assert!(one.next.is_some());
}

async fn ending_sessions_is_immediate_and_scoped_to_the_subject(backend: Backend) {
    let (_db, store) = subject_store(backend).await;
    let laptop = sign_in(&store, json!(7), "laptop").await;
    let phone = sign_in(&store, json!(7), "phone").await;
    let tablet = sign_in(&store, json!(7), "tablet").await;
    let someone_else = sign_in(&store, json!(8), "laptop").await;

    // One device, by its handle: only with the right subject.
    let handle = SessionHandle::of(&phone);
    assert!(!store.end_session_of("8", &handle).await.unwrap());
    assert!(store.load(&phone).await.unwrap().is_some());
    assert!(store.end_session_of("7", &handle).await.unwrap());
    assert!(store.load(&phone).await.unwrap().is_none());
    assert!(!store.end_session_of("7", &handle).await.unwrap());

    // Everywhere else: the current session and other subjects stay.
    assert_eq!(
        store
            .end_sessions_of("7", Some(&SessionHandle::of(&laptop)))
            .await
            .unwrap(),
        1
    );
    assert!(store.load(&tablet).await.unwrap().is_none());
    assert!(store.load(&laptop).await.unwrap().is_some());
    assert!(store.load(&someone_else).await.unwrap().is_some());
    // Everywhere.
    assert_eq!(store.end_sessions_of("7", None).await.unwrap(), 1);
    assert!(store.load(&laptop).await.unwrap().is_none());
    assert_eq!(store.count_sessions_of("8").await.unwrap(), 1);
}

async fn the_subject_follows_the_state(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({"cart": []}))))
        .await
        .unwrap();
    assert_eq!(store.count_sessions_of("7").await.unwrap(), 0);
    // Signing in writes the subject, with the state, in the same statement.
    let s = state(json!({"user_id": "7", "cart": []}));
    store.update(&id, record(&s)).await.unwrap();
    assert_eq!(store.count_sessions_of("7").await.unwrap(), 1);
    // A null subject is no subject; a number is stored as its text.
    let s = state(json!({"user_id": null}));
    store.update(&id, record(&s)).await.unwrap();
    assert_eq!(store.count_sessions_of("7").await.unwrap(), 0);
    let s = state(json!({"user_id": 12345678901234_i64}));
    store.update(&id, record(&s)).await.unwrap();
    assert_eq!(store.count_sessions_of("12345678901234").await.unwrap(), 1);

    // What cannot be a subject is refused, and nothing is written.
    let longest = "é".repeat(pavex_session_sea_orm::MAX_SUBJECT_CHARS);
    let s = state(json!({"user_id": longest}));
    store.update(&id, record(&s)).await.unwrap();
    assert_eq!(store.count_sessions_of(&longest).await.unwrap(), 1);
    for bad in [
        json!(true),
        json!([7]),
        json!({"id": 7}),
        json!("é".repeat(pavex_session_sea_orm::MAX_SUBJECT_CHARS + 1)),
        json!("a\u{0}b"),
    ] {
        let s = state(json!({"user_id": bad.clone()}));
        let refused = store.update(&id, record(&s)).await;
        assert!(
            matches!(refused, Err(UpdateError::SerializationError(_))),
            "{bad}: {refused:?}"
        );
        let refused = store.create(&SessionId::random(), record(&s)).await;
        assert!(
            matches!(refused, Err(CreateError::SerializationError(_))),
            "{bad}: {refused:?}"
        );
    }
    assert_eq!(store.count_sessions_of(&longest).await.unwrap(), 1);
    let rows = common::all_rows(&db).await;
    assert_eq!(rows.len(), 1, "no refused create was written");

    // A store without a subject key indexes nothing.
    let plain = SeaOrmSessionStore::new(db.db.clone());
    let s = state(json!({"user_id": "9"}));
    plain
        .create(&SessionId::random(), record(&s))
        .await
        .unwrap();
    assert_eq!(store.count_sessions_of("9").await.unwrap(), 0);
}

/// The table, read whole with the test's own SQL, holds no session id in any form.
async fn ids_are_hashed_at_rest(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = sign_in(&store, json!(n % 3), "device").await;
        if n % 2 == 0 {
            let new = SessionId::random();
            store.change_id(&id, &new).await.unwrap();
            ids.push(new);
        }
        ids.push(id);
    }
    let rows = common::all_rows(&db).await;
    assert_eq!(rows.len(), 20);
    let mut haystack: Vec<u8> = rows.concat();
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        // The file itself (and its journal), not only what SQL shows.
        let path = path.split('?').next().unwrap_or(path);
        for file in [path.to_owned(), format!("{path}-wal")] {
            haystack.extend(std::fs::read(file).unwrap_or_default());
        }
    }
    for id in &ids {
        let uuid = id.inner();
        let forms = [
            uuid.as_bytes().to_vec(),
            uuid.hyphenated().to_string().into_bytes(),
            uuid.simple().to_string().into_bytes(),
        ];
        for form in forms {
            assert!(
                !haystack.windows(form.len()).any(|w| w == form),
                "a raw id is stored"
            );
        }
    }
    // And every stored id is the hash of a session's id.
    let live = store.sessions_of("0").await.unwrap().len()
        + store.sessions_of("1").await.unwrap().len()
        + store.sessions_of("2").await.unwrap().len();
    assert_eq!(live, 20);
}

/// "Sign out everywhere" racing writes to the same subject's sessions never leaves an ended
/// session alive: after the race, the subject has no session, whichever went first.
async fn ending_all_racing_writes_leaves_nothing_alive(backend: Backend) {
    let (db, _store) = subject_store(backend).await;
    let stores: Vec<_> = stores_on_every_node(&db)
        .into_iter()
        .map(|s| s.with_subject_key("user_id"))
        .collect();
    let rounds = std::env::var("PSS_RACE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    for round in 0..rounds {
        let user = format!("u{round}");
        let mut ids = Vec::new();
        for device in 0..6 {
            let store = &stores[device % stores.len()];
            ids.push(sign_in(store, json!(user), "device").await);
        }
        let ender = &stores[round % stores.len()];
        let end = ender.end_sessions_of(&user, None);
        let writes = ids.iter().enumerate().map(|(i, id)| {
            let store = &stores[(i + 1) % stores.len()];
            let user = user.clone();
            async move {
                let s = state(json!({"user_id": user, "write": i}));
                match i % 3 {
                    0 => store.update(id, record(&s)).await.is_ok(),
                    1 => store.update_ttl(id, HOUR * 2).await.is_ok(),
                    _ => store.change_id(id, &SessionId::random()).await.is_ok(),
                }
            }
        });
        let (ended, _) = futures::join!(end, futures::future::join_all(writes));
        assert!(ended.unwrap() <= 6);
        for store in &stores {
            assert_eq!(
                store.count_sessions_of(&user).await.unwrap(),
                0,
                "round {round}: an ended session is alive"
            );
        }
        for id in &ids {
            assert!(stores[0].load(id).await.unwrap().is_none());
        }
    }
}

/// Every live session is found under the subject it holds, whatever ran at once: renames of a
/// signed-in session racing updates that change its subject (on MySQL the rename writes the new
/// id's subject entry first, and renames only if the subject is still the one it read), on
/// every node of a cluster, with plain and sealed states. Then its subject's sign-out ends it.
async fn a_session_is_found_under_the_subject_it_holds(backend: Backend) {
    let (db, _store) = subject_store(backend).await;
    let key = pavex_session_sea_orm::StateKey::from_bytes([3; 32]);
    let plain: Vec<_> = stores_on_every_node(&db)
        .into_iter()
        .map(|s| s.with_subject_key("user_id"))
        .collect();
    let sealed: Vec<_> = plain
        .iter()
        .map(|s| {
            let encryption = pavex_session_sea_orm::StateEncryption::new(1, key.clone());
            s.clone().with_state_encryption(encryption)
        })
        .collect();
    let rounds = std::env::var("PSS_RACE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    for (kind, stores) in [("plain", &plain), ("sealed", &sealed)] {
        for round in 0..rounds {
            let (a, b) = (format!("a{round}"), format!("b{round}"));
            let id = sign_in(&stores[0], json!(a), "device").await;
            let (renamed, again) = (SessionId::random(), SessionId::random());
            let node = |i: usize| &stores[(round + i) % stores.len()];
            let to = |user: &str| state(json!({"user_id": user, "device": "device"}));
            let (to_a, to_b) = (to(&a), to(&b));
            let _ = futures::join!(
                node(1).change_id(&id, &renamed),
                node(2).update(&id, record(&to_b)),
                node(0).update(&id, record(&to_a)),
                async {
                    let _ = node(1).update(&renamed, record(&to_b)).await;
                    node(2).change_id(&renamed, &again).await
                },
            );
            let mut alive = 0;
            for id in [&id, &renamed, &again] {
                let Some(loaded) = stores[0].load(id).await.unwrap() else {
                    continue;
                };
                alive += 1;
                let user = loaded.state["user_id"].as_str().unwrap().to_owned();
                let listed = stores[0].sessions_of(&user).await.unwrap();
                assert!(
                    listed.iter().any(|s| s.handle == SessionHandle::of(id)),
                    "{kind} round {round}: a session of {user} is not in its list"
                );
            }
            assert_eq!(alive, 1, "{kind} round {round}: one session, under one id");
            let ended = stores[0].end_sessions_of(&a, None).await.unwrap()
                + stores[0].end_sessions_of(&b, None).await.unwrap();
            assert_eq!(ended, 1, "{kind} round {round}");
            for id in [&id, &renamed, &again] {
                assert!(stores[0].load(id).await.unwrap().is_none());
            }
        }
    }
}

/// A subject's entry left behind (MySQL: a session deleted, renamed or given another subject)
/// never shows, and the clean-up deletes it once it is an hour old; on every backend the lists
/// and counts follow the sessions.
async fn stale_subject_entries_never_show_and_are_cleaned_up(backend: Backend) {
    use sea_orm::ConnectionTrait as _;
    let (db, store) = subject_store(backend).await;
    let kept = sign_in(&store, json!("ada"), "laptop").await;
    let deleted = sign_in(&store, json!("ada"), "phone").await;
    let moved = sign_in(&store, json!("ada"), "tablet").await;
    let renamed = sign_in(&store, json!("ada"), "watch").await;
    let anonymous = SessionId::random();
    store
        .create(&anonymous, record(&state(json!({}))))
        .await
        .unwrap();
    store.delete(&deleted).await.unwrap();
    let to_bob = state(json!({"user_id": "bob", "device": "tablet"}));
    store.update(&moved, record(&to_bob)).await.unwrap();
    let new_id = SessionId::random();
    store.change_id(&renamed, &new_id).await.unwrap();
    let handles = |page: pavex_session_sea_orm::SessionsPage| {
        let mut handles: Vec<_> = page.iter().map(|s| s.handle).collect();
        handles.sort_by_key(|h| h.to_string());
        handles
    };
    let mut ada = vec![SessionHandle::of(&kept), SessionHandle::of(&new_id)];
    ada.sort_by_key(|h| h.to_string());
    let entries = "SELECT COUNT(*) AS n FROM sessions_by_subject";
    let count_entries = || async {
        let row = db.db.query_one_raw(sea_orm::Statement::from_string(
            db.db_backend(),
            entries.to_owned(),
        ));
        row.await.unwrap().unwrap().try_get::<i64>("", "n").unwrap()
    };
    let mysql = db.db_backend() == sea_orm::DbBackend::MySql;
    // Six entries: four sign-ins, a change of subject and a rename; three are stale now.
    if mysql {
        assert_eq!(count_entries().await, 6);
    }
    let cleaner = pavex_session_sea_orm::ExpiredSessionCleaner::new(store.clone());
    for aged in [false, true] {
        if aged {
            // As if written two hours ago.
            let sql = "UPDATE sessions_by_subject SET written_at = written_at - 7200000";
            if mysql {
                db.db.execute_unprepared(sql).await.unwrap();
            }
        }
        cleaner.drain(|_| {}).await.unwrap();
        assert_eq!(handles(store.sessions_of("ada").await.unwrap()), ada);
        assert_eq!(store.count_sessions_of("ada").await.unwrap(), 2);
        assert_eq!(
            handles(store.sessions_of("bob").await.unwrap()),
            [SessionHandle::of(&moved)]
        );
        if mysql {
            // Young stale entries stay (a write may be about to use them); old ones go.
            assert_eq!(count_entries().await, if aged { 3 } else { 6 });
        }
    }
    assert_eq!(store.end_sessions_of("ada", None).await.unwrap(), 2);
    assert_eq!(store.end_sessions_of("bob", None).await.unwrap(), 1);
    assert!(store.load(&anonymous).await.unwrap().is_some());
}

/// Subjects compare byte for byte on every backend: case, accents, trailing spaces (MariaDB's
/// default collations call all of these equal) and the longest subject.
async fn subjects_compare_exactly(backend: Backend) {
    let (_db, store) = subject_store(backend).await;
    let longest = "é".repeat(255);
    let users = [
        "abc", "ABC", "Abc", "ábc", "abc ", " abc", "abc\t", "ss", "ß", &longest,
    ];
    let mut ids = Vec::new();
    for user in users {
        ids.push(sign_in(&store, json!(user), "device").await);
    }
    for (user, id) in users.iter().zip(&ids) {
        let listed = store.sessions_of(user).await.unwrap();
        assert_eq!(listed.len(), 1, "{user:?} sees only its own session");
        assert_eq!(listed[0].handle, SessionHandle::of(id), "{user:?}");
        assert_eq!(store.count_sessions_of(user).await.unwrap(), 1, "{user:?}");
    }
    assert!(
        store
            .sessions_of(&"é".repeat(254))
            .await
            .unwrap()
            .is_empty()
    );
    // Ending "abc" everywhere ends no one else's session.
    assert_eq!(store.end_sessions_of("abc", None).await.unwrap(), 1);
    assert!(store.load(&ids[0]).await.unwrap().is_none());
    for id in &ids[1..] {
        assert!(store.load(id).await.unwrap().is_some());
    }
    // A handle of "ABC" cannot be ended as "abc ".
    assert!(
        !store
            .end_session_of("abc ", &SessionHandle::of(&ids[1]))
            .await
            .unwrap()
    );
    assert!(store.load(&ids[1]).await.unwrap().is_some());
}

/// A store that does not know the subject key (a second service, the CLI, the default store of
/// `from![pavex_session_sea_orm]`) leaves the subject as it is on every write but `create`, so
/// the session stays in "sign out everywhere".
async fn a_store_without_the_key_leaves_the_subject_alone(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let id = sign_in(&store, json!(42), "laptop").await;
    let other = SeaOrmSessionStore::new(db.store_connection());
    other
        .update(&id, record(&state(json!({"user_id": 42, "theme": "dark"}))))
        .await
        .unwrap();
    other.update_ttl(&id, HOUR).await.unwrap();
    let renamed = SessionId::random();
    other.change_id(&id, &renamed).await.unwrap();
    assert_eq!(store.count_sessions_of("42").await.unwrap(), 1);
    assert_eq!(store.end_sessions_of("42", None).await.unwrap(), 1);
    assert!(other.load(&renamed).await.unwrap().is_none());
    // The store that knows the key clears the subject when the key leaves the state.
    let id = sign_in(&store, json!(43), "phone").await;
    store
        .update(&id, record(&state(json!({"cart": 1}))))
        .await
        .unwrap();
    assert_eq!(store.count_sessions_of("43").await.unwrap(), 0);
}

/// Only the primary key's violation is `DuplicateId`: an application's own unique index on the
/// table refuses a write as `Other`, naming the index.
async fn another_unique_index_is_not_a_taken_id(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let unique = "CREATE UNIQUE INDEX app_one_session_per_user ON sessions (subject)";
    db.run(unique, vec![]).await;
    sign_in(&store, json!(1), "laptop").await;
    let second = SessionId::random();
    let created = store
        .create(&second, record(&state(json!({"user_id": 1}))))
        .await;
    match created {
        // SQLite names the index's columns, the others the index.
        Err(CreateError::Other(e)) => {
            let message = format!("{e:#}");
            assert!(
                message.contains("app_one_session_per_user")
                    || message.contains("sessions.subject"),
                "{message}"
            );
            assert!(message.contains("other than the sessions table's primary key"));
        }
        other => panic!("{other:?}"),
    }
    assert!(store.load(&second).await.unwrap().is_none());
    // A taken id is still `DuplicateId`.
    let id = sign_in(&store, json!(2), "phone").await;
    let again = store
        .create(&id, record(&state(json!({"user_id": 3}))))
        .await;
    assert!(
        matches!(again, Err(CreateError::DuplicateId(_))),
        "{again:?}"
    );
}

/// Every session ended on purpose is an audit event naming its handle, its subject and why:
/// one device signed out, everywhere else, everyone before an instant. Sessions that were not
/// ended (another subject's, the one kept) have none, and no event holds a session id.
async fn every_ended_session_is_an_audit_event(backend: Backend) {
    let (db, store) = subject_store(backend).await;
    let audit = Audit::default();
    async {
        let [a, b, c, d] = [(); 4].map(|()| SessionId::random());
        for id in [&a, &b, &c, &d] {
            let s = state(json!({"user_id": "5"}));
            store.create(id, record(&s)).await.unwrap();
        }
        let other = sign_in(&store, json!(6), "other").await;
        let handle = |id: &SessionId| SessionHandle::of(id).to_string();

        store
            .end_session_of("5", &SessionHandle::of(&a))
            .await
            .unwrap();
        assert_eq!(audit.lines(), [format!("signed_out 5 {}", handle(&a))]);

        db.next_millisecond().await;
        let instant = chrono::DateTime::from_timestamp_millis(db.db_now_millis().await).unwrap();
        db.next_millisecond().await;
        let e = sign_in(&store, json!("5"), "new").await;
        store
            .end_sessions_of_created_before("5", instant)
            .await
            .unwrap();
        let mut ended: Vec<_> = audit.lines()[1..].to_vec();
        ended.sort();
        let mut expected = [&b, &c, &d].map(|id| format!("ended_created_before 5 {}", handle(id)));
        expected.sort();
        assert_eq!(ended, expected);

        let f = sign_in(&store, json!("5"), "another").await;
        store
            .end_sessions_of("5", Some(&SessionHandle::of(&e)))
            .await
            .unwrap();
        assert_eq!(
            audit.lines()[4..],
            [format!("signed_out_everywhere 5 {}", handle(&f))]
        );
        assert_eq!(audit.lines().len(), 5);
        let ids = [&a, &b, &c, &d, &e, &f, &other].map(|id| id.inner().to_string());
        for line in audit.lines() {
            assert!(!ids.iter().any(|id| line.contains(id.as_str())), "{line}");
            assert!(
                !line.contains(&handle(&other)) && !line.contains(&handle(&e)),
                "{line}"
            );
        }
    }
    .with_subscriber(audit.subscriber())
    .await;
}

on_every_backend!(and_galera:
    every_ended_session_is_an_audit_event,
    the_device_list_shows_a_subjects_live_sessions,
    ending_sessions_is_immediate_and_scoped_to_the_subject,
    the_subject_follows_the_state,
    ids_are_hashed_at_rest,
    ending_all_racing_writes_leaves_nothing_alive,
    subjects_compare_exactly,
    the_device_list_comes_in_pages,
    ending_the_sessions_created_before_an_instant,
    a_store_without_the_key_leaves_the_subject_alone,
    another_unique_index_is_not_a_taken_id,
    a_session_is_found_under_the_subject_it_holds,
    stale_subject_entries_never_show_and_are_cleaned_up,
);
