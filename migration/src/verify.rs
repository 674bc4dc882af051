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
    ConnectionTrait, DbBackend, DbErr, QueryResult,
    sea_query::{Alias, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement},
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
    match inspect(db, table).await? {
        TableState::Missing => Err(SchemaMismatch::new(
            table,
            MismatchKind::Missing,
            "a table",
            "no such table".to_owned(),
        )
        .into()),
        TableState::Ours(definition) if definition.revoked_missing => Err(SchemaMismatch::new(
            table,
            MismatchKind::Altered,
            &format!("the table {} beside it", table.revoked()),
            "no such table".to_owned(),
        )
        .into()),
        TableState::Ours(definition) => match missing_index(&definition) {
            None => Ok(CheckedTable {
                primary_key: definition.primary_key_name.unwrap_or_default(),
            }),
            Some(index) => Err(SchemaMismatch::new(
                table,
                MismatchKind::Altered,
                index.what,
                "no such index".to_owned(),
            )
            .into()),
        },
        TableState::Refused(mismatch) => Err(mismatch.into()),
    }
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
    if let Some(kind) = &definition.not_plain {
        return Ok(TableState::Refused(SchemaMismatch::new(
            table,
            MismatchKind::NotAPlainTable,
            "a plain table",
            kind.clone(),
        )));
    }
    let found_marker = || match &definition.marker {
        Some(text) => format!("the marker {text:?}"),
        None => "no marker".to_owned(),
    };
    match definition.marker.as_deref().and_then(marker::version) {
        None => {
            let kind = match is_pavex_session_sqlx(&definition, backend) {
                true => MismatchKind::PavexSessionSqlx,
                false => MismatchKind::Foreign,
            };
            Ok(TableState::Refused(SchemaMismatch::new(
                table,
                kind,
                "the marker our migration writes on the table it creates",
                found_marker(),
            )))
        }
        Some(version) if version > marker::SCHEMA_VERSION => {
            Ok(TableState::Refused(SchemaMismatch::new(
                table,
                MismatchKind::NewerSchema,
                &format!("schema {} at most", marker::SCHEMA_VERSION),
                found_marker(),
            )))
        }
        Some(_) => {
            if let Some(mismatch) = column_mismatch(&definition, backend, table) {
                return Ok(TableState::Refused(mismatch));
            }
            let revoked = table.revoked();
            let revoked_missing = match read_definition(db, &revoked).await? {
                None => true,
                Some(found) if found.not_plain.is_none() && found.marker == definition.marker => {
                    false
                }
                Some(found) => {
                    return Ok(TableState::Refused(SchemaMismatch::new(
                        &revoked,
                        MismatchKind::Foreign,
                        "the marker our migration writes on the tables it creates",
                        match found.marker {
                            Some(text) => format!("the marker {text:?}"),
                            None => "no marker".to_owned(),
                        },
                    )));
                }
            };
            Ok(TableState::Ours(TableDefinition {
                revoked_missing,
                ..definition
            }))
        }
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
        mysql: &["varbinary(32)"],
        sqlite: &["varbinary_blob(32)"],
        what: "a NOT NULL binary column holding the SHA-256 of the session id",
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
/// `(subject, created_at)` (partial, `WHERE subject IS NOT NULL`, where the backend can).
pub(crate) const INDEXES: [NeededIndex; 2] = [
    NeededIndex {
        columns: &["deadline"],
        what: "an index on (deadline)",
    },
    NeededIndex {
        columns: &["subject", "created_at"],
        what: "an index on (subject, created_at)",
    },
];

/// The first of [`INDEXES`] that no valid index of `definition` serves.
pub(crate) fn missing_index(definition: &TableDefinition) -> Option<&'static NeededIndex> {
    INDEXES.iter().find(|needed| is_missing(definition, needed))
}

/// Whether no valid index of `definition` serves `needed`.
pub(crate) fn is_missing(definition: &TableDefinition, needed: &NeededIndex) -> bool {
    !definition
        .indexes
        .iter()
        .any(|index| index.valid && index.columns.starts_with(&owned(needed.columns)))
}

