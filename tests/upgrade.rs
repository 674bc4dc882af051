//! Upgrading a table of the first schema (ids stored raw, no subject), with sessions in it, to the
//! current one: every session survives with its state and deadline, no raw id is left, a run
//! stopped halfway finishes when run again, and instances migrating at once agree.

mod common;

use common::{Backend, TestDb, fresh_db};
use pavex_session::{SessionId, store::SessionStorageBackend};
use pavex_session_sea_orm::{
    Migrator, MismatchKind, SchemaCheckError, SchemaMismatch, SeaOrmSessionStore,
};
use pavex_session_sea_orm_migration::{MAX_DEADLINE_MILLIS, MIGRATION_TABLE};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, Value,
    sea_query::{Expr, ExprTrait, Query},
};
use sea_orm_migration::MigratorTrait;
use serde_json::json;
use std::time::Duration;

const LIVE: usize = 2_300;
const EXPIRED: usize = 400;

/// A database whose `sessions` table is at the first migration (recorded in our history), with
/// sessions written as the first version of the store wrote them: `LIVE` live ones (one of them
/// with the longest TTL that version allowed) and `EXPIRED` expired ones.
async fn first_schema_with_sessions(backend: Backend) -> (TestDb, Vec<SessionId>) {
    let db = fresh_db(backend).await;
    Migrator::up(&db.db, Some(1))
        .await
        .expect("the first migration");
    let now = db.db_now_millis().await;
    let ids: Vec<SessionId> = (0..LIVE + EXPIRED).map(|_| SessionId::random()).collect();
    for (chunk_no, chunk) in ids.chunks(500).enumerate() {
        let mut insert = Query::insert();
        insert
            .into_table("sessions")
            .columns(["id", "deadline", "state"]);
        for (i, id) in chunk.iter().enumerate() {
            let n = chunk_no * 500 + i;
            let deadline = match n {
                0 => now + i64::MAX / 2, // Duration::MAX, as the first version stored it
                n if n < LIVE => now + 3_600_000 + n as i64,
                _ => now - 1_000 - n as i64,
            };
            insert.values_panic([
                Value::from(id.inner()).into(),
                deadline.into(),
                json!({"n": n, "user_id": n % 7}).into(),
            ]);
        }
        db.db
            .execute(&insert)
            .await
            .expect("write first-schema rows");
    }
    (db, ids)
}

async fn assert_every_live_session_survives(db: &TestDb, ids: &[SessionId]) {
    let store = SeaOrmSessionStore::new(db.db.clone());
    for (n, id) in ids.iter().enumerate() {
        let loaded = store.load(id).await.expect("load");
        match n < LIVE {
            true => {
                let loaded = loaded.unwrap_or_else(|| panic!("session {n} was lost"));
                assert_eq!(loaded.state["n"], json!(n));
                if n > 0 {
                    let ttl = loaded.ttl.as_millis() as i64;
                    let expected = 3_600_000 + n as i64;
                    assert!((expected - 120_000..=expected).contains(&ttl), "{n}: {ttl}");
                }
            }
            false => assert!(loaded.is_none(), "expired session {n} is live"),
        }
    }
    let rows = common::all_rows(db).await;
    assert_eq!(rows.len(), LIVE + EXPIRED, "no row lost or duplicated");
    let raw = common::raw_ids(db).await;
    assert!(raw.is_empty(), "{} ids are still stored raw", raw.len());
}

