//! The migration and the generated entity describe the same table, on every backend; the
//! migration is idempotent and keeps to its own history table.

mod common;

use common::{Backend, TestDb, fresh_db, store_on};
use pavex_session::{
    SessionId,
    store::{SessionRecordRef, SessionStorageBackend},
};
use pavex_session_sea_orm::{
    CreateSessionsTable, Migrator, MismatchKind, SchemaCheckError, SeaOrmSessionStore,
    SessionsMigrator, SessionsTable, entity::sessions,
};
use pavex_session_sea_orm_migration::{MIGRATION_TABLE, SESSIONS_TABLE};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, EntityName, EntityTrait, Schema, Statement,
    sea_query::Alias,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager, prelude::*};
use serde_json::json;
use std::{borrow::Cow, collections::HashMap, time::Duration};

/// A column as the database describes it.
#[derive(Debug, PartialEq, Eq)]
struct ColumnInfo {
    name: String,
    data_type: String,
    nullable: bool,
    primary_key: bool,
}

async fn columns(db: &TestDb, table: &str) -> Vec<ColumnInfo> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => {
            "SELECT c.column_name AS name, c.data_type AS data_type, c.is_nullable = 'YES' AS nullable,
                    EXISTS (SELECT 1 FROM information_schema.key_column_usage k
                            JOIN information_schema.table_constraints t
                              ON t.constraint_name = k.constraint_name AND t.table_schema = k.table_schema
                            WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema
                              AND k.table_name = c.table_name AND k.column_name = c.column_name) AS pk
             FROM information_schema.columns c
             WHERE c.table_schema = current_schema() AND c.table_name = $1
             ORDER BY c.ordinal_position"
        }
        DbBackend::MySql => {
            "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS data_type, IS_NULLABLE = 'YES' AS nullable,
                    COLUMN_KEY = 'PRI' AS pk
             FROM information_schema.COLUMNS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?
             ORDER BY ORDINAL_POSITION"
        }
        _ => {
            "SELECT name, type AS data_type, \"notnull\" = 0 AS nullable, pk > 0 AS pk
             FROM pragma_table_info(?) ORDER BY cid"
        }
    };
    let rows = db
        .db
        .query_all_raw(Statement::from_sql_and_values(
            db.db_backend(),
            sql,
            [table.into()],
        ))
        .await
        .expect("read the columns");
    rows.iter()
        .map(|row| ColumnInfo {
            name: row.try_get("", "name").unwrap(),
            data_type: row
                .try_get::<String>("", "data_type")
                .unwrap()
                .to_lowercase(),
            nullable: row.try_get("", "nullable").unwrap(),
            primary_key: row.try_get("", "pk").unwrap(),
        })
        .collect()
}

/// `(index name, column)` for every non-primary index of `table`.
async fn indexes(db: &TestDb, table: &str) -> Vec<(String, String)> {
    let sql = match db.db_backend() {
        DbBackend::Postgres => {
            "SELECT i.relname AS name, a.attname AS col
             FROM pg_index x
             JOIN pg_class i ON i.oid = x.indexrelid
             JOIN pg_class t ON t.oid = x.indrelid
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey)
             WHERE t.relname = $1 AND t.relnamespace = current_schema()::regnamespace
               AND NOT x.indisprimary
             ORDER BY 1, 2"
        }
        DbBackend::MySql => {
            "SELECT INDEX_NAME AS name, COLUMN_NAME AS col FROM information_schema.STATISTICS
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY'
             ORDER BY 1, 2"
        }
        _ => {
            "SELECT l.name AS name, i.name AS col
             FROM pragma_index_list(?1) l JOIN pragma_index_info(l.name) i
             WHERE l.origin = 'c' ORDER BY 1, 2"
        }
    };
    let rows = db
        .db
        .query_all_raw(Statement::from_sql_and_values(
            db.db_backend(),
            sql,
            [table.into()],
        ))
        .await
        .expect("read the indexes");
    rows.iter()
        .map(|row| {
            (
                row.try_get("", "name").unwrap(),
                row.try_get("", "col").unwrap(),
            )
        })
        .collect()
}

async fn has_table(db: &TestDb, table: &str) -> bool {
    SchemaManager::new(&db.db).has_table(table).await.unwrap()
}

