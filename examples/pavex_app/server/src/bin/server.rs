//! Loads the configuration, builds the application state (the database pool, the sessions table
//! if `database.migrate_on_start`, the session store, which checks the table), starts the
//! expired-session cleaner and serves HTTP until SIGINT or SIGTERM; then stops the cleaner and
//! prints its report. A sessions table the store cannot use stops it before it listens.
//!
//! On stdout: `listening on http://<address>`, one line per request (`app::request_log`), and
//! `expiry cleaner stopped: ...` at the end. Errors go to stderr.
//!
//! ```sh
//! PX_PROFILE=dev cargo run          # in examples/pavex_app; SQLite file pavex_app.sqlite
//! PX_PROFILE=dev PX_DATABASE__URL=postgres://postgres@127.0.0.1:5432/test cargo run
//! ```
use anyhow::Context;
use app::configuration::{DatabaseConfig, SessionPolicyConfig};
use pavex::config::ConfigLoader;
use pavex::server::{Server, ServerHandle, ShutdownMode};
use pavex_session_sea_orm::{CleanupConfig, CleanupReport, ExpiredSessionCleaner};
use server::configuration::Profile;
use server_sdk::{ApplicationConfig, ApplicationState, ApplicationStateError, run};
use std::time::Duration;
use tokio::{sync::oneshot, task::JoinHandle};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config: ApplicationConfig = ConfigLoader::<Profile>::new().load().context(
        "Failed to load the configuration (PX_PROFILE, configuration/*.yml, PX_* variables)",
    )?;
    check_session_cookie_is_protected(&config)?;
    let listener = config
        .server
        .listener()
        .await
        .context("Failed to bind the server's TCP listener")?;
    let address = listener
        .local_addr()
        .context("The TCP listener has no local address")?;
    let shutdown_timeout = Duration::from_secs(config.server.graceful_shutdown_seconds);
    let server_configuration = config.server.server_configuration();
    let database_config = config.database.clone();
    let session_policy = config.session_policy.clone();
    let cleanup_config = config.session_cleanup.cleanup_config();

    let state = match ApplicationState::new(config).await {
        Ok(state) => state,
        // `app::database::session_store` checked the sessions table and refused it.
        Err(e @ ApplicationStateError::SessionStore(_)) => {
            return Err(anyhow::Error::new(e)
                .context("Refusing to start: the session store cannot use its sessions table"));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context("Failed to build the application state"));
        }
    };

    // After `ApplicationState::new`: the table exists and the app's store accepted it.
    let cleaner = Cleaner::start(&database_config, &session_policy, cleanup_config).await?;

    let server = Server::new()
        .set_config(server_configuration)
        .listen(listener);
    let handle = run(server, state);
    // The end-to-end test waits for this line to know the server is ready, and where.
    println!("listening on http://{address}");
    shut_down_on_signal(handle.clone(), shutdown_timeout);
    handle.await;
    // The server has stopped (in-flight requests done or timed out): stop the cleaner too.
    cleaner.stop().await
}

/// The expired-session cleaner, running in the background until [`Cleaner::stop`].
struct Cleaner {
    stop: oneshot::Sender<()>,
    task: JoinHandle<CleanupReport>,
}

impl Cleaner {
    /// Spawns `ExpiredSessionCleaner` on its own one-connection pool
    /// (`app::database::cleaner_store` says why), paced by `session_cleanup` in the
    /// configuration, with the app's absolute lifetime (`session_policy`), so that its report
    /// counts the sessions that reached it. It survives database errors by itself (backoff and
    /// retry), so it runs as long as the server does.
    async fn start(
        database: &DatabaseConfig,
        policy: &SessionPolicyConfig,
        config: CleanupConfig,
    ) -> anyhow::Result<Self> {
        let store = app::database::cleaner_store(database, policy)
            .await
            .context("Failed to connect the expired-session cleaner to the database")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let cleaner = ExpiredSessionCleaner::new(store).with_config(config);
        let task = tokio::spawn(cleaner.run_until(async {
            stopped.await.ok();
        }));
        Ok(Self { stop, task })
    }

    /// Stops the cleaner (a batch in flight is abandoned: the database applies it whole or not
    /// at all) and prints what it did, one line: how many expired sessions it deleted, of which
    /// how many had reached the absolute lifetime rather than their idle timeout.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let report = self
            .task
            .await
            .context("The expired-session cleaner panicked")?;
        println!(
            "expiry cleaner stopped: {} expired sessions deleted ({} at the absolute lifetime) in {} batches, {} rounds, {} failed batches",
            report.deleted, report.ended_at_lifetime, report.batches, report.rounds, report.errors
        );
        Ok(())
    }
}

/// pavex_session refuses to send a session cookie that is neither encrypted nor signed: every
/// response that sets it would be a 500. Refuse to start instead, and say what is missing.
fn check_session_cookie_is_protected(config: &ApplicationConfig) -> anyhow::Result<()> {
    let name = &config.session.cookie.name;
    let protected = config
        .cookies
        .crypto_rules
        .iter()
        .any(|rule| rule.cookie_names.contains(name));
    anyhow::ensure!(
        protected,
        "No crypto rule for the session cookie `{name}`: add one to `cookies.crypto_rules` \
         (configuration/*.yml), or set PX_COOKIES__CRYPTO_RULES='[{{cookie_names=[\"{name}\"],\
         algorithm=\"encryption\",key=\"<64+ random characters>\"}}]'"
    );
    Ok(())
}

/// Shuts the server down gracefully on SIGINT (Ctrl-C) or SIGTERM.
fn shut_down_on_signal(handle: ServerHandle, timeout: Duration) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut terminate) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = terminate.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        handle.shutdown(ShutdownMode::Graceful { timeout }).await;
    });
}