async fn migrate_upgrades_the_first_schema_keeping_every_session(backend: Backend) {
    let (db, ids) = first_schema_with_sessions(backend).await;

    // Before the upgrade the store refuses the table and changes nothing.
    let store = SeaOrmSessionStore::new(db.db.clone());
    let Err(SchemaCheckError::Mismatch(mismatch)) = store.check_table().await else {
        panic!("an outdated table passed the check");
    };
    assert_eq!(mismatch.kind(), MismatchKind::Outdated);
    let refused = store.delete_expired(None).await.unwrap_err();
    let source = std::error::Error::source(&refused).expect("a cause");
    assert!(
        source.to_string().contains("run the migrations"),
        "{source}"
    );
    assert!(store.load(&ids[1]).await.is_err());
    assert_eq!(common::raw_ids(&db).await.len(), LIVE + EXPIRED);

    store.migrate().await.expect("the upgrade");
    assert_every_live_session_survives(&db, &ids).await;
    let partial = match db.db_backend() {
        DbBackend::MySql => vec![],
        _ => vec!["idx_sessions_subject".to_owned()],
    };
    assert_eq!(db.partial_indexes("sessions").await, partial);
    assert_eq!(
        Migrator::get_applied_migrations(&db.db)
            .await
            .unwrap()
            .len(),
        3
    );
    // The Duration::MAX session is kept, with a deadline the entity can read.
    let forever = store.load(&ids[0]).await.unwrap().expect("live");
    assert!(forever.ttl > Duration::from_secs(60 * 60 * 24 * 365 * 7_000));
    let models = pavex_session_sea_orm::entity::sessions::Entity::find()
        .all(&db.db)
        .await
        .expect("every row reads through the entity");
    assert!(
        models
            .iter()
            .all(|m| m.deadline.0.timestamp_millis() <= MAX_DEADLINE_MILLIS)
    );
    assert!(models.iter().all(|m| m.created_at.0.timestamp_millis() > 0));
    // The upgraded sessions are ordinary sessions now.
    store.delete_expired(None).await.unwrap();
    assert_eq!(common::all_rows(&db).await.len(), LIVE);
    store.migrate().await.expect("a no-op");
    assert_eq!(common::all_rows(&db).await.len(), LIVE);
}

/// An upgrade stopped after some batches (some ids hashed, the rest raw, the migration not
/// recorded) is finished by the next run.
async fn a_stopped_upgrade_finishes_when_run_again(backend: Backend) {
    let (db, ids) = first_schema_with_sessions(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone());
    store.migrate().await.unwrap();
    // Put a third of the ids back the way they were, and forget the second migration ran.
    for id in ids.iter().step_by(3) {
        let mut revert = Query::update();
        revert
            .table("sessions")
            .value("id", Value::from(id.inner().as_bytes().to_vec()))
            .and_where(Expr::col("id").eq(common::key(id)));
        db.db.execute(&revert).await.unwrap();
    }
    let mut forget = Query::delete();
    forget
        .from_table(MIGRATION_TABLE)
        .and_where(Expr::col("version").like("m20261201%"));
    assert_eq!(db.db.execute(&forget).await.unwrap().rows_affected(), 1);
    assert_eq!(common::raw_ids(&db).await.len(), ids.len().div_ceil(3));

    store.migrate().await.expect("the rest of the upgrade");
    assert_every_live_session_survives(&db, &ids).await;
}

/// Three instances upgrading the same table at once: every session survives, once.
async fn concurrent_upgrades_agree(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // one connection: nothing runs at once
    }
    let (db, ids) = first_schema_with_sessions(backend).await;
    let instances = (0..3).map(|_| {
        let db = db.db.clone();
        tokio::spawn(async move { SeaOrmSessionStore::new(db).migrate().await })
    });
    for outcome in futures::future::join_all(instances).await {
        outcome.expect("no panic").expect("every instance migrates");
    }
    assert_every_live_session_survives(&db, &ids).await;
    assert_eq!(
        Migrator::get_applied_migrations(&db.db)
            .await
            .unwrap()
            .len(),
        3
    );
}

