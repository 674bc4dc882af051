//! The store's statements reach their rows through its indexes, on every backend: the tests
//! capture the statements the store really runs and have the database explain them.
//!
//! - `delete_expired(Some(n))` reaches expired rows through the `deadline` index, oldest first,
//!   and touches O(n) rows: run under `EXPLAIN ANALYZE` (PostgreSQL) / `ANALYZE` (MariaDB) in a
//!   rolled-back transaction, counting the rows each step read; SQLite, which reports no row
//!   counts, must show index searches only (`EXPLAIN QUERY PLAN`).
//! - The subject queries (device list, count, sign-out everywhere) use the `subject` index,
//!   which on PostgreSQL and SQLite holds only the rows that have a subject; on MySQL the
//!   primary key of the subject entries, `sessions_by_subject`.

mod common;

use common::{
    Backend, TestDb,
    plans::{full_scans, most_rows_read_by_a_step, plan},
    store_on,
};
use pavex_session::store::SessionStorageBackend;
use pavex_session_sea_orm::SeaOrmSessionStore;
use pavex_session_sea_orm::entity::sessions;
use sea_orm::{ConnectionTrait, DbBackend, EntityTrait, Statement};
use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex},
};

const LIVE: usize = 20_000;
const EXPIRED: usize = 20_000;
const BATCH: usize = 500;

/// Every `SUBJECT_EVERY`th row belongs to a user, `SUBJECTS` users in all; the others are
/// anonymous.
const SUBJECT_EVERY: usize = 20;
const SUBJECTS: usize = 100;

/// The subject of row `i`, if it has one.
fn subject_of_row(i: usize) -> Option<String> {
    i.is_multiple_of(SUBJECT_EVERY)
        .then(|| format!("user-{}", (i / SUBJECT_EVERY) % SUBJECTS))
}

/// Bulk-inserts `EXPIRED` expired and `LIVE` live rows (the row's index decides which, and its
/// subject: [`subject_of_row`]), then refreshes the planner's statistics.
async fn fill(db: &TestDb) {
    let now = db.db_now_millis().await;
    let rows: Vec<_> = (0..LIVE + EXPIRED)
        .map(|i| {
            let deadline = match i < EXPIRED {
                true => now - 1_000_000 + i as i64,
                false => now + 3_600_000 + i as i64,
            };
            sessions::ActiveModel {
                id: sea_orm::Set(common::key(&pavex_session::SessionId::random())),
                deadline: sea_orm::Set(common::millis(deadline)),
                state: sea_orm::Set(serde_json::json!({"i": i}).to_string().into_bytes()),
                subject: sea_orm::Set(subject_of_row(i).map(String::into_bytes)),
                sign_in: sea_orm::Set(None),
                created_at: sea_orm::Set(common::millis(now)),
                updated_at: sea_orm::Set(common::millis(now)),
            }
        })
        .collect();
    common::insert_and_analyze(db, rows).await;
    if db.db_backend() == DbBackend::MySql {
        // MySQL keeps the subjects' sessions in their own table, which the store writes with
        // the session: these rows were written by hand, so the entries are made as the
        // migration's repair makes them, from the sessions.
        db.db
            .execute_unprepared("DROP TABLE sessions_by_subject")
            .await
            .unwrap();
        SeaOrmSessionStore::new(db.db.clone())
            .migrate()
            .await
            .unwrap();
        db.db
            .execute_unprepared("ANALYZE TABLE sessions_by_subject")
            .await
            .unwrap();
    }
}

/// A store on a [`fill`]ed table, and the statements it runs, as it runs them.
async fn filled_store(
    backend: Backend,
) -> (TestDb, SeaOrmSessionStore, Arc<Mutex<Vec<Statement>>>) {
    let (db, store) = store_on(backend).await;
    fill(&db).await;
    let captured = Arc::new(Mutex::new(Vec::new()));
    let sink = captured.clone();
    let store = store.with_metric_callback(move |info: &sea_orm::metric::Info<'_>| {
        sink.lock().unwrap().push(info.statement.clone())
    });
    (db, store, captured)
}

