//! Runs one operation N times on one side, on a fresh SQLite file (or in the empty MySQL/MariaDB
//! database at the optional URL), for an instruction count of the client under
//! `valgrind --tool=callgrind`, which counts instructions, not seconds, and so is not moved by the
//! machine's noise. Run it at two N and divide the difference by the difference in N: that is
//! the instructions per call, setup excluded. Both pools keep sqlx's default `test_before_acquire`
//! (on), so each call also pings its connection on checkout, on both sides. A diagnostic, not part
//! of the report.
//!
//! `valgrind --tool=callgrind benches/target/release/instructions ours|theirs load|miss|update N [mysql://…]`

use pavex_session::{SessionId, store::SessionRecordRef, store::SessionStorageBackend};
use pavex_session_sea_orm::SeaOrmSessionStore;
use std::{borrow::Cow, collections::HashMap, time::Duration};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (side, op) = (args[1].as_str(), args[2].as_str());
    let calls: u32 = args[3].parse()?;
    let dir = tempfile::tempdir()?;
    let url = match args.get(4) {
        Some(url) => url.clone(),
        None => format!("sqlite:{}?mode=rwc", dir.path().join("s.db").display()),
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let store: Box<dyn SessionStorageBackend> = match side {
                "ours" => {
                    let mut options = sea_orm::ConnectOptions::new(&url);
                    options.max_connections(4).sqlx_logging(false);
                    let store = SeaOrmSessionStore::new(sea_orm::Database::connect(options).await?);
                    store.migrate().await?;
                    Box::new(store)
                }
                _ if url.starts_with("mysql:") => {
                    let pool = sqlx::mysql::MySqlPoolOptions::new()
                        .max_connections(4)
                        .connect(&url)
                        .await?;
                    let store = pavex_session_sqlx::MySqlSessionStore::new(pool);
                    store.migrate().await?;
                    Box::new(store)
                }
                _ => {
                    let pool = sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect(&url)
                        .await?;
                    let store = pavex_session_sqlx::SqliteSessionStore::new(pool);
                    store.migrate().await?;
                    Box::new(store)
                }
            };
            let states: [HashMap<Cow<'static, str>, serde_json::Value>; 2] = [1, 2].map(|visits| {
                [
                    (
                        "user.id".into(),
                        "7f9c2ba4-e88f-4a1b-9d3c-0f1e2d3c4b5a".into(),
                    ),
                    ("visits".into(), visits.into()),
                ]
                .into_iter()
                .collect()
            });
            let record = |i: u32| SessionRecordRef {
                state: Cow::Borrowed(&states[i as usize % 2]),
                ttl: Duration::from_secs(3600),
            };
            let (id, missing) = (SessionId::random(), SessionId::random());
            store.create(&id, record(0)).await?;
            for i in 0..calls {
                match op {
                    "load" => drop(store.load(&id).await?),
                    "miss" => drop(store.load(&missing).await?),
                    _ => store.update(&id, record(i)).await?,
                }
            }
            anyhow::Ok(())
        })
}