/// The schema before `PartialSubjectIndex` (the first two migrations, recorded), with sessions
/// in it, one of them signed in: instances upgrading it at once (three, or one on SQLite in
/// memory) make the subject index partial on PostgreSQL and SQLite, keep it on MariaDB, and keep
/// every session.
async fn the_subject_index_becomes_partial_keeping_every_session(backend: Backend) {
    let (db, ids) = first_schema_with_sessions(backend).await;
    // The one pending migration after the first: the second.
    Migrator::up(&db.db, Some(1))
        .await
        .expect("the previous schema");
    assert!(db.partial_indexes("sessions").await.is_empty());
    let signed_in = SessionId::random();
    let store = SeaOrmSessionStore::new(db.db.clone()).with_subject_key("user_id");
    let state = [("user_id".into(), json!("alice"))].into_iter().collect();
    let record = pavex_session::store::SessionRecordRef {
        state: std::borrow::Cow::Owned(state),
        ttl: Duration::from_secs(3600),
    };
    store.create(&signed_in, record).await.unwrap();

    let instances = match backend {
        Backend::SqliteMemory => 1, // one connection: nothing runs at once
        _ => 3,
    };
    let instances = (0..instances).map(|_| {
        let db = db.db.clone();
        tokio::spawn(async move { SeaOrmSessionStore::new(db).migrate().await })
    });
    for outcome in futures::future::join_all(instances).await {
        outcome.expect("no panic").expect("every instance migrates");
    }
    let partial = match db.db_backend() {
        DbBackend::MySql => vec![],
        _ => vec!["idx_sessions_subject".to_owned()],
    };
    assert_eq!(db.partial_indexes("sessions").await, partial);
    let applied = Migrator::get_applied_migrations(&db.db).await.unwrap();
    assert_eq!(applied.len(), 3);
    store.migrate().await.expect("a no-op");
    assert_eq!(db.partial_indexes("sessions").await, partial);

    // The signed-in session is found through the new index, and ends through it.
    let listed = store.sessions_of("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(store.end_sessions_of("alice", None).await.unwrap(), 1);
    assert_every_live_session_survives(&db, &ids).await;
}

/// A table adopted from `pavex_session_sqlx` before the third migration existed has its subject
/// index under the adoption's staging name: the third migration recognises it as ours too. An
/// index of the application's own on `subject` is left alone.
async fn the_adopted_subject_index_becomes_partial_and_an_apps_own_stays(backend: Backend) {
    let db = fresh_db(backend).await;
    Migrator::up(&db.db, Some(2))
        .await
        .expect("the previous schema");
    let on_sessions = match db.db_backend() {
        DbBackend::MySql => " ON sessions",
        _ => "",
    };
    db.run(
        &format!("DROP INDEX idx_sessions_subject{on_sessions}"),
        vec![],
    )
    .await;
    db.run(
        "CREATE INDEX idx_pavex_session_sea_orm_adopting_subject ON sessions (subject)",
        vec![],
    )
    .await;
    db.run(
        "CREATE INDEX app_subject_lookup ON sessions (subject, deadline)",
        vec![],
    )
    .await;
    SeaOrmSessionStore::new(db.db.clone())
        .migrate()
        .await
        .expect("the third migration");
    let partial = match db.db_backend() {
        DbBackend::MySql => vec![],
        _ => vec!["idx_pavex_session_sea_orm_adopting_subject".to_owned()],
    };
    assert_eq!(db.partial_indexes("sessions").await, partial);
    // The application's index is still there (and still full): dropping it works.
    db.run(
        &format!("DROP INDEX app_subject_lookup{on_sessions}"),
        vec![],
    )
    .await;
}

/// A table of neither schema is refused by the upgrade, and left untouched.
async fn the_upgrade_refuses_a_table_that_is_not_ours(backend: Backend) {
    let db = fresh_db(backend).await;
    db.db
        .execute_unprepared(
            "CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, deadline BIGINT NOT NULL, data TEXT)",
        )
        .await
        .unwrap();
    db.db
        .execute_unprepared("INSERT INTO sessions (id, deadline, data) VALUES ('a', 0, 'kept')")
        .await
        .unwrap();
    let store = SeaOrmSessionStore::new(db.db.clone());
    let refused = store.migrate().await.unwrap_err().to_string();
    assert!(
        refused.contains("not a pavex_session_sea_orm sessions table"),
        "{refused}"
    );
    assert!(refused.contains("another table"), "{refused}");
    let e = store.delete_expired(None).await.unwrap_err();
    let cause = std::error::Error::source(&e).expect("a cause");
    let mismatch = cause.downcast_ref::<SchemaMismatch>();
    assert_eq!(
        mismatch.map(|m| m.kind()),
        Some(MismatchKind::Foreign),
        "{cause}"
    );
    let rows = db
        .db
        .query_all(Query::select().columns(["id", "data"]).from("sessions"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "the expired-looking row is not deleted");
    assert_eq!(rows[0].try_get::<String>("", "data").unwrap(), "kept");
}

on_every_backend!(
    migrate_upgrades_the_first_schema_keeping_every_session,
    a_stopped_upgrade_finishes_when_run_again,
    concurrent_upgrades_agree,
    the_subject_index_becomes_partial_keeping_every_session,
    the_adopted_subject_index_becomes_partial_and_an_apps_own_stays,
    the_upgrade_refuses_a_table_that_is_not_ours,
);