async fn batched_delete_expired_uses_the_deadline_index(backend: Backend) {
    let (db, store, captured) = filled_store(backend).await;

    assert_eq!(
        store
            .delete_expired(NonZeroUsize::new(BATCH))
            .await
            .unwrap(),
        BATCH
    );
    let statement = captured
        .lock()
        .unwrap()
        .pop()
        .expect("the store ran a statement");
    let plan = plan(&db, &statement).await;
    let text = plan.join("\n");
    assert!(text.contains("idx_sessions_deadline"), "{text}");
    match db.db_backend() {
        DbBackend::Postgres | DbBackend::MySql => {
            let (most, analyzed) = most_rows_read_by_a_step(&db, &statement).await;
            assert!(
                most <= 2 * BATCH as u64,
                "a step read {most} rows for a batch of {BATCH} among {EXPIRED} expired and \
                 {LIVE} live: {analyzed}"
            );
        }
        _ => {
            assert!(
                text.contains("INDEX idx_sessions_deadline (deadline<?)"),
                "{text}"
            );
            assert!(
                text.contains("USING INTEGER PRIMARY KEY (rowid=?)"),
                "the batch's rows are deleted by rowid, not looked up by id: {text}"
            );
            for step in &plan {
                assert!(
                    !step.starts_with("SCAN sessions"),
                    "a full scan of the table: {text}"
                );
            }
        }
    }
    // And it drains only expired rows.
    let mut deleted = BATCH;
    while let Some(n) =
        NonZeroUsize::new(store.delete_expired(NonZeroUsize::new(5000)).await.unwrap())
    {
        deleted += n.get();
    }
    assert_eq!(deleted, EXPIRED);
    let left = sessions::Entity::find().all(&db.db).await.unwrap().len();
    assert_eq!(left, LIVE);
}

async fn the_subject_queries_use_the_subject_index(backend: Backend) {
    let (db, store, captured) = filled_store(backend).await;
    let store = store.with_subject_key("user_id");
    let user = "user-7";
    let live = (EXPIRED..EXPIRED + LIVE)
        .filter(|&i| subject_of_row(i).as_deref() == Some(user))
        .count();
    assert!(live > 0);

    assert_eq!(store.sessions_of(user).await.unwrap().len(), live);
    assert_eq!(store.count_sessions_of(user).await.unwrap(), live as u64);
    let statements = std::mem::take(&mut *captured.lock().unwrap());
    assert_eq!(statements.len(), 2);
    assert_eq!(
        store.end_sessions_of(user, None).await.unwrap(),
        live as u64
    );
    assert_eq!(store.count_sessions_of(user).await.unwrap(), 0);
    let ran = std::mem::take(&mut *captured.lock().unwrap());
    // MySQL has no `DELETE ... RETURNING`: the ids of the sessions to end (for the audit
    // trail) are read with a locking `SELECT` in the `DELETE`'s transaction, which deletes them
    // by id (up to 32 a statement).
    let (expected, what) = match db.db_backend() {
        DbBackend::MySql => (
            5,
            "forget expired revocations, revoke the sign-ins, SELECT ... FOR UPDATE, DELETE by id, COUNT",
        ),
        _ => (
            4,
            "forget expired revocations, revoke the sign-ins, DELETE ... RETURNING, COUNT",
        ),
    };
    assert_eq!(ran.len(), expected, "{what}");
    // The revocation's SELECT, the locking SELECT and the DELETE walk the subject index too
    // (on MySQL the subject entries' primary key, and the DELETE the sessions' primary key).
    for statement in statements.iter().chain(&ran[1..expected - 1]) {
        let plan = plan(&db, statement).await;
        let text = plan.join("\n");
        let by_id = db.db_backend() == DbBackend::MySql && statement.sql.starts_with("DELETE");
        let index = match db.db_backend() {
            DbBackend::MySql if by_id => "PRIMARY",
            DbBackend::MySql => "sessions_by_subject",
            _ => "idx_sessions_subject",
        };
        assert!(text.contains(index), "{}:\n{text}", statement.sql);
        let scans = full_scans(db.db_backend(), &plan);
        assert!(scans.is_empty(), "{}:\n{text}", statement.sql);
    }
    // The other users' sessions are all still there.
    let left = sessions::Entity::find().all(&db.db).await.unwrap().len();
    assert_eq!(left, LIVE + EXPIRED - live);
}

on_every_backend!(
    batched_delete_expired_uses_the_deadline_index,
    the_subject_queries_use_the_subject_index,
);
