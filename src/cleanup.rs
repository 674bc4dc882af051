//! Deleting expired sessions in the background: in batches, with pauses and jitter, surviving
//! database errors, until the application asks it to stop.

use crate::{SeaOrmSessionStore, expiry::ExpiredDeleted};
use pavex_session::store::{SessionStorageBackend, errors::DeleteExpiredError};
use std::{any::Any, future::Future, num::NonZeroUsize, pin::pin, time::Duration};

/// How an [`ExpiredSessionCleaner`] paces itself. The defaults suit most applications: write
/// `CleanupConfig { batch_size, ..CleanupConfig::default() }`, so that a field added later does
/// not break your code.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupConfig {
    /// Expired sessions deleted per statement (default 1 000). Each batch costs O(batch) on every
    /// backend, so the table's size does not matter; smaller batches hold locks for less time.
    pub batch_size: NonZeroUsize,
    /// Pause after a full batch before the next one (default 50 ms), so that a large backlog
    /// does not monopolise the database.
    pub pause_between_batches: Duration,
    /// Pause after a round that left nothing expired (default 5 minutes).
    pub pause_between_rounds: Duration,
    /// Each pause is lengthened by a random fraction of itself, up to this one (default 0.25), so
    /// that instances started together drift apart instead of cleaning in lockstep.
    pub jitter: f64,
    /// Wait after a failed batch (default 1 s), doubled after each consecutive failure...
    pub initial_backoff: Duration,
    /// ...up to this (default 5 minutes).
    pub max_backoff: Duration,
}

impl Default for CleanupConfig {
    fn default() -> Self {
        Self {
            batch_size: NonZeroUsize::new(1000).unwrap_or(NonZeroUsize::MIN),
            pause_between_batches: Duration::from_millis(50),
            pause_between_rounds: Duration::from_secs(5 * 60),
            jitter: 0.25,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(5 * 60),
        }
    }
}

/// What a cleaner did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Expired sessions deleted, as the database reported them. A batch abandoned at shutdown
    /// is not counted, though the database may have applied it.
    pub deleted: u64,
    /// `DELETE` statements that succeeded.
    pub batches: u64,
    /// Rounds completed (a round ends when a batch comes back short).
    pub rounds: u64,
    /// Batches that failed (each was followed by a backoff and a retry).
    pub errors: u64,
    /// Of the sessions deleted, those that had reached the store's absolute lifetime (OWASP
    /// ASVS 7.3.2): ended by that policy, not by idleness. Counted for a [`SeaOrmSessionStore`]
    /// built [`with_absolute_lifetime`](SeaOrmSessionStore::with_absolute_lifetime), each also an
    /// audit event ([`AUDIT_TARGET`](crate::AUDIT_TARGET)); 0 for any other store.
    pub ended_at_lifetime: u64,
}

/// Deletes expired sessions from any `pavex_session` store, in batches, until told to stop.
///
/// A round deletes batches of [`CleanupConfig::batch_size`] until one comes back short, pausing
/// between batches; then the cleaner sleeps until the next round. A failed batch (database down,
/// a timeout) is logged with its cause and retried after an exponential backoff: the cleaner
/// never gives up by itself. Everything is logged through `tracing`.
///
/// ```no_run
/// use pavex_session_sea_orm::{CleanupConfig, ExpiredSessionCleaner, SeaOrmSessionStore};
///
/// # async fn run(store: SeaOrmSessionStore) {
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let cleaner = ExpiredSessionCleaner::new(store).with_config(CleanupConfig::default());
/// let task = tokio::spawn(cleaner.run_until(async { stopped.await.ok(); }));
/// // ... on shutdown:
/// stop.send(()).ok();
/// let report = task.await.expect("the cleaner never panics");
/// println!("deleted {} expired sessions", report.deleted);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct ExpiredSessionCleaner<S> {
    store: S,
    config: CleanupConfig,
}

