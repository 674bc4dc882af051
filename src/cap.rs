//! A cap on the live sessions of one subject (OWASP ASVS 5.0, 7.1.2).
//!
//! A write that can give a subject a new session (a `create` with a subject, an `update` that
//! sets or changes it) runs in one transaction that first locks the subject's guard row
//! ([`Queries::guard`](crate::queries::Queries::guard)), then writes the session, then enforces
//! the cap. Two such writes for one subject therefore run one after the other, on one server
//! (the second waits for the row lock) and on a Galera cluster (the two write the same row, one
//! loses certification and is run again), so racing sign-ins never leave more than the cap.
//! Every statement the transaction may run is built before it begins, and on MySQL prepared
//! before its first one ([`crate::transaction`] says why).
//! An `update` of a session that already has its subject is one statement, as without a cap.

use crate::{
    SeaOrmSessionStore,
    audit::{self, Ended},
    execute::{Finish, retrying_lock_conflicts_up_to},
    prepared::Statements,
    queries::{COUNT, Key, Which},
    transaction::{IDS_PER_STATEMENT, Transaction, padded},
};
use pavex_session_sea_orm_entity::sessions::Column;
use sea_orm::{DbErr, Iden, SqliteTransactionMode, Statement, TransactionOptions, Value};
use std::num::NonZeroU32;

/// Times a capped write's transaction runs at most while it keeps losing lock conflicts (on a
/// cluster, sign-ins racing on several nodes).
const ATTEMPTS: u32 = 8;

/// What a write does when it would give a subject more live sessions than the cap
/// ([`SeaOrmSessionStore::with_max_sessions_per_subject`]).
///
/// ```
/// use pavex_session_sea_orm::AtCap;
///
/// // A bank refuses a sixth device; a shop signs the oldest one out.
/// let policy = if std::env::var("STRICT").is_ok() { AtCap::Refuse } else { AtCap::default() };
/// assert!(matches!(policy, AtCap::Refuse | AtCap::EndOldest));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AtCap {
    /// The subject's oldest other sessions (by creation) beyond the cap end, in the same
    /// transaction: a new sign-in always succeeds and signs out the oldest device.
    #[default]
    EndOldest,
    /// The write is refused with [`TooManySessions`] and changes nothing: the user must end a
    /// session first.
    Refuse,
}

/// A per-subject cap: at most `max` live sessions, and what happens at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubjectCap {
    pub(crate) max: NonZeroU32,
    pub(crate) at_cap: AtCap,
}

/// Why a write was refused under [`AtCap::Refuse`]: the subject already has as many live
/// sessions as the cap allows. It is the cause of the `CreateError::Other` or
/// `UpdateError::Other`, so that an app can tell it from a database failure:
///
/// ```
/// use pavex_session::store::errors::CreateError;
/// use pavex_session_sea_orm::TooManySessions;
///
/// fn at_cap(e: &CreateError) -> Option<u32> {
///     match e {
///         CreateError::Other(e) => e.downcast_ref::<TooManySessions>().map(|e| e.max()),
///         _ => None,
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the subject already has {max} live sessions, as many as the store allows; the session was \
     not written"
)]
pub struct TooManySessions {
    max: u32,
}

impl TooManySessions {
    /// The cap the write ran into.
    pub fn max(&self) -> u32 {
        self.max
    }
}

impl SeaOrmSessionStore {
    /// The same store, allowing each subject at most `max` live sessions (OWASP ASVS 5.0,
    /// 7.1.2; Spring Security's `maximumSessions`, here enforced by the database across every
    /// server and cluster node). When a `create` or an `update` would give a subject one more,
    /// `at_cap` says what happens: [`AtCap::EndOldest`] ends the oldest others,
    /// [`AtCap::Refuse`] refuses the write with [`TooManySessions`].
    ///
    /// The subject is the value of the state key given to
    /// [`with_subject_key`](Self::with_subject_key); a store without it caps nothing. A sign-in
    /// (a write that gives a session its subject) costs one transaction of six to eight round
    /// trips; every other write costs what it costs without a cap. Racing sign-ins of one
    /// subject never leave more than `max`.
    ///
    /// ```
    /// use pavex_session::{SessionId, store::{SessionRecordRef, SessionStorageBackend}};
    /// use pavex_session_sea_orm::{AtCap, SeaOrmSessionStore};
    /// use std::{borrow::Cow, collections::HashMap, num::NonZeroU32, time::Duration};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let five = NonZeroU32::new(5).ok_or("zero")?;
    /// let store = SeaOrmSessionStore::new(db)
    ///     .with_subject_key("user_id")
    ///     .with_max_sessions_per_subject(five, AtCap::EndOldest);
    /// store.migrate().await?;
    ///
    /// let state = HashMap::from([(Cow::Borrowed("user_id"), serde_json::json!(42))]);
    /// let mut devices = Vec::new();
    /// for _ in 0..6 {
    ///     let id = SessionId::random();
    ///     let record = SessionRecordRef { state: Cow::Borrowed(&state), ttl: Duration::from_secs(3600) };
    ///     store.create(&id, record).await?;
    ///     devices.push(id);
    /// }
    /// assert_eq!(store.count_sessions_of("42").await?, 5);
    /// // The sixth sign-in stays; one of the five before it was signed out (the oldest: here they
    /// // may share a millisecond, and ties go by handle).
    /// assert!(store.load(&devices[5]).await?.is_some());
    /// let mut ended = 0;
    /// for id in &devices[..5] {
    ///     ended += usize::from(store.load(id).await?.is_none());
    /// }
    /// assert_eq!(ended, 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_max_sessions_per_subject(self, max: NonZeroU32, at_cap: AtCap) -> Self {
        Self {
            cap: Some(SubjectCap { max, at_cap }),
            ..self
        }
    }
}

