//! Which table holds the sessions: its name and, optionally, its schema.

use sea_orm_migration::sea_orm::{
    DbBackend,
    sea_query::{Alias, IntoTableRef, TableRef},
};
use std::{fmt, str::FromStr};

/// The longest table name accepted: the deadline index, `idx_<name>_deadline` (the longest of
/// the index names), must still fit PostgreSQL's 63-byte identifiers (MySQL allows 64, which
/// `<name>_by_subject` fits).
pub const MAX_TABLE_NAME_LEN: usize = 63 - "idx__deadline".len();

/// The longest schema name accepted (PostgreSQL's identifier limit).
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

/// Where sessions are stored: a table name and, optionally, the schema that holds it.
///
/// The default is `sessions` in the connection's default schema. Names are restricted to
/// lowercase ASCII letters, digits and `_`, not starting with a digit, so that they mean the same
/// table on every backend (PostgreSQL folds unquoted names to lowercase, MySQL's case
/// sensitivity depends on the server's file system) and can never inject SQL.
///
/// A schema is supported on PostgreSQL only (see [`SessionsTable::check_backend`]): on
/// MySQL/MariaDB a schema is another database, and on SQLite an attached one; connect to that
/// database instead.
///
/// ```
/// use pavex_session_sea_orm_migration::SessionsTable;
///
/// let table = SessionsTable::new("user_sessions")?.in_schema("auth")?;
/// assert_eq!(table.to_string(), "auth.user_sessions");
/// assert_eq!("auth.user_sessions".parse::<SessionsTable>()?, table);
/// assert!(SessionsTable::new("sessions; DROP TABLE users").is_err());
/// # Ok::<(), pavex_session_sea_orm_migration::InvalidIdentifier>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionsTable {
    schema: Option<String>,
    name: String,
}

/// A table or schema name that [`SessionsTable`] refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} name {name:?}: {reason}")]
pub struct InvalidIdentifier {
    kind: &'static str,
    name: String,
    reason: String,
}

/// A [`SessionsTable`] with a schema, on a backend other than PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the sessions table {table} names a schema, which only PostgreSQL supports; \
     on {backend} connect to that database instead"
)]
pub struct SchemaNotSupported {
    table: String,
    backend: &'static str,
}

impl SessionsTable {
    /// The name of migration `base` of this table in a migration history: `base` for the
    /// default table, `base:<schema.table>` for any other, so that one migrator can hold the
    /// migrations of several tables.
    pub(crate) fn migration_name(&self, base: &str) -> String {
        match *self == Self::default() {
            true => base.to_owned(),
            false => format!("{base}:{self}"),
        }
    }

    /// A table in the connection's default schema.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidIdentifier> {
        let name = validate("table", name.into(), MAX_TABLE_NAME_LEN)?;
        Ok(Self { schema: None, name })
    }

    /// The same table, in `schema`.
    pub fn in_schema(self, schema: impl Into<String>) -> Result<Self, InvalidIdentifier> {
        let schema = validate("schema", schema.into(), MAX_SCHEMA_NAME_LEN)?;
        Ok(Self {
            schema: Some(schema),
            ..self
        })
    }

    /// The table's name, without its schema.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema, if one was chosen.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Whether `backend` can hold this table: a schema needs PostgreSQL (sea-query cannot create
    /// an index on a schema-qualified table for MySQL or SQLite).
    pub fn check_backend(&self, backend: DbBackend) -> Result<(), SchemaNotSupported> {
        match (&self.schema, backend) {
            (None, _) | (Some(_), DbBackend::Postgres) => Ok(()),
            (Some(_), backend) => Err(SchemaNotSupported {
                table: self.to_string(),
                backend: backend.as_str(),
            }),
        }
    }

    /// The name of the index on the `deadline` column: `idx_<name>_deadline`.
    pub fn deadline_index(&self) -> String {
        format!("idx_{}_deadline", self.name)
    }

    /// The name of the index on the `subject` column: `idx_<name>_subject`.
    pub fn subject_index(&self) -> String {
        format!("idx_{}_subject", self.name)
    }

    /// The table of revoked sign-ins that goes with this one: `<name>_revoked`, in the same
    /// schema (see `docs/schema.md`).
    pub fn revoked(&self) -> SessionsTable {
        SessionsTable {
            schema: self.schema.clone(),
            name: format!("{}_revoked", self.name),
        }
    }

    /// The table's name (and schema) quoted as PostgreSQL and SQLite quote identifiers, for the
    /// few statements sea-query cannot write. The names are validated (`[a-z0-9_]`), so quoting
    /// them is enough.
    /// `<name>_by_subject`, beside the sessions table on MySQL only: the sessions of each subject,
    /// in place of an index that MySQL, which has no partial indexes, would fill with an entry
    /// for every anonymous session too (docs/schema.md, "The subject entries on MySQL").
    pub fn by_subject(&self) -> SessionsTable {
        SessionsTable {
            schema: self.schema.clone(),
            name: format!("{}_by_subject", self.name),
        }
    }

    /// The tables the migration creates beside this one on `backend`, each with the same marker:
    /// the revoked sign-ins, and on MySQL the subject entries.
    pub fn beside(&self, backend: DbBackend) -> Vec<SessionsTable> {
        match backend {
            DbBackend::MySql => vec![self.revoked(), self.by_subject()],
            _ => vec![self.revoked()],
        }
    }

    pub(crate) fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("\"{schema}\".\"{}\"", self.name),
            None => format!("\"{}\"", self.name),
        }
    }

    /// The table as sea-query refers to it (schema-qualified when a schema was chosen).
    pub fn table_ref(&self) -> TableRef {
        let name = Alias::new(self.name.as_str());
        match &self.schema {
            Some(schema) => (Alias::new(schema.as_str()), name).into_table_ref(),
            None => name.into_table_ref(),
        }
    }
}

