//! Whether a table is one the store may use: ours by proof (the marker that
//! [`CreateSessionsTable`](crate::CreateSessionsTable) writes on the table), then of the schema
//! the store's statements need.
//!
//! A table called `sessions` may be another store's (`pavex_session_sqlx` keeps deadlines in
//! seconds, or as `timestamptz`) or the application's own, possibly of the very same column
//! types. Used as ours, its rows would be read wrong and deleted as expired, so its shape is never
//! taken as proof: without our marker nothing is read from, written to or dropped from it.

use crate::{SessionsTable, marker};
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value,
};
use std::fmt;

/// A table that the store cannot use as its sessions table, and why.
///
/// Nothing is read from, written to or deleted from such a table: every operation of the store
/// fails with this error as its cause, and the migrations refuse to touch it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the table {table} cannot be used as a pavex_session_sea_orm sessions table{column_text}: \
     expected {expected}, found {found}. Nothing was read from or written to it. {way_out}",
    column_text = self.column.as_deref().map(|c| format!(" (column `{c}`)")).unwrap_or_default(),
    way_out = self.kind.way_out(),
)]
#[non_exhaustive]
pub struct SchemaMismatch {
    table: String,
    column: Option<String>,
    expected: String,
    found: String,
    kind: MismatchKind,
}

/// What a refused table is, which decides the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MismatchKind {
    /// There is no such table.
    Missing,
    /// A table without our marker that has the shape of `pavex_session_sqlx` 0.2's.
    PavexSessionSqlx,
    /// A table without our marker: the application's own, or another library's.
    Foreign,
    /// Not a plain table: a view, a partitioned, inherited or foreign table (PostgreSQL).
    NotAPlainTable,
    /// Our table, changed by hand since: a column or an index is not as our migration made it.
    Altered,
    /// Our table, of a schema newer than this version of the crate knows: upgrade the crate.
    NewerSchema,
}

impl MismatchKind {
    fn way_out(self) -> &'static str {
        match self {
            Self::Missing => {
                "Create it first: SeaOrmSessionStore::migrate(), the \
                 pavex_session_sea_orm_migration binary (`up`), or CreateSessionsTable in your \
                 own migrator."
            }
            Self::PavexSessionSqlx => {
                "It looks like pavex_session_sqlx's table: adopt it with `pavex-session-sea-orm \
                 adopt-sqlx-table` (or AdoptPavexSessionSqlxTable), which keeps every live \
                 session, or give this store another table (with_table, --table)."
            }
            Self::Foreign => {
                "A table is used only if our migration created it (its marker). Give the store \
                 another table (SeaOrmSessionStore::with_table, --table, PAVEX_SESSION_TABLE), \
                 or rename this one."
            }
            Self::NotAPlainTable => {
                "The store needs a plain table: give it another name (with_table, --table)."
            }
            Self::Altered => {
                "Put back what was changed (run the migrations again to recreate a missing \
                 index), or give the store a new table."
            }
            Self::NewerSchema => {
                "A newer version of pavex_session_sea_orm migrated it: upgrade this one."
            }
        }
    }
}

impl SchemaMismatch {
    /// The table that was checked (`name` or `schema.name`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The column that differs, if the difference is in one column.
    pub fn column(&self) -> Option<&str> {
        self.column.as_deref()
    }

    /// What the store needs there.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What the database has there.
    pub fn found(&self) -> &str {
        &self.found
    }

    /// What the table is.
    pub fn kind(&self) -> MismatchKind {
        self.kind
    }

    fn new(table: &SessionsTable, kind: MismatchKind, expected: &str, found: String) -> Self {
        Self {
            table: table.to_string(),
            column: None,
            expected: expected.to_owned(),
            found,
            kind,
        }
    }
}

/// Why a table could not be confirmed as a sessions table the store can use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaCheckError {
    /// The table is not one the store can use.
    #[error(transparent)]
    Mismatch(#[from] SchemaMismatch),
    /// The catalog could not be read.
    #[error("could not read the definition of the sessions table: {0}")]
    Db(#[from] DbErr),
}

impl From<SchemaCheckError> for DbErr {
    /// For the places where sea-orm-migration's traits require a `DbErr`: a mismatch becomes
    /// `DbErr::Migration` with its message.
    fn from(e: SchemaCheckError) -> Self {
        match e {
            SchemaCheckError::Mismatch(mismatch) => DbErr::Migration(mismatch.to_string()),
            SchemaCheckError::Db(e) => e,
        }
    }
}

/// What [`check_table`] found out about a table it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedTable {
    primary_key: String,
}

