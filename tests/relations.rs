//! A `sessions` relation that is not a plain table is refused by every path and left as it was:
//! a view on every backend; on PostgreSQL also a partitioned table, a table with inheritance (a
//! child, and a parent) and a foreign table, even with our exact columns, indexes and marker (so
//! the kind of the relation is checked, not only the marker). And a table of ours whose marker
//! names a newer schema is refused, untouched, by `migrate()` and the store.

mod common;

use common::{Backend, TestDb, fresh_db};
use pavex_session::{
    SessionId,
    store::{
        SessionRecordRef, SessionStorageBackend,
        errors::{ChangeIdError, CreateError, DeleteError, LoadError, UpdateError, UpdateTtlError},
    },
};
use pavex_session_sea_orm::{
    CreateSessionsTable, MismatchKind, SchemaCheckError, SchemaMismatch, SeaOrmSessionStore,
    SessionsTable, entity::sessions,
};
use pavex_session_sea_orm_migration::{MIGRATION_TABLE, SCHEMA_VERSION};
use sea_orm::{
    ConnectionTrait, DbBackend, DbErr, Schema, Statement,
    sea_query::{Alias, Expr, Query},
};
use sea_orm_migration::{MigrationTrait, SchemaManager};
use std::{borrow::Cow, collections::HashMap, error::Error, time::Duration};

/// The marker our migration writes on the table it creates, naming `schema`.
fn marker(schema: u32) -> String {
    format!("pavex_session_sea_orm sessions table, schema {schema}")
}

/// Our columns on PostgreSQL, copied from a table our migration makes, so that the relations
/// written by hand below have exactly our columns, whatever this version's schema is.
struct OurColumns {
    /// For a `CREATE TABLE` (`id bytea NOT NULL, ...`).
    ddl: String,
    /// As [`columns`] lists them.
    listed: Vec<String>,
}

/// Makes our table as our migration makes it, in a schema of its own (`reference`, with
/// `CreateSessionsTable::up`, so without a history table), and reads its columns.
async fn our_postgres_columns(db: &TestDb) -> OurColumns {
    db.run("CREATE SCHEMA reference", vec![]).await;
    let table = SessionsTable::new("sessions")
        .unwrap()
        .in_schema("reference")
        .unwrap();
    CreateSessionsTable::new(table)
        .up(&SchemaManager::new(&db.db))
        .await
        .unwrap();
    let ddl = strings(
        db,
        "SELECT string_agg(format('%I %s%s', attname, format_type(atttypid, atttypmod),
                                  CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END),
                           ', ' ORDER BY attnum) AS d
         FROM pg_attribute
         WHERE attrelid = CAST('reference.sessions' AS regclass) AND attnum > 0
           AND NOT attisdropped",
    )
    .await
    .pop()
    .unwrap();
    let listed = columns(db, "reference.sessions").await;
    assert!(listed.len() >= 6, "{listed:?}");
    OurColumns { ddl, listed }
}

/// Our two indexes and our marker, on `sessions` (PostgreSQL).
fn our_postgres_indexes_and_marker() -> [String; 3] {
    [
        "CREATE INDEX idx_sessions_deadline ON sessions (deadline)".to_owned(),
        "CREATE INDEX idx_sessions_subject ON sessions (subject, created_at) \
         WHERE subject IS NOT NULL"
            .to_owned(),
        format!("COMMENT ON TABLE sessions IS '{}'", marker(SCHEMA_VERSION)),
    ]
}

/// A deadline centuries away, and one long past (Unix epoch milliseconds).
const LIVE: i64 = 253_402_300_799_999;
const EXPIRED: i64 = 1_000;

/// A row as read back: id, deadline, state, subject, created_at, updated_at.
type Row = (Vec<u8>, i64, Vec<u8>, Option<Vec<u8>>, i64, i64);

/// Everything the test can see of a relation: what it is (its kind and its comment or, on
/// SQLite, its `CREATE` text), its columns, its indexes and its rows.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    relation: Option<String>,
    columns: Vec<String>,
    indexes: Vec<String>,
    rows: Vec<Row>,
}

