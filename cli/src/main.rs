//! `pavex-session-sea-orm`: maintenance commands for the sessions table of
//! `pavex_session_sea_orm`, meant for cron and Kubernetes jobs.
//!
//! ```sh
//! DATABASE_URL=postgres://app@db/app pavex-session-sea-orm delete-expired --batch-size 10000 --pause-ms 100
//! DATABASE_URL=postgres://app@db/app pavex-session-sea-orm end-sessions --created-before 2026-01-31T12:00:00Z
//! ```

use clap::{ArgGroup, Parser, Subcommand};
use pavex_session_sea_orm::{
    BulkEndProgress, CleanupConfig, ExpiredSessionCleaner, SeaOrmSessionStore, SessionsTable,
};
use pavex_session_sea_orm_migration::{AdoptPavexSessionSqlxTable, retrying};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use std::{
    num::{NonZeroU64, NonZeroUsize},
    process::ExitCode,
    time::{Duration, Instant},
};

/// The longest `--connect-timeout-secs` accepted.
const MAX_CONNECT_TIMEOUT_SECS: u64 = 3_600;

#[derive(Parser)]
#[command(
    version,
    about = "Maintenance commands for pavex_session_sea_orm's sessions table"
)]
struct Cli {
    /// The database (postgres://, mysql://, sqlite://).
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// The sessions table: `name` or, on PostgreSQL, `schema.name`.
    #[arg(
        long,
        env = "PAVEX_SESSION_TABLE",
        global = true,
        default_value = "sessions"
    )]
    table: SessionsTable,
    /// How long to wait for a connection before giving up, in seconds (at most an hour: the
    /// driver adds it to the clock, and a larger one would overflow).
    #[arg(
        long,
        global = true,
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=MAX_CONNECT_TIMEOUT_SECS)
    )]
    connect_timeout_secs: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Deletes every expired session, in batches, then reports how many and how long it took.
    DeleteExpired {
        /// Expired sessions deleted per statement.
        #[arg(long, default_value_t = NonZeroUsize::new(10_000).unwrap_or(NonZeroUsize::MIN))]
        batch_size: NonZeroUsize,
        /// Pause between two batches, in milliseconds, to leave room for other traffic.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
        /// Seconds between two progress lines on a long run.
        #[arg(long, default_value_t = 5)]
        progress_secs: u64,
    },
    /// Ends sessions in bulk: every live session (`--all`, after a breach) or every live session
    /// created before an instant (`--created-before`), of every user and anonymous ones too, in
    /// batches; their sign-ins are revoked, and each is recorded in the audit trail. Then reports
    /// how many and how long it took.
    #[command(group(ArgGroup::new("which").required(true).args(["all", "created_before"])))]
    EndSessions {
        /// End every live session that exists when the command starts; sessions created while
        /// it runs stay.
        #[arg(long)]
        all: bool,
        /// End every live session created before this instant, in RFC 3339
        /// (`2026-01-31T12:00:00Z`, `2026-01-31T13:00:00+01:00`).
        #[arg(long, value_name = "RFC 3339 INSTANT", value_parser = rfc3339)]
        created_before: Option<chrono::DateTime<chrono::Utc>>,
        /// Rows walked per batch (at most 10 000; a larger value means 10 000).
        #[arg(long, default_value_t = NonZeroUsize::new(1_000).unwrap_or(NonZeroUsize::MIN))]
        batch_size: NonZeroUsize,
        /// Seconds between two progress lines on a long run.
        #[arg(long, default_value_t = 5)]
        progress_secs: u64,
    },
    /// Adopts pavex_session_sqlx 0.2's `sessions` table: copies every live session into this
    /// store's table (under the hash of its id) and, when that table is `sessions`, renames
    /// theirs `pavex_session_sqlx_sessions` and ours `sessions`. Safe to run again or from
    /// several instances at once; refuses a `sessions` table that is neither theirs nor ours.
    AdoptSqlxTable {
        /// Sessions copied per statement.
        #[arg(long, default_value_t = NonZeroU64::new(1_000).unwrap_or(NonZeroU64::MIN))]
        batch_size: NonZeroU64,
        /// The state key that names the user, to fill the `subject` column (as the store's
        /// `with_subject_key`).
        #[arg(long)]
        subject_key: Option<String>,
        /// Copy only, keeping their table in use (while the old version still serves); a
        /// later run without this flag refreshes the copy and renames.
        #[arg(long)]
        copy_only: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let url = cli
        .database_url
        .ok_or("no database: set DATABASE_URL or pass --database-url")?;
    let mut options = ConnectOptions::new(&url);
    options
        .sqlx_logging(false)
        .max_connections(1)
        .connect_timeout(Duration::from_secs(cli.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(cli.connect_timeout_secs));
    let db = Database::connect(options)
        .await
        .map_err(|e| format!("cannot connect to the database ({}): {e}", redact(&url)))?;
    let store = SeaOrmSessionStore::new(db.clone())
        .with_table(cli.table.clone())
        .map_err(|e| e.to_string())?;
    match cli.command {
        Command::AdoptSqlxTable {
            batch_size,
            subject_key,
            copy_only,
        } => {
            let mut adoption =
                AdoptPavexSessionSqlxTable::new(cli.table).with_batch_size(batch_size);
            if let Some(key) = subject_key {
                adoption = adoption.with_subject_key(key);
            }
            if copy_only {
                adoption = adoption.copy_only();
            }
            adopt(&db, adoption).await
        }
        Command::EndSessions {
            all: _,
            created_before,
            batch_size,
            progress_secs,
        } => {
            end_sessions(
                store,
                created_before,
                batch_size,
                Duration::from_secs(progress_secs),
            )
            .await
        }
        Command::DeleteExpired {
            batch_size,
            pause_ms,
            progress_secs,
        } => {
            let config = CleanupConfig {
                batch_size,
                pause_between_batches: Duration::from_millis(pause_ms),
                jitter: 0.0,
                ..CleanupConfig::default()
            };
            delete_expired(store, config, Duration::from_secs(progress_secs)).await
        }
    }
}

async fn delete_expired(
    store: SeaOrmSessionStore,
    config: CleanupConfig,
    progress_every: Duration,
) -> Result<(), String> {
    let table = store.table().to_string();
    let cleaner = ExpiredSessionCleaner::new(store).with_config(config);
    let started = Instant::now();
    let (mut so_far, mut last_progress) = (0u64, Instant::now());
    let result = cleaner
        .drain(|batch| {
            so_far = so_far.saturating_add(u64::try_from(batch).unwrap_or(u64::MAX));
            if last_progress.elapsed() >= progress_every {
                last_progress = Instant::now();
                let elapsed = started.elapsed().as_secs_f64();
                eprintln!(
                    "... {so_far} deleted so far in {elapsed:.1} s ({:.0}/s)",
                    so_far as f64 / elapsed.max(f64::EPSILON)
                );
            }
        })
        .await;
    let elapsed = started.elapsed();
    match result {
        Ok(deleted) => {
            println!(
                "Deleted {deleted} expired sessions from {table} in {:.3} s",
                elapsed.as_secs_f64()
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "deleting expired sessions from {table} failed after {so_far} deletions in {:.3} s: \
             {e}: {}",
            elapsed.as_secs_f64(),
            std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default()
        )),
    }
}

/// Ends every live session (`created_before: None`) or every one created before an instant.
async fn end_sessions(
    store: SeaOrmSessionStore,
    created_before: Option<chrono::DateTime<chrono::Utc>>,
    batch_size: NonZeroUsize,
    progress_every: Duration,
) -> Result<(), String> {
    let table = store.table().to_string();
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let mut so_far = 0u64;
    let on_batch = |progress: &BulkEndProgress| {
        so_far = progress.ended;
        if last_progress.elapsed() >= progress_every {
            last_progress = Instant::now();
            let elapsed = started.elapsed().as_secs_f64();
            let sweep = match progress.pass {
                1 => String::new(),
                pass => format!(", sweep {}", pass.saturating_sub(1)),
            };
            eprintln!(
                "... {} ended so far, {:.1}% walked{sweep}, in {elapsed:.1} s ({:.0}/s)",
                progress.ended,
                progress.walked * 100.0,
                progress.ended as f64 / elapsed.max(f64::EPSILON)
            );
        }
    };
    let result = match created_before {
        Some(instant) => {
            store
                .end_sessions_created_before(instant, batch_size, on_batch)
                .await
        }
        None => store.end_all_sessions(batch_size, on_batch).await,
    };
    let elapsed = started.elapsed();
    match result {
        Ok(ended) => {
            println!(
                "Ended {ended} sessions in {table} in {:.3} s",
                elapsed.as_secs_f64()
            );
            Ok(())
        }
        Err(e) => Err(format!(
            "ending sessions in {table} failed after {so_far} ended in {:.3} s: {e}{}",
            elapsed.as_secs_f64(),
            std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default()
        )),
    }
}

/// An instant in RFC 3339, for `--created-before`.
fn rfc3339(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.to_utc())
        .map_err(|e| format!("not an RFC 3339 instant such as 2026-01-31T12:00:00Z ({e})"))
}

