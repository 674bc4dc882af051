//! Ending sessions in bulk: every session, or every session created before an instant (OWASP
//! ASVS 5.0, 7.4.5 and 7.4.2: after a breach, or when an account's access is withdrawn).
//!
//! The walk goes through the primary key in chunks of `batch_size` rows, whatever they hold, so
//! that every statement costs O(batch) on every backend: no statement scans past the rows of its
//! own chunk, however few of them it ends. Per chunk:
//!
//! 1. `SELECT id, subject, sign_in, deadline, created_at, <now> FROM t WHERE id > cursor ORDER
//!    BY id LIMIT batch`: the chunk, and which of its sessions are live and created before the
//!    instant (by the database's clock, read in the same statement);
//! 2. for those with a subject and a sign-in: `INSERT INTO t_revoked (subject, sign_in,
//!    deadline) SELECT subject, sign_in, deadline + grace FROM t WHERE id IN (...) AND live AND
//!    created_at < instant ...` that does nothing on a conflict, as `end_sessions_of` does, so
//!    that `pavex_session` cannot bring an ended sign-in back under a new id;
//! 3. `DELETE FROM t WHERE id IN (...) AND live AND created_at < instant`, the condition checked
//!    again: a session renamed, ended or expired since step 1 is left alone (PostgreSQL and
//!    SQLite: `RETURNING id, subject`, for the audit trail).
//!
//! `change_id` moves a session to a new random id and keeps its `created_at`: a session renamed
//! during the walk can land behind the cursor. So the walk is followed by sweeps, each a walk
//! from the start, until a sweep ends nothing, [`BULK_END_PASSES`] passes in all at most.

use crate::{
    SeaOrmSessionStore, SubjectError,
    audit::{self, Ended},
    queries::WALK_NOW,
};
use pavex_session_sea_orm_migration::now_millis;
use sea_orm::{
    DbBackend, DbErr, QueryResult,
    sea_query::{Alias, Query},
};
use std::{collections::HashSet, num::NonZeroUsize};

/// The largest batch [`SeaOrmSessionStore::end_all_sessions`] and
/// [`SeaOrmSessionStore::end_sessions_created_before`] run: a larger `batch_size` is brought down
/// to it, so that a batch's ids stay well within every backend's limit on bound values.
pub const MAX_BULK_BATCH_SIZE: usize = 10_000;

/// How many passes over the table a bulk end makes at most: the walk, then sweeps from the start
/// until one ends nothing (each sweep catches the sessions renamed behind the cursor during the
/// pass before it).
pub const BULK_END_PASSES: u32 = 5;

/// How far a bulk end ([`SeaOrmSessionStore::end_all_sessions`],
/// [`SeaOrmSessionStore::end_sessions_created_before`]) has got, as its `on_batch` callback sees
/// it after each batch.
///
/// ```
/// # fn show(progress: &pavex_session_sea_orm::BulkEndProgress) {
/// eprintln!(
///     "{} ended in {} batches, pass {} at {:.0}%",
///     progress.ended,
///     progress.batches,
///     progress.pass,
///     progress.walked * 100.0
/// );
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct BulkEndProgress {
    /// Sessions ended so far, by every pass.
    pub ended: u64,
    /// Batches run so far, by every pass.
    pub batches: u64,
    /// The pass: 1 for the walk, 2 and later for the sweeps that follow it (at most
    /// [`BULK_END_PASSES`]).
    pub pass: u32,
    /// How much of the table the current pass has walked, from 0.0 to 1.0: an estimate (stored
    /// ids are SHA-256 hashes, spread evenly, so the cursor's position among all possible ids is
    /// the fraction of the rows behind it), exactly 1.0 once the pass is over.
    pub walked: f64,
}

