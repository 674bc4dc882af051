//! The migration command-line tool of `pavex_session_sea_orm`: the standard sea-orm-migration CLI
//! (`up`, `down`, `status`, `fresh`, `refresh`, `reset`) for the sessions table.
//!
//! - The database comes from `--database-url` / `-u` or `DATABASE_URL`; when neither is given it
//!   is an embedded SQLite file, [`DEFAULT_DATABASE_URL`], created if missing.
//! - The table is `sessions` unless `PAVEX_SESSION_TABLE` names another (`name` or
//!   `schema.name`).

use pavex_session_sea_orm_migration::{SessionsMigrator, SessionsTable};
use sea_orm_migration::cli;

/// The database used when neither `DATABASE_URL` nor `--database-url` is given.
const DEFAULT_DATABASE_URL: &str = "sqlite://sessions.sqlite?mode=rwc";

/// The environment variable that chooses the sessions table.
const TABLE_VARIABLE: &str = "PAVEX_SESSION_TABLE";

fn main() {
    // Read `.env` before deciding on the defaults, as the CLI would.
    dotenvy::dotenv().ok();
    let table = match std::env::var(TABLE_VARIABLE) {
        Ok(table) => match table.parse::<SessionsTable>() {
            Ok(table) => table,
            Err(e) => {
                eprintln!("{TABLE_VARIABLE}: {e}");
                std::process::exit(2);
            }
        },
        Err(_) => SessionsTable::default(),
    };
    let url_given = std::env::var_os("DATABASE_URL").is_some()
        || std::env::args().any(|arg| arg.starts_with("-u") || arg.starts_with("--database-url"));
    if !url_given {
        eprintln!(
            "DATABASE_URL is not set: using the embedded SQLite database {DEFAULT_DATABASE_URL}"
        );
        // SAFETY: no other thread exists yet; the runtime is built below.
        unsafe { std::env::set_var("DATABASE_URL", DEFAULT_DATABASE_URL) };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("Failed to start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(cli::run_cli(SessionsMigrator::new(table)));
}
