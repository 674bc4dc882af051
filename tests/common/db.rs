//! Real databases for the tests: each test gets a database (or file) of its own, dropped when the
//! test ends, on every backend: SQLite (a file, and in memory), PostgreSQL and MariaDB/MySQL.
//!
//! The servers come from `PAVEX_SESSION_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) and `PAVEX_SESSION_TEST_MYSQL_URL` (default
//! `mysql://root@127.0.0.1:3306/test`). An unreachable server fails the test: nothing is skipped.
#![allow(dead_code)]

use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement,
};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    SqliteFile,
    SqliteMemory,
    Postgres,
    MySql,
    /// A private 3-node MariaDB Galera cluster ([`crate::common::galera`]): the test's own
    /// connection goes to node 1, the store's to node 2 (see [`TestDb::node_connections`]).
    Galera,
}

/// A database that exists for one test and is removed when dropped (also when the test panics).
pub struct TestDb {
    pub db: DatabaseConnection,
    pub backend: Backend,
    /// The URL the test's connection was opened with.
    pub url: String,
    /// On a cluster: connections to each node (the first is `db`'s node). Elsewhere: `db`.
    nodes: Vec<DatabaseConnection>,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    RemoveDir(PathBuf),
    DropDatabase { admin_url: String, drop: String },
}

fn server_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Postgres => (
            "PAVEX_SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        Backend::MySql => (
            "PAVEX_SESSION_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ),
        _ => unreachable!("SQLite has no server, the cluster has its own"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Pool settings for tests: several connections, so that races really race.
fn options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url);
    options.max_connections(8).sqlx_logging(false);
    options
}

/// A fresh, empty database on `backend`.
pub async fn fresh_db(backend: Backend) -> TestDb {
    let name = format!("pss_test_{}", uuid::Uuid::new_v4().simple());
    match backend {
        Backend::SqliteMemory => {
            // One connection: every connection to `sqlite::memory:` is a database of its own.
            let url = "sqlite::memory:".to_owned();
            let mut options = ConnectOptions::new(&url);
            options.max_connections(1).sqlx_logging(false);
            let db = Database::connect(options)
                .await
                .expect("open SQLite in memory");
            TestDb {
                nodes: vec![db.clone()],
                db,
                backend,
                url,
                cleanup: Cleanup::Nothing,
            }
        }
        Backend::SqliteFile => {
            let dir = std::env::temp_dir().join(&name);
            std::fs::create_dir_all(&dir).expect("create a temporary directory");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.join("sessions.sqlite").display()
            );
            let db = Database::connect(options(&url))
                .await
                .expect("open a SQLite file");
            TestDb {
                nodes: vec![db.clone()],
                db,
                backend,
                url,
                cleanup: Cleanup::RemoveDir(dir),
            }
        }
        Backend::Postgres | Backend::MySql => {
            let admin_url = server_url(backend);
            let admin = Database::connect(options(&admin_url))
                .await
                .unwrap_or_else(|e| panic!("{backend:?} at {admin_url} is unreachable: {e}"));
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create a test database");
            admin.close().await.ok();
            let (server, _) = admin_url
                .rsplit_once('/')
                .expect("a URL with a database name");
            let url = format!("{server}/{name}");
            let db = Database::connect(options(&url))
                .await
                .expect("connect to the test database");
            let drop = match backend {
                Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                _ => format!("DROP DATABASE IF EXISTS {name}"),
            };
            TestDb {
                nodes: vec![db.clone()],
                db,
                backend,
                url,
                cleanup: Cleanup::DropDatabase { admin_url, drop },
            }
        }
        Backend::Galera => {
            let cluster = super::galera::shared();
            let admin_url = cluster.url(1, "test");
            let admin = super::galera::connect(&admin_url, 1).await;
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create a test database on the cluster");
            admin.close().await.ok();
            let mut nodes = Vec::new();
            for node in 1..=3 {
                nodes.push(super::galera::connect(&cluster.url(node, &name), 8).await);
            }
            TestDb {
                db: nodes[0].clone(),
                nodes,
                backend,
                url: cluster.url(1, &name),
                cleanup: Cleanup::DropDatabase {
                    admin_url,
                    drop: format!("DROP DATABASE IF EXISTS {name}"),
                },
            }
        }
    }
}

impl TestDb {
    pub fn db_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Connections to every node of the database: three on a cluster, else just `db`.
    pub fn node_connections(&self) -> &[DatabaseConnection] {
        &self.nodes
    }

    /// New pools to every node, on which no statement has been prepared yet: three on a cluster,
    /// one on a server or a SQLite file; SQLite in memory keeps its only connection.
    pub async fn new_node_connections(&self) -> Vec<DatabaseConnection> {
        match self.backend {
            Backend::SqliteMemory => self.nodes.clone(),
            Backend::Galera => {
                let cluster = super::galera::shared();
                let name = self.url.rsplit('/').next().unwrap_or_default();
                let mut nodes = Vec::new();
                for node in 1..=3 {
                    nodes.push(super::galera::connect(&cluster.url(node, name), 8).await);
                }
                nodes
            }
            _ => vec![
                Database::connect(options(&self.url))
                    .await
                    .expect("connect to the test database again"),
            ],
        }
    }

