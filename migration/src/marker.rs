//! The proof that a table is ours: a marker that [`CreateSessionsTable`](crate::CreateSessionsTable)
//! writes on the table it creates, in the same statement or transaction, and that goes wherever
//! the table goes (a rename keeps it, a drop takes it along).
//!
//! - PostgreSQL: the table's comment (`COMMENT ON TABLE`), set in the transaction that creates it.
//! - MySQL/MariaDB: the table's comment (`CREATE TABLE ... COMMENT '...'`), in the one statement.
//! - SQLite: an SQL comment inside the `CREATE TABLE` text, which SQLite keeps in `sqlite_master`.
//!
//! The marker names the schema version, so that a future migration can tell which schema a table
//! has, and this version can refuse a table that a newer one upgraded.

/// What every marker starts with; the schema version follows.
pub(crate) const PREFIX: &str = "pavex_session_sea_orm sessions table, schema ";

/// The schema this version of the crate creates and uses.
pub const SCHEMA_VERSION: u32 = 1;

/// The marker of the current schema.
pub(crate) fn current() -> String {
    format!("{PREFIX}{SCHEMA_VERSION}")
}

/// The schema version a marker names, if `text` is one.
pub(crate) fn version(text: &str) -> Option<u32> {
    text.strip_prefix(PREFIX)?.parse().ok()
}

/// The marker inside SQLite's `CREATE TABLE` text, if there is one.
pub(crate) fn in_sqlite_ddl(ddl: &str) -> Option<String> {
    let start = ddl.find(&format!("/* {PREFIX}"))? + 3;
    let end = start + ddl[start..].find(" */")?;
    Some(ddl[start..end].to_owned())
}

/// SQLite's `CREATE TABLE` text with the marker in it, as a comment before the closing
/// parenthesis (SQLite keeps it there through `ALTER TABLE ... ADD COLUMN` and `RENAME`).
pub(crate) fn into_sqlite_ddl(ddl: &str) -> Option<String> {
    let close = ddl.rfind(')')?;
    Some(format!(
        "{} /* {} */{}",
        &ddl[..close],
        current(),
        &ddl[close..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        assert_eq!(version(&current()), Some(SCHEMA_VERSION));
        assert_eq!(
            version("pavex_session_sea_orm sessions table, schema x"),
            None
        );
        assert_eq!(version("my own sessions"), None);
        let ddl = into_sqlite_ddl("CREATE TABLE \"s\" ( \"id\" blob )").unwrap_or_default();
        assert!(
            ddl.ends_with(&format!("\"id\" blob  /* {} */)", current())),
            "{ddl}"
        );
        assert_eq!(in_sqlite_ddl(&ddl), Some(current()));
        assert_eq!(in_sqlite_ddl("CREATE TABLE s (id blob) /* other */"), None);
    }
}
