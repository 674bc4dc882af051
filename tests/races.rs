//! Concurrency: tasks racing pairs of operations on shared ids, on every backend. After each race,
//! every acknowledged write is visible, nothing deleted comes back, and the final state is one
//! that some serial order of the operations produces.

mod common;

use common::{Backend, store_on};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{ChangeIdError, CreateError, DeleteError, UpdateError},
    },
};
use pavex_session_sea_orm::SeaOrmSessionStore;
use serde_json::{Value, json};
use std::{borrow::Cow, collections::HashMap, future::Future, time::Duration};

type State = HashMap<Cow<'static, str>, Value>;

/// Rounds per race: `PSS_RACE_ROUNDS` (default 10).
fn rounds() -> usize {
    std::env::var("PSS_RACE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10)
}
const HOUR: Duration = Duration::from_secs(3600);

fn state(value: Value) -> State {
    serde_json::from_value(value).unwrap()
}

async fn create(
    store: &SeaOrmSessionStore,
    id: &SessionId,
    s: &State,
    ttl: Duration,
) -> Result<(), CreateError> {
    store
        .create(
            id,
            SessionRecordRef {
                state: Cow::Borrowed(s),
                ttl,
            },
        )
        .await
}

async fn update(store: &SeaOrmSessionStore, id: &SessionId, v: Value) -> Result<(), UpdateError> {
    let s = state(v);
    store
        .update(
            id,
            SessionRecordRef {
                state: Cow::Borrowed(&s),
                ttl: HOUR,
            },
        )
        .await
}

async fn loaded(store: &SeaOrmSessionStore, id: &SessionId) -> Option<State> {
    store.load(id).await.unwrap().map(|r| r.state)
}

/// Runs both futures at once, each on its own task (and so on its own connection).
async fn race<A, B>(a: A, b: B) -> (A::Output, B::Output)
where
    A: Future + Send + 'static,
    B: Future + Send + 'static,
    A::Output: Send + 'static,
    B::Output: Send + 'static,
{
    let (a, b) = (tokio::spawn(a), tokio::spawn(b));
    (a.await.unwrap(), b.await.unwrap())
}

async fn create_vs_create_over_an_expired_record(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let id = SessionId::random();
        create(&store, &id, &state(json!({"stale": 1})), Duration::ZERO)
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = race(
            async move { create(&s1, &id, &state(json!({"by": "a"})), HOUR).await },
            async move { create(&s2, &id, &state(json!({"by": "b"})), HOUR).await },
        )
        .await;
        let winner = match (a, b) {
            (Ok(()), Err(CreateError::DuplicateId(_))) => "a",
            (Err(CreateError::DuplicateId(_)), Ok(())) => "b",
            other => panic!("exactly one create wins: {other:?}"),
        };
        assert_eq!(
            loaded(&store, &id).await,
            Some(state(json!({"by": winner})))
        );
    }
}

async fn change_id_vs_update(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let (old, new) = (SessionId::random(), SessionId::random());
        create(&store, &old, &state(json!({"v": 0})), HOUR)
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (renamed, updated) = race(async move { s1.change_id(&old, &new).await }, async move {
            update(&s2, &old, json!({"v": 1})).await
        })
        .await;
        renamed.unwrap();
        assert_eq!(loaded(&store, &old).await, None);
        match updated {
            // update, then rename: the rename carried the new state.
            Ok(()) => assert_eq!(loaded(&store, &new).await, Some(state(json!({"v": 1})))),
            // rename, then update of an id that no longer exists.
            Err(UpdateError::UnknownIdError(_)) => {
                assert_eq!(loaded(&store, &new).await, Some(state(json!({"v": 0}))))
            }
            Err(e) => panic!("{e:?}"),
        }
    }
}

