//! The store's statements, rendered to SQL once per store and bound to new values on each call.
//!
//! sea-query builds every statement (see [`Queries`]), but building and rendering one costs
//! several microseconds, which a session store pays on nearly every request. So each statement is
//! built once with marker values, rendered for the store's backend, and the position of each
//! marker among the rendered parameters is remembered; a call clones the SQL and binds its values
//! in those positions. The SQL text is the same on every call, so the driver's prepared-statement
//! cache is hit every time.

use crate::queries::{Key, Queries, Record, Writes, bounded};
use pavex_session_sea_orm_migration::SessionsTable;
use sea_orm::{DbBackend, DbErr, Statement, StatementBuilder, Value};
use std::num::NonZeroUsize;

/// Stand-ins for the values of one call, distinct from each other so that each can be found
/// among the rendered parameters.
const TTL_MS_MARKER: i64 = 0x7061_7665_785f_7474;
const LIFETIME_MS_MARKER: i64 = 0x7061_7665_785f_6c66;
/// The batch size `delete_expired` renders with; small enough for a 32-bit `usize`.
const BATCH_MARKER: NonZeroUsize = NonZeroUsize::MIN.saturating_add(0x7061_7664);

fn id_marker() -> Key {
    b"pavex_session_sea_orm: an id....".to_vec()
}

fn new_id_marker() -> Key {
    b"pavex_session_sea_orm: a new id.".to_vec()
}

fn subject_marker() -> Vec<u8> {
    b"pavex_session_sea_orm: the subject of a session".to_vec()
}

fn old_state_marker() -> Vec<u8> {
    b"pavex_session_sea_orm: the state a rename replaces".to_vec()
}

fn record_marker() -> Record {
    Record {
        state: b"pavex_session_sea_orm: the state of a session".to_vec(),
        subject: Some(subject_marker()),
        sign_in: Some(b"pavex_session_sea_orm: the sign-in of a session".to_vec()),
        ttl_ms: TTL_MS_MARKER,
    }
}

/// One statement's SQL and where each of its `N` values goes among the bound parameters.
#[derive(Debug, Clone)]
pub(crate) struct Prepared<const N: usize> {
    backend: DbBackend,
    sql: String,
    /// `position[i]`: the index among the rendered parameters of the statement's `i`-th value,
    /// `None` for a value the statement does not use (an update that leaves the subject alone).
    position: [Option<usize>; N],
}

impl<const N: usize> Prepared<N> {
    /// Renders `statement`, built with `markers` as its values (each at most once, and nothing
    /// else bound).
    fn render(
        backend: DbBackend,
        statement: &impl StatementBuilder,
        markers: [Value; N],
    ) -> Result<Self, DbErr> {
        let Statement { sql, values, .. } = backend.build(statement);
        let rendered = values.map(|values| values.0).unwrap_or_default();
        let mut position = [None; N];
        for (slot, marker) in position.iter_mut().zip(&markers) {
            let mut found = rendered.iter().enumerate().filter(|(_, v)| *v == marker);
            *slot = match (found.next(), found.next()) {
                (at, None) => at.map(|(at, _)| at),
                _ => return Err(not_one_parameter(&sql, marker)),
            };
        }
        let used = position.iter().flatten().count();
        if rendered.len() != used {
            return Err(DbErr::Custom(format!(
                "pavex_session_sea_orm: `{sql}` has {} parameters instead of {used}",
                rendered.len()
            )));
        }
        Ok(Self {
            backend,
            sql,
            position,
        })
    }

    /// The statement with `values` (in the order of the markers it was rendered with) bound.
    pub(crate) fn bind(&self, values: [Value; N]) -> Statement {
        let mut parameters: [Option<Value>; N] = std::array::from_fn(|_| None);
        for (value, at) in values.into_iter().zip(&self.position) {
            if let Some(slot) = at.and_then(|at| parameters.get_mut(at)) {
                *slot = Some(value);
            }
        }
        Statement::from_sql_and_values(
            self.backend,
            self.sql.clone(),
            parameters.into_iter().flatten(),
        )
    }
}