impl CheckedTable {
    /// The name of the primary key's constraint or index (PostgreSQL: usually `<table>_pkey`;
    /// MySQL: `PRIMARY`; SQLite: empty, its errors name no constraint), so that a violation of
    /// it can be told from a violation of another unique index.
    pub fn primary_key_name(&self) -> &str {
        &self.primary_key
    }
}

/// Checks that `table` is ours (it carries the marker our migration wrote) and has the columns,
/// primary key and indexes the store needs. Columns and indexes an application added are fine.
///
/// ```
/// use pavex_session_sea_orm_migration::{MismatchKind, SchemaCheckError, SessionsTable, check_table};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let db = sea_orm_migration::sea_orm::Database::connect("sqlite::memory:").await?;
/// match check_table(&db, &SessionsTable::default()).await {
///     Err(SchemaCheckError::Mismatch(e)) => assert_eq!(e.kind(), MismatchKind::Missing),
///     other => panic!("{other:?}"),
/// }
/// # Ok(())
/// # }
/// ```
pub async fn check_table<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
) -> Result<CheckedTable, SchemaCheckError> {
    let (kind, expected, found) = match inspect(db, table).await? {
        TableState::Refused(mismatch) => return Err(mismatch.into()),
        TableState::Missing => (MismatchKind::Missing, "a table".to_owned(), "no such table"),
        TableState::Ours(definition) if !definition.missing_beside.is_empty() => {
            let missing = definition.missing_beside.iter().map(ToString::to_string);
            let expected = format!(
                "the table {} beside it",
                missing.collect::<Vec<_>>().join(", ")
            );
            (MismatchKind::Altered, expected, "no such table")
        }
        TableState::Ours(definition) => {
            match missing_indexes(&definition, db.get_database_backend()).next() {
                Some(index) => (MismatchKind::Altered, index.what.into(), "no such index"),
                None => {
                    let primary_key = definition.primary_key_name.clone().unwrap_or_default();
                    return Ok(CheckedTable { primary_key });
                }
            }
        }
    };
    Err(SchemaMismatch::new(table, kind, &expected, found.to_owned()).into())
}

/// What a table is, as far as the migrations are concerned (indexes aside: a migration creates
/// the ones that are missing).
#[derive(Debug)]
pub(crate) enum TableState {
    Missing,
    /// Ours, with the columns and primary key the store needs.
    Ours(TableDefinition),
    Refused(SchemaMismatch),
}

pub(crate) async fn inspect<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
) -> Result<TableState, DbErr> {
    let backend = db.get_database_backend();
    let Some(definition) = read_definition(db, table).await? else {
        return Ok(TableState::Missing);
    };
    let refused = |kind, expected: &str, found: String| {
        Ok(TableState::Refused(SchemaMismatch::new(
            table, kind, expected, found,
        )))
    };
    if let Some(kind) = &definition.not_plain {
        return refused(MismatchKind::NotAPlainTable, "a plain table", kind.clone());
    }
    let text = definition.marker.as_deref();
    let expected = "the marker our migration writes on the table it creates";
    match text.and_then(marker::version) {
        None if is_pavex_session_sqlx(&definition, backend) => {
            return refused(MismatchKind::PavexSessionSqlx, expected, found_marker(text));
        }
        None => return refused(MismatchKind::Foreign, expected, found_marker(text)),
        Some(version) if version > marker::SCHEMA_VERSION => {
            let expected = format!("schema {} at most", marker::SCHEMA_VERSION);
            return refused(MismatchKind::NewerSchema, &expected, found_marker(text));
        }
        Some(_) => {}
    }
    if let Some(mismatch) = column_mismatch(&definition, backend, table) {
        return Ok(TableState::Refused(mismatch));
    }
    let mut missing_beside = Vec::new();
    for beside in table.beside(backend) {
        match read_definition(db, &beside).await? {
            None => missing_beside.push(beside),
            Some(found) if found.not_plain.is_none() && found.marker == definition.marker => {}
            Some(found) => {
                return Ok(TableState::Refused(SchemaMismatch::new(
                    &beside,
                    MismatchKind::Foreign,
                    "the marker our migration writes on the tables it creates",
                    found_marker(found.marker.as_deref()),
                )));
            }
        }
    }
    Ok(TableState::Ours(TableDefinition {
        missing_beside,
        ..definition
    }))
}

