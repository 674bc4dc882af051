//! The migration command-line tool of `pavex_session_sea_orm`: `up`, `down` and `status` for the
//! sessions table.
//!
//! sea-orm-migration's `fresh`, `refresh` and `reset` are left out on purpose: `fresh` drops
//! every table of the database it is pointed at (users point it at their app's database), and
//! the other two exist to rebuild from scratch. `down` drops the sessions table only if it
//! carries our marker; the history table is the only other table this tool writes.
//!
//! - The database comes from `--database-url` / `-u` or `DATABASE_URL`; when neither is given it
//!   is an embedded SQLite file, [`DEFAULT_DATABASE_URL`], created if missing.
//! - The table is `sessions` unless `--table` / `PAVEX_SESSION_TABLE` names another (`name` or
//!   `schema.name`).
//! - Several instances may run it at the same moment (e.g. every replica of an app at start-up):
//!   a run that fails because another instance created something first is run again
//!   ([`retrying`]), and finds nothing left to do.

use clap::Parser;
use pavex_session_sea_orm_migration::{SessionsMigrator, SessionsTable, retrying};
use sea_orm_migration::{
    MigratorTraitSelf,
    sea_orm::{ConnectOptions, Database, DbErr},
};
use std::process::ExitCode;

/// The database used when neither `DATABASE_URL` nor `--database-url` is given.
const DEFAULT_DATABASE_URL: &str = "sqlite://sessions.sqlite?mode=rwc";

#[derive(Parser)]
#[command(
    version,
    about = "Creates, inspects and drops the sessions table of pavex_session_sea_orm (and no other)"
)]
struct Cli {
    /// Show debug messages.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,
    /// The database URL. Without one: an embedded SQLite file in the current directory.
    #[arg(short = 'u', long, env = "DATABASE_URL", global = true, default_value = DEFAULT_DATABASE_URL)]
    database_url: String,
    /// PostgreSQL only: the schema to put first on the search path (where the migration history
    /// table and an unqualified sessions table are created).
    #[arg(short = 's', long, env = "DATABASE_SCHEMA", global = true)]
    database_schema: Option<String>,
    /// The sessions table: `name`, or on PostgreSQL `schema.name`.
    #[arg(
        long,
        env = "PAVEX_SESSION_TABLE",
        global = true,
        default_value = "sessions"
    )]
    table: SessionsTable,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do (the default is `up`).
#[derive(clap::Subcommand, Clone, Copy)]
enum Command {
    /// Apply the pending migrations.
    Up {
        /// How many (default: all).
        #[arg(short, long)]
        num: Option<u32>,
    },
    /// Roll back applied migrations, which drops the sessions table (only if it is ours: it
    /// carries the marker our migration writes).
    Down {
        /// How many.
        #[arg(short, long, default_value_t = 1)]
        num: u32,
    },
    /// List the migrations and whether each is applied.
    Status,
}

#[tokio::main]
async fn main() -> ExitCode {
    // Read `.env` first, as sea-orm-migration's own CLI does.
    dotenvy::dotenv().ok();
    let cli = Cli::parse();
    let filter = match cli.verbose {
        true => "debug",
        false => "sea_orm_migration=info,pavex_session_sea_orm_migration=info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_target(cli.verbose)
        .without_time()
        .init();
    if cli.database_url == DEFAULT_DATABASE_URL {
        eprintln!(
            "DATABASE_URL is not set: using the embedded SQLite database {DEFAULT_DATABASE_URL}"
        );
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), DbErr> {
    let mut options = ConnectOptions::new(&cli.database_url);
    options.sqlx_logging(cli.verbose);
    if let Some(schema) = &cli.database_schema {
        options.set_schema_search_path(schema);
    }
    let db = Database::connect(options).await?;
    let migrator = SessionsMigrator::new(cli.table);
    retrying(|| async {
        match cli.command.unwrap_or(Command::Up { num: None }) {
            Command::Up { num: None } => migrator.migrate(&db).await.map_err(DbErr::from),
            Command::Up { num } => migrator.up(&db, num).await,
            Command::Down { num } => migrator.down(&db, Some(num)).await,
            Command::Status => migrator.status(&db).await,
        }
    })
    .await
}
