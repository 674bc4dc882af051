//! Ending sessions in bulk (OWASP ASVS 7.4.5, 7.4.2): `end_all_sessions` and
//! `end_sessions_created_before`, in batches smaller than the table, with a session renamed
//! behind the walk, revoked sign-ins and the audit trail, on every backend and the cluster.

mod common;

use common::{
    Backend, TestDb,
    audit::Audit,
    plans::{full_scans, most_rows_read_by_a_step, plan},
    record, state,
};
use pavex_session::{
    SessionId,
    store::{SessionStorageBackend, errors::CreateError},
};
use pavex_session_sea_orm::{BulkEndProgress, SeaOrmSessionStore, SessionHandle};
use serde_json::{Value, json};
use std::{
    collections::{BTreeMap, HashSet},
    future::Future,
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};
use tracing::instrument::WithSubscriber as _;

fn batch(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).expect("not zero")
}

/// A migrated store that indexes `user_id` and names sign-ins by `sign_in_id`.
async fn store(backend: Backend) -> (TestDb, SeaOrmSessionStore) {
    common::audit::always_interested();
    let (db, store) = common::store_on(backend).await;
    (
        db,
        store
            .with_subject_key("user_id")
            .with_sign_in_key("sign_in_id"),
    )
}

/// A new session with state `value`.
async fn session(store: &SeaOrmSessionStore, value: Value) -> SessionId {
    let id = SessionId::random();
    store.create(&id, record(&state(value))).await.unwrap();
    id
}

/// A signed-in session of `user`, with a sign-in of its own.
async fn signed_in(store: &SeaOrmSessionStore, user: u32) -> SessionId {
    session(
        store,
        json!({"user_id": user, "sign_in_id": format!("s-{}", uuid::Uuid::new_v4())}),
    )
    .await
}

/// A session without a subject.
async fn anonymous(store: &SeaOrmSessionStore) -> SessionId {
    session(store, json!({"cart": [1, 2]})).await
}

async fn is_live(store: &SeaOrmSessionStore, id: &SessionId) -> bool {
    store.load(id).await.unwrap().is_some()
}

/// How many rows the `sessions` table holds, live or not, read by the test's own connection.
async fn rows(db: &TestDb) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let count = Statement::from_string(db.db_backend(), "SELECT COUNT(*) AS n FROM sessions");
    let row = db.db.query_one_raw(count).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

async fn instant_now(db: &TestDb) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(db.db_now_millis().await).unwrap()
}

/// After a breach: every live session (of any subject, anonymous too) ends, the count is what
/// left the table, and expired records are neither counted nor touched.
async fn ending_every_session_ends_every_live_one_and_counts_them(backend: Backend) {
    let (db, store) = store(backend).await;
    let mut live = Vec::new();
    for user in 0..6 {
        live.push(signed_in(&store, user % 3).await);
    }
    for _ in 0..4 {
        live.push(anonymous(&store).await);
    }
    let expired = anonymous(&store).await;
    common::expire(&db, &expired).await;
    let before = rows(&db).await;

    let ended = store.end_all_sessions(batch(1_000), |_| {}).await.unwrap();
    assert_eq!(ended, 10);
    assert_eq!(
        before - rows(&db).await,
        10,
        "the count is what was deleted"
    );
    for id in &live {
        assert!(!is_live(&store, id).await);
    }
    assert_eq!(
        rows(&db).await,
        1,
        "the expired record is left to the cleaner"
    );
    assert_eq!(store.count_sessions_of("1").await.unwrap(), 0);

    let after = anonymous(&store).await;
    assert_eq!(store.end_all_sessions(batch(3), |_| {}).await.unwrap(), 1);
    assert!(!is_live(&store, &after).await);
    assert_eq!(store.end_all_sessions(batch(3), |_| {}).await.unwrap(), 0);
}

/// Every session created before the instant ends, of every subject and anonymous ones too; the
/// ones created at or after it stay.
async fn ending_the_sessions_created_before_an_instant_keeps_the_newer_ones(backend: Backend) {
    let (db, store) = store(backend).await;
    let mut old = Vec::new();
    for user in 0..5 {
        old.push(signed_in(&store, user).await);
    }
    for _ in 0..3 {
        old.push(anonymous(&store).await);
    }
    db.next_millisecond().await;
    let instant = instant_now(&db).await;
    db.next_millisecond().await;
    let mut new = Vec::new();
    for user in 0..4 {
        new.push(signed_in(&store, user).await);
    }
    for _ in 0..3 {
        new.push(anonymous(&store).await);
    }
    let before = rows(&db).await;

    let ended = store
        .end_sessions_created_before(instant, batch(3), |_| {})
        .await
        .unwrap();
    assert_eq!(ended, 8);
    assert_eq!(before - rows(&db).await, 8);
    for id in &old {
        assert!(!is_live(&store, id).await, "created before the instant");
    }
    for id in &new {
        assert!(is_live(&store, id).await, "created after the instant");
    }
    assert_eq!(store.count_sessions_of("2").await.unwrap(), 1);
    assert_eq!(
        store
            .end_sessions_created_before(instant, batch(3), |_| {})
            .await
            .unwrap(),
        0
    );
    // Long ago: nothing.
    assert_eq!(
        store
            .end_sessions_created_before(chrono::DateTime::UNIX_EPOCH, batch(2), |_| {})
            .await
            .unwrap(),
        0
    );
    assert_eq!(rows(&db).await, 7);
}

