//! A schema change after 0.1.0, rehearsed: a second migration, written here as a future release
//! would write it, upgrades a table of the published schema that already holds sessions, from
//! several instances at once, on every backend and on a Galera cluster, without losing or changing
//! a row; it refuses a table that is not ours, and on PostgreSQL it replaces the invalid index a
//! failed `CREATE INDEX CONCURRENTLY` leaves behind.
//!
//! `AddLastSeenIp` adds a nullable column, `last_seen_ip` (`bytea`, `varbinary(16)`, blob), and
//! an index on it, `idx_<table>_last_seen_ip`. What it does, and why (CONTRIBUTING.md has the
//! rules):
//!
//! - It checks that the table is ours (`check_table`) before its first statement on it.
//! - It reads the catalog and adds only what is missing, so running it again does nothing, and
//!   an instance that lost a race to another one finds the work done.
//! - It blocks no traffic: the column is nullable without a default (PostgreSQL: a catalog
//!   change, no table rewrite; MariaDB: `ALGORITHM=INSTANT`), and the index is built with
//!   `CREATE INDEX CONCURRENTLY` on PostgreSQL (outside a transaction: `use_transaction` is
//!   `Some(false)`) and online on MariaDB (`ALGORITHM=INPLACE LOCK=NONE`).

mod common;

use common::{Backend, TestDb, fresh_db, store_on};
use futures::{StreamExt, future::join_all, stream};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{SeaOrmSessionStore, SessionHandle, entity::sessions};
use pavex_session_sea_orm_migration::{MIGRATION_TABLE, SessionsTable, check_table, retrying};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    FromQueryResult, QueryResult, RuntimeErr, Schema, Statement, TransactionTrait,
};
use sea_orm_migration::{MigratorTraitSelf, prelude::*, schema::var_binary_null, seaql_migrations};
use serde_json::{Value, json};
use std::{borrow::Cow, collections::HashMap, time::Duration};

/// The column the future migration adds.
const LAST_SEEN_IP: &str = "last_seen_ip";

/// The future migration's name in the history: after the published one, by its date.
const ADD_LAST_SEEN_IP: &str = "m20270115_000001_add_last_seen_ip";

/// How many sessions the upgraded table holds.
const SESSIONS: usize = 2_000;

/// How many instances run the upgrade at once (on a cluster: one per node).
const INSTANCES: usize = 4;

// ---------------------------------------------------------------------------------------------
// The future migration
// ---------------------------------------------------------------------------------------------

/// Adds `last_seen_ip` and its index to a sessions table of the published schema, in the
/// connection's default schema (where `has_column` and `has_index` look). On PostgreSQL it needs
/// two connections of the pool: one holds the instance's turn while the other works.
#[derive(Debug, Clone, Default)]
struct AddLastSeenIp {
    table: SessionsTable,
}

impl AddLastSeenIp {
    fn index_name(&self) -> String {
        format!("idx_{}_last_seen_ip", self.table.name())
    }

