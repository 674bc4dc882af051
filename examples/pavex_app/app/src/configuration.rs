//! The app's own configuration types. Each `#[config(key = "...")]` type becomes a field of the
//! generated `server_sdk::ApplicationConfig`, loaded from `configuration/base.yml`, the
//! profile's file (`dev.yml`, `prod.yml`) and `PX_*` environment variables, e.g.
//! `PX_DATABASE__URL` for `database.url`. `pavex_session`'s `session` and Pavex's `cookies`
//! keys live in the same files.
use pavex::config;
use pavex::server::{IncomingStream, ServerConfiguration};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroUsize;

/// Where the HTTP server listens.
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "server", include_if_unused)]
pub struct ServerConfig {
    /// The interface to bind, e.g. `127.0.0.1` or `0.0.0.0` (`PX_SERVER__IP`).
    pub ip: IpAddr,
    /// The port; `0` lets the operating system pick a free one (`PX_SERVER__PORT`).
    pub port: u16,
    /// How long in-flight requests may run on after a shutdown signal, in seconds.
    pub graceful_shutdown_seconds: u64,
    /// Worker threads (`PX_SERVER__WORKERS`); absent: one per CPU, Pavex's default.
    ///
    /// Pavex 0.2.10 queues at most 15 accepted connections per worker and **closes** a new
    /// connection when every worker's queue is full, so a burst of new connections larger than
    /// `15 * workers` can see connections closed without a response. Size it for the bursts you
    /// expect.
    #[serde(default)]
    pub workers: Option<NonZeroUsize>,
}

impl ServerConfig {
    /// Pavex's server settings: the number of workers.
    pub fn server_configuration(&self) -> ServerConfiguration {
        let configuration = ServerConfiguration::new();
        match self.workers {
            Some(workers) => configuration.set_n_workers(workers.get()),
            None => configuration,
        }
    }

    /// Binds the TCP listener.
    pub async fn listener(&self) -> Result<IncomingStream, std::io::Error> {
        IncomingStream::bind(SocketAddr::new(self.ip, self.port)).await
    }
}

/// The database that holds the sessions table (and, in a real app, everything else).
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "database")]
pub struct DatabaseConfig {
    /// `postgres://…`, `mysql://…` or `sqlite://file.sqlite?mode=rwc` (`PX_DATABASE__URL`).
    pub url: String,
    /// The pool's size. SQLite pools default to one connection: set it.
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails, in seconds.
    pub acquire_timeout_seconds: u64,
    /// Create the sessions table (and its index) at start-up if it is missing, with
    /// `SeaOrmSessionStore::migrate`. Set it to `false` when the table is created by a
    /// migration step of the deployment (`pavex_session_sea_orm_migration -- up`).
    pub migrate_on_start: bool,
}

/// The stand-in for a user directory: every user name signs in with this one password. A real
/// app checks a password hash in its users table instead.
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "auth")]
pub struct AuthConfig {
    /// The password every user signs in with (`PX_AUTH__DEMO_PASSWORD`).
    pub demo_password: String,
}

/// The device routes (`routes::devices`).
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "devices")]
pub struct DevicesConfig {
    /// How many sessions one page of `GET /devices` lists (`PX_DEVICES__PAGE_SIZE`); the store
    /// brings it into 1 to `pavex_session_sea_orm::MAX_PAGE_SIZE` (1 000).
    pub page_size: u32,
}
