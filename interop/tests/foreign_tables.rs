//! `SeaOrmSessionStore` pointed at a `sessions` table that is not its own refuses it, and leaves
//! every row as it was:
//!
//! - pavex_session_sqlx 0.2.10's table, created by that crate's own `migrate()` and filled by its
//!   own store (`their_table_is_refused_untouched`, `cleaner_leaves_their_table_untouched`);
//! - an application's unrelated table called `sessions` (`foreign_table_is_refused_untouched`,
//!   `cleaner_leaves_a_foreign_table_untouched`).
//!
//! Each test runs on SQLite (a temporary file), PostgreSQL and MariaDB/MySQL, on a database of its
//! own that is dropped when the test ends, also when it panics. The servers come from
//! `PAVEX_SESSION_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`) and
//! `PAVEX_SESSION_TEST_MYSQL_URL` (default `mysql://root@127.0.0.1:3306/test`); an unreachable
//! server fails the test, nothing is skipped.

use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend, errors::*},
};
use pavex_session_sea_orm::{
    CleanupConfig, ExpiredSessionCleaner, MismatchKind, SchemaCheckError, SchemaMismatch,
    SeaOrmSessionStore,
};
use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use sea_orm::{ConnectOptions, DatabaseConnection, DbErr};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _};
use std::{
    borrow::Cow, collections::HashMap, error::Error as _, num::NonZeroUsize, path::PathBuf,
    time::Duration,
};

/// Declares `async fn $name(backend: Backend)` once and runs it as `sqlite::$name`,
/// `postgres::$name` and `mysql::$name`.
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        on_every_backend!(@backend sqlite, Sqlite, $($name),*);
        on_every_backend!(@backend postgres, Postgres, $($name),*);
        on_every_backend!(@backend mysql, MySql, $($name),*);
    };
    (@backend $module:ident, $variant:ident, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::$variant).await
                }
            )*
        }
    };
}

