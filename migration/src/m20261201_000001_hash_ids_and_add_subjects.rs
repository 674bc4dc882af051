use crate::{
    RAW_ID_LEN, STORED_ID_LEN, SessionsTable,
    clock::now_millis,
    stored_id,
    verify::{TableDefinition, TableState, inspect},
};
use sea_orm_migration::{
    prelude::*,
    schema::*,
    sea_orm::{ConnectionTrait, DbBackend, TransactionTrait, prelude::Uuid},
};

/// The name this migration has in a migration history, for the default table.
const MIGRATION_NAME: &str = "m20261201_000001_hash_ids_and_add_subjects";

/// Ids whose stored form is rewritten per statement.
pub const REHASH_BATCH: u64 = 1_000;

/// The latest deadline kept, 9999-12-31T23:59:59.999Z in Unix epoch milliseconds: later ones
/// (the first schema allowed about 146 million years) are lowered to it, so that every deadline
/// is a date that `chrono` and the entity can represent.
pub const MAX_DEADLINE_MILLIS: i64 = 253_402_300_799_999;

/// Brings a table made by [`CreateSessionsTable`](crate::CreateSessionsTable) up to the current
/// schema, keeping every session:
///
/// - `id` holds the SHA-256 of the session id ([`stored_id`]), never the id itself: the column
///   becomes `bytea` (PostgreSQL) or `varbinary(32)` (MySQL/MariaDB), and every stored id is
///   replaced by its hash, [`REHASH_BATCH`] rows per statement;
/// - `subject` (nullable `varchar(255)`, indexed): who the session belongs to, copied by the
///   store from the state key chosen with `SeaOrmSessionStore::with_subject_key`;
/// - `created_at`, `updated_at` (Unix epoch milliseconds, database clock); sessions that predate
///   this migration get the time of the migration for both.
///
/// | column | PostgreSQL | MySQL / MariaDB | SQLite |
/// |---|---|---|---|
/// | `id` (primary key, SHA-256 of the session id) | `bytea` | `varbinary(32)` | blob (declared `uuid_text`, or `varbinary_blob(32)`) |
/// | `deadline` (indexed) | `bigint` | `bigint` | `integer` |
/// | `state` | `jsonb` | `json` | JSON text |
/// | `subject` (nullable, indexed) | `varchar(255)` | `varchar(255)` | `varchar(255)` |
/// | `created_at`, `updated_at` | `bigint` | `bigint` | `bigint` |
///
/// `up` is idempotent and resumable: each step is done only if it is still needed, and ids are
/// rehashed in batches that each commit on their own, so a run that is stopped halfway and run
/// again finishes the job; two instances running it at once rewrite each row once. A table that
/// is neither the first schema nor the current one is refused with
/// [`SchemaMismatch`](crate::SchemaMismatch), untouched. `down` changes nothing: the ids cannot be
/// un-hashed (the first migration's `down` drops the table).
#[derive(Debug, Clone)]
pub struct HashIdsAndAddSubjects {
    table: SessionsTable,
    name: String,
}

impl HashIdsAndAddSubjects {
    /// The migration of a chosen table (see [`SessionsTable`]).
    pub fn new(table: SessionsTable) -> Self {
        let name = table.migration_name(MIGRATION_NAME);
        Self { table, name }
    }
}

impl Default for HashIdsAndAddSubjects {
    /// The migration of the default `sessions` table.
    fn default() -> Self {
        Self::new(SessionsTable::default())
    }
}

impl MigrationName for HashIdsAndAddSubjects {
    fn name(&self) -> &str {
        &self.name
    }
}

/// The columns this migration adds or changes.
#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Id,
    Deadline,
    Subject,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for HashIdsAndAddSubjects {
    /// Batches commit one by one, so a big table is never one huge transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        self.table
            .check_backend(manager.get_database_backend())
            .map_err(|e| DbErr::Migration(e.to_string()))?;
        let definition = match inspect(manager.get_connection(), &self.table).await? {
            TableState::Missing => {
                return Err(DbErr::Migration(format!(
                    "the sessions table {} does not exist: run CreateSessionsTable first",
                    self.table
                )));
            }
            TableState::Other(mismatch) => return Err(DbErr::Migration(mismatch.to_string())),
            TableState::FirstSchema { definition, .. } => {
                self.widen_id(manager, &definition).await?;
                self.add_columns(manager, &definition).await?;
                definition
            }
            TableState::Current(definition) => definition,
        };
        if !definition.index_leads.iter().any(|c| c == "subject") {
            self.create_subject_index(manager).await?;
        }
        self.rehash_ids(manager).await?;
        self.lower_far_deadlines(manager).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        tracing::warn!(
            table = %self.table,
            "Session ids stay hashed: they cannot be turned back into ids"
        );
        Ok(())
    }
}

