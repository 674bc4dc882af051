//! Who is signed in where: the sessions of one subject (a user), listed, counted and ended.
//!
//! The store copies the value of the state key chosen with
//! [`SeaOrmSessionStore::with_subject_key`] into the indexed `subject` column, in the same
//! statement that writes the state. Each method here is one statement on that index.

use crate::{
    SeaOrmSessionStore,
    audit::{self, Ended},
    execute::{Finish, retrying_lock_conflicts_up_to},
    queries::{COUNT, Key, Which},
    transaction::{IDS_PER_STATEMENT, padded},
};
use pavex_session::SessionId;
use pavex_session_sea_orm_entity::sessions;
use pavex_session_sea_orm_entity::sessions::Column;
use pavex_session_sea_orm_migration::{
    STORED_ID_LEN, SchemaCheckError, SchemaMismatch, subject_of,
};
use sea_orm::{DbBackend, DbErr, FromQueryResult, Iden, TransactionOptions};
use std::{borrow::Cow, collections::HashMap, fmt, str::FromStr};

/// Why a subject operation ([`SeaOrmSessionStore::sessions_of`] and the others) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The table is not one the store can use (missing, not ours, altered): nothing was read or
    /// written.
    #[error(transparent)]
    Table(#[from] SchemaMismatch),
    /// The database could not be reached, or refused the statement.
    #[error("the sessions table could not be queried")]
    Database(#[from] DbErr),
    /// A stored session could not be read (its state is not a JSON object, its subject is not
    /// UTF-8, its id is not a hash): someone wrote the row by hand.
    #[error("a stored session of this subject could not be read: {0}")]
    UnreadableRow(String),
}

impl From<SchemaCheckError> for SubjectError {
    fn from(e: SchemaCheckError) -> Self {
        match e {
            SchemaCheckError::Mismatch(mismatch) => Self::Table(mismatch),
            other => Self::Database(other.into()),
        }
    }
}

/// Names one stored session without being its cookie: the hex of the hash under which it is
/// stored. Show it in a "your devices" page and take it back to end that session; it cannot be
/// turned into a session id, so it opens nothing.
///
/// ```
/// use pavex_session::SessionId;
/// use pavex_session_sea_orm::SessionHandle;
///
/// let id = SessionId::random();
/// let handle = SessionHandle::of(&id);
/// assert_eq!(handle.to_string().len(), 32);
/// assert_eq!(handle.to_string().parse::<SessionHandle>()?, handle);
/// assert!(!handle.to_string().contains(&id.inner().simple().to_string()));
/// # Ok::<(), pavex_session_sea_orm::InvalidHandle>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionHandle([u8; STORED_ID_LEN]);

impl SessionHandle {
    /// The handle of the session with id `id` (to mark the current session in a list).
    pub fn of(id: &SessionId) -> Self {
        Self(pavex_session_sea_orm_migration::stored_id(&id.inner()))
    }

    /// The stored id, as the `id` column holds it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for SessionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionHandle({self})")
    }
}

/// A string that is not a [`SessionHandle`] (32 hexadecimal digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHandle;

impl fmt::Display for InvalidHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session handle is 32 hexadecimal digits")
    }
}

impl std::error::Error for InvalidHandle {}

impl FromStr for SessionHandle {
    type Err = InvalidHandle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0; STORED_ID_LEN];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| InvalidHandle)?;
        Ok(Self(bytes))
    }
}

impl TryFrom<&[u8]> for SessionHandle {
    type Error = InvalidHandle;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        <[u8; STORED_ID_LEN]>::try_from(bytes)
            .map(Self)
            .map_err(|_| InvalidHandle)
    }
}

/// Times ending a subject's sessions runs at most while it keeps losing lock conflicts (MySQL).
const END_ATTEMPTS: u32 = 8;

/// How many sessions [`SeaOrmSessionStore::sessions_of`] lists at most.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

/// The largest page [`SeaOrmSessionStore::sessions_of_after`] lists.
pub const MAX_PAGE_SIZE: u32 = 1_000;

/// A page of a subject's sessions; it derefs to the `Vec` of its sessions.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionsPage {
    /// The sessions, the most recently created first.
    pub sessions: Vec<SubjectSession>,
    /// Where the next page starts, if there is one.
    pub next: Option<PageCursor>,
}

impl std::ops::Deref for SessionsPage {
    type Target = Vec<SubjectSession>;

    fn deref(&self) -> &Self::Target {
        &self.sessions
    }
}

impl<'a> IntoIterator for &'a SessionsPage {
    type Item = &'a SubjectSession;
    type IntoIter = std::slice::Iter<'a, SubjectSession>;