/// 25 sessions in batches of 4: seven batches walk the table with growing progress, then one
/// sweep ends nothing and stops the run.
async fn small_batches_walk_the_whole_table_with_growing_progress(backend: Backend) {
    let (db, store) = store(backend).await;
    for n in 0..25 {
        match n % 2 {
            0 => signed_in(&store, n).await,
            _ => anonymous(&store).await,
        };
    }
    let mut seen: Vec<BulkEndProgress> = Vec::new();
    let ended = store
        .end_all_sessions(batch(4), |progress| seen.push(*progress))
        .await
        .unwrap();
    assert_eq!(ended, 25);
    assert_eq!(rows(&db).await, 0);

    let walk: Vec<_> = seen.iter().filter(|p| p.pass == 1).collect();
    assert_eq!(walk.len(), 7, "ceil(25 / 4) batches: {seen:#?}");
    for pair in walk.windows(2) {
        assert!(pair[1].walked > pair[0].walked, "{seen:#?}");
        assert!(pair[1].ended >= pair[0].ended);
        assert_eq!(pair[1].batches, pair[0].batches + 1);
    }
    assert!(walk.iter().all(|p| (0.0..=1.0).contains(&p.walked)));
    assert!(walk[0].walked > 0.0 && walk[0].walked < 1.0, "{seen:#?}");
    assert_eq!(walk[0].ended, 4);
    let last = walk.last().unwrap();
    assert_eq!((last.walked, last.ended, last.batches), (1.0, 25, 7));
    // The sweep: one empty batch, which ends the run.
    let sweep: Vec<_> = seen.iter().filter(|p| p.pass == 2).collect();
    assert_eq!(sweep.len(), 1, "{seen:#?}");
    assert_eq!(
        (sweep[0].ended, sweep[0].batches, sweep[0].walked),
        (25, 8, 1.0)
    );
    assert_eq!(seen.len(), 8);
}

/// A session renamed (`change_id`) during the walk, from ahead of the cursor to behind it, is
/// still ended, by the sweep, and audited under its new handle; a session created after the
/// call began stays. The rename runs while the walk waits in `on_batch`, after its first batch,
/// so the walk alone would miss the session.
async fn a_session_renamed_behind_the_cursor_is_still_ended(backend: Backend) {
    let (db, store) = store(backend).await;
    let mut ids = Vec::new();
    for n in 0..25 {
        ids.push(signed_in(&store, n).await);
    }
    ids.sort_by_key(|id| SessionHandle::of(id).as_bytes().to_vec());
    let (first, last) = (SessionHandle::of(&ids[0]), ids[24]);
    // A new id that sorts before every row: behind the cursor once a batch has run.
    let renamed = loop {
        let id = SessionId::random();
        if SessionHandle::of(&id).as_bytes() < first.as_bytes() {
            break id;
        }
    };
    let fresh = SessionId::random();

    let (go, went) = tokio::sync::oneshot::channel::<()>();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let helper = {
        let (store, clock) = (store.clone(), db.db.clone());
        tokio::spawn(async move {
            went.await.expect("the walk's first batch");
            store.change_id(&last, &renamed).await.expect("rename");
            // Created after the call began, in a later millisecond than its start.
            common::next_millisecond(&clock).await;
            let s = state(json!({"user_id": 99, "sign_in_id": "later"}));
            store.create(&fresh, record(&s)).await.expect("create");
            done.send(()).expect("the walk waits");
        })
    };
    let mut go = Some(go);
    let mut seen: Vec<BulkEndProgress> = Vec::new();
    let (ended, events) = audited(store.end_all_sessions(batch(4), |progress| {
        seen.push(*progress);
        if let Some(go) = go.take() {
            go.send(()).expect("the helper waits");
            // The walk stops here until the session is renamed and the new one created.
            finished.recv().expect("the helper is done");
        }
    }))
    .await;
    helper.await.unwrap();
    let ended = ended.unwrap();

    assert_eq!(ended, 25, "{seen:#?}");
    assert!(!is_live(&store, &renamed).await, "the sweep ended it");
    assert!(!is_live(&store, &last).await);
    assert!(
        is_live(&store, &fresh).await,
        "created after the call began"
    );
    assert_eq!(rows(&db).await, 1);
    let swept: u64 = seen
        .iter()
        .filter(|p| p.pass == 2)
        .map(|p| p.ended)
        .max()
        .unwrap();
    let walked = seen.iter().filter(|p| p.pass == 1).map(|p| p.ended).max();
    assert_eq!((walked, swept), (Some(24), 25), "{seen:#?}");
    assert_eq!(
        seen.last().unwrap().pass,
        3,
        "a last sweep that ends nothing"
    );
    let handles: HashSet<String> = events.iter().map(|e| e["handle"].clone()).collect();
    assert!(
        handles.contains(&SessionHandle::of(&renamed).to_string()),
        "{events:#?}\n{seen:#?}"
    );
    assert!(!handles.contains(&SessionHandle::of(&last).to_string()));
    assert!(!handles.contains(&SessionHandle::of(&fresh).to_string()));
    assert_eq!(events.len(), 25);
}

