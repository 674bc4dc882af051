//! A side of the comparison: a session store, the pool under it, and the floor query.

use crate::{args::Backend, pool::PoolSettings, pool::sqlite, raw};
use anyhow::{Context as _, bail};
use pavex_session::store::SessionStorageBackend;
use pavex_session_sea_orm::SeaOrmSessionStore;
use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, Statement};
use sqlx::{ConnectOptions as _, MySqlPool, PgPool, SqlitePool};
use sqlx09::AssertSqlSafe;
use std::{str::FromStr as _, sync::Arc};

/// Which store a side runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `pavex_session_sea_orm::SeaOrmSessionStore` on sea-orm 2 (sqlx 0.9).
    Ours,
    /// The matching store of `pavex_session_sqlx` 0.2.10 (sqlx 0.8).
    Theirs,
    /// Theirs' statements re-run on sqlx 0.9 (`raw.rs`), to tell the driver's share from the
    /// store's.
    Raw,
}

/// The pool under a side's store, kept to run the floor query, the prefill and clean-up.
#[derive(Debug, Clone)]
pub enum Conn {
    SeaOrm(DatabaseConnection),
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
    /// The raw side's sqlx 0.9 pools.
    RawPostgres(sqlx09::PgPool),
    RawMysql(sqlx09::MySqlPool),
    RawSqlite(sqlx09::SqlitePool),
}

/// One side: a store plus its pool. Cheap to clone (everything is shared).
#[derive(Debug, Clone)]
pub struct Side {
    /// Label in the report: "ours", "theirs", "raw (their SQL, sqlx 0.9)", "theirs A", "theirs B".
    pub label: String,
    pub kind: Kind,
    pub backend: Backend,
    pub store: Arc<dyn SessionStorageBackend>,
    pub conn: Conn,
    /// The database URL, for maintenance on a dedicated connection.
    pub url: String,
}

impl Side {
    /// Connects a side to the database at `url`, with `pool` settings, and migrates its table.
    pub async fn connect(
        label: &str,
        kind: Kind,
        backend: Backend,
        url: &str,
        pool: &PoolSettings,
    ) -> anyhow::Result<Self> {
        let context = || format!("connecting and migrating {label} ({backend:?}) at {url}");
        let (store, conn): (Arc<dyn SessionStorageBackend>, Conn) = match (kind, backend) {
            (Kind::Ours, _) => {
                let mut options = pool.sea_orm(url);
                if backend == Backend::Sqlite {
                    options.map_sqlx_sqlite_opts(sqlite::sqlx09);
                }
                let db = sea_orm::Database::connect(options)
                    .await
                    .with_context(context)?;
                let store = SeaOrmSessionStore::new(db.clone());
                store.migrate().await.with_context(context)?;
                (Arc::new(store), Conn::SeaOrm(db))
            }
            (Kind::Raw, _) => raw::connect(backend, url, pool)
                .await
                .with_context(context)?,
            (Kind::Theirs, Backend::Postgres) => {
                // pavex_session_sqlx turns on sqlx 0.8's TLS, and with the default
                // `sslmode=prefer` its connections would be encrypted where the server offers
                // TLS, while ours and the raw side (sqlx 0.9 without a TLS feature) talk plain
                // TCP: measured that way, theirs paid for TLS and we looked 20% faster than we
                // are. Every side talks plain TCP.
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .with_context(context)?
                    .ssl_mode(sqlx::postgres::PgSslMode::Disable)
                    .disable_statement_logging();
                let db = pool
                    .sqlx()
                    .connect_with(options)
                    .await
                    .with_context(context)?;
                let store = PostgresSessionStore::new(db.clone());
                store.migrate().await.with_context(context)?;
                (Arc::new(store), Conn::Postgres(db))
            }
            (Kind::Theirs, Backend::Mysql) => {
                let options = sqlx::mysql::MySqlConnectOptions::from_str(url)
                    .with_context(context)?
                    .disable_statement_logging();
                let db = pool
                    .sqlx()
                    .connect_with(options)
                    .await
                    .with_context(context)?;
                let store = MySqlSessionStore::new(db.clone());
                store.migrate().await.with_context(context)?;
                (Arc::new(store), Conn::Mysql(db))
            }
            (Kind::Theirs, Backend::Sqlite) => {
                let options = sqlite::sqlx08(
                    sqlx::sqlite::SqliteConnectOptions::from_str(url).with_context(context)?,
                )
                .disable_statement_logging();
                let db = pool
                    .sqlx()
                    .connect_with(options)
                    .await
                    .with_context(context)?;
                let store = SqliteSessionStore::new(db.clone());
                store.migrate().await.with_context(context)?;
                (Arc::new(store), Conn::Sqlite(db))
            }
        };
        Ok(Self {
            label: label.to_owned(),
            kind,
            backend,
            store,
            conn,
            url: url.to_owned(),
        })
    }