/// What a refused table has where our marker would be.
fn found_marker(marker: Option<&str>) -> String {
    match marker {
        Some(text) => format!("the marker {text:?}"),
        None => "no marker".to_owned(),
    }
}

/// A column the store needs, and its declared type on each backend.
pub(crate) struct Needed {
    pub(crate) name: &'static str,
    nullable: bool,
    postgres: &'static [&'static str],
    mysql: &'static [&'static str],
    sqlite: &'static [&'static str],
    what: &'static str,
}

const MILLIS: Needed = Needed {
    name: "",
    nullable: false,
    postgres: &["bigint"],
    mysql: &["bigint", "bigint(20)"],
    sqlite: &["integer", "bigint"],
    what: "a NOT NULL BIGINT of Unix epoch milliseconds",
};

/// The columns of the table, as [`CreateSessionsTable`](crate::CreateSessionsTable) makes them.
const COLUMNS: [Needed; 7] = [
    Needed {
        name: "id",
        nullable: false,
        postgres: &["bytea"],
        mysql: &["binary(16)"],
        sqlite: &["blob(16)"],
        what: "a NOT NULL 16-byte binary column holding the hash of the session id",
    },
    Needed {
        name: "deadline",
        ..MILLIS
    },
    Needed {
        name: "state",
        nullable: false,
        postgres: &["bytea"],
        mysql: &["longblob"],
        sqlite: &["blob"],
        what: "a NOT NULL binary column holding the state",
    },
    Needed {
        name: "subject",
        nullable: true,
        postgres: &["bytea"],
        mysql: &["varbinary(1020)"],
        sqlite: &["varbinary_blob(1020)"],
        what: "a nullable binary column holding the subject's UTF-8 bytes",
    },
    Needed {
        name: "sign_in",
        nullable: true,
        postgres: &["bytea"],
        mysql: &["varbinary(1020)"],
        sqlite: &["varbinary_blob(1020)"],
        what: "a nullable binary column holding the sign-in's UTF-8 bytes",
    },
    Needed {
        name: "created_at",
        ..MILLIS
    },
    Needed {
        name: "updated_at",
        ..MILLIS
    },
];

/// An index the store's statements need: one whose columns start with `columns`.
pub(crate) struct NeededIndex {
    pub(crate) columns: &'static [&'static str],
    what: &'static str,
}

/// The indexes of the table: the expiry clean-up walks `deadline`, the subject API walks
/// `(subject, created_at)` (partial, `WHERE subject IS NOT NULL`), but on MySQL, which has no
/// partial indexes and keeps the subjects' sessions in `<table>_by_subject` instead.
pub(crate) fn needed_indexes(backend: DbBackend) -> &'static [NeededIndex] {
    match backend {
        DbBackend::MySql => &[BY_DEADLINE],
        _ => &[BY_DEADLINE, BY_SUBJECT],
    }
}

const BY_DEADLINE: NeededIndex = NeededIndex {
    columns: &["deadline"],
    what: "an index on (deadline)",
};

const BY_SUBJECT: NeededIndex = NeededIndex {
    columns: &["subject", "created_at"],
    what: "an index on (subject, created_at)",
};

/// The [`needed_indexes`] that no valid index of `definition` serves (one whose columns start with
/// theirs), in order.
pub(crate) fn missing_indexes(
    definition: &TableDefinition,
    backend: DbBackend,
) -> impl Iterator<Item = &'static NeededIndex> + '_ {
    needed_indexes(backend).iter().filter(|needed| {
        !definition.indexes.iter().any(|index| {
            let prefix = index.columns.iter().take(needed.columns.len());
            index.valid && prefix.eq(needed.columns)
        })
    })
}