async fn delete_vs_update(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let id = SessionId::random();
        create(&store, &id, &state(json!({"v": 0})), HOUR)
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (deleted, updated) = race(async move { s1.delete(&id).await }, async move {
            update(&s2, &id, json!({"v": 1})).await
        })
        .await;
        deleted.unwrap();
        assert!(
            matches!(updated, Ok(()) | Err(UpdateError::UnknownIdError(_))),
            "{updated:?}"
        );
        assert_eq!(loaded(&store, &id).await, None, "a logout is never undone");
    }
}

async fn create_vs_delete_expired_over_an_expired_record(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let id = SessionId::random();
        create(&store, &id, &state(json!({"stale": 1})), Duration::ZERO)
            .await
            .unwrap();
        for _ in 0..20 {
            create(&store, &SessionId::random(), &State::new(), Duration::ZERO)
                .await
                .unwrap();
        }
        let (s1, s2) = (store.clone(), store.clone());
        let (created, cleaned) = race(
            async move { create(&s1, &id, &state(json!({"fresh": 1})), HOUR).await },
            async move { s2.delete_expired(std::num::NonZeroUsize::new(5)).await },
        )
        .await;
        created.unwrap();
        cleaned.unwrap();
        assert_eq!(
            loaded(&store, &id).await,
            Some(state(json!({"fresh": 1}))),
            "the acknowledged create survives the clean-up"
        );
        store.delete_expired(None).await.unwrap();
    }
}

async fn update_vs_delete_expired(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let id = SessionId::random();
        create(&store, &id, &state(json!({"v": 0})), HOUR)
            .await
            .unwrap();
        for _ in 0..20 {
            create(&store, &SessionId::random(), &State::new(), Duration::ZERO)
                .await
                .unwrap();
        }
        let (s1, s2) = (store.clone(), store.clone());
        let (updated, cleaned) = race(
            async move { update(&s1, &id, json!({"v": 1})).await },
            async move { s2.delete_expired(None).await },
        )
        .await;
        updated.unwrap();
        assert_eq!(cleaned.unwrap(), 20);
        assert_eq!(loaded(&store, &id).await, Some(state(json!({"v": 1}))));
    }
}

async fn change_id_vs_change_id_back(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let (a, b) = (SessionId::random(), SessionId::random());
        create(&store, &a, &state(json!({"v": 0})), HOUR)
            .await
            .unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (forth, back) = race(async move { s1.change_id(&a, &b).await }, async move {
            s2.change_id(&b, &a).await
        })
        .await;
        let (at_a, at_b) = (loaded(&store, &a).await, loaded(&store, &b).await);
        match (forth, back) {
            // a -> b, then b -> a.
            (Ok(()), Ok(())) => assert_eq!((at_a.is_some(), at_b.is_some()), (true, false)),
            // b -> a first (a is live: DuplicateId, as the reference store answers), then a -> b.
            (Ok(()), Err(ChangeIdError::DuplicateId(_))) => {
                assert_eq!((at_a.is_some(), at_b.is_some()), (false, true))
            }
            other => panic!("no serial order gives {other:?}"),
        }
    }
}

async fn delete_vs_delete(backend: Backend) {
    let (_db, store) = store_on(backend).await;
    for _ in 0..rounds() {
        let id = SessionId::random();
        create(&store, &id, &State::new(), HOUR).await.unwrap();
        let (s1, s2) = (store.clone(), store.clone());
        let (a, b) = race(async move { s1.delete(&id).await }, async move {
            s2.delete(&id).await
        })
        .await;
        let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(oks, 1, "{a:?} {b:?}");
        assert!(
            [&a, &b]
                .iter()
                .all(|r| matches!(r, Ok(()) | Err(DeleteError::UnknownId(_))))
        );
    }
}

on_every_backend!(
    create_vs_create_over_an_expired_record,
    change_id_vs_update,
    delete_vs_update,
    create_vs_delete_expired_over_an_expired_record,
    update_vs_delete_expired,
    change_id_vs_change_id_back,
    delete_vs_delete,
);
