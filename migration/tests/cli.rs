//! The migration binary: the standard sea-orm-migration commands on every backend, and an
//! embedded SQLite file when no database is named.

#[path = "../../tests/common/db.rs"]
mod db;
#[path = "../../tests/common/galera.rs"]
mod galera;

use db::{Backend, fresh_db};
use pavex_session_sea_orm_migration::{MIGRATION_TABLE, SESSIONS_TABLE};
use sea_orm_migration::{SchemaManager, sea_orm::ConnectionTrait};
use std::process::{Command, Output};

fn cli(database_url: Option<&str>, cwd: &std::path::Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"));
    command
        .args(args)
        .current_dir(cwd)
        .env_remove("DATABASE_URL");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let output = command.output().expect("run the migration binary");
    assert!(
        output.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn without_a_database_url_it_uses_an_embedded_sqlite_file() {
    let dir = std::env::temp_dir().join(format!("pss_cli_{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let help = text(&cli(None, &dir, &["--help"]));
    assert!(help.contains("sqlite://sessions.sqlite"), "{help}");
    let up = text(&cli(None, &dir, &["up"]));
    assert!(up.contains("DATABASE_URL is not set"), "{up}");
    assert!(dir.join("sessions.sqlite").exists());
    let status = text(&cli(None, &dir, &["status"]));
    assert!(
        status.contains("m20261206_000001_create_sessions_table"),
        "{status}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_invalid_table_name_is_refused_before_connecting() {
    let output = Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"))
        .arg("up")
        .env("PAVEX_SESSION_TABLE", "sessions; DROP TABLE users")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid table name \"sessions; DROP TABLE users\""),
        "{stderr}"
    );
}

async fn a_chosen_table(backend: Backend) {
    let test_db = fresh_db(backend).await;
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"))
            .args(args)
            .env("DATABASE_URL", &test_db.url)
            .env("PAVEX_SESSION_TABLE", "app_sessions")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output));
        text(&output)
    };
    let manager = SchemaManager::new(&test_db.db);
    run(&["up"]);
    assert!(manager.has_table("app_sessions").await.unwrap());
    assert!(!manager.has_table(SESSIONS_TABLE).await.unwrap());
    let status = run(&["status"]);
    assert!(
        status.contains("create_sessions_table:app_sessions"),
        "{status}"
    );
    // The default table's migrator shares the history table without tripping over our row.
    cli(Some(&test_db.url), &std::env::temp_dir(), &["up"]);
    assert!(manager.has_table(SESSIONS_TABLE).await.unwrap());
    // The one migration's `down` drops its table, and only it.
    run(&["down", "-n", "1"]);
    assert!(!manager.has_table("app_sessions").await.unwrap());
    assert!(manager.has_table(SESSIONS_TABLE).await.unwrap());
}

async fn every_command_runs(backend: Backend) {
    let test_db = fresh_db(backend).await;
    let cwd = std::env::temp_dir();
    let url = Some(test_db.url.as_str());
    let manager = SchemaManager::new(&test_db.db);
    let has_sessions = async || manager.has_table(SESSIONS_TABLE).await.unwrap();

    cli(url, &cwd, &["up"]);
    assert!(has_sessions().await);
    assert!(manager.has_table(MIGRATION_TABLE).await.unwrap());
    assert!(!manager.has_table("seaql_migrations").await.unwrap());
    let status = text(&cli(url, &cwd, &["status"]));
    assert!(status.contains("Applied"), "{status}");
    cli(url, &cwd, &["up"]);
    cli(url, &cwd, &["down", "-n", "1"]);
    assert!(!has_sessions().await);
    cli(url, &cwd, &["up"]);
    assert!(has_sessions().await);
}

/// The commands that drop or rebuild tables wholesale are not there, and `down` refuses a
/// `sessions` table that our migration did not create, leaving it and its rows.
async fn nothing_drops_what_is_not_ours(backend: Backend) {
    let test_db = fresh_db(backend).await;
    let url = test_db.url.clone();
    let cwd = std::env::temp_dir();
    for command in ["fresh", "refresh", "reset", "init", "generate"] {
        let output = Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"))
            .arg(command)
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("unrecognized subcommand"),
            "{command}"
        );
    }
    let manager = SchemaManager::new(&test_db.db);
    cli(Some(&url), &cwd, &["up"]);
    // The app's own `sessions` table, in place of ours (dropped by hand), with a row.
    test_db
        .db
        .execute_unprepared("DROP TABLE sessions")
        .await
        .unwrap();
    test_db
        .db
        .execute_unprepared(
            "CREATE TABLE sessions (id BIGINT PRIMARY KEY, deadline BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    test_db
        .db
        .execute_unprepared("INSERT INTO sessions (id, deadline) VALUES (1, 0)")
        .await
        .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"))
        .args(["down", "-n", "1"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("refusing to drop it"),
        "{}",
        text(&output)
    );
    assert!(manager.has_table(SESSIONS_TABLE).await.unwrap());
    let count = test_db
        .db
        .query_one_raw(sea_orm_migration::sea_orm::Statement::from_string(
            test_db.db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM sessions",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(count, 1, "the app's row is still there");
}

// SQLite in memory is left out: a second process cannot see it.
on_every_backend!(
    shared: every_command_runs,
    a_chosen_table,
    nothing_drops_what_is_not_ours,
    concurrent_processes_migrate_once,
);

/// Several processes migrating one database at the same moment all succeed and leave one
/// correct schema.
async fn concurrent_processes_migrate_once(backend: Backend) {
    for _ in 0..3 {
        let test_db = fresh_db(backend).await;
        let children: Vec<_> = (0..4)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_pavex_session_sea_orm_migration"))
                    .arg("up")
                    .env("DATABASE_URL", &test_db.url)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            assert!(output.status.success(), "{}", text(&output));
        }
        let manager = SchemaManager::new(&test_db.db);
        assert!(manager.has_table(SESSIONS_TABLE).await.unwrap());
        let applied = text(&cli(Some(&test_db.url), &std::env::temp_dir(), &["status"]));
        // The one migration, applied once.
        assert_eq!(applied.matches("Applied").count(), 1, "{applied}");
    }
}
