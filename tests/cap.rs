//! The per-subject cap (OWASP ASVS 5.0, 7.1.2): at most `max` live sessions per subject, the
//! oldest ended or the write refused, also when sign-ins race, on the cluster too, with an audit
//! event for each ended or refused session.

mod common;

use common::{
    Backend, HOUR,
    audit::{Audit, StoreEvents},
    record, state,
};
use pavex_session::{
    SessionId,
    store::{
        SessionStorageBackend,
        errors::{CreateError, UpdateError},
    },
};
use pavex_session_sea_orm::{AtCap, SeaOrmSessionStore, SessionHandle, TooManySessions};
use serde_json::json;
use std::num::NonZeroU32;
use tracing::instrument::WithSubscriber as _;

fn capped(store: SeaOrmSessionStore, max: u32, at_cap: AtCap) -> SeaOrmSessionStore {
    store
        .with_subject_key("user_id")
        .with_max_sessions_per_subject(NonZeroU32::new(max).expect("not zero"), at_cap)
}

async fn sign_in(store: &SeaOrmSessionStore, user: &str) -> Result<SessionId, CreateError> {
    let id = SessionId::random();
    let s = state(json!({"user_id": user}));
    store.create(&id, record(&s)).await.map(|()| id)
}

fn too_many(e: &anyhow::Error) -> Option<TooManySessions> {
    e.downcast_ref::<TooManySessions>().copied()
}

/// The newest `max` sessions stay: a sixth sign-in ends the oldest, a session that signs in by
/// `update` (an anonymous session getting its subject) stays though it was created first, and
/// writes of sessions that already count end nothing. Other subjects and anonymous sessions are
/// not touched. Each ended session is an audit event with its handle.
async fn the_oldest_sessions_beyond_the_cap_end(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let store = capped(store, 3, AtCap::EndOldest);
    let audit = Audit::default();
    let subscriber = audit.subscriber();
    async {
        let anonymous = SessionId::random();
        store
            .create(&anonymous, record(&state(json!({"cart": [1]}))))
            .await
            .unwrap();
        let other = sign_in(&store, "8").await.unwrap();
        let mut devices = Vec::new();
        for _ in 0..5 {
            db.next_millisecond().await;
            devices.push(sign_in(&store, "7").await.unwrap());
        }
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 3);
        for (i, id) in devices.iter().enumerate() {
            assert_eq!(
                store.load(id).await.unwrap().is_some(),
                i >= 2,
                "device {i}"
            );
        }
        assert!(store.load(&other).await.unwrap().is_some());
        assert_eq!(
            audit.lines(),
            [0, 1].map(|i| format!("cap_evicted 7 {}", SessionHandle::of(&devices[i]))),
        );

        // Writes of sessions that already count: nothing ends.
        for id in &devices[2..] {
            let s = state(json!({"user_id": "7", "seen": true}));
            store.update(id, record(&s)).await.unwrap();
            store.update_ttl(id, HOUR).await.unwrap();
        }
        let renamed = SessionId::random();
        store.change_id(&devices[2], &renamed).await.unwrap();
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 3);
        assert_eq!(audit.lines().len(), 2);

        // The anonymous session, created before all of them, signs in: it stays, the oldest
        // other goes (the renamed one, created third).
        let s = state(json!({"user_id": "7", "cart": [1]}));
        store.update(&anonymous, record(&s)).await.unwrap();
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 3);
        assert!(store.load(&anonymous).await.unwrap().is_some());
        assert!(store.load(&renamed).await.unwrap().is_none());
        assert_eq!(
            audit.lines().last().cloned().unwrap(),
            format!("cap_evicted 7 {}", SessionHandle::of(&renamed))
        );
        assert_eq!(store.count_sessions_of("8").await.unwrap(), 1);

        // A store without the cap (another service) does not end anything.
        let uncapped = SeaOrmSessionStore::new(db.store_connection()).with_subject_key("user_id");
        sign_in(&uncapped, "7").await.unwrap();
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 4);
        // The next capped sign-in brings the subject back to the cap.
        sign_in(&store, "7").await.unwrap();
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 3);
    }
    .with_subscriber(subscriber)
    .await;
}

/// A cap of one: each sign-in ends the one before, and a subject with many sessions from before
/// the cap (more than one statement's worth) comes down to one at its next sign-in.
async fn a_cap_of_one_keeps_only_the_newest(backend: Backend) {
    let (_db, store) = common::store_on(backend).await;
    let uncapped = store.clone().with_subject_key("user_id");
    let store = capped(store, 1, AtCap::EndOldest);
    for _ in 0..620 {
        sign_in(&uncapped, "many").await.unwrap();
    }
    assert_eq!(store.count_sessions_of("many").await.unwrap(), 620);
    let newest = sign_in(&store, "many").await.unwrap();
    assert_eq!(store.count_sessions_of("many").await.unwrap(), 1);
    assert!(store.load(&newest).await.unwrap().is_some());
    let next = sign_in(&store, "many").await.unwrap();
    assert!(store.load(&newest).await.unwrap().is_none());
    assert!(store.load(&next).await.unwrap().is_some());
}

