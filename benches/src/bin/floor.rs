//! Where does the `SELECT 1` floor go? The same query through sea-orm, through sea-orm's own sqlx
//! 0.9 pool, through a bare sqlx 0.9 connection and through sqlx 0.8, one task, medians of blocks
//! of consecutive calls, interleaved. A diagnostic, not part of the report.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin floor -- URL [current]`
//! where URL is `mysql://…/db`, `postgres://…/db` or `sqlite:PATH`.

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use sqlx::Connection as _;
use std::time::{Duration, Instant};

const BLOCK: usize = 300;
const BLOCKS: usize = 15;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn main() -> anyhow::Result<()> {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "sqlite:/tmp/pss_floor.db?mode=rwc".into());
    let current = std::env::args().nth(2).as_deref() == Some("current");
    let runtime = if current {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
    };
    runtime.block_on(run(url))
}

async fn run(url: String) -> anyhow::Result<()> {
    let max: u32 = std::env::var("MAX")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1);
    let mut options = sea_orm::ConnectOptions::new(&url);
    options
        .max_connections(max)
        .sqlx_logging(false)
        .test_before_acquire(false);
    let db = Database::connect(options).await?;
    let backend = db.get_database_backend();
    let mut results: Vec<(&str, Vec<Duration>)> = [
        "sea-orm query_one_raw",
        "sqlx 0.9 pool (sea-orm's)",
        "sqlx 0.9 bare connection",
        "sqlx 0.8 pool",
        "sqlx 0.8 bare connection",
    ]
    .into_iter()
    .map(|n| (n, Vec::new()))
    .collect();
    macro_rules! timed {
        ($times:expr, $block:expr, $call:expr) => {{
            for _ in 0..BLOCK {
                let start = Instant::now();
                $call;
                if $block > 0 {
                    $times.push(start.elapsed());
                }
            }
        }};
    }
    macro_rules! sides {
        ($pool09:expr, $conn09:ty, $pool08:ty, $conn08:ty) => {{
            let pool09 = $pool09.clone();
            let mut conn09 = <$conn09 as sea_orm::sqlx::Connection>::connect(&url).await?;
            let pool08 = sqlx::pool::PoolOptions::new()
                .max_connections(max)
                .test_before_acquire(false)
                .connect(&url)
                .await?;
            let _: &$pool08 = &pool08;
            let mut conn08 = <$conn08>::connect(&url).await?;
            for block in 0..BLOCKS {
                for (i, (_, times)) in results.iter_mut().enumerate() {
                    match i {
                        0 => timed!(
                            times,
                            block,
                            db.query_one_raw(Statement::from_string(backend, "SELECT 1"))
                                .await?
                        ),
                        1 => timed!(
                            times,
                            block,
                            sea_orm::sqlx::query("SELECT 1").fetch_one(&pool09).await?
                        ),
                        2 => timed!(
                            times,
                            block,
                            sea_orm::sqlx::query("SELECT 1")
                                .fetch_one(&mut conn09)
                                .await?
                        ),
                        3 => timed!(
                            times,
                            block,
                            sqlx::query("SELECT 1").fetch_one(&pool08).await?
                        ),
                        _ => timed!(
                            times,
                            block,
                            sqlx::query("SELECT 1").fetch_one(&mut conn08).await?
                        ),
                    }
                }
            }
        }};
    }
    match backend {
        DbBackend::MySql => sides!(
            db.get_mysql_connection_pool(),
            sea_orm::sqlx::MySqlConnection,
            sqlx::MySqlPool,
            sqlx::MySqlConnection
        ),
        DbBackend::Postgres => sides!(
            db.get_postgres_connection_pool(),
            sea_orm::sqlx::PgConnection,
            sqlx::PgPool,
            sqlx::PgConnection
        ),
        _ => sides!(
            db.get_sqlite_connection_pool(),
            sea_orm::sqlx::SqliteConnection,
            sqlx::SqlitePool,
            sqlx::SqliteConnection
        ),
    }
    for (name, times) in results {
        println!("{name:28} p50 {:8.1} µs", median(times));
    }
    Ok(())
}
