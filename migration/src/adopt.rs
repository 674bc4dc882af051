//! Adopting `pavex_session_sqlx` 0.2's `sessions` table, so that moving to this store logs
//! nobody out: every live session is copied, under the hash of its id, with its state and
//! deadline (their seconds become milliseconds), in batches.

use crate::{
    MIGRATION_TABLE, MismatchKind, STORED_ID_LEN, SessionsMigrator, SessionsTable,
    clock::now_millis,
    is_recorded,
    m20261206_000001_create_sessions_table::{BySubject, Sessions as Ours},
    migrations, stored_id,
    subject::subject_of,
    verify::{TableState, inspect, read_definition},
};
use sea_orm_migration::{
    MigratorTraitSelf, SchemaManagerConnection,
    prelude::*,
    sea_orm::{
        ConnectionTrait, DatabaseConnection, DbBackend, SqlErr, TransactionTrait, prelude::Uuid,
    },
};
use std::{collections::HashSet, num::NonZeroU64};

/// The table `pavex_session_sqlx` keeps its sessions in (its name is fixed).
pub const SQLX_SESSIONS_TABLE: &str = "sessions";

/// What `pavex_session_sqlx`'s table is renamed to when our table takes its name: kept, with
/// every row, for a rollback (see the README's runbook), until you drop it.
pub const SQLX_BACKUP_TABLE: &str = "pavex_session_sqlx_sessions";

/// The size of the states after which a batch of copies is written (4 MiB; MariaDB's default
/// `max_allowed_packet` is 16 MiB).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Where the sessions are copied before our table takes the name `sessions`.
pub const ADOPTION_STAGING_TABLE: &str = "pavex_session_sea_orm_adopting";

/// The name this migration has in a migration history, for the default table.
const MIGRATION_NAME: &str = "m20261201_000002_adopt_pavex_session_sqlx_table";

/// Turns `pavex_session_sqlx` 0.2's `sessions` table into ours, keeping every live session:
/// the same cookie finds the same state, with the same deadline (to their precision, whole
/// seconds); expired sessions are left behind.
///
/// 1. The sessions are copied, [batch](Self::with_batch_size) by batch along their primary
///    key, into a table of our schema: [`ADOPTION_STAGING_TABLE`] when the store keeps its
///    sessions in `sessions` (the default), else the store's own table. In the staging table,
///    which no store uses yet, a session copied on an earlier run is refreshed (state and
///    deadline); in the store's own table a session already there is never overwritten.
/// 2. Into the staging table only: sessions copied on an earlier run that are no longer live in
///    their table (a sign-out since) are deleted, so that no ended session comes back.
/// 3. Then, at once, their table is renamed [`SQLX_BACKUP_TABLE`] and the staging table takes
///    the name `sessions`.
///
/// Run it again after a stop at any point: it picks up where the tables are. Two instances
/// running it at once copy the same rows to the same keys, and only one renames. Once it has
/// finished it does nothing: [`run`](Self::run) records it in [`MIGRATION_TABLE`] (a migrator
/// records it in its own history), so a session signed out since never comes back from their
/// table. On a database without their table it does nothing either. A `sessions` table that is
/// neither theirs nor ours is refused, untouched. Sessions that cannot be read (an id that is
/// not a UUID, a state that is not a JSON object) or whose subject cannot be stored are skipped,
/// counted, and logged with their handle.
///
/// Run it while the old version of the app is stopped, or run [`copy_only`](Self::copy_only)
/// first while it serves: see the README's runbook.
///
/// ```no_run
/// use pavex_session_sea_orm_migration::{AdoptPavexSessionSqlxTable, SessionsTable};
///
/// # async fn run(db: &sea_orm_migration::sea_orm::DatabaseConnection) -> Result<(), sea_orm_migration::sea_orm::DbErr> {
/// let report = AdoptPavexSessionSqlxTable::new(SessionsTable::default())
///     .with_subject_key("user_id")
///     .run(db)
///     .await?;
/// println!("{} sessions adopted", report.copied);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AdoptPavexSessionSqlxTable {
    target: SessionsTable,
    batch_size: NonZeroU64,
    subject_key: Option<String>,
    copy_only: bool,
    name: String,
}