/// Under `Refuse`, a write that would go past the cap fails with `TooManySessions` and changes
/// nothing: the session is not created, an anonymous session that signs in keeps its old state
/// and no subject. Once a session ends, the next sign-in works.
async fn a_refused_write_changes_nothing(backend: Backend) {
    let (_db, store) = common::store_on(backend).await;
    let store = capped(store, 2, AtCap::Refuse);
    let audit = Audit::default();
    let subscriber = audit.subscriber();
    async {
        let first = sign_in(&store, "7").await.unwrap();
        sign_in(&store, "7").await.unwrap();
        let refused = SessionId::random();
        let s = state(json!({"user_id": "7"}));
        let Err(CreateError::Other(e)) = store.create(&refused, record(&s)).await else {
            panic!("a third session is refused");
        };
        assert_eq!(too_many(&e).map(|e| e.max()), Some(2), "{e:?}");
        assert!(store.load(&refused).await.unwrap().is_none());
        assert_eq!(
            audit.lines(),
            [format!("refused_at_cap 7 {}", SessionHandle::of(&refused))]
        );

        let anonymous = SessionId::random();
        let cart = state(json!({"cart": [1]}));
        store.create(&anonymous, record(&cart)).await.unwrap();
        let signed_in = state(json!({"cart": [1], "user_id": "7"}));
        let Err(UpdateError::Other(e)) = store.update(&anonymous, record(&signed_in)).await else {
            panic!("signing in a third session is refused");
        };
        assert!(too_many(&e).is_some(), "{e:?}");
        let kept = store.load(&anonymous).await.unwrap().unwrap();
        assert_eq!(kept.state, cart);
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 2);

        // Writes of the two sessions that count still work; ending one makes room.
        let seen = state(json!({"user_id": "7", "seen": 1}));
        store.update(&first, record(&seen)).await.unwrap();
        assert!(
            store
                .end_session_of("7", &SessionHandle::of(&first))
                .await
                .unwrap()
        );
        store.update(&anonymous, record(&signed_in)).await.unwrap();
        assert_eq!(store.count_sessions_of("7").await.unwrap(), 2);
        // An update of a missing session is still `UnknownId`, not a refusal.
        let missing = SessionId::random();
        assert!(matches!(
            store.update(&missing, record(&signed_in)).await,
            Err(UpdateError::UnknownIdError(_))
        ));
    }
    .with_subscriber(subscriber)
    .await;
}

/// Sign-ins of one subject racing, on every node of a cluster, never leave more than the cap, and
/// every one reported written was written: under `EndOldest` exactly the cap stays (every sign-in succeeded, each ended an older one),
/// under `Refuse` as many succeed as the cap allows and the rest are refused. Half the sign-ins
/// are `create`s, half anonymous sessions that get their subject by `update`.
async fn racing_sign_ins_never_exceed_the_cap(backend: Backend) {
    let (db, _store) = common::store_on(backend).await;
    const MAX: u32 = 2;
    const RACERS: usize = 8;
    for at_cap in [AtCap::EndOldest, AtCap::Refuse] {
        for round in 0..5 {
            // New pools each round: every statement of a racer's transaction is the first of its
            // text on its connection, the case where a cluster node once lost an abort
            // (docs/cluster.md, "Transactions on a cluster").
            let stores: Vec<_> = db
                .new_node_connections()
                .await
                .into_iter()
                .map(|node| capped(SeaOrmSessionStore::new(node), MAX, at_cap))
                .collect();
            let user = format!("{at_cap:?}-{round}");
            let mut anonymous = Vec::new();
            for i in 0..RACERS / 2 {
                let id = SessionId::random();
                let s = state(json!({"cart": [i]}));
                stores[0].create(&id, record(&s)).await.unwrap();
                anonymous.push(id);
            }
            let sign_ins = (0..RACERS).map(|i| {
                let store = &stores[i % stores.len()];
                let user = user.clone();
                let anonymous = anonymous.get(i / 2).filter(|_| i % 2 == 1).copied();
                let events = StoreEvents::default();
                let subscriber = events.subscriber();
                async move {
                    let s = state(json!({"user_id": user}));
                    let (id, outcome) = match anonymous {
                        Some(id) => (
                            id,
                            store.update(&id, record(&s)).await.err().map(|e| match e {
                                UpdateError::Other(e) => e,
                                e => panic!("{e:?}"),
                            }),
                        ),
                        None => {
                            let id = SessionId::random();
                            (
                                id,
                                store.create(&id, record(&s)).await.err().map(|e| match e {
                                    CreateError::Other(e) => e,
                                    e => panic!("{e:?}"),
                                }),
                            )
                        }
                    };
                    // What the racer's own node holds the moment its write returned.
                    let right_after = store
                        .load(&id)
                        .await
                        .map(|record| record.map(|record| record.state.get("user_id").cloned()));
                    let seen = Racer {
                        events: events.lines(),
                        right_after: format!("{right_after:?}"),
                    };
                    (id, outcome, seen)
                }
                .with_subscriber(subscriber)
            });
            let outcomes = futures::future::join_all(sign_ins).await;
            let succeeded: Vec<_> = outcomes
                .iter()
                .filter(|(_, e, _)| e.is_none())
                .map(|(id, _, _)| *id)
                .collect();
            for (_, e, _) in &outcomes {
                if let Some(e) = e {
                    assert!(
                        at_cap == AtCap::Refuse && too_many(e).is_some(),
                        "{at_cap:?} round {round}: {e:?}"
                    );
                }
            }
            // Under `EndOldest` every sign-in succeeds, under `Refuse` as many as the cap allows;
            // either way `MAX` stay.
            let expected = MAX as usize;
            let expected_successes = match at_cap {
                AtCap::EndOldest => RACERS,
                _ => expected,
            };
            if succeeded.len() != expected_successes {
                panic!(
                    "{at_cap:?} round {round}: {} sign-ins succeeded, {expected_successes} \
                     expected\n{}",
                    succeeded.len(),
                    what_the_racers_saw(&outcomes, stores.len(), &db).await
                );
            }
            let mut counts = Vec::new();
            for store in &stores {
                counts.push(store.count_sessions_of(&user).await.unwrap());
            }
            let mut live = Vec::new();
            for id in &succeeded {
                live.push(stores[0].load(id).await.unwrap().is_some());
            }
            if counts.iter().any(|&n| n != expected as u64) {
                panic!(
                    "{at_cap:?} round {round}: the cap was exceeded or undershot: {counts:?} \
                     sessions counted on the nodes, {expected} expected\n{}",
                    what_the_racers_saw(&outcomes, stores.len(), &db).await
                );
            }
            let live = live.iter().filter(|&&live| live).count();
            if live != expected {
                panic!(
                    "{at_cap:?} round {round}: {live} of the sign-ins are live, {expected} \
                     expected\n{}",
                    what_the_racers_saw(&outcomes, stores.len(), &db).await
                );
            }
        }
    }
}

