//! Adopting pavex_session_sqlx 0.2.10's `sessions` table (`AdoptPavexSessionSqlxTable`): every
//! session their store wrote and still considers live is found by our store under the same
//! `SessionId`, with the same state and deadline; expired and ended sessions stay gone; their
//! table is kept, untouched, as `pavex_session_sqlx_sessions`.
//!
//! - `adopts_every_live_session`: sessions written by their own store (edge states, a 1 MiB
//!   state, expired and about-to-expire ones), adopted in batches of 100, read back one by one;
//! - `copy_only_then_final_run_prunes_ended_sessions`: the two-step runbook, with sign-outs,
//!   new sessions, updates and id changes in between;
//! - `aborted_runs_resume`: runs aborted for real mid-way, then a run to completion;
//! - `two_runs_at_once`: two adoptions on two pools at the same moment;
//! - `foreign_table_is_refused_untouched`, `nothing_to_do_without_their_table`,
//!   `existing_backup_table_is_refused`: what is not adopted;
//! - `large_states_fill_one_batch`: many big states in one batch;
//! - `rows_their_store_cannot_write`: rows their schema holds but their store never writes;
//! - `finished_adoption_into_another_table_is_not_repeated`: a run after a finished adoption into
//!   another table than `sessions` brings back no signed-out session and overwrites no update;
//! - `subjects_that_cannot_be_stored_are_left_behind`: sessions whose subject cannot be stored.
//!
//! Each test runs on SQLite (a temporary file), PostgreSQL and MariaDB/MySQL, on a database of
//! its own (`pss_adopt_<uuid>`) that is dropped when the test ends, also when it panics. The
//! servers come from `PAVEX_SESSION_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `PAVEX_SESSION_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`); an unreachable server fails the test.

use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{
    AdoptPavexSessionSqlxTable, AdoptionReport, MismatchKind, SchemaCheckError, SeaOrmSessionStore,
    SessionHandle, SessionsTable,
};
use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use sea_orm::{ConnectOptions, DatabaseConnection, DbErr};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _};
use std::{
    borrow::Cow,
    collections::{BTreeMap, BTreeSet, HashMap},
    num::NonZeroU64,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

/// Declares `async fn $name(backend: Backend)` once and runs it as `sqlite::$name`,
/// `postgres::$name` and `mysql::$name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        on_every_backend!(@backend sqlite, Sqlite, $($name),*);
        on_every_backend!(@backend postgres, Postgres, $($name),*);
        on_every_backend!(@backend mysql, MySql, $($name),*);
    };
    (@backend $module:ident, $variant:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::$variant).await
                }
            )*
        }
    };
}

on_every_backend!(
    adopts_every_live_session,
    copy_only_then_final_run_prunes_ended_sessions,
    aborted_runs_resume,
    two_runs_at_once,
    foreign_table_is_refused_untouched,
    nothing_to_do_without_their_table,
    existing_backup_table_is_refused,
    large_states_fill_one_batch,
    rows_their_store_cannot_write,
    deadlines_their_store_cannot_write,
    empty_tables,
    batch_sizes_at_their_limits,
    finished_adoption_into_another_table_is_not_repeated,
    subjects_that_cannot_be_stored_are_left_behind,
);

/// SQLite only (see [`numeric_state`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_numeric_state() {
    numeric_state(Backend::Sqlite).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

/// Their table, and ours once adopted.
const SESSIONS: &str = "sessions";
/// Where their table is kept (`pavex_session_sea_orm_migration::SQLX_BACKUP_TABLE`).
const BACKUP: &str = "pavex_session_sqlx_sessions";
/// The revoked sign-ins beside our `sessions` table (`SessionsTable::revoked`): the staging
/// table's, renamed together with it.
const SESSIONS_REVOKED: &str = "sessions_revoked";
/// Where sessions are copied first (`ADOPTION_STAGING_TABLE`).
const STAGING: &str = "pavex_session_sea_orm_adopting";
/// The revoked sign-ins beside the staging table, created with it by our migration.
const STAGING_REVOKED: &str = "pavex_session_sea_orm_adopting_revoked";
/// Our migrator's history table (`MIGRATION_TABLE`).
const HISTORY: &str = "pavex_session_sea_orm_migrations";
/// The store's own table, when it is not `sessions`.
const APP_SESSIONS: &str = "app_sessions";
/// The revoked sign-ins beside [`APP_SESSIONS`].
const APP_SESSIONS_REVOKED: &str = "app_sessions_revoked";
/// The largest gap accepted between the deadline their store reported and ours.
const DEADLINE_TOLERANCE: Duration = Duration::from_secs(1);

fn batch(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).expect("not zero")
}

fn adoption(batch_size: u64) -> AdoptPavexSessionSqlxTable {
    AdoptPavexSessionSqlxTable::new(SessionsTable::default())
        .with_batch_size(batch(batch_size))
        .with_subject_key("user_id")
}

// ---------------------------------------------------------------------------------------------
// a + b: every live session, read back
// ---------------------------------------------------------------------------------------------

