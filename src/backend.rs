//! `SessionStorageBackend` for [`SeaOrmSessionStore`]: runs the statements of
//! [`Statements`](crate::prepared::Statements) and turns their outcomes into `pavex_session` results.

use crate::{
    SeaOrmSessionStore, SignedOut,
    queries::{Key, STATE, TTL_MS},
    unusable,
};
use anyhow::Context as _;
use pavex_session::{
    SessionId,
    store::{
        SessionRecord, SessionRecordRef, SessionStorageBackend,
        errors::{
            ChangeIdError, CreateError, DeleteError, DeleteExpiredError, DuplicateIdError,
            LoadError, UnknownIdError, UpdateError, UpdateTtlError,
        },
    },
};
use pavex_session_sea_orm_entity::sessions::Column;
use pavex_session_sea_orm_migration::stored_id;
use sea_orm::{ExecResult, Iden, Value};
use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};

/// The longest TTL stored, in milliseconds (1 000 years of 365.2425 days): longer ones, up to
/// `Duration::MAX`, are clamped to it, so that every deadline is a date that `chrono` (and the
/// entity's `ChronoUnixTimestampMillis`) can represent and `now + ttl` never overflows.
pub const MAX_TTL_MILLIS: i64 = 1_000 * 31_556_952_000;

/// Renames tried when the old id turns live between a rename that found nothing and the check.
const RENAME_ATTEMPTS: usize = 3;

