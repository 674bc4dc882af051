//! Where does a `load` spend its time? One task, one connection, medians of many calls of each
//! variant, interleaved. A diagnostic, not part of the report.
//!
//! `cargo run --release --manifest-path benches/Cargo.toml --bin probe -- mysql://root@127.0.0.1:3306/test`

use pavex_session::{SessionId, store::SessionStorageBackend};
use pavex_session_sea_orm::SeaOrmSessionStore;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use sqlx::Connection as _;
use std::time::{Duration, Instant};

const CALLS: usize = 3000;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "mysql://root@127.0.0.1:3306/test".into());
    let name = format!("pss_probe_{}", std::process::id());
    let mut admin = sqlx::MySqlConnection::connect(&server).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    let url = format!("{}/{name}", server.rsplit_once('/').unwrap().0);
    let mut options = sea_orm::ConnectOptions::new(&url);
    options
        .max_connections(1)
        .sqlx_logging(false)
        .test_before_acquire(false);
    let db = Database::connect(options).await?;
    let ours = SeaOrmSessionStore::new(db.clone());
    ours.migrate().await?;
    let theirs_pool = sqlx::mysql::MySqlPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect(&url)
        .await?;
    let theirs = pavex_session_sqlx::MySqlSessionStore::new(theirs_pool.clone());
    theirs.migrate().await?;
    let id = SessionId::random();
    let uuid = id.inner();
    let clock = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";
    let ours_sql = format!(
        "SELECT `state`, `deadline` - {clock} AS `ttl_ms` FROM `sessions` WHERE `id` = ? AND `deadline` > {clock}"
    );
    let cheap_sql = "SELECT `state`, `deadline` - UNIX_TIMESTAMP() AS `ttl_ms` FROM `sessions` WHERE `id` = ? AND `deadline` > UNIX_TIMESTAMP()";
    let sqlx09 = db.get_mysql_connection_pool().clone();

    let mut results: Vec<(&str, Vec<Duration>)> = [
        "ours.load",
        "theirs.load",
        "sea-orm raw ours sql",
        "sea-orm raw cheap clock",
        "sqlx 0.9 ours sql",
        "sqlx 0.8 ours sql",
        "sea-orm SELECT 1",
        "sqlx 0.8 SELECT 1",
        "sqlx 0.9 acquire, fetch_one",
        "sea-orm pool query_one",
    ]
    .into_iter()
    .map(|n| (n, Vec::with_capacity(CALLS)))
    .collect();
    // Blocks of consecutive calls per variant, so that each variant sees its own connection used
    // back to back, as an application does.
    for block in 0..(CALLS / 200 + 1) {
        for (i, (_, times)) in results.iter_mut().enumerate() {
            for _ in 0..200 {
                let start = Instant::now();
                match i {
                    0 => drop(ours.load(&id).await?),
                    1 => drop(theirs.load(&id).await?),
                    2 => drop(
                        db.query_all_raw(Statement::from_sql_and_values(
                            DbBackend::MySql,
                            &ours_sql,
                            [uuid.into()],
                        ))
                        .await?,
                    ),
                    3 => drop(
                        db.query_all_raw(Statement::from_sql_and_values(
                            DbBackend::MySql,
                            cheap_sql,
                            [uuid.into()],
                        ))
                        .await?,
                    ),
                    4 => drop(
                        sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(ours_sql.as_str()))
                            .bind(uuid)
                            .fetch_optional(&sqlx09)
                            .await?,
                    ),
                    5 => drop(
                        sqlx::query(ours_sql.as_str())
                            .bind(uuid)
                            .fetch_optional(&theirs_pool)
                            .await?,
                    ),
                    6 => drop(
                        db.query_all_raw(Statement::from_string(DbBackend::MySql, "SELECT 1"))
                            .await?,
                    ),
                    8 => {
                        let mut connection = sqlx09.acquire().await?;
                        let row =
                            sea_orm::sqlx::query(sea_orm::sqlx::AssertSqlSafe(ours_sql.as_str()))
                                .bind(uuid)
                                .fetch_one(&mut *connection)
                                .await;
                        drop(row.ok())
                    }
                    9 => match &db.inner {
                        sea_orm::DatabaseConnectionType::SqlxMySqlPoolConnection(pool) => drop(
                            pool.query_one(Statement::from_sql_and_values(
                                DbBackend::MySql,
                                &ours_sql,
                                [uuid.into()],
                            ))
                            .await?,
                        ),
                        _ => anyhow::bail!("not a MySQL pool"),
                    },
                    _ => drop(sqlx::query("SELECT 1").fetch_one(&theirs_pool).await?),
                }
                if block > 0 {
                    times.push(start.elapsed());
                }
            }
        }
    }
    for (name, times) in results {
        println!("{name:28} p50 {:8.1} µs", median(times));
    }
    sqlx::query(&format!("DROP DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    Ok(())
}
