//! Every statement the store runs, built with sea-query from the entity's columns.
//!
//! Liveness is always decided inside the statement, against [`now_millis`]: a record is live
//! when `deadline > now` and expired when `deadline <= now`.

use pavex_session_sea_orm_entity::sessions::Column;
use pavex_session_sea_orm_migration::{SessionsTable, now_millis};
use sea_orm::{
    DbBackend, DbErr, Iterable,
    sea_query::{
        Alias, DeleteStatement, Expr, ExprTrait, InsertStatement, IntoColumnRef, LockBehavior,
        LockType, Order, Query, SelectStatement, TableRef, UpdateStatement,
    },
};
use std::num::NonZeroUsize;

/// The alias under which [`Queries::load`] returns the state, the bytes of its JSON text.
pub(crate) const STATE: &str = "state";

/// The alias under which [`Queries::load`] returns the remaining time to live, in milliseconds.
pub(crate) const TTL_MS: &str = "ttl_ms";

/// Builds the store's statements for one table on one backend. The columns are the entity's;
/// the table is the store's [`SessionsTable`].
#[derive(Debug, Clone)]
pub(crate) struct Queries {
    backend: DbBackend,
    table: TableRef,
    now: Expr,
}

impl Queries {
    pub(crate) fn new(backend: DbBackend, table: &SessionsTable) -> Result<Self, DbErr> {
        Ok(Self {
            backend,
            table: table.table_ref(),
            now: now_millis(backend)?,
        })
    }

    /// `INSERT` a new record; fails with a unique violation when `id` is taken.
    pub(crate) fn insert(&self, id: Key, record: Record) -> Result<InsertStatement, DbErr> {
        let mut insert = Query::insert();
        insert
            .into_table(self.table.clone())
            .columns([
                Column::Id,
                Column::Deadline,
                Column::State,
                Column::Subject,
                Column::CreatedAt,
                Column::UpdatedAt,
            ])
            .values([
                Expr::val(id),
                self.deadline_in(record.ttl_ms),
                Expr::val(record.state),
                Expr::val(record.subject),
                self.now.clone(),
                self.now.clone(),
            ])
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        Ok(insert)
    }

    /// Replace the record `id` if it has expired: a new session under a reused id.
    pub(crate) fn overwrite_expired(&self, id: Key, record: Record) -> UpdateStatement {
        self.set_record(record)
            .value(Column::CreatedAt, self.now.clone())
            .and_where(id_is(id))
            .and_where(self.expired())
            .to_owned()
    }