    fn into_iter(self) -> Self::IntoIter {
        self.sessions.iter()
    }
}

impl IntoIterator for SessionsPage {
    type Item = SubjectSession;
    type IntoIter = std::vec::IntoIter<SubjectSession>;

    fn into_iter(self) -> Self::IntoIter {
        self.sessions.into_iter()
    }
}

impl std::ops::DerefMut for SessionsPage {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.sessions
    }
}

/// Where a page of sessions ends: the creation instant and handle of its last session. Its text
/// form (`<milliseconds>.<handle>`) can travel in a URL and be parsed back.
///
/// ```
/// use pavex_session_sea_orm::PageCursor;
///
/// let text = format!("1700000000000.{}", "ab".repeat(16));
/// let cursor: PageCursor = text.parse()?;
/// assert_eq!(cursor.to_string(), text);
/// assert!("not a cursor".parse::<PageCursor>().is_err());
/// # Ok::<(), pavex_session_sea_orm::InvalidHandle>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageCursor {
    created_at: i64,
    handle: SessionHandle,
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.created_at, self.handle)
    }
}

impl FromStr for PageCursor {
    type Err = InvalidHandle;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (created_at, handle) = s.split_once('.').ok_or(InvalidHandle)?;
        Ok(Self {
            created_at: created_at.parse().map_err(|_| InvalidHandle)?,
            handle: handle.parse()?,
        })
    }
}

/// One live session of a subject, as [`SeaOrmSessionStore::sessions_of`] lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SubjectSession {
    /// Names the session for [`SeaOrmSessionStore::end_session_of`].
    pub handle: SessionHandle,
    /// When the session was created (for sessions older than the subject column: when the
    /// table was migrated).
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the session was last written: created, updated or its TTL extended.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// When the session expires unless it is written again.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The session's state, so that the app can show what it stored (a user agent, say).
    pub state: HashMap<String, serde_json::Value>,
}

