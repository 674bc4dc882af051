//! The migration and the generated entity describe the same table, on every backend; the
//! migration is idempotent and keeps to its own history table.

mod common;

use common::{Backend, TestDb, fresh_db, store_on};
use pavex_session::{SessionId, store::SessionStorageBackend};
use pavex_session_sea_orm::{CreateSessionsTable, Migrator, SeaOrmSessionStore, entity::sessions};
use pavex_session_sea_orm_migration::{DEADLINE_INDEX, MIGRATION_TABLE, SESSIONS_TABLE};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DbBackend, EntityTrait, Schema, Statement, sea_query::Alias,
};
use sea_orm_migration::{MigrationTrait, MigratorTrait, SchemaManager, prelude::*};
use serde_json::json;

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
    let summary: Vec<_> = cols
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.data_type.as_str(),
                c.nullable,
                c.primary_key,
            )
        })
        .collect();
    let (id, deadline, state) = match db.db_backend() {
        DbBackend::Postgres => ("uuid", "bigint", "jsonb"),
        // MariaDB stores JSON as LONGTEXT with a json_valid() check; MySQL 8 would say `json`.
        DbBackend::MySql => ("binary(16)", "bigint(20)", "longtext"),
        _ => ("uuid_text", "integer", "jsonb_text"),
    };
    assert_eq!(
        summary,
        vec![
            ("id", id, false, true),
            ("deadline", deadline, false, false),
            ("state", state, false, false),
        ]
    );
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        vec![(DEADLINE_INDEX.to_owned(), "deadline".to_owned())]
    );
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
    assert_eq!(
        columns(&db, SESSIONS_TABLE).await,
        columns(&db, from_entity).await
    );

    // And the entity reads and writes the migrated table, interchangeably with the store.
    let id = SessionId::random();
    let model = sessions::Model {
        id: id.inner(),
        deadline: i64::MAX / 4,
        state: json!({"written": "by the entity"}),
    };
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(model.id),
        deadline: Set(model.deadline),
        state: Set(model.state.clone()),
    })
    .exec_without_returning(&db.db)
    .await
    .unwrap();
    assert_eq!(
        sessions::Entity::find_by_id(id.inner())
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
    CreateSessionsTable.up(&manager).await.unwrap();
    CreateSessionsTable.up(&manager).await.unwrap();
    assert!(
        store.load(&id).await.unwrap().is_some(),
        "existing sessions are kept"
    );
    assert_eq!(indexes(&db, SESSIONS_TABLE).await.len(), 1);
}

/// A table created without the index (by hand, or from the entity) gets the index.
async fn migrate_completes_an_existing_table(backend: Backend) {
    let db = fresh_db(backend).await;
    let create = Schema::new(db.db_backend()).create_table_from_entity(sessions::Entity);
    db.db.execute(&create).await.unwrap();
    SeaOrmSessionStore::new(db.db.clone())
        .migrate()
        .await
        .unwrap();
    assert_eq!(
        indexes(&db, SESSIONS_TABLE).await,
        vec![(DEADLINE_INDEX.to_owned(), "deadline".to_owned())]
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
        vec![Box::new(CreateSessionsTable)]
    }
}

async fn an_app_migrator_can_include_the_migration(backend: Backend) {
    let db = fresh_db(backend).await;
    AppMigrator::up(&db.db, None).await.unwrap();
    assert!(has_table(&db, SESSIONS_TABLE).await);
    assert!(has_table(&db, "seaql_migrations").await);
    // Switching to our own migrator later is a no-op on the schema.
    Migrator::up(&db.db, None).await.unwrap();
    assert_eq!(indexes(&db, SESSIONS_TABLE).await.len(), 1);
    AppMigrator::down(&db.db, None).await.unwrap();
    assert!(!has_table(&db, SESSIONS_TABLE).await);
}

on_every_backend!(
    migration_creates_the_documented_schema,
    entity_agrees_with_the_migration,
    migrate_is_idempotent,
    migrate_completes_an_existing_table,
    migrator_keeps_its_own_history_and_drops_only_its_table,
    an_app_migrator_can_include_the_migration,
);