/// The write a capped transaction makes, with its values in the order its statement binds them.
pub(crate) enum CappedWrite {
    Create([Value; 5]),
    Update([Value; 6]),
}

/// How a capped write ended, when the database did not fail.
pub(crate) enum Capped {
    Written,
    /// `create`: the id is live.
    DuplicateId,
    /// `update`: the id is not live.
    UnknownId,
    /// `create`: the session's sign-in was ended.
    SignedOut,
    Refused(TooManySessions),
}

impl SeaOrmSessionStore {
    /// Runs `write` of the session stored under `key` for `subject` in a transaction that keeps
    /// the subject within `cap`; runs it again when it loses a lock conflict.
    pub(crate) async fn write_capped(
        &self,
        statements: &Statements,
        cap: SubjectCap,
        write: CappedWrite,
        subject: &[u8],
        key: &Key,
    ) -> Result<Capped, DbErr> {
        let options = TransactionOptions {
            // SQLite takes its write lock at `BEGIN`, where its busy timeout applies, instead of
            // failing when a read transaction turns into a write one.
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let run = &CappedStatements::new(statements, cap, &write, subject, key)?;
        let (capped, ended) = retrying_lock_conflicts_up_to(ATTEMPTS, move || async move {
            let mut transaction = self.begin_preparing(options, &run.all()).await?;
            let outcome =
                self.capped_attempt(&mut transaction, run, cap)
                    .await
                    .map(|(capped, ended)| match capped {
                        Capped::Written => Finish::Commit((capped, ended)),
                        _ => Finish::Rollback((capped, ended)),
                    });
            Self::finish(transaction, outcome).await
        })
        .await?;
        for id in &ended {
            audit::session_ended(Ended::CapEvicted, Some(subject), id);
        }
        if let Capped::Refused(_) = capped {
            audit::refused_at_cap(subject, key);
        }
        Ok(capped)
    }

    /// One run of [`write_capped`](Self::write_capped)'s transaction: how it ended, and the
    /// sessions it ended.
    async fn capped_attempt(
        &self,
        transaction: &mut Transaction,
        run: &CappedStatements<'_>,
        cap: SubjectCap,
    ) -> Result<(Capped, Vec<Key>), DbErr> {
        self.in_transaction(transaction, run.guard.clone()).await?;
        if let Some(entry) = &run.entry {
            self.in_transaction(transaction, entry.clone()).await?;
        }
        match &run.write {
            Write::Create { overwrite, insert } => {
                let overwritten = self.in_transaction(transaction, overwrite.clone()).await?;
                if overwritten.rows_affected() == 0 {
                    match self.in_transaction(transaction, insert.clone()).await {
                        Ok(done) if done.rows_affected() == 0 => {
                            return Ok((Capped::SignedOut, Vec::new()));
                        }
                        Ok(_) => {}
                        Err(e) if run.is_id_taken(&e) => {
                            return Ok((Capped::DuplicateId, Vec::new()));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            Write::Update(update) => {
                let updated = self.in_transaction(transaction, update.clone()).await?;
                if updated.rows_affected() == 0 {
                    return Ok((Capped::UnknownId, Vec::new()));
                }
            }
        }
        let max = u64::from(cap.max.get());
        let others = match &run.then {
            Then::Count(count) => {
                let others = self
                    .rows_in_transaction(transaction, count.clone())
                    .await?
                    .first()
                    .map(|row| row.try_get::<i64>("", COUNT))
                    .transpose()?
                    .unwrap_or(0);
                return match u64::try_from(others).unwrap_or(0) >= max {
                    true => Ok((
                        Capped::Refused(TooManySessions { max: cap.max.get() }),
                        Vec::new(),
                    )),
                    false => Ok((Capped::Written, Vec::new())),
                };
            }
            Then::Evict { others, .. } => others,
        };
        // The session written stays; of the others, the `max - 1` most recently created.
        let keep = usize::try_from(max.saturating_sub(1)).unwrap_or(usize::MAX);
        let id = Column::Id.to_string();
        let mut ended = Vec::new();
        loop {
            let beyond: Vec<Key> = self
                .rows_in_transaction(transaction, others.clone())
                .await?
                .iter()
                .skip(keep)
                .map(|row| row.try_get::<Key>("", &id))
                .collect::<Result<_, _>>()?;
            // Always `IDS_PER_STATEMENT` ids, so that the statements' text is the one prepared.
            let Some(ids) = padded(&beyond, IDS_PER_STATEMENT) else {
                return Ok((Capped::Written, ended));
            };
            let full = beyond.len() >= IDS_PER_STATEMENT;
            self.in_transaction(transaction, run.revoke(ids.clone())?)
                .await?;
            self.in_transaction(transaction, run.end(ids)).await?;
            ended.extend(beyond);
            if !full {
                return Ok((Capped::Written, ended));
            }
        }
    }
}

/// The write of a capped transaction, bound.
enum Write {
    Create {
        overwrite: Statement,
        insert: Statement,
    },
    Update(Statement),
}

/// What a capped transaction does once the session is written, as the policy says.
enum Then {
    /// `Refuse`: count the subject's other sessions.
    Count(Statement),
    /// `EndOldest`: read the subject's other sessions, then revoke and end those beyond the cap
    /// (`evict`: the two statements for `IDS_PER_STATEMENT` ids, for their text).
    Evict {
        others: Statement,
        evict: [Statement; 2],
    },
}

/// Every statement a capped transaction may run, built before it begins (and, on MySQL,
/// prepared before its first statement: [`crate::transaction`]).
struct CappedStatements<'a> {
    statements: &'a Statements,
    subject: Vec<u8>,
    guard: Statement,
    /// MySQL: the session's subject entry, written before the session (`Queries::enter`).
    entry: Option<Statement>,
    write: Write,
    then: Then,
}

impl<'a> CappedStatements<'a> {
    fn new(
        statements: &'a Statements,
        cap: SubjectCap,
        write: &CappedWrite,
        subject: &[u8],
        key: &Key,
    ) -> Result<Self, DbErr> {
        let queries = statements.queries();
        let backend = statements.backend();
        let write = match write {
            CappedWrite::Create(values) => Write::Create {
                overwrite: statements.overwrite_expired.bind(values.clone()),
                insert: statements.insert.bind(values.clone()),
            },
            CappedWrite::Update(values) => Write::Update(statements.update.bind(values.clone())),
        };
        let then = match cap.at_cap {
            AtCap::Refuse => {
                Then::Count(backend.build(&queries.count_others_of(subject.to_vec(), key.clone())))
            }
            AtCap::EndOldest => {
                let keep = u64::from(cap.max.get()).saturating_sub(1);
                let limit = keep.saturating_add(IDS_PER_STATEMENT as u64);
                let template = vec![key.clone(); IDS_PER_STATEMENT];
                Then::Evict {
                    others: backend.build(&queries.others_of(subject.to_vec(), key.clone(), limit)),
                    evict: [
                        revoke(statements, subject, template.clone())?,
                        end(statements, subject, template),
                    ],
                }
            }
        };
        Ok(Self {
            statements,
            subject: subject.to_vec(),
            guard: backend.build(&queries.guard(subject.to_vec())?),
            entry: statements
                .enter
                .as_ref()
                .map(|enter| enter.bind([subject.to_vec().into(), key.clone().into()])),
            write,
            then,
        })
    }

    /// Every statement, for [`SeaOrmSessionStore::begin_preparing`].
    fn all(&self) -> Vec<&Statement> {
        let mut all = vec![&self.guard];
        all.extend(&self.entry);
        match &self.write {
            Write::Create { overwrite, insert } => all.extend([overwrite, insert]),
            Write::Update(update) => all.push(update),
        }
        match &self.then {
            Then::Count(count) => all.push(count),
            Then::Evict { others, evict } => {
                all.push(others);
                all.extend(evict);
            }
        }
        all
    }

    fn revoke(&self, ids: Vec<Key>) -> Result<Statement, DbErr> {
        revoke(self.statements, &self.subject, ids)
    }

    fn end(&self, ids: Vec<Key>) -> Statement {
        end(self.statements, &self.subject, ids)
    }

    fn is_id_taken(&self, e: &DbErr) -> bool {
        self.statements.is_id_taken(e)
    }
}

/// Records the sign-ins of the sessions `ids` of `subject` as revoked.
fn revoke(statements: &Statements, subject: &[u8], ids: Vec<Key>) -> Result<Statement, DbErr> {
    let revoke = statements
        .queries()
        .revoke_of(subject.to_vec(), &Which::Ids(ids))?;
    Ok(statements.backend().build(&revoke))
}

/// Ends the sessions `ids` of `subject`.
fn end(statements: &Statements, subject: &[u8], ids: Vec<Key>) -> Statement {
    let end = statements
        .queries()
        .end_of(subject.to_vec(), &Which::Ids(ids));
    statements.backend().build(&end)
}
