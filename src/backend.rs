//! `SessionStorageBackend` for [`SeaOrmSessionStore`]: runs the statements of
//! [`Statements`](crate::prepared::Statements) and turns their outcomes into `pavex_session` results.

use crate::{
    SeaOrmSessionStore, SignedOut,
    cap::{Capped, CappedWrite},
    prepared::Statements,
    queries::{Key, STATE, remaining_ms},
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

/// Renames tried under state encryption, where every concurrent `update` of the session makes
/// the rename read its state again (after a short random pause, growing with each attempt).
const SEALED_RENAME_ATTEMPTS: u64 = 16;

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
        let (values, subject) = self.record_values(id, &record, statements)?;
        if let (Some(cap), Some(subject)) = (self.cap, &subject) {
            let write = CappedWrite::Create(values);
            // Boxed, like every call of the cap's transaction: its future is large, and inline
            // it would be copied on every create, capped or not (BENCHMARKS.md, "Copying futures").
            let capped = Box::pin(self.write_capped(statements, cap, write, subject, &key(id)))
                .await
                .map_err(|e| CreateError::Other(statements.other(e)))?;
            return match capped {
                Capped::Written => Ok(()),
                Capped::DuplicateId => Err(DuplicateIdError { id: *id }.into()),
                Capped::SignedOut => Err(CreateError::Other(SignedOut.into())),
                Capped::Refused(refused) => Err(CreateError::Other(refused.into())),
                Capped::UnknownId => Err(CreateError::Other(anyhow::anyhow!(
                    "Creating a session found no session to write"
                ))),
            };
        }
        if let (Some(_), Some(subject)) = (&statements.enter, &subject) {
            self.enter(statements, subject, &key(id))
                .await
                .map_err(|e| CreateError::Other(e.into()))?;
        }
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
        let ([stored_id, state, subject, sign_in, ttl_ms], subject_bytes) =
            self.record_values(id, &record, statements)?;
        let values = [
            stored_id,
            state,
            subject,
            sign_in,
            ttl_ms,
            self.lifetime_ms().into(),
        ];
        let Some(subject) = subject_bytes else {
            return self
                .update_one(statements, &statements.update.bind(values), id)
                .await;
        };
        // Under a cap, or on MySQL with its subject entries: a session that already has this
        // subject counts for it and has its entry already, one statement; one that gets it now
        // (a sign-in) goes through the cap's transaction, or has its entry written first.
        let done = self
            .execute(&statements.update_keeping_subject.bind(values.clone()))
            .await
            .map_err(|e| UpdateError::Other(statements.other(e)))?;
        if at_most_one_row(done).map_err(UpdateError::Other)? {
            return Ok(());
        }
        let Some(cap) = self.cap else {
            self.enter(statements, &subject, &key(id))
                .await
                .map_err(|e| UpdateError::Other(e.into()))?;
            return self
                .update_one(statements, &statements.update.bind(values), id)
                .await;
        };
        let capped = Box::pin(self.write_capped(
            statements,
            cap,
            CappedWrite::Update(values),
            &subject,
            &key(id),
        ))
        .await
        .map_err(|e| UpdateError::Other(statements.other(e)))?;
        match capped {
            Capped::Written => Ok(()),
            Capped::UnknownId => Err(UnknownIdError { id: *id }.into()),
            Capped::Refused(refused) => Err(UpdateError::Other(refused.into())),
            Capped::DuplicateId | Capped::SignedOut => Err(UpdateError::Other(anyhow::anyhow!(
                "Updating a session was refused as a new one"
            ))),
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
        let Some(ttl_ms) =
            remaining_ms(statements.backend(), &row).map_err(LoadError::DeserializationError)?
        else {
            return Ok(None);
        };
        let state: Vec<u8> = row
            .try_get("", STATE)
            .context("The stored session state could not be read as bytes")
            .map_err(LoadError::DeserializationError)?;
        let state = self
            .opened(|| key(session_id), state)
            .map_err(LoadError::DeserializationError)?;
        let state = parse_state(&state)
            .context("The stored session state is not a JSON object")
            .map_err(LoadError::DeserializationError)?;
        let ttl = Duration::from_millis(ttl_ms);
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
        if self.seals_states() {
            return Box::pin(self.change_id_sealed(statements, old_id, new_id)).await;
        }
        let (old, new) = (key(old_id), key(new_id));
        // The subject the rename expects (MySQL: see `Queries::change_id`): first none, an
        // anonymous session's one statement; the one read when that found a live session.
        let mut subject: Option<Vec<u8>> = None;
        for _ in 0..RENAME_ATTEMPTS {
            let rename = statements.change_id.bind([
                old.clone().into(),
                new.clone().into(),
                subject.clone().into(),
            ]);
            let done = self.rename(statements, &rename, new_id).await?;
            if at_most_one_row(done).map_err(ChangeIdError::Other)? {
                // Renaming a live record onto itself: its id is taken (by itself).
                return match old == new {
                    true => Err(DuplicateIdError { id: *new_id }.into()),
                    false => Ok(()),
                };
            }
            let live = self.live_among(statements, &old, &new).await?;
            if live.iter().any(|(id, _)| *id == new) {
                return Err(DuplicateIdError { id: *new_id }.into());
            }
            let Some((_, current)) = live.into_iter().find(|(id, _)| *id == old) else {
                return Err(UnknownIdError { id: *old_id }.into());
            };
            if let Some(current) = &current {
                self.enter(statements, current, &new)
                    .await
                    .map_err(|e| ChangeIdError::Other(e.into()))?;
            }
            subject = current;
        }
        Err(ChangeIdError::Other(anyhow::anyhow!(
            "The session kept changing under concurrent requests while its id was being changed"
        )))
    }

    /// Deletes expired records (all, or at most `batch_size`, oldest first), in one `DELETE`;
    /// under an absolute lifetime it also tells the audit trail which had reached it.
    #[tracing::instrument(name = "Delete expired records", level = tracing::Level::INFO, skip_all)]
    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let deleted = self.delete_expired_audited(batch_size).await?.deleted;
        Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
    }
}

