//! `pavex-session-sea-orm delete-expired` on every backend, and its failures.

mod binary;
#[path = "../../tests/common/mod.rs"]
mod common;

use binary::{foreign_sessions_table, run, text};
use common::{Backend, fresh_db, sessions_with_ttl};
use pavex_session::store::SessionStorageBackend;
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, Statement};
use std::time::Duration;

async fn it_drains_expired_sessions_and_reports(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table("app_sessions".parse().unwrap())
        .unwrap();
    store.migrate().await.unwrap();
    sessions_with_ttl(&store, 25, Duration::ZERO).await;
    sessions_with_ttl(&store, 3, Duration::from_secs(3600)).await;
    let args = [
        "delete-expired",
        "--table",
        "app_sessions",
        "--batch-size",
        "10",
        "--pause-ms",
        "1",
        "--progress-secs",
        "0",
    ];
    let output = run(&args, Some(&db.url));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("Deleted 25 expired sessions from app_sessions in "),
        "{stdout}"
    );
    assert!(
        stderr.contains("... 10 deleted so far"),
        "a progress line: {stderr}"
    );
    assert_eq!(
        store.delete_expired(None).await.unwrap(),
        0,
        "nothing expired is left"
    );
    let count = Statement::from_string(db.db_backend(), "SELECT COUNT(*) AS n FROM app_sessions");
    let row = db.db.query_one_raw(count).await.unwrap().unwrap();
    assert_eq!(
        row.try_get::<i64>("", "n").unwrap(),
        3,
        "the live sessions are kept"
    );
    let live = run(
        &["delete-expired", "--table", "app_sessions"],
        Some(&db.url),
    );
    assert!(text(&live.stdout).starts_with("Deleted 0 expired sessions"));
}

/// A `sessions` table that is not ours: exit 1 with the reason, and not one row deleted.
async fn it_refuses_a_table_that_is_not_ours(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    foreign_sessions_table(&db).await;
    let output = run(&["delete-expired"], Some(&db.url));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(
            "the table sessions cannot be used as a pavex_session_sea_orm sessions table"
        ),
        "{stderr}"
    );
    let count = Statement::from_string(db.db_backend(), "SELECT COUNT(*) AS n FROM sessions");
    let row = db.db.query_one_raw(count).await.unwrap().unwrap();
    assert_eq!(row.try_get::<i64>("", "n").unwrap(), 2, "nothing deleted");
}

/// Every flag at its largest value is accepted and runs; beyond its range, a usage error.
async fn flags_at_their_limits(backend: Backend) {
    if backend == Backend::SqliteMemory {
        return; // the command cannot reach a database in this process's memory
    }
    let db = fresh_db(backend).await;
    let store = SeaOrmSessionStore::new(db.db.clone());
    store.migrate().await.unwrap();
    sessions_with_ttl(&store, 3, Duration::ZERO).await;
    let max = u64::MAX.to_string();
    let args = [
        "delete-expired",
        "--batch-size",
        &max,
        "--pause-ms",
        &max,
        "--progress-secs",
        &max,
        "--connect-timeout-secs",
        "3600",
    ];
    let output = run(&args, Some(&db.url));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.starts_with("Deleted 3 expired sessions"), "{stdout}");
    for zero in [
        ["--batch-size", "0"],
        ["--pause-ms", "-1"],
        ["--connect-timeout-secs", "0"],
        ["--connect-timeout-secs", "3601"],
    ] {
        let output = run(&["delete-expired", zero[0], zero[1]], Some(&db.url));
        assert_eq!(output.status.code(), Some(2), "{zero:?} is a usage error");
    }
}

on_every_backend!(
    it_drains_expired_sessions_and_reports,
    it_refuses_a_table_that_is_not_ours,
    flags_at_their_limits,
);

#[test]
fn a_missing_database_url_is_a_clear_error() {
    let output = run(&["delete-expired"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("no database: set DATABASE_URL"));
}

#[test]
fn a_bad_url_is_a_clear_error() {
    let output = run(&["delete-expired"], Some("nonsense://here"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("error: cannot connect to the database (nonsense://here)"),
        "{stderr}"
    );
}

#[test]
fn an_unreachable_database_is_a_clear_error_and_hides_the_password() {
    let url = "postgres://app:secret@127.0.0.1:1/app";
    let output = run(
        &["delete-expired", "--connect-timeout-secs", "2"],
        Some(url),
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot connect to the database (postgres://app:***@127.0.0.1:1/app)"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

#[test]
fn an_invalid_table_is_refused() {
    let output = run(
        &["delete-expired", "--table", "x; drop"],
        Some("sqlite::memory:"),
    );
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(text(&output.stderr).contains("invalid table name"));
}