/// What an adoption did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdoptionReport {
    /// Live sessions written into our table on this run.
    pub copied: u64,
    /// Sessions that could not be read and were left behind.
    pub unreadable: u64,
    /// Sessions left behind because their subject cannot be stored (not a string or a number,
    /// longer than 255 characters, or holding a NUL character); each is logged with its handle.
    pub subject_refused: u64,
    /// Sessions deleted from the staging table because they were no longer live in theirs.
    pub pruned: u64,
    /// Whether this run gave our table the name `sessions`.
    pub renamed: bool,
    /// Whether there was nothing to do (adopted already, or no table of theirs).
    pub nothing_to_do: bool,
}

impl AdoptPavexSessionSqlxTable {
    /// Adopts their `sessions` table into `target`, the store's table.
    pub fn new(target: SessionsTable) -> Self {
        let name = target.migration_name(MIGRATION_NAME);
        Self {
            target,
            batch_size: NonZeroU64::new(1_000).unwrap_or(NonZeroU64::MIN),
            subject_key: None,
            copy_only: false,
            name,
        }
    }

    /// Sessions read and written per statement (default 1 000; at most `i64::MAX`, the largest
    /// LIMIT the drivers bind). A batch is also written early once its states reach
    /// [`MAX_BATCH_BYTES`], so that a statement stays under MySQL's `max_allowed_packet`.
    pub fn with_batch_size(self, batch_size: NonZeroU64) -> Self {
        let batch_size = NonZeroU64::new(Ord::min(batch_size.get(), i64::MAX.unsigned_abs()))
            .unwrap_or(NonZeroU64::MIN);
        Self { batch_size, ..self }
    }

    /// Fills the `subject` column from this state key, as `SeaOrmSessionStore::with_subject_key`
    /// does (a string or a number; anything else leaves the subject empty).
    pub fn with_subject_key(self, key: impl Into<String>) -> Self {
        Self {
            subject_key: Some(key.into()),
            ..self
        }
    }

    /// Copies only (step 1), leaving their table in use: the slow part, done while the old
    /// version still serves. A later full run refreshes what changed and renames.
    pub fn copy_only(self) -> Self {
        Self {
            copy_only: true,
            ..self
        }
    }

    /// Runs the adoption on `db`; once it has finished (not [`copy_only`](Self::copy_only)),
    /// records it in [`MIGRATION_TABLE`] so that a later run does nothing.
    pub async fn run(&self, db: &DatabaseConnection) -> Result<AdoptionReport, DbErr> {
        let report = self.adopt(&SchemaManager::new(db)).await?;
        if !self.copy_only && !report.nothing_to_do {
            let migrator = SessionsMigrator::new(self.target.clone());
            migrator.install(db).await?;
            let record = Query::insert()
                .into_table(MIGRATION_TABLE)
                .columns(["version", "applied_at"])
                .values([self.name.clone().into(), Expr::val(now_seconds())])
                .map_err(|e| DbErr::Custom(e.to_string()))?
                .to_owned();
            // Another instance recorded it first: done all the same.
            if let Err(e) = db.execute(&record).await
                && !matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
            {
                return Err(e);
            }
        }
        Ok(report)
    }