impl SeaOrmSessionStore {
    /// `change_id` when states are sealed with the stored id: the state is read, opened, sealed
    /// for the new id and written with the rename, in one `UPDATE` that only applies if the
    /// stored state is still the one read (a concurrent `update` makes it read again).
    async fn change_id_sealed(
        &self,
        statements: &Statements,
        old_id: &SessionId,
        new_id: &SessionId,
    ) -> Result<(), ChangeIdError> {
        let (old, new) = (key(old_id), key(new_id));
        // The subject the rename expects, as in `change_id`.
        let mut subject: Option<Vec<u8>> = None;
        for attempt in 1..=SEALED_RENAME_ATTEMPTS {
            let read = self
                .query_one(&statements.load.bind([old.clone().into()]))
                .await
                .map_err(|e| ChangeIdError::Other(e.into()))?;
            let read = match read {
                Some(row) => remaining_ms(statements.backend(), &row)
                    .map_err(ChangeIdError::Other)?
                    .map(|_| row),
                None => None,
            };
            let stored = match read {
                Some(row) if old != new => row
                    .try_get::<Vec<u8>>("", STATE)
                    .map_err(|e| ChangeIdError::Other(e.into()))?,
                // Onto itself (a live id is taken by itself), or nothing to rename.
                Some(_) => return Err(DuplicateIdError { id: *new_id }.into()),
                None => return self.rename_failed(statements, &old, old_id, new_id).await,
            };
            let json = self
                .opened(|| old.clone(), stored.clone())
                .map_err(ChangeIdError::Other)?;
            let resealed = match self.sealed(&new, json) {
                Ok(sealed) => sealed,
                Err(RecordError::Seal(e)) => return Err(ChangeIdError::Other(e)),
                Err(RecordError::Serialize(e)) => return Err(ChangeIdError::Other(e.into())),
            };
            let rename = statements.change_id_sealed.bind([
                old.clone().into(),
                new.clone().into(),
                subject.clone().into(),
                resealed.into(),
                stored.into(),
            ]);
            let done = self.rename(statements, &rename, new_id).await?;
            if at_most_one_row(done).map_err(ChangeIdError::Other)? {
                return Ok(());
            }
            // MySQL: the session may have another subject than the one expected.
            if statements.enter.is_some() {
                let live = self.live_among(statements, &old, &new).await?;
                let current = live.into_iter().find(|(id, _)| *id == old);
                if let Some((_, current)) = current.filter(|(_, current)| *current != subject) {
                    if let Some(current) = &current {
                        self.enter(statements, current, &new)
                            .await
                            .map_err(|e| ChangeIdError::Other(e.into()))?;
                    }
                    subject = current;
                    continue;
                }
            }
            // The state was written, or the session ended, since it was read: read again, once
            // the writes that raced it have had a moment to finish.
            let pause = fastrand::u64(0..=2).saturating_mul(attempt);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        Err(ChangeIdError::Other(anyhow::anyhow!(
            "The session kept changing under concurrent requests while its id was being changed"
        )))
    }

    /// Runs the rename `rename` onto `new_id`; when `new_id` is taken by an expired record, that
    /// record is deleted and the rename run once more. `new_id` still taken: `DuplicateId`.
    async fn rename(
        &self,
        statements: &Statements,
        rename: &sea_orm::Statement,
        new_id: &SessionId,
    ) -> Result<ExecResult, ChangeIdError> {
        match self.execute(rename).await {
            Err(e) if statements.is_id_taken(&e) => {
                let expired = statements.delete_if_expired.bind([key(new_id).into()]);
                self.execute(&expired)
                    .await
                    .map_err(|e| ChangeIdError::Other(e.into()))?;
                match self.execute(rename).await {
                    Err(e) if statements.is_id_taken(&e) => {
                        Err(DuplicateIdError { id: *new_id }.into())
                    }
                    retried => retried.map_err(|e| ChangeIdError::Other(statements.other(e))),
                }
            }
            first => first.map_err(|e| ChangeIdError::Other(statements.other(e))),
        }
    }

    /// Which of `old` and `new` are live, with their subjects, read in one snapshot.
    async fn live_among(
        &self,
        statements: &Statements,
        old: &Key,
        new: &Key,
    ) -> Result<Vec<(Key, Option<Vec<u8>>)>, ChangeIdError> {
        let among = statements
            .live_among
            .bind([old.clone().into(), new.clone().into()]);
        let (id, subject) = (Column::Id.to_string(), Column::Subject.to_string());
        self.query(&among)
            .await
            .map_err(|e| ChangeIdError::Other(e.into()))?
            .iter()
            .map(|row| Ok((row.try_get("", &id)?, row.try_get("", &subject)?)))
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
            .map_err(|e| ChangeIdError::Other(e.into()))
    }

    /// MySQL: writes the entry of `subject`'s session `id` (see `Queries::enter`), before the
    /// write that gives the session that subject; nothing elsewhere.
    async fn enter(
        &self,
        statements: &Statements,
        subject: &[u8],
        id: &Key,
    ) -> Result<(), sea_orm::DbErr> {
        if let Some(enter) = &statements.enter {
            self.execute(&enter.bind([subject.to_vec().into(), id.clone().into()]))
                .await?;
        }
        Ok(())
    }

    /// Runs `update` of the session `id`, one statement keyed on its id.
    async fn update_one(
        &self,
        statements: &Statements,
        update: &sea_orm::Statement,
        id: &SessionId,
    ) -> Result<(), UpdateError> {
        let done = self
            .execute(update)
            .await
            .map_err(|e| UpdateError::Other(statements.other(e)))?;
        match at_most_one_row(done).map_err(UpdateError::Other)? {
            true => Ok(()),
            false => Err(UnknownIdError { id: *id }.into()),
        }
    }

    /// Why `old` could not be renamed to `new`: `new` is live, or `old` is not.
    async fn rename_failed(
        &self,
        statements: &Statements,
        old: &Key,
        old_id: &SessionId,
        new_id: &SessionId,
    ) -> Result<(), ChangeIdError> {
        let new = key(new_id);
        let live = self.live_among(statements, old, &new).await?;
        match live.iter().any(|(id, _)| *id == new) {
            true => Err(DuplicateIdError { id: *new_id }.into()),
            false => Err(UnknownIdError { id: *old_id }.into()),
        }
    }

    /// The values of `create` and `update`, in the order their statements bind them (see
    /// `queries::Record`), and the subject where a write needs it apart: for a cap (which locks
    /// on it) or MySQL's subject entries.
    fn record_values(
        &self,
        id: &SessionId,
        record: &SessionRecordRef<'_>,
        statements: &Statements,
    ) -> Result<([Value; 5], Option<Vec<u8>>), RecordError> {
        let stored_id = key(id);
        let state = self.sealed(&stored_id, state_json(record)?.into_bytes())?;
        let subject = self
            .value_of(self.subject_key.as_deref(), &record.state)?
            .map(String::into_bytes);
        let sign_in = self
            .value_of(self.sign_in_key.as_deref(), &record.state)?
            .map(String::into_bytes);
        // A new session's deadline is capped here (its `created_at` is now); an existing one's
        // by the statement, against its `created_at`.
        let ttl_ms = ttl_millis(record.ttl).min(self.lifetime_ms());
        let apart = self.cap.is_some() || statements.enter.is_some();
        let subject_bytes = subject.as_ref().filter(|_| apart).cloned();
        let values = [
            stored_id.into(),
            state.into(),
            subject.into(),
            sign_in.into(),
            ttl_ms.into(),
        ];
        Ok((values, subject_bytes))
    }
}

impl SeaOrmSessionStore {
    /// The absolute lifetime in milliseconds ([`MAX_TTL_MILLIS`] without one).
    pub(crate) fn lifetime_ms(&self) -> i64 {
        self.absolute_lifetime.map_or(MAX_TTL_MILLIS, ttl_millis)
    }
}

/// Why the values of a `create` or `update` could not be made.
pub(crate) enum RecordError {
    /// The state is not JSON the backends can store.
    Serialize(serde_json::Error),
    /// The state could not be sealed (encryption).
    #[cfg_attr(
        not(feature = "encryption"),
        expect(dead_code, reason = "only sealing fails this way")
    )]
    Seal(anyhow::Error),
}

