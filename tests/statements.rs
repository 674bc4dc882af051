//! How the store runs its statements on the sqlx pool inside the `DatabaseConnection`: what the
//! metric callback is told, and that failures are the `DbErr`s sea-orm itself would return.

mod common;

use common::Backend;
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{CreateError, LoadError, UpdateTtlError},
    },
};
use sea_orm::{ConnAcquireErr, ConnectionTrait, DbErr, RuntimeErr};
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

const HOUR: Duration = Duration::from_secs(3600);

/// One statement as the callback saw it: its first word, whether it failed, how long it took.
type Seen = (String, bool, Duration);

type State = HashMap<Cow<'static, str>, serde_json::Value>;

fn empty_record(state: &State) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl: HOUR,
    }
}

/// The callback is called once per statement, after it ran, with the statement's SQL and
/// whether it failed.
async fn metric_callback_sees_each_statement(backend: Backend) {
    let (_db, store) = common::store_on(backend).await;
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let log = Arc::clone(&seen);
    let table = store.table().name().to_owned();
    let store = store.with_metric_callback(move |info: &sea_orm::metric::Info<'_>| {
        assert!(
            info.statement.sql.contains(&table),
            "{}",
            info.statement.sql
        );
        let verb = info.statement.sql.split(' ').next().unwrap_or_default();
        log.lock()
            .unwrap()
            .push((verb.to_owned(), info.failed, info.elapsed));
    });
    let state = State::new();
    let id = SessionId::random();
    store.create(&id, empty_record(&state)).await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    // A live id: the INSERT fails, the overwrite of an expired record finds none, the INSERT
    // is tried once more and fails again.
    let duplicate = store.create(&id, empty_record(&state)).await;
    assert!(matches!(duplicate, Err(CreateError::DuplicateId(_))));

    let seen = seen.lock().unwrap().clone();
    let outline: Vec<(&str, bool)> = seen.iter().map(|(v, f, _)| (v.as_str(), *f)).collect();
    assert_eq!(
        outline,
        [
            ("INSERT", false),
            ("SELECT", false),
            ("INSERT", true),
            ("UPDATE", false),
            ("INSERT", true),
        ]
    );
    assert!(seen.iter().all(|(_, _, elapsed)| *elapsed > Duration::ZERO));
}

/// A statement the database rejects is `DbErr::Query` (a query) or `DbErr::Exec` (any other
/// statement) with sqlx's error inside, as through sea-orm's own methods; a closed pool is
/// `DbErr::ConnectionAcquire`.
async fn failures_are_sea_orms_errors(backend: Backend) {
    let (db, store) = common::store_on(backend).await;
    let id = SessionId::random();
    store
        .create(&id, empty_record(&State::new()))
        .await
        .unwrap();
    db.store_connection()
        .execute_unprepared(&format!("DROP TABLE {}", store.table().name()))
        .await
        .unwrap();

    let Err(LoadError::Other(e)) = store.load(&id).await else {
        panic!("a load from a dropped table must fail");
    };
    let e = e.downcast_ref::<DbErr>().expect("a DbErr");
    assert!(
        matches!(e, DbErr::Query(RuntimeErr::SqlxError(sqlx)) if sqlx.as_database_error().is_some()),
        "{e:?}"
    );

    let Err(UpdateTtlError::Other(e)) = store.update_ttl(&id, HOUR).await else {
        panic!("an update of a dropped table must fail");
    };
    let e = e.downcast_ref::<DbErr>().expect("a DbErr");
    assert!(
        matches!(e, DbErr::Exec(RuntimeErr::SqlxError(sqlx)) if sqlx.as_database_error().is_some()),
        "{e:?}"
    );

    db.store_connection().close_by_ref().await.unwrap();
    let Err(LoadError::Other(e)) = store.load(&id).await else {
        panic!("a load on a closed pool must fail");
    };
    assert!(
        matches!(
            e.downcast_ref::<DbErr>(),
            Some(DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed))
        ),
        "{e:?}"
    );
}

on_every_backend!(
    metric_callback_sees_each_statement,
    failures_are_sea_orms_errors
);