    async fn adopt(&self, manager: &SchemaManager<'_>) -> Result<AdoptionReport, DbErr> {
        let db = manager.get_connection();
        let source = SessionsTable::default();
        let nothing_to_do = AdoptionReport {
            nothing_to_do: true,
            ..AdoptionReport::default()
        };
        // An earlier run finished (recorded in the migration table).
        if is_recorded(db, &[Box::new(self.clone())]).await? {
            return Ok(nothing_to_do);
        }
        match inspect(db, &source).await? {
            TableState::Missing | TableState::Ours(_) => return Ok(nothing_to_do),
            TableState::Refused(mismatch) if mismatch.kind() == MismatchKind::PavexSessionSqlx => {}
            TableState::Refused(mismatch) => return Err(DbErr::Migration(mismatch.to_string())),
        }
        let renaming = self.target == source;
        let staging = match renaming {
            true => named(ADOPTION_STAGING_TABLE)?,
            false => self.target.clone(),
        };
        if renaming
            && read_definition(db, &named(SQLX_BACKUP_TABLE)?)
                .await?
                .is_some()
        {
            return Err(DbErr::Migration(format!(
                "cannot adopt pavex_session_sqlx's table: {SQLX_BACKUP_TABLE}, where it would be \
                 kept, exists already (from an earlier adoption?); drop or rename it first"
            )));
        }
        // The staging table gets the current schema: every migration of ours, in order.
        for migration in migrations(staging.clone()) {
            migration.up(manager).await?;
        }

        let mut report = AdoptionReport::default();
        let seen = self.copy(db, &staging, renaming, &mut report).await?;
        if self.copy_only || !renaming {
            return Ok(report);
        }
        report.pruned = prune(db, &staging, &seen, self.batch_size).await?;
        rename(db).await?;
        report.renamed = true;
        tracing::info!(?report, "Adopted pavex_session_sqlx's sessions table");
        Ok(report)
    }

    /// Copies every live session of their table into `staging`; returns the keys written.
    async fn copy(
        &self,
        db: &SchemaManagerConnection<'_>,
        staging: &SessionsTable,
        refresh: bool,
        report: &mut AdoptionReport,
    ) -> Result<HashSet<[u8; STORED_ID_LEN]>, DbErr> {
        let backend = db.get_database_backend();
        let now = now_millis(backend)?;
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let select = their_live_sessions(backend, after.as_deref(), self.batch_size)?;
            let rows = db.query_all(&select).await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some(last.try_get::<String>("", "their_id")?);
            let (mut batch, mut entries, mut bytes) = (Vec::new(), Vec::new(), 0_usize);
            for row in &rows {
                let read = (
                    row.try_get::<String>("", "their_id"),
                    row.try_get::<i64>("", "deadline_ms"),
                    row.try_get::<String>("", "state"),
                );
                let (Ok(id), Ok(deadline), Ok(state)) = read else {
                    report.unreadable = report.unreadable.saturating_add(1);
                    continue;
                };
                let (Ok(uuid), Ok(serde_json::Value::Object(map))) = (
                    Uuid::parse_str(&id),
                    serde_json::from_str::<serde_json::Value>(&state),
                ) else {
                    report.unreadable = report.unreadable.saturating_add(1);
                    continue;
                };
                let key = stored_id(&uuid);
                let subject = self
                    .subject_key
                    .as_deref()
                    .map(|k| subject_of(k, map.get(k)));
                let subject = match subject.transpose() {
                    Ok(subject) => subject.flatten(),
                    Err(e) => {
                        report.subject_refused = report.subject_refused.saturating_add(1);
                        tracing::warn!(
                            // The handle a device list shows (the stored id in lowercase hex).
                            handle = %key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
                            reason = %e,
                            "A session of pavex_session_sqlx's table was not adopted: its \
                             subject cannot be stored"
                        );
                        continue;
                    }
                };
                seen.insert(key);
                bytes = bytes.saturating_add(state.len());
                let subject = subject.map(String::into_bytes);
                if let Some(subject) = &subject {
                    entries.push((subject.clone(), key.to_vec()));
                }
                batch.push([
                    Expr::val(key.to_vec()),
                    Expr::val(deadline),
                    Expr::val(state.into_bytes()),
                    Expr::val(subject),
                    now.clone(),
                    now.clone(),
                ]);
                if bytes >= MAX_BATCH_BYTES {
                    let (rows, subjects) =
                        (std::mem::take(&mut batch), std::mem::take(&mut entries));
                    let written = write_batch(db, staging, refresh, rows, subjects);
                    report.copied = report.copied.saturating_add(written.await?);
                    bytes = 0;
                }
            }
            let written = write_batch(db, staging, refresh, batch, entries).await?;
            report.copied = report.copied.saturating_add(written);
        }
        Ok(seen)
    }
}