/// The first difference in columns or primary key between `definition` and the schema.
fn column_mismatch(
    definition: &TableDefinition,
    backend: DbBackend,
    table: &SessionsTable,
) -> Option<SchemaMismatch> {
    let differs = |column: &str, expected: String, found: String| SchemaMismatch {
        table: table.to_string(),
        column: Some(column.to_owned()),
        expected,
        found,
        kind: MismatchKind::Altered,
    };
    for needed in &COLUMNS {
        let accepted = match backend {
            DbBackend::Postgres => needed.postgres,
            DbBackend::MySql => needed.mysql,
            _ => needed.sqlite,
        };
        let Some(column) = definition.columns.iter().find(|c| c.name == needed.name) else {
            return Some(differs(
                needed.name,
                needed.what.to_owned(),
                "no such column".to_owned(),
            ));
        };
        // SQLite reports a non-INTEGER primary key as nullable (a historical quirk): the
        // primary key's own check below covers it.
        let nullable_ok = column.nullable == needed.nullable
            || (backend == DbBackend::Sqlite && needed.name == "id");
        if !accepted.contains(&column.data_type.as_str()) || !nullable_ok {
            let null = if column.nullable { "NULL" } else { "NOT NULL" };
            return Some(differs(
                needed.name,
                format!("{} ({})", needed.what, accepted.join(" or ")),
                format!("{} {null}", column.data_type),
            ));
        }
    }
    if definition.primary_key != ["id"] {
        return Some(SchemaMismatch::new(
            table,
            MismatchKind::Altered,
            "the primary key (id)",
            format!("the primary key ({})", definition.primary_key.join(", ")),
        ));
    }
    None
}

/// Whether `definition` has the shape of the table `pavex_session_sqlx` 0.2's `migrate()`
/// creates: only to give a table without our marker the right way out, never as proof.
pub(crate) fn is_pavex_session_sqlx(definition: &TableDefinition, backend: DbBackend) -> bool {
    // SQLite reports a `TEXT PRIMARY KEY` column as nullable (only INTEGER primary keys are
    // implicitly NOT NULL there), so the primary key's nullability is not part of the check.
    let has = |name: &str, types: &[&str]| {
        definition.columns.iter().any(|c| {
            c.name == name && (!c.nullable || name == "id") && types.contains(&c.data_type.as_str())
        })
    };
    let (id, deadline, state): (&[&str], &[&str], &[&str]) = match backend {
        DbBackend::Postgres => (&["uuid"], &["timestamp with time zone"], &["jsonb"]),
        DbBackend::MySql => (
            &["char(36)"],
            &["bigint", "bigint(20)"],
            &["json", "longtext"],
        ),
        _ => (&["text"], &["integer"], &["jsonb"]),
    };
    definition.columns.len() == 3
        && has("id", id)
        && has("deadline", deadline)
        && has("state", state)
        && definition.primary_key == ["id"]
}

/// A table's definition as its database's catalog describes it.
#[derive(Debug, Default)]
pub(crate) struct TableDefinition {
    /// The text where our marker would be: the table's comment (PostgreSQL, MySQL), or the
    /// comment in its `CREATE TABLE` (SQLite).
    pub(crate) marker: Option<String>,
    /// What it is, when it is not a plain table (`"a view"`, `"a partitioned table"`, ...).
    pub(crate) not_plain: Option<String>,
    pub(crate) columns: Vec<CatalogColumn>,
    /// The primary key's columns, in order.
    pub(crate) primary_key: Vec<String>,
    /// The primary key's index (PostgreSQL, MySQL).
    pub(crate) primary_key_name: Option<String>,
    /// Each index other than the primary key's.
    pub(crate) indexes: Vec<CatalogIndex>,
    /// The tables beside it that are missing (for a table of ours: see
    /// [`SessionsTable::beside`]).
    pub(crate) missing_beside: Vec<SessionsTable>,
}

/// An index as the catalog describes it.
#[derive(Debug)]
pub(crate) struct CatalogIndex {
    pub(crate) name: String,
    /// Its columns, in order.
    pub(crate) columns: Vec<String>,
    /// False for what a failed `CREATE INDEX CONCURRENTLY` leaves behind (PostgreSQL).
    pub(crate) valid: bool,
}

#[derive(Debug)]
pub(crate) struct CatalogColumn {
    pub(crate) name: String,
    /// The declared type, lowercase (MySQL: `COLUMN_TYPE`, e.g. `varbinary(32)`).
    pub(crate) data_type: String,
    pub(crate) nullable: bool,
}