impl SeaOrmSessionStore {
    /// Ends every live session that exists when it starts (OWASP ASVS 7.4.5: after a breach,
    /// "sign out everyone"), in batches of `batch_size` (at most [`MAX_BULK_BATCH_SIZE`]);
    /// returns how many it ended. Sessions created after the call began stay.
    ///
    /// It reads the database's clock once, at the start, and ends what
    /// [`end_sessions_created_before`](Self::end_sessions_created_before) would end for that
    /// instant, that millisecond included (a session created in the same millisecond as the
    /// start, after it, is ended too). Each batch costs O(`batch_size`) on every backend, and
    /// `on_batch` is called after each one. With a sign-in key
    /// ([`with_sign_in_key`](Self::with_sign_in_key)) the ended sign-ins are revoked, so a request
    /// still in flight cannot bring one back under a new id; each ended session is recorded in
    /// the audit trail ([`AUDIT_TARGET`](crate::AUDIT_TARGET), reason `ended_in_bulk`).
    ///
    /// ```
    /// use pavex_session::{SessionId, store::{SessionRecordRef, SessionStorageBackend}};
    /// use pavex_session_sea_orm::SeaOrmSessionStore;
    /// use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let store = SeaOrmSessionStore::new(db).with_subject_key("user_id");
    /// store.migrate().await?;
    /// for user in 0..10 {
    ///     let state = HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!(user))]);
    ///     let record = SessionRecordRef { state: Cow::Borrowed(&state), ttl: Duration::from_secs(3600) };
    ///     store.create(&SessionId::random(), record).await?;
    /// }
    ///
    /// let batch_size = NonZeroUsize::new(4).expect("not zero");
    /// let ended = store
    ///     .end_all_sessions(batch_size, |progress| {
    ///         eprintln!("{} ended, {:.0}% walked", progress.ended, progress.walked * 100.0)
    ///     })
    ///     .await?;
    /// assert_eq!(ended, 10);
    /// assert_eq!(store.count_sessions_of("3").await?, 0);
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "End every session", level = tracing::Level::INFO, skip_all)]
    pub async fn end_all_sessions(
        &self,
        batch_size: NonZeroUsize,
        on_batch: impl FnMut(&BulkEndProgress),
    ) -> Result<u64, SubjectError> {
        self.statements().await?;
        let backend = self.db.get_database_backend();
        let now = Query::select()
            .expr_as(now_millis(backend)?, Alias::new(WALK_NOW))
            .to_owned();
        let row = self
            .query_one(&backend.build(&now))
            .await?
            .ok_or_else(|| SubjectError::UnreadableRow("the clock returned no row".to_owned()))?;
        let start: i64 = row.try_get("", WALK_NOW)?;
        // Every session created up to the start, its millisecond included.
        self.end_created_before(start.saturating_add(1), batch_size, on_batch)
            .await
    }

    /// Ends every live session created before `instant`, of any subject, anonymous ones
    /// included (OWASP ASVS 7.4.2: "sign out everyone who signed in before the incident"), in
    /// batches of `batch_size` (at most [`MAX_BULK_BATCH_SIZE`]); returns how many it ended.
    /// Sessions created at or after `instant` stay.
    ///
    /// The walk goes through the primary key, `batch_size` rows per batch whatever they hold,
    /// so each batch costs O(`batch_size`) on every backend, however large the table or however
    /// few sessions match: one `SELECT` of the chunk, an `INSERT` of the revoked sign-ins (only
    /// when the chunk has sessions with a subject and a sign-in to end) and one `DELETE` by id
    /// that checks again that each session is live and created before `instant`. `on_batch` is
    /// called after each batch, with the [`BulkEndProgress`] so far.
    ///
    /// `change_id` moves a session to a new random id (keeping its creation instant), possibly
    /// behind the cursor: after the walk, the table is swept again from the start, until a whole
    /// pass ends nothing, [`BULK_END_PASSES`] passes in all at most; a sweep that ends nothing
    /// costs one read of the table in batches. A session renamed behind the cursor during every
    /// one of those passes can stay (a warning is logged when the last pass still ended some):
    /// run it again.
    ///
    /// With a sign-in key ([`with_sign_in_key`](Self::with_sign_in_key)) the ended sign-ins are
    /// revoked, as by [`end_sessions_of`](Self::end_sessions_of); each ended session is recorded
    /// in the audit trail ([`AUDIT_TARGET`](crate::AUDIT_TARGET), reason `ended_in_bulk`, with
    /// its [`SessionHandle`](crate::SessionHandle), never its id).
    ///
    /// ```
    /// use pavex_session::{SessionId, store::{SessionRecordRef, SessionStorageBackend}};
    /// use pavex_session_sea_orm::SeaOrmSessionStore;
    /// use std::{borrow::Cow, collections::HashMap, num::NonZeroUsize, time::Duration};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let store = SeaOrmSessionStore::new(db);
    /// store.migrate().await?;
    /// let state = HashMap::new();
    /// let record = || SessionRecordRef { state: Cow::Borrowed(&state), ttl: Duration::from_secs(3600) };
    /// let old = SessionId::random();
    /// store.create(&old, record()).await?;
    ///
    /// // Created a day from now at the earliest: every session so far was created before.
    /// let incident = chrono::Utc::now() + chrono::Duration::days(1);
    /// let batch_size = NonZeroUsize::new(1_000).expect("not zero");
    /// assert_eq!(store.end_sessions_created_before(incident, batch_size, |_| {}).await?, 1);
    /// assert!(store.load(&old).await?.is_none());
    ///
    /// // Nothing was created before the epoch.
    /// let new = SessionId::random();
    /// store.create(&new, record()).await?;
    /// let epoch = chrono::DateTime::UNIX_EPOCH;
    /// assert_eq!(store.end_sessions_created_before(epoch, batch_size, |_| {}).await?, 0);
    /// assert!(store.load(&new).await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "End the sessions created before an instant", level = tracing::Level::INFO, skip_all)]
    pub async fn end_sessions_created_before(
        &self,
        instant: chrono::DateTime<chrono::Utc>,
        batch_size: NonZeroUsize,
        on_batch: impl FnMut(&BulkEndProgress),
    ) -> Result<u64, SubjectError> {
        self.end_created_before(instant.timestamp_millis(), batch_size, on_batch)
            .await
    }

    /// Ends every live session with `created_at < before` (Unix epoch milliseconds): the walk,
    /// then the sweeps.
    async fn end_created_before(
        &self,
        before: i64,
        batch_size: NonZeroUsize,
        mut on_batch: impl FnMut(&BulkEndProgress),
    ) -> Result<u64, SubjectError> {
        let queries = self.statements().await?.queries();
        let backend = self.db.get_database_backend();
        let limit = Ord::min(batch_size.get(), MAX_BULK_BATCH_SIZE);
        let mut progress = BulkEndProgress {
            ended: 0,
            batches: 0,
            pass: 0,
            walked: 0.0,
        };
        let mut ended_by_last_pass = 0;
        for pass in 1..=BULK_END_PASSES {
            progress.pass = pass;
            progress.walked = 0.0;
            let mut ended_by_pass = 0u64;
            let mut cursor: Option<Vec<u8>> = None;
            loop {
                let select = queries.walk_chunk(cursor.as_deref(), limit);
                let rows = self.query(&backend.build(&select)).await?;
                let chunk = rows
                    .iter()
                    .map(ChunkRow::read)
                    .collect::<Result<Vec<_>, _>>()?;
                let ended = self.end_chunk(before, &chunk).await?;
                ended_by_pass = ended_by_pass.saturating_add(ended);
                let over = chunk.len() < limit;
                if let Some(last) = chunk.into_iter().last() {
                    cursor = Some(last.id);
                }
                progress.ended = progress.ended.saturating_add(ended);
                progress.batches = progress.batches.saturating_add(1);
                progress.walked = match (&cursor, over) {
                    (Some(cursor), false) => fraction_behind(cursor),
                    _ => 1.0,
                };
                on_batch(&progress);
                if over {
                    break;
                }
            }
            ended_by_last_pass = ended_by_pass;
            // The walk is always followed by a sweep; a sweep that ends nothing is the last.
            if pass > 1 && ended_by_pass == 0 {
                break;
            }
        }
        if ended_by_last_pass > 0 {
            tracing::warn!(
                passes = BULK_END_PASSES,
                ended_by_last_pass,
                "Sessions were still being renamed behind the walk on its last pass: some \
                 sessions created before the instant may remain; run the bulk end again"
            );
        }
        Ok(progress.ended)
    }

    /// Ends the sessions of `chunk` that are live and created before `before`:
    /// revokes their sign-ins, deletes them (the condition checked again) and records each
    /// one deleted in the audit trail. Returns how many it deleted.
    async fn end_chunk(&self, before: i64, chunk: &[ChunkRow]) -> Result<u64, SubjectError> {
        let ending: Vec<&ChunkRow> = chunk
            .iter()
            .filter(|row| row.deadline > row.now && row.created_at < before)
            .collect();
        if ending.is_empty() {
            return Ok(0);
        }
        let queries = self.statements().await?.queries();
        let backend = self.db.get_database_backend();
        let with_sign_in: Vec<Vec<u8>> = ending
            .iter()
            .filter(|row| row.subject.is_some() && row.sign_in.is_some())
            .map(|row| row.id.clone())
            .collect();
        if !with_sign_in.is_empty() {
            self.execute(&backend.build(&queries.revoke_ending(with_sign_in, before)?))
                .await?;
        }
        let ids: Vec<Vec<u8>> = ending.iter().map(|row| row.id.clone()).collect();
        if backend != DbBackend::MySql {
            // PostgreSQL and SQLite say which rows they deleted.
            let deleted = self
                .query(&backend.build(&queries.delete_ending(ids, before, true)))
                .await?;
            for row in &deleted {
                let id: Vec<u8> = row.try_get("", "id")?;
                let subject: Option<Vec<u8>> = row.try_get("", "subject")?;
                audit::session_ended(Ended::InBulk, subject.as_deref(), &id);
            }
            return Ok(u64::try_from(deleted.len()).unwrap_or(u64::MAX));
        }
        // MySQL/MariaDB: no `RETURNING` (sea-query does not write it for MySQL). The usual case,
        // every one deleted, needs nothing more; otherwise the ids still there were not deleted.
        let total = ids.len();
        let deleted = self
            .execute(&backend.build(&queries.delete_ending(ids.clone(), before, false)))
            .await?
            .rows_affected();
        let still_there: HashSet<Vec<u8>> =
            if usize::try_from(deleted).is_ok_and(|deleted| deleted == total) {
                HashSet::new()
            } else {
                let rows = self.query(&backend.build(&queries.present(ids))).await?;
                rows.iter()
                    .map(|row| row.try_get::<Vec<u8>>("", "id"))
                    .collect::<Result<_, DbErr>>()?
            };
        for row in ending {
            if !still_there.contains(&row.id) {
                audit::session_ended(Ended::InBulk, row.subject.as_deref(), &row.id);
            }
        }
        Ok(deleted)
    }
}

