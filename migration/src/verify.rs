//! Whether a table is one the store may use: its definition, read from the database's catalog,
//! compared with what the store's statements need.
//!
//! A table called `sessions` may be another store's (`pavex_session_sqlx` keeps deadlines in
//! seconds, or as `timestamptz`) or the application's own. Used as ours, its rows would be read
//! wrong and deleted as expired, so nothing runs on a table that fails this check.

use crate::SessionsTable;
use sea_orm_migration::sea_orm::{
    ConnectionTrait, DbBackend, DbErr, QueryResult,
    sea_query::{Alias, Expr, ExprTrait, Func, JoinType, Order, Query, SelectStatement},
};
use std::fmt;

/// A table that the store cannot use as its sessions table, and what differs.
///
/// Nothing is read from, written to or deleted from such a table: every operation of the store
/// fails with this error as its cause, and the migrations refuse to touch it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the table {table} is not a pavex_session_sea_orm sessions table{column_text}: expected \
     {expected}, found {found}. Nothing was read from or written to it. {way_out}",
    column_text = self.column.as_deref().map(|c| format!(" (column `{c}`)")).unwrap_or_default(),
    way_out = self.kind.way_out(),
)]
pub struct SchemaMismatch {
    table: String,
    column: Option<String>,
    expected: String,
    found: String,
    kind: MismatchKind,
}

/// What a mismatched table most likely is, which decides the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MismatchKind {
    /// There is no such table.
    Missing,
    /// The table of an earlier version of this crate: the migrations bring it up to date.
    Outdated,
    /// The table of `pavex_session_sqlx` 0.2.
    PavexSessionSqlx,
    /// Some other table.
    Foreign,
}

impl MismatchKind {
    fn way_out(self) -> &'static str {
        match self {
            Self::Missing => {
                "Create it first: SeaOrmSessionStore::migrate(), the \
                 pavex_session_sea_orm_migration binary (`up`), or the migrations in your own \
                 migrator."
            }
            Self::Outdated => {
                "It was created by an earlier version of pavex_session_sea_orm: run the \
                 migrations (SeaOrmSessionStore::migrate(), or `up` with the migration binary) \
                 to bring it up to date."
            }
            Self::PavexSessionSqlx => {
                "It looks like pavex_session_sqlx's table: adopt it with `pavex-session-sea-orm \
                 adopt-sqlx-table` (or the AdoptPavexSessionSqlxTable migration), which keeps \
                 every live session, or give this store another table (with_table)."
            }
            Self::Foreign => {
                "Give the store another table (SeaOrmSessionStore::with_table, --table, \
                 PAVEX_SESSION_TABLE), or rename this one."
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

    /// What the table most likely is.
    pub fn kind(&self) -> MismatchKind {
        self.kind
    }
}

/// Why a table could not be confirmed as a sessions table the store can use.
#[derive(Debug, thiserror::Error)]
pub enum SchemaCheckError {
    /// The table is not one the store can use.
    #[error(transparent)]
    Mismatch(#[from] SchemaMismatch),
    /// The catalog could not be read.
    #[error("could not read the definition of the sessions table: {0}")]
    Db(#[from] DbErr),
}

/// Checks that `table` has the definition the store needs (columns, their types and
/// nullability, the primary key, the indexes on `deadline` and `subject`). Columns an
/// application added are fine.
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
) -> Result<(), SchemaCheckError> {
    match inspect(db, table).await? {
        TableState::Missing => Err(SchemaMismatch {
            table: table.to_string(),
            column: None,
            expected: "a table".to_owned(),
            found: "no such table".to_owned(),
            kind: MismatchKind::Missing,
        }
        .into()),
        TableState::Current(definition) => match Schema::Current.missing_index(&definition) {
            None => Ok(()),
            Some(column) => Err(SchemaMismatch {
                table: table.to_string(),
                column: Some(column.to_owned()),
                expected: format!("an index on {column}"),
                found: "no index that starts with it".to_owned(),
                kind: MismatchKind::Outdated,
            }
            .into()),
        },
        TableState::FirstSchema { outdated, .. } => Err(outdated.into()),
        TableState::Other(e) => Err(e.into()),
    }
}

/// What a table is, as far as the migrations are concerned (indexes aside: a migration creates
/// the ones that are missing).
#[derive(Debug)]
pub(crate) enum TableState {
    Missing,
    /// The columns the first migration created (ids stored raw, no subject), or those of an
    /// upgrade in progress.
    FirstSchema {
        definition: TableDefinition,
        /// How it differs from the current schema.
        outdated: SchemaMismatch,
    },
    /// The columns the store needs now.
    Current(TableDefinition),
    Other(SchemaMismatch),
}

pub(crate) async fn inspect<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
) -> Result<TableState, DbErr> {
    let backend = db.get_database_backend();
    let Some(definition) = read_definition(db, table).await? else {
        return Ok(TableState::Missing);
    };
    let Some(outdated) = Schema::Current.mismatch(&definition, backend, table) else {
        return Ok(TableState::Current(definition));
    };
    if [Schema::First, Schema::Upgrading]
        .iter()
        .any(|schema| schema.mismatch(&definition, backend, table).is_none())
    {
        return Ok(TableState::FirstSchema {
            definition,
            outdated,
        });
    }
    Ok(TableState::Other(outdated))
}

/// The definitions the migrations produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Schema {
    /// `CreateSessionsTable`.
    First,
    /// `CreateSessionsTable`, then `HashIdsAndAddSubjects`.
    Current,
    /// Between two steps of another instance's `HashIdsAndAddSubjects`: the id widened or not,
    /// each new column missing or as [`Schema::Current`] has it.
    Upgrading,
}

/// A column the store needs, and the declared types it accepts on each backend.
struct Needed {
    name: &'static str,
    /// Whether the column may be missing (while an upgrade adds it).
    optional: bool,
    nullable: bool,
    postgres: &'static [&'static str],
    mysql: &'static [&'static str],
    sqlite: &'static [&'static str],
    what: &'static str,
}