#[async_trait::async_trait]
impl SessionStorageBackend for SeaOrmSessionStore {
    /// Stores a new record. A live record with the same id is left untouched
    /// ([`CreateError::DuplicateId`]); an expired one is overwritten.
    ///
    /// One `INSERT` on the common path. When the id is taken, an `UPDATE` overwrites the record
    /// only if it has expired, and if that finds nothing (the record vanished meanwhile) the
    /// `INSERT` is tried once more.
    #[tracing::instrument(name = "Create server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn create(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), CreateError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| CreateError::Other(unusable(e)))?;
        let values = self.record_values(id, &record)?;
        let insert = statements.insert.bind(values.clone());
        match self.execute(&insert).await {
            Ok(done) => return inserted(done).map_err(CreateError::Other),
            Err(e) if statements.is_id_taken(&e) => {}
            Err(e) => return Err(CreateError::Other(statements.other(e))),
        }
        let overwrite = statements.overwrite_expired.bind(values);
        let overwritten = self
            .execute(&overwrite)
            .await
            .map_err(|e| CreateError::Other(e.into()))?;
        if at_most_one_row(overwritten).map_err(CreateError::Other)? {
            return Ok(());
        }
        match self.execute(&insert).await {
            Ok(done) => inserted(done).map_err(CreateError::Other),
            Err(e) if statements.is_id_taken(&e) => Err(DuplicateIdError { id: *id }.into()),
            Err(e) => Err(CreateError::Other(statements.other(e))),
        }
    }

    /// Replaces the state of a live record and restarts its TTL, in one `UPDATE`.
    #[tracing::instrument(name = "Update server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), UpdateError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| UpdateError::Other(unusable(e)))?;
        // A store that does not know the subject key leaves the subject as it is (its statement
        // has no place for it), and likewise the sign-in.
        let [key, state, subject, sign_in, ttl_ms] = self.record_values(id, &record)?;
        let update = statements.update.bind([
            key,
            state,
            subject,
            sign_in,
            ttl_ms,
            self.lifetime_ms().into(),
        ]);
        let done = self
            .execute(&update)
            .await
            .map_err(|e| UpdateError::Other(statements.other(e)))?;
        match at_most_one_row(done).map_err(UpdateError::Other)? {
            true => Ok(()),
            false => Err(UnknownIdError { id: *id }.into()),
        }
    }

    /// Restarts the TTL of a live record, state untouched, in one `UPDATE`.
    #[tracing::instrument(name = "Update TTL for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update_ttl(&self, id: &SessionId, ttl: Duration) -> Result<(), UpdateTtlError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| UpdateTtlError::Other(unusable(e)))?;
        let update = statements.update_ttl.bind([
            key(id).into(),
            ttl_millis(ttl).into(),
            self.lifetime_ms().into(),
        ]);
        let done = self
            .execute(&update)
            .await
            .map_err(|e| UpdateTtlError::Other(e.into()))?;
        match at_most_one_row(done).map_err(UpdateTtlError::Other)? {
            true => Ok(()),
            false => Err(UnknownIdError { id: *id }.into()),
        }
    }

    /// Reads a live record and its remaining TTL (by the database clock), in one `SELECT`.
    #[tracing::instrument(name = "Load server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn load(&self, session_id: &SessionId) -> Result<Option<SessionRecord>, LoadError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| LoadError::Other(unusable(e)))?;
        let row = self
            .query_one(&statements.load.bind([key(session_id).into()]))
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state: Vec<u8> = row
            .try_get("", STATE)
            .context("The stored session state could not be read as bytes")
            .map_err(LoadError::DeserializationError)?;
        let state: HashMap<Cow<'static, str>, serde_json::Value> = serde_json::from_slice(&state)
            .context("The stored session state is not a JSON object")
            .map_err(LoadError::DeserializationError)?;
        let ttl_ms: i64 = row
            .try_get("", TTL_MS)
            .context("The remaining TTL of the session could not be read")
            .map_err(LoadError::DeserializationError)?;
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).unwrap_or(0));
        Ok(Some(SessionRecord { state, ttl }))
    }

    /// Deletes a live record, in one `DELETE`.
    #[tracing::instrument(name = "Delete server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn delete(&self, id: &SessionId) -> Result<(), DeleteError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| DeleteError::Other(unusable(e)))?;
        let done = self
            .execute(&statements.delete.bind([key(id).into()]))
            .await
            .map_err(|e| DeleteError::Other(e.into()))?;
        match at_most_one_row(done).map_err(DeleteError::Other)? {
            true => Ok(()),
            false => Err(UnknownIdError { id: *id }.into()),
        }
    }

    /// Moves a live record to a new id, state and deadline unchanged, in one `UPDATE`.
    ///
    /// When `new_id` is taken by an expired record, that record is deleted and the rename tried
    /// once more. When nothing was renamed, one `SELECT` reads which of the two ids are live, in
    /// one snapshot: a live `new_id` is [`ChangeIdError::DuplicateId`] (as the reference
    /// in-memory store answers), a live `old_id` (renamed or created meanwhile) means the rename
    /// is tried again, and neither is [`ChangeIdError::UnknownId`].
    #[tracing::instrument(name = "Change id for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn change_id(&self, old_id: &SessionId, new_id: &SessionId) -> Result<(), ChangeIdError> {
        let statements = self
            .statements()
            .await
            .map_err(|e| ChangeIdError::Other(unusable(e)))?;
        let (old, new) = (key(old_id), key(new_id));
        let rename = statements
            .change_id
            .bind([old.clone().into(), new.clone().into()]);
        for _ in 0..RENAME_ATTEMPTS {
            let done = match self.execute(&rename).await {
                Err(e) if statements.is_id_taken(&e) => {
                    let expired = statements.delete_if_expired.bind([new.clone().into()]);
                    self.execute(&expired)
                        .await
                        .map_err(|e| ChangeIdError::Other(e.into()))?;
                    match self.execute(&rename).await {
                        Err(e) if statements.is_id_taken(&e) => {
                            return Err(DuplicateIdError { id: *new_id }.into());
                        }
                        retried => retried,
                    }
                }
                first => first,
            }
            .map_err(|e| ChangeIdError::Other(statements.other(e)))?;
            if at_most_one_row(done).map_err(ChangeIdError::Other)? {
                // Renaming a live record onto itself: its id is taken (by itself).
                return match old == new {
                    true => Err(DuplicateIdError { id: *new_id }.into()),
                    false => Ok(()),
                };
            }
            let live = self
                .query(
                    &statements
                        .live_among
                        .bind([old.clone().into(), new.clone().into()]),
                )
                .await
                .map_err(|e| ChangeIdError::Other(e.into()))?
                .iter()
                .map(|row| row.try_get::<Key>("", &Column::Id.to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ChangeIdError::Other(e.into()))?;
            if live.contains(&new) {
                return Err(DuplicateIdError { id: *new_id }.into());
            }
            if !live.contains(&old) {
                return Err(UnknownIdError { id: *old_id }.into());
            }
        }
        Err(ChangeIdError::Other(anyhow::anyhow!(
            "The session kept changing under concurrent requests while its id was being changed"
        )))
    }

    /// Deletes expired records (all, or at most `batch_size`, oldest first), in one `DELETE`.
    #[tracing::instrument(name = "Delete expired records", level = tracing::Level::INFO, skip_all)]
    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let statements = self.statements().await.map_err(unusable)?;
        let done = self
            .execute(&statements.delete_expired(batch_size))
            .await
            .map_err(anyhow::Error::from)?;
        Ok(usize::try_from(done.rows_affected()).unwrap_or(usize::MAX))
    }
}