impl From<serde_json::Error> for RecordError {
    fn from(e: serde_json::Error) -> Self {
        Self::Serialize(e)
    }
}

impl From<RecordError> for CreateError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Serialize(e) => Self::SerializationError(e),
            RecordError::Seal(e) => Self::Other(e),
        }
    }
}

impl From<RecordError> for UpdateError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Serialize(e) => Self::SerializationError(e),
            RecordError::Seal(e) => Self::Other(e),
        }
    }
}

impl SeaOrmSessionStore {
    /// The bytes to store for the JSON state `json` of the session stored under `stored_id`:
    /// sealed under [`StateEncryption`](crate::StateEncryption), else the JSON itself.
    pub(crate) fn sealed(&self, stored_id: &[u8], json: Vec<u8>) -> Result<Vec<u8>, RecordError> {
        #[cfg(feature = "encryption")]
        if let Some(encryption) = &self.encryption {
            return encryption
                .seal(stored_id, &json)
                .map_err(|e| RecordError::Seal(e.into()));
        }
        let _ = stored_id;
        Ok(json)
    }

    /// The JSON state stored as `stored` for the session stored under `stored_id()`: the id is
    /// asked for only when states are sealed, so that `load` hashes the session id once.
    pub(crate) fn opened(
        &self,
        stored_id: impl FnOnce() -> Key,
        stored: Vec<u8>,
    ) -> Result<Vec<u8>, anyhow::Error> {
        #[cfg(feature = "encryption")]
        if let Some(encryption) = &self.encryption {
            return Ok(encryption.open(&stored_id(), stored)?);
        }
        let _ = stored_id;
        Ok(stored)
    }

