//! Migrates a database, then walks one session through its life, printing each step.
//!
//! ```sh
//! cargo run --example quickstart                       # embedded SQLite: ./quickstart.sqlite
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example quickstart
//! DATABASE_URL=mysql://root@127.0.0.1:3306/test cargo run --example quickstart
//! ```

use pavex_session::{SessionId, SessionStore, store::SessionRecordRef};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectOptions, Database, DbBackend};
use serde_json::Value;
use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
    num::NonZeroUsize,
    time::Duration,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://quickstart.sqlite?mode=rwc".to_owned());
    let mut options = ConnectOptions::new(&url);
    options.sqlx_logging(false);
    let db = Database::connect(options).await?;
    let backend_name = match db.get_database_backend() {
        DbBackend::Postgres => "PostgreSQL",
        DbBackend::MySql => "MySQL/MariaDB",
        DbBackend::Sqlite => "SQLite",
        _ => "an unknown backend",
    };
    println!("Connected to {} ({backend_name}).", without_password(&url));

    let backend = SeaOrmSessionStore::new(db);
    backend.migrate().await?;
    println!("Migrated: the `sessions` table and its indexes are in place.\n");
    // This is what a Pavex app gets through `bp.import(...)`.
    let store = SessionStore::from(backend);

    let id = SessionId::random();
    let mut state = HashMap::new();
    state.insert(Cow::Borrowed("user_id"), serde_json::json!(42));
    let ttl = Duration::from_secs(30 * 60);
    store
        .create(
            &id,
            SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl,
            },
        )
        .await?;
    println!("1. Created session {}", id.inner());
    println!("   valid for {}, with this state:", words(ttl));
    println!("{}", json(&state)?);

    let loaded = store.load(&id).await?.ok_or("the new session is missing")?;
    println!(
        "2. Loaded it back: {} left, {}.",
        words(loaded.ttl),
        if loaded.state == state {
            "the same state"
        } else {
            "a different state (unexpected)"
        }
    );

    state.insert(Cow::Borrowed("theme"), serde_json::json!("dark"));
    store
        .update(
            &id,
            SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl,
            },
        )
        .await?;
    println!("3. Updated the state to:");
    println!("{}", json(&state)?);

    store.update_ttl(&id, Duration::from_secs(2 * 3600)).await?;
    let ttl = store.load(&id).await?.ok_or("missing")?.ttl;
    println!("4. Extended it: {} left.", words(ttl));

    let renamed = SessionId::random();
    store.change_id(&id, &renamed).await?;
    println!("5. Renamed it to {} (as at login).", renamed.inner());
    println!(
        "   Loading the old id now {}.",
        found(store.load(&id).await?.is_some())
    );

    store
        .update_ttl(&renamed, Duration::from_millis(200))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "6. Gave it 200 ms to live and waited 300 ms: loading it now {}.",
        found(store.load(&renamed).await?.is_some())
    );

    let deleted = store.delete_expired(NonZeroUsize::new(1000)).await?;
    println!(
        "7. Cleaned up: delete_expired removed {deleted} expired session{} from the table.",
        if deleted == 1 { "" } else { "s" }
    );
    Ok(())
}

/// The state as pretty JSON, keys sorted, indented under the step it belongs to.
fn json(state: &HashMap<Cow<'static, str>, Value>) -> Result<String, serde_json::Error> {
    let sorted: BTreeMap<&str, &Value> = state.iter().map(|(k, v)| (k.as_ref(), v)).collect();
    let text = serde_json::to_string_pretty(&sorted)?;
    Ok(text
        .lines()
        .map(|line| format!("   {line}"))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// What a load finds, in words.
fn found(live: bool) -> &'static str {
    match live {
        true => "still finds it (unexpected)",
        false => "finds nothing",
    }
}

/// A duration as a person says it: "30 minutes", "1 hour 59 minutes 59 seconds", "200 ms".
fn words(duration: Duration) -> String {
    let secs = duration.as_secs();
    if secs == 0 {
        return format!("{} ms", duration.as_millis());
    }
    let parts = [
        (secs / 3600, "hour"),
        (secs / 60 % 60, "minute"),
        (secs % 60, "second"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The URL with its password, if any, replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}