fn not_one_parameter(sql: &str, marker: &Value) -> DbErr {
    DbErr::Custom(format!(
        "pavex_session_sea_orm: `{sql}` binds {marker:?} more than once"
    ))
}

/// Every statement of the store's common paths, rendered for one backend and table. Values are
/// bound in the order of each field's comment.
#[derive(Debug, Clone)]
pub(crate) struct Statements {
    backend: DbBackend,
    /// The name of the table's primary key (PostgreSQL's constraint; `PRIMARY` on MySQL).
    primary_key: String,
    /// The builders, for the statements rendered per call.
    queries: Queries,
    /// `id, state, subject, sign_in, ttl_ms`; inserts nothing for a revoked sign-in when the
    /// store knows the sign-in key
    pub(crate) insert: Prepared<5>,
    /// `id, state, subject, sign_in, ttl_ms`
    pub(crate) overwrite_expired: Prepared<5>,
    /// `id, state, subject, sign_in, ttl_ms, lifetime_ms`, the subject and sign-in only where the
    /// store knows their keys, the lifetime only under an absolute lifetime
    pub(crate) update: Prepared<6>,
    /// As `update`, for a record whose subject is already the one bound (it is not set again)
    pub(crate) update_keeping_subject: Prepared<6>,
    /// `id, ttl_ms, lifetime_ms` (the lifetime only under an absolute lifetime)
    pub(crate) update_ttl: Prepared<3>,
    /// `id`
    pub(crate) load: Prepared<1>,
    /// `id, new_id`
    pub(crate) live_among: Prepared<2>,
    /// `id`
    pub(crate) delete: Prepared<1>,
    /// `id`
    pub(crate) delete_if_expired: Prepared<1>,
    /// `id, new_id, subject` (the subject only on MySQL: see [`Queries::change_id`])
    pub(crate) change_id: Prepared<3>,
    /// `id, new_id, subject, state, old_state`
    pub(crate) change_id_sealed: Prepared<5>,
    /// `subject, id`: MySQL's subject entry (see [`Queries::enter`]), `None` elsewhere
    pub(crate) enter: Option<Prepared<2>>,
    /// Every expired record
    delete_expired_all: Prepared<0>,
    /// `batch_size`: at most that many expired records
    delete_expired_batch: Prepared<1>,
}