impl SeaOrmSessionStore {
    /// The first page of the live sessions of `subject`: at most [`DEFAULT_PAGE_SIZE`], the most
    /// recently created first; [`SessionsPage::next`] says whether there are more (see
    /// [`sessions_of_after`](Self::sessions_of_after)).
    ///
    /// ```
    /// use pavex_session::{SessionId, store::{SessionRecordRef, SessionStorageBackend}};
    /// use pavex_session_sea_orm::{SeaOrmSessionStore, SessionHandle};
    /// use std::{borrow::Cow, collections::HashMap, time::Duration};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = sea_orm::Database::connect("sqlite::memory:").await?;
    /// let store = SeaOrmSessionStore::new(db).with_subject_key("user_id");
    /// store.migrate().await?;
    ///
    /// let (laptop, phone) = (SessionId::random(), SessionId::random());
    /// for (id, device) in [(&laptop, "laptop"), (&phone, "phone")] {
    ///     let state = HashMap::from([
    ///         (Cow::Borrowed("user_id"), serde_json::json!(42)),
    ///         (Cow::Borrowed("device"), serde_json::json!(device)),
    ///     ]);
    ///     let record = SessionRecordRef { state: Cow::Borrowed(&state), ttl: Duration::from_secs(3600) };
    ///     store.create(id, record).await?;
    /// }
    /// assert_eq!(store.sessions_of("42").await?.len(), 2);
    ///
    /// // "Sign out everywhere else", from the laptop:
    /// assert_eq!(store.end_sessions_of("42", Some(&SessionHandle::of(&laptop))).await?, 1);
    /// let left = store.sessions_of("42").await?;
    /// assert_eq!(left[0].handle, SessionHandle::of(&laptop));
    /// assert!(store.load(&phone).await?.is_none());
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "List the sessions of a subject", level = tracing::Level::INFO, skip_all)]
    pub async fn sessions_of(&self, subject: &str) -> Result<SessionsPage, SubjectError> {
        self.sessions_of_after(subject, DEFAULT_PAGE_SIZE, None)
            .await
    }

    /// A page of the live sessions of `subject`: at most `page_size` (1 to [`MAX_PAGE_SIZE`];
    /// other values are brought into that range), the most recently created first, starting
    /// after `after` (a [`SessionsPage::next`] cursor) or at the newest. Each page is one
    /// statement on the subject index, O(`page_size`) however many sessions the subject has
    /// (on MySQL, which reads the subject's entries whole, O(sessions of the subject)).
    ///
    /// ```
    /// # use pavex_session_sea_orm::{SeaOrmSessionStore, SubjectError};
    /// # async fn every_session(store: &SeaOrmSessionStore) -> Result<(), SubjectError> {
    /// let mut page = store.sessions_of_after("42", 50, None).await?;
    /// loop {
    ///     for session in page.iter() {
    ///         println!("{} {}", session.handle, session.created_at);
    ///     }
    ///     let Some(next) = page.next.clone() else { break };
    ///     page = store.sessions_of_after("42", 50, Some(&next)).await?;
    /// }
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "List a page of the sessions of a subject", level = tracing::Level::INFO, skip_all)]
    pub async fn sessions_of_after(
        &self,
        subject: &str,
        page_size: u32,
        after: Option<&PageCursor>,
    ) -> Result<SessionsPage, SubjectError> {
        let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
        let statements = self.statements().await?;
        // One more than the page, to know whether there is a next one.
        let select = statements.queries().sessions_of(
            subject.as_bytes().to_vec(),
            u64::from(page_size) + 1,
            after.map(|cursor| (cursor.created_at, cursor.handle.as_bytes().to_vec())),
        );
        let rows = self
            .query(&self.db.get_database_backend().build(&select))
            .await?;
        let unreadable = |what: &str| SubjectError::UnreadableRow(what.to_owned());
        let mut sessions = rows
            .iter()
            .map(|row| {
                let model = sessions::Model::from_query_result(row, "")
                    .map_err(|e| SubjectError::UnreadableRow(e.to_string()))?;
                let json = self
                    .opened(|| model.id.clone(), model.state)
                    .map_err(|e| SubjectError::UnreadableRow(e.to_string()))?;
                let state = serde_json::from_slice(&json)
                    .map_err(|_| unreadable("its state is not a JSON object"))?;
                Ok(SubjectSession {
                    handle: SessionHandle::try_from(model.id.as_slice())
                        .map_err(|_| unreadable("its id is not a hash"))?,
                    created_at: model.created_at.0,
                    updated_at: model.updated_at.0,
                    expires_at: model.deadline.0,
                    state,
                })
            })
            .collect::<Result<Vec<_>, SubjectError>>()?;
        let more = sessions.len() > page_size as usize;
        sessions.truncate(page_size as usize);
        let next = match (more, sessions.last()) {
            (true, Some(last)) => Some(PageCursor {
                created_at: last.created_at.timestamp_millis(),
                handle: last.handle,
            }),
            _ => None,
        };
        Ok(SessionsPage { sessions, next })
    }

    /// How many live sessions `subject` has.
    #[tracing::instrument(name = "Count the sessions of a subject", level = tracing::Level::INFO, skip_all)]
    pub async fn count_sessions_of(&self, subject: &str) -> Result<u64, SubjectError> {
        let statements = self.statements().await?;
        let select = statements.queries().count_of(subject.as_bytes().to_vec());
        let row = self
            .query_one(&self.db.get_database_backend().build(&select))
            .await?
            .ok_or_else(|| SubjectError::UnreadableRow("COUNT returned no row".to_owned()))?;
        let count: i64 = row.try_get("", COUNT)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Ends the live session `handle` if it belongs to `subject` ("sign out this device");
    /// returns whether there was one. Taking the subject too means a handle from one user's page
    /// can never end another user's session.
    #[tracing::instrument(name = "End a session of a subject", level = tracing::Level::INFO, skip_all)]
    pub async fn end_session_of(
        &self,
        subject: &str,
        handle: &SessionHandle,
    ) -> Result<bool, SubjectError> {
        let ended = self
            .end(
                subject,
                Which::Only(handle.as_bytes().to_vec()),
                Ended::SignedOut,
            )
            .await?;
        Ok(ended > 0)
    }

    /// Ends every live session of `subject`, or every one but `except` (the current request's
    /// session: "sign out everywhere else"), at once; returns how many were ended. A request
    /// still in flight on an ended session can no longer write it: its `update`, `update_ttl`
    /// and `change_id` find no session.
    ///
    /// `pavex_session` does not tell a request handler its session's id, so a Pavex app finds
    /// its own handle in [`sessions_of`](Self::sessions_of) by a value it put in the state at
    /// sign-in (a random device id, say); with the id at hand, use [`SessionHandle::of`].
    #[tracing::instrument(name = "End the sessions of a subject", level = tracing::Level::INFO, skip_all)]
    pub async fn end_sessions_of(
        &self,
        subject: &str,
        except: Option<&SessionHandle>,
    ) -> Result<u64, SubjectError> {
        let which = match except {
            Some(handle) => Which::AllBut(handle.as_bytes().to_vec()),
            None => Which::All,
        };
        self.end(subject, which, Ended::SignedOutEverywhere).await
    }

    /// Ends every live session of `subject` created before `instant` ("sign out everyone who
    /// signed in before the password change", OWASP ASVS 7.4.3), in one statement on the
    /// subject index; returns how many were ended. Sessions created since (the sign-in that
    /// changed the password, say) stay. With a sign-in key their sign-ins are revoked, as with
    /// [`end_sessions_of`](Self::end_sessions_of).
    ///
    /// ```
    /// # use pavex_session_sea_orm::{SeaOrmSessionStore, SubjectError};
    /// # async fn password_changed(store: &SeaOrmSessionStore) -> Result<(), SubjectError> {
    /// let changed_at = chrono::Utc::now();
    /// let ended = store.end_sessions_of_created_before("42", changed_at).await?;
    /// # Ok(())
    /// # }
    /// ```
    #[tracing::instrument(name = "End the sessions of a subject created before an instant", level = tracing::Level::INFO, skip_all)]
    pub async fn end_sessions_of_created_before(
        &self,
        subject: &str,
        instant: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, SubjectError> {
        self.end(
            subject,
            Which::CreatedBefore(instant.timestamp_millis()),
            Ended::CreatedBefore,
        )
        .await
    }

    /// Ends the live sessions of `subject` that `which` names. Their sign-ins are revoked first
    /// (where the sessions have one), so that a request still in flight on one of them cannot
    /// bring it back under a new id: a session created between the two statements is either
    /// refused (its sign-in is revoked) or deleted.
    async fn end(&self, subject: &str, which: Which, reason: Ended) -> Result<u64, SubjectError> {
        let statements = self.statements().await?;
        let queries = statements.queries();
        let backend = self.db.get_database_backend();
        let subject = subject.as_bytes().to_vec();
        self.execute(&backend.build(&queries.forget_revoked_of(subject.clone())))
            .await?;
        self.execute(&backend.build(&queries.revoke_of(subject.clone(), &which)?))
            .await?;
        let id = Column::Id.to_string();
        if backend != DbBackend::MySql {
            let mut end = queries.end_of(subject.clone(), &which);
            // The ids of the sessions it ended come back with the `DELETE`, for the audit trail.
            let ended = self
                .query(&backend.build(end.returning_col(Column::Id)))
                .await?
                .iter()
                .map(|row| row.try_get::<Key>("", &id))
                .collect::<Result<Vec<_>, _>>()?;
            for stored_id in &ended {
                audit::session_ended(reason, Some(&subject), stored_id);
            }
            return Ok(ended.len() as u64);
        }
        // MySQL has no `DELETE ... RETURNING`: the ids are read with a locking read, which keeps
        // every matching session (and new ones of the subject) from changing until the
        // `DELETE`s of those ids, by primary key and `IDS_PER_STATEMENT` at a time (a `DELETE`
        // reading the subject's entries would scan the table on MariaDB 10.11), in the same
        // transaction have ended them.
        let select = backend.build(&queries.ids_of(subject.clone(), &which));
        let end_ids =
            |ids: Vec<Key>| backend.build(&queries.end_of(subject.clone(), &Which::Ids(ids)));
        let template = end_ids(vec![Vec::new(); IDS_PER_STATEMENT]);
        let (select, template, id, end_ids) = (&select, &template, &id, &end_ids);
        let (ended, count) = retrying_lock_conflicts_up_to(END_ATTEMPTS, move || async move {
            let mut transaction = self
                .begin_preparing(TransactionOptions::default(), &[select, template])
                .await?;
            let outcome = async {
                let ended = self
                    .rows_in_transaction(&mut transaction, select.clone())
                    .await?
                    .iter()
                    .map(|row| row.try_get::<Key>("", id))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut count = 0_u64;
                for chunk in ended.chunks(IDS_PER_STATEMENT) {
                    let Some(ids) = padded(chunk, IDS_PER_STATEMENT) else {
                        continue;
                    };
                    let done = self.in_transaction(&mut transaction, end_ids(ids)).await?;
                    count = count.saturating_add(done.rows_affected());
                }
                Ok(Finish::Commit((ended, count)))
            }
            .await;
            Self::finish(transaction, outcome).await
        })
        .await?;
        for stored_id in &ended {
            audit::session_ended(reason, Some(&subject), stored_id);
        }
        Ok(count)
    }

    /// The value of the state key `key` (the subject key, the sign-in key), as text.
    pub(crate) fn value_of(
        &self,
        key: Option<&str>,
        state: &HashMap<Cow<'static, str>, serde_json::Value>,
    ) -> Result<Option<String>, serde_json::Error> {
        let Some(key) = key else {
            return Ok(None);
        };
        subject_of(key, state.get(key)).map_err(serde::ser::Error::custom)
    }
}
