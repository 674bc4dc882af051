//! Every statement the store runs, built with sea-query from the entity's columns.
//!
//! Liveness is always decided inside the statement, against [`now_millis`]: a record is live
//! when `deadline > now` and expired when `deadline <= now`. `load` alone leaves the test to the
//! store: its statement returns the remaining time `deadline - now` (on PostgreSQL the deadline
//! and `CURRENT_TIMESTAMP`, [`remaining_ms`] subtracts), and the store reads a record whose
//! remaining time is not positive as absent (one clock and no filter: the cheapest statement on
//! every backend, docs/schema.md "The load").

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use pavex_session_sea_orm_entity::sessions::Column;
use pavex_session_sea_orm_migration::{SessionsTable, millis_of, now_millis};
use sea_orm::{
    DbBackend, DbErr, Iterable, QueryResult,
    sea_query::{
        Alias, BinOper, Cond, Condition, DeleteStatement, Expr, ExprTrait, Func, InsertStatement,
        IntoColumnRef, IntoIden, LockBehavior, LockType, OnConflict, Order, Query, SelectStatement,
        TableRef, UpdateStatement,
    },
};
use std::num::NonZeroUsize;

/// The alias under which [`Queries::load`] returns the state, the bytes of its JSON text.
pub(crate) const STATE: &str = "state";

/// The alias under which [`Queries::load`] returns the remaining time to live, in milliseconds
/// (MySQL, SQLite).
const TTL_MS: &str = "ttl_ms";

/// The aliases under which [`Queries::load`] returns, on PostgreSQL, the deadline and the
/// database clock's reading (`CURRENT_TIMESTAMP`, a `timestamptz`), from which [`remaining_ms`]
/// computes the remaining time.
const DEADLINE: &str = "deadline";
const NOW: &str = "now";

/// Builds the store's statements for one table on one backend. The columns are the entity's;
/// the table is the store's [`SessionsTable`].
#[derive(Debug, Clone)]
pub(crate) struct Queries {
    backend: DbBackend,
    table: TableRef,
    /// The table of revoked sign-ins beside it, and its name alone.
    revoked: TableRef,
    revoked_name: String,
    /// MySQL: the subject entries beside it (`<table>_by_subject`), in place of a subject index,
    /// and the names of both tables (MySQL has no schemas: a name is a table's reference).
    by_subject: Option<BySubject>,
    now: Expr,
}

impl Queries {
    pub(crate) fn new(backend: DbBackend, table: &SessionsTable) -> Result<Self, DbErr> {
        Ok(Self {
            backend,
            table: table.table_ref(),
            revoked: table.revoked().table_ref(),
            revoked_name: table.revoked().name().to_owned(),
            by_subject: (backend == DbBackend::MySql).then(|| BySubject {
                table: Alias::new(table.by_subject().name()),
                sessions: Alias::new(table.name()),
            }),
            now: now_millis(backend)?,
        })
    }

    /// `INSERT` a new record; fails with a unique violation when `id` is taken.
    ///
    /// `unless_revoked`: inserts nothing (0 rows) when the record's subject and sign-in are among
    /// the revoked ones, checked in the same statement (`INSERT ... SELECT ... WHERE NOT EXISTS`),
    /// so that an ended sign-in cannot come back under a new id.
    pub(crate) fn insert(
        &self,
        id: Key,
        record: Record,
        unless_revoked: bool,
    ) -> Result<InsertStatement, DbErr> {
        let columns = [
            Column::Id,
            Column::Deadline,
            Column::State,
            Column::Subject,
            Column::SignIn,
            Column::CreatedAt,
            Column::UpdatedAt,
        ];
        let values = [
            Expr::val(id),
            self.deadline_in(record.ttl_ms),
            Expr::val(record.state),
            Expr::val(record.subject),
            Expr::val(record.sign_in),
            self.now.clone(),
            self.now.clone(),
        ];
        let mut insert = Query::insert();
        insert.into_table(self.table.clone()).columns(columns);
        if !unless_revoked {
            insert
                .values(values)
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            return Ok(insert);
        }
        let (row, revoked) = (Alias::new("v"), Alias::new("r"));
        let mut values_row = Query::select();
        for (column, value) in columns.into_iter().zip(values) {
            values_row.expr_as(value, column);
        }
        let is_revoked = Query::select()
            .expr(Expr::cust("1"))
            .from_as(self.revoked.clone(), revoked.clone())
            .and_where(
                Expr::col((revoked.clone(), Column::Subject))
                    .equals((row.clone(), Column::Subject)),
            )
            .and_where(Expr::col((revoked, Column::SignIn)).equals((row.clone(), Column::SignIn)))
            .to_owned();
        let select = Query::select()
            .columns(columns.map(|column| (row.clone(), column)))
            .from_subquery(values_row, row.clone())
            .and_where(Expr::exists(is_revoked).not())
            .to_owned();
        insert
            .select_from(select)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        Ok(insert)
    }