async fn adopt(
    db: &DatabaseConnection,
    adoption: AdoptPavexSessionSqlxTable,
) -> Result<(), String> {
    let started = Instant::now();
    let report = std::sync::Mutex::new(None);
    // Another instance adopting at the same moment can make a step fail (it created or renamed
    // a table first): the next attempt finds what it did.
    retrying(|| async {
        let done = adoption.run(db).await?;
        if let Ok(mut report) = report.lock() {
            *report = Some(done);
        }
        Ok(())
    })
    .await
    .map_err(|e| format!("adopting pavex_session_sqlx's sessions table failed: {e}"))?;
    let report = report.into_inner().ok().flatten();
    let elapsed = started.elapsed().as_secs_f64();
    match report {
        Some(report) if report.nothing_to_do => {
            println!("Nothing to adopt: no pavex_session_sqlx sessions table, or adopted already")
        }
        Some(report) => println!(
            "Adopted {} live sessions in {elapsed:.3} s ({} unreadable and {} whose subject \
             cannot be stored left behind, {} ended since an earlier copy removed){}",
            report.copied,
            report.unreadable,
            report.subject_refused,
            report.pruned,
            match report.renamed {
                true => "; their table is now pavex_session_sqlx_sessions",
                false => "; their table is still in use (copy only)",
            }
        ),
        None => {}
    }
    Ok(())
}

/// The URL without its password, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
