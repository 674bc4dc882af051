//! Expired sessions at scale: how long a batch of `delete_expired(Some(n))` takes with N expired
//! and N live rows, for N = 100 000 and 1 000 000, next to pavex_session_sqlx where its batched
//! delete works, and how live-session loads fare while the clean-up runs.
//!
//! ```sh
//! cargo run --release --manifest-path benches/Cargo.toml --bin expiry_scale -- --sizes 100000,1000000
//! ```

use anyhow::{Context as _, bail};
use clap::Parser;
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{SeaOrmSessionStore, entity::sessions};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DbBackend, EntityTrait, QueryFilter,
};
use sqlx::{Executor as _, Row as _};
use std::{
    borrow::Cow,
    collections::HashMap,
    num::NonZeroUsize,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Live sessions the load task reads during a drain (created through each store, so that their
/// ids are known).
const KNOWN_LIVE: u64 = 1000;

#[derive(Parser)]
struct Args {
    /// postgres, mysql, sqlite or all.
    #[arg(long, default_value = "all")]
    backend: String,
    /// Expired rows (and as many live rows) per run.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    sizes: Vec<u64>,
    /// Rows per `delete_expired` batch.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    #[arg(long, default_value = "mysql://root@127.0.0.1:3306/test")]
    mysql_url: String,
    /// Only our store (skip pavex_session_sqlx).
    #[arg(long)]
    ours_only: bool,
}

/// SQLite in WAL with `synchronous = NORMAL`, as docs/connection-options.md recommends and the comparison
/// benchmark sets, for both stores (`$sqlx` is sqlx 0.8's or sea-orm's sqlx 0.9 `sqlite` module).
macro_rules! wal {
    ($sqlx:path, $options:expr) => {{
        use $sqlx::{SqliteJournalMode, SqliteSynchronous};
        $options
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
    }};
}

/// One drain, measured.
struct Drain {
    store: &'static str,
    batches: Vec<Duration>,
    total: Duration,
    load_idle: Vec<Duration>,
    load_busy: Vec<Duration>,
    live_left: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backends: Vec<&str> = match args.backend.as_str() {
        "all" => vec!["postgres", "mysql", "sqlite"],
        one => vec![one],
    };
    let batch = NonZeroUsize::new(args.batch).context("--batch must be positive")?;
    println!(
        "| backend | rows (expired + live) | store | batches | batch p50 ms | first 10 batches p50 ms | batch p90 ms | batch max ms | drain s | load p50/p99 µs idle | load p50/p99 µs during drain | live left |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|");
    for backend in backends {
        for &n in &args.sizes {
            let server = match backend {
                "postgres" => args.postgres_url.clone(),
                "mysql" => args.mysql_url.clone(),
                _ => String::new(),
            };
            let ours = ours(backend, &server, n, batch).await?;
            print(backend, n, &ours);
            if args.ours_only {
                continue;
            }
            match theirs(backend, &server, n, batch).await {
                Ok(drain) => print(backend, n, &drain),
                Err(e) => println!(
                    "| {backend} | {n} + {n} | pavex_session_sqlx | fails: {} | | | | | | | | |",
                    format!("{e:#}")
                        .replace('|', "/")
                        .lines()
                        .next()
                        .unwrap_or("")
                ),
            }
        }
    }
    Ok(())
}

fn print(backend: &str, n: u64, d: &Drain) {
    let ms = |q: f64| pct(&d.batches, q).as_secs_f64() * 1e3;
    let us = |v: &[Duration], q: f64| pct(v, q).as_secs_f64() * 1e6;
    println!(
        "| {backend} | {n} + {n} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {} |",
        d.store,
        d.batches.len(),
        ms(0.5),
        pct(&d.batches[..d.batches.len().min(10)], 0.5).as_secs_f64() * 1e3,
        ms(0.9),
        ms(1.0),
        d.total.as_secs_f64(),
        us(&d.load_idle, 0.5),
        us(&d.load_idle, 0.99),
        us(&d.load_busy, 0.5),
        us(&d.load_busy, 0.99),
        d.live_left,
    );
}

fn pct(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(((v.len().saturating_sub(1)) as f64 * q).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// A fresh database (or SQLite file) and its URL; `drop_sql` removes it afterwards.
async fn scratch(
    backend: &str,
    server: &str,
    tag: &str,
) -> anyhow::Result<(String, Option<String>)> {
    let name = format!(
        "pss_scale_{tag}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    match backend {
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("{name}.sqlite"));
            Ok((format!("sqlite://{}?mode=rwc", path.display()), None))
        }
        _ => {
            let admin = Database::connect(server).await?;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await?;
            let (base, _) = server
                .rsplit_once('/')
                .context("a server URL with a database")?;
            Ok((format!("{base}/{name}"), Some(name)))
        }
    }
}

async fn drop_scratch(
    backend: &str,
    server: &str,
    url: &str,
    name: Option<String>,
) -> anyhow::Result<()> {
    match name {
        Some(name) => {
            let admin = Database::connect(server).await?;
            let force = if backend == "postgres" {
                " WITH (FORCE)"
            } else {
                ""
            };
            admin
                .execute_unprepared(&format!("DROP DATABASE {name}{force}"))
                .await?;
        }
        None => {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_end_matches("?mode=rwc");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
        }
    }
    Ok(())
}

async fn ours(backend: &str, server: &str, n: u64, batch: NonZeroUsize) -> anyhow::Result<Drain> {
    let (url, name) = scratch(backend, server, "ours").await?;
    let mut options = ConnectOptions::new(&url);
    options
        .max_connections(4)
        .sqlx_logging(false)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(|sqlite| wal!(sea_orm::sqlx::sqlite, sqlite));
    let db = Database::connect(options).await?;
    let store = SeaOrmSessionStore::new(db.clone());
    store.migrate().await?;
    // The table keeps the SHA-256 of each session id, never the id, so rows filled by the server
    // (random 32-byte keys) cannot be loaded by id: the sessions the load task reads are created
    // through the store, and the server fills the rest of the live rows.
    let known = n.min(KNOWN_LIVE);
    // `state` is binary: the UTF-8 bytes of the JSON text, as the store writes it;
    // `created_at` and `updated_at` have no default.
    let (expired, live) = match db.get_database_backend() {
        DbBackend::Postgres => (
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT substring(sha256(uuid_send(gen_random_uuid())) for 16), (EXTRACT(EPOCH FROM now()) * 1000)::bigint - 86400000 + g, convert_to('{}', 'UTF8'), (EXTRACT(EPOCH FROM now()) * 1000)::bigint, (EXTRACT(EPOCH FROM now()) * 1000)::bigint FROM generate_series(1, {n}) g",
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT substring(sha256(uuid_send(gen_random_uuid())) for 16), (EXTRACT(EPOCH FROM now()) * 1000)::bigint + 86400000 + g, convert_to('{\"user\": 1}', 'UTF8'), (EXTRACT(EPOCH FROM now()) * 1000)::bigint, (EXTRACT(EPOCH FROM now()) * 1000)::bigint FROM generate_series(1, {n}) g",
        ),
        DbBackend::MySql => (
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT LEFT(UNHEX(SHA2(UUID(), 256)), 16), UNIX_TIMESTAMP() * 1000 - 86400000 + seq, CAST('{}' AS BINARY), UNIX_TIMESTAMP() * 1000, UNIX_TIMESTAMP() * 1000 FROM seq_1_to_{n}",
            "INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT LEFT(UNHEX(SHA2(UUID(), 256)), 16), UNIX_TIMESTAMP() * 1000 + 86400000 + seq, CAST('{\"user\": 1}' AS BINARY), UNIX_TIMESTAMP() * 1000, UNIX_TIMESTAMP() * 1000 FROM seq_1_to_{n}",
        ),
        _ => (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT randomblob(16), CAST(unixepoch() AS INTEGER) * 1000 - 86400000 + x, CAST('{}' AS BLOB), CAST(unixepoch() AS INTEGER) * 1000, CAST(unixepoch() AS INTEGER) * 1000 FROM c",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO sessions (id, deadline, state, created_at, updated_at) SELECT randomblob(16), CAST(unixepoch() AS INTEGER) * 1000 + 86400000 + x, CAST('{\"user\": 1}' AS BLOB), CAST(unixepoch() AS INTEGER) * 1000, CAST(unixepoch() AS INTEGER) * 1000 FROM c",
        ),
    };
    db.execute_unprepared(&expired.replace("{n}", &n.to_string()))
        .await?;
    if n > known {
        db.execute_unprepared(&live.replace("{n}", &(n - known).to_string()))
            .await?;
    }
    let state = HashMap::from([(Cow::Borrowed("user"), serde_json::json!(1))]);
    let mut ids = Vec::new();
    for _ in 0..known {
        let id = SessionId::random();
        let record = SessionRecordRef {
            state: Cow::Borrowed(&state),
            ttl: Duration::from_secs(86_400),
        };
        store.create(&id, record).await?;
        ids.push(id);
    }
    db.execute_unprepared(match backend {
        "postgres" => "VACUUM ANALYZE sessions",
        "mysql" => "ANALYZE TABLE sessions",
        _ => "ANALYZE",
    })
    .await?;
    let store: Arc<dyn SessionStorageBackend> = Arc::new(store);
    let mut drain = measure("ours: pavex_session_sea_orm", store, ids, batch).await?;
    drain.live_left = sessions::Entity::find()
        .filter(sessions::Column::Deadline.gt(now_ms()))
        .count_rows(&db)
        .await?;
    db.close().await?;
    drop_scratch(backend, server, &url, name).await?;
    Ok(drain)
}

trait CountRows {
    async fn count_rows(self, db: &sea_orm::DatabaseConnection) -> anyhow::Result<u64>;
}

impl CountRows for sea_orm::Select<sessions::Entity> {
    async fn count_rows(self, db: &sea_orm::DatabaseConnection) -> anyhow::Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(self.count(db).await?)
    }
}

async fn theirs(backend: &str, server: &str, n: u64, batch: NonZeroUsize) -> anyhow::Result<Drain> {
    let (url, name) = scratch(backend, server, "theirs").await?;
    let result = theirs_on(backend, &url, n, batch).await;
    drop_scratch(backend, server, &url, name).await?;
    result
}

async fn theirs_on(backend: &str, url: &str, n: u64, batch: NonZeroUsize) -> anyhow::Result<Drain> {
    macro_rules! run {
        ($pool:expr, $store:expr, $fill:expr, $ids:expr, $count:expr) => {{
            let pool = $pool;
            $store.migrate().await?;
            for sql in $fill {
                pool.execute(sql.replace("{n}", &n.to_string()).as_str())
                    .await?;
            }
            let ids: Vec<SessionId> = sqlx::query($ids)
                .fetch_all(&pool)
                .await?
                .iter()
                .map(|row| {
                    session_id(uuid::Uuid::parse_str(
                        row.try_get::<String, _>(0)?.as_str(),
                    )?)
                })
                .collect::<anyhow::Result<_>>()?;
            let store: Arc<dyn SessionStorageBackend> = Arc::new($store);
            let mut drain = measure("theirs: pavex_session_sqlx", store, ids, batch).await?;
            drain.live_left = sqlx::query($count)
                .fetch_one(&pool)
                .await?
                .try_get::<i64, _>(0)? as u64;
            pool.close().await;
            Ok(drain)
        }};
    }
    match backend {
        "mysql" => {
            let pool = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect(url)
                .await?;
            let store = pavex_session_sqlx::MySqlSessionStore::new(pool.clone());
            run!(
                pool,
                store,
                [
                    "INSERT INTO sessions (id, deadline, state) SELECT UUID(), UNIX_TIMESTAMP() - 86400 + seq % 1000, '{}' FROM seq_1_to_{n}",
                    "INSERT INTO sessions (id, deadline, state) SELECT UUID(), UNIX_TIMESTAMP() + 86400 + seq % 1000, '{\"user\": 1}' FROM seq_1_to_{n}",
                    "ANALYZE TABLE sessions",
                ],
                "SELECT id FROM sessions WHERE deadline > UNIX_TIMESTAMP() LIMIT 1000",
                "SELECT COUNT(*) FROM sessions WHERE deadline > UNIX_TIMESTAMP()"
            )
        }
        "sqlite" => {
            let options = wal!(
                sqlx::sqlite,
                url.parse::<sqlx::sqlite::SqliteConnectOptions>()?
            );
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(4)
                .test_before_acquire(false)
                .connect_with(options)
                .await?;
            let store = pavex_session_sqlx::SqliteSessionStore::new(pool.clone());
            run!(
                pool,
                store,
                [
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO sessions (id, deadline, state) SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), unixepoch() - 86400 + x % 1000, '{}' FROM c",
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) INSERT INTO sessions (id, deadline, state) SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6))), unixepoch() + 86400 + x % 1000, '{\"user\": 1}' FROM c",
                    "ANALYZE",
                ],
                "SELECT id FROM sessions WHERE deadline > unixepoch() LIMIT 1000",
                "SELECT COUNT(*) FROM sessions WHERE deadline > unixepoch()"
            )
        }
        "postgres" => {
            let store =
                pavex_session_sqlx::PostgresSessionStore::new(sqlx::PgPool::connect(url).await?);
            store.migrate().await?;
            match store.delete_expired(Some(batch)).await {
                Ok(_) => bail!("its batched delete unexpectedly worked"),
                Err(e) => Err(anyhow::Error::from(e)
                    .context("its batched delete_expired sends DELETE ... LIMIT")),
            }
        }
        other => bail!("unknown backend {other}"),
    }
}

