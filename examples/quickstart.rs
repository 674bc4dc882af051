//! Migrates a database, then walks one session through its life, printing each step.
//!
//! ```sh
//! cargo run --example quickstart                       # embedded SQLite: ./quickstart.sqlite
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo run --example quickstart
//! DATABASE_URL=mysql://root@127.0.0.1:3306/test cargo run --example quickstart
//! ```

use pavex_session::{SessionId, SessionStore, store::SessionRecordRef};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectOptions, Database};
use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://quickstart.sqlite?mode=rwc".to_owned());
    let mut options = ConnectOptions::new(&url);
    options.sqlx_logging(false);
    let db = Database::connect(options).await?;
    println!("connected to {url} ({:?})", db.get_database_backend());

    let backend = SeaOrmSessionStore::new(db);
    backend.migrate().await?;
    println!("migrated: table `sessions` and index `idx_sessions_deadline` are in place");
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
    println!("created   {} with {state:?}, TTL {ttl:?}", id.inner());

    let loaded = store.load(&id).await?.ok_or("the new session is missing")?;
    println!(
        "loaded    {:?}, {} ms left",
        loaded.state,
        loaded.ttl.as_millis()
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
    println!("updated   state to {state:?}");

    store.update_ttl(&id, Duration::from_secs(2 * 3600)).await?;
    let ttl = store.load(&id).await?.ok_or("missing")?.ttl;
    println!("extended  TTL to {} ms", ttl.as_millis());

    let renamed = SessionId::random();
    store.change_id(&id, &renamed).await?;
    println!(
        "renamed   {} -> {} (old id now loads {:?})",
        id.inner(),
        renamed.inner(),
        store.load(&id).await?.map(|r| r.state)
    );

    store
        .update_ttl(&renamed, Duration::from_millis(200))
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "expired   after a 200 ms TTL: loads {:?}",
        store.load(&renamed).await?.map(|r| r.state)
    );
    let deleted = store.delete_expired(NonZeroUsize::new(1000)).await?;
    println!("cleaned   {deleted} expired session(s) with delete_expired");
    Ok(())
}