async fn migration_creates_the_documented_schema(backend: Backend) {
    let (db, _store) = store_on(backend).await;
    let cols = columns(&db, SESSIONS_TABLE).await;
    let summary = column_summary(&cols);
    assert_eq!(summary, documented_columns(db.db_backend()));
    let by_subject = "sessions_by_subject";
    match db.db_backend() {
        DbBackend::MySql => assert_eq!(
            column_summary(&columns(&db, by_subject).await),
            documented_by_subject_columns()
        ),
        _ => assert!(!has_table(&db, by_subject).await),
    }
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        our_indexes(db.db_backend(), "sessions")
    );
    // Anonymous sessions stay out of the subject index where the database can leave them out.
    let partial = match db.db_backend() {
        DbBackend::MySql => vec![],
        _ => vec!["idx_sessions_subject".to_owned()],
    };
    assert_eq!(db.partial_indexes(SESSIONS_TABLE).await, partial);
}

/// The columns of the table in docs/schema.md ("Schema"), as `(name, declared type on
/// `backend`, nullable, primary key)`: the type is the first code span of the backend's cell,
/// "(nullable)" and "(primary key)" are read from the column's cell.
/// `(name, type, nullable, primary key)` of each column, as docs/schema.md writes them.
fn column_summary(columns: &[ColumnInfo]) -> Vec<(String, String, bool, bool)> {
    columns
        .iter()
        .map(|c| {
            // MariaDB shows an integer's display width, which the docs leave out.
            let data_type = match c.data_type.as_str() {
                "bigint(20)" => "bigint",
                other => other,
            };
            (
                c.name.clone(),
                data_type.to_owned(),
                c.nullable,
                c.primary_key,
            )
        })
        .collect()
}

fn documented_columns(backend: DbBackend) -> Vec<(String, String, bool, bool)> {
    let cell = match backend {
        DbBackend::Postgres => 1,
        DbBackend::MySql => 2,
        _ => 3,
    };
    let columns = documented_table("\n## Schema\n", cell);
    assert!(columns.len() >= 7, "read {columns:?} from docs/schema.md");
    columns
}

/// The columns of `<table>_by_subject`, MySQL's only, as docs/schema.md writes them.
fn documented_by_subject_columns() -> Vec<(String, String, bool, bool)> {
    let columns = documented_table("\n### The subject entries on MySQL\n", 1);
    assert_eq!(columns.len(), 3, "read {columns:?} from docs/schema.md");
    columns
}

/// The first table after the line `section` of docs/schema.md: `(name, type in the `cell`th
/// column, nullable, primary key)` of each column it lists.
fn documented_table(section: &str, cell: usize) -> Vec<(String, String, bool, bool)> {
    let doc = include_str!("../docs/schema.md");
    let table = doc
        .split(section)
        .nth(1)
        .unwrap_or_else(|| panic!("docs/schema.md has a section {section:?}"));
    let code_spans = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut columns = Vec::new();
    for row in table
        .lines()
        .skip_while(|line| !line.starts_with("| column"))
        .skip(2)
        .take_while(|line| line.starts_with('|'))
    {
        let cells: Vec<&str> = row.split('|').map(str::trim).skip(1).collect();
        let data_type = code_spans(cells[cell]).into_iter().next().expect("a type");
        for name in code_spans(cells[0]) {
            columns.push((
                name,
                data_type.clone(),
                cells[0].contains("(nullable)"),
                cells[0].contains("(primary key"),
            ));
        }
    }
    columns
}

/// The entity, turned back into a table by SeaORM, has the migrated table's columns.
async fn entity_agrees_with_the_migration(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let from_entity = "sessions_from_entity";
    let mut create = Schema::new(db.db_backend()).create_table_from_entity(sessions::Entity);
    db.db
        .execute(create.table(Alias::new(from_entity)))
        .await
        .unwrap();
    let mut migrated = columns(&db, SESSIONS_TABLE).await;
    if db.db_backend() == DbBackend::MySql {
        // MySQL's `blob` stops at 64 KiB: the migration makes the state a `longblob`, which the
        // entity's `Blob` cannot say.
        migrated[2].data_type = "blob".to_owned();
    }
    assert_eq!(migrated, columns(&db, from_entity).await);

    // And the entity reads and writes the migrated table, interchangeably with the store.
    let id = SessionId::random();
    let model = sessions::Model {
        id: common::key(&id),
        deadline: common::millis(253_402_300_799_999),
        state: br#"{"written": "by the entity"}"#.to_vec(),
        subject: Some(b"someone".to_vec()),
        sign_in: Some(b"a sign-in".to_vec()),
        created_at: common::millis(0),
        updated_at: common::millis(1),
    };
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(model.id.clone()),
        deadline: Set(model.deadline),
        state: Set(model.state.clone()),
        subject: Set(model.subject.clone()),
        sign_in: Set(model.sign_in.clone()),
        created_at: Set(model.created_at),
        updated_at: Set(model.updated_at),
    })
    .exec_without_returning(&db.db)
    .await
    .unwrap();
    assert_eq!(
        sessions::Entity::find_by_id(common::key(&id))
            .one(&db.db)
            .await
            .unwrap(),
        Some(model)
    );
    let loaded = store
        .load(&id)
        .await
        .unwrap()
        .expect("the store reads the entity's row");
    assert_eq!(loaded.state["written"], json!("by the entity"));
}