/// One row of a chunk of the walk.
struct ChunkRow {
    id: Vec<u8>,
    subject: Option<Vec<u8>>,
    sign_in: Option<Vec<u8>>,
    deadline: i64,
    created_at: i64,
    /// The database's clock when the chunk was read.
    now: i64,
}

impl ChunkRow {
    fn read(row: &QueryResult) -> Result<Self, SubjectError> {
        let unreadable = |e: DbErr| SubjectError::UnreadableRow(e.to_string());
        Ok(Self {
            id: row.try_get("", "id").map_err(unreadable)?,
            subject: row.try_get("", "subject").map_err(unreadable)?,
            sign_in: row.try_get("", "sign_in").map_err(unreadable)?,
            deadline: row.try_get("", "deadline").map_err(unreadable)?,
            created_at: row.try_get("", "created_at").map_err(unreadable)?,
            now: row.try_get("", WALK_NOW).map_err(unreadable)?,
        })
    }
}

/// The fraction of all possible stored ids that sort at or before `id`, from its first 8 bytes:
/// SHA-256 hashes are spread evenly, so it estimates the fraction of the rows walked.
fn fraction_behind(id: &[u8]) -> f64 {
    let mut first = [0u8; 8];
    for (byte, from) in first.iter_mut().zip(id) {
        *byte = *from;
    }
    // 2^64: the number of values of the first 8 bytes.
    const SPAN: f64 = 18_446_744_073_709_551_616.0;
    (u64::from_be_bytes(first) as f64 / SPAN).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::fraction_behind;

    #[test]
    fn the_fraction_behind_an_id_is_its_position_among_all_ids() {
        assert_eq!(fraction_behind(&[0; 16]), 0.0);
        assert!(fraction_behind(&[0x80; 16]) > 0.5 && fraction_behind(&[0x80; 16]) < 0.51);
        assert!((fraction_behind(&[0x80, 0, 0, 0, 0, 0, 0, 0, 7]) - 0.5).abs() < f64::EPSILON);
        assert!(fraction_behind(&[0xff; 16]) <= 1.0);
        assert!(fraction_behind(&[0xff; 16]) > 0.999);
        assert_eq!(fraction_behind(&[]), 0.0);
        assert!((fraction_behind(&[0x40]) - 0.25).abs() < f64::EPSILON);
    }
}