impl SeaOrmSessionStore {
    /// The values of `create` and `update`, in the order their statements bind them (see
    /// `queries::Record`).
    fn record_values(
        &self,
        id: &SessionId,
        record: &SessionRecordRef<'_>,
    ) -> Result<[Value; 5], serde_json::Error> {
        let state = state_json(record)?.into_bytes();
        let subject = self
            .value_of(self.subject_key.as_deref(), &record.state)?
            .map(String::into_bytes);
        let sign_in = self
            .value_of(self.sign_in_key.as_deref(), &record.state)?
            .map(String::into_bytes);
        // A new session's deadline is capped here (its `created_at` is now); an existing one's
        // by the statement, against its `created_at`.
        let ttl_ms = ttl_millis(record.ttl).min(self.lifetime_ms());
        Ok([
            key(id).into(),
            state.into(),
            subject.into(),
            sign_in.into(),
            ttl_ms.into(),
        ])
    }
}

impl SeaOrmSessionStore {
    /// The absolute lifetime in milliseconds ([`MAX_TTL_MILLIS`] without one).
    fn lifetime_ms(&self) -> i64 {
        self.absolute_lifetime.map_or(MAX_TTL_MILLIS, ttl_millis)
    }
}

/// The key under which `id` is stored: its hash, never the id itself.
pub(crate) fn key(id: &SessionId) -> Key {
    stored_id(&id.inner()).to_vec()
}

/// A TTL in whole milliseconds, clamped to [`MAX_TTL_MILLIS`].
fn ttl_millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).map_or(MAX_TTL_MILLIS, |ms| ms.min(MAX_TTL_MILLIS))
}

/// The state as the text of the JSON object to store, serialized straight from the map.
///
/// A NUL character (in a key or a string) is refused on every backend, because PostgreSQL's
/// `jsonb` cannot store it: the same state must not work on SQLite in development and fail on
/// PostgreSQL in production.
fn state_json(record: &SessionRecordRef<'_>) -> Result<String, serde_json::Error> {
    let has_nul = record
        .state
        .iter()
        .any(|(key, value)| key.contains('\0') || contains_nul(value));
    match has_nul {
        true => Err(serde::ser::Error::custom(
            "the session state contains a NUL character (\\u0000), which PostgreSQL cannot \
             store; it is refused on every backend",
        )),
        false => serde_json::to_string(&*record.state),
    }
}

fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        _ => false,
    }
}

/// Whether a statement keyed on the primary key touched its record; more than one is an error.
fn at_most_one_row(done: ExecResult) -> Result<bool, anyhow::Error> {
    match done.rows_affected() {
        0 => Ok(false),
        1 => Ok(true),
        n => Err(anyhow::anyhow!(
            "A statement on one session id affected {n} records instead of at most one"
        )),
    }
}

/// The outcome of an `INSERT` of one record: none inserted means its sign-in was revoked.
fn inserted(done: ExecResult) -> Result<(), anyhow::Error> {
    match done.rows_affected() {
        1 => Ok(()),
        0 => Err(SignedOut.into()),
        n => Err(anyhow::anyhow!(
            "Inserting one session record affected {n} records instead of one"
        )),
    }
}