async fn migrate_is_idempotent(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let id = SessionId::random();
    store
        .create(
            &id,
            pavex_session::store::SessionRecordRef {
                state: Default::default(),
                ttl: std::time::Duration::from_secs(60),
            },
        )
        .await
        .unwrap();
    store.migrate().await.unwrap();
    // The migration itself, run again outside our migrator (as an app's migrator would).
    let manager = SchemaManager::new(&db.db);
    CreateSessionsTable::default().up(&manager).await.unwrap();
    CreateSessionsTable::default().up(&manager).await.unwrap();
    assert!(
        store.load(&id).await.unwrap().is_some(),
        "existing sessions are kept"
    );
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        our_indexes(db.db_backend(), "sessions")
    );
}

/// Apps migrate at every start: on an up-to-date table `migrate()` only reads (no DDL, which on
/// a Galera cluster takes a cluster-wide lock), seen in the statements the connection runs.
async fn a_second_migrate_sends_no_ddl(backend: Backend) {
    let (mut db, store) = store_on(backend).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = std::sync::Arc::clone(&seen);
    db.db.set_metric_callback(move |info| {
        log.lock().unwrap().push(info.statement.sql.clone());
    });
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table(store.table().clone())
        .unwrap();
    store.migrate().await.unwrap();
    let statements = seen.lock().unwrap().clone();
    assert!(
        !statements.is_empty(),
        "the callback sees the migration's reads"
    );
    for sql in &statements {
        let verb = sql.split_whitespace().next().unwrap_or_default();
        assert!(
            verb.eq_ignore_ascii_case("SELECT"),
            "only reads on an up-to-date table: {sql}"
        );
    }
}

/// `(index, column)` of the indexes our migration makes on `table`, as [`indexes`] lists them:
/// no subject index on MySQL, which keeps the subjects' sessions in `<table>_by_subject`.
fn our_indexes(backend: DbBackend, table: &str) -> Vec<(String, String)> {
    let (deadline, subject) = (
        format!("idx_{table}_deadline"),
        format!("idx_{table}_subject"),
    );
    let mut indexes = vec![(deadline, "deadline".to_owned())];
    if backend != DbBackend::MySql {
        indexes.push((subject.clone(), "created_at".to_owned()));
        indexes.push((subject, "subject".to_owned()));
    }
    indexes
}

/// The indexes of ours dropped by hand, and on MySQL the subject entries, are recreated by the
/// next migration run (the entries from the sessions that have a subject), also when several
/// instances run it at once, and the store refuses the table until then.
async fn migrate_recreates_a_dropped_index(backend: Backend) {
    let (db, store) = store_on(backend).await;
    let store = store.with_subject_key("user");
    let (signed_in, anonymous) = (SessionId::random(), SessionId::random());
    let user = state(json!({"user": "ada"}));
    store.create(&signed_in, record(&user)).await.unwrap();
    store
        .create(&anonymous, record(&state(json!({}))))
        .await
        .unwrap();
    let drops: &[&str] = match db.db_backend() {
        DbBackend::MySql => &[
            "DROP INDEX idx_sessions_deadline ON sessions",
            "DROP TABLE sessions_by_subject",
        ],
        _ => &[
            "DROP INDEX idx_sessions_deadline",
            "DROP INDEX idx_sessions_subject",
        ],
    };
    for drop in drops {
        db.db.execute_unprepared(drop).await.unwrap();
        let fresh = SeaOrmSessionStore::new(db.db.clone());
        match fresh.check_table().await {
            Err(SchemaCheckError::Mismatch(e)) => assert_eq!(e.kind(), MismatchKind::Altered),
            other => panic!("{drop}: {other:?}"),
        }
    }
    // Several instances repair at once, as after a deployment.
    let instances: Vec<_> = (0..3)
        .map(|_| SeaOrmSessionStore::new(db.db.clone()))
        .collect();
    let repairs = futures::future::join_all(instances.iter().map(|s| s.migrate())).await;
    for repaired in repairs {
        repaired.unwrap();
    }
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        our_indexes(db.db_backend(), "sessions")
    );
    store.check_table().await.unwrap();
    let listed = store.sessions_of("ada").await.unwrap();
    let handles: Vec<_> = listed.iter().map(|s| s.handle).collect();
    assert_eq!(
        handles,
        [pavex_session_sea_orm::SessionHandle::of(&signed_in)]
    );
    assert_eq!(store.end_sessions_of("ada", None).await.unwrap(), 1);
    assert!(store.load(&signed_in).await.unwrap().is_none());
    assert!(store.load(&anonymous).await.unwrap().is_some());
}