/// Their store writes 2 000 ordinary sessions, a set of edge states, a 1 MiB state, a session
/// for a century; 5 sessions expire through their store (1 s TTL) and 1 000 expired rows are
/// inserted in their format; 3 sessions are left with 6 s. Adopted in batches of 100: every live
/// session loads through our store with the state and (within 1 s) the deadline their store
/// reported, the expired ones do not, their rows are kept as they were, `migrate()` is a no-op,
/// `sessions_of` finds each subject's sessions, and the about-to-expire ones expire on time.
async fn adopts_every_live_session(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;

    // Expire through their own store: a 1 s TTL, waited out below.
    let expiring: Vec<Written> = (0..5)
        .map(|n| Written::new(json!({"user_id": 900 + n, "soon_gone": true}), 1))
        .collect();
    create_all(&theirs, &expiring).await;
    let expiring_written = Instant::now();

    let mut live: Vec<Written> = (0..2_000)
        .map(|n| Written::new(bulk_state(n), 3_600 + n % 600))
        .collect();
    live.extend(
        edge_states(backend)
            .into_iter()
            .map(|state| Written::new(state, 7_200)),
    );
    live.push(Written::new(
        json!({"user_id": "big", "blob": "🦀".repeat(256 * 1024), "tail": "end"}),
        7_200,
    ));
    live.push(Written::new(
        json!({"user_id": "century"}),
        100 * 365 * 24 * 3_600,
    ));
    create_all(&theirs, &live).await;

    let expired_rows: Vec<TheirRow> = (0..1_000_i64)
        .map(|n| TheirRow {
            id: uuid::Uuid::new_v4().to_string(),
            deadline: match n {
                0 => Deadline::At(0),
                _ => Deadline::In(-n * 3),
            },
            state: json!({"user_id": n, "expired": true}).to_string(),
        })
        .collect();
    fixture.insert_theirs(&expired_rows).await;
    if let Some(wait) = Duration::from_millis(2_100).checked_sub(expiring_written.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    for session in &expiring {
        assert!(
            theirs
                .load(&session.id)
                .await
                .expect("their load")
                .is_none(),
            "{backend:?}: expired for their store"
        );
    }

    // What their store reports for each live session, just before the adoption.
    let mut expected = Vec::new();
    for session in &live {
        expected.push(their_view(&theirs, session).await);
    }
    // Changed: a session whose subject cannot be stored is now left behind and counted, not adopted without a subject.
    let (expected, refused): (Vec<TheirView>, Vec<TheirView>) = expected
        .into_iter()
        .partition(|seen| !subject_refused(&seen.state));
    // `true`, an object, an array, 256 characters; and, where their store can write it, a NUL.
    let refused_expected = match backend {
        Backend::Postgres => 4,
        _ => 5,
    };
    assert_eq!(refused.len(), refused_expected, "{backend:?}");
    // Written last, so that they still have a few seconds left when the adoption runs.
    let soon: Vec<Written> = (0..3)
        .map(|n| Written::new(json!({"user_id": "soon", "n": n}), 6))
        .collect();
    create_all(&theirs, &soon).await;
    let mut soon_expected = Vec::new();
    for session in &soon {
        soon_expected.push(their_view(&theirs, session).await);
    }
    let their_rows = fixture.render(SESSIONS).await;
    let total = live.len() + soon.len() + expiring.len() + expired_rows.len();
    assert_eq!(their_rows.len(), total, "{backend:?}: their table");
    let live_count = expected.len() + soon.len();

    let started = Instant::now();
    let report = adoption(100)
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: adoption failed: {e}"));
    let took = started.elapsed();
    assert_report(
        backend,
        &report,
        Expected {
            copied: live_count,
            unreadable: 0,
            subject_refused: refused.len(),
            pruned: 0,
            renamed: true,
        },
    );

    // The adopted table has the current schema's subject index: partial where the database can.
    let partial = match backend {
        Backend::Postgres => {
            fixture
                .strings(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() \
                     AND tablename = 'sessions' AND indexdef LIKE '%WHERE (subject IS NOT NULL)'",
                )
                .await
        }
        Backend::MySql => vec![],
        Backend::Sqlite => {
            fixture
                .strings("SELECT name FROM pragma_index_list('sessions') WHERE partial = 1")
                .await
        }
    };
    let partial_expected = match backend {
        Backend::MySql => vec![],
        _ => vec!["idx_pavex_session_sea_orm_adopting_subject".to_owned()],
    };
    assert_eq!(partial, partial_expected, "{backend:?}");

    let store = fixture.our_store().with_subject_key("user_id");
    // The about-to-expire ones first: they must still be there, with the deadline they had.
    for seen in &soon_expected {
        let left = seen.deadline.saturating_duration_since(Instant::now());
        match store.load(&seen.id).await.expect("our load") {
            Some(record) => {
                seen.assert_same(backend, &record);
            }
            None => assert!(
                left <= DEADLINE_TOLERANCE,
                "{backend:?}: a session with {left:?} left was lost (adoption took {took:?})"
            ),
        }
    }
    let mut max_gap = Duration::ZERO;
    for seen in &expected {
        let record = store
            .load(&seen.id)
            .await
            .expect("our load")
            .unwrap_or_else(|| panic!("{backend:?}: live session {:?} lost", seen.id.inner()));
        max_gap = max_gap.max(seen.assert_same(backend, &record));
    }
    eprintln!(
        "{backend:?}: adopted {live_count} sessions in {took:?}; largest deadline gap {max_gap:?}"
    );
    for seen in &refused {
        assert!(
            store.load(&seen.id).await.expect("our load").is_none(),
            "{backend:?}: a session whose subject cannot be stored was adopted"
        );
    }
    for session in expired_rows
        .iter()
        .map(|row| session_id(row.id.parse().expect("a uuid")))
        .chain(expiring.iter().map(|s| s.id))
    {
        assert!(
            store.load(&session).await.expect("our load").is_none(),
            "{backend:?}: an expired session came back"
        );
    }
    let all: Vec<SessionId> = expected
        .iter()
        .chain(&soon_expected)
        .map(|s| s.id)
        .collect();
    assert_eq!(fixture.our_ids().await, handles(&all), "{backend:?}");
    assert_eq!(
        fixture.render(BACKUP).await,
        their_rows,
        "{backend:?}: their rows are kept as they were"
    );
    // Changed: a finished run now records itself in our history table.
    // Changed: the staging table's revoked sign-ins are renamed with it (none left behind).
    assert_eq!(
        fixture.tables().await,
        names(backend, &[BACKUP, HISTORY, SESSIONS, SESSIONS_REVOKED]),
        "{backend:?}: tables after the adoption"
    );

    // migrate() finds our table current: a no-op that keeps every session.
    store
        .migrate()
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: migrate() after adoption: {e}"));
    store.migrate().await.expect("migrate() again");
    assert_eq!(fixture.our_ids().await, handles(&all), "{backend:?}");
    for seen in &expected {
        let record = store
            .load(&seen.id)
            .await
            .expect("our load")
            .unwrap_or_else(|| panic!("{backend:?}: lost after migrate()"));
        seen.assert_same(backend, &record);
    }

    // Each subject's sessions.
    let mut by_subject: BTreeMap<String, BTreeSet<Vec<u8>>> = BTreeMap::new();
    for seen in expected.iter().chain(&soon_expected) {
        if let Some(subject) = subject_of(&seen.state) {
            by_subject
                .entry(subject)
                .or_default()
                .insert(SessionHandle::of(&seen.id).as_bytes().to_vec());
        }
    }
    assert!(by_subject.len() > 50, "{backend:?}: {}", by_subject.len());
    for subject in ["7", "alice", "-3", "1.5", "18446744073709551615", "big"] {
        assert!(by_subject.contains_key(subject), "{backend:?}: {subject}");
    }
    assert!(by_subject.contains_key(&"é".repeat(255)));
    for (subject, handles) in &by_subject {
        let listed = store
            .sessions_of(subject)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: sessions_of({subject:?}): {e:#}"));
        let listed: BTreeSet<Vec<u8>> = listed
            .iter()
            .map(|s| s.handle.as_bytes().to_vec())
            .collect();
        // The about-to-expire ones may be gone by now.
        match subject.as_str() {
            "soon" => assert!(listed.is_subset(handles), "{backend:?}"),
            _ => assert_eq!(&listed, handles, "{backend:?}: sessions_of({subject:?})"),
        }
        if subject != "soon" {
            let count = store.count_sessions_of(subject).await.expect("count");
            assert_eq!(count, handles.len() as u64, "{backend:?}: {subject:?}");
        }
    }
    for subject in ["é".repeat(256), "true".to_owned(), "900".to_owned()] {
        let listed = store.sessions_of(&subject).await.expect("sessions_of");
        assert!(listed.is_empty(), "{backend:?}: {subject:?}: {listed:?}");
    }

    // An adopted session is an ordinary one: updated, moved, deleted.
    let first = &expected[0];
    let state = state(json!({"user_id": "moved", "after": "adoption"}));
    store
        .update(
            &first.id,
            SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl: Duration::from_secs(60),
            },
        )
        .await
        .expect("our update of an adopted session");
    let new_id = SessionId::random();
    store
        .change_id(&first.id, &new_id)
        .await
        .expect("change_id");
    assert_eq!(
        store.load(&new_id).await.expect("load").map(|r| r.state),
        Some(state)
    );
    assert_eq!(
        store.sessions_of("moved").await.expect("sessions_of").len(),
        1
    );
    store.delete(&expected[1].id).await.expect("our delete");
    assert!(store.load(&expected[1].id).await.expect("load").is_none());
    assert_eq!(
        fixture.render(BACKUP).await,
        their_rows,
        "{backend:?}: their rows are still as they were"
    );

    // The about-to-expire sessions expire at their deadline: nothing extended them.
    let last = soon_expected
        .iter()
        .map(|s| s.deadline)
        .max()
        .expect("three");
    tokio::time::sleep(last.saturating_duration_since(Instant::now()) + DEADLINE_TOLERANCE).await;
    for seen in &soon_expected {
        assert!(
            store.load(&seen.id).await.expect("load").is_none(),
            "{backend:?}: an adopted session outlived its deadline"
        );
    }

    // Adopted already.
    let again = adoption(100).run(&fixture.db).await.expect("a second run");
    assert!(again.nothing_to_do, "{backend:?}: {again:?}");
    assert_eq!((again.copied, again.renamed), (0, false), "{backend:?}");
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// c: a copy, changes while the old version still serves, then the final run
// ---------------------------------------------------------------------------------------------

/// `copy_only()` copies and renames nothing; then, through their store, 40 sessions end, 30 are
/// created, 25 updated (state and TTL), 10 TTLs extended and 10 ids changed; the final run must
/// refresh what changed and prune every session that ended.
async fn copy_only_then_final_run_prunes_ended_sessions(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let sessions: Vec<Written> = (0..350)
        .map(|n| Written::new(bulk_state(n), 3_600))
        .collect();
    create_all(&theirs, &sessions).await;
    fixture
        .insert_theirs(&expired_rows(50, "before the copy"))
        .await;

    let copied = adoption(100)
        .copy_only()
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: copy_only: {e}"));
    assert_report(
        backend,
        &copied,
        Expected {
            copied: 350,
            unreadable: 0,
            subject_refused: 0,
            pruned: 0,
            renamed: false,
        },
    );
    assert_eq!(
        fixture.tables().await,
        names(backend, &[STAGING, STAGING_REVOKED, SESSIONS]),
        "{backend:?}: their table still in use"
    );
    assert_eq!(fixture.count(STAGING).await, 350, "{backend:?}");
    // Our store still refuses their table.
    match fixture.our_store().check_table().await {
        Err(SchemaCheckError::Mismatch(m)) => assert_eq!(m.kind(), MismatchKind::PavexSessionSqlx),
        other => panic!("{backend:?}: {other:?}"),
    }
    // A second copy only refreshes: still 350 rows, none twice.
    let recopied = adoption(100)
        .copy_only()
        .run(&fixture.db)
        .await
        .expect("copy");
    assert_eq!(
        (recopied.copied, recopied.renamed),
        (350, false),
        "{backend:?}"
    );
    assert_eq!(fixture.count(STAGING).await, 350, "{backend:?}");

    // The old version keeps serving.
    let (signed_out, rest) = sessions.split_at(40);
    for session in signed_out {
        theirs.delete(&session.id).await.expect("their delete");
    }
    let (updated, rest) = rest.split_at(25);
    let updated: Vec<Written> = updated
        .iter()
        .enumerate()
        .map(|(n, s)| Written {
            id: s.id,
            state: state(json!({"user_id": "updated", "n": n, "quote": "it's \"new\" \\"})),
            ttl: Duration::from_secs(600),
        })
        .collect();
    for session in &updated {
        theirs
            .update(&session.id, session.record())
            .await
            .expect("their update");
    }
    let (extended, rest) = rest.split_at(10);
    let extended: Vec<Written> = extended
        .iter()
        .map(|s| Written {
            ttl: Duration::from_secs(86_400),
            ..s.clone()
        })
        .collect();
    for session in &extended {
        theirs
            .update_ttl(&session.id, session.ttl)
            .await
            .expect("their update_ttl");
    }
    let (moved_from, unchanged) = rest.split_at(10);
    let mut moved = Vec::new();
    for session in moved_from {
        let to = SessionId::random();
        theirs
            .change_id(&session.id, &to)
            .await
            .expect("their change_id");
        moved.push(Written {
            id: to,
            ..session.clone()
        });
    }
    let created: Vec<Written> = (0..30)
        .map(|n| Written::new(json!({"user_id": "new", "n": n}), 1_800))
        .collect();
    create_all(&theirs, &created).await;

    let live: Vec<&Written> = unchanged
        .iter()
        .chain(&updated)
        .chain(&extended)
        .chain(&moved)
        .chain(&created)
        .collect();
    assert_eq!(live.len(), 350 - 40 + 30, "{backend:?}");
    let mut expected = Vec::new();
    for session in &live {
        expected.push(their_view(&theirs, session).await);
    }

    let report = adoption(100)
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: the final run: {e}"));
    assert_report(
        backend,
        &report,
        Expected {
            copied: live.len(),
            unreadable: 0,
            subject_refused: 0,
            // The 40 signed out, and the 10 old ids of the moved sessions.
            pruned: 50,
            renamed: true,
        },
    );
    let store = fixture.our_store();
    for seen in &expected {
        let record = store
            .load(&seen.id)
            .await
            .expect("our load")
            .unwrap_or_else(|| panic!("{backend:?}: live session lost"));
        seen.assert_same(backend, &record);
    }
    for ended in signed_out.iter().chain(moved_from) {
        assert!(
            store.load(&ended.id).await.expect("our load").is_none(),
            "{backend:?}: an ended session came back"
        );
    }
    let ids: Vec<SessionId> = expected.iter().map(|s| s.id).collect();
    assert_eq!(fixture.our_ids().await, handles(&ids), "{backend:?}");
    // Changed: a finished run now records itself in our history table; the staging table's
    // revoked sign-ins are renamed with it (none left behind).
    assert_eq!(
        fixture.tables().await,
        names(backend, &[BACKUP, HISTORY, SESSIONS, SESSIONS_REVOKED]),
        "{backend:?}"
    );
    assert_eq!(
        fixture.count(BACKUP).await,
        350 - 40 + 30 + 50,
        "{backend:?}"
    );
    let store = store.with_subject_key("user_id");
    // A slice: `sessions_of` now answers a page that derefs to its sessions.
    let subjects = |listed: &[pavex_session_sea_orm::SubjectSession]| -> BTreeSet<Vec<u8>> {
        listed
            .iter()
            .map(|s| s.handle.as_bytes().to_vec())
            .collect()
    };
    let updated_ids: Vec<SessionId> = updated.iter().map(|s| s.id).collect();
    let created_ids: Vec<SessionId> = created.iter().map(|s| s.id).collect();
    assert_eq!(
        subjects(&store.sessions_of("updated").await.expect("sessions_of")),
        handles(&updated_ids),
        "{backend:?}: the subjects of the updated sessions"
    );
    assert_eq!(
        subjects(&store.sessions_of("new").await.expect("sessions_of")),
        handles(&created_ids),
        "{backend:?}: the subjects of the new sessions"
    );
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// c: runs aborted for real
// ---------------------------------------------------------------------------------------------

/// 20 000 rows (15 000 live), batches of 100: one run aborted after 50 ms, one aborted once it
/// has copied a quarter more, then a run to completion: every live session once, none else.
async fn aborted_runs_resume(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture.their_store().await;
    let rows: Vec<TheirRow> = (0..20_000_i64)
        .map(|n| TheirRow {
            id: uuid::Uuid::new_v4().to_string(),
            deadline: match n % 4 {
                0 => Deadline::In(-60 - n),
                _ => Deadline::In(3_600 + n % 100),
            },
            state: json!({"user_id": n % 1000, "n": n}).to_string(),
        })
        .collect();
    fixture.insert_theirs(&rows).await;
    let live: Vec<SessionId> = rows
        .iter()
        .filter(|row| matches!(row.deadline, Deadline::In(s) if s > 0))
        .map(|row| session_id(row.id.parse().expect("a uuid")))
        .collect();
    assert_eq!(live.len(), 15_000);

    // Aborted after 50 ms, wherever it is.
    let db = fixture.connect().await;
    let run = tokio::spawn(async move { adoption(100).run(&db).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    run.abort();
    let first = run.await;
    let after_first = fixture.count_or_zero(STAGING).await;
    eprintln!(
        "{backend:?}: run aborted after 50 ms: {} ; {after_first} rows staged",
        describe_join(&first)
    );
    assert!(
        first.as_ref().is_err_and(|e| e.is_cancelled()),
        "{backend:?}: the run ended within 50 ms: {first:?}"
    );

    // Aborted once it has staged at least a quarter more.
    let target = after_first + live.len() as u64 / 4;
    let db = fixture.connect().await;
    let run = tokio::spawn(async move { adoption(100).run(&db).await });
    let waited = Instant::now();
    while fixture.count_or_zero(STAGING).await < target && !run.is_finished() {
        assert!(waited.elapsed() < Duration::from_secs(120), "{backend:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    run.abort();
    let second = run.await;
    let after_second = fixture.count_or_zero(STAGING).await;
    eprintln!(
        "{backend:?}: run aborted mid-copy: {} ; {after_second} rows staged (of {})",
        describe_join(&second),
        live.len()
    );
    assert!(
        second.as_ref().is_err_and(|e| e.is_cancelled()),
        "{backend:?}: the run finished before the abort: {second:?}"
    );
    assert!(
        after_second > after_first && after_second < live.len() as u64,
        "{backend:?}: {after_first} then {after_second} of {}",
        live.len()
    );
    assert_eq!(
        fixture.tables().await,
        names(backend, &[STAGING, STAGING_REVOKED, SESSIONS]),
        "{backend:?}: nothing renamed"
    );

    let report = adoption(100)
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: the run after the aborts: {e}"));
    assert_report(
        backend,
        &report,
        Expected {
            copied: live.len(),
            unreadable: 0,
            subject_refused: 0,
            pruned: 0,
            renamed: true,
        },
    );
    assert_eq!(fixture.count(SESSIONS).await, live.len() as u64);
    assert_eq!(fixture.our_ids().await, handles(&live), "{backend:?}");
    assert_eq!(fixture.count(BACKUP).await, 20_000);
    let store = fixture.our_store();
    for (row, id) in rows
        .iter()
        .filter(|row| matches!(row.deadline, Deadline::In(s) if s > 0))
        .zip(&live)
        .step_by(97)
    {
        let record = store.load(id).await.expect("load").expect("live");
        assert_eq!(Value::from(as_map(record.state)), parse(&row.state));
    }
    fixture.close().await;
}

fn describe_join(
    outcome: &Result<Result<AdoptionReport, DbErr>, tokio::task::JoinError>,
) -> String {
    match outcome {
        Ok(Ok(report)) => format!("finished: {report:?}"),
        Ok(Err(e)) => format!("failed: {e}"),
        Err(e) if e.is_cancelled() => "cancelled".to_owned(),
        Err(e) => format!("panicked: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// d: two at once
// ---------------------------------------------------------------------------------------------

/// Two adoptions on two pools, started together (twice) and staggered (the second starts once
/// the first has staged rows): each run is Ok or fails; a failed one run again (as the CLI does)
/// succeeds; exactly one run renamed; every live session is there once.
async fn two_runs_at_once(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    for round in ["together", "together again", "staggered"] {
        fixture.reset().await;
        fixture.their_store().await;
        let rows: Vec<TheirRow> = (0..3_000_i64)
            .map(|n| TheirRow {
                id: uuid::Uuid::new_v4().to_string(),
                deadline: Deadline::In(if n % 6 == 0 { -10 } else { 3_600 }),
                state: json!({"user_id": n % 100, "n": n}).to_string(),
            })
            .collect();
        fixture.insert_theirs(&rows).await;
        let live: Vec<SessionId> = rows
            .iter()
            .filter(|row| matches!(row.deadline, Deadline::In(s) if s > 0))
            .map(|row| session_id(row.id.parse().expect("a uuid")))
            .collect();

        let (db_a, db_b) = (fixture.connect().await, fixture.connect().await);
        let staggered = round == "staggered";
        let (first, second) = (adoption(100), adoption(100));
        let (a, b) = tokio::join!(first.run(&db_a), async {
            if staggered {
                let waited = Instant::now();
                while fixture.count_or_zero(STAGING).await == 0
                    && waited.elapsed() < Duration::from_secs(30)
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            second.run(&db_b).await
        });
        let mut outcomes = vec![describe(&a), describe(&b)];
        let mut renamed = [&a, &b]
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.renamed))
            .count();
        let failed = [&a, &b].iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            let db = fixture.connect().await;
            for _ in 0..failed {
                let rerun = adoption(100).run(&db).await;
                outcomes.push(format!("re-run: {}", describe(&rerun)));
                let rerun = rerun.unwrap_or_else(|e| {
                    panic!("{backend:?} {round}: the re-run failed: {e} ({outcomes:?})")
                });
                renamed += usize::from(rerun.renamed);
            }
        }
        let left = fixture.tables().await;
        let staging_rows = fixture.count_or_zero(STAGING).await;
        eprintln!(
            "{backend:?} {round}: {outcomes:#?}; tables afterwards {left:?} (staging rows: \
             {staging_rows})"
        );
        assert!(
            failed < 2,
            "{backend:?} {round}: both runs failed: {outcomes:?}"
        );
        assert_eq!(renamed, 1, "{backend:?} {round}: {outcomes:?}");
        assert_eq!(
            fixture.our_ids().await,
            handles(&live),
            "{backend:?} {round}: every live session once"
        );
        assert_eq!(fixture.count(BACKUP).await, 3_000, "{backend:?} {round}");
        let store = fixture.our_store();
        for id in live.iter().step_by(53) {
            assert!(store.load(id).await.expect("load").is_some(), "{backend:?}");
        }
        // Changed: a finished run now records itself in our history table; the staging table's
        // revoked sign-ins are renamed with it. A run that lost the race may have created a new
        // staging table (with its revoked sign-ins) after the rename.
        assert!(
            left == names(backend, &[BACKUP, HISTORY, SESSIONS, SESSIONS_REVOKED])
                || left
                    == names(
                        backend,
                        &[
                            STAGING,
                            STAGING_REVOKED,
                            BACKUP,
                            HISTORY,
                            SESSIONS,
                            SESSIONS_REVOKED
                        ]
                    ),
            "{backend:?} {round}: {left:?}"
        );
        db_a.close().await.ok();
        db_b.close().await.ok();
    }
    fixture.close().await;
}

fn describe(outcome: &Result<AdoptionReport, DbErr>) -> String {
    match outcome {
        Ok(report) => format!("Ok({report:?})"),
        Err(e) => format!("Err({e})"),
    }
}

// ---------------------------------------------------------------------------------------------
// e: what is not adopted
// ---------------------------------------------------------------------------------------------

/// An application's own `sessions` table is refused with the mismatch our store reports, and
/// nothing in the database changes (no staging table either).
async fn foreign_table_is_refused_untouched(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture
        .run("CREATE TABLE sessions (id INTEGER PRIMARY KEY, name TEXT)")
        .await;
    fixture
        .run("INSERT INTO sessions (id, name) VALUES (1, 'alice'), (2, 'bob'), (3, NULL)")
        .await;
    let rows = fixture.render_any(SESSIONS, &["id", "name"]).await;
    assert_eq!(rows.len(), 3);
    let mismatch = match fixture.our_store().check_table().await {
        Err(SchemaCheckError::Mismatch(m)) => m,
        other => panic!("{backend:?}: {other:?}"),
    };
    assert_eq!(mismatch.kind(), MismatchKind::Foreign);
    for run in [adoption(100), adoption(1).copy_only()] {
        match run.run(&fixture.db).await {
            Err(DbErr::Migration(message)) => assert_eq!(message, mismatch.to_string()),
            other => panic!("{backend:?}: {other:?}"),
        }
    }
    assert_eq!(fixture.render_any(SESSIONS, &["id", "name"]).await, rows);
    assert_eq!(
        fixture.tables().await,
        names(backend, &[SESSIONS]),
        "{backend:?}"
    );
    fixture.close().await;
}

/// No `sessions` table: nothing to do, and nothing created. Our own table (after `migrate()`):
/// nothing to do, sessions untouched.
async fn nothing_to_do_without_their_table(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture
        .run("CREATE TABLE unrelated (id INTEGER PRIMARY KEY)")
        .await;
    for run in [adoption(100), adoption(100).copy_only()] {
        let report = run.run(&fixture.db).await.expect("no table");
        assert!(report.nothing_to_do, "{backend:?}: {report:?}");
        assert_eq!(
            (
                report.copied,
                report.unreadable,
                report.subject_refused,
                report.pruned,
                report.renamed
            ),
            (0, 0, 0, 0, false)
        );
    }
    assert_eq!(
        fixture.tables().await,
        names(backend, &["unrelated"]),
        "{backend:?}"
    );

    let store = fixture.our_store();
    store.migrate().await.expect("migrate");
    let ours = Written::new(json!({"user_id": 1}), 3_600);
    store.create(&ours.id, ours.record()).await.expect("create");
    let report = adoption(100).run(&fixture.db).await.expect("our table");
    assert!(report.nothing_to_do, "{backend:?}: {report:?}");
    assert_eq!(
        store.load(&ours.id).await.expect("load").map(|r| r.state),
        Some(ours.state.clone())
    );
    assert_eq!(
        fixture.tables().await,
        names(backend, &[HISTORY, SESSIONS, SESSIONS_REVOKED, "unrelated"]),
        "{backend:?}"
    );
    fixture.close().await;
}

/// Their table next to a `pavex_session_sqlx_sessions` that exists already: refused before
/// anything is created or copied.
async fn existing_backup_table_is_refused(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let sessions: Vec<Written> = (0..10).map(|n| Written::new(bulk_state(n), 60)).collect();
    create_all(&theirs, &sessions).await;
    fixture
        .run(&format!("CREATE TABLE {BACKUP} (id INTEGER PRIMARY KEY)"))
        .await;
    let before = fixture.render(SESSIONS).await;
    match adoption(100).run(&fixture.db).await {
        Err(DbErr::Migration(message)) => assert!(message.contains(BACKUP), "{message}"),
        other => panic!("{backend:?}: {other:?}"),
    }
    assert_eq!(fixture.render(SESSIONS).await, before);
    assert_eq!(
        fixture.tables().await,
        names(backend, &[BACKUP, SESSIONS]),
        "{backend:?}"
    );
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// Rows of unusual size or shape
// ---------------------------------------------------------------------------------------------

/// 40 states of 512 KiB each (20 MiB, more than MariaDB's default 16 MiB `max_allowed_packet`),
/// written by their store one by one, adopted with the default batch size (1 000).
async fn large_states_fill_one_batch(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let sessions: Vec<Written> = (0..40)
        .map(|n| Written::new(json!({"user_id": n, "blob": "x".repeat(512 * 1024)}), 3_600))
        .collect();
    create_all(&theirs, &sessions).await;
    let report = AdoptPavexSessionSqlxTable::new(SessionsTable::default())
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: 20 MiB in one batch: {e}"));
    assert_report(
        backend,
        &report,
        Expected {
            copied: 40,
            unreadable: 0,
            subject_refused: 0,
            pruned: 0,
            renamed: true,
        },
    );
    let store = fixture.our_store();
    for session in &sessions {
        let record = store.load(&session.id).await.expect("load").expect("live");
        assert_eq!(record.state, session.state);
    }
    fixture.close().await;
}

/// Rows their schema holds but their store never writes: ids that are not UUIDs, states that
/// are not JSON objects. They are skipped and counted, the rest adopted, and they stay in the
/// kept table.
async fn rows_their_store_cannot_write(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let normal: Vec<Written> = (0..5).map(|n| Written::new(bulk_state(n), 3_600)).collect();
    create_all(&theirs, &normal).await;
    let mut odd = vec![
        uuid_row("[1, 2]"),
        uuid_row("\"text\""),
        uuid_row("null"),
        uuid_row("[]"),
    ];
    match backend {
        // The JSONB column has NUMERIC affinity on SQLite: a number stored there is an INTEGER,
        // not text, and is left out of this test (see `sqlite_numeric_state`).
        Backend::Sqlite => {}
        _ => odd.push(uuid_row("42")),
    }
    if backend != Backend::Postgres {
        for id in ["not-a-uuid", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", ""] {
            odd.push(TheirRow {
                id: id.to_owned(),
                deadline: Deadline::In(3_600),
                state: "{}".to_owned(),
            });
        }
    }
    fixture.insert_theirs(&odd).await;
    let their_rows = fixture.render(SESSIONS).await;
    for run in [adoption(2).copy_only(), adoption(2)] {
        let report = run
            .run(&fixture.db)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: unreadable rows: {e}"));
        assert_eq!(
            (
                report.copied,
                report.unreadable,
                report.subject_refused,
                report.pruned
            ),
            (5, odd.len() as u64, 0, 0),
            "{backend:?}: {report:?}"
        );
    }
    let store = fixture.our_store();
    for session in &normal {
        let record = store.load(&session.id).await.expect("load").expect("live");
        assert_eq!(record.state, session.state);
    }
    let ids: Vec<SessionId> = normal.iter().map(|s| s.id).collect();
    assert_eq!(fixture.our_ids().await, handles(&ids), "{backend:?}");
    assert_eq!(fixture.render(BACKUP).await, their_rows, "{backend:?}");
    fixture.close().await;
}

fn uuid_row(state: &str) -> TheirRow {
    TheirRow {
        id: uuid::Uuid::new_v4().to_string(),
        deadline: Deadline::In(3_600),
        state: state.to_owned(),
    }
}

/// Deadlines their store cannot write (jiff stops at year 9999): one in year 10000 is adopted
/// as it is; one whose milliseconds overflow 64 bits (PostgreSQL: `infinity`) makes the
/// adoption fail before anything is renamed, their table untouched; without it, the adoption
/// succeeds.
async fn deadlines_their_store_cannot_write(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let normal: Vec<Written> = (0..5).map(|n| Written::new(bulk_state(n), 3_600)).collect();
    create_all(&theirs, &normal).await;
    let (far, overflow) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let year_10000 = 253_402_300_800 + 86_400 * 150;
    let insert_far = |id: uuid::Uuid, at: &'static str, seconds: i64| match backend {
        Backend::Postgres => format!(
            "INSERT INTO sessions (id, deadline, state) \
             VALUES ('{id}', '{at}', '{{\"user_id\": \"far\"}}')"
        ),
        _ => format!(
            "INSERT INTO sessions (id, deadline, state) \
             VALUES ('{id}', {seconds}, '{{\"user_id\": \"far\"}}')"
        ),
    };
    fixture
        .run(&insert_far(overflow, "infinity", i64::MAX / 1000 + 1))
        .await;
    let their_rows = fixture.render(SESSIONS).await;
    let outcome = adoption(2).run(&fixture.db).await;
    eprintln!(
        "{backend:?}: with an overflowing deadline: {}",
        describe(&outcome)
    );
    if backend == Backend::Sqlite {
        // SQLite turns the overflowing product into a REAL: that session is unreadable and left
        // behind, the others are adopted.
        let report = outcome.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!((report.copied, report.unreadable), (5, 1), "{backend:?}");
        fixture.close().await;
        return;
    }
    assert!(outcome.is_err(), "{backend:?}: {outcome:?}");
    assert_eq!(fixture.render(SESSIONS).await, their_rows, "{backend:?}");
    assert_eq!(
        fixture.tables().await,
        names(backend, &[STAGING, STAGING_REVOKED, SESSIONS]),
        "{backend:?}"
    );

    fixture
        .run(&format!("DELETE FROM sessions WHERE id = '{overflow}'"))
        .await;
    fixture
        .run(&insert_far(far, "10000-06-01 00:00:00+00", year_10000))
        .await;
    let outcome = adoption(2).run(&fixture.db).await;
    eprintln!(
        "{backend:?}: with a deadline in year 10000: {}",
        describe(&outcome)
    );
    let report = outcome.unwrap_or_else(|e| panic!("{backend:?}: a deadline in year 10000: {e}"));
    assert_eq!((report.copied, report.renamed), (6, true), "{backend:?}");
    let store = fixture.our_store().with_subject_key("user_id");
    let far_session = store.load(&session_id(far)).await;
    eprintln!("{backend:?}: load of the session past year 9999: {far_session:?}");
    let listed = store.sessions_of("far").await;
    eprintln!("{backend:?}: sessions_of(\"far\"): {listed:?}");
    assert!(
        far_session.is_ok_and(|s| s.is_some()),
        "{backend:?}: the session past year 9999"
    );
    assert!(listed.is_ok_and(|l| l.len() == 1), "{backend:?}");
    store.migrate().await.expect("migrate");
    let listed = store.sessions_of("far").await;
    eprintln!("{backend:?}: sessions_of(\"far\") after migrate(): {listed:?}");
    fixture.close().await;
}

/// SQLite: a state that is a JSON number is stored by the JSONB column (NUMERIC affinity) as
/// an INTEGER. Their store never writes one; the adoption is expected to count it unreadable.
async fn numeric_state(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let normal: Vec<Written> = (0..5).map(|n| Written::new(bulk_state(n), 3_600)).collect();
    create_all(&theirs, &normal).await;
    fixture.insert_theirs(&[uuid_row("42")]).await;
    assert_eq!(
        fixture
            .strings("SELECT typeof(state) FROM sessions WHERE state = 42")
            .await,
        vec!["integer".to_owned()]
    );
    let outcome = adoption(2).run(&fixture.db).await;
    eprintln!("{backend:?}: with an INTEGER state: {}", describe(&outcome));
    let report = outcome.unwrap_or_else(|e| panic!("{backend:?}: an INTEGER state: {e}"));
    assert_eq!((report.copied, report.unreadable), (5, 1), "{backend:?}");
    fixture.close().await;
}

/// Their table empty: adopted (renamed), and our store works on it. A copy of 120 sessions,
/// then every one of them signed out: the final run prunes all 120.
async fn empty_tables(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture.their_store().await;
    let report = adoption(100)
        .run(&fixture.db)
        .await
        .expect("an empty table");
    assert_report(
        backend,
        &report,
        Expected {
            copied: 0,
            unreadable: 0,
            subject_refused: 0,
            pruned: 0,
            renamed: true,
        },
    );
    // Changed: a finished run now records itself in our history table; the staging table's
    // revoked sign-ins are renamed with it (none left behind).
    assert_eq!(
        fixture.tables().await,
        names(backend, &[BACKUP, HISTORY, SESSIONS, SESSIONS_REVOKED]),
        "{backend:?}"
    );
    let store = fixture.our_store();
    store.migrate().await.expect("migrate");
    let ours = Written::new(json!({"user_id": 1}), 60);
    store.create(&ours.id, ours.record()).await.expect("create");
    assert!(store.load(&ours.id).await.expect("load").is_some());

    fixture.reset().await;
    let theirs = fixture.their_store().await;
    let sessions: Vec<Written> = (0..120)
        .map(|n| Written::new(bulk_state(n), 3_600))
        .collect();
    create_all(&theirs, &sessions).await;
    let copied = adoption(50)
        .copy_only()
        .run(&fixture.db)
        .await
        .expect("copy");
    assert_eq!((copied.copied, copied.renamed), (120, false), "{backend:?}");
    for session in &sessions {
        theirs.delete(&session.id).await.expect("their delete");
    }
    let report = adoption(50).run(&fixture.db).await.expect("the final run");
    assert_report(
        backend,
        &report,
        Expected {
            copied: 0,
            unreadable: 0,
            subject_refused: 0,
            pruned: 120,
            renamed: true,
        },
    );
    assert!(fixture.our_ids().await.is_empty(), "{backend:?}");
    let store = fixture.our_store();
    for session in &sessions {
        assert!(store.load(&session.id).await.expect("load").is_none());
    }
    fixture.close().await;
}

/// Batches of 1 and of `u64::MAX` (the CLI accepts both).
async fn batch_sizes_at_their_limits(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    for size in [1, i64::MAX as u64, u64::MAX] {
        fixture.reset().await;
        let theirs = fixture.their_store().await;
        let sessions: Vec<Written> = (0..7).map(|n| Written::new(bulk_state(n), 3_600)).collect();
        create_all(&theirs, &sessions).await;
        fixture.insert_theirs(&expired_rows(3, "expired")).await;
        let copied = adoption(size)
            .copy_only()
            .run(&fixture.db)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: copy in batches of {size}: {e}"));
        assert_eq!(copied.copied, 7, "{backend:?}: {size}");
        theirs.delete(&sessions[0].id).await.expect("their delete");
        let report = adoption(size)
            .run(&fixture.db)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: batches of {size}: {e}"));
        assert_report(
            backend,
            &report,
            Expected {
                copied: 6,
                unreadable: 0,
                subject_refused: 0,
                pruned: 1,
                renamed: true,
            },
        );
        let ids: Vec<SessionId> = sessions[1..].iter().map(|s| s.id).collect();
        assert_eq!(
            fixture.our_ids().await,
            handles(&ids),
            "{backend:?}: {size}"
        );
    }
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// Once finished, never again
// ---------------------------------------------------------------------------------------------

/// An adoption into a table other than `sessions` (their table stays where it is; the store's
/// own table receives the copies) finishes and records itself. Then, through our store, one
/// session signs out and another is updated; their table still holds both as they were. A new
/// run (full, or copy only) does nothing: the signed-out session stays gone, the updated one
/// keeps our newer state and deadline.
async fn finished_adoption_into_another_table_is_not_repeated(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let sessions: Vec<Written> = (0..6).map(|n| Written::new(bulk_state(n), 3_600)).collect();
    create_all(&theirs, &sessions).await;
    let target = SessionsTable::new(APP_SESSIONS).expect("a valid table name");
    let adopt = || {
        AdoptPavexSessionSqlxTable::new(target.clone())
            .with_batch_size(batch(2))
            .with_subject_key("user_id")
    };
    let report = adopt()
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: adoption into {APP_SESSIONS}: {e}"));
    assert_report(
        backend,
        &report,
        Expected {
            copied: sessions.len(),
            unreadable: 0,
            subject_refused: 0,
            pruned: 0,
            renamed: false,
        },
    );
    assert_eq!(
        fixture.tables().await,
        names(
            backend,
            &[APP_SESSIONS, APP_SESSIONS_REVOKED, HISTORY, SESSIONS]
        ),
        "{backend:?}: their table is left in place"
    );
    let finished = vec![format!(
        "m20261201_000002_adopt_pavex_session_sqlx_table:{APP_SESSIONS}"
    )];
    assert_eq!(fixture.history().await, finished, "{backend:?}");

    let store = fixture
        .our_store()
        .with_table(target.clone())
        .expect("a table the backend supports")
        .with_subject_key("user_id");
    let (signed_out, updated, untouched) = (&sessions[0], &sessions[1], &sessions[2..]);
    store.delete(&signed_out.id).await.expect("our delete");
    let newer = state(json!({"user_id": "updated", "by": "our store"}));
    store
        .update(
            &updated.id,
            SessionRecordRef {
                state: Cow::Borrowed(&newer),
                ttl: Duration::from_secs(7_200),
            },
        )
        .await
        .expect("our update");
    let their_rows = fixture.render(SESSIONS).await;
    assert_eq!(
        their_rows.len(),
        sessions.len(),
        "{backend:?}: theirs unchanged"
    );

    for run in [adopt(), adopt().copy_only()] {
        let again = run
            .run(&fixture.db)
            .await
            .unwrap_or_else(|e| panic!("{backend:?}: a run after the finished one: {e}"));
        assert!(again.nothing_to_do, "{backend:?}: {again:?}");
        assert_eq!(
            (
                again.copied,
                again.unreadable,
                again.subject_refused,
                again.pruned,
                again.renamed
            ),
            (0, 0, 0, 0, false),
            "{backend:?}: {again:?}"
        );
    }

    assert!(
        store
            .load(&signed_out.id)
            .await
            .expect("our load")
            .is_none(),
        "{backend:?}: a signed-out session came back"
    );
    let record = store
        .load(&updated.id)
        .await
        .expect("our load")
        .unwrap_or_else(|| panic!("{backend:?}: the updated session was lost"));
    assert_eq!(
        record.state, newer,
        "{backend:?}: our update was overwritten"
    );
    assert!(
        record.ttl > Duration::from_secs(3_600),
        "{backend:?}: our deadline was overwritten: {:?} left",
        record.ttl
    );
    for session in untouched {
        let record = store
            .load(&session.id)
            .await
            .expect("our load")
            .unwrap_or_else(|| panic!("{backend:?}: an adopted session was lost"));
        assert_eq!(record.state, session.state, "{backend:?}");
    }
    let kept: Vec<SessionId> = sessions[1..].iter().map(|s| s.id).collect();
    assert_eq!(
        fixture.ids_of(APP_SESSIONS).await,
        handles(&kept),
        "{backend:?}"
    );
    assert_eq!(
        store
            .sessions_of("updated")
            .await
            .expect("sessions_of")
            .len(),
        1,
        "{backend:?}"
    );
    assert!(
        store
            .sessions_of("user-1")
            .await
            .expect("sessions_of")
            .is_empty(),
        "{backend:?}: the subject before our update came back"
    );
    assert_eq!(
        fixture.render(SESSIONS).await,
        their_rows,
        "{backend:?}: their table untouched"
    );
    assert_eq!(fixture.history().await, finished, "{backend:?}");
    fixture.close().await;
}

/// Sessions whose subject cannot be stored (a string of 256 characters, an array) are left
/// behind, counted in `subject_refused`, by the copy and by the final run alike, and stay in
/// the kept table; the others, a subject of 255 characters included, are adopted.
async fn subjects_that_cannot_be_stored_are_left_behind(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_store().await;
    let longest = "s".repeat(255);
    let mut adopted: Vec<Written> = (0..5).map(|n| Written::new(bulk_state(n), 3_600)).collect();
    adopted.push(Written::new(json!({"user_id": longest, "n": 5}), 3_600));
    let refused = vec![
        Written::new(json!({"user_id": "s".repeat(256), "n": 6}), 3_600),
        Written::new(json!({"user_id": ["alice", "bob"], "n": 7}), 3_600),
    ];
    create_all(&theirs, &adopted).await;
    create_all(&theirs, &refused).await;
    let their_rows = fixture.render(SESSIONS).await;
    assert_eq!(their_rows.len(), adopted.len() + refused.len());

    let copied = adoption(2)
        .copy_only()
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: copy_only: {e}"));
    assert_eq!(
        (
            copied.copied,
            copied.unreadable,
            copied.subject_refused,
            copied.renamed
        ),
        (adopted.len() as u64, 0, refused.len() as u64, false),
        "{backend:?}: {copied:?}"
    );
    assert_eq!(fixture.count(STAGING).await, adopted.len() as u64);
    let report = adoption(2)
        .run(&fixture.db)
        .await
        .unwrap_or_else(|e| panic!("{backend:?}: the final run: {e}"));
    assert_report(
        backend,
        &report,
        Expected {
            copied: adopted.len(),
            unreadable: 0,
            subject_refused: refused.len(),
            pruned: 0,
            renamed: true,
        },
    );

    let store = fixture.our_store().with_subject_key("user_id");
    for session in &adopted {
        let record = store
            .load(&session.id)
            .await
            .expect("our load")
            .unwrap_or_else(|| panic!("{backend:?}: an adoptable session was left behind"));
        assert_eq!(record.state, session.state, "{backend:?}");
    }
    for session in &refused {
        assert!(
            store.load(&session.id).await.expect("our load").is_none(),
            "{backend:?}: a session whose subject cannot be stored was adopted"
        );
    }
    let ids: Vec<SessionId> = adopted.iter().map(|s| s.id).collect();
    assert_eq!(fixture.our_ids().await, handles(&ids), "{backend:?}");
    let listed = store.sessions_of(&longest).await.expect("sessions_of");
    assert_eq!(
        listed
            .iter()
            .map(|s| s.handle.as_bytes().to_vec())
            .collect::<BTreeSet<_>>(),
        handles(&ids[5..]),
        "{backend:?}: the subject of 255 characters"
    );
    assert_eq!(
        fixture.render(BACKUP).await,
        their_rows,
        "{backend:?}: the sessions left behind stay in the kept table"
    );
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// Sessions, states and what is compared
// ---------------------------------------------------------------------------------------------

type State = HashMap<Cow<'static, str>, Value>;
type TheirStore = Arc<dyn SessionStorageBackend>;

fn state(value: Value) -> State {
    serde_json::from_value(value).expect("a JSON object")
}

fn as_map(state: State) -> serde_json::Map<String, Value> {
    state
        .into_iter()
        .map(|(k, v)| (k.into_owned(), v))
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("JSON")
}

fn session_id(id: uuid::Uuid) -> SessionId {
    // `SessionId` has no constructor from a Uuid; it is `#[serde(transparent)]`.
    serde_json::from_value(json!(id)).expect("a session id")
}

/// The stored ids (hashes) of `ids`.
fn handles(ids: &[SessionId]) -> BTreeSet<Vec<u8>> {
    let set: BTreeSet<Vec<u8>> = ids
        .iter()
        .map(|id| SessionHandle::of(id).as_bytes().to_vec())
        .collect();
    assert_eq!(set.len(), ids.len(), "distinct ids");
    set
}

/// `tables`, sorted as [`Fixture::tables`] sorts them.
/// `tables`, sorted, with on MySQL the subject entries beside each of our tables (`<table>_by_subject`
/// next to every `<table>_revoked`: `SessionsTable::beside`).
fn names(backend: Backend, tables: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    if backend == Backend::MySql {
        let by_subject = tables
            .iter()
            .filter_map(|t| t.strip_suffix("_revoked"))
            .map(|t| format!("{t}_by_subject"));
        names.extend(by_subject.collect::<Vec<_>>());
    }
    names.sort();
    names
}

/// A session as the test wrote it through their store.
#[derive(Clone)]
struct Written {
    id: SessionId,
    state: State,
    ttl: Duration,
}

impl Written {
    fn new(value: Value, ttl_secs: u64) -> Self {
        Self {
            id: SessionId::random(),
            state: state(value),
            ttl: Duration::from_secs(ttl_secs),
        }
    }

    fn record(&self) -> SessionRecordRef<'_> {
        SessionRecordRef {
            state: Cow::Borrowed(&self.state),
            ttl: self.ttl,
        }
    }
}

/// The ordinary sessions: `user_id` a number, a string or absent.
fn bulk_state(n: u64) -> Value {
    match n % 3 {
        0 => json!({"user_id": n % 50, "n": n, "cart": [n, n + 1]}),
        1 => json!({"user_id": format!("user-{}", n % 40), "n": n}),
        _ => json!({"n": n, "anonymous": true}),
    }
}

/// States at the edges of what JSON, the columns and the subject allow.
fn edge_states(backend: Backend) -> Vec<Value> {
    let mut states = vec![
        json!({
            "clé \"quotée\" \\ back\\slash 'single' ; DROP TABLE sessions; --":
                "valeur \"double\" 'single' \\ \\\\ \n\t\r ✓ 🦀 עברית ﷽ e\u{301} \u{200b}",
            "user_id": 7,
            "🔑": "🗝️",
        }),
        json!({"user_id": "alice", "roles": ["admin", "user"]}),
        json!({"user_id": "o'brien \"the\" \\ rust 🦀 \\\" '--"}),
        json!({"user_id": -3}),
        json!({"user_id": 18_446_744_073_709_551_615_u64}),
        json!({"user_id": 1.5, "pi": 3.25, "tenth": 0.1}),
        json!({"user_id": true}),
        json!({"user_id": null}),
        json!({"user_id": {"nested": 1}}),
        json!({"user_id": ["alice"]}),
        json!({"user_id": "é".repeat(255)}),
        json!({"user_id": "é".repeat(256)}),
        json!({"user_id": ""}),
        json!({"": "empty key", " ": "space", "\t": "tab"}),
        json!({}),
        json!({"nested": {"deep": [1, [2, [3, {"k": "v", "n": null}]]]}, "bool": false}),
        json!({"control": "\u{1}\u{1f}\u{7f}\u{80}\u{9f}", "user_id": 7}),
    ];
    let mut long_key = serde_json::Map::new();
    long_key.insert("k".repeat(10_000), json!("a very long key"));
    long_key.insert("user_id".to_owned(), json!("long key"));
    states.push(Value::Object(long_key));
    if backend != Backend::Postgres {
        // PostgreSQL's jsonb refuses \u0000, so their store cannot write it there.
        states.push(json!({"nul": "a\u{0}b", "user_id": "nul\u{0}user"}));
    }
    states
}

/// The subject the adoption derives from a state (as `with_subject_key("user_id")` would), for
/// a session it adopts (see [`subject_refused`]).
fn subject_of(state: &State) -> Option<String> {
    match state.get("user_id")? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| s.chars().count() <= 255 && !s.contains('\0'))
}

/// Whether the adoption leaves the session behind because its subject cannot be stored: not a
/// string, a number or null, longer than 255 characters, or holding a NUL character.
fn subject_refused(state: &State) -> bool {
    match state.get("user_id") {
        None | Some(Value::Null) => false,
        Some(Value::String(_) | Value::Number(_)) => subject_of(state).is_none(),
        Some(_) => true,
    }
}

/// A live session as their store reported it just before the adoption.
struct TheirView {
    id: SessionId,
    state: State,
    /// When it expires, by the test's clock: the TTL their `load` reported, from then.
    deadline: Instant,
}

impl TheirView {
    /// Our `record` has the same state and a deadline within [`DEADLINE_TOLERANCE`]; returns
    /// the gap.
    fn assert_same(
        &self,
        backend: Backend,
        record: &pavex_session::store::SessionRecord,
    ) -> Duration {
        assert_eq!(
            record.state,
            self.state,
            "{backend:?}: session {}",
            self.id.inner()
        );
        let ours = Instant::now() + record.ttl;
        let gap = ours
            .checked_duration_since(self.deadline)
            .unwrap_or_else(|| self.deadline - ours);
        assert!(
            gap <= DEADLINE_TOLERANCE,
            "{backend:?}: deadline moved by {gap:?} (ours {:?} left)",
            record.ttl
        );
        gap
    }
}

/// Their `load` of `session`: live, with the state written.
async fn their_view(theirs: &TheirStore, session: &Written) -> TheirView {
    let record = theirs
        .load(&session.id)
        .await
        .expect("their load")
        .unwrap_or_else(|| panic!("their store lost {:?}", session.id.inner()));
    let deadline = Instant::now() + record.ttl;
    assert_eq!(record.state, session.state, "their store's own round trip");
    assert!(record.ttl <= session.ttl);
    TheirView {
        id: session.id,
        state: record.state,
        deadline,
    }
}

/// Creates `sessions` through their store, 8 at a time.
async fn create_all(theirs: &TheirStore, sessions: &[Written]) {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in sessions.chunks(sessions.len().div_ceil(8).max(1)) {
        let (theirs, chunk) = (theirs.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for session in &chunk {
                theirs
                    .create(&session.id, session.record())
                    .await
                    .expect("their create");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a create task");
    }
}

fn expired_rows(count: i64, note: &str) -> Vec<TheirRow> {
    (0..count)
        .map(|n| TheirRow {
            id: uuid::Uuid::new_v4().to_string(),
            deadline: Deadline::In(-1 - n),
            state: json!({"user_id": "expired", "note": note}).to_string(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    copied: usize,
    unreadable: usize,
    subject_refused: usize,
    pruned: u64,
    renamed: bool,
}

fn assert_report(backend: Backend, report: &AdoptionReport, expected: Expected) {
    let found = Expected {
        copied: report.copied as usize,
        unreadable: report.unreadable as usize,
        subject_refused: report.subject_refused as usize,
        pruned: report.pruned,
        renamed: report.renamed,
    };
    assert_eq!(found, expected, "{backend:?}: {report:?}");
    assert!(!report.nothing_to_do, "{backend:?}: {report:?}");
}

// ---------------------------------------------------------------------------------------------
// Their table, written with plain SQL in their format
// ---------------------------------------------------------------------------------------------

/// A row of their table: `id` as text, the deadline, the state as JSON text.
#[derive(Debug, Clone)]
struct TheirRow {
    id: String,
    deadline: Deadline,
    state: String,
}

#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// Seconds from the database's now (negative: in the past).
    In(i64),
    /// Unix seconds.
    At(i64),
}

impl Fixture {
    /// Their store, after their own `migrate()`.
    async fn their_store(&self) -> TheirStore {
        match &self.pool {
            Pool::Postgres(pool) => {
                let store = PostgresSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Arc::new(store)
            }
            Pool::MySql(pool) => {
                let store = MySqlSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Arc::new(store)
            }
            Pool::Sqlite(pool) => {
                let store = SqliteSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Arc::new(store)
            }
        }
    }

    /// Inserts `rows` into their table, 1 000 per statement.
    async fn insert_theirs(&self, rows: &[TheirRow]) {
        const HEAD: &str = "INSERT INTO sessions (id, deadline, state) ";
        for chunk in rows.chunks(1_000) {
            let done = match &self.pool {
                Pool::Postgres(pool) => {
                    let mut insert = sqlx::QueryBuilder::<sqlx::Postgres>::new(HEAD);
                    insert.push_values(chunk, |mut row, r| {
                        row.push("CAST(")
                            .push_bind_unseparated(r.id.clone())
                            .push_unseparated(" AS UUID)");
                        match r.deadline {
                            Deadline::In(s) => row
                                .push("now() + ")
                                .push_bind_unseparated(s as f64)
                                .push_unseparated(" * interval '1 second'"),
                            Deadline::At(s) => row
                                .push("to_timestamp(")
                                .push_bind_unseparated(s as f64)
                                .push_unseparated(")"),
                        };
                        row.push("CAST(")
                            .push_bind_unseparated(r.state.clone())
                            .push_unseparated(" AS JSONB)");
                    });
                    insert
                        .build()
                        .execute(pool)
                        .await
                        .map(|d| d.rows_affected())
                }
                Pool::MySql(pool) => {
                    let mut insert = sqlx::QueryBuilder::<sqlx::MySql>::new(HEAD);
                    insert.push_values(chunk, |mut row, r| {
                        row.push_bind(r.id.clone());
                        match r.deadline {
                            Deadline::In(s) => {
                                row.push("UNIX_TIMESTAMP() + ").push_bind_unseparated(s)
                            }
                            Deadline::At(s) => row.push_bind(s),
                        };
                        row.push_bind(r.state.clone());
                    });
                    insert
                        .build()
                        .execute(pool)
                        .await
                        .map(|d| d.rows_affected())
                }
                Pool::Sqlite(pool) => {
                    let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(HEAD);
                    insert.push_values(chunk, |mut row, r| {
                        row.push_bind(r.id.clone());
                        match r.deadline {
                            Deadline::In(s) => row.push("unixepoch() + ").push_bind_unseparated(s),
                            Deadline::At(s) => row.push_bind(s),
                        };
                        row.push_bind(r.state.clone());
                    });
                    insert
                        .build()
                        .execute(pool)
                        .await
                        .map(|d| d.rows_affected())
                }
            };
            let done =
                done.unwrap_or_else(|e| panic!("{:?}: insert their rows: {e}", self.backend));
            assert_eq!(done, chunk.len() as u64);
        }
    }

    /// Every row of their table (or its kept copy) `table`, ordered by id, each column
    /// rendered as text by the database.
    async fn render(&self, table: &str) -> Vec<String> {
        self.render_any(table, &["id", "deadline", "state"]).await
    }

    async fn render_any(&self, table: &str, columns: &[&str]) -> Vec<String> {
        let sql = match self.backend {
            Backend::Postgres => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("coalesce(CAST(\"{c}\" AS TEXT), 'NULL')"))
                    .collect();
                format!(
                    "SELECT concat_ws(' | ', {}) FROM \"{table}\" ORDER BY id",
                    fields.join(", ")
                )
            }
            Backend::MySql => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("coalesce(CAST(`{c}` AS CHAR), 'NULL')"))
                    .collect();
                format!(
                    "SELECT CONCAT_WS(' | ', {}) FROM `{table}` ORDER BY id",
                    fields.join(", ")
                )
            }
            Backend::Sqlite => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("typeof(\"{c}\"), quote(\"{c}\")"))
                    .collect();
                format!(
                    "SELECT json_array({}) FROM \"{table}\" ORDER BY id",
                    fields.join(", ")
                )
            }
        };
        self.strings(&sql).await
    }

    /// The stored ids of our `sessions` table.
    async fn our_ids(&self) -> BTreeSet<Vec<u8>> {
        self.ids_of(SESSIONS).await
    }

    /// The stored ids of our table `table`.
    async fn ids_of(&self, table: &str) -> BTreeSet<Vec<u8>> {
        let sql = format!("SELECT id FROM {table}");
        let ids: Vec<Vec<u8>> = match &self.pool {
            Pool::Postgres(pool) => sqlx::query_scalar(&sql).fetch_all(pool).await,
            Pool::MySql(pool) => sqlx::query_scalar(&sql).fetch_all(pool).await,
            Pool::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_all(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let set: BTreeSet<Vec<u8>> = ids.iter().cloned().collect();
        assert_eq!(set.len(), ids.len(), "{:?}: duplicate ids", self.backend);
        set
    }

    async fn count(&self, table: &str) -> u64 {
        self.try_count(table)
            .await
            .unwrap_or_else(|e| panic!("{:?}: count {table}: {e}", self.backend))
    }

    /// The rows of `table`, 0 if it does not exist (yet).
    async fn count_or_zero(&self, table: &str) -> u64 {
        self.try_count(table).await.unwrap_or(0)
    }

    async fn try_count(&self, table: &str) -> Result<u64, sqlx::Error> {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        let count: i64 = match &self.pool {
            Pool::Postgres(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await?,
            Pool::MySql(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await?,
            Pool::Sqlite(pool) => sqlx::query_scalar(&sql).fetch_one(pool).await?,
        };
        Ok(count as u64)
    }

    /// The tables of the test's database, sorted.
    async fn tables(&self) -> Vec<String> {
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY 1"
            }
            Backend::MySql => {
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1"
            }
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY 1"
            }
        };
        let mut tables = self.strings(sql).await;
        tables.sort();
        tables
    }

    /// The versions recorded in our history table, sorted.
    async fn history(&self) -> Vec<String> {
        self.strings(&format!("SELECT version FROM {HISTORY} ORDER BY 1"))
            .await
    }

    /// Drops every table the adoption tests create (our tables' revoked sign-ins included).
    async fn reset(&self) {
        for table in [
            SESSIONS,
            SESSIONS_REVOKED,
            "sessions_by_subject",
            BACKUP,
            STAGING,
            STAGING_REVOKED,
            "pavex_session_sea_orm_adopting_by_subject",
            HISTORY,
        ] {
            self.run(&format!("DROP TABLE IF EXISTS {table}")).await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The databases
// ---------------------------------------------------------------------------------------------

/// A fresh database for one test: an sqlx 0.8 pool (their store's, and the test's own reads), a
/// sea-orm connection to the same database (our store's and the adoption's), and the guard that
/// removes the database when dropped.
struct Fixture {
    backend: Backend,
    url: String,
    pool: Pool,
    db: DatabaseConnection,
    /// Last, so that it is dropped after the pools.
    _guard: Guard,
}

enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// Removes a test's database on drop, also when the test panics.
enum Guard {
    RemoveDir(PathBuf),
    DropDatabase {
        backend: Backend,
        admin_url: String,
        name: String,
    },
}

fn server_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Postgres => (
            "PAVEX_SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        Backend::MySql => (
            "PAVEX_SESSION_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ),
        Backend::Sqlite => unreachable!("SQLite has no server"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let name = format!("pss_adopt_{}", uuid::Uuid::new_v4().simple());
        let (url, guard) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.join("sessions.sqlite").display()
                );
                (url, Guard::RemoveDir(dir))
            }
            Backend::Postgres | Backend::MySql => {
                let admin_url = server_url(backend);
                admin(backend, &admin_url, &format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("{backend:?} at {admin_url}: {e:#}"));
                let (server, _) = admin_url
                    .rsplit_once('/')
                    .expect("a URL with a database name");
                let url = format!("{server}/{name}");
                let guard = Guard::DropDatabase {
                    backend,
                    admin_url,
                    name,
                };
                (url, guard)
            }
        };
        let pool = match backend {
            Backend::Postgres => Pool::Postgres(sqlx::PgPool::connect(&url).await.expect(&url)),
            Backend::MySql => Pool::MySql(sqlx::MySqlPool::connect(&url).await.expect(&url)),
            // Their store's writes run 8 at a time here; sqlx's default 5 s busy timeout was
            // once too short for them on a loaded 2-core CI machine ("database is locked").
            Backend::Sqlite => {
                let options =
                    <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)
                        .expect(&url)
                        .busy_timeout(std::time::Duration::from_secs(60));
                Pool::Sqlite(sqlx::SqlitePool::connect_with(options).await.expect(&url))
            }
        };
        let mut fixture = Self {
            backend,
            url,
            pool,
            db: DatabaseConnection::default(),
            _guard: guard,
        };
        fixture.db = fixture.connect().await;
        fixture
    }

    /// A new sea-orm pool on the test's database.
    async fn connect(&self) -> DatabaseConnection {
        let mut options = ConnectOptions::new(&self.url);
        options.sqlx_logging(false).max_connections(4);
        sea_orm::Database::connect(options)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", self.url))
    }

    /// A new store of ours on the test's database.
    fn our_store(&self) -> SeaOrmSessionStore {
        SeaOrmSessionStore::new(self.db.clone())
    }

    /// Runs a statement of the test's own, through the sqlx 0.8 pool.
    async fn run(&self, sql: &str) {
        let done = match &self.pool {
            Pool::Postgres(pool) => pool.execute(sql).await.map(|_| ()),
            Pool::MySql(pool) => pool.execute(sql).await.map(|_| ()),
            Pool::Sqlite(pool) => pool.execute(sql).await.map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of every row of `sql`, as text.
    async fn strings(&self, sql: &str) -> Vec<String> {
        let rows: Vec<String> = match &self.pool {
            Pool::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
            Pool::MySql(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
            Pool::Sqlite(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows
    }

    async fn close(self) {
        self.db.close_by_ref().await.ok();
        match &self.pool {
            Pool::Postgres(pool) => pool.close().await,
            Pool::MySql(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Column `i` of `row` as text (some MySQL servers answer catalog queries in binary strings).
fn text_at<R: sqlx::Row>(row: &R, i: usize) -> String
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get::<String, _>(i)
        .or_else(|_| {
            row.try_get::<Vec<u8>, _>(i)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_else(|e| panic!("column {i} as text: {e}"))
}

/// Runs one administrative statement on its own connection to the server.
async fn admin(backend: Backend, admin_url: &str, sql: &str) -> anyhow::Result<()> {
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin_url).await?;
            conn.execute(sql).await?;
            conn.close().await?;
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
            conn.execute(sql).await?;
            conn.close().await?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::RemoveDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Guard::DropDatabase {
                backend,
                admin_url,
                name,
            } => {
                let (backend, admin_url) = (*backend, admin_url.clone());
                let sql = match backend {
                    // FORCE ends the connections still open (a test that panicked).
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                // Drop runs inside the test's runtime: use a runtime of our own on another thread.
                let dropped = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(admin(backend, &admin_url, &sql))
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop the test database {name}: {dropped:?}");
                }
            }
        }
    }
}