fn owned(columns: &[&str]) -> Vec<String> {
    columns.iter().map(|c| (*c).to_owned()).collect()
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
            return Some(differs(
                needed.name,
                format!("{} ({})", needed.what, accepted.join(" or ")),
                format!(
                    "{} {}",
                    column.data_type,
                    match column.nullable {
                        true => "NULL",
                        false => "NOT NULL",
                    }
                ),
            ));
        }
    }
    if definition.primary_key != ["id"] {
        return Some(SchemaMismatch {
            column: None,
            ..differs(
                "id",
                "the primary key (id)".to_owned(),
                format!("the primary key ({})", definition.primary_key.join(", ")),
            )
        });
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
    /// Whether the table of revoked sign-ins beside it is missing (for a table of ours).
    pub(crate) revoked_missing: bool,
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
    let (relation, columns, indexes) = match backend {
        DbBackend::Postgres => (
            postgres_relation(table),
            postgres_columns(table),
            postgres_indexes(table),
        ),
        DbBackend::MySql => (
            mysql_relation(table),
            mysql_columns(table),
            mysql_indexes(table),
        ),
        _ => (
            sqlite_relation(table),
            sqlite_columns(table),
            sqlite_indexes(table),
        ),
    };
    let Some(relation) = db.query_one(&relation).await? else {
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
    for row in db.query_all(&columns).await? {
        definition.columns.push(CatalogColumn {
            name: text(&row, "name")?,
            data_type: text(&row, "data_type")?.to_lowercase(),
            nullable: text(&row, "nullable")?.eq_ignore_ascii_case("yes"),
        });
        if integer(&row, "pk")? > 0 && backend == DbBackend::Sqlite {
            definition.primary_key.push(text(&row, "name")?);
        }
    }
    for row in db.query_all(&indexes).await? {
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
    let relation = match db.get_database_backend() {
        DbBackend::Postgres => postgres_relation(&table),
        DbBackend::MySql => mysql_relation(&table),
        _ => sqlite_relation(&table),
    };
    Ok(db.query_one(&relation).await?.is_some())
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

fn integer(row: &QueryResult, column: &str) -> Result<i64, DbErr> {
    row.try_get::<i64>("", column)
        .or_else(|_| row.try_get::<i32>("", column).map(i64::from))
        .or_else(|_| row.try_get::<bool>("", column).map(i64::from))
        .or_else(|_| {
            row.try_get::<u64>("", column)
                .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
        })
        .map_err(|e| DbErr::Custom(format!("the catalog's `{column}`: {e}")))
}

fn postgres_schema(table: &SessionsTable) -> Expr {
    match table.schema() {
        Some(schema) => Expr::val(schema),
        None => Expr::cust("current_schema()"),
    }
}

/// `kind` (`relkind`), `comment` and whether it takes part in inheritance (`inherited`).
fn postgres_relation(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::cust("CAST(c.relkind AS text)"), "kind")
        .expr_as(Expr::cust("obj_description(c.oid, 'pg_class')"), "comment")
        .expr_as(
            Expr::cust(
                "CAST(EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid \
                 OR h.inhparent = c.oid) AS INTEGER)",
            ),
            "inherited",
        )
        .from_as("pg_class", "c")
        .join_as(
            JoinType::InnerJoin,
            "pg_namespace",
            "n",
            Expr::col(("n", "oid")).equals(("c", "relnamespace")),
        )
        .and_where(Expr::col(("n", "nspname")).eq(postgres_schema(table)))
        .and_where(Expr::col(("c", "relname")).eq(table.name()))
        .to_owned()
}

/// `name`, `data_type`, `nullable` ("YES"/"NO") and `pk` (0 here) of each column.
fn postgres_columns(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("column_name"), "name")
        .expr_as(Expr::col("data_type"), "data_type")
        .expr_as(Expr::col("is_nullable"), "nullable")
        .expr_as(Expr::val(0), "pk")
        .from(("information_schema", "columns"))
        .and_where(Expr::col("table_schema").eq(postgres_schema(table)))
        .and_where(Expr::col("table_name").eq(table.name()))
        .order_by("ordinal_position", Order::Asc)
        .to_owned()
}

/// One row per column of each index: `kind` ("primary" or "index"), `index_name`, whether it
/// is `valid` (1 or 0), `column_name`, in index order.
fn postgres_indexes(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(
            Expr::cust("CASE WHEN i.indisprimary THEN 'primary' ELSE 'index' END"),
            "kind",
        )
        .expr_as(Expr::col(("ic", "relname")), "index_name")
        .expr_as(
            Expr::cust("CAST(CASE WHEN i.indisvalid THEN 1 ELSE 0 END AS BIGINT)"),
            "valid",
        )
        .expr_as(Expr::col(("a", "attname")), "column_name")
        .from_as("pg_index", "i")
        .join_as(
            JoinType::InnerJoin,
            "pg_class",
            "c",
            Expr::col(("c", "oid")).equals(("i", "indrelid")),
        )
        .join_as(
            JoinType::InnerJoin,
            "pg_class",
            "ic",
            Expr::col(("ic", "oid")).equals(("i", "indexrelid")),
        )
        .join_as(
            JoinType::InnerJoin,
            "pg_namespace",
            "n",
            Expr::col(("n", "oid")).equals(("c", "relnamespace")),
        )
        .join_as(
            JoinType::InnerJoin,
            "pg_attribute",
            "a",
            Expr::col(("a", "attrelid"))
                .equals(("c", "oid"))
                .and(Expr::cust("a.attnum = ANY(i.indkey)")),
        )
        .and_where(Expr::col(("n", "nspname")).eq(postgres_schema(table)))
        .and_where(Expr::col(("c", "relname")).eq(table.name()))
        .order_by_expr(Expr::cust("i.indexrelid"), Order::Asc)
        // `indkey` is an `int2vector`; as an array its positions follow the index's columns.
        .order_by_expr(
            Expr::cust("array_position(CAST(i.indkey AS int2[]), a.attnum)"),
            Order::Asc,
        )
        .to_owned()
}

fn mysql_relation(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("TABLE_TYPE"), "kind")
        .expr_as(Expr::col("TABLE_COMMENT"), "comment")
        .from(("information_schema", "TABLES"))
        .and_where(Expr::col("TABLE_SCHEMA").eq(Expr::cust("DATABASE()")))
        .and_where(Expr::col("TABLE_NAME").eq(table.name()))
        .to_owned()
}

