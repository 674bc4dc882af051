//! `pavex-session-sea-orm end-sessions` on every backend, and its usage errors. (The cluster
//! harness starts `scripts/galera.sh` from the crate being tested, which only the store crate has:
//! the store's own `tests/bulk_end.rs` covers the cluster.)

mod binary;
#[path = "../../tests/common/mod.rs"]
mod common;

use binary::{foreign_sessions_table, run, text};
use common::{Backend, TestDb, fresh_db};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, Statement};
use std::{borrow::Cow, collections::HashMap, time::Duration};

/// `n` live sessions of users `0..n` (some anonymous), for an hour.
async fn sessions(store: &SeaOrmSessionStore, n: usize) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for i in 0..n {
        let state: HashMap<Cow<'static, str>, serde_json::Value> = match i % 3 {
            0 => HashMap::new(),
            _ => HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!(i))]),
        };
        let id = SessionId::random();
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl: Duration::from_secs(3600),
        };
        store.create(&id, record).await.unwrap();
        ids.push(id);
    }
    ids
}

async fn rows(db: &TestDb, table: &str) -> i64 {
    let count = Statement::from_string(
        db.db_backend(),
        format!("SELECT COUNT(*) AS n FROM {table}"),
    );
    let row = db.db.query_one_raw(count).await.unwrap().unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// Waits until the database clock has moved past its current millisecond.
async fn next_millisecond(db: &TestDb) {
    let now = db.db_now_millis().await;
    while db.db_now_millis().await <= now {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `--all`: every live session ends, in batches, with progress lines on stderr and the count on
/// stdout; a second run ends nothing.
async fn it_ends_every_session_and_reports(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table("app_sessions".parse().unwrap())
        .unwrap()
        .with_subject_key("user_id");
    store.migrate().await.unwrap();
    let ids = sessions(&store, 25).await;
    let args = [
        "end-sessions",
        "--all",
        "--table",
        "app_sessions",
        "--batch-size",
        "4",
        "--progress-secs",
        "0",
    ];
    let output = run(&args, Some(&db.url));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Ended 25 sessions in app_sessions in "),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with(" s"), "{stdout}");
    assert!(
        stderr.contains("... 4 ended so far, ") && stderr.contains("% walked"),
        "a progress line: {stderr}"
    );
    assert!(
        stderr.contains("... 25 ended so far, 100.0% walked"),
        "{stderr}"
    );
    assert!(stderr.contains(", sweep 1, "), "the sweep: {stderr}");
    for id in &ids {
        assert!(store.load(id).await.unwrap().is_none());
    }
    assert_eq!(rows(&db, "app_sessions").await, 0);
    let again = run(
        &["end-sessions", "--all", "--table", "app_sessions"],
        Some(&db.url),
    );
    assert!(
        text(&again.stdout).starts_with("Ended 0 sessions in app_sessions"),
        "{}{}",
        text(&again.stdout),
        text(&again.stderr)
    );
}

/// `--created-before`: the sessions created before the instant end, the newer ones stay.
async fn it_ends_the_sessions_created_before_an_instant(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone()).with_subject_key("user_id");
    store.migrate().await.unwrap();
    let old = sessions(&store, 7).await;
    next_millisecond(&db).await;
    let instant = chrono::DateTime::from_timestamp_millis(db.db_now_millis().await)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    next_millisecond(&db).await;
    let new = sessions(&store, 5).await;

    let output = run(
        &["end-sessions", "--created-before", &instant],
        Some(&db.url),
    );
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Ended 7 sessions in sessions in "),
        "{stdout}"
    );
    assert!(stderr.is_empty(), "no progress line before 5 s: {stderr}");
    for id in &old {
        assert!(store.load(id).await.unwrap().is_none());
    }
    for id in &new {
        assert!(store.load(id).await.unwrap().is_some());
    }
    // The same instant written with an offset: nothing left to end.
    let offset = chrono::DateTime::parse_from_rfc3339(&instant)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
        .to_rfc3339();
    // Every flag at its largest value is accepted (the batch is brought down to 10 000).
    let max = u64::MAX.to_string();
    let args = [
        "end-sessions",
        "--created-before",
        &offset,
        "--batch-size",
        &max,
        "--progress-secs",
        &max,
    ];
    let output = run(&args, Some(&db.url));
    assert!(
        text(&output.stdout).starts_with("Ended 0 sessions"),
        "{offset}: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    assert_eq!(rows(&db, "sessions").await, 5);
}

/// A `sessions` table that is not ours: exit 1 with the reason, and not one row deleted.
async fn it_refuses_a_table_that_is_not_ours(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    foreign_sessions_table(&db).await;
    let output = run(&["end-sessions", "--all"], Some(&db.url));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ending sessions in sessions failed after 0 ended")
            && stderr.contains(
                "the table sessions cannot be used as a pavex_session_sea_orm sessions table"
            ),
        "{stderr}"
    );
    assert_eq!(rows(&db, "sessions").await, 2, "nothing deleted");
}

on_every_backend!(
    it_ends_every_session_and_reports,
    it_ends_the_sessions_created_before_an_instant,
    it_refuses_a_table_that_is_not_ours,
);

/// Exactly one of `--all` and `--created-before`: neither, or both, is a usage error (exit 2)
/// before any connection.
#[test]
fn it_refuses_to_run_without_exactly_one_of_all_and_created_before() {
    let neither = run(&["end-sessions"], Some("sqlite::memory:"));
    assert_eq!(neither.status.code(), Some(2));
    let stderr = text(&neither.stderr);
    assert!(
        stderr.contains("the following required arguments were not provided")
            && stderr.contains("--all|--created-before"),
        "{stderr}"
    );
    let both = run(
        &[
            "end-sessions",
            "--all",
            "--created-before",
            "2026-01-31T12:00:00Z",
        ],
        Some("sqlite::memory:"),
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(
        text(&both.stderr).contains("cannot be used with"),
        "{}",
        text(&both.stderr)
    );
}

#[test]
fn bad_values_are_usage_errors() {
    for args in [
        ["--created-before", "yesterday"],
        ["--created-before", "2026-01-31"],
        ["--created-before", "2026-01-31 12:00:00"],
        ["--batch-size", "0"],
        ["--progress-secs", "-1"],
    ] {
        let mut all = vec!["end-sessions"];
        if args[0] != "--created-before" {
            all.push("--all");
        }
        all.extend(args);
        let output = run(&all, Some("sqlite::memory:"));
        assert_eq!(output.status.code(), Some(2), "{args:?} is a usage error");
    }
    let output = run(
        &["end-sessions", "--created-before", "yesterday"],
        Some("sqlite::memory:"),
    );
    assert!(
        text(&output.stderr).contains("not an RFC 3339 instant"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_missing_database_url_is_a_clear_error() {
    let output = run(&["end-sessions", "--all"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no database: set DATABASE_URL"));
}