    /// The connection a test's store uses: on a cluster another node than `db`'s, so that the
    /// store's writes and the test's checks cross nodes.
    pub fn store_connection(&self) -> DatabaseConnection {
        self.nodes[1 % self.nodes.len()].clone()
    }

    /// Runs a statement written for this test (not by the store), with bound values.
    pub async fn run(&self, sql: &str, values: Vec<sea_orm::Value>) -> u64 {
        let statement = Statement::from_sql_and_values(self.db_backend(), sql, values);
        self.db
            .execute_raw(statement)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .rows_affected()
    }

    /// The names of `table`'s partial indexes (`CREATE INDEX ... WHERE`), sorted. MySQL and
    /// MariaDB have none.
    #[allow(dead_code)]
    pub async fn partial_indexes(&self, table: &str) -> Vec<String> {
        let sql = match self.db_backend() {
            DbBackend::Postgres => {
                "SELECT i.relname AS name FROM pg_index x
                 JOIN pg_class i ON i.oid = x.indexrelid
                 JOIN pg_class t ON t.oid = x.indrelid
                 WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace
                   AND x.indpred IS NOT NULL
                 ORDER BY 1"
            }
            DbBackend::MySql => return Vec::new(),
            _ => "SELECT name FROM pragma_index_list(?1) WHERE partial = 1 ORDER BY 1",
        };
        let statement = Statement::from_sql_and_values(self.db_backend(), sql, [table.into()]);
        let rows = self.db.query_all_raw(statement).await.unwrap();
        rows.iter()
            .map(|row| row.try_get("", "name").unwrap())
            .collect()
    }

    /// The database clock in Unix epoch milliseconds, read independently of the store.
    pub async fn db_now_millis(&self) -> i64 {
        db_now_millis(&self.db).await
    }

    /// Waits until the database clock has moved past its current millisecond, so that what
    /// comes next is written in a later millisecond than what came before.
    pub async fn next_millisecond(&self) {
        next_millisecond(&self.db).await
    }
}

/// The clock of the database `db` is connected to, in Unix epoch milliseconds (usable from a
/// task that does not own the `TestDb`).
pub async fn db_now_millis(db: &DatabaseConnection) -> i64 {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => {
            "SELECT CAST(FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000) AS BIGINT) AS now"
        }
        DbBackend::MySql => {
            "SELECT CAST(FLOOR(UNIX_TIMESTAMP(SYSDATE(6)) * 1000) AS SIGNED) AS now"
        }
        _ => "SELECT CAST(ROUND((julianday() - 2440587.5) * 86400000.0) AS INTEGER) AS now",
    };
    let row = db
        .query_one_raw(Statement::from_string(backend, sql))
        .await
        .expect("read the database clock")
        .expect("one row");
    row.try_get("", "now").expect("an integer")
}

/// Waits until the clock of the database `db` is connected to has moved past its current
/// millisecond.
pub async fn next_millisecond(db: &DatabaseConnection) {
    let now = db_now_millis(db).await;
    while db_now_millis(db).await <= now {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.cleanup, Cleanup::Nothing) {
            Cleanup::Nothing => {}
            Cleanup::RemoveDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::DropDatabase { admin_url, drop } => {
                // Drop runs inside the test's runtime: use a runtime of our own on another thread.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async {
                        let admin = Database::connect(options(&admin_url)).await?;
                        admin.execute_unprepared(&drop).await?;
                        admin.close().await
                    })?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop a test database: {dropped:?}");
                }
            }
        }
    }
}

/// Declares `async fn $name(backend: Backend)` tests once and runs each on every backend:
/// `sqlite_file::$name`, `sqlite_memory::$name`, `postgres::$name`, `mysql::$name`.
/// `Backend` must be in scope where it is invoked. `shared:` leaves `sqlite_memory` out (for
/// tests where a second process opens the database), `and_galera:` adds the cluster.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        $crate::on_every_backend!(@backend sqlite_file, SqliteFile, $($name),*);
        $crate::on_every_backend!(@backend sqlite_memory, SqliteMemory, $($name),*);
        $crate::on_every_backend!(@backend postgres, Postgres, $($name),*);
        $crate::on_every_backend!(@backend mysql, MySql, $($name),*);
    };
    // Every backend but `sqlite_memory`, which no second process can see.
    (shared: $($name:ident),* $(,)?) => {
        $crate::on_every_backend!(@backend sqlite_file, SqliteFile, $($name),*);
        $crate::on_every_backend!(@backend postgres, Postgres, $($name),*);
        $crate::on_every_backend!(@backend mysql, MySql, $($name),*);
    };
    // The same as the first, plus `galera::$name` on a private 3-node Galera cluster.
    (and_galera: $($name:ident),* $(,)?) => {
        $crate::on_every_backend!($($name),*);
        $crate::on_every_backend!(@backend galera, Galera, $($name),*);
    };
    (@backend $module:ident, $variant:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::$variant).await
                }
            )*
        }
    };
}