    /// MySQL: write the entry of `subject`'s session `id` in `<table>_by_subject` (or refresh its
    /// `written_at`), before the write that gives the session that subject, so that every
    /// session of a subject always has its entry (an entry without its session is stale, and
    /// harmless: every read joins it to the session). `None` elsewhere: the subject index is
    /// kept by the database.
    pub(crate) fn enter(
        &self,
        subject: Vec<u8>,
        id: Key,
    ) -> Result<Option<InsertStatement>, DbErr> {
        let Some(by_subject) = &self.by_subject else {
            return Ok(None);
        };
        let mut insert = Query::insert();
        insert
            .into_table(by_subject.table.clone())
            .columns([
                Column::Subject.into_iden(),
                Column::Id.into_iden(),
                written_at(),
            ])
            .values([Expr::val(subject), Expr::val(id), self.now.clone()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(OnConflict::new().update_column(written_at()).to_owned());
        Ok(Some(insert))
    }

    /// MySQL: delete at most `limit` stale subject entries (whose session is gone or has another
    /// subject) written more than [`REVOKED_GRACE_MS`] ago: a younger one may belong to a write
    /// in flight, which writes the entry first and the session next. `None` elsewhere.
    pub(crate) fn delete_stale_entries(&self, limit: u64) -> Option<DeleteStatement> {
        let BySubject { table, sessions } = self.by_subject.clone()?;
        let session = Query::select()
            .expr(Expr::cust("1"))
            .from(sessions.clone())
            .and_where(
                Expr::col((sessions.clone(), Column::Id)).equals((table.clone(), Column::Id)),
            )
            .and_where(
                Expr::col((sessions, Column::Subject)).equals((table.clone(), Column::Subject)),
            )
            .to_owned();
        Some(
            Query::delete()
                .from_table(table)
                .and_where(Expr::col(written_at()).lt(self.now.clone().sub(REVOKED_GRACE_MS)))
                .and_where(Expr::exists(session).not())
                .limit(bounded(limit))
                .to_owned(),
        )
    }

    /// MySQL: `id IN (SELECT id FROM <table>_by_subject WHERE subject = ?)`, the condition that
    /// reads a subject's sessions through their entries (a semi-join, which MariaDB runs from the
    /// entries' primary key); `None` elsewhere, where the subject index serves `subject = ?`.
    fn entered(&self, subject: &[u8]) -> Option<Expr> {
        let BySubject { table, .. } = self.by_subject.as_ref()?;
        let ids = Query::select()
            .column(Column::Id)
            .from(table.clone())
            .and_where(Expr::col(Column::Subject).eq(subject.to_vec()))
            .to_owned();
        Some(Expr::col(Column::Id).in_subquery(ids))
    }

    /// Replace the record `id` if it has expired: a new session under a reused id.
    pub(crate) fn overwrite_expired(&self, id: Key, record: Record) -> UpdateStatement {
        self.set_record(record)
            .value(Column::CreatedAt, self.now.clone())
            .and_where(id_is(id))
            .and_where(self.expired())
            .to_owned()
    }

    /// Replace the state and deadline of the record `id` if it is live, and its subject and
    /// sign-in where the store knows their keys (`writes`): a store that does not know a key
    /// leaves that column as it is.
    pub(crate) fn update(
        &self,
        id: Key,
        record: Record,
        writes: Writes,
        lifetime_ms: i64,
    ) -> UpdateStatement {
        let deadline = self.capped_deadline(record.ttl_ms, writes.lifetime_capped, lifetime_ms);
        let mut update = Query::update();
        update
            .table(self.table.clone())
            .value(Column::State, record.state)
            .value(Column::Deadline, deadline)
            .value(Column::UpdatedAt, self.now.clone());
        if writes.subject {
            update.value(Column::Subject, record.subject);
        }
        if writes.sign_in {
            update.value(Column::SignIn, record.sign_in);
        }
        update
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// [`update`](Self::update), only if the record's subject is already `record.subject`
    /// (which it leaves as it is): the write of a session that already counts for its subject,
    /// which a per-subject cap does not need to check.
    pub(crate) fn update_keeping_subject(
        &self,
        id: Key,
        record: Record,
        writes: Writes,
        lifetime_ms: i64,
    ) -> UpdateStatement {
        let subject = record.subject.clone();
        let writes = Writes {
            subject: false,
            ..writes
        };
        self.update(id, record, writes, lifetime_ms)
            .and_where(Expr::col(Column::Subject).eq(subject))
            .to_owned()
    }

    /// Move the deadline of the live record `id`, leaving its state alone.
    ///
    /// With `capped`, the new deadline is never after `created_at + lifetime_ms` (the absolute
    /// lifetime), as in [`update`](Self::update).
    pub(crate) fn update_ttl(
        &self,
        id: Key,
        ttl_ms: i64,
        capped: bool,
        lifetime_ms: i64,
    ) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(
                Column::Deadline,
                self.capped_deadline(ttl_ms, capped, lifetime_ms),
            )
            .value(Column::UpdatedAt, self.now.clone())
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// The state ([`STATE`]) and remaining time to live of the record `id`, live or not: the
    /// record is live only if the remaining time is positive, which the caller checks.
    ///
    /// The state comes back as the bytes of its JSON text, which the store parses straight into
    /// the session's map; the server neither casts nor converts it. The remaining time is
    /// `max(deadline, 0) - now`, negative for a deadline at or below zero, which no clock
    /// reading reaches: computed by MySQL and SQLite ([`TTL_MS`]), where it cannot overflow
    /// (`now` is positive); on PostgreSQL the statement returns the deadline ([`DEADLINE`]) and
    /// the clock's reading itself (`CURRENT_TIMESTAMP`, which is `now()`: [`NOW`]), and
    /// [`remaining_ms`] does the arithmetic on the exact microsecond, because there the clock's
    /// expression was most of what a miss cost the server over theirs (docs/schema.md, "The
    /// load").
    pub(crate) fn load(&self, id: Key) -> SelectStatement {
        let mut select = Query::select();
        select.expr_as(Expr::col(Column::State), STATE);
        if self.backend == DbBackend::Postgres {
            select
                .expr_as(Expr::col(Column::Deadline), DEADLINE)
                .expr_as(Expr::current_timestamp(), NOW);
        } else {
            let deadline = self.greatest(Expr::col(Column::Deadline), Expr::cust("0"));
            select.expr_as(deadline.sub(self.now.clone()), TTL_MS);
        }
        select
            .from(self.table.clone())
            .and_where(id_is(id))
            .to_owned()
    }

    /// The ids and subjects, among `a` and `b`, of the live records.
    pub(crate) fn live_among(&self, a: Key, b: Key) -> SelectStatement {
        Query::select()
            .columns([Column::Id, Column::Subject])
            .from(self.table.clone())
            .and_where(Expr::col(Column::Id).is_in([a, b]))
            .and_where(self.live())
            .to_owned()
    }

    /// Delete the record `id` if it is live.
    pub(crate) fn delete(&self, id: Key) -> DeleteStatement {
        self.delete_one(id, self.live())
    }

    /// Delete the record `id` if it has expired: it stands in the way of a rename.
    pub(crate) fn delete_if_expired(&self, id: Key) -> DeleteStatement {
        self.delete_one(id, self.expired())
    }

    fn delete_one(&self, id: Key, condition: Expr) -> DeleteStatement {
        Query::delete()
            .from_table(self.table.clone())
            .and_where(id_is(id))
            .and_where(condition)
            .to_owned()
    }

    /// Move the live record `old` to `new`; fails with a unique violation when `new` is taken.
    ///
    /// On MySQL only if the record's subject is `subject` (`NULL`-safe: `None` is an anonymous
    /// session), whose entry for `new` the caller has written first; elsewhere `subject` is not
    /// part of the statement.
    pub(crate) fn change_id(
        &self,
        old: Key,
        new: Key,
        subject: Option<Vec<u8>>,
    ) -> UpdateStatement {
        let mut update = Query::update();
        update
            .table(self.table.clone())
            .value(Column::Id, new)
            .and_where(id_is(old))
            .and_where(self.live());
        if self.by_subject.is_some() {
            // MySQL's `NULL`-safe equality.
            update.and_where(Expr::col(Column::Subject).binary(BinOper::Custom("<=>"), subject));
        }
        update
    }

    /// Move the live record `old` to `new` with its state sealed again for `new` (`state`), if
    /// its stored state is still `old_state` (the one that was opened and sealed again): a state
    /// sealed with the stored id as associated data does not open under another id.
    pub(crate) fn change_id_sealed(
        &self,
        old: Key,
        new: Key,
        subject: Option<Vec<u8>>,
        state: Vec<u8>,
        old_state: Vec<u8>,
    ) -> UpdateStatement {
        self.change_id(old, new, subject)
            .value(Column::State, state)
            .and_where(Expr::col(Column::State).eq(old_state))
            .to_owned()
    }

    /// Delete expired records: all of them, or at most `batch_size`, oldest deadline first.
    ///
    /// A batch walks the `deadline` index from its oldest end and stops after `batch_size` rows,
    /// so it costs O(batch), however many rows are expired or live:
    ///
    /// - MySQL: `DELETE ... WHERE deadline <= now ORDER BY deadline LIMIT n`. InnoDB checks the
    ///   condition on each row it locks, so a record revived meanwhile survives.
    /// - PostgreSQL, which has no `DELETE ... LIMIT`: `DELETE ... WHERE ctid = ANY(ARRAY(SELECT
    ///   ctid ... ORDER BY deadline LIMIT n FOR UPDATE SKIP LOCKED))`. The array makes the batch
    ///   a list of row addresses (with `IN (...)` the planner may hash-join against a scan of the
    ///   whole table). The lock re-checks the expiry of a row changed since the snapshot, keeps
    ///   the addresses valid, and `SKIP LOCKED` lets concurrent cleaners take disjoint batches.
    /// - SQLite (no `DELETE ... LIMIT` in the bundled build): the same sub-query by `rowid`,
    ///   which the `deadline` index holds, without a lock (SQLite runs one write at a time). By
    ///   id, each row was first looked up in the primary key's index, comparing blobs
    ///   (BENCHMARKS.md, "The writes").
    pub(crate) fn delete_expired(&self, batch_size: Option<NonZeroUsize>) -> DeleteStatement {
        let mut delete = Query::delete();
        delete.from_table(self.table.clone());
        let Some(batch_size) = batch_size else {
            return delete.and_where(self.expired()).to_owned();
        };
        let limit = bounded(u64::try_from(batch_size.get()).unwrap_or(u64::MAX));
        if self.backend == DbBackend::MySql {
            return delete
                .and_where(self.expired())
                .order_by(Column::Deadline, Order::Asc)
                .limit(limit)
                .to_owned();
        }
        let batch = match self.backend {
            DbBackend::Postgres => {
                // By physical address (`ctid`), not by id: a Tid Scan reads the batch's heap
                // pages, which sit together, instead of one primary-key lookup per random UUID.
                // The row locks keep those addresses valid until the statement ends.
                let ctid = Alias::new("ctid");
                let mut rows = self.oldest_expired(ctid.clone(), limit);
                rows.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
                let rows = Expr::SubQuery(None, Box::new(rows.into()));
                Expr::cust_with_exprs("$1 = ANY(ARRAY($2))", [Expr::col(ctid), rows])
            }
            _ => {
                let rowid = Alias::new("rowid");
                Expr::col(rowid.clone()).in_subquery(self.oldest_expired(rowid, limit))
            }
        };
        delete.and_where(batch).to_owned()
    }

    /// The id, subject, `created_at` and deadline of at most `limit` expired records, the oldest deadlines
    /// first, locked until the transaction ends: a batch of [`delete_expired`](Self::delete_expired)
    /// whose sessions the store wants to know, on MySQL (which has no `DELETE ... RETURNING`).
    pub(crate) fn oldest_expired_locked(&self, limit: u64) -> SelectStatement {
        self.oldest_expired(Column::Id, limit)
            .columns([Column::Subject, Column::CreatedAt, Column::Deadline])
            .lock(LockType::Update)
            .to_owned()
    }

    /// Delete the records among `ids` that have expired.
    pub(crate) fn delete_expired_among(&self, ids: Vec<Key>) -> DeleteStatement {
        Query::delete()
            .from_table(self.table.clone())
            .and_where(Expr::col(Column::Id).is_in(ids))
            .and_where(self.expired())
            .to_owned()
    }

    /// `column` of the `limit` expired records with the oldest deadlines.
    fn oldest_expired(&self, column: impl IntoColumnRef, limit: u64) -> SelectStatement {
        Query::select()
            .column(column)
            .from(self.table.clone())
            .and_where(self.expired())
            .order_by(Column::Deadline, Order::Asc)
            .limit(bounded(limit))
            .to_owned()
    }

    fn set_record(&self, record: Record) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Column::State, record.state)
            .value(Column::Subject, record.subject)
            .value(Column::SignIn, record.sign_in)
            .value(Column::Deadline, self.deadline_in(record.ttl_ms))
            .value(Column::UpdatedAt, self.now.clone())
            .to_owned()
    }

    /// Every column of the live sessions of `subject`.
    ///
    /// At most `limit` of them, the most recently created first (ties by id), after `after`
    /// (`created_at`, id) when given: a walk of the `(subject, created_at)` index that costs
    /// O(limit) per page, however many sessions the subject has.
    pub(crate) fn sessions_of(
        &self,
        subject: Vec<u8>,
        limit: u64,
        after: Option<(i64, Key)>,
    ) -> SelectStatement {
        let mut select = Query::select();
        select
            .columns(Column::iter())
            .from(self.table.clone())
            .cond_where(self.live_of(subject, &Which::All));
        if let Some((created_at, id)) = after {
            select.cond_where(
                Cond::any()
                    .add(Expr::col(Column::CreatedAt).lt(created_at))
                    .add(
                        Cond::all()
                            .add(Expr::col(Column::CreatedAt).eq(created_at))
                            .add(Expr::col(Column::Id).gt(id)),
                    ),
            );
        }
        select
            .order_by(Column::CreatedAt, Order::Desc)
            .order_by(Column::Id, Order::Asc)
            .limit(limit)
            .to_owned()
    }

    /// How many live sessions `subject` has, as `count`.
    pub(crate) fn count_of(&self, subject: Vec<u8>) -> SelectStatement {
        Query::select()
            .expr_as(Expr::col(Column::Id).count(), COUNT)
            .from(self.table.clone())
            .cond_where(self.live_of(subject, &Which::All))
            .to_owned()
    }

    /// Delete the live sessions of `subject`: all of them, or the one `only`, or all but `except`.
    pub(crate) fn end_of(&self, subject: Vec<u8>, which: &Which) -> DeleteStatement {
        Query::delete()
            .from_table(self.table.clone())
            .cond_where(self.live_of(subject, which))
            .to_owned()
    }

    /// The ids of the live sessions of `subject` that `which` names, locked (`FOR UPDATE`)
    /// until the transaction ends: what [`end_of`](Self::end_of) is about to end, on MySQL.
    pub(crate) fn ids_of(&self, subject: Vec<u8>, which: &Which) -> SelectStatement {
        Query::select()
            .column(Column::Id)
            .from(self.table.clone())
            .cond_where(self.live_of(subject, which))
            .lock(LockType::Update)
            .to_owned()
    }

    /// Record the sign-ins of the live sessions of `subject` that [`end_of`](Self::end_of)
    /// would end as revoked, until an hour after their deadline (a request still in flight on
    /// one of them cannot outlive that).
    pub(crate) fn revoke_of(
        &self,
        subject: Vec<u8>,
        which: &Which,
    ) -> Result<InsertStatement, DbErr> {
        self.revoke_where(self.live_of(subject, which))
    }

    /// Record as revoked, until an hour after their deadline, the sign-ins of the sessions that
    /// `condition` names (those that have a subject and a sign-in); one already recorded stays.
    fn revoke_where(&self, condition: Condition) -> Result<InsertStatement, DbErr> {
        let ended = Query::select()
            .columns([Column::Subject, Column::SignIn])
            .expr(Expr::col(Column::Deadline).add(REVOKED_GRACE_MS))
            .from(self.table.clone())
            .cond_where(condition)
            .and_where(Expr::col(Column::Subject).is_not_null())
            .and_where(Expr::col(Column::SignIn).is_not_null())
            .to_owned();
        let mut insert = Query::insert();
        insert
            .into_table(self.revoked.clone())
            .columns([Column::Subject, Column::SignIn, Column::Deadline])
            .select_from(ended)
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(match self.backend {
                // MySQL's `ON DUPLICATE KEY UPDATE subject = subject` would be ambiguous with the
                // selected table's column: name the target's.
                DbBackend::MySql => OnConflict::new()
                    .value(
                        Column::Subject,
                        Expr::col((Alias::new(&self.revoked_name), Column::Subject)),
                    )
                    .to_owned(),
                _ => OnConflict::columns([Column::Subject, Column::SignIn])
                    .do_nothing()
                    .to_owned(),
            });
        Ok(insert)
    }

    /// Delete the revoked sign-ins of `subject` that no session can continue any more.
    pub(crate) fn forget_revoked_of(&self, subject: Vec<u8>) -> DeleteStatement {
        Query::delete()
            .from_table(self.revoked.clone())
            .and_where(Expr::col(Column::Subject).eq(subject))
            .and_where(self.expired())
            .to_owned()
    }

    /// Delete at most `limit` rows of the revoked sign-ins table (revoked sign-ins and guard
    /// rows) whose deadline has passed: nothing can use them any more. The table has no index
    /// on its deadline (it is small: the sign-ins ended within the sessions' TTL, and a guard
    /// row per subject capped within the hour), so the statement scans it until it has found
    /// `limit` rows.
    pub(crate) fn delete_expired_revoked(&self, limit: u64) -> DeleteStatement {
        let limit = bounded(limit);
        let mut delete = Query::delete();
        delete.from_table(self.revoked.clone());
        let expired = Query::select()
            .from(self.revoked.clone())
            .and_where(self.expired())
            .limit(limit)
            .to_owned();
        match self.backend {
            DbBackend::MySql => delete.and_where(self.expired()).limit(limit),
            DbBackend::Postgres => {
                let ctid = Alias::new("ctid");
                let mut rows = expired;
                rows.column(ctid.clone())
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
                let rows = Expr::SubQuery(None, Box::new(rows.into()));
                delete.and_where(Expr::cust_with_exprs(
                    "$1 = ANY(ARRAY($2))",
                    [Expr::col(ctid), rows],
                ))
            }
            _ => {
                let mut rows = expired;
                rows.columns([Column::Subject, Column::SignIn]);
                delete.and_where(
                    Expr::tuple([Expr::col(Column::Subject), Expr::col(Column::SignIn)])
                        .in_subquery(rows),
                )
            }
        };
        delete
    }

    /// A chunk of a bulk end's walk: the next `limit` rows after `cursor` (from the first without
    /// one), by id, whatever they hold, with the database's clock as [`WALK_NOW`]: one range of
    /// the primary key, O(limit).
    pub(crate) fn walk_chunk(&self, cursor: Option<&[u8]>, limit: usize) -> SelectStatement {
        let mut select = Query::select();
        select
            .columns([
                Column::Id,
                Column::Subject,
                Column::SignIn,
                Column::Deadline,
                Column::CreatedAt,
            ])
            .expr_as(self.now.clone(), Alias::new(WALK_NOW))
            .from(self.table.clone());
        if let Some(cursor) = cursor {
            select.and_where(Expr::col(Column::Id).gt(cursor.to_vec()));
        }
        select
            .order_by(Column::Id, Order::Asc)
            .limit(bounded(u64::try_from(limit).unwrap_or(u64::MAX)))
            .to_owned()
    }

    /// Record as revoked the sign-ins of the sessions `ids` that are still live and created
    /// before `before`, as [`revoke_of`](Self::revoke_of) does for a subject's sessions.
    pub(crate) fn revoke_ending(
        &self,
        ids: Vec<Key>,
        before: i64,
    ) -> Result<InsertStatement, DbErr> {
        self.revoke_where(Cond::all().add(self.ending(ids, before)))
    }

    /// Delete the sessions `ids` that are still live and created before `before`, returning the
    /// id and subject of each (`returning`: PostgreSQL and SQLite).
    pub(crate) fn delete_ending(
        &self,
        ids: Vec<Key>,
        before: i64,
        returning: bool,
    ) -> DeleteStatement {
        let mut delete = Query::delete();
        delete
            .from_table(self.table.clone())
            .and_where(self.ending(ids, before));
        if returning {
            delete.returning(Query::returning().columns([Column::Id, Column::Subject]));
        }
        delete
    }

    /// The ids, among `ids`, still in the table.
    pub(crate) fn present(&self, ids: Vec<Key>) -> SelectStatement {
        Query::select()
            .column(Column::Id)
            .from(self.table.clone())
            .and_where(Expr::col(Column::Id).is_in(ids))
            .to_owned()
    }

    /// The sessions `ids`, if they are live and were created before `before`.
    fn ending(&self, ids: Vec<Key>, before: i64) -> Expr {
        Expr::col(Column::Id)
            .is_in(ids)
            .and(self.live())
            .and(Expr::col(Column::CreatedAt).lt(before))
    }

    /// Lock the subject's guard row, creating it if need be: the first statement of every write
    /// under a per-subject cap, so that two such writes for one subject run one after the other
    /// (on one server the second waits for the row lock; on a Galera cluster, where locks are
    /// not shared between nodes, the two write the same row and one loses certification and is
    /// run again). The row lives in the revoked sign-ins table under [`GUARD_SIGN_IN`], a byte
    /// no sign-in (UTF-8 text) can hold; its deadline moves on every write, so that the row
    /// really changes (an unchanged row would not be part of a Galera write set).
    pub(crate) fn guard(&self, subject: Vec<u8>) -> Result<InsertStatement, DbErr> {
        // The deadline proposed (MySQL's `VALUES(deadline)`, elsewhere `excluded.deadline`),
        // or one more than the current one, whichever is later.
        let proposed = match self.backend {
            DbBackend::MySql => Func::cust("VALUES").arg(Expr::col(Column::Deadline)).into(),
            _ => Expr::col((Alias::new("excluded"), Column::Deadline)),
        };
        let current = Expr::col((Alias::new(&self.revoked_name), Column::Deadline));
        let moved = self.greatest(proposed, current.add(1));
        let mut insert = Query::insert();
        insert
            .into_table(self.revoked.clone())
            .columns([Column::Subject, Column::SignIn, Column::Deadline])
            .values([
                Expr::val(subject),
                Expr::val(GUARD_SIGN_IN.to_vec()),
                self.deadline_in(REVOKED_GRACE_MS),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::columns([Column::Subject, Column::SignIn])
                    .value(Column::Deadline, moved)
                    .to_owned(),
            );
        Ok(insert)
    }

    /// The ids of the live sessions of `subject` other than `except`, the most recently created
    /// first (ties by id), at most `limit`: the order in which a cap keeps them.
    pub(crate) fn others_of(&self, subject: Vec<u8>, except: Key, limit: u64) -> SelectStatement {
        Query::select()
            .column(Column::Id)
            .from(self.table.clone())
            .cond_where(self.live_of(subject, &Which::AllBut(except)))
            .order_by(Column::CreatedAt, Order::Desc)
            .order_by(Column::Id, Order::Asc)
            .limit(bounded(limit))
            .to_owned()
    }

    /// How many live sessions `subject` has besides `except`, as `count`.
    pub(crate) fn count_others_of(&self, subject: Vec<u8>, except: Key) -> SelectStatement {
        Query::select()
            .expr_as(Expr::col(Column::Id).count(), COUNT)
            .from(self.table.clone())
            .cond_where(self.live_of(subject, &Which::AllBut(except)))
            .to_owned()
    }

    /// The live sessions of `subject` that `which` names. On MySQL, those `which` does not name
    /// by id are read through the subject's entries ([`entered`](Self::entered)).
    fn live_of(&self, subject: Vec<u8>, which: &Which) -> Condition {
        let by_id = matches!(which, Which::Only(_) | Which::Ids(_));
        let entered = (!by_id).then(|| self.entered(&subject)).flatten();
        let of_subject = Cond::all()
            .add_option(entered)
            .add(Expr::col(Column::Subject).eq(subject))
            .add(self.live());
        match which {
            Which::All => of_subject,
            Which::Only(id) => of_subject.add(id_is(id.clone())),
            Which::AllBut(id) => of_subject.add(Expr::col(Column::Id).ne(id.clone())),
            Which::CreatedBefore(instant) => {
                of_subject.add(Expr::col(Column::CreatedAt).lt(*instant))
            }
            Which::Ids(ids) => of_subject.add(Expr::col(Column::Id).is_in(ids.iter().cloned())),
        }
    }

    fn deadline_in(&self, ttl_ms: i64) -> Expr {
        self.now.clone().add(ttl_ms)
    }

    /// `now + ttl_ms`, or with `capped` the earlier of that and `created_at + lifetime_ms`: the
    /// deadline of a write to an existing session under an absolute lifetime, decided by the
    /// database in the statement that writes it.
    fn capped_deadline(&self, ttl_ms: i64, capped: bool, lifetime_ms: i64) -> Expr {
        let deadline = self.deadline_in(ttl_ms);
        if !capped {
            return deadline;
        }
        let cap = Expr::col(Column::CreatedAt).add(lifetime_ms);
        self.least(deadline, cap)
    }

    /// The larger of `a` and `b`: `GREATEST` on PostgreSQL and MySQL, the two-argument `MAX` on
    /// SQLite.
    fn greatest(&self, a: Expr, b: Expr) -> Expr {
        let name = match self.backend {
            DbBackend::Sqlite => "MAX",
            _ => "GREATEST",
        };
        Func::cust(name).args([a, b]).into()
    }

    /// The smaller of `a` and `b`: `LEAST`, or SQLite's two-argument `MIN`.
    fn least(&self, a: Expr, b: Expr) -> Expr {
        let name = match self.backend {
            DbBackend::Sqlite => "MIN",
            _ => "LEAST",
        };
        Func::cust(name).args([a, b]).into()
    }

    fn live(&self) -> Expr {
        Expr::col(Column::Deadline).gt(self.now.clone())
    }

    fn expired(&self) -> Expr {
        Expr::col(Column::Deadline).lte(self.now.clone())
    }
}

/// The remaining time to live, in milliseconds, of a row of [`Queries::load`] on `backend`, or
/// `None` if its record has expired: the statement returns expired records too, with a
/// remaining time of zero or less.
pub(crate) fn remaining_ms(backend: DbBackend, row: &QueryResult) -> anyhow::Result<Option<u64>> {
    let unreadable = "The remaining TTL of the session could not be read";
    let ttl_ms: i64 = if backend == DbBackend::Postgres {
        let deadline: i64 = row.try_get("", DEADLINE).context(unreadable)?;
        let now: DateTime<Utc> = row.try_get("", NOW).context(unreadable)?;
        Ord::max(deadline, 0).saturating_sub(millis_of(now))
    } else {
        row.try_get("", TTL_MS).context(unreadable)?
    };
    Ok(u64::try_from(ttl_ms).ok().filter(|ms| *ms > 0))
}

/// A `LIMIT` the drivers can bind: they bind it as a signed 64-bit integer (and panic on a
/// larger one), so a larger limit is brought down to `i64::MAX`, which means "all".
pub(crate) fn bounded(limit: u64) -> u64 {
    Ord::min(limit, i64::MAX.unsigned_abs())
}

fn id_is(id: Key) -> Expr {
    Expr::col(Column::Id).eq(id)
}

/// MySQL's table of subject entries, and the sessions table's name, as references.
#[derive(Debug, Clone)]
struct BySubject {
    table: Alias,
    sessions: Alias,
}

/// The column of `<table>_by_subject` that the sessions table does not have: when the entry was
/// last written (the migration crate's `BySubject::WrittenAt`).
fn written_at() -> sea_orm::sea_query::DynIden {
    Alias::new("written_at").into_iden()
}

/// A stored id: the hash of a session id (see `stored_id`).
pub(crate) type Key = Vec<u8>;

/// What `create` and `update` write.
pub(crate) struct Record {
    /// The bytes of the state's JSON text.
    pub(crate) state: Vec<u8>,
    /// The subject's UTF-8 bytes.
    pub(crate) subject: Option<Vec<u8>>,
    /// The sign-in's UTF-8 bytes.
    pub(crate) sign_in: Option<Vec<u8>>,
    pub(crate) ttl_ms: i64,
}

/// What a store's writes do beyond the contract: the columns taken from the state whose keys it
/// knows, and whether an absolute lifetime caps the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Writes {
    pub(crate) subject: bool,
    pub(crate) sign_in: bool,
    pub(crate) lifetime_capped: bool,
}

/// How long a revoked sign-in is kept after the deadline of the session it ended (one hour).
pub(crate) const REVOKED_GRACE_MS: i64 = 3_600_000;

/// Which of a subject's sessions [`Queries::end_of`] deletes.
pub(crate) enum Which {
    All,
    Only(Key),
    AllBut(Key),
    /// Those created before this instant (Unix epoch milliseconds).
    CreatedBefore(i64),
    /// Those among these ids (the sessions a cap ends).
    Ids(Vec<Key>),
}

/// The `sign_in` of a subject's guard row in the revoked sign-ins table (see [`Queries::guard`]):
/// 0xFF appears in no UTF-8 text, so no sign-in of the app can be mistaken for it.
pub(crate) const GUARD_SIGN_IN: [u8; 1] = [0xFF];

/// The alias of the database clock's reading in [`Queries::walk_chunk`].
pub(crate) const WALK_NOW: &str = "db_now";

/// The alias under which [`Queries::count_of`] returns its count.
pub(crate) const COUNT: &str = "count";