/// A table of the very same columns, types and indexes as ours, that our migration did not
/// create (no marker: the app's own, made from our entity), is refused by every path and left
/// with its rows.
async fn a_look_alike_table_is_refused_untouched(backend: Backend) {
    let db = fresh_db(backend).await;
    let create = Schema::new(db.db_backend()).create_table_from_entity(sessions::Entity);
    db.db.execute(&create).await.unwrap();
    let id = SessionId::random();
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(common::key(&id)),
        deadline: Set(common::millis(1_000)),
        state: Set(b"{}".to_vec()),
        subject: Set(None),
        sign_in: Set(None),
        created_at: Set(common::millis(0)),
        updated_at: Set(common::millis(0)),
    })
    .exec_without_returning(&db.db)
    .await
    .unwrap();
    let before = (
        columns(&db, SESSIONS_TABLE).await,
        common::all_rows(&db).await,
    );

    let store = SeaOrmSessionStore::new(db.db.clone());
    match store.migrate().await {
        Err(SchemaCheckError::Mismatch(e)) => {
            assert_eq!(e.kind(), MismatchKind::Foreign);
            assert!(e.to_string().contains("no marker"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let manager = SchemaManager::new(&db.db);
    let up = CreateSessionsTable::default()
        .up(&manager)
        .await
        .unwrap_err();
    assert!(up.to_string().contains("no marker"), "{up}");
    let down = CreateSessionsTable::default()
        .down(&manager)
        .await
        .unwrap_err();
    assert!(down.to_string().contains("refusing to drop it"), "{down}");
    assert!(store.delete_expired(None).await.is_err());
    assert!(store.load(&id).await.is_err());
    assert_eq!(
        (
            columns(&db, SESSIONS_TABLE).await,
            common::all_rows(&db).await
        ),
        before,
        "not one row or column changed"
    );
    assert!(
        !has_table(&db, MIGRATION_TABLE).await,
        "no history table was created either"
    );
}

async fn migrator_keeps_its_own_history_and_drops_only_its_table(backend: Backend) {
    let db = fresh_db(backend).await;
    db.db
        .execute_unprepared("CREATE TABLE app_users (id INTEGER PRIMARY KEY)")
        .await
        .unwrap();
    Migrator::up(&db.db, None).await.unwrap();
    assert!(has_table(&db, MIGRATION_TABLE).await);
    assert!(
        !has_table(&db, "seaql_migrations").await,
        "the app's history is not touched"
    );
    let statuses = Migrator::get_applied_migrations(&db.db).await.unwrap();
    assert_eq!(statuses.len(), 1);
    Migrator::down(&db.db, None).await.unwrap();
    assert!(!has_table(&db, SESSIONS_TABLE).await);
    assert!(
        has_table(&db, "app_users").await,
        "down drops only the sessions table"
    );
    assert!(
        Migrator::get_applied_migrations(&db.db)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An application that lists our migration in its own migrator.
struct AppMigrator;

#[async_trait::async_trait]
impl MigratorTrait for AppMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSessionsTable::default())]
    }
}

async fn an_app_migrator_can_include_the_migration(backend: Backend) {
    let db = fresh_db(backend).await;
    AppMigrator::up(&db.db, None).await.unwrap();
    assert!(has_table(&db, SESSIONS_TABLE).await);
    assert!(has_table(&db, "seaql_migrations").await);
    // Switching to our own migrator later is a no-op on the schema.
    Migrator::up(&db.db, None).await.unwrap();
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        our_indexes(db.db_backend(), "sessions")
    );
    AppMigrator::down(&db.db, None).await.unwrap();
    assert!(!has_table(&db, SESSIONS_TABLE).await);
}