impl<S: SessionStorageBackend + 'static> ExpiredSessionCleaner<S> {
    /// A cleaner of `store` with the default [`CleanupConfig`].
    pub fn new(store: S) -> Self {
        Self {
            store,
            config: CleanupConfig::default(),
        }
    }

    /// The same cleaner with another configuration.
    pub fn with_config(self, config: CleanupConfig) -> Self {
        Self { config, ..self }
    }

    /// Runs rounds until `shutdown` completes, then returns what it did. A batch in flight when
    /// `shutdown` completes is abandoned; the database applies a statement whole or not at all.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> CleanupReport {
        let mut shutdown = pin!(shutdown);
        let mut report = CleanupReport::default();
        let mut backoff = self.config.initial_backoff;
        let batch_size = u64::try_from(self.config.batch_size.get()).unwrap_or(u64::MAX);
        loop {
            let batch = tokio::select! {
                () = &mut shutdown => break,
                batch = self.delete_batch() => batch,
            };
            let pause = match batch {
                Ok(batch) => {
                    backoff = self.config.initial_backoff;
                    report.batches += 1;
                    report.deleted = report.deleted.saturating_add(batch.deleted);
                    report.ended_at_lifetime =
                        report.ended_at_lifetime.saturating_add(batch.at_lifetime);
                    if batch.deleted < batch_size {
                        report.rounds += 1;
                        tracing::debug!(report.deleted, "Expired sessions cleaned up");
                        self.config.pause_between_rounds
                    } else {
                        self.config.pause_between_batches
                    }
                }
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(
                        error.message = %e,
                        error.details = ?e,
                        backoff_ms = backoff.as_millis() as u64,
                        "Failed to delete a batch of expired sessions; retrying after a backoff",
                    );
                    let this = backoff;
                    backoff = backoff.saturating_mul(2).min(self.config.max_backoff);
                    this
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(self.jittered(pause)) => {}
            }
        }
        tracing::info!(
            report.deleted,
            report.batches,
            report.rounds,
            report.errors,
            report.ended_at_lifetime,
            "Expired-session cleaner stopped"
        );
        report
    }

    /// Deletes batches until one comes back short; `on_batch` sees each batch's count. Stops at
    /// the first error. This is one round of [`run_until`](Self::run_until), for jobs that run
    /// once (cron, Kubernetes) rather than forever.
    pub async fn drain(&self, mut on_batch: impl FnMut(usize)) -> Result<u64, DeleteExpiredError> {
        let mut deleted = 0u64;
        let batch_size = u64::try_from(self.config.batch_size.get()).unwrap_or(u64::MAX);
        loop {
            let batch = self.delete_batch().await?.deleted;
            deleted = deleted.saturating_add(batch);
            on_batch(usize::try_from(batch).unwrap_or(usize::MAX));
            if batch < batch_size {
                return Ok(deleted);
            }
            tokio::time::sleep(self.jittered(self.config.pause_between_batches)).await;
        }
    }

    /// One batch. Our own store also says which of the sessions had reached its absolute
    /// lifetime; any other store only how many it deleted.
    async fn delete_batch(&self) -> Result<ExpiredDeleted, DeleteExpiredError> {
        let batch_size = Some(self.config.batch_size);
        let any: &dyn Any = &self.store;
        let batch = match any.downcast_ref::<SeaOrmSessionStore>() {
            Some(ours) => {
                let batch = ours.delete_expired_audited(batch_size).await?;
                // The end of a round: the expired rows of the revoked sign-ins table go too.
                let full = u64::try_from(self.config.batch_size.get()).unwrap_or(u64::MAX);
                if batch.deleted < full {
                    ours.delete_expired_revocations(self.config.batch_size)
                        .await?;
                }
                batch
            }
            None => ExpiredDeleted {
                deleted: u64::try_from(self.store.delete_expired(batch_size).await?)
                    .unwrap_or(u64::MAX),
                at_lifetime: 0,
            },
        };
        tracing::trace!(batch.deleted, "Deleted a batch of expired sessions");
        Ok(batch)
    }

    /// `pause`, lengthened by a random fraction of itself up to the configured jitter (a jitter
    /// that is not a number in `0..=1`, or an overflow, leaves the pause as it is).
    fn jittered(&self, pause: Duration) -> Duration {
        let factor = 1.0 + self.config.jitter.clamp(0.0, 1.0) * fastrand::f64();
        Duration::try_from_secs_f64(pause.as_secs_f64() * factor).unwrap_or(pause)
    }
}