on_every_backend!(
    their_table_is_refused_untouched,
    foreign_table_is_refused_untouched,
    cleaner_leaves_their_table_untouched,
    cleaner_leaves_a_foreign_table_untouched,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

/// pavex_session_sqlx's own table, with two live sessions written by its store and one expired
/// row: every use of it by our store is refused, and nothing in the database changes.
async fn their_table_is_refused_untouched(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    let theirs = fixture.their_table().await;
    let before = fixture.snapshot().await;
    assert_eq!(
        before.rows.len(),
        3,
        "two live rows and an expired one: {before:#?}"
    );
    for id in [&theirs.live[0].0, &theirs.live[1].0] {
        let id = id.inner().to_string();
        assert!(
            before.rows.iter().any(|row| row.contains(&id)),
            "{id} in {before:#?}"
        );
    }
    let expired = theirs.expired.to_string();
    assert!(
        before.rows.iter().any(|row| row.contains(&expired)),
        "{expired} in {before:#?}"
    );

    let mismatch = fixture.assert_refused(MismatchKind::PavexSessionSqlx).await;
    assert!(
        mismatch.to_string().contains("pavex_session_sqlx"),
        "the message names the crate: {mismatch}"
    );
    let live = &theirs.live[0].0;
    fixture
        .assert_every_operation_refused(live, &mismatch)
        .await;

    assert_eq!(
        fixture.snapshot().await,
        before,
        "nothing written or deleted"
    );
    // Their store still reads its sessions as it wrote them (and the expired row as expired).
    for (id, state) in &theirs.live {
        let record = theirs
            .store
            .load(id)
            .await
            .expect("their load")
            .expect("a live session");
        assert_eq!(&record.state, state);
        assert!(record.ttl > Duration::from_secs(3500), "{:?}", record.ttl);
    }
    let expired = session_id(theirs.expired);
    assert!(
        theirs
            .store
            .load(&expired)
            .await
            .expect("their load")
            .is_none()
    );
    fixture.close().await;
}

/// An application's own `sessions` table (integer ids, a `deadline` column, rows that look
/// expired whether read as seconds or milliseconds): refused as foreign, rows untouched.
async fn foreign_table_is_refused_untouched(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture.foreign_table().await;
    let before = fixture.snapshot().await;
    assert_eq!(before.rows.len(), 4, "{before:#?}");

    let mismatch = fixture.assert_refused(MismatchKind::Foreign).await;
    fixture
        .assert_every_operation_refused(&SessionId::random(), &mismatch)
        .await;

    assert_eq!(
        fixture.snapshot().await,
        before,
        "nothing written or deleted"
    );
    fixture.close().await;
}

/// The expired-session cleaner on pavex_session_sqlx's table deletes nothing: one round stops at
/// the refusal, and a cleaner left running only counts errors.
async fn cleaner_leaves_their_table_untouched(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture.their_table().await;
    let before = fixture.snapshot().await;
    fixture
        .assert_cleaner_deletes_nothing(MismatchKind::PavexSessionSqlx)
        .await;
    assert_eq!(
        fixture.snapshot().await,
        before,
        "nothing written or deleted"
    );
    fixture.close().await;
}

/// The same on an application's own `sessions` table.
async fn cleaner_leaves_a_foreign_table_untouched(backend: Backend) {
    let fixture = Fixture::new(backend).await;
    fixture.foreign_table().await;
    let before = fixture.snapshot().await;
    fixture
        .assert_cleaner_deletes_nothing(MismatchKind::Foreign)
        .await;
    assert_eq!(
        fixture.snapshot().await,
        before,
        "nothing written or deleted"
    );
    fixture.close().await;
}

// ---------------------------------------------------------------------------------------------
// What is asserted
// ---------------------------------------------------------------------------------------------

impl Fixture {
    /// `check_table()` and `migrate()` refuse the table as `kind`, with the same message; returns
    /// the mismatch.
    async fn assert_refused(&self, kind: MismatchKind) -> SchemaMismatch {
        let store = self.our_store();
        let mismatch = match store.check_table().await {
            Err(SchemaCheckError::Mismatch(mismatch)) => mismatch,
            other => panic!("{:?}: check_table() gave {other:?}", self.backend),
        };
        assert_eq!(mismatch.kind(), kind, "{mismatch}");
        assert_eq!(mismatch.table(), "sessions", "{mismatch}");
        let message = mismatch.to_string();
        assert!(
            message.contains("sessions"),
            "the message names the table: {message}"
        );
        assert!(
            !mismatch.expected().is_empty() && !mismatch.found().is_empty(),
            "{mismatch:?}"
        );
        // Changed: a table is refused for the marker it lacks, whatever its columns (the kind
        // still tells their table from an application's by its shape).
        assert_eq!(mismatch.column(), None, "{mismatch:?}");
        assert_eq!(
            mismatch.expected(),
            "the marker our migration writes on the table it creates",
            "{:?}",
            self.backend
        );
        assert_eq!(mismatch.found(), "no marker", "{:?}", self.backend);
        assert!(
            message.contains("cannot be used as a pavex_session_sea_orm sessions table"),
            "{message}"
        );

        // Changed: migrate() returns the typed SchemaCheckError (it was a DbErr::Migration).
        match store.migrate().await {
            Err(SchemaCheckError::Mismatch(found)) => {
                assert_eq!(found, mismatch, "migrate()'s mismatch");
                assert_eq!(found.to_string(), message, "migrate()'s message");
            }
            other => panic!("{:?}: migrate() gave {other:?}", self.backend),
        }
        // Where sea-orm-migration needs a DbErr, the same message.
        assert_eq!(
            DbErr::from(SchemaCheckError::Mismatch(mismatch.clone())).to_string(),
            DbErr::Migration(message.clone()).to_string()
        );
        let history = self.history().await;
        assert!(
            history.is_empty(),
            "{:?}: no migration recorded: {history:?}",
            self.backend
        );
        // Refused again, the same way (a failed check is not remembered as a pass).
        match store.check_table().await {
            Err(SchemaCheckError::Mismatch(again)) => assert_eq!(again, mismatch),
            other => panic!(
                "{:?}: the second check_table() gave {other:?}",
                self.backend
            ),
        }
        mismatch
    }

    /// Every operation, each on a store of its own (so each is the store's first statement),
    /// then all of them again on one store, fails with its `Other` variant carrying `mismatch`.
    async fn assert_every_operation_refused(&self, id: &SessionId, mismatch: &SchemaMismatch) {
        let one_store = self.our_store();
        for round in ["a store per operation", "one store for all"] {
            let store = || match round {
                "a store per operation" => self.our_store(),
                _ => one_store.clone(),
            };
            let check = |operation: &str, found: Option<&SchemaMismatch>, outcome: String| {
                let context = format!("{:?}, {round}: {operation}", self.backend);
                match found {
                    Some(found) => assert_eq!(found, mismatch, "{context}"),
                    None => panic!(
                        "{context}: not an Other variant whose error downcasts to \
                         SchemaMismatch: {outcome}"
                    ),
                }
            };
            let state = state(json!({"written_by": "pavex_session_sea_orm"}));
            let record = || SessionRecordRef {
                state: Cow::Borrowed(&state),
                ttl: Duration::from_secs(3600),
            };

            let outcome = store().create(&SessionId::random(), record()).await;
            let found = match &outcome {
                Err(CreateError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("create (a new id)", found, format!("{outcome:?}"));
            let outcome = store().create(id, record()).await;
            let found = match &outcome {
                Err(CreateError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("create (the live id)", found, format!("{outcome:?}"));
            let outcome = store().load(id).await;
            let found = match &outcome {
                Err(LoadError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("load", found, format!("{outcome:?}"));
            let outcome = store().update(id, record()).await;
            let found = match &outcome {
                Err(UpdateError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("update", found, format!("{outcome:?}"));
            let outcome = store().update_ttl(id, Duration::from_secs(60)).await;
            let found = match &outcome {
                Err(UpdateTtlError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("update_ttl", found, format!("{outcome:?}"));
            let outcome = store().delete(id).await;
            let found = match &outcome {
                Err(DeleteError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("delete", found, format!("{outcome:?}"));
            let outcome = store().change_id(id, &SessionId::random()).await;
            let found = match &outcome {
                Err(ChangeIdError::Other(e)) => mismatch_of(e),
                _ => None,
            };
            check("change_id", found, format!("{outcome:?}"));
            for batch in [None, NonZeroUsize::new(1), NonZeroUsize::new(1000)] {
                let outcome = store().delete_expired(batch).await;
                let found = mismatch_of_delete_expired(&outcome);
                check(
                    &format!("delete_expired({batch:?})"),
                    found,
                    format!("{outcome:?}"),
                );
            }
        }
    }

    /// One round of the cleaner (`drain`) fails with the mismatch; a cleaner run for a while
    /// deletes nothing and counts only errors.
    async fn assert_cleaner_deletes_nothing(&self, kind: MismatchKind) {
        let config = CleanupConfig {
            batch_size: NonZeroUsize::new(2).expect("not zero"),
            pause_between_batches: Duration::from_millis(1),
            pause_between_rounds: Duration::from_millis(5),
            jitter: 0.0,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        };
        let cleaner = ExpiredSessionCleaner::new(self.our_store()).with_config(config);
        let mut batches = Vec::new();
        let drained = cleaner.drain(|n| batches.push(n)).await;
        assert!(
            batches.is_empty(),
            "{:?}: batches {batches:?}",
            self.backend
        );
        let cause = mismatch_of_delete_expired(&drained)
            .unwrap_or_else(|| panic!("{:?}: drain gave {drained:?}", self.backend));
        assert_eq!(cause.kind(), kind);

        let report = cleaner
            .run_until(tokio::time::sleep(Duration::from_millis(300)))
            .await;
        assert_eq!(report.deleted, 0, "{:?}: {report:?}", self.backend);
        assert_eq!(report.batches, 0, "{:?}: {report:?}", self.backend);
        assert_eq!(report.rounds, 0, "{:?}: {report:?}", self.backend);
        assert!(
            report.errors >= 2,
            "{:?}: it kept trying: {report:?}",
            self.backend
        );
    }
}

/// The mismatch carried by an `Other` variant's `anyhow::Error`.
fn mismatch_of(error: &anyhow::Error) -> Option<&SchemaMismatch> {
    error.downcast_ref::<SchemaMismatch>()
}

/// The mismatch carried by a `DeleteExpiredError`: a struct in pavex_session 0.2.10 around an
/// `anyhow::Error` in a private field, whose `source()` is the anyhow error's own error.
fn mismatch_of_delete_expired<T>(
    outcome: &Result<T, DeleteExpiredError>,
) -> Option<&SchemaMismatch> {
    outcome
        .as_ref()
        .err()?
        .source()?
        .downcast_ref::<SchemaMismatch>()
}

// ---------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------

type State = HashMap<Cow<'static, str>, Value>;

fn state(value: Value) -> State {
    serde_json::from_value(value).expect("a JSON object")
}

fn session_id(id: uuid::Uuid) -> SessionId {
    // `SessionId` has no constructor from a Uuid; it is `#[serde(transparent)]`.
    serde_json::from_value(json!(id)).expect("a session id")
}

/// pavex_session_sqlx's table, as its own store made and filled it.
struct TheirTable {
    store: Box<dyn SessionStorageBackend>,
    /// The two sessions their store created (1 h TTL), with their states.
    live: Vec<(SessionId, State)>,
    /// A row inserted already expired (an hour ago), in their format.
    expired: uuid::Uuid,
}

impl Fixture {
    /// Creates pavex_session_sqlx's table with its own `migrate()`, two live sessions with its
    /// own `create`, and one expired row with plain SQL in its format.
    async fn their_table(&self) -> TheirTable {
        let store: Box<dyn SessionStorageBackend> = match &self.pool {
            Pool::Postgres(pool) => {
                let store = PostgresSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Box::new(store)
            }
            Pool::MySql(pool) => {
                let store = MySqlSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Box::new(store)
            }
            Pool::Sqlite(pool) => {
                let store = SqliteSessionStore::new(pool.clone());
                store.migrate().await.expect("their migrate()");
                Box::new(store)
            }
        };
        let live = vec![
            (
                SessionId::random(),
                state(json!({"user_id": 42, "roles": ["admin"]})),
            ),
            (
                SessionId::random(),
                state(json!({"cart": {"items": [1, 2, 3]}, "note": "é ✓"})),
            ),
        ];
        for (id, state) in &live {
            let record = SessionRecordRef {
                state: Cow::Borrowed(state),
                ttl: Duration::from_secs(3600),
            };
            store.create(id, record).await.expect("their create");
        }
        let expired = uuid::Uuid::new_v4();
        let expired_state = r#"{"expired": true}"#;
        let inserted = match &self.pool {
            Pool::Postgres(pool) => sqlx::query(
                "INSERT INTO sessions (id, deadline, state) \
                 VALUES ($1, now() - interval '1 hour', CAST($2 AS JSONB))",
            )
            .bind(expired)
            .bind(expired_state)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
            Pool::MySql(pool) => sqlx::query(
                "INSERT INTO sessions (id, deadline, state) VALUES (?, UNIX_TIMESTAMP() - 3600, ?)",
            )
            .bind(expired.to_string())
            .bind(expired_state)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
            Pool::Sqlite(pool) => sqlx::query(
                "INSERT INTO sessions (id, deadline, state) VALUES (?, unixepoch() - 3600, ?)",
            )
            .bind(expired.to_string())
            .bind(expired_state)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()),
        };
        assert_eq!(inserted.expect("insert the expired row"), 1);
        TheirTable {
            store,
            live,
            expired,
        }
    }

    /// An application's own table called `sessions`, with four rows.
    async fn foreign_table(&self) {
        self.run("CREATE TABLE sessions (id INTEGER PRIMARY KEY, user_name TEXT, deadline BIGINT)")
            .await;
        self.run(
            "INSERT INTO sessions (id, user_name, deadline) VALUES \
             (1, 'alice', 0), (2, 'bob', 1), (3, 'carol', 4102444800000), (4, 'dave', NULL)",
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: every row and the table's definition, rendered by the database itself
// ---------------------------------------------------------------------------------------------

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    /// Every row of `sessions`, ordered by id, every column rendered as text.
    rows: Vec<String>,
    /// The definition of `sessions`: its columns and indexes.
    definition: Vec<String>,
    /// The tables in the database other than our migrator's history table, which `migrate()`
    /// creates (empty) before its first migration reads the sessions table.
    tables: Vec<String>,
}

/// The history table of our migrator (`pavex_session_sea_orm_migration::MIGRATION_TABLE`).
const HISTORY_TABLE: &str = "pavex_session_sea_orm_migrations";

impl Fixture {
    async fn snapshot(&self) -> Snapshot {
        let columns = self.strings(self.columns_sql()).await;
        assert!(!columns.is_empty(), "the sessions table exists");
        let rows = match self.backend {
            Backend::Postgres => {
                self.strings("SELECT CAST(row_to_json(s) AS TEXT) FROM sessions s ORDER BY id")
                    .await
            }
            Backend::MySql => {
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("'{c}', CAST(`{c}` AS CHAR)"))
                    .collect();
                self.strings(&format!(
                    "SELECT JSON_OBJECT({}) FROM sessions ORDER BY id",
                    fields.join(", ")
                ))
                .await
            }
            Backend::Sqlite => {
                // `quote` renders the stored value exactly (text, integer, blob), `typeof` its
                // storage class.
                let fields: Vec<String> = columns
                    .iter()
                    .map(|c| format!("'{c}', json_array(typeof(\"{c}\"), quote(\"{c}\"))"))
                    .collect();
                self.strings(&format!(
                    "SELECT json_object({}) FROM sessions ORDER BY id",
                    fields.join(", ")
                ))
                .await
            }
        };
        let definition = match self.backend {
            Backend::Postgres => {
                let mut definition = self
                    .strings(
                        "SELECT concat_ws(' ', column_name, data_type, is_nullable, \
                         column_default) FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = 'sessions' \
                         ORDER BY ordinal_position",
                    )
                    .await;
                definition.extend(
                    self.strings(
                        "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() \
                         AND tablename = 'sessions' ORDER BY indexname",
                    )
                    .await,
                );
                definition
            }
            Backend::MySql => self.show_create_table().await,
            Backend::Sqlite => {
                self.strings(
                    "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master \
                     WHERE tbl_name = 'sessions' ORDER BY name",
                )
                .await
            }
        };
        let tables = self
            .tables()
            .await
            .into_iter()
            .filter(|t| t != HISTORY_TABLE)
            .collect();
        Snapshot {
            rows,
            definition,
            tables,
        }
    }

    /// The tables of the test's database.
    async fn tables(&self) -> Vec<String> {
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() ORDER BY 1"
            }
            Backend::MySql => {
                "SELECT TABLE_NAME FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1"
            }
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1",
        };
        self.strings(sql).await
    }

    /// The rows of our migrator's history table, if `migrate()` created it.
    async fn history(&self) -> Vec<String> {
        if !self.tables().await.iter().any(|t| t == HISTORY_TABLE) {
            return Vec::new();
        }
        let version = match self.backend {
            Backend::MySql => "CAST(version AS CHAR)",
            _ => "CAST(version AS TEXT)",
        };
        self.strings(&format!("SELECT {version} FROM {HISTORY_TABLE} ORDER BY 1"))
            .await
    }

    fn columns_sql(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => {
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'sessions' \
                 ORDER BY ordinal_position"
            }
            Backend::MySql => {
                "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'sessions' \
                 ORDER BY ORDINAL_POSITION"
            }
            Backend::Sqlite => "SELECT name FROM pragma_table_info('sessions') ORDER BY cid",
        }
    }

    async fn show_create_table(&self) -> Vec<String> {
        let Pool::MySql(pool) = &self.pool else {
            unreachable!("MySQL only")
        };
        let row = sqlx::query("SHOW CREATE TABLE sessions")
            .fetch_one(pool)
            .await
            .expect("SHOW CREATE TABLE");
        vec![text_at(&row, 1)]
    }
}

// ---------------------------------------------------------------------------------------------
// The databases
// ---------------------------------------------------------------------------------------------

/// A fresh database for one test: an sqlx 0.8 pool (pavex_session_sqlx's side, and the test's
/// own reads), a sea-orm connection to the same database (our store's), and the guard that
/// removes the database when dropped.
struct Fixture {
    backend: Backend,
    pool: Pool,
    db: DatabaseConnection,
    /// Last, so that it is dropped after the pools.
    _guard: Guard,
}

enum Pool {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

/// Removes a test's database on drop, also when the test panics.
enum Guard {
    RemoveDir(PathBuf),
    DropDatabase {
        backend: Backend,
        admin_url: String,
        name: String,
    },
}

fn server_url(backend: Backend) -> String {
    let (var, default) = match backend {
        Backend::Postgres => (
            "PAVEX_SESSION_TEST_POSTGRES_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        Backend::MySql => (
            "PAVEX_SESSION_TEST_MYSQL_URL",
            "mysql://root@127.0.0.1:3306/test",
        ),
        Backend::Sqlite => unreachable!("SQLite has no server"),
    };
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let name = format!("pss_interop_{}", uuid::Uuid::new_v4().simple());
        let (url, guard) = match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(&name);
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    dir.join("sessions.sqlite").display()
                );
                (url, Guard::RemoveDir(dir))
            }
            Backend::Postgres | Backend::MySql => {
                let admin_url = server_url(backend);
                admin(backend, &admin_url, &format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|e| panic!("{backend:?} at {admin_url}: {e:#}"));
                let (server, _) = admin_url
                    .rsplit_once('/')
                    .expect("a URL with a database name");
                let url = format!("{server}/{name}");
                let guard = Guard::DropDatabase {
                    backend,
                    admin_url,
                    name,
                };
                (url, guard)
            }
        };
        let pool = match backend {
            Backend::Postgres => Pool::Postgres(sqlx::PgPool::connect(&url).await.expect(&url)),
            Backend::MySql => Pool::MySql(sqlx::MySqlPool::connect(&url).await.expect(&url)),
            Backend::Sqlite => Pool::Sqlite(sqlx::SqlitePool::connect(&url).await.expect(&url)),
        };
        let mut options = ConnectOptions::new(&url);
        options.sqlx_logging(false).max_connections(4);
        let db = sea_orm::Database::connect(options).await.expect(&url);
        Self {
            backend,
            pool,
            db,
            _guard: guard,
        }
    }

    /// A new store of ours on the test's database (its checks are not shared with other stores).
    fn our_store(&self) -> SeaOrmSessionStore {
        SeaOrmSessionStore::new(self.db.clone())
    }

    /// Runs a statement of the test's own, through the sqlx 0.8 pool.
    async fn run(&self, sql: &str) {
        let done = match &self.pool {
            Pool::Postgres(pool) => pool.execute(sql).await.map(|_| ()),
            Pool::MySql(pool) => pool.execute(sql).await.map(|_| ()),
            Pool::Sqlite(pool) => pool.execute(sql).await.map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The first column of every row of `sql`, as text.
    async fn strings(&self, sql: &str) -> Vec<String> {
        let rows: Vec<String> = match &self.pool {
            Pool::Postgres(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
            Pool::MySql(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
            Pool::Sqlite(pool) => sqlx::query(sql)
                .fetch_all(pool)
                .await
                .map(|rows| rows.iter().map(|r| text_at(r, 0)).collect()),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows
    }

    async fn close(self) {
        self.db.close_by_ref().await.ok();
        match &self.pool {
            Pool::Postgres(pool) => pool.close().await,
            Pool::MySql(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Column `i` of `row` as text (some MySQL servers answer catalog queries in binary strings).
fn text_at<R: sqlx::Row>(row: &R, i: usize) -> String
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get::<String, _>(i)
        .or_else(|_| {
            row.try_get::<Vec<u8>, _>(i)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .unwrap_or_else(|e| panic!("column {i} as text: {e}"))
}

/// Runs one administrative statement on its own connection to the server.
async fn admin(backend: Backend, admin_url: &str, sql: &str) -> anyhow::Result<()> {
    match backend {
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(admin_url).await?;
            conn.execute(sql).await?;
            conn.close().await?;
        }
        Backend::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(admin_url).await?;
            conn.execute(sql).await?;
            conn.close().await?;
        }
        Backend::Sqlite => {}
    }
    Ok(())
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::RemoveDir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Guard::DropDatabase {
                backend,
                admin_url,
                name,
            } => {
                let (backend, admin_url) = (*backend, admin_url.clone());
                let sql = match backend {
                    // FORCE ends the connections still open (a test that panicked).
                    Backend::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    _ => format!("DROP DATABASE IF EXISTS {name}"),
                };
                // Drop runs inside the test's runtime: use a runtime of our own on another thread.
                let dropped = std::thread::spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(admin(backend, &admin_url, &sql))
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("warning: could not drop the test database {name}: {dropped:?}");
                }
            }
        }
    }
}