/// With a sign-in key, a sign-in ended in bulk cannot come back under a new id: `create` of a
/// session that carries it is refused with `SignedOut`; another sign-in is created.
async fn an_ended_sign_in_cannot_come_back(backend: Backend) {
    let (db, store) = store(backend).await;
    let mut states = Vec::new();
    for user in 0..6 {
        let s = state(json!({"user_id": user, "sign_in_id": format!("s-{user}")}));
        store
            .create(&SessionId::random(), record(&s))
            .await
            .unwrap();
        states.push(s);
    }
    anonymous(&store).await;
    db.next_millisecond().await;
    let instant = instant_now(&db).await;
    db.next_millisecond().await;
    let kept = state(json!({"user_id": 0, "sign_in_id": "s-new"}));
    let kept_id = SessionId::random();
    store.create(&kept_id, record(&kept)).await.unwrap();

    let ended = store
        .end_sessions_created_before(instant, batch(2), |_| {})
        .await
        .unwrap();
    assert_eq!(ended, 7);
    for s in &states {
        let again = store.create(&SessionId::random(), record(s)).await;
        let Err(CreateError::Other(e)) = &again else {
            panic!("an ended sign-in is refused: {again:?}");
        };
        assert!(e.is::<pavex_session_sea_orm::SignedOut>(), "{e:?}");
    }
    assert!(is_live(&store, &kept_id).await, "created after the instant");
    let other = state(json!({"user_id": 3, "sign_in_id": "s-3-again"}));
    store
        .create(&SessionId::random(), record(&other))
        .await
        .expect("a new sign-in of the same user");
    // `end_all_sessions` revokes too.
    store.end_all_sessions(batch(1), |_| {}).await.unwrap();
    let again = store.create(&SessionId::random(), record(&kept)).await;
    assert!(
        matches!(&again, Err(CreateError::Other(e)) if e.is::<pavex_session_sea_orm::SignedOut>()),
        "{again:?}"
    );
}

/// One audit event per ended session, reason `ended_in_bulk`, naming it by its handle (and its
/// subject), never by its id.
async fn the_audit_trail_names_each_ended_session_by_its_handle(backend: Backend) {
    let (db, store) = store(backend).await;
    let mut ended_ids = Vec::new();
    for user in 0..5 {
        ended_ids.push((signed_in(&store, user).await, Some(user.to_string())));
    }
    for _ in 0..3 {
        ended_ids.push((anonymous(&store).await, None));
    }
    db.next_millisecond().await;
    let instant = instant_now(&db).await;
    db.next_millisecond().await;
    let kept = signed_in(&store, 42).await;

    let (ended, events) =
        audited(store.end_sessions_created_before(instant, batch(3), |_| {})).await;
    assert_eq!(ended.unwrap(), 8);
    assert_eq!(events.len(), 8, "{events:#?}");
    let expected: HashSet<(String, Option<String>)> = ended_ids
        .iter()
        .map(|(id, user)| (SessionHandle::of(id).to_string(), user.clone()))
        .collect();
    let got: HashSet<(String, Option<String>)> = events
        .iter()
        .map(|e| (e["handle"].clone(), e.get("subject").cloned()))
        .collect();
    assert_eq!(got, expected);
    for event in &events {
        assert_eq!(event["reason"], "ended_in_bulk");
        let text = format!("{event:?}").to_lowercase();
        for (id, _) in &ended_ids {
            let uuid = id.inner();
            assert!(!text.contains(&uuid.simple().to_string()), "{text}");
            assert!(!text.contains(&uuid.to_string()), "{text}");
        }
    }
    assert!(
        !got.iter()
            .any(|(handle, _)| *handle == SessionHandle::of(&kept).to_string())
    );
}