/// What one racer of the racing test saw besides its outcome.
struct Racer {
    /// The store's events during its write (a lock conflict lost, a session ended).
    events: Vec<String>,
    /// Its own session as its own node held it once the write returned: `user_id`, if live.
    right_after: String,
}

/// Each racer's outcome and every row of the `sessions` table as each node sees it (handle,
/// subject, deadline, `created_at`): what a failure of the racing test prints, should it ever
/// happen in CI.
async fn what_the_racers_saw(
    outcomes: &[(SessionId, Option<anyhow::Error>, Racer)],
    nodes: usize,
    db: &common::TestDb,
) -> String {
    use sea_orm::{ConnectionTrait, sea_query::Query};
    let mut seen = String::new();
    for (i, (id, e, racer)) in outcomes.iter().enumerate() {
        let how = if i % 2 == 1 { "update" } else { "create" };
        let handle = SessionHandle::of(id);
        seen.push_str(&format!(
            "racer {i} ({how}, node {}) {handle}: {e:?}; its node right after: {}\n",
            i % nodes,
            racer.right_after
        ));
        for event in &racer.events {
            seen.push_str(&format!("    {event}\n"));
        }
    }
    let select = Query::select()
        .columns(["id", "subject", "deadline", "created_at"])
        .from("sessions")
        .order_by("created_at", sea_orm::Order::Asc)
        .to_owned();
    for (node, connection) in db.node_connections().iter().enumerate() {
        seen.push_str(&format!("node {node}:\n"));
        match connection.query_all(&select).await {
            Ok(rows) => {
                for row in rows {
                    let id: Vec<u8> = row.try_get("", "id").unwrap_or_default();
                    let subject: Option<Vec<u8>> = row.try_get("", "subject").unwrap_or_default();
                    let deadline: i64 = row.try_get("", "deadline").unwrap_or_default();
                    let created_at: i64 = row.try_get("", "created_at").unwrap_or_default();
                    // The racers' handles, so that a row and its racer read alike.
                    let handle = SessionHandle::try_from(id.as_slice());
                    let subject = subject.map(|s| String::from_utf8_lossy(&s).into_owned());
                    seen.push_str(&format!(
                        "  {handle:?} {subject:?} {deadline} {created_at}\n"
                    ));
                }
            }
            Err(e) => seen.push_str(&format!("  cannot read: {e}\n")),
        }
    }
    seen
}

on_every_backend!(and_galera:
    the_oldest_sessions_beyond_the_cap_end,
    a_cap_of_one_keeps_only_the_newest,
    a_refused_write_changes_nothing,
    racing_sign_ins_never_exceed_the_cap,
);