    /// Replace the state, subject and deadline of the record `id` if it is live.
    pub(crate) fn update(&self, id: Key, record: Record) -> UpdateStatement {
        self.set_record(record)
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// Replace the state and deadline of the record `id` if it is live, leaving its subject as
    /// it is: the update of a store that does not know the subject key.
    pub(crate) fn update_keeping_subject(
        &self,
        id: Key,
        state: Vec<u8>,
        ttl_ms: i64,
    ) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Column::State, state)
            .value(Column::Deadline, self.deadline_in(ttl_ms))
            .value(Column::UpdatedAt, self.now.clone())
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// Move the deadline of the live record `id`, leaving its state alone.
    pub(crate) fn update_ttl(&self, id: Key, ttl_ms: i64) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Column::Deadline, self.deadline_in(ttl_ms))
            .value(Column::UpdatedAt, self.now.clone())
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// The state ([`STATE`]) and remaining time to live ([`TTL_MS`]) of the live record `id`.
    ///
    /// The state comes back as the bytes of its JSON text, which the store parses straight into
    /// the session's map; the server neither casts nor converts it.
    pub(crate) fn load(&self, id: Key) -> SelectStatement {
        Query::select()
            .expr_as(Expr::col(Column::State), STATE)
            .expr_as(Expr::col(Column::Deadline).sub(self.now.clone()), TTL_MS)
            .from(self.table.clone())
            .and_where(id_is(id))
            .and_where(self.live())
            .to_owned()
    }

    /// The ids, among `a` and `b`, of the live records.
    pub(crate) fn live_among(&self, a: Key, b: Key) -> SelectStatement {
        Query::select()
            .column(Column::Id)
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
    pub(crate) fn change_id(&self, old: Key, new: Key) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Column::Id, new)
            .and_where(id_is(old))
            .and_where(self.live())
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
    /// - SQLite (no `DELETE ... LIMIT` in the bundled build): the same sub-query, without a lock;
    ///   SQLite runs one write at a time.
    pub(crate) fn delete_expired(&self, batch_size: Option<NonZeroUsize>) -> DeleteStatement {
        let mut delete = Query::delete();
        delete.from_table(self.table.clone());
        let Some(batch_size) = batch_size else {
            return delete.and_where(self.expired()).to_owned();
        };
        // The drivers bind a LIMIT as a signed 64-bit integer: a larger batch means "all".
        let limit = Ord::min(
            u64::try_from(batch_size.get()).unwrap_or(u64::MAX),
            i64::MAX.unsigned_abs(),
        );
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
            _ => Expr::col(Column::Id).in_subquery(self.oldest_expired(Column::Id, limit)),
        };
        delete.and_where(batch).to_owned()
    }

    /// `column` of the `limit` expired records with the oldest deadlines.
    fn oldest_expired(&self, column: impl IntoColumnRef, limit: u64) -> SelectStatement {
        Query::select()
            .column(column)
            .from(self.table.clone())
            .and_where(self.expired())
            .order_by(Column::Deadline, Order::Asc)
            .limit(limit)
            .to_owned()
    }

    fn set_record(&self, record: Record) -> UpdateStatement {
        Query::update()
            .table(self.table.clone())
            .value(Column::State, record.state)
            .value(Column::Subject, record.subject)
            .value(Column::Deadline, self.deadline_in(record.ttl_ms))
            .value(Column::UpdatedAt, self.now.clone())
            .to_owned()
    }

    /// Every column of the live sessions of `subject`, the most recently written first.
    pub(crate) fn sessions_of(&self, subject: Vec<u8>) -> SelectStatement {
        Query::select()
            .columns(Column::iter())
            .from(self.table.clone())
            .and_where(Expr::col(Column::Subject).eq(subject))
            .and_where(self.live())
            .order_by(Column::UpdatedAt, Order::Desc)
            .order_by(Column::Id, Order::Asc)
            .to_owned()
    }

    /// How many live sessions `subject` has, as `count`.
    pub(crate) fn count_of(&self, subject: Vec<u8>) -> SelectStatement {
        Query::select()
            .expr_as(Expr::col(Column::Id).count(), COUNT)
            .from(self.table.clone())
            .and_where(Expr::col(Column::Subject).eq(subject))
            .and_where(self.live())
            .to_owned()
    }

    /// Delete the live sessions of `subject`: all of them, or the one `only`, or all but `except`.
    pub(crate) fn end_of(&self, subject: Vec<u8>, which: Which) -> DeleteStatement {
        let mut delete = Query::delete();
        delete
            .from_table(self.table.clone())
            .and_where(Expr::col(Column::Subject).eq(subject))
            .and_where(self.live());
        match which {
            Which::All => {}
            Which::Only(id) => {
                delete.and_where(id_is(id));
            }
            Which::AllBut(id) => {
                delete.and_where(Expr::col(Column::Id).ne(id));
            }
        }
        delete
    }

    fn deadline_in(&self, ttl_ms: i64) -> Expr {
        self.now.clone().add(ttl_ms)
    }

    fn live(&self) -> Expr {
        Expr::col(Column::Deadline).gt(self.now.clone())
    }

    fn expired(&self) -> Expr {
        Expr::col(Column::Deadline).lte(self.now.clone())
    }
}

fn id_is(id: Key) -> Expr {
    Expr::col(Column::Id).eq(id)
}

/// A stored id: the hash of a session id (see `stored_id`).
pub(crate) type Key = Vec<u8>;

/// What `create` and `update` write.
pub(crate) struct Record {
    /// The bytes of the state's JSON text.
    pub(crate) state: Vec<u8>,
    /// The subject's UTF-8 bytes.
    pub(crate) subject: Option<Vec<u8>>,
    pub(crate) ttl_ms: i64,
}

/// Which of a subject's sessions [`Queries::end_of`] deletes.
pub(crate) enum Which {
    All,
    Only(Key),
    AllBut(Key),
}

/// The alias under which [`Queries::count_of`] returns its count.
pub(crate) const COUNT: &str = "count";