const MILLIS: Needed = Needed {
    name: "",
    optional: false,
    nullable: false,
    postgres: &["bigint"],
    mysql: &["bigint", "bigint(20)"],
    sqlite: &["bigint", "integer"],
    what: "a NOT NULL BIGINT of Unix epoch milliseconds",
};

const STATE: Needed = Needed {
    name: "state",
    optional: false,
    nullable: false,
    postgres: &["jsonb"],
    // MariaDB's JSON is LONGTEXT with a json_valid() check; MySQL 8 has its own type.
    mysql: &["json", "longtext"],
    sqlite: &["jsonb_text", "json_text"],
    what: "a NOT NULL JSON column (jsonb on PostgreSQL)",
};

impl Schema {
    fn columns(self) -> Vec<Needed> {
        let deadline = Needed {
            name: "deadline",
            ..MILLIS
        };
        match self {
            Self::Upgrading => {
                let first_id = Self::First.columns().remove(0);
                let mut columns = Self::Current.columns();
                columns[0] = Needed {
                    postgres: &["uuid", "bytea"],
                    mysql: &["binary(16)", "varbinary(32)"],
                    ..first_id
                };
                for column in &mut columns[3..] {
                    column.optional = true;
                }
                columns
            }
            Self::First => vec![
                Needed {
                    name: "id",
                    optional: false,
                    nullable: false,
                    postgres: &["uuid"],
                    mysql: &["binary(16)"],
                    sqlite: &["uuid_text"],
                    what: "a NOT NULL 16-byte UUID",
                },
                deadline,
                STATE,
            ],
            Self::Current => vec![
                Needed {
                    name: "id",
                    optional: false,
                    nullable: false,
                    postgres: &["bytea"],
                    mysql: &["varbinary(32)"],
                    // A table upgraded from the first schema keeps its declared type; SQLite
                    // stores the hash as a blob in either.
                    sqlite: &["varbinary_blob(32)", "uuid_text"],
                    what: "a NOT NULL binary column holding the SHA-256 of the session id",
                },
                deadline,
                STATE,
                Needed {
                    name: "subject",
                    optional: false,
                    nullable: true,
                    postgres: &["character varying", "text"],
                    mysql: &["varchar(255)"],
                    sqlite: &["varchar(255)", "text"],
                    what: "a nullable VARCHAR(255)",
                },
                Needed {
                    name: "created_at",
                    ..MILLIS
                },
                Needed {
                    name: "updated_at",
                    ..MILLIS
                },
            ],
        }
    }