/// The definition of `table`, or `None` if there is no such table (or view).
pub(crate) async fn read_definition<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
) -> Result<Option<TableDefinition>, DbErr> {
    let backend = db.get_database_backend();
    let [relation, columns, indexes] = catalog(backend, table);
    let Some(relation) = db.query_one_raw(relation).await? else {
        return Ok(None);
    };
    let kind = text(&relation, "kind")?;
    // MySQL reports a table without a comment as "".
    let comment = optional_text(&relation, "comment")?.filter(|c| !c.is_empty());
    let not_plain = match (backend, kind.as_str()) {
        (DbBackend::Postgres, "r") if integer(&relation, "inherited")? != 0 => {
            Some("a table with inheritance (a parent or a child)".to_owned())
        }
        (DbBackend::Postgres, "r") | (DbBackend::MySql, "BASE TABLE") => None,
        (DbBackend::Sqlite, "table") => None,
        (_, "p") => Some("a partitioned table".to_owned()),
        (_, "v" | "VIEW" | "SYSTEM VIEW" | "view") => Some("a view".to_owned()),
        (_, "m") => Some("a materialized view".to_owned()),
        (_, "f") => Some("a foreign table".to_owned()),
        (_, other) => Some(format!("a relation of kind {other:?}")),
    };
    let marker = match backend {
        DbBackend::Sqlite => comment.as_deref().and_then(marker::in_sqlite_ddl),
        _ => comment,
    };
    let mut definition = TableDefinition {
        marker,
        not_plain,
        ..TableDefinition::default()
    };
    for row in db.query_all_raw(columns).await? {
        definition.columns.push(CatalogColumn {
            name: text(&row, "name")?,
            data_type: text(&row, "data_type")?.to_lowercase(),
            nullable: text(&row, "nullable")?.eq_ignore_ascii_case("yes"),
        });
        if backend == DbBackend::Sqlite && integer(&row, "pk")? > 0 {
            definition.primary_key.push(text(&row, "name")?);
        }
    }
    for row in db.query_all_raw(indexes).await? {
        let name = text(&row, "index_name")?;
        let column = text(&row, "column_name")?;
        if text(&row, "kind")? == "primary" {
            definition.primary_key.push(column);
            definition.primary_key_name = Some(name);
            continue;
        }
        match definition.indexes.last_mut() {
            Some(index) if index.name == name => index.columns.push(column),
            _ => definition.indexes.push(CatalogIndex {
                name,
                columns: vec![column],
                valid: integer(&row, "valid")? != 0,
            }),
        }
    }
    Ok(Some(definition))
}

/// Whether a table (or view) `name` exists in the connection's default schema: one catalog
/// query.
pub(crate) async fn table_exists<C: ConnectionTrait>(db: &C, name: &str) -> Result<bool, DbErr> {
    let table = SessionsTable::new(name).map_err(|e| DbErr::Custom(e.to_string()))?;
    let [relation, ..] = catalog(db.get_database_backend(), &table);
    Ok(db.query_one_raw(relation).await?.is_some())
}

fn optional_text(row: &QueryResult, column: &str) -> Result<Option<String>, DbErr> {
    // MySQL's catalog answers in binary strings on some servers: accept both.
    row.try_get::<Option<String>>("", column)
        .or_else(|_| {
            row.try_get::<Option<Vec<u8>>>("", column)
                .map(|b| b.map(|b| String::from_utf8_lossy(&b).into_owned()))
        })
        .map_err(|e| DbErr::Custom(format!("the catalog's `{column}`: {e}")))
}

fn text(row: &QueryResult, column: &str) -> Result<String, DbErr> {
    optional_text(row, column)?
        .ok_or_else(|| DbErr::Custom(format!("the catalog's `{column}` is NULL")))
}

/// A numeric column of [`catalog`]'s queries, each selected as a signed 64-bit integer (on
/// MySQL, as a signed integer of any width, which reads as one).
fn integer(row: &QueryResult, column: &str) -> Result<i64, DbErr> {
    row.try_get::<i64>("", column)
        .map_err(|e| DbErr::Custom(format!("the catalog's `{column}`: {e}")))
}

