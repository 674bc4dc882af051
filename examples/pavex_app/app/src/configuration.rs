//! The app's own configuration types. Each `#[config(key = "...")]` type becomes a field of the
//! generated `server_sdk::ApplicationConfig`, loaded from `configuration/base.yml`, the
//! profile's file (`dev.yml`, `prod.yml`) and `PX_*` environment variables, e.g.
//! `PX_DATABASE__URL` for `database.url`. `pavex_session`'s `session` and Pavex's `cookies`
//! keys live in the same files.
use pavex::config;
use pavex::server::{IncomingStream, ServerConfiguration};
use pavex_session_sea_orm::CleanupConfig;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

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

/// The session policy of OWASP ASVS 5.0 chapter V7 that the session store enforces
/// (`crate::database::session_store`; the cleaner's store gets the same lifetime): how many
/// devices a user may be signed in on at once (7.1.2) and how long a session may live, however
/// active (7.3.2). Both are required and neither may be 0: a `0` fails the loading of the
/// configuration at start-up (the server exits before it listens, saying which key).
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "session_policy")]
pub struct SessionPolicyConfig {
    /// At most this many live sessions per user (`PX_SESSION_POLICY__MAX_DEVICES_PER_USER`):
    /// a sign-in beyond it signs out the user's oldest session, by creation, in the same
    /// transaction (`AtCap::EndOldest`), so a new sign-in always works.
    pub max_devices_per_user: NonZeroU32,
    /// A session ends this many days after it was created, whatever its activity
    /// (`PX_SESSION_POLICY__ABSOLUTE_LIFETIME_DAYS`): every write caps its deadline at
    /// `created_at` plus this, so neither using it nor renewing its id (`POST /me/renew-id`)
    /// extends it past that.
    pub absolute_lifetime_days: NonZeroU32,
}

impl SessionPolicyConfig {
    /// The absolute lifetime as a duration (days of 24 hours).
    pub fn absolute_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.absolute_lifetime_days.get()) * 24 * 3600)
    }
}

/// How the server's expired-session cleaner (`pavex_session_sea_orm::ExpiredSessionCleaner`,
/// started by `server/src/bin/server.rs`) paces itself. Every field may be left out: the
/// defaults are `CleanupConfig::default()`'s. No component uses it (the server binary reads it),
/// hence `include_if_unused`, so that it stays in `ApplicationConfig`.
#[derive(serde::Deserialize, Debug, Clone)]
#[config(key = "session_cleanup", default_if_missing, include_if_unused)]
#[serde(default)]
pub struct SessionCleanupConfig {
    /// Expired sessions deleted per statement (`PX_SESSION_CLEANUP__BATCH_SIZE`).
    pub batch_size: NonZeroUsize,
    /// The pause after a full batch, in milliseconds, so that a backlog does not monopolise
    /// the database.
    pub pause_between_batches_ms: u64,
    /// The pause once nothing expired is left, in seconds.
    pub pause_between_rounds_seconds: u64,
}

impl Default for SessionCleanupConfig {
    fn default() -> Self {
        let defaults = CleanupConfig::default();
        Self {
            batch_size: defaults.batch_size,
            pause_between_batches_ms: defaults.pause_between_batches.as_millis() as u64,
            pause_between_rounds_seconds: defaults.pause_between_rounds.as_secs(),
        }
    }
}

impl SessionCleanupConfig {
    /// The cleaner's settings: these fields, the library's defaults for the rest (jitter,
    /// backoff after a database error).
    pub fn cleanup_config(&self) -> CleanupConfig {
        CleanupConfig {
            batch_size: self.batch_size,
            pause_between_batches: Duration::from_millis(self.pause_between_batches_ms),
            pause_between_rounds: Duration::from_secs(self.pause_between_rounds_seconds),
            ..CleanupConfig::default()
        }
    }
}