    /// What the side runs on, for the report.
    pub fn driver(&self) -> &'static str {
        match self.kind {
            Kind::Ours => "pavex_session_sea_orm (sea-orm 2.0.4, sqlx 0.9)",
            Kind::Theirs => "pavex_session_sqlx 0.2.10 (sqlx 0.8)",
            Kind::Raw => "pavex_session_sqlx 0.2.10's statements on sqlx 0.9 (benches/src/raw.rs)",
        }
    }

    /// The floor: a bare `SELECT 1` through the side's own pool (sea-orm's connection for ours,
    /// the sqlx 0.8 pool for theirs, the sqlx 0.9 pool for raw), checking that one row came back.
    pub async fn select_one(&self) -> anyhow::Result<()> {
        const SQL: &str = "SELECT 1";
        let found = match &self.conn {
            Conn::SeaOrm(db) => db
                .query_one_raw(Statement::from_string(db.get_database_backend(), SQL))
                .await?
                .is_some(),
            Conn::Postgres(db) => sqlx::query(SQL).fetch_optional(db).await?.is_some(),
            Conn::Mysql(db) => sqlx::query(SQL).fetch_optional(db).await?.is_some(),
            Conn::Sqlite(db) => sqlx::query(SQL).fetch_optional(db).await?.is_some(),
            Conn::RawPostgres(db) => sqlx09::query(SQL).fetch_optional(db).await?.is_some(),
            Conn::RawMysql(db) => sqlx09::query(SQL).fetch_optional(db).await?.is_some(),
            Conn::RawSqlite(db) => sqlx09::query(SQL).fetch_optional(db).await?.is_some(),
        };
        if !found {
            bail!("SELECT 1 returned no row");
        }
        Ok(())
    }

    /// Opens connections until the pool holds `n`, then returns them all to the idle queue.
    ///
    /// Both sqlx pools hand out idle connections first in, first out, so at one task a pool
    /// with 16 idle connections sends each call to another server backend (colder caches)
    /// where a pool with 2 reuses the same two. Left alone, the two sides' pools hold however
    /// many connections the prefill and the earlier rounds happened to open; filling both to
    /// the same size before each phase measures them alike.
    pub async fn fill_pool(&self, n: u32) -> anyhow::Result<()> {
        let context = || format!("opening {n} connections for {}", self.label);
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        match &self.conn {
            Conn::SeaOrm(db) => match self.backend {
                Backend::Postgres => hold(db.get_postgres_connection_pool(), n)
                    .await
                    .with_context(context),
                Backend::Mysql => hold(db.get_mysql_connection_pool(), n)
                    .await
                    .with_context(context),
                Backend::Sqlite => hold(db.get_sqlite_connection_pool(), n)
                    .await
                    .with_context(context),
            },
            Conn::Postgres(pool) => hold08(pool, n).await.with_context(context),
            Conn::Mysql(pool) => hold08(pool, n).await.with_context(context),
            Conn::Sqlite(pool) => hold08(pool, n).await.with_context(context),
            Conn::RawPostgres(pool) => hold(pool, n).await.with_context(context),
            Conn::RawMysql(pool) => hold(pool, n).await.with_context(context),
            Conn::RawSqlite(pool) => hold(pool, n).await.with_context(context),
        }
    }

    /// Runs one statement without results (maintenance such as `ANALYZE`).
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        use sqlx::Executor as _;
        let context = || format!("`{sql}` on {}", self.label);
        match &self.conn {
            Conn::SeaOrm(db) => {
                db.execute_unprepared(sql).await.with_context(context)?;
            }
            Conn::Postgres(db) => {
                db.execute(sql).await.with_context(context)?;
            }
            Conn::Mysql(db) => {
                db.execute(sql).await.with_context(context)?;
            }
            Conn::Sqlite(db) => {
                db.execute(sql).await.with_context(context)?;
            }
            Conn::RawPostgres(db) => {
                sqlx09::Executor::execute(db, AssertSqlSafe(sql))
                    .await
                    .with_context(context)?;
            }
            Conn::RawMysql(db) => {
                sqlx09::Executor::execute(db, AssertSqlSafe(sql))
                    .await
                    .with_context(context)?;
            }
            Conn::RawSqlite(db) => {
                sqlx09::Executor::execute(db, AssertSqlSafe(sql))
                    .await
                    .with_context(context)?;
            }
        }
        Ok(())
    }

    /// Counts the rows of the side's `sessions` table.
    pub async fn count_rows(&self) -> anyhow::Result<i64> {
        self.scalar("SELECT COUNT(*) FROM sessions").await
    }

    /// Bytes the side's `sessions` table takes with its indexes: PostgreSQL
    /// `pg_total_relation_size` (heap, TOAST, indexes), InnoDB's `data_length + index_length`
    /// (its estimate, refreshed by the `ANALYZE TABLE` of the settle step), SQLite the whole
    /// database file (`page_count * page_size`, one file per side, after the checkpoint).
    pub async fn table_bytes(&self) -> anyhow::Result<i64> {
        self.scalar(match self.backend {
            Backend::Postgres => "SELECT CAST(pg_total_relation_size('sessions') AS BIGINT)",
            Backend::Mysql => {
                "SELECT CAST(data_length + index_length AS SIGNED) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = 'sessions'"
            }
            Backend::Sqlite => {
                "SELECT p.page_count * s.page_size FROM pragma_page_count() p, pragma_page_size() s"
            }
        })
        .await
    }

    /// MariaDB/MySQL: pages InnoDB has read from disk (the OS page cache included) since the
    /// server started, because they were not in its buffer pool; a row the pool holds costs no
    /// read. Other backends: `None` (PostgreSQL's counters reach its statistics a second late).
    pub async fn page_reads(&self) -> anyhow::Result<Option<i64>> {
        match self.backend {
            Backend::Mysql => self
                .scalar(
                    "SELECT CAST(variable_value AS SIGNED) FROM information_schema.global_status \
                     WHERE variable_name = 'INNODB_BUFFER_POOL_READS'",
                )
                .await
                .map(Some),
            Backend::Postgres | Backend::Sqlite => Ok(None),
        }
    }

    /// Runs a query returning one integer, on the side's pool.
    pub async fn scalar(&self, sql: &str) -> anyhow::Result<i64> {
        let context = || format!("`{sql}` on {}", self.label);
        let n = match &self.conn {
            Conn::SeaOrm(db) => db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .with_context(context)?
                .with_context(|| format!("`{sql}` returned no row"))?
                .try_get_by_index::<i64>(0)
                .with_context(context)?,
            Conn::Postgres(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::Mysql(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::RawPostgres(db) => {
                sqlx09::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(db)
                    .await?
            }
            Conn::RawMysql(db) => {
                sqlx09::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(db)
                    .await?
            }
            Conn::RawSqlite(db) => {
                sqlx09::query_scalar(AssertSqlSafe(sql))
                    .fetch_one(db)
                    .await?
            }
        };
        Ok(n)
    }

    /// The server's version string.
    pub async fn server_version(&self) -> anyhow::Result<String> {
        let sql = match self.backend {
            Backend::Postgres => "SHOW server_version",
            Backend::Mysql => "SELECT VERSION()",
            Backend::Sqlite => "SELECT sqlite_version()",
        };
        let version = match &self.conn {
            Conn::SeaOrm(db) => db
                .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
                .await?
                .context("no version row")?
                .try_get_by_index::<String>(0)?,
            Conn::Postgres(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::Mysql(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::Sqlite(db) => sqlx::query_scalar(sql).fetch_one(db).await?,
            Conn::RawPostgres(db) => sqlx09::query_scalar(sql).fetch_one(db).await?,
            Conn::RawMysql(db) => sqlx09::query_scalar(sql).fetch_one(db).await?,
            Conn::RawSqlite(db) => sqlx09::query_scalar(sql).fetch_one(db).await?,
        };
        Ok(version)
    }

    /// Closes the pool.
    pub async fn close(&self) {
        match &self.conn {
            Conn::SeaOrm(db) => {
                // Closing only fails for a connection that is already closed.
                let _ = db.close_by_ref().await;
            }
            Conn::Postgres(db) => db.close().await,
            Conn::Mysql(db) => db.close().await,
            Conn::Sqlite(db) => db.close().await,
            Conn::RawPostgres(db) => db.close().await,
            Conn::RawMysql(db) => db.close().await,
            Conn::RawSqlite(db) => db.close().await,
        }
    }
}

/// Acquires `n` connections of a sqlx 0.9 pool (sea-orm's or the raw side's) at once, then
/// releases them.
async fn hold<DB: sea_orm::sqlx::Database>(
    pool: &sea_orm::sqlx::Pool<DB>,
    n: usize,
) -> Result<(), sea_orm::sqlx::Error> {
    let held = futures::future::try_join_all((0..n).map(|_| pool.acquire())).await?;
    drop(held);
    Ok(())
}

/// Acquires `n` connections of a sqlx 0.8 pool at once, then releases them.
async fn hold08<DB: sqlx::Database>(pool: &sqlx::Pool<DB>, n: usize) -> Result<(), sqlx::Error> {
    let held = futures::future::try_join_all((0..n).map(|_| pool.acquire())).await?;
    drop(held);
    Ok(())
}