    fn quoted_table(&self) -> String {
        // Names are checked identifiers (lowercase letters, digits, `_`).
        match self.table.schema() {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.table.name()),
            None => format!("\"{}\"", self.table.name()),
        }
    }

    /// PostgreSQL: waits until no other instance is running this migration, and returns the
    /// transaction that holds the turn (an advisory lock) until it ends.
    ///
    /// Two `CREATE INDEX CONCURRENTLY` on one table deadlock: the second waits for the table's
    /// lock holding a snapshot, and the first, before it ends, waits for every older snapshot
    /// to go. So instances take turns, and the waiting is done between statements: each try
    /// is a short transaction of its own, and the one that holds the turn stays idle, with no
    /// snapshot for a build to wait for (READ COMMITTED), and no lock on the table.
    async fn take_turn(&self, manager: &SchemaManager<'_>) -> Result<DatabaseTransaction, DbErr> {
        let db = manager.get_connection();
        let key = format!("pavex_session_sea_orm {ADD_LAST_SEEN_IP} {}", self.table);
        let started = std::time::Instant::now();
        loop {
            let turn = db.begin().await?;
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_try_advisory_xact_lock(hashtext($1)) AS mine",
                [key.clone().into()],
            );
            let mine = match turn.query_one_raw(statement).await? {
                Some(row) => row.try_get::<bool>("", "mine")?,
                None => false,
            };
            if mine {
                return Ok(turn);
            }
            turn.rollback().await?;
            if started.elapsed() > Duration::from_secs(600) {
                return Err(DbErr::Custom(format!(
                    "another instance has been running {ADD_LAST_SEEN_IP} for 10 minutes"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Adds the column unless it is there.
    async fn add_column(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        if manager.has_column(self.table.name(), LAST_SEEN_IP).await? {
            return Ok(());
        }
        let mut alter = Table::alter();
        alter
            .table(self.table.table_ref())
            .add_column(var_binary_null(Alias::new(LAST_SEEN_IP), 16));
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let added = match backend {
            // A nullable column without a default: a catalog change, no rewrite. It still takes
            // an ACCESS EXCLUSIVE lock for a moment; a bounded wait for it keeps the statement
            // from queuing reads and writes behind a long transaction (and fails, to be retried).
            DbBackend::Postgres => {
                async {
                    let transaction = db.begin().await?;
                    transaction
                        .execute_unprepared("SET LOCAL lock_timeout = '5s'")
                        .await?;
                    transaction.execute(&alter).await?;
                    transaction.commit().await
                }
                .await
            }
            // INSTANT: the server refuses rather than copy the table.
            DbBackend::MySql => db
                .execute_unprepared(&format!("{}, ALGORITHM=INSTANT", backend.build(&alter).sql))
                .await
                .map(drop),
            _ => manager.alter_table(alter).await,
        };
        match added {
            Ok(()) => Ok(()),
            // Another instance added it meanwhile (a duplicate column, a lock it held).
            Err(_) if manager.has_column(self.table.name(), LAST_SEEN_IP).await? => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Builds the index unless a valid one of that name is there.
    async fn add_index(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let name = self.index_name();
        match self.index_state(manager).await? {
            Some(IndexState::Valid) => return Ok(()),
            Some(IndexState::Invalid) => self.drop_invalid_leftover(manager).await?,
            None => {}
        }
        let mut index = Index::create();
        index
            .name(&name)
            .table(self.table.table_ref())
            .col(Alias::new(LAST_SEEN_IP));
        match backend {
            DbBackend::Postgres => {
                // Reads and writes go on while it builds. Instances take turns (`take_turn`);
                // `IF NOT EXISTS` still skips an index of that name made meanwhile.
                index.concurrently().if_not_exists();
                manager.create_index(index).await?;
                // Skipped because a build by another instance failed, or failed here: the next
                // attempt drops the leftover and builds again.
                if self.index_state(manager).await? != Some(IndexState::Valid) {
                    return Err(DbErr::Custom(format!(
                        "the index {name} is not valid after its build"
                    )));
                }
            }
            DbBackend::MySql => {
                // MySQL has no `CREATE INDEX IF NOT EXISTS`: it was checked above, and an
                // instance that lost the race gets 1061, "duplicate key name".
                let sql = format!("{} ALGORITHM=INPLACE LOCK=NONE", backend.build(&index).sql);
                match db.execute_unprepared(&sql).await {
                    Ok(_) => {}
                    Err(e) if mysql_error_number(&e) == Some(1061) => {}
                    Err(e) => return Err(e),
                }
            }
            _ => {
                index.if_not_exists();
                manager.create_index(index).await?;
            }
        }
        Ok(())
    }

    /// Whether the index exists, and is valid (only PostgreSQL has invalid ones).
    async fn index_state(&self, manager: &SchemaManager<'_>) -> Result<Option<IndexState>, DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            return self.pg_index_state(manager.get_connection()).await;
        }
        let has = manager
            .has_index(self.table.name(), self.index_name())
            .await?;
        Ok(has.then_some(IndexState::Valid))
    }

    /// PostgreSQL's [`index_state`](Self::index_state), on any connection (a transaction too).
    async fn pg_index_state<C: ConnectionTrait>(
        &self,
        db: &C,
    ) -> Result<Option<IndexState>, DbErr> {
        let sql = "SELECT i.indisvalid AS valid FROM pg_index i
                   JOIN pg_class ic ON ic.oid = i.indexrelid
                   JOIN pg_class c ON c.oid = i.indrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE ic.relname = $1 AND c.relname = $2
                     AND n.nspname = COALESCE($3, current_schema())";
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [
                self.index_name().into(),
                self.table.name().into(),
                self.table.schema().map(str::to_owned).into(),
            ],
        );
        Ok(match db.query_one_raw(statement).await? {
            None => None,
            Some(row) => match row.try_get::<bool>("", "valid")? {
                true => Some(IndexState::Valid),
                false => Some(IndexState::Invalid),
            },
        })
    }

    /// Drops an invalid index of that name, if it is a failed build's leftover (PostgreSQL).
    ///
    /// An invalid index is also what another instance's build looks like while it runs (its
    /// first phase commits the index, invalid). A build holds a SHARE UPDATE EXCLUSIVE lock on
    /// the table until it ends, so this waits for that lock (which blocks no read or write),
    /// then looks again: still invalid, nobody is building it.
    async fn drop_invalid_leftover(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let transaction = db.begin().await?;
        transaction
            .execute_unprepared("SET LOCAL lock_timeout = '30s'")
            .await?;
        transaction
            .execute_unprepared(&format!(
                "LOCK TABLE {} IN SHARE UPDATE EXCLUSIVE MODE",
                self.quoted_table()
            ))
            .await?;
        let state = self.pg_index_state(&transaction).await?;
        transaction.commit().await?;
        if state == Some(IndexState::Invalid) {
            let mut drop = Index::drop();
            drop.name(self.index_name())
                .table(self.table.table_ref())
                .if_exists()
                .concurrently();
            manager.drop_index(drop).await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IndexState {
    Valid,
    Invalid,
}

/// The MySQL/MariaDB error number of `e`, if it is a MySQL error.
fn mysql_error_number(e: &DbErr) -> Option<u16> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e
            .as_database_error()?
            .try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>()
            .map(|e| e.number()),
        _ => None,
    }
}

impl MigrationName for AddLastSeenIp {
    fn name(&self) -> &str {
        ADD_LAST_SEEN_IP
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddLastSeenIp {
    /// `CREATE INDEX CONCURRENTLY` cannot run in a transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Ours, of a schema this version knows, or not one statement on it. A refusal is a
        // `DbErr::Migration`, which `retrying` does not retry.
        check_table(manager.get_connection(), &self.table).await?;
        let turn = match manager.get_database_backend() {
            DbBackend::Postgres => Some(self.take_turn(manager).await?),
            _ => None,
        };
        self.add_column(manager).await?;
        self.add_index(manager).await?;
        if let Some(turn) = turn {
            turn.commit().await?;
        }
        Ok(())
    }
}

/// The published migrations, in order: today one, `CreateSessionsTable::default()`.
fn published() -> Vec<Box<dyn MigrationTrait>> {
    pavex_session_sea_orm_migration::migrations(SessionsTable::default())
}

/// What the history holds once the future migration ran: every migration's name, once.
fn upgraded_history() -> Vec<String> {
    FutureMigrator
        .migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect()
}

/// The migrator of a release with the future migration: the published one, then the new one,
/// with the store's history table (and only its own rows of it).
struct FutureMigrator;

#[async_trait::async_trait]
impl MigratorTraitSelf for FutureMigrator {
    fn migrations(&self) -> Vec<Box<dyn MigrationTrait>> {
        let mut migrations = published();
        migrations.push(Box::new(AddLastSeenIp::default()));
        migrations
    }

    fn migration_table_name(&self) -> DynIden {
        MIGRATION_TABLE.into_iden()
    }

    async fn get_migration_models<C>(&self, db: &C) -> Result<Vec<seaql_migrations::Model>, DbErr>
    where
        C: ConnectionTrait,
    {
        self.install(db).await?;
        let names: Vec<String> = self
            .migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect();
        let select = Query::select()
            .columns([
                seaql_migrations::Column::Version,
                seaql_migrations::Column::AppliedAt,
            ])
            .from(MIGRATION_TABLE)
            .and_where(Expr::col(seaql_migrations::Column::Version).is_in(names))
            .order_by(seaql_migrations::Column::Version, Order::Asc)
            .to_owned();
        db.query_all(&select)
            .await?
            .iter()
            .map(|row| seaql_migrations::Model::from_query_result(row, ""))
            .collect()
    }
}

/// What an instance of the new release runs at start: the migrator, retried as the store's own
/// `migrate()` is (a race lost to another instance fails once, the next run finds the work done).
async fn upgrade(db: &DatabaseConnection) -> Result<(), DbErr> {
    retrying(|| FutureMigrator.up(db, None)).await
}

// ---------------------------------------------------------------------------------------------
// What the tests look at, with their own SQL
// ---------------------------------------------------------------------------------------------

/// Every row of `sessions`, ordered by id: the value of each column of `names`, as text.
async fn rows_of(db: &TestDb, names: &[String]) -> Vec<Vec<String>> {
    let sql = format!("SELECT {} FROM sessions ORDER BY id", names.join(", "));
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db_backend(), sql))
        .await
        .expect("read the table");
    rows.iter()
        .map(|row| names.iter().map(|name| cell(row, name)).collect())
        .collect()
}

/// Every row of `sessions`, in every column it has now.
async fn rows(db: &TestDb) -> Vec<Vec<String>> {
    rows_of(db, &names(&columns(db).await)).await
}

fn names(columns: &[(String, String, String)]) -> Vec<String> {
    columns.iter().map(|(name, _, _)| name.clone()).collect()
}

/// A value as text, with its type: every column of the table is an integer or binary.
fn cell(row: &QueryResult, column: &str) -> String {
    if let Ok(value) = row.try_get::<Option<i64>>("", column) {
        return format!("integer {value:?}");
    }
    if let Ok(value) = row.try_get::<Option<Vec<u8>>>("", column) {
        return format!("bytes {value:?}");
    }
    panic!("{column}: neither an integer nor binary")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.db
        .query_one_raw(Statement::from_string(db.db_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

fn text(row: &QueryResult, column: &str) -> String {
    // MySQL's catalog answers in binary strings on some servers.
    row.try_get::<String>("", column)
        .or_else(|_| {
            row.try_get::<Vec<u8>>("", column)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_else(|e| panic!("{column}: {e}"))
}

/// The columns of `sessions`: name, declared type, nullable.
async fn columns(db: &TestDb) -> Vec<(String, String, String)> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => {
            "SELECT column_name AS name, data_type AS data_type, is_nullable AS nullable
             FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = 'sessions'
             ORDER BY ordinal_position"
        }
        DbBackend::MySql => {
            "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS data_type, IS_NULLABLE AS nullable
             FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sessions'
             ORDER BY ORDINAL_POSITION"
        }
        _ => {
            "SELECT name, type AS data_type,
                    CASE WHEN \"notnull\" = 0 THEN 'YES' ELSE 'NO' END AS nullable
             FROM pragma_table_info('sessions') ORDER BY cid"
        }
    };
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db_backend(), sql))
        .await
        .expect("read the columns");
    rows.iter()
        .map(|row| {
            (
                text(row, "name"),
                text(row, "data_type").to_lowercase(),
                text(row, "nullable"),
            )
        })
        .collect()
}

/// The history table's rows: version and applied_at.
async fn history(db: &TestDb) -> Vec<(String, i64)> {
    let sql = format!("SELECT version, applied_at FROM {MIGRATION_TABLE} ORDER BY version");
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db_backend(), sql))
        .await
        .expect("read the history");
    rows.iter()
        .map(|row| (text(row, "version"), row.try_get("", "applied_at").unwrap()))
        .collect()
}

/// Whether the new index exists, and is valid.
async fn new_index(db: &TestDb) -> Option<IndexState> {
    AddLastSeenIp::default()
        .index_state(&SchemaManager::new(&db.db))
        .await
        .expect("read the index")
}

/// The new index's `(indisvalid, indisunique)` (PostgreSQL).
async fn pg_index_flags(db: &TestDb) -> Option<(bool, bool)> {
    let sql = "SELECT i.indisvalid AS valid, i.indisunique AS is_unique FROM pg_index i
               JOIN pg_class ic ON ic.oid = i.indexrelid
               WHERE ic.relname = 'idx_sessions_last_seen_ip'
                 AND ic.relnamespace = current_schema()::regnamespace";
    let row = db
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()?;
    Some((
        row.try_get("", "valid").unwrap(),
        row.try_get("", "is_unique").unwrap(),
    ))
}

/// Connections standing for the instances of the new release: separate pools, or one per node
/// of a cluster. SQLite in memory has one connection, so its instances take turns on it.
async fn instances(db: &TestDb) -> Vec<DatabaseConnection> {
    match db.backend {
        Backend::SqliteMemory => vec![db.db.clone()],
        Backend::Galera => db.node_connections().to_vec(),
        _ => {
            let mut pools = Vec::new();
            for _ in 0..INSTANCES {
                let mut options = ConnectOptions::new(&db.url);
                options.max_connections(2).sqlx_logging(false);
                pools.push(
                    Database::connect(options)
                        .await
                        .expect("connect an instance"),
                );
            }
            pools
        }
    }
}

/// Runs the upgrade on every instance at once (in turn on SQLite in memory), and returns each
/// outcome.
async fn upgrade_from_every_instance(
    db: &TestDb,
    instances: &[DatabaseConnection],
) -> Vec<Result<(), DbErr>> {
    if db.backend == Backend::SqliteMemory {
        let mut outcomes = Vec::new();
        for _ in 0..INSTANCES {
            outcomes.push(upgrade(&instances[0]).await);
        }
        return outcomes;
    }
    let tasks = instances
        .iter()
        .cloned()
        .map(|instance| tokio::spawn(async move { upgrade(&instance).await }));
    join_all(tasks)
        .await
        .into_iter()
        .map(|outcome| outcome.expect("no instance panicked"))
        .collect()
}

async fn close(db: &TestDb, instances: Vec<DatabaseConnection>) {
    if matches!(db.backend, Backend::SqliteMemory | Backend::Galera) {
        return;
    }
    for instance in instances {
        instance.close().await.ok();
    }
}

type State = HashMap<Cow<'static, str>, Value>;

/// The state of session `i`: every third one signed in, as one of 50 users.
fn state_of(i: usize) -> State {
    let value = match i % 3 {
        0 => json!({"user_id": format!("u{}", i % 50), "n": i}),
        _ => json!({"cart": [i, "é", {"nested": true}], "n": i}),
    };
    serde_json::from_value(value).unwrap()
}

/// Creates [`SESSIONS`] sessions through `store`, and returns their ids and states.
async fn create_sessions(db: &TestDb, store: &SeaOrmSessionStore) -> Vec<(SessionId, State)> {
    let created: Vec<(SessionId, State)> = (0..SESSIONS)
        .map(|i| (SessionId::random(), state_of(i)))
        .collect();
    // SQLite has one writer at a time: writing from 16 tasks only makes them wait for the lock
    // (past the busy timeout, now and then, on a file without WAL).
    let writers = match db.db_backend() {
        DbBackend::Sqlite => 1,
        _ => 16,
    };
    stream::iter(&created)
        .for_each_concurrent(writers, |(id, state)| async move {
            let record = SessionRecordRef {
                state: Cow::Borrowed(state),
                ttl: Duration::from_secs(3600),
            };
            store.create(id, record).await.expect("create a session");
        })
        .await;
    created
}

/// Every session loads through `store` with its state, and every user's device list is whole.
async fn assert_the_store_serves(store: &SeaOrmSessionStore, created: &[(SessionId, State)]) {
    stream::iter(created)
        .for_each_concurrent(16, |(id, state)| async move {
            let record = store.load(id).await.expect("load").expect("the session");
            assert_eq!(&record.state, state);
        })
        .await;
    for user in 0..50 {
        let subject = format!("u{user}");
        let mut expected: Vec<SessionHandle> = created
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 == 0 && i % 50 == user)
            .map(|(_, (id, _))| SessionHandle::of(id))
            .collect();
        let mut listed: Vec<SessionHandle> = store
            .sessions_of(&subject)
            .await
            .expect("sessions_of")
            .iter()
            .map(|s| s.handle)
            .collect();
        expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        listed.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        assert!(!expected.is_empty());
        assert_eq!(listed, expected, "the sessions of {subject}");
    }
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

/// A table of the published schema with 2 000 sessions (a third of them with a subject) is
/// upgraded by instances running the new release at once: all succeed, the column and index
/// are there, the history records each migration once, every row is byte for byte what it was,
/// and the store (built before the upgrade) still serves every session. Run again: no change.
async fn upgrades_a_table_with_rows_from_several_instances_at_once(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let store = store.with_subject_key("user_id");
    let created = create_sessions(&db, &store).await;
    let columns_before = columns(&db).await;
    let old_columns = names(&columns_before);
    let before = rows_of(&db, &old_columns).await;
    assert_eq!(before.len(), SESSIONS);
    let signed_in = count(
        &db,
        "SELECT COUNT(*) AS n FROM sessions WHERE subject IS NOT NULL",
    );
    assert_eq!(signed_in.await, SESSIONS.div_ceil(3) as i64);
    assert_eq!(history(&db).await.len(), published().len());
    assert_eq!(new_index(&db).await, None);

    let instances = instances(&db).await;
    for (n, outcome) in upgrade_from_every_instance(&db, &instances)
        .await
        .into_iter()
        .enumerate()
    {
        outcome.unwrap_or_else(|e| panic!("instance {n}: {e}"));
    }

    // The column and the index are there; the old columns are as they were.
    let manager = SchemaManager::new(&db.db);
    assert!(manager.has_column("sessions", LAST_SEEN_IP).await.unwrap());
    assert_eq!(new_index(&db).await, Some(IndexState::Valid));
    let columns_after = columns(&db).await;
    assert_eq!(columns_after[..columns_before.len()], columns_before[..]);
    let (name, data_type, nullable) = columns_after.last().unwrap();
    let expected_type = match db.db_backend() {
        DbBackend::Postgres => "bytea",
        DbBackend::MySql => "varbinary(16)",
        _ => "varbinary_blob(16)",
    };
    assert_eq!(
        (name.as_str(), data_type.as_str(), nullable.as_str()),
        (LAST_SEEN_IP, expected_type, "YES")
    );
    if backend == Backend::Postgres {
        assert_eq!(pg_index_flags(&db).await, Some((true, false)));
    }
    // Each migration recorded once.
    let recorded = history(&db).await;
    assert_eq!(
        recorded.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
        upgraded_history()
    );
    // Every row byte for byte, and the new column empty.
    assert_eq!(
        rows_of(&db, &old_columns).await,
        before,
        "every row is as it was"
    );
    let filled = count(
        &db,
        "SELECT COUNT(*) AS n FROM sessions WHERE last_seen_ip IS NOT NULL",
    );
    assert_eq!(filled.await, 0);

    // The table is still ours and the store, built before the upgrade, serves every session,
    // on every node; the current release's migrate() accepts the upgraded table as it is.
    check_table(&db.db, &SessionsTable::default())
        .await
        .expect("the upgraded table is still ours");
    store
        .migrate()
        .await
        .expect("migrate() on the upgraded table");
    assert_the_store_serves(&store, &created).await;
    for node in common::stores_on_every_node(&db) {
        let node = node.with_subject_key("user_id");
        let (id, state) = &created[SESSIONS - 1];
        assert_eq!(&node.load(id).await.unwrap().unwrap().state, state);
    }
    let id = SessionId::random();
    let state = state_of(0);
    let record = SessionRecordRef {
        state: Cow::Borrowed(&state),
        ttl: Duration::from_secs(60),
    };
    store
        .create(&id, record)
        .await
        .expect("create after the upgrade");
    assert!(store.delete(&id).await.is_ok());

    // Run again, from every instance: nothing changes.
    let snapshot = (columns(&db).await, rows(&db).await, history(&db).await);
    for outcome in upgrade_from_every_instance(&db, &instances).await {
        outcome.expect("the second run");
    }
    assert_eq!(
        (columns(&db).await, rows(&db).await, history(&db).await),
        snapshot,
        "a second run changes nothing"
    );
    assert_eq!(new_index(&db).await, Some(IndexState::Valid));
    close(&db, instances).await;
}

/// A `sessions` table made from our very entity, but not by our migration, is refused by the
/// future migration, through every node, and not one column, index or row of it changes.
async fn refuses_a_table_that_is_not_ours(backend: Backend) {
    let db = fresh_db(backend).await;
    let create = Schema::new(db.db_backend()).create_table_from_entity(sessions::Entity);
    db.db.execute(&create).await.unwrap();
    // A row of the app's own, in the columns every version of the entity has.
    let insert = Query::insert()
        .into_table(sessions::Entity)
        .columns([
            sessions::Column::Id,
            sessions::Column::Deadline,
            sessions::Column::State,
            sessions::Column::Subject,
            sessions::Column::CreatedAt,
            sessions::Column::UpdatedAt,
        ])
        .values_panic([
            common::key(&SessionId::random()).into(),
            4_102_444_800_000_i64.into(),
            b"{\"mine\":true}".to_vec().into(),
            Some(b"someone".to_vec()).into(),
            0_i64.into(),
            0_i64.into(),
        ])
        .to_owned();
    db.db.execute(&insert).await.unwrap();
    let before = (columns(&db).await, rows(&db).await);

    for node in db.node_connections() {
        let manager = SchemaManager::new(node);
        match AddLastSeenIp::default().up(&manager).await {
            Err(DbErr::Migration(message)) => {
                assert!(message.contains("no marker"), "{message}")
            }
            other => panic!("the future migration ran on a table not ours: {other:?}"),
        }
        match upgrade(node).await {
            Err(DbErr::Migration(message)) => {
                assert!(message.contains("no marker"), "{message}")
            }
            other => panic!("the migrator ran on a table not ours: {other:?}"),
        }
    }

    assert_eq!(
        (columns(&db).await, rows(&db).await),
        before,
        "not one column or row changed"
    );
    assert!(
        !SchemaManager::new(&db.db)
            .has_column("sessions", LAST_SEEN_IP)
            .await
            .unwrap()
    );
    assert_eq!(new_index(&db).await, None);
    assert!(
        history(&db).await.is_empty(),
        "no migration recorded as applied"
    );
}

/// PostgreSQL: a `CREATE INDEX CONCURRENTLY` that failed (here a UNIQUE one, on duplicates)
/// leaves an INVALID index of that name. The future migration, run from several instances at
/// once, drops it and builds a valid one; the rows stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_an_invalid_leftover_index_is_dropped_and_rebuilt() {
    let (db, store) = store_on(Backend::Postgres).await;
    let created: Vec<(SessionId, State)> = (0..50)
        .map(|i| (SessionId::random(), state_of(i)))
        .collect();
    for (id, state) in &created {
        let record = SessionRecordRef {
            state: Cow::Borrowed(state),
            ttl: Duration::from_secs(3600),
        };
        store.create(id, record).await.unwrap();
    }
    // A previous attempt added the column, then its index build failed.
    db.run("ALTER TABLE sessions ADD COLUMN last_seen_ip bytea", vec![])
        .await;
    db.run("UPDATE sessions SET last_seen_ip = '\\x0a000001'", vec![])
        .await;
    let failed = db
        .db
        .execute_unprepared(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_sessions_last_seen_ip ON sessions (last_seen_ip)",
        )
        .await;
    assert!(failed.is_err(), "the unique build fails on duplicates");
    assert_eq!(
        pg_index_flags(&db).await,
        Some((false, true)),
        "left INVALID"
    );
    let before = rows(&db).await;

    let instances = instances(&db).await;
    for (n, outcome) in upgrade_from_every_instance(&db, &instances)
        .await
        .into_iter()
        .enumerate()
    {
        outcome.unwrap_or_else(|e| panic!("instance {n}: {e}"));
    }

    assert_eq!(
        pg_index_flags(&db).await,
        Some((true, false)),
        "dropped and rebuilt: valid, and ours (not unique)"
    );
    assert_eq!(rows(&db).await, before);
    let recorded = history(&db).await;
    assert_eq!(
        recorded.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
        upgraded_history()
    );
    for (id, state) in &created {
        assert_eq!(&store.load(id).await.unwrap().unwrap().state, state);
    }
    close(&db, instances).await;
}

on_every_backend!(and_galera:
    upgrades_a_table_with_rows_from_several_instances_at_once,
    refuses_a_table_that_is_not_ours,
);
