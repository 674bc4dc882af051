//! Is the gap at 16 tasks sea-orm's or the driver's? `SELECT 1` at TASKS concurrent tasks (default
//! 16) through sqlx 0.8's pool, through sea-orm's sqlx 0.9 pool called directly, through a sqlx
//! 0.9 pool of its own, and through sea-orm's pool connection (`query_one`, the path the store
//! takes), each pool of MAX connections (default 16) with the same settings, in alternating
//! rounds; median ops/s per path. A diagnostic, not part of the report.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin pool_throughput -- URL`
//! where URL is `mysql://…/db`, `postgres://…/db` or `sqlite:PATH`.

use sea_orm::{DatabaseConnectionType, Statement};
use std::{future::Future, pin::Pin, sync::Arc, time::Instant};

const CALLS_PER_TASK: usize = 300;
const ROUNDS: usize = 11;

/// One `SELECT 1` through one path.
type Call = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>> + Send + Sync>;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into());
    let (tasks, max) = (env_or("TASKS", 16), env_or("MAX", 16) as u32);
    let mut options = sea_orm::ConnectOptions::new(&url);
    options
        .max_connections(max)
        .sqlx_logging(false)
        .test_before_acquire(false);
    let db = sea_orm::Database::connect(options).await?;
    let backend = db.get_database_backend();

    macro_rules! paths {
        ($variant:ident, $pool08:ty, $pool09:ty, $getter:ident) => {{
            let DatabaseConnectionType::$variant(sea_pool) = &db.inner else {
                unreachable!("the connection matches its URL");
            };
            let sea_pool = Arc::new(sea_pool.clone());
            let pool08: $pool08 = sqlx::pool::PoolOptions::new()
                .max_connections(max)
                .test_before_acquire(false)
                .connect(&url)
                .await?;
            let bare09: $pool09 = sea_orm::sqlx::pool::PoolOptions::new()
                .max_connections(max)
                .test_before_acquire(false)
                .connect(&url)
                .await?;
            let seas09 = db.$getter().clone();
            let paths: Vec<(&str, Call)> = vec![
                (
                    "sqlx 0.8 pool",
                    Arc::new(move || {
                        let pool = pool08.clone();
                        Box::pin(async move {
                            sqlx::query("SELECT 1").fetch_one(&pool).await?;
                            Ok(())
                        })
                    }),
                ),
                (
                    "sqlx 0.9 pool (its own)",
                    Arc::new(move || {
                        let pool = bare09.clone();
                        Box::pin(async move {
                            sea_orm::sqlx::query("SELECT 1").fetch_one(&pool).await?;
                            Ok(())
                        })
                    }),
                ),
                (
                    "sqlx 0.9 pool (sea-orm's)",
                    Arc::new(move || {
                        let pool = seas09.clone();
                        Box::pin(async move {
                            sea_orm::sqlx::query("SELECT 1").fetch_one(&pool).await?;
                            Ok(())
                        })
                    }),
                ),
                (
                    "sea-orm pool query_one",
                    Arc::new(move || {
                        let pool = sea_pool.clone();
                        Box::pin(async move {
                            pool.query_one(Statement::from_string(backend, "SELECT 1"))
                                .await?;
                            Ok(())
                        })
                    }),
                ),
            ];
            paths
        }};
    }
    let paths = match backend {
        sea_orm::DbBackend::MySql => paths!(
            SqlxMySqlPoolConnection,
            sqlx::MySqlPool,
            sea_orm::sqlx::MySqlPool,
            get_mysql_connection_pool
        ),
        sea_orm::DbBackend::Postgres => paths!(
            SqlxPostgresPoolConnection,
            sqlx::PgPool,
            sea_orm::sqlx::PgPool,
            get_postgres_connection_pool
        ),
        _ => paths!(
            SqlxSqlitePoolConnection,
            sqlx::SqlitePool,
            sea_orm::sqlx::SqlitePool,
            get_sqlite_connection_pool
        ),
    };

    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    for round in 0..ROUNDS + 1 {
        for ((_, call), rates) in paths.iter().zip(rates.iter_mut()) {
            let start = Instant::now();
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let call = call.clone();
                    tokio::spawn(async move {
                        for _ in 0..CALLS_PER_TASK {
                            call().await?;
                        }
                        anyhow::Ok(())
                    })
                })
                .collect();
            for handle in handles {
                handle.await??;
            }
            if round > 0 {
                rates.push((tasks * CALLS_PER_TASK) as f64 / start.elapsed().as_secs_f64());
            }
        }
    }
    let median = |v: &Vec<f64>| {
        let mut v = v.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(&rates[0]);
    for ((name, _), rates) in paths.iter().zip(&rates) {
        let m = median(rates);
        println!("{name:26} {m:9.0} ops/s  x{:.3} of sqlx 0.8", m / base);
    }
    Ok(())
}