    /// Whether the stored state is sealed with the session's stored id, so that a rename must
    /// seal it again.
    pub(crate) fn seals_states(&self) -> bool {
        #[cfg(feature = "encryption")]
        return self.encryption.is_some();
        #[cfg(not(feature = "encryption"))]
        false
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

/// The keys a parsed state has room for before its map grows.
const STATE_KEYS: usize = 8;

/// Parses a stored state, the bytes of a JSON object, into the map `pavex_session` wants, as
/// `serde_json::from_slice` would (a later duplicate key wins; trailing bytes are an error),
/// but into a map with room for [`STATE_KEYS`] keys: a JSON object does not say how many it
/// holds, and a map grown from nothing reallocates and rehashes on the way, about 600
/// instructions per `load` of a 4-key state (callgrind, BENCHMARKS.md). No size hint from the
/// input is trusted for the allocation.
fn parse_state(bytes: &[u8]) -> serde_json::Result<HashMap<Cow<'static, str>, serde_json::Value>> {
    struct StateMap;
    impl<'de> serde::de::Visitor<'de> for StateMap {
        type Value = HashMap<Cow<'static, str>, serde_json::Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut state = HashMap::with_capacity(STATE_KEYS);
            while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                state.insert(Cow::Owned(key), value);
            }
            Ok(state)
        }
    }
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let state = serde::Deserializer::deserialize_map(&mut json, StateMap)?;
    json.end()?;
    Ok(state)
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