/// The `d` column of every row of `sql`, as text.
async fn strings(db: &TestDb, sql: &str) -> Vec<String> {
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db_backend(), sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| {
            // MariaDB's catalog may answer in binary strings.
            row.try_get::<String>("", "d")
                .or_else(|_| {
                    row.try_get::<Vec<u8>>("", "d")
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                })
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
        .collect()
}

/// `kind:comment` of `table` (PostgreSQL: `relkind`; MySQL: `TABLE_TYPE`), or `type:sql` on
/// SQLite; `None` if there is no such relation.
async fn relation(db: &TestDb, table: &str) -> Option<String> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => format!(
            "SELECT CAST(c.relkind AS text) || ':' || COALESCE(obj_description(c.oid, 'pg_class'), '') AS d
             FROM pg_class c
             WHERE c.relname = '{table}' AND c.relnamespace = CAST(current_schema() AS regnamespace)"
        ),
        DbBackend::MySql => format!(
            "SELECT CONCAT(TABLE_TYPE, ':', COALESCE(TABLE_COMMENT, '')) AS d
             FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
        ),
        _ => format!("SELECT type || ':' || sql AS d FROM sqlite_master WHERE name = '{table}'"),
    };
    strings(db, &sql).await.pop()
}

/// `name type nullable` of each column of `table` (`schema.table` on PostgreSQL), in order.
async fn columns(db: &TestDb, table: &str) -> Vec<String> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => {
            let (schema, table) = match table.split_once('.') {
                Some((schema, table)) => (format!("'{schema}'"), table),
                None => ("current_schema()".to_owned(), table),
            };
            format!(
                "SELECT column_name || ' ' || data_type || ' ' || is_nullable AS d
                 FROM information_schema.columns
                 WHERE table_schema = {schema} AND table_name = '{table}'
                 ORDER BY ordinal_position"
            )
        }
        DbBackend::MySql => format!(
            "SELECT CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', IS_NULLABLE) AS d
             FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'
             ORDER BY ORDINAL_POSITION"
        ),
        _ => format!(
            "SELECT name || ' ' || type || ' ' || CASE WHEN \"notnull\" = 0 THEN 'YES' ELSE 'NO' END AS d
             FROM pragma_table_info('{table}') ORDER BY cid"
        ),
    };
    strings(db, &sql).await
}

/// The indexes of `table`, each as the catalog describes it.
async fn indexes(db: &TestDb, table: &str) -> Vec<String> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => format!(
            "SELECT indexdef AS d FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename = '{table}' ORDER BY indexname"
        ),
        DbBackend::MySql => format!(
            "SELECT CONCAT(INDEX_NAME, ' ', SEQ_IN_INDEX, ' ', COLUMN_NAME) AS d
             FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'
             ORDER BY INDEX_NAME, SEQ_IN_INDEX"
        ),
        _ => format!(
            "SELECT name || ' ' || COALESCE(sql, '') AS d FROM sqlite_master
             WHERE type = 'index' AND tbl_name = '{table}' ORDER BY name"
        ),
    };
    strings(db, &sql).await
}

/// The rows read from `from` (a relation, or `ONLY relation` on PostgreSQL), with the test's
/// own SQL.
async fn rows(db: &TestDb, from: &str) -> Vec<Row> {
    let sql = format!(
        "SELECT id, deadline, state, subject, created_at, updated_at FROM {from} ORDER BY id"
    );
    let rows = db
        .db
        .query_all_raw(Statement::from_string(db.db_backend(), sql.clone()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "id").unwrap(),
                row.try_get("", "deadline").unwrap(),
                row.try_get("", "state").unwrap(),
                row.try_get("", "subject").unwrap(),
                row.try_get("", "created_at").unwrap(),
                row.try_get("", "updated_at").unwrap(),
            )
        })
        .collect()
}