impl Statements {
    pub(crate) fn new(
        backend: DbBackend,
        table: &SessionsTable,
        primary_key: String,
        writes: Writes,
    ) -> Result<Self, DbErr> {
        let queries = Queries::new(backend, table)?;
        let (id, new_id) = (Value::from(id_marker()), Value::from(new_id_marker()));
        let Record {
            state,
            subject,
            sign_in,
            ..
        } = record_marker();
        let ttl = Value::from(TTL_MS_MARKER);
        let lifetime = Value::from(LIFETIME_MS_MARKER);
        let record = || {
            [
                id.clone(),
                state.clone().into(),
                subject.clone().into(),
                sign_in.clone().into(),
                ttl.clone(),
            ]
        };
        let record_and_lifetime = || {
            let [id, state, subject, sign_in, ttl] = record();
            [id, state, subject, sign_in, ttl, lifetime.clone()]
        };
        let old_new = [id.clone(), new_id];
        let subject_value = Value::from(subject_marker());
        Ok(Self {
            insert: Prepared::render(
                backend,
                &queries.insert(id_marker(), record_marker(), writes.sign_in)?,
                record(),
            )?,
            overwrite_expired: Prepared::render(
                backend,
                &queries.overwrite_expired(id_marker(), record_marker()),
                record(),
            )?,
            update: Prepared::render(
                backend,
                &queries.update(id_marker(), record_marker(), writes, LIFETIME_MS_MARKER),
                record_and_lifetime(),
            )?,
            update_keeping_subject: Prepared::render(
                backend,
                &queries.update_keeping_subject(
                    id_marker(),
                    record_marker(),
                    writes,
                    LIFETIME_MS_MARKER,
                ),
                record_and_lifetime(),
            )?,
            update_ttl: Prepared::render(
                backend,
                &queries.update_ttl(
                    id_marker(),
                    TTL_MS_MARKER,
                    writes.lifetime_capped,
                    LIFETIME_MS_MARKER,
                ),
                [id.clone(), ttl.clone(), lifetime.clone()],
            )?,
            load: Prepared::render(backend, &queries.load(id_marker()), [id.clone()])?,
            live_among: Prepared::render(
                backend,
                &queries.live_among(id_marker(), new_id_marker()),
                old_new.clone(),
            )?,
            delete: Prepared::render(backend, &queries.delete(id_marker()), [id.clone()])?,
            delete_if_expired: Prepared::render(
                backend,
                &queries.delete_if_expired(id_marker()),
                [id],
            )?,
            change_id: Prepared::render(
                backend,
                &queries.change_id(id_marker(), new_id_marker(), Some(subject_marker())),
                {
                    let [id, new_id] = old_new.clone();
                    [id, new_id, subject_value.clone()]
                },
            )?,
            change_id_sealed: Prepared::render(
                backend,
                &queries.change_id_sealed(
                    id_marker(),
                    new_id_marker(),
                    Some(subject_marker()),
                    state.clone(),
                    old_state_marker(),
                ),
                {
                    let [id, new_id] = old_new;
                    [
                        id,
                        new_id,
                        subject_value.clone(),
                        state.clone().into(),
                        old_state_marker().into(),
                    ]
                },
            )?,
            delete_expired_all: Prepared::render(backend, &queries.delete_expired(None), [])?,
            delete_expired_batch: Prepared::render(
                backend,
                &queries.delete_expired(Some(BATCH_MARKER)),
                [batch_limit(BATCH_MARKER.get())],
            )?,
            enter: match queries.enter(subject_marker(), id_marker())? {
                Some(enter) => Some(Prepared::render(
                    backend,
                    &enter,
                    [subject_value, Value::from(id_marker())],
                )?),
                None => None,
            },
            backend,
            primary_key,
            queries,
        })
    }

    /// Whether `e` says the id is taken: a violation of the primary key, and of no other unique
    /// index (an application's own unique index on the table is not "id taken").
    pub(crate) fn is_id_taken(&self, e: &DbErr) -> bool {
        crate::execute::is_primary_key_violation(e, &self.primary_key)
    }

    /// A database error as the `Other` variant's cause; a unique index other than the primary
    /// key says which (its name is in the database's message).
    pub(crate) fn other(&self, e: DbErr) -> anyhow::Error {
        let unique = matches!(
            e.sql_err(),
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
        );
        match unique {
            true => anyhow::Error::new(e).context(
                "A unique index other than the sessions table's primary key refused the write",
            ),
            false => e.into(),
        }
    }

    /// The backend the statements are rendered for.
    pub(crate) fn backend(&self) -> DbBackend {
        self.backend
    }

    /// The builders of the statements that are rendered per call.
    pub(crate) fn queries(&self) -> &Queries {
        &self.queries
    }

    /// `delete_expired` (see [`Queries::delete_expired`]) with this call's batch size bound.
    pub(crate) fn delete_expired(&self, batch_size: Option<NonZeroUsize>) -> Statement {
        match batch_size {
            None => self.delete_expired_all.bind([]),
            Some(n) => self.delete_expired_batch.bind([batch_limit(n.get())]),
        }
    }
}

/// A batch size as [`Queries::delete_expired`] binds it in its `LIMIT`.
fn batch_limit(batch_size: usize) -> Value {
    Value::from(bounded(u64::try_from(batch_size).unwrap_or(u64::MAX)))
}
