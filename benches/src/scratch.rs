//! Scratch databases: a fresh database (or SQLite file) per side, dropped at the end.
//!
//! Server databases are named `pavex_bench_<pid>_<tag>_<random>` and created beside the
//! database of the server URL, which is only used to connect and is never written to.

use crate::args::Backend;
use anyhow::Context as _;
use sqlx::{Connection as _, Executor as _};
use std::path::Path;

/// One side's database.
#[derive(Debug)]
pub struct Scratch {
    backend: Backend,
    /// The URL the side connects to.
    url: String,
    /// For server backends: the admin URL and the database name, to drop it.
    server: Option<(String, String)>,
}

impl Scratch {
    /// Creates a fresh database for `tag` on `backend`. SQLite files go in `dir`.
    pub async fn create(
        backend: Backend,
        server_url: &str,
        tag: &str,
        dir: &Path,
    ) -> anyhow::Result<Self> {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let name = format!("pavex_bench_{}_{tag}_{suffix}", std::process::id());
        match backend {
            Backend::Sqlite => {
                let path = dir.join(format!("{name}.sqlite"));
                let path = path.to_str().context("The temporary path is not UTF-8")?;
                Ok(Self {
                    backend,
                    url: format!("sqlite://{path}?mode=rwc"),
                    server: None,
                })
            }
            Backend::Postgres | Backend::Mysql => {
                let mut url = url::Url::parse(server_url)
                    .with_context(|| format!("Invalid server URL {server_url}"))?;
                admin(backend, server_url, &create_sql(backend, &name)).await?;
                url.set_path(&format!("/{name}"));
                Ok(Self {
                    backend,
                    url: url.to_string(),
                    server: Some((server_url.to_owned(), name)),
                })
            }
        }
    }

    /// The URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Drops the database (SQLite files go with their temporary directory).
    pub async fn destroy(self) -> anyhow::Result<()> {
        if let Some((server_url, name)) = &self.server {
            admin(self.backend, server_url, &drop_sql(self.backend, name)).await?;
        }
        Ok(())
    }
}

fn create_sql(backend: Backend, name: &str) -> String {
    match backend {
        Backend::Postgres => format!("CREATE DATABASE \"{name}\""),
        _ => format!("CREATE DATABASE `{name}`"),
    }
}

fn drop_sql(backend: Backend, name: &str) -> String {
    match backend {
        // FORCE ends connections left behind by a failed run.
        Backend::Postgres => format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        _ => format!("DROP DATABASE IF EXISTS `{name}`"),
    }
}

/// Runs one administrative statement on its own connection to `server_url`.
async fn admin(backend: Backend, server_url: &str, sql: &str) -> anyhow::Result<()> {
    let context = || format!("`{sql}` on {server_url}");
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(server_url)
                .await
                .with_context(context)?;
            conn.execute(sql).await.with_context(context)?;
            conn.close().await.with_context(context)?;
        }
        Backend::Mysql => {
            let mut conn = sqlx::MySqlConnection::connect(server_url)
                .await
                .with_context(context)?;
            conn.execute(sql).await.with_context(context)?;
            conn.close().await.with_context(context)?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}