async fn snapshot(db: &TestDb, table: &str) -> Snapshot {
    let relation = relation(db, table).await;
    let from = match (db.db_backend(), relation.as_deref()) {
        (_, None) => {
            return Snapshot {
                relation,
                columns: Vec::new(),
                indexes: Vec::new(),
                rows: Vec::new(),
            };
        }
        // A table with inheritance: its own rows only, not its children's.
        (DbBackend::Postgres, Some(r)) if r.starts_with("r:") => format!("ONLY {table}"),
        _ => table.to_owned(),
    };
    Snapshot {
        columns: columns(db, table).await,
        indexes: indexes(db, table).await,
        rows: rows(db, &from).await,
        relation,
    }
}

/// Inserts two rows into `table` (of our columns) with the test's own statement: one live with
/// a subject, whose id it returns, and one long expired without (which `delete_expired` would
/// delete).
async fn insert_rows(db: &TestDb, table: &str) -> SessionId {
    let (live, expired) = (SessionId::random(), SessionId::random());
    let insert = Query::insert()
        .into_table(Alias::new(table))
        .columns(
            [
                "id",
                "deadline",
                "state",
                "subject",
                "created_at",
                "updated_at",
            ]
            .map(Alias::new),
        )
        .values_panic([
            Expr::val(common::key(&live)),
            LIVE.into(),
            br#"{"who": "alice"}"#.to_vec().into(),
            Some(b"alice".to_vec()).into(),
            0i64.into(),
            0i64.into(),
        ])
        .values_panic([
            Expr::val(common::key(&expired)),
            EXPIRED.into(),
            b"{}".to_vec().into(),
            None::<Vec<u8>>.into(),
            0i64.into(),
            0i64.into(),
        ])
        .to_owned();
    db.db
        .execute(&insert)
        .await
        .unwrap_or_else(|e| panic!("insert into {table}: {e}"));
    live
}

/// The application's own table `table`, of our columns, made from our entity (no marker).
async fn app_table(db: &TestDb, table: &str) {
    let mut create = Schema::new(db.db_backend()).create_table_from_entity(sessions::Entity);
    db.db
        .execute(create.table(Alias::new(table)))
        .await
        .unwrap();
}

async fn run_all(db: &TestDb, statements: &[impl AsRef<str>]) {
    for sql in statements {
        db.run(sql.as_ref(), vec![]).await;
    }
}

async fn has_table(db: &TestDb, table: &str) -> bool {
    SchemaManager::new(&db.db).has_table(table).await.unwrap()
}

type State = HashMap<Cow<'static, str>, serde_json::Value>;

/// The kind of the mismatch an operation's error keeps as its cause.
fn cause(e: &dyn Error) -> Option<MismatchKind> {
    e.source()?
        .downcast_ref::<SchemaMismatch>()
        .map(|m| m.kind())
}