/// Writes `rows` into `staging` in one `INSERT ... ON CONFLICT`: a session already there is
/// refreshed from theirs if `refresh` (the staging table, which no store uses yet), else left as
/// it is. Returns how many sessions it held. On MySQL the subject entries of those that have a
/// subject (`entries`: subject, stored id) are written first, as the store writes them.
async fn write_batch(
    db: &SchemaManagerConnection<'_>,
    staging: &SessionsTable,
    refresh: bool,
    rows: Vec<[Expr; 6]>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<u64, DbErr> {
    if rows.is_empty() {
        return Ok(0);
    }
    let backend = db.get_database_backend();
    if backend == DbBackend::MySql && !entries.is_empty() {
        let now = now_millis(backend)?;
        let mut insert = Query::insert();
        insert
            .into_table(staging.by_subject().table_ref())
            .columns([
                Ours::Subject.into_iden(),
                Ours::Id.into_iden(),
                BySubject::WrittenAt.into_iden(),
            ])
            .on_conflict(
                OnConflict::column(Ours::Subject)
                    .update_column(BySubject::WrittenAt)
                    .to_owned(),
            );
        for (subject, id) in entries {
            insert
                .values([Expr::val(subject), Expr::val(id), now.clone()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        db.execute(&insert).await?;
    }
    let count = <u64 as TryFrom<usize>>::try_from(rows.len()).unwrap_or(u64::MAX);
    let mut on_conflict = OnConflict::column(Ours::Id);
    match refresh {
        true => on_conflict.update_columns([Ours::Deadline, Ours::State, Ours::Subject]),
        false => on_conflict.do_nothing_on([Ours::Id]),
    };
    let mut insert = Query::insert();
    insert
        .into_table(staging.table_ref())
        .columns([
            Ours::Id,
            Ours::Deadline,
            Ours::State,
            Ours::Subject,
            Ours::CreatedAt,
            Ours::UpdatedAt,
        ])
        .on_conflict(on_conflict);
    for row in rows {
        insert
            .values(row)
            .map_err(|e| DbErr::Custom(e.to_string()))?;
    }
    db.execute(&insert).await?;
    Ok(count)
}

/// The next `limit` live sessions of their table after `after`, in primary-key order: `id` (as
/// text, under another name than `id`: PostgreSQL would sort by the alias, the text, instead of
/// walking the primary key), `deadline_ms` and `state` (JSON text).
fn their_live_sessions(
    backend: DbBackend,
    after: Option<&str>,
    limit: NonZeroU64,
) -> Result<SelectStatement, DbErr> {
    let deadline_ms = match backend {
        DbBackend::Postgres => {
            Expr::cust("CAST(FLOOR(EXTRACT(EPOCH FROM \"deadline\") * 1000) AS BIGINT)")
        }
        _ => Expr::col("deadline").mul(1000),
    };
    let (id, state) = match backend {
        DbBackend::MySql => (Expr::col("id"), Expr::col("state").cast_as("char")),
        // SQLite keeps whatever a row holds: the casts make every value text, and a state that
        // is not JSON text then fails to parse (an unreadable session) instead of to decode.
        _ => (
            Expr::col("id").cast_as("text"),
            Expr::col("state").cast_as("text"),
        ),
    };
    let mut select = Query::select();
    select
        .expr_as(id, "their_id")
        .expr_as(deadline_ms.clone(), "deadline_ms")
        .expr_as(state, "state")
        .from(SQLX_SESSIONS_TABLE)
        .and_where(deadline_ms.gt(now_millis(backend)?))
        .order_by("id", Order::Asc)
        .limit(limit.get());
    if let Some(after) = after {
        let after = match backend {
            DbBackend::Postgres => Expr::val(after).cast_as("uuid"),
            _ => Expr::val(after),
        };
        select.and_where(Expr::col("id").gt(after));
    }
    Ok(select)
}

/// The time now in whole seconds since the Unix epoch, as sea-orm-migration records it.
fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| TryFrom::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One of this module's own tables (its name is a valid constant).
fn named(name: &str) -> Result<SessionsTable, DbErr> {
    SessionsTable::new(name).map_err(|e| DbErr::Migration(e.to_string()))
}

/// Deletes the sessions of `staging` whose key is not in `keep`, walking its primary key.
async fn prune(
    db: &SchemaManagerConnection<'_>,
    staging: &SessionsTable,
    keep: &HashSet<[u8; STORED_ID_LEN]>,
    batch_size: NonZeroU64,
) -> Result<u64, DbErr> {
    let mut pruned = 0_u64;
    let mut after: Option<Vec<u8>> = None;
    loop {
        // The next batch of stored ids: a walk over the whole table that costs O(batch) a step.
        let mut select = Query::select();
        select
            .column(Ours::Id)
            .from(staging.table_ref())
            .order_by(Ours::Id, Order::Asc)
            .limit(batch_size.get());
        if let Some(after) = after.take() {
            select.and_where(Expr::col(Ours::Id).gt(after));
        }
        let ids = db
            .query_all(&select)
            .await?
            .iter()
            .map(|row| row.try_get::<Vec<u8>>("", "id"))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let gone: Vec<Vec<u8>> = ids
            .into_iter()
            .filter(|id| {
                <[u8; STORED_ID_LEN]>::try_from(id.as_slice()).is_ok_and(|k| !keep.contains(&k))
            })
            .collect();
        if !gone.is_empty() {
            let delete = Query::delete()
                .from_table(staging.table_ref())
                .and_where(Expr::col(Ours::Id).is_in(gone))
                .to_owned();
            pruned = pruned.saturating_add(db.execute(&delete).await?.rows_affected());
        }
        after = Some(last);
    }
    Ok(pruned)
}

/// Their table becomes [`SQLX_BACKUP_TABLE`] and the staging table `sessions` (with its revoked
/// sign-ins), at once: in one transaction (PostgreSQL, SQLite) or one `RENAME TABLE` (MySQL), so
/// that no request finds no `sessions` table.
async fn rename(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let backend = db.get_database_backend();
    let staging = named(ADOPTION_STAGING_TABLE)?.beside(backend);
    let ours = SessionsTable::default().beside(backend);
    let mut renames = vec![
        (SQLX_SESSIONS_TABLE, SQLX_BACKUP_TABLE),
        (ADOPTION_STAGING_TABLE, SQLX_SESSIONS_TABLE),
    ];
    renames.extend(
        staging
            .iter()
            .zip(&ours)
            .map(|(from, to)| (from.name(), to.name())),
    );
    match backend {
        DbBackend::MySql => {
            // sea-query renders one table per RENAME; MySQL renames a list atomically. The names
            // are this module's constants and validated table names.
            let list: Vec<String> = renames
                .iter()
                .map(|(from, to)| format!("`{from}` TO `{to}`"))
                .collect();
            let list = list.join(", ");
            db.execute_unprepared(&format!("RENAME TABLE {list}"))
                .await?;
        }
        _ => {
            let transaction = db.begin().await?;
            for (from, to) in renames {
                transaction
                    .execute(
                        &Table::rename()
                            .table(Alias::new(from), Alias::new(to))
                            .to_owned(),
                    )
                    .await?;
            }
            transaction.commit().await?;
        }
    }
    Ok(())
}

impl MigrationName for AdoptPavexSessionSqlxTable {
    fn name(&self) -> &str {
        &self.name
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AdoptPavexSessionSqlxTable {
    /// Each batch commits on its own, so a big table is never one huge transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.adopt(manager).await.map(|_| ())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(format!(
            "the adoption of pavex_session_sqlx's table is undone by hand: see the README's \
             runbook ({SQLX_BACKUP_TABLE} holds their table)"
        )))
    }
}
