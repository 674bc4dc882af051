//! Running the built `pavex-session-sea-orm` binary, as the CLI tests do.

use std::process::{Command, Output};

/// Runs the binary with `args`, `DATABASE_URL` set to `database_url` (or unset), and no table
/// from the environment.
pub fn run(args: &[&str], database_url: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pavex-session-sea-orm"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("PAVEX_SESSION_TABLE");
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    command.output().expect("run the binary")
}

/// Output bytes as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Creates a `sessions` table that is not ours (the app's own, say) with two rows.
pub async fn foreign_sessions_table(db: &crate::common::TestDb) {
    use sea_orm::ConnectionTrait;
    db.db
        .execute_unprepared(
            "CREATE TABLE sessions (id BIGINT PRIMARY KEY, deadline BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    db.db
        .execute_unprepared("INSERT INTO sessions (id, deadline) VALUES (1, 0), (2, 5)")
        .await
        .unwrap();
}