    fn indexed(self) -> &'static [&'static str] {
        match self {
            Self::First | Self::Upgrading => &["deadline"],
            Self::Current => &["deadline", "subject"],
        }
    }

    /// The first of this schema's indexed columns that no index of `definition` starts with.
    pub(crate) fn missing_index(self, definition: &TableDefinition) -> Option<&'static str> {
        self.indexed()
            .iter()
            .find(|column| !definition.index_leads.iter().any(|lead| lead == *column))
            .copied()
    }

    /// The first difference in columns or primary key between `definition` and this schema.
    fn mismatch(
        self,
        definition: &TableDefinition,
        backend: DbBackend,
        table: &SessionsTable,
    ) -> Option<SchemaMismatch> {
        let kind = kind_of(definition, backend);
        let differs = |column: Option<&str>, expected: String, found: String| SchemaMismatch {
            table: table.to_string(),
            column: column.map(str::to_owned),
            expected,
            found,
            kind,
        };
        for needed in self.columns() {
            let accepted = match backend {
                DbBackend::Postgres => needed.postgres,
                DbBackend::MySql => needed.mysql,
                _ => needed.sqlite,
            };
            let Some(column) = definition.columns.iter().find(|c| c.name == needed.name) else {
                if needed.optional {
                    continue;
                }
                return Some(differs(
                    Some(needed.name),
                    needed.what.to_owned(),
                    "no such column".to_owned(),
                ));
            };
            if !accepted.contains(&column.data_type.as_str()) || column.nullable != needed.nullable
            {
                return Some(differs(
                    Some(needed.name),
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
            return Some(differs(
                None,
                "the primary key (id)".to_owned(),
                format!("the primary key ({})", definition.primary_key.join(", ")),
            ));
        }
        None
    }
}

/// Whether `definition` is exactly the table `pavex_session_sqlx` 0.2's `migrate()` creates.
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
    has("id", id)
        && has("deadline", deadline)
        && has("state", state)
        && definition.primary_key == ["id"]
}

/// What a table most likely is, from its columns.
fn kind_of(definition: &TableDefinition, backend: DbBackend) -> MismatchKind {
    let type_of = |name: &str| {
        definition
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.data_type.as_str())
    };
    let sqlx = is_pavex_session_sqlx(definition, backend);
    let first = Schema::First.columns().iter().all(|needed| {
        let accepted = match backend {
            DbBackend::Postgres => needed.postgres,
            DbBackend::MySql => needed.mysql,
            _ => needed.sqlite,
        };
        type_of(needed.name).is_some_and(|t| accepted.contains(&t))
    });
    match (sqlx, first) {
        (true, _) => MismatchKind::PavexSessionSqlx,
        (false, true) => MismatchKind::Outdated,
        (false, false) => MismatchKind::Foreign,
    }
}

/// A table's definition as its database's catalog describes it.
#[derive(Debug, Default)]
pub(crate) struct TableDefinition {
    pub(crate) columns: Vec<CatalogColumn>,
    /// The primary key's columns, in order.
    pub(crate) primary_key: Vec<String>,
    /// The first column of each index other than the primary key's.
    pub(crate) index_leads: Vec<String>,
    /// Each index other than the primary key's, by name.
    pub(crate) indexes: Vec<CatalogIndex>,
}

/// An index as the catalog names it.
#[derive(Debug)]
pub(crate) struct CatalogIndex {
    pub(crate) name: String,
    /// Whether it holds only the rows that match a `WHERE` (PostgreSQL, SQLite).
    pub(crate) partial: bool,
}

#[derive(Debug)]
pub(crate) struct CatalogColumn {
    pub(crate) name: String,
    /// The declared type, lowercase (MySQL: `COLUMN_TYPE`, e.g. `varbinary(32)`).
    pub(crate) data_type: String,
    pub(crate) nullable: bool,
}