type State = HashMap<Cow<'static, str>, serde_json::Value>;

fn state(value: serde_json::Value) -> State {
    serde_json::from_value(value).expect("a JSON object")
}

fn record(state: &State) -> SessionRecordRef<'_> {
    SessionRecordRef {
        state: Cow::Borrowed(state),
        ttl: Duration::from_secs(3600),
    }
}

async fn the_default_table_is_the_entitys(_backend: Backend) {
    assert_eq!(
        SessionsTable::default().name(),
        sessions::Entity.table_name()
    );
}

async fn stores_on_different_tables_stay_isolated(backend: Backend) {
    let db = fresh_db(backend).await;
    let first = SeaOrmSessionStore::new(db.db.clone());
    let second = SeaOrmSessionStore::new(db.db.clone())
        .with_table("app_sessions".parse().unwrap())
        .unwrap();
    first.migrate().await.unwrap();
    second.migrate().await.unwrap();
    assert_eq!(
        indexes(&db, "app_sessions").await,
        our_indexes(db.db_backend(), "app_sessions")
    );
    let id = SessionId::random();
    let one = state(json!({"store": 1}));
    let two = state(json!({"store": 2}));
    // The same id in both tables: no DuplicateId, separate records.
    first.create(&id, record(&one)).await.unwrap();
    second.create(&id, record(&two)).await.unwrap();
    assert_eq!(first.load(&id).await.unwrap().unwrap().state, one);
    assert_eq!(second.load(&id).await.unwrap().unwrap().state, two);
    second.delete(&id).await.unwrap();
    assert!(second.load(&id).await.unwrap().is_none());
    assert_eq!(first.load(&id).await.unwrap().unwrap().state, one);
    first.update_ttl(&id, Duration::ZERO).await.unwrap();
    assert_eq!(
        second.delete_expired(None).await.unwrap(),
        0,
        "not its table"
    );
    assert_eq!(first.delete_expired(None).await.unwrap(), 1);
    // Dropping one table leaves the other.
    use sea_orm_migration::MigratorTraitSelf as _;
    SessionsMigrator::new(second.table().clone())
        .down(&db.db, None)
        .await
        .unwrap();
    assert!(!has_table(&db, "app_sessions").await);
    assert!(has_table(&db, SESSIONS_TABLE).await);
}

/// A table in a PostgreSQL schema of its own; elsewhere a schema is refused with a clear error.
async fn a_table_in_a_chosen_schema(backend: Backend) {
    let db = fresh_db(backend).await;
    let table = SessionsTable::new("user_sessions")
        .unwrap()
        .in_schema("auth")
        .unwrap();
    if db.db_backend() != DbBackend::Postgres {
        let refused = SeaOrmSessionStore::new(db.db.clone()).with_table(table.clone());
        let message = refused.unwrap_err().to_string();
        assert!(message.contains("only PostgreSQL supports"), "{message}");
        use sea_orm_migration::MigratorTraitSelf as _;
        let migration = SessionsMigrator::new(table)
            .up(&db.db, None)
            .await
            .unwrap_err();
        assert!(
            migration.to_string().contains("only PostgreSQL supports"),
            "{migration}"
        );
        assert!(!has_table(&db, "user_sessions").await);
        return;
    }
    db.run("CREATE SCHEMA auth", vec![]).await;
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table(table)
        .unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let (id, new) = (SessionId::random(), SessionId::random());
    let s = state(json!({"in": "auth"}));
    store.create(&id, record(&s)).await.unwrap();
    store.change_id(&id, &new).await.unwrap();
    store.update(&new, record(&s)).await.unwrap();
    assert_eq!(store.load(&new).await.unwrap().unwrap().state, s);
    store.update_ttl(&new, Duration::ZERO).await.unwrap();
    assert_eq!(
        store
            .delete_expired(std::num::NonZeroUsize::new(10))
            .await
            .unwrap(),
        1
    );
    let tables = "SELECT table_schema AS name FROM information_schema.tables
                  WHERE table_name = 'user_sessions'";
    let rows = db
        .db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, tables))
        .await
        .unwrap();
    let schemas: Vec<String> = rows
        .iter()
        .map(|r| r.try_get("", "name").unwrap())
        .collect();
    assert_eq!(
        schemas,
        vec!["auth".to_owned()],
        "only in the chosen schema"
    );
    let index = "SELECT 1 AS one FROM pg_indexes WHERE schemaname = 'auth'
                 AND tablename = 'user_sessions' AND indexname = 'idx_user_sessions_deadline'";
    let found = db
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, index))
        .await
        .unwrap();
    assert!(found.is_some(), "the index sits beside its table");
}