/// The catalog queries that describe `table` on `backend`, which read:
///
/// 1. the relation: `kind` (PostgreSQL's `relkind`, MySQL's `TABLE_TYPE`, SQLite's `type`),
///    `comment` (SQLite: the whole `CREATE TABLE` text, which keeps the comment our migration
///    put in it) and, on PostgreSQL, whether it takes part in inheritance (`inherited`);
/// 2. its columns, in order: `name`, `data_type`, `nullable` ("YES"/"NO") and, on SQLite, `pk`
///    (the column's position in the primary key, 0 outside it);
/// 3. one row per column of each index, in index order: `kind` ("primary" or "index"),
///    `index_name`, whether it is `valid` (1 or 0), `column_name`. SQLite's own indexes for the
///    primary key (`origin = 'pk'`) are left out: the primary key is read from the columns' `pk`.
fn catalog(backend: DbBackend, table: &SessionsTable) -> [Statement; 3] {
    let (queries, values): (_, Vec<Value>) = match backend {
        // Without a schema, the connection's default one.
        DbBackend::Postgres => (
            POSTGRES_CATALOG,
            vec![
                table.schema().map(str::to_owned).into(),
                table.name().into(),
            ],
        ),
        DbBackend::MySql => (MYSQL_CATALOG, vec![table.name().into()]),
        _ => (SQLITE_CATALOG, vec![table.name().into()]),
    };
    queries.map(|sql| Statement::from_sql_and_values(backend, sql, values.clone()))
}

/// [`catalog`]'s queries on PostgreSQL: `$1` is the schema (NULL for `current_schema()`), `$2`
/// the table's name.
const POSTGRES_CATALOG: [&str; 3] = [
    "SELECT CAST(c.relkind AS text) AS kind, obj_description(c.oid, 'pg_class') AS comment, \
       CAST(CASE WHEN EXISTS (SELECT 1 FROM pg_inherits h \
         WHERE h.inhrelid = c.oid OR h.inhparent = c.oid) THEN 1 ELSE 0 END AS BIGINT) \
         AS inherited \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2",
    "SELECT column_name AS name, data_type, is_nullable AS nullable \
     FROM information_schema.columns \
     WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2 \
     ORDER BY ordinal_position",
    // `indkey` is an `int2vector`; as an array its positions follow the index's columns.
    "SELECT CASE WHEN i.indisprimary THEN 'primary' ELSE 'index' END AS kind, \
       ic.relname AS index_name, \
       CAST(CASE WHEN i.indisvalid THEN 1 ELSE 0 END AS BIGINT) AS valid, \
       a.attname AS column_name \
     FROM pg_index i \
       JOIN pg_class c ON c.oid = i.indrelid \
       JOIN pg_class ic ON ic.oid = i.indexrelid \
       JOIN pg_namespace n ON n.oid = c.relnamespace \
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) \
     WHERE n.nspname = COALESCE($1, current_schema()) AND c.relname = $2 \
     ORDER BY i.indexrelid, array_position(CAST(i.indkey AS int2[]), a.attnum)",
];

/// [`catalog`]'s queries on MySQL/MariaDB, in the connection's database (`?`: the table's name).
/// MySQL and MariaDB have no invalid indexes.
const MYSQL_CATALOG: [&str; 3] = [
    "SELECT TABLE_TYPE AS kind, TABLE_COMMENT AS comment FROM information_schema.TABLES \
     WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
    "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS data_type, IS_NULLABLE AS nullable \
     FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
     ORDER BY ORDINAL_POSITION",
    "SELECT CASE WHEN INDEX_NAME = 'PRIMARY' THEN 'primary' ELSE 'index' END AS kind, \
       INDEX_NAME AS index_name, 1 AS valid, COLUMN_NAME AS column_name \
     FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? \
     ORDER BY INDEX_NAME, SEQ_IN_INDEX",
];

/// [`catalog`]'s queries on SQLite (`?`: the table's name).
const SQLITE_CATALOG: [&str; 3] = [
    "SELECT type AS kind, sql AS comment FROM sqlite_master \
     WHERE type IN ('table', 'view') AND name = ?",
    "SELECT name, type AS data_type, \
       CASE WHEN \"notnull\" = 0 THEN 'YES' ELSE 'NO' END AS nullable, pk \
     FROM pragma_table_info(?) ORDER BY pk, cid",
    "SELECT 'index' AS kind, il.name AS index_name, 1 AS valid, ii.name AS column_name \
     FROM pragma_index_list(?) AS il, pragma_index_info(il.name) AS ii \
     WHERE il.origin <> 'pk' ORDER BY il.name, ii.seqno",
];

impl fmt::Display for MismatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "missing",
            Self::PavexSessionSqlx => "pavex_session_sqlx's table",
            Self::Foreign => "a table that is not ours",
            Self::NotAPlainTable => "not a plain table",
            Self::Altered => "our table, altered",
            Self::NewerSchema => "our table, of a newer schema",
        })
    }
}