/// Each batch costs O(batch), also when few sessions match (the walk goes through the primary
/// key by chunks, not through the matching rows): on a table of 4 000 rows of which one in 20
/// was created before the instant, in batches of 100, a chunk's `SELECT` reads at most about a
/// batch of rows (PostgreSQL, MariaDB: measured with `EXPLAIN ANALYZE` / `ANALYZE`), and the
/// revocation's `INSERT` and the `DELETE` reach their rows by primary key, never by a scan.
async fn each_batch_reads_a_batch_of_rows(backend: Backend) {
    use pavex_session_sea_orm::entity::sessions;
    use sea_orm::{DbBackend, Statement};
    const ROWS: usize = 4_000;
    const OLD_EVERY: usize = 20;
    const BATCH: usize = 100;
    let (db, store) = store(backend).await;
    let now = db.db_now_millis().await;
    let day = 86_400_000;
    let models: Vec<_> = (0..ROWS)
        .map(|i| {
            let old = i % OLD_EVERY == 0;
            let created = if old { now - 10 * day } else { now };
            sessions::ActiveModel {
                id: sea_orm::Set(common::key(&SessionId::random())),
                deadline: sea_orm::Set(common::millis(now + 3_600_000)),
                state: sea_orm::Set(b"{}".to_vec()),
                subject: sea_orm::Set(Some(format!("user-{i}").into_bytes())),
                sign_in: sea_orm::Set(old.then(|| format!("s-{i}").into_bytes())),
                created_at: sea_orm::Set(common::millis(created)),
                updated_at: sea_orm::Set(common::millis(created)),
            }
        })
        .collect();
    common::insert_and_analyze(&db, models).await;

    let captured = Arc::new(Mutex::new(Vec::<Statement>::new()));
    let sink = captured.clone();
    let store = store.with_metric_callback(move |info: &sea_orm::metric::Info<'_>| {
        sink.lock().unwrap().push(info.statement.clone())
    });
    let instant = chrono::DateTime::from_timestamp_millis(now - day).unwrap();
    let mut batches = 0;
    let ended = store
        .end_sessions_created_before(instant, batch(BATCH), |p| batches = p.batches)
        .await
        .unwrap();
    assert_eq!(ended, (ROWS / OLD_EVERY) as u64);
    // The walk: 40 full chunks and an empty one; the sweep: 38 full chunks (what is left) and an
    // empty one.
    let left = ROWS - ROWS / OLD_EVERY;
    assert_eq!(batches, (ROWS / BATCH + 1 + left / BATCH + 1) as u64);
    let ran = std::mem::take(&mut *captured.lock().unwrap());
    let of_kind = |prefix: &str| -> Vec<Statement> {
        ran.iter()
            .filter(|s| s.sql.starts_with(prefix))
            .cloned()
            .collect()
    };
    let (selects, inserts, deletes) = (of_kind("SELECT"), of_kind("INSERT"), of_kind("DELETE"));
    // One revocation and one `DELETE` per chunk that has old sessions (ids are random: a chunk
    // may have none), none in the sweep.
    assert_eq!(inserts.len(), deletes.len());
    assert!((ROWS / BATCH / 2..=ROWS / BATCH).contains(&deletes.len()));
    // A chunk in the middle of the walk (its sessions are still there, but for the old ones).
    let chunk = &selects[ROWS / BATCH / 2];
    assert!(chunk.sql.contains("ORDER BY"), "{}", chunk.sql);
    for statement in [chunk, &inserts[0], &deletes[0]] {
        let plan = plan(&db, statement).await;
        let scans = full_scans(db.db_backend(), &plan);
        assert!(scans.is_empty(), "{}:\n{}", statement.sql, plan.join("\n"));
    }
    if db.db_backend() == DbBackend::Postgres || db.db_backend() == DbBackend::MySql {
        let (most, plan) = most_rows_read_by_a_step(&db, chunk).await;
        assert!(
            most <= 2 * BATCH as u64,
            "a step read {most} rows for a chunk of {BATCH} among {ROWS}: {plan}"
        );
    }
}

/// The audit events (target `AUDIT_TARGET`) emitted while `run` runs, as their fields.
async fn audited<T>(run: impl Future<Output = T>) -> (T, Vec<BTreeMap<String, String>>) {
    let audit = Audit::default();
    let outcome = run.with_subscriber(audit.subscriber()).await;
    (outcome, audit.events())
}

on_every_backend!(and_galera:
    ending_every_session_ends_every_live_one_and_counts_them,
    ending_the_sessions_created_before_an_instant_keeps_the_newer_ones,
    small_batches_walk_the_whole_table_with_growing_progress,
    a_session_renamed_behind_the_cursor_is_still_ended,
    an_ended_sign_in_cannot_come_back,
    the_audit_trail_names_each_ended_session_by_its_handle,
    each_batch_reads_a_batch_of_rows,
);