fn mysql_columns(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("COLUMN_NAME"), "name")
        .expr_as(Expr::col("COLUMN_TYPE"), "data_type")
        .expr_as(Expr::col("IS_NULLABLE"), "nullable")
        .expr_as(Expr::val(0), "pk")
        .from(("information_schema", "COLUMNS"))
        .and_where(Expr::col("TABLE_SCHEMA").eq(Expr::cust("DATABASE()")))
        .and_where(Expr::col("TABLE_NAME").eq(table.name()))
        .order_by("ORDINAL_POSITION", Order::Asc)
        .to_owned()
}

fn mysql_indexes(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(
            Expr::case(Expr::col("INDEX_NAME").eq("PRIMARY"), "primary").finally("index"),
            "kind",
        )
        .expr_as(Expr::col("INDEX_NAME"), "index_name")
        // MySQL and MariaDB have no invalid indexes.
        .expr_as(Expr::val(1), "valid")
        .expr_as(Expr::col("COLUMN_NAME"), "column_name")
        .from(("information_schema", "STATISTICS"))
        .and_where(Expr::col("TABLE_SCHEMA").eq(Expr::cust("DATABASE()")))
        .and_where(Expr::col("TABLE_NAME").eq(table.name()))
        .order_by("INDEX_NAME", Order::Asc)
        .order_by("SEQ_IN_INDEX", Order::Asc)
        .to_owned()
}

/// `kind` (`table` or `view`) and `comment`: the whole `CREATE TABLE` text, which keeps the
/// comment our migration put in it.
fn sqlite_relation(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("type"), "kind")
        .expr_as(Expr::col("sql"), "comment")
        .from("sqlite_master")
        .and_where(Expr::col("type").is_in(["table", "view"]))
        .and_where(Expr::col("name").eq(table.name()))
        .to_owned()
}

fn sqlite_columns(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("name"), "name")
        .expr_as(Expr::col("type"), "data_type")
        .expr_as(
            Expr::case(Expr::col("notnull").eq(0), "YES").finally("NO"),
            "nullable",
        )
        .expr_as(Expr::col("pk"), "pk")
        .from_function(
            Func::cust("pragma_table_info").arg(table.name()),
            Alias::new("t"),
        )
        .order_by("pk", Order::Asc)
        .order_by("cid", Order::Asc)
        .to_owned()
}

/// The indexes SQLite made for the primary key (`origin = 'pk'`) are left out: the primary key
/// is read from `pragma_table_info`.
fn sqlite_indexes(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::val("index"), "kind")
        .expr_as(Expr::col(("il", "name")), "index_name")
        .expr_as(Expr::val(1), "valid")
        .expr_as(Expr::col(("ii", "name")), "column_name")
        .from_function(
            Func::cust("pragma_index_list").arg(table.name()),
            Alias::new("il"),
        )
        .from_function(
            Func::cust("pragma_index_info").arg(Expr::col(("il", "name"))),
            Alias::new("ii"),
        )
        .and_where(Expr::col(("il", "origin")).ne("pk"))
        .order_by(("il", "name"), Order::Asc)
        .order_by(("ii", "seqno"), Order::Asc)
        .to_owned()
}

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
