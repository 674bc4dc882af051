//! What the comparison and the single-purpose benchmark binaries (`src/bin/`) share: the
//! backends, a scratch database per run or side, and a pool configured as the comparison runs
//! it. Included with `mod support;` by the comparison and with
//! `#[path = "../support/mod.rs"] mod support;` by the others.

#![allow(dead_code)]

use anyhow::{Context as _, bail};
use sea_orm::{ConnectOptions, ConnectionTrait as _, Database, DatabaseConnection};
use std::time::Duration;

/// A database backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Mysql,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Mysql => "mysql",
            Backend::Sqlite => "sqlite",
        }
    }

    /// The server's name, for reports.
    pub fn display(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Mysql => "MariaDB",
            Backend::Sqlite => "SQLite",
        }
    }

    /// `postgres`, `mysql`, `sqlite` or `all`.
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<Backend>> {
        Ok(match list {
            "all" => vec![Backend::Postgres, Backend::Mysql, Backend::Sqlite],
            "postgres" => vec![Backend::Postgres],
            "mysql" => vec![Backend::Mysql],
            "sqlite" => vec![Backend::Sqlite],
            other => bail!("unknown backend {other}: postgres, mysql, sqlite or all"),
        })
    }
}

/// A fresh database (or SQLite file) for one backend, named `pavex_bench_<pid>_<tag>_<random>`
/// beside the server URL's database, which is only used to connect.
pub struct Scratch {
    pub url: String,
    /// Server backends: the admin URL and the database's name.
    server: Option<(Backend, String, String)>,
    /// SQLite: the directory of the file, removed with it.
    _dir: Option<tempfile::TempDir>,
}

impl Scratch {
    pub async fn create(
        backend: Backend,
        tag: &str,
        postgres_url: &str,
        mysql_url: &str,
    ) -> anyhow::Result<Self> {
        let name = format!(
            "pavex_bench_{}_{tag}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let server = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let path = dir.path().join(format!("{name}.sqlite"));
                let path = path.to_str().context("the temporary path is not UTF-8")?;
                return Ok(Self {
                    url: format!("sqlite://{path}?mode=rwc"),
                    server: None,
                    _dir: Some(dir),
                });
            }
            Backend::Postgres => postgres_url,
            Backend::Mysql => mysql_url,
        };
        admin(server, &format!("CREATE DATABASE {name}")).await?;
        let mut url = url::Url::parse(server).with_context(|| format!("invalid URL {server}"))?;
        url.set_path(&format!("/{name}"));
        Ok(Self {
            url: url.to_string(),
            server: Some((backend, server.to_owned(), name)),
            _dir: None,
        })
    }

    pub async fn destroy(self) -> anyhow::Result<()> {
        if let Some((backend, server, name)) = &self.server {
            let force = match backend {
                // FORCE ends connections left behind by a failed run.
                Backend::Postgres => " WITH (FORCE)",
                _ => "",
            };
            admin(server, &format!("DROP DATABASE IF EXISTS {name}{force}")).await?;
        }
        Ok(())
    }
}

pub async fn admin(server: &str, sql: &str) -> anyhow::Result<()> {
    let mut options = ConnectOptions::new(server);
    options.max_connections(1).sqlx_logging(false);
    let db = Database::connect(options).await?;
    db.execute_unprepared(sql)
        .await
        .with_context(|| format!("{sql} on {server}"))?;
    db.close().await?;
    Ok(())
}

/// A pool on `url`; SQLite in WAL with `synchronous = NORMAL`, as the other benchmarks run it.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections)
        .sqlx_logging(false)
        .test_before_acquire(false)
        .map_sqlx_sqlite_opts(|sqlite| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
        });
    Ok(Database::connect(options).await?)
}