/// The definition of `table`, or `None` if there is no such table.
pub(crate) async fn read_definition<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
) -> Result<Option<TableDefinition>, DbErr> {
    let backend = db.get_database_backend();
    let (columns, keys) = match backend {
        DbBackend::Postgres => (postgres_columns(table), postgres_indexes(table)),
        DbBackend::MySql => (mysql_columns(table), mysql_indexes(table)),
        _ => (sqlite_columns(table), sqlite_indexes(table)),
    };
    let columns = db
        .query_all(&columns)
        .await?
        .iter()
        .map(|row| {
            Ok(CatalogColumn {
                name: text(row, "name")?,
                data_type: text(row, "data_type")?.to_lowercase(),
                nullable: text(row, "nullable")?.eq_ignore_ascii_case("yes"),
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    if columns.is_empty() {
        return Ok(None);
    }
    let mut definition = TableDefinition {
        columns,
        ..TableDefinition::default()
    };
    if backend == DbBackend::Sqlite {
        // The primary key is in `pragma_table_info`; a table without rowid has no index for it.
        let pk = Query::select()
            .expr_as(Expr::col("name"), "name")
            .from_function(
                Func::cust("pragma_table_info").arg(table.name()),
                Alias::new("t"),
            )
            .and_where(Expr::col("pk").gt(0))
            .order_by("pk", Order::Asc)
            .to_owned();
        for row in db.query_all(&pk).await? {
            definition.primary_key.push(text(&row, "name")?);
        }
    }
    for row in db.query_all(&keys).await? {
        let column = text(&row, "column_name")?;
        match text(&row, "kind")?.as_str() {
            "primary" => definition.primary_key.push(column),
            _ if integer(&row, "position")? == 1 => {
                definition.index_leads.push(column);
                definition.indexes.push(CatalogIndex {
                    name: text(&row, "index_name")?,
                    partial: integer(&row, "partial")? != 0,
                });
            }
            _ => {}
        }
    }
    Ok(Some(definition))
}

fn text(row: &QueryResult, column: &str) -> Result<String, DbErr> {
    // MySQL's catalog answers in binary strings on some servers: accept both.
    row.try_get::<String>("", column)
        .or_else(|_| {
            row.try_get::<Vec<u8>>("", column)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        })
        .map_err(|e| DbErr::Custom(format!("the catalog's `{column}`: {e}")))
}

fn integer(row: &QueryResult, column: &str) -> Result<i64, DbErr> {
    row.try_get::<i64>("", column)
        .or_else(|_| row.try_get::<i32>("", column).map(i64::from))
        .or_else(|_| row.try_get::<u64>("", column).map(|n| n as i64))
        .map_err(|e| DbErr::Custom(format!("the catalog's `{column}`: {e}")))
}

/// `name`, `data_type`, `nullable` ("YES"/"NO") of each column.
fn postgres_columns(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("column_name"), "name")
        .expr_as(Expr::col("data_type"), "data_type")
        .expr_as(Expr::col("is_nullable"), "nullable")
        .from(("information_schema", "columns"))
        .and_where(Expr::col("table_schema").eq(postgres_schema(table)))
        .and_where(Expr::col("table_name").eq(table.name()))
        .order_by("ordinal_position", Order::Asc)
        .to_owned()
}

fn postgres_schema(table: &SessionsTable) -> Expr {
    match table.schema() {
        Some(schema) => Expr::val(schema),
        None => Expr::cust("current_schema()"),
    }
}

/// `kind` ("primary" or "index"), `index_name`, whether it is `partial` (1 or 0), `column_name`
/// and its `position` in each index (1 for the leading column, 2 for any other).
fn postgres_indexes(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(
            Expr::cust("CASE WHEN i.indisprimary THEN 'primary' ELSE 'index' END"),
            "kind",
        )
        .expr_as(Expr::col(("ic", "relname")), "index_name")
        .expr_as(
            Expr::cust("CAST(CASE WHEN i.indpred IS NULL THEN 0 ELSE 1 END AS BIGINT)"),
            "partial",
        )
        .expr_as(Expr::col(("a", "attname")), "column_name")
        // `indkey` is an `int2vector`, subscripted from 0.
        .expr_as(
            Expr::cust("CAST(CASE WHEN a.attnum = i.indkey[0] THEN 1 ELSE 2 END AS BIGINT)"),
            "position",
        )
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
        .order_by("position", Order::Asc)
        .to_owned()
}

fn mysql_columns(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::col("COLUMN_NAME"), "name")
        .expr_as(Expr::col("COLUMN_TYPE"), "data_type")
        .expr_as(Expr::col("IS_NULLABLE"), "nullable")
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
        // MySQL and MariaDB have no partial indexes.
        .expr_as(Expr::val(0), "partial")
        .expr_as(Expr::col("COLUMN_NAME"), "column_name")
        .expr_as(Expr::col("SEQ_IN_INDEX"), "position")
        .from(("information_schema", "STATISTICS"))
        .and_where(Expr::col("TABLE_SCHEMA").eq(Expr::cust("DATABASE()")))
        .and_where(Expr::col("TABLE_NAME").eq(table.name()))
        .order_by("INDEX_NAME", Order::Asc)
        .order_by("SEQ_IN_INDEX", Order::Asc)
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
        .from_function(
            Func::cust("pragma_table_info").arg(table.name()),
            Alias::new("t"),
        )
        .order_by("cid", Order::Asc)
        .to_owned()
}

/// The indexes SQLite made for the primary key (`origin = 'pk'`) are left out: the primary key
/// is read from `pragma_table_info`.
fn sqlite_indexes(table: &SessionsTable) -> SelectStatement {
    Query::select()
        .expr_as(Expr::val("index"), "kind")
        .expr_as(Expr::col(("il", "name")), "index_name")
        .expr_as(Expr::col(("il", "partial")), "partial")
        .expr_as(Expr::col(("ii", "name")), "column_name")
        .expr_as(Expr::col(("ii", "seqno")).add(1), "position")
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
            Self::Outdated => "outdated",
            Self::PavexSessionSqlx => "pavex_session_sqlx's table",
            Self::Foreign => "another table",
        })
    }
}
