use crate::{
    ADOPTION_STAGING_TABLE, SQLX_SESSIONS_TABLE, SessionsTable,
    verify::{TableState, inspect},
};
use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// The name this migration has in a migration history, for the default table.
const MIGRATION_NAME: &str = "m20261202_000001_partial_subject_index";

/// On PostgreSQL and SQLite, replaces the `subject` index that
/// [`HashIdsAndAddSubjects`](crate::HashIdsAndAddSubjects) made with one that holds only the
/// sessions that have a subject (`WHERE subject IS NOT NULL`): anonymous sessions then cost that
/// index nothing on create, update, `change_id` or delete. `subject = ?` implies
/// `IS NOT NULL`, so the subject queries still use it. Sessions are not touched.
///
/// MySQL and MariaDB have no partial indexes: there the migration changes nothing (InnoDB
/// leaves a secondary index alone on an update that does not change its column).
///
/// Only the index our migrations made is replaced (named `idx_<table>_subject`, or the name it
/// got in an adoption of `pavex_session_sqlx`'s table); an index of the application's own on
/// `subject` is left as it is. `up` is idempotent, and the drop and the create commit together.
/// Two instances running it at once end with the same index (one of them may fail and is run
/// again by [`SessionsMigrator::migrate`](crate::SessionsMigrator::migrate)). `down` puts the
/// full index back.
#[derive(Debug, Clone)]
pub struct PartialSubjectIndex {
    table: SessionsTable,
    name: String,
}

impl PartialSubjectIndex {
    /// The migration of a chosen table (see [`SessionsTable`]).
    pub fn new(table: SessionsTable) -> Self {
        let name = table.migration_name(MIGRATION_NAME);
        Self { table, name }
    }

    /// The names under which our migrations made this table's subject index: its own, and for
    /// the table an adoption renamed into place, the one it had in the adoption's staging table.
    fn our_index_names(&self) -> Vec<String> {
        let mut names = vec![self.table.subject_index()];
        if self.table.schema().is_none()
            && self.table.name() == SQLX_SESSIONS_TABLE
            && let Ok(staging) = SessionsTable::new(ADOPTION_STAGING_TABLE)
        {
            names.push(staging.subject_index());
        }
        names
    }

    /// Makes our subject index partial (or full again), wherever it is not already.
    async fn make_partial(&self, manager: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        self.table
            .check_backend(backend)
            .map_err(|e| DbErr::Migration(e.to_string()))?;
        if backend == DbBackend::MySql {
            return Ok(());
        }
        let definition = match inspect(manager.get_connection(), &self.table).await? {
            TableState::Current(definition) => definition,
            TableState::Other(mismatch) => return Err(DbErr::Migration(mismatch.to_string())),
            _ => {
                return Err(DbErr::Migration(format!(
                    "the sessions table {} is missing or outdated: run CreateSessionsTable and \
                     HashIdsAndAddSubjects first",
                    self.table
                )));
            }
        };
        let ours = self.our_index_names();
        for index in definition
            .indexes
            .iter()
            .filter(|index| ours.contains(&index.name) && index.partial != partial)
        {
            manager
                .drop_index(
                    Index::drop()
                        .if_exists()
                        .name(&index.name)
                        .table(self.table.table_ref())
                        .to_owned(),
                )
                .await?;
            let mut create = Index::create();
            create
                .if_not_exists()
                .name(&index.name)
                .table(self.table.table_ref())
                .col(Sessions::Subject);
            if partial {
                create.and_where(Expr::col(Sessions::Subject).is_not_null());
            }
            manager.create_index(create).await?;
        }
        Ok(())
    }
}

impl Default for PartialSubjectIndex {
    /// The migration of the default `sessions` table.
    fn default() -> Self {
        Self::new(SessionsTable::default())
    }
}

impl MigrationName for PartialSubjectIndex {
    fn name(&self) -> &str {
        &self.name
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Subject,
}

#[async_trait::async_trait]
impl MigrationTrait for PartialSubjectIndex {
    /// The drop and the create commit together: the table is never without its subject index.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.make_partial(manager, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.make_partial(manager, false).await
    }
}