/// Asserts that `store`'s table is refused as `kind` on every path, with `found` in what the
/// mismatch says was found: `check_table()`, `migrate()` (typed), our migration's `up` and
/// `down` run by an app's migrator, and every operation of the store, which fails with `Other`
/// keeping the mismatch as its cause. `existing` is the id of a row the relation shows.
async fn assert_refused(
    db: &TestDb,
    store: &SeaOrmSessionStore,
    kind: MismatchKind,
    found: &str,
    existing: &SessionId,
) {
    match store.check_table().await {
        Err(SchemaCheckError::Mismatch(e)) => {
            assert_eq!(e.kind(), kind, "{e}");
            assert!(e.found().contains(found), "{e}");
        }
        other => panic!("check_table: {other:?}"),
    }
    match store.migrate().await {
        Err(SchemaCheckError::Mismatch(e)) => assert_eq!(e.kind(), kind, "{e}"),
        other => panic!("migrate: {other:?}"),
    }
    let manager = SchemaManager::new(&db.db);
    let migration = CreateSessionsTable::new(store.table().clone());
    let up = migration.up(&manager).await.unwrap_err();
    assert!(matches!(up, DbErr::Migration(_)), "up: {up}");
    let down = migration.down(&manager).await.unwrap_err();
    assert!(down.to_string().contains("refusing to drop it"), "{down}");

    let state = State::from([("written".into(), "by the store".into())]);
    let record = || SessionRecordRef {
        state: Cow::Borrowed(&state),
        ttl: Duration::from_secs(3600),
    };
    match store.load(existing).await {
        Err(e @ LoadError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("load: {other:?}"),
    }
    match store.create(&SessionId::random(), record()).await {
        Err(e @ CreateError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("create: {other:?}"),
    }
    let expired = store.delete_expired(None).await.unwrap_err();
    assert_eq!(cause(&expired), Some(kind), "{expired:?}");
    match store.update(existing, record()).await {
        Err(e @ UpdateError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("update: {other:?}"),
    }
    match store.update_ttl(existing, Duration::ZERO).await {
        Err(e @ UpdateTtlError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("update_ttl: {other:?}"),
    }
    match store.change_id(existing, &SessionId::random()).await {
        Err(e @ ChangeIdError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("change_id: {other:?}"),
    }
    match store.delete(existing).await {
        Err(e @ DeleteError::Other(_)) => assert_eq!(cause(&e), Some(kind), "{e:?}"),
        other => panic!("delete: {other:?}"),
    }
}

/// A view `sessions` over the application's table `app_sessions`: refused, and no row of the
/// table changes (on PostgreSQL and MySQL such a view is updatable, so a store that used it
/// would write to and delete from `app_sessions`). On PostgreSQL and SQLite the view even
/// carries our marker (a `COMMENT ON VIEW`; a comment in the view's `CREATE` text), so the kind
/// is what refuses it; a MySQL/MariaDB view cannot have a comment.
async fn a_view_named_sessions_is_refused_untouched(backend: Backend) {
    let db = fresh_db(backend).await;
    app_table(&db, "app_sessions").await;
    let app = insert_rows(&db, "app_sessions").await;
    let marker = marker(SCHEMA_VERSION);
    let columns = "id, deadline, state, subject, created_at, updated_at";
    match db.db_backend() {
        DbBackend::Postgres => {
            run_all(
                &db,
                &[
                    &format!("CREATE VIEW sessions AS SELECT {columns} FROM app_sessions"),
                    &format!("COMMENT ON VIEW sessions IS '{marker}'"),
                ],
            )
            .await
        }
        DbBackend::MySql => {
            let view = format!("CREATE VIEW sessions AS SELECT {columns} FROM app_sessions");
            db.run(&view, vec![]).await;
        }
        _ => {
            let view = format!(
                "CREATE VIEW sessions AS SELECT {columns} /* {marker} */ FROM app_sessions"
            );
            db.run(&view, vec![]).await;
        }
    }
    let before = (
        snapshot(&db, "app_sessions").await,
        snapshot(&db, "sessions").await,
    );
    assert_eq!(before.0.rows.len(), 2);
    assert_eq!(
        before.1.rows, before.0.rows,
        "the view shows the app's rows"
    );
    let view = before.1.relation.clone().unwrap_or_default();
    match db.db_backend() {
        DbBackend::MySql => assert!(view.starts_with("VIEW:"), "{view}"),
        _ => assert!(
            view.contains(&marker),
            "the view carries our marker: {view}"
        ),
    }

    let store = SeaOrmSessionStore::new(db.store_connection());
    assert_refused(&db, &store, MismatchKind::NotAPlainTable, "view", &app).await;
    assert_eq!(
        (
            snapshot(&db, "app_sessions").await,
            snapshot(&db, "sessions").await
        ),
        before,
        "not one row or column of the table or the view changed"
    );
    assert!(
        !has_table(&db, MIGRATION_TABLE).await,
        "no history table was created"
    );
}

/// A partitioned `sessions` (by range of `deadline`, one partition) with our columns, our
/// indexes and our marker: refused, its rows kept. A store on the partition is refused too (it
/// is a child of the partitioned table).
async fn a_partitioned_table_is_refused_untouched(backend: Backend) {
    let db = fresh_db(backend).await;
    let ours = our_postgres_columns(&db).await;
    let ddl = &ours.ddl;
    // The primary key of a partitioned table must include the partition key.
    let create = format!(
        "CREATE TABLE sessions ({ddl}, PRIMARY KEY (id, deadline)) \
         PARTITION BY RANGE (deadline)"
    );
    run_all(
        &db,
        &[
            &create,
            "CREATE TABLE app_sessions_all PARTITION OF sessions \
             FOR VALUES FROM (MINVALUE) TO (MAXVALUE)",
        ],
    )
    .await;
    run_all(&db, &our_postgres_indexes_and_marker()).await;
    let app = insert_rows(&db, "sessions").await;
    let before = (
        snapshot(&db, "sessions").await,
        snapshot(&db, "app_sessions_all").await,
    );
    assert_eq!(before.0.columns, ours.listed);
    assert_eq!(
        before.0.relation,
        Some(format!("p:{}", marker(SCHEMA_VERSION)))
    );
    assert_eq!(before.0.rows.len(), 2);
    assert_eq!(
        before.1.rows, before.0.rows,
        "the rows are in the partition"
    );

    let store = SeaOrmSessionStore::new(db.store_connection());
    assert_refused(
        &db,
        &store,
        MismatchKind::NotAPlainTable,
        "partitioned",
        &app,
    )
    .await;
    let on_partition = SeaOrmSessionStore::new(db.store_connection())
        .with_table(SessionsTable::new("app_sessions_all").unwrap())
        .unwrap();
    assert_refused(
        &db,
        &on_partition,
        MismatchKind::NotAPlainTable,
        "inheritance",
        &app,
    )
    .await;
    assert_eq!(
        (
            snapshot(&db, "sessions").await,
            snapshot(&db, "app_sessions_all").await
        ),
        before,
        "not one row, column or index changed"
    );
    assert!(!has_table(&db, MIGRATION_TABLE).await);
}

/// `sessions` is a child (`INHERITS`) of the application's table, with our columns, primary
/// key, indexes and marker. Refused; neither table changes.
async fn a_child_table_is_refused_untouched(backend: Backend) {
    let db = fresh_db(backend).await;
    let ours = our_postgres_columns(&db).await;
    let ddl = &ours.ddl;
    run_all(
        &db,
        &[
            &format!("CREATE TABLE app_sessions_base ({ddl})"),
            &format!(
                "CREATE TABLE sessions ({ddl}, PRIMARY KEY (id)) \
                 INHERITS (app_sessions_base)"
            ),
        ],
    )
    .await;
    run_all(&db, &our_postgres_indexes_and_marker()).await;
    assert_inheritance_refused(&db, &ours, "app_sessions_base").await;
}

/// `sessions` is a parent, with our columns, primary key, indexes and marker, and the
/// application's table inherits from it: the store's statements on `sessions` would read and
/// delete the child's rows too. Refused; neither table changes.
async fn a_parent_table_is_refused_untouched(backend: Backend) {
    let db = fresh_db(backend).await;
    let ours = our_postgres_columns(&db).await;
    let ddl = &ours.ddl;
    db.run(
        &format!("CREATE TABLE sessions ({ddl}, PRIMARY KEY (id))"),
        vec![],
    )
    .await;
    run_all(&db, &our_postgres_indexes_and_marker()).await;
    db.run(
        "CREATE TABLE app_sessions_archive () INHERITS (sessions)",
        vec![],
    )
    .await;
    assert_inheritance_refused(&db, &ours, "app_sessions_archive").await;
}

/// `sessions` (with our columns and marker) and the app's table `other`, related by
/// inheritance, get two rows each; the store refuses `sessions` and neither table changes.
async fn assert_inheritance_refused(db: &TestDb, ours: &OurColumns, other: &str) {
    let live = insert_rows(db, "sessions").await;
    insert_rows(db, other).await;
    let before = (snapshot(db, "sessions").await, snapshot(db, other).await);
    assert_eq!(before.0.columns, ours.listed);
    assert_eq!(
        before.0.relation,
        Some(format!("r:{}", marker(SCHEMA_VERSION)))
    );
    assert_eq!((before.0.rows.len(), before.1.rows.len()), (2, 2));

    let store = SeaOrmSessionStore::new(db.store_connection());
    assert_refused(
        db,
        &store,
        MismatchKind::NotAPlainTable,
        "inheritance",
        &live,
    )
    .await;
    assert_eq!(
        (snapshot(db, "sessions").await, snapshot(db, other).await),
        before,
        "not one row, column or index of either table changed"
    );
    assert!(!has_table(db, MIGRATION_TABLE).await);
}

/// A foreign table `sessions` with our columns and our marker, once per foreign-data wrapper
/// this server offers: `postgres_fdw` over the application's table `app_sessions` in the same
/// database (a loopback connection as the test's user, without a password, as the test servers
/// allow), whose rows must not change, and `file_fdw` over `/dev/null`. A server with neither
/// (no PostgreSQL contrib package) fails the test rather than skipping it.
async fn a_foreign_table_is_refused_untouched(backend: Backend) {
    let wrappers = {
        let db = fresh_db(backend).await;
        strings(
            &db,
            "SELECT name AS d FROM pg_available_extensions
             WHERE name IN ('file_fdw', 'postgres_fdw') ORDER BY name",
        )
        .await
    };
    assert!(
        !wrappers.is_empty(),
        "neither postgres_fdw nor file_fdw is available on this PostgreSQL server \
         (install its contrib package)"
    );
    for wrapper in wrappers {
        let db = fresh_db(backend).await;
        let ours = our_postgres_columns(&db).await;
        let ddl = &ours.ddl;
        let marker = marker(SCHEMA_VERSION);
        let foreign = format!("CREATE FOREIGN TABLE sessions ({ddl})");
        let comment = format!("COMMENT ON FOREIGN TABLE sessions IS '{marker}'");
        let app = match wrapper.as_str() {
            "postgres_fdw" => {
                app_table(&db, "app_sessions").await;
                let app = insert_rows(&db, "app_sessions").await;
                let server = strings(
                    &db,
                    "SELECT COALESCE(host(inet_server_addr()), 'localhost') || ' ' ||
                            inet_server_port() || ' ' || current_database() || ' ' ||
                            current_user AS d",
                )
                .await
                .pop()
                .unwrap();
                let [host, port, database, user] =
                    server.split(' ').collect::<Vec<_>>().try_into().unwrap();
                run_all(
                    &db,
                    &[
                        "CREATE EXTENSION postgres_fdw",
                        &format!(
                            "CREATE SERVER app_loopback FOREIGN DATA WRAPPER postgres_fdw \
                             OPTIONS (host '{host}', port '{port}', dbname '{database}')"
                        ),
                        &format!(
                            "CREATE USER MAPPING FOR CURRENT_USER SERVER app_loopback \
                             OPTIONS (user '{user}')"
                        ),
                        &format!(
                            "{foreign} SERVER app_loopback OPTIONS (table_name 'app_sessions')"
                        ),
                        &comment,
                    ],
                )
                .await;
                Some(app)
            }
            _ => {
                run_all(
                    &db,
                    &[
                        "CREATE EXTENSION file_fdw",
                        "CREATE SERVER app_files FOREIGN DATA WRAPPER file_fdw",
                        &format!(
                            "{foreign} SERVER app_files \
                             OPTIONS (filename '/dev/null', format 'csv')"
                        ),
                        &comment,
                    ],
                )
                .await;
                None
            }
        };
        let before = (
            snapshot(&db, "sessions").await,
            snapshot(&db, "app_sessions").await,
        );
        assert_eq!(before.0.columns, ours.listed, "{wrapper}");
        assert_eq!(before.0.relation, Some(format!("f:{marker}")), "{wrapper}");
        if app.is_some() {
            assert_eq!(before.1.rows.len(), 2);
            assert_eq!(
                before.0.rows, before.1.rows,
                "the foreign table reads the app's rows"
            );
        }

        let store = SeaOrmSessionStore::new(db.store_connection());
        let existing = app.unwrap_or_else(SessionId::random);
        assert_refused(
            &db,
            &store,
            MismatchKind::NotAPlainTable,
            "foreign",
            &existing,
        )
        .await;
        assert_eq!(
            (
                snapshot(&db, "sessions").await,
                snapshot(&db, "app_sessions").await
            ),
            before,
            "{wrapper}: not one row or column changed"
        );
        assert!(!has_table(&db, MIGRATION_TABLE).await, "{wrapper}");
    }
}

/// A table of ours whose marker names a newer schema than this crate knows (set by hand here,
/// as a newer version's migration would): refused by `check_table()`, by every operation of a
/// store and by `migrate()`, which leaves it as it is, even with one of its indexes dropped
/// (on a table of the current schema `migrate()` would recreate it).
///
/// PostgreSQL and MySQL/MariaDB only: on SQLite the marker is a comment inside the table's
/// `CREATE TABLE` text in `sqlite_master`, which only `PRAGMA writable_schema` could edit, and
/// that risks corrupting the database file, so that case is left out.
async fn a_table_of_a_newer_schema_is_refused_untouched(backend: Backend) {
    let (db, migrated) = common::store_on(backend).await;
    let state = State::from([("who".into(), "alice".into())]);
    let record = || SessionRecordRef {
        state: Cow::Borrowed(&state),
        ttl: Duration::from_secs(3600),
    };
    let (live, expired) = (SessionId::random(), SessionId::random());
    migrated.create(&live, record()).await.unwrap();
    migrated.create(&expired, record()).await.unwrap();
    common::expire(&db, &expired).await;
    // The text this test writes by hand is our migration's marker, with another number.
    let (kind, newer) = match db.db_backend() {
        DbBackend::Postgres => ("r", "COMMENT ON TABLE sessions IS"),
        _ => ("BASE TABLE", "ALTER TABLE sessions COMMENT ="),
    };
    assert_eq!(
        relation(&db, "sessions").await,
        Some(format!("{kind}:{}", marker(SCHEMA_VERSION)))
    );
    let newer_marker = marker(SCHEMA_VERSION + 1);
    let drop_index = match db.db_backend() {
        DbBackend::MySql => "DROP INDEX idx_sessions_deadline ON sessions",
        _ => "DROP INDEX idx_sessions_deadline",
    };
    run_all(&db, &[&format!("{newer} '{newer_marker}'"), drop_index]).await;
    let history = format!("SELECT version AS d FROM {MIGRATION_TABLE} ORDER BY version");
    let before = (
        snapshot(&db, "sessions").await,
        strings(&db, &history).await,
    );
    assert_eq!(before.0.relation, Some(format!("{kind}:{newer_marker}")));
    assert_eq!(before.0.rows.len(), 2);
    assert!(!before.1.is_empty(), "our migration is in the history");

    // A new store: one that already ran a statement checked its table then, and does not again.
    let store = SeaOrmSessionStore::new(db.store_connection());
    assert_refused(&db, &store, MismatchKind::NewerSchema, &newer_marker, &live).await;
    assert_eq!(
        (
            snapshot(&db, "sessions").await,
            strings(&db, &history).await
        ),
        before,
        "not one row, column, index, the marker or the history changed"
    );
}

on_every_backend!(a_view_named_sessions_is_refused_untouched);

/// PostgreSQL's relations that are not plain tables. (MySQL's partitioned tables are plain
/// tables to its catalog and to the store's statements; SQLite has no such relations.)
mod postgres_only {
    use super::Backend::Postgres;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_partitioned_table_is_refused_untouched() {
        super::a_partitioned_table_is_refused_untouched(Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_table_is_refused_untouched() {
        super::a_child_table_is_refused_untouched(Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parent_table_is_refused_untouched() {
        super::a_parent_table_is_refused_untouched(Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_foreign_table_is_refused_untouched() {
        super::a_foreign_table_is_refused_untouched(Postgres).await
    }
}

/// A newer schema's marker, on the backends where it can be set by hand (not SQLite: see
/// [`a_table_of_a_newer_schema_is_refused_untouched`]).
mod newer_schema {
    use super::Backend;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_table_of_a_newer_schema_is_refused_untouched(Backend::Postgres).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mysql() {
        super::a_table_of_a_newer_schema_is_refused_untouched(Backend::MySql).await
    }
}