impl Default for SessionsTable {
    /// `sessions`, in the connection's default schema.
    fn default() -> Self {
        Self {
            schema: None,
            name: crate::SESSIONS_TABLE.to_owned(),
        }
    }
}

impl fmt::Display for SessionsTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl FromStr for SessionsTable {
    type Err = InvalidIdentifier;

    /// `name` or `schema.name`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('.') {
            Some((schema, name)) => Self::new(name)?.in_schema(schema),
            None => Self::new(s),
        }
    }
}

fn validate(kind: &'static str, name: String, max_len: usize) -> Result<String, InvalidIdentifier> {
    let reason = if name.is_empty() {
        "it is empty".to_owned()
    } else if name.len() > max_len {
        format!("it is longer than {max_len} characters")
    } else if name.starts_with(|c: char| c.is_ascii_digit()) {
        "it starts with a digit".to_owned()
    } else if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        format!("{c:?} is not allowed (use lowercase ASCII letters, digits and '_')")
    } else {
        return Ok(name);
    };
    Err(InvalidIdentifier { kind, name, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_lowercase_identifiers() {
        for name in [
            "sessions",
            "user_sessions",
            "_s",
            "s2",
            &"a".repeat(MAX_TABLE_NAME_LEN),
        ] {
            assert_eq!(SessionsTable::new(name).unwrap().name(), name);
        }
        let table: SessionsTable = "auth.sessions".parse().unwrap();
        assert_eq!((table.schema(), table.name()), (Some("auth"), "sessions"));
        assert_eq!(SessionsTable::default().to_string(), "sessions");
        assert_eq!(
            SessionsTable::default().deadline_index(),
            crate::DEADLINE_INDEX
        );
        let longest = SessionsTable::new("a".repeat(MAX_TABLE_NAME_LEN)).unwrap();
        assert_eq!(longest.by_subject().name().len(), 61);
    }

    #[test]
    fn rejects_everything_else_with_a_reason() {
        let too_long = "a".repeat(MAX_TABLE_NAME_LEN + 1);
        for (name, reason) in [
            ("", "empty"),
            (too_long.as_str(), "longer than"),
            ("1sessions", "starts with a digit"),
            ("Sessions", "'S' is not allowed"),
            ("sessions; DROP TABLE users", "';' is not allowed"),
            ("se\"ss", "'\"' is not allowed"),
            ("sess`ions", "'`' is not allowed"),
            ("sessions\0", "'\\0' is not allowed"),
            ("séssions", "'é' is not allowed"),
            ("a.b.c", "'.' is not allowed"),
        ] {
            let error = name.parse::<SessionsTable>().unwrap_err().to_string();
            assert!(error.contains(reason), "{name:?}: {error}");
        }
        let error = SessionsTable::default()
            .in_schema("Auth")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("invalid schema name \"Auth\""), "{error}");
    }
}