impl HashIdsAndAddSubjects {
    /// Makes `id` able to hold 32 bytes. SQLite keeps any blob in any column already.
    async fn widen_id(
        &self,
        manager: &SchemaManager<'_>,
        definition: &TableDefinition,
    ) -> Result<(), DbErr> {
        let id_type = definition
            .columns
            .iter()
            .find(|c| c.name == "id")
            .map(|c| c.data_type.as_str());
        match (manager.get_database_backend(), id_type) {
            (DbBackend::Postgres, Some("uuid")) => {
                // sea-query cannot write `USING`: the names are validated identifiers
                // ([a-z0-9_]), so formatting them in is safe.
                let table = match self.table.schema() {
                    Some(schema) => format!("\"{schema}\".\"{}\"", self.table.name()),
                    None => format!("\"{}\"", self.table.name()),
                };
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE {table} ALTER COLUMN \"id\" TYPE bytea USING uuid_send(\"id\")"
                    ))
                    .await?;
            }
            (DbBackend::MySql, Some("binary(16)")) => {
                let stored_len = <u32 as TryFrom<usize>>::try_from(STORED_ID_LEN).unwrap_or(32);
                manager
                    .alter_table(
                        Table::alter()
                            .table(self.table.table_ref())
                            .modify_column(var_binary(Sessions::Id, stored_len))
                            .to_owned(),
                    )
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Adds `subject`, `created_at` and `updated_at` where missing, one column per statement
    /// (SQLite adds one at a time).
    async fn add_columns(
        &self,
        manager: &SchemaManager<'_>,
        definition: &TableDefinition,
    ) -> Result<(), DbErr> {
        let columns = [
            (Sessions::Subject, string_len_null(Sessions::Subject, 255)),
            (
                Sessions::CreatedAt,
                big_integer(Sessions::CreatedAt).default(0).to_owned(),
            ),
            (
                Sessions::UpdatedAt,
                big_integer(Sessions::UpdatedAt).default(0).to_owned(),
            ),
        ];
        for (name, mut column) in columns {
            if definition
                .columns
                .iter()
                .any(|c| c.name == name.to_string())
            {
                continue;
            }
            manager
                .alter_table(
                    Table::alter()
                        .table(self.table.table_ref())
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn create_subject_index(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let mut index = Index::create();
        index
            .name(self.table.subject_index())
            .table(self.table.table_ref())
            .col(Sessions::Subject);
        // MySQL has no `IF NOT EXISTS` here (sea-query drops it): the caller checked.
        if manager.get_database_backend() != DbBackend::MySql {
            index.if_not_exists();
        }
        manager.create_index(index.to_owned()).await
    }

    /// Replaces every id stored raw (16 bytes) by its hash, walking the primary key in batches.
    ///
    /// A row is rewritten by `UPDATE ... WHERE id = <raw id>`: a second instance doing the same
    /// finds nothing left to rewrite, and a hash (32 bytes) can never equal a raw id.
    async fn rehash_ids(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let now = now_millis(backend)?;
        let mut after: Option<Vec<u8>> = None;
        let mut rehashed = 0_u64;
        loop {
            let ids = stored_ids_after(db, &self.table, after.as_deref(), REHASH_BATCH).await?;
            let Some(last) = ids.last().cloned() else {
                break;
            };
            let raw: Vec<(Vec<u8>, Uuid)> = ids
                .into_iter()
                .filter(|id| id.len() == RAW_ID_LEN)
                .filter_map(|id| Uuid::from_slice(&id).ok().map(|uuid| (id, uuid)))
                .collect();
            if !raw.is_empty() {
                let mut new_id = Expr::case(
                    Expr::col(Sessions::Id).eq(raw[0].0.clone()),
                    stored_id(&raw[0].1).to_vec(),
                );
                for (id, uuid) in &raw[1..] {
                    new_id = new_id.case(
                        Expr::col(Sessions::Id).eq(id.clone()),
                        stored_id(uuid).to_vec(),
                    );
                }
                let rewrite = Query::update()
                    .table(self.table.table_ref())
                    .value(Sessions::Id, new_id.finally(Expr::col(Sessions::Id)))
                    .value(Sessions::CreatedAt, now.clone())
                    .value(Sessions::UpdatedAt, now.clone())
                    .and_where(Expr::col(Sessions::Id).is_in(raw.iter().map(|(id, _)| id.clone())))
                    .to_owned();
                let transaction = db.begin().await?;
                rehashed += transaction.execute(&rewrite).await?.rows_affected();
                transaction.commit().await?;
            }
            after = Some(last);
        }
        if rehashed > 0 {
            tracing::info!(table = %self.table, rehashed, "Stored session ids replaced by their hashes");
        }
        Ok(())
    }

    async fn lower_far_deadlines(&self, manager: &SchemaManager<'_>) -> Result<(), DbErr> {
        let lower = Query::update()
            .table(self.table.table_ref())
            .value(Sessions::Deadline, MAX_DEADLINE_MILLIS)
            .and_where(Expr::col(Sessions::Deadline).gt(MAX_DEADLINE_MILLIS))
            .to_owned();
        manager.get_connection().execute(&lower).await.map(|_| ())
    }
}

/// The next `limit` stored ids of `table` after `after`, in primary-key order: one step of a walk
/// over the whole table that costs O(limit) per step.
pub(crate) async fn stored_ids_after<C: ConnectionTrait>(
    db: &C,
    table: &SessionsTable,
    after: Option<&[u8]>,
    limit: u64,
) -> Result<Vec<Vec<u8>>, DbErr> {
    let mut select = Query::select();
    select
        .column(Sessions::Id)
        .from(table.table_ref())
        .order_by(Sessions::Id, Order::Asc)
        .limit(limit);
    if let Some(after) = after {
        select.and_where(Expr::col(Sessions::Id).gt(after.to_vec()));
    }
    db.query_all(&select)
        .await?
        .iter()
        .map(|row| row.try_get::<Vec<u8>>("", "id"))
        .collect()
}