/// The benchmark's own clock, only to tell live rows from expired ones it created a day apart.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn session_id(uuid: uuid::Uuid) -> anyhow::Result<SessionId> {
    Ok(serde_json::from_value(serde_json::Value::String(
        uuid.to_string(),
    ))?)
}

/// Loads live sessions for a while (idle), then drains expired ones while a task keeps loading.
async fn measure(
    label: &'static str,
    store: Arc<dyn SessionStorageBackend>,
    ids: Vec<SessionId>,
    batch: NonZeroUsize,
) -> anyhow::Result<Drain> {
    anyhow::ensure!(!ids.is_empty(), "no live ids to load");
    let mut load_idle = Vec::new();
    for id in ids.iter().cycle().take(2000) {
        let started = Instant::now();
        store.load(id).await?.context("a live session")?;
        load_idle.push(started.elapsed());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let loader = {
        let (store, stop, ids) = (store.clone(), stop.clone(), ids.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            for id in ids.iter().cycle() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let started = Instant::now();
                store
                    .load(id)
                    .await?
                    .context("a live session during the drain")?;
                latencies.push(started.elapsed());
            }
            anyhow::Ok(latencies)
        })
    };
    let mut batches = Vec::new();
    let started = Instant::now();
    loop {
        let t = Instant::now();
        let deleted = store.delete_expired(Some(batch)).await?;
        if deleted == 0 {
            break;
        }
        batches.push(t.elapsed());
    }
    let total = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let load_busy = loader.await??;
    Ok(Drain {
        store: label,
        batches,
        total,
        load_idle,
        load_busy,
        live_left: 0,
    })
}
