//! The absolute lifetime (OWASP ASVS 5.0, 7.3.2): however often a session is written, it never
//! lives past `created_at + lifetime`, decided by the database in the statement that writes it.

mod common;

use common::{Backend, TestDb, audit::Audit, key, stores_on_every_node};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{
    CleanupConfig, ExpiredSessionCleaner, SeaOrmSessionStore, SessionHandle, entity::sessions,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};
use tracing::instrument::WithSubscriber as _;

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

/// A session deleted as expired after reaching its absolute lifetime is an audit event and is
/// counted apart in the cleaner's report; one that expired by idleness is neither. A store
/// without the lifetime reports none.
async fn sessions_ended_by_the_lifetime_are_audited(backend: Backend) {
    let (db, plain) = common::store_on(backend).await;
    let store = plain
        .clone()
        .with_subject_key("user_id")
        .with_absolute_lifetime(LIFETIME);
    let audit = Audit::default();
    async {
        let state: HashMap<Cow<'static, str>, serde_json::Value> =
            HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!("31"))]);
        let mut ids = Vec::new();
        for _ in 0..3 {
            let id = SessionId::random();
            let record = SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl: DAY,
            };
            store.create(&id, record).await.unwrap();
            ids.push(id);
        }
        let [at_lifetime, idle, live] = [&ids[0], &ids[1], &ids[2]];
        // One reaches its lifetime (the next write ends it), one expires idle.
        age(&db, at_lifetime, LIFETIME + Duration::from_secs(1)).await;
        store.update_ttl(at_lifetime, DAY).await.unwrap();
        common::expire(&db, idle).await;

        // An expired revoked sign-in, which the cleaner deletes at the end of its first round:
        // once it is gone, that round's batches are counted (a batch in flight when the cleaner
        // stops is abandoned, counted or not).
        let placeholders = match db.db_backend() {
            sea_orm::DbBackend::Postgres => "$1, $2",
            _ => "?, ?",
        };
        let sql = format!(
            "INSERT INTO sessions_revoked (subject, sign_in, deadline) VALUES ({placeholders}, 0)"
        );
        db.run(&sql, vec![b"0".to_vec().into(), b"0".to_vec().into()])
            .await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let cleaner = ExpiredSessionCleaner::new(store.clone()).with_config(CleanupConfig {
            batch_size: NonZeroUsize::new(1).unwrap(),
            pause_between_batches: Duration::ZERO,
            ..CleanupConfig::default()
        });
        // A task of its own: the test's subscriber goes with it.
        let task = tokio::spawn(
            cleaner
                .run_until(async {
                    stopped.await.ok();
                })
                .with_subscriber(audit.subscriber()),
        );
        while common::revoked_rows(&db).await > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(common::all_rows(&db).await.len(), 1);
        stop.send(()).unwrap();
        let report = task.await.unwrap();
        assert_eq!(
            (report.deleted, report.ended_at_lifetime),
            (2, 1),
            "{report:?}"
        );
        assert_eq!(
            audit.lines(),
            [format!(
                "absolute_lifetime 31 {}",
                SessionHandle::of(at_lifetime)
            )]
        );
        assert!(store.load(live).await.unwrap().is_some());

        // The same through `delete_expired`, in one statement, and without the lifetime: none.
        for id in [&ids[0], &ids[1]] {
            let record = SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl: DAY,
            };
            store.create(id, record).await.unwrap();
        }
        age(&db, &ids[0], LIFETIME + Duration::from_secs(1)).await;
        store.update_ttl(&ids[0], DAY).await.unwrap();
        assert_eq!(plain.delete_expired(None).await.unwrap(), 1);
        assert_eq!(
            audit.lines().len(),
            1,
            "a store without the lifetime reports none"
        );
        store.create(&ids[0], record(DAY)).await.unwrap();
        age(&db, &ids[0], LIFETIME + Duration::from_secs(1)).await;
        store.update_ttl(&ids[0], DAY).await.unwrap();
        assert_eq!(store.delete_expired(None).await.unwrap(), 1);
        assert_eq!(audit.lines().len(), 2);
    }
    .with_subscriber(audit.subscriber())
    .await;
}

/// The audited clean-up deletes a batch of more expired sessions than one of its `DELETE`s binds
/// (on MySQL 1 000 ids each, the last one repeated): all of them, each counted once, and not the
/// live one.
async fn an_audited_batch_larger_than_one_delete_deletes_them_all(backend: Backend) {
    let (db, plain) = common::store_on(backend).await;
    let store = plain
        .with_subject_key("user_id")
        .with_absolute_lifetime(LIFETIME);
    common::sessions_with_ttl(&store, 2_345, Duration::from_millis(1)).await;
    common::sessions_with_ttl(&store, 1, DAY).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let deleted = store.delete_expired(None).await.unwrap();
    assert_eq!(deleted, 2_345);
    assert_eq!(common::all_rows(&db).await.len(), 1);
    assert_eq!(store.delete_expired(None).await.unwrap(), 0);
}

on_every_backend!(and_galera:
    a_session_never_outlives_its_absolute_lifetime,
    sessions_ended_by_the_lifetime_are_audited,
    an_audited_batch_larger_than_one_delete_deletes_them_all,
);