/// An application migrator with our migration for a table of its choosing, beside its own.
struct AppWithChosenTable;

#[async_trait::async_trait]
impl MigratorTrait for AppWithChosenTable {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let table = SessionsTable::new("auth_sessions").expect("a valid name");
        let mut migrations: Vec<Box<dyn MigrationTrait>> = vec![Box::new(CreateAppUsers)];
        migrations.extend(pavex_session_sea_orm_migration::migrations(table));
        migrations
    }
}

struct CreateAppUsers;

impl MigrationName for CreateAppUsers {
    fn name(&self) -> &str {
        "m20240101_000001_create_app_users"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateAppUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = Table::create()
            .table(Alias::new("app_users"))
            .col(ColumnDef::new(Alias::new("id")).integer().primary_key())
            .to_owned();
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Alias::new("app_users")).to_owned())
            .await
    }
}

async fn an_app_migrator_runs_our_migration_for_its_table(backend: Backend) {
    let db = fresh_db(backend).await;
    AppWithChosenTable::up(&db.db, None).await.unwrap();
    assert!(has_table(&db, "app_users").await && has_table(&db, "auth_sessions").await);
    let applied: Vec<String> = AppWithChosenTable::get_applied_migrations(&db.db)
        .await
        .unwrap()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    assert_eq!(
        applied,
        vec![
            "m20240101_000001_create_app_users".to_owned(),
            "m20261206_000001_create_sessions_table:auth_sessions".to_owned(),
        ]
    );
    AppWithChosenTable::status(&db.db).await.unwrap();
    // The store on that table works, and our own migrator on it later changes nothing.
    let store = SeaOrmSessionStore::new(db.db.clone())
        .with_table("auth_sessions".parse().unwrap())
        .unwrap();
    let id = SessionId::random();
    store
        .create(&id, record(&state(json!({"a": 1}))))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    assert!(store.load(&id).await.unwrap().is_some());
    assert!(
        !has_table(&db, SESSIONS_TABLE).await,
        "no default table appears"
    );
    // `down` of our migration removes only our table.
    AppWithChosenTable::down(&db.db, Some(1)).await.unwrap();
    assert!(!has_table(&db, "auth_sessions").await);
    assert!(has_table(&db, "app_users").await);
}

/// An app's own table under the name of a table our migration creates beside the sessions
/// (`sessions_revoked`; on MySQL `sessions_by_subject` too) makes the migration refuse, before
/// it creates anything, and the app's table keeps its row.
async fn an_apps_table_under_a_name_of_ours_is_refused(backend: Backend) {
    let mut names = vec!["sessions_revoked"];
    if matches!(backend, Backend::MySql | Backend::Galera) {
        names.push("sessions_by_subject");
    }
    for name in names {
        let db = fresh_db(backend).await;
        for sql in [
            format!("CREATE TABLE {name} (note VARCHAR(20))"),
            format!("INSERT INTO {name} (note) VALUES ('the app''s')"),
        ] {
            db.db.execute_unprepared(&sql).await.unwrap();
        }
        let store = SeaOrmSessionStore::new(db.db.clone());
        let refused = store.migrate().await;
        let message = format!("{:?}", refused.expect_err(name));
        assert!(
            message.contains(&format!("the table {name} cannot be used"))
                && message.contains("found no marker"),
            "{name}: {message}"
        );
        assert!(!has_table(&db, SESSIONS_TABLE).await, "{name}");
        let row = db
            .db
            .query_one_raw(Statement::from_string(
                db.db_backend(),
                format!("SELECT note FROM {name}"),
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<String>("", "note").unwrap(), "the app's");
    }
}

on_every_backend!(
    an_apps_table_under_a_name_of_ours_is_refused,
    the_default_table_is_the_entitys,
    stores_on_different_tables_stay_isolated,
    a_table_in_a_chosen_schema,
    an_app_migrator_runs_our_migration_for_its_table,
    migration_creates_the_documented_schema,
    entity_agrees_with_the_migration,
    migrate_is_idempotent,
    migrate_recreates_a_dropped_index,
    a_second_migrate_sends_no_ddl,
    a_look_alike_table_is_refused_untouched,
    migrator_keeps_its_own_history_and_drops_only_its_table,
    an_app_migrator_can_include_the_migration,
);
