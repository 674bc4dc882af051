//! The third side, "raw": `pavex_session_sqlx` 0.2.10's stores re-run on sqlx 0.9.
//!
//! Ours (sea-orm 2 on sqlx 0.9) and theirs (sqlx 0.8) differ in two things at once: the store
//! (its SQL, schema and Rust code) and the driver under it. This side keeps theirs' store and
//! swaps the driver for the sqlx 0.9 that sea-orm 2.0.4 runs on, so that ours vs raw measures
//! the store's share and raw vs theirs the driver's.
//!
//! Each `SessionStorageBackend` method below is a copy of the same method of
//! `pavex_session_sqlx` 0.2.10 (`src/postgres.rs`, `src/mysql.rs`, `src/sqlite.rs`): the same
//! SQL text, binds, row decoding (deadline, then the state through `serde_json::Value`), TTL
//! arithmetic with jiff, error mapping and tracing spans, on theirs' table (created with their
//! `migration_query()`). The only change: jiff-sqlx, which binds theirs' Postgres deadline, has
//! no sqlx 0.9 release, so [`PgTimestamp`] does its job with the same bytes on the wire.
//! PostgreSQL's batched `delete_expired` fails here as there (`DELETE ... LIMIT`); the
//! benchmark measures `delete_expired` on MySQL and SQLite only.

use crate::{args::Backend, pool::PoolSettings, pool::sqlite, side::Conn};
use anyhow::Context as _;
use jiff::{SignedDuration, Timestamp};
use pavex_session::{
    SessionId,
    store::{
        SessionRecord, SessionRecordRef, SessionStorageBackend,
        errors::{
            ChangeIdError, CreateError, DeleteError, DeleteExpiredError, DuplicateIdError,
            LoadError, UnknownIdError, UpdateError, UpdateTtlError,
        },
    },
};
use pavex_session_sqlx::{MySqlSessionStore, PostgresSessionStore, SqliteSessionStore};
use sqlx09::{
    ConnectOptions as _, Executor as _, MySqlPool, PgPool, Row as _, SqlitePool,
    decode::Decode,
    encode::{Encode, IsNull},
    error::BoxDynError,
    mysql::{MySqlConnectOptions, MySqlDatabaseError},
    postgres::{
        PgArgumentBuffer, PgConnectOptions, PgDatabaseError, PgTypeInfo, PgValueFormat, PgValueRef,
        Postgres, types::Oid,
    },
    sqlite::{SqliteConnectOptions, SqliteError},
    types::Type,
};
use std::{num::NonZeroUsize, str::FromStr as _, sync::Arc};

/// Opens a sqlx 0.9 pool at `url` with the benchmark's pool settings (and, on SQLite, the same
/// connection settings as the other sides), creates theirs' table by running their
/// `migration_query()` through it, and returns the store and the pool.
pub async fn connect(
    backend: Backend,
    url: &str,
    settings: &PoolSettings,
) -> anyhow::Result<(Arc<dyn SessionStorageBackend>, Conn)> {
    Ok(match backend {
        Backend::Postgres => {
            let options = PgConnectOptions::from_str(url)?.disable_statement_logging();
            let pool: PgPool = settings.sqlx09().connect_with(options).await?;
            pool.execute(PostgresSessionStore::migration_query())
                .await?;
            (Arc::new(RawPostgres(pool.clone())), Conn::RawPostgres(pool))
        }
        Backend::Mysql => {
            let options = MySqlConnectOptions::from_str(url)?.disable_statement_logging();
            let pool: MySqlPool = settings.sqlx09().connect_with(options).await?;
            pool.execute(MySqlSessionStore::migration_query()).await?;
            (Arc::new(RawMySql(pool.clone())), Conn::RawMysql(pool))
        }
        Backend::Sqlite => {
            let options =
                sqlite::sqlx09(SqliteConnectOptions::from_str(url)?).disable_statement_logging();
            let pool: SqlitePool = settings.sqlx09().connect_with(options).await?;
            pool.execute(SqliteSessionStore::migration_query()).await?;
            (Arc::new(RawSqlite(pool.clone())), Conn::RawSqlite(pool))
        }
    })
}

/// `PostgresSessionStore` on sqlx 0.9.
#[derive(Debug)]
pub struct RawPostgres(PgPool);

/// `MySqlSessionStore` on sqlx 0.9.
#[derive(Debug)]
pub struct RawMySql(MySqlPool);

/// `SqliteSessionStore` on sqlx 0.9.
#[derive(Debug)]
pub struct RawSqlite(SqlitePool);

/// Theirs' `as_unknown_id_error`, shared: no row changed means an unknown (or expired) id.
fn as_unknown_id_error(rows_affected: u64, id: &SessionId) -> Result<(), UnknownIdError> {
    if rows_affected == 0 {
        return Err(UnknownIdError { id: id.to_owned() });
    }
    assert_eq!(
        rows_affected, 1,
        "More than one session record was affected, even though the session ID is used as primary key. Something is deeply wrong here!"
    );
    Ok(())
}

/// Theirs' `as_duplicated_id_error`, for the three backends: whether `e` is the database
/// refusing `id` because it is taken.
fn is_duplicate_id(e: &sqlx09::Error) -> bool {
    let Some(e) = e.as_database_error() else {
        return false;
    };
    if let Some(e) = e.try_downcast_ref::<PgDatabaseError>() {
        e.code() == "23505" && e.column() == Some("id")
    } else if let Some(e) = e.try_downcast_ref::<MySqlDatabaseError>() {
        e.number() == 1062
    } else if let Some(e) = e.try_downcast_ref::<SqliteError>() {
        use sqlx09::error::DatabaseError as _;
        e.code().as_deref() == Some("1555")
    } else {
        false
    }
}

/// The time left until `deadline`, as theirs computes a loaded record's TTL.
fn ttl_until(deadline: Timestamp) -> std::time::Duration {
    let ttl = deadline - Timestamp::now();
    // This conversion only fails if the duration is negative, which should not happen
    ttl.try_into().unwrap_or(std::time::Duration::ZERO)
}

/// Theirs' record decoding once the deadline is read: the state column through
/// `serde_json::Value`, then into the record's map.
fn record(
    deadline: Timestamp,
    state: Result<serde_json::Value, sqlx09::Error>,
) -> Result<SessionRecord, LoadError> {
    let state = state
        .context("Failed to deserialize the retrieved session state")
        .map_err(LoadError::DeserializationError)?;
    Ok(SessionRecord {
        ttl: ttl_until(deadline),
        state: serde_json::from_value(state)
            .context("Failed to deserialize the retrieved session state")
            .map_err(LoadError::DeserializationError)?,
    })
}

/// Theirs' MySQL and SQLite deadline: whole epoch seconds.
fn from_second(deadline_unix: Result<i64, sqlx09::Error>) -> Result<Timestamp, LoadError> {
    let deadline_unix = deadline_unix
        .context("Failed to deserialize the retrieved session deadline")
        .map_err(LoadError::DeserializationError)?;
    Timestamp::from_second(deadline_unix)
        .context("Failed to parse the retrieved session deadline")
        .map_err(LoadError::DeserializationError)
}

#[async_trait::async_trait]
impl SessionStorageBackend for RawPostgres {
    #[tracing::instrument(name = "Create server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn create(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), CreateError> {
        let deadline = Timestamp::now() + record.ttl;
        let state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "INSERT INTO sessions (id, deadline, state) \
            VALUES ($1, $2, $3) \
            ON CONFLICT (id) DO UPDATE \
            SET deadline = EXCLUDED.deadline, state = EXCLUDED.state \
            WHERE sessions.deadline < (now() AT TIME ZONE 'UTC')",
        )
        .bind(id.inner())
        .bind(PgTimestamp(deadline))
        .bind(state);
        match query.execute(&self.0).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_id(&e) => Err(DuplicateIdError { id: id.to_owned() }.into()),
            Err(e) => Err(CreateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), UpdateError> {
        let new_deadline = Timestamp::now() + record.ttl;
        let new_state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = $1, state = $2 \
            WHERE id = $3 AND deadline > (now() AT TIME ZONE 'UTC')",
        )
        .bind(PgTimestamp(new_deadline))
        .bind(new_state)
        .bind(id.inner());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update TTL for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update_ttl(
        &self,
        id: &SessionId,
        ttl: std::time::Duration,
    ) -> Result<(), UpdateTtlError> {
        let new_deadline = Timestamp::now() + ttl;
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = $1 \
            WHERE id = $2 AND deadline > (now() AT TIME ZONE 'UTC')",
        )
        .bind(PgTimestamp(new_deadline))
        .bind(id.inner());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateTtlError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Load server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn load(&self, session_id: &SessionId) -> Result<Option<SessionRecord>, LoadError> {
        let row = sqlx09::query(
            "SELECT deadline, state \
            FROM sessions \
            WHERE id = $1 AND deadline > (now() AT TIME ZONE 'UTC')",
        )
        .bind(session_id.inner())
        .fetch_optional(&self.0)
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        row.map(|r| {
            let deadline = r
                .try_get::<PgTimestamp, _>(0)
                .context("Failed to deserialize the retrieved session deadline")
                .map_err(LoadError::DeserializationError)?
                .0;
            record(deadline, r.try_get(1))
        })
        .transpose()
    }

    #[tracing::instrument(name = "Delete server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn delete(&self, id: &SessionId) -> Result<(), DeleteError> {
        let query = sqlx09::query(
            "DELETE FROM sessions \
            WHERE id = $1 AND deadline > (now() AT TIME ZONE 'UTC')",
        )
        .bind(id.inner());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(DeleteError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Change id for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn change_id(&self, old_id: &SessionId, new_id: &SessionId) -> Result<(), ChangeIdError> {
        let query = sqlx09::query(
            "UPDATE sessions \
            SET id = $1 \
            WHERE id = $2 AND deadline > (now() AT TIME ZONE 'UTC')",
        )
        .bind(new_id.inner())
        .bind(old_id.inner());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), old_id).map_err(Into::into),
            Err(e) if is_duplicate_id(&e) => Err(DuplicateIdError {
                id: new_id.to_owned(),
            }
            .into()),
            Err(e) => Err(ChangeIdError::Other(e.into())),
        }
    }

    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let query = if let Some(batch_size) = batch_size {
            let batch_size: i64 = batch_size.get().try_into().unwrap_or(i64::MAX);
            sqlx09::query(
                "DELETE FROM sessions WHERE deadline < (now() AT TIME ZONE 'UTC') LIMIT $1",
            )
            .bind(batch_size)
        } else {
            sqlx09::query("DELETE FROM sessions WHERE deadline < (now() AT TIME ZONE 'UTC')")
        };
        let r = query.execute(&self.0).await.map_err(anyhow::Error::from)?;
        Ok(r.rows_affected().try_into().unwrap_or(usize::MAX))
    }
}

#[async_trait::async_trait]
impl SessionStorageBackend for RawMySql {
    #[tracing::instrument(name = "Create server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn create(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), CreateError> {
        let deadline = Timestamp::now() + record.ttl;
        let deadline_unix = deadline.as_second();
        let state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "INSERT INTO sessions (id, deadline, state) \
            VALUES (?, ?, ?) \
            ON DUPLICATE KEY UPDATE \
            deadline = VALUES(deadline), state = VALUES(state)",
        )
        .bind(id.inner().to_string())
        .bind(deadline_unix)
        .bind(state);
        // Theirs maps no MySQL error to `DuplicateId` here: the upsert never raises one.
        match query.execute(&self.0).await {
            Ok(_) => Ok(()),
            Err(e) => Err(CreateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), UpdateError> {
        let new_deadline = Timestamp::now() + record.ttl;
        let new_deadline_unix = new_deadline.as_second();
        let new_state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = ?, state = ? \
            WHERE id = ? AND deadline > UNIX_TIMESTAMP()",
        )
        .bind(new_deadline_unix)
        .bind(new_state)
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update TTL for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update_ttl(
        &self,
        id: &SessionId,
        ttl: std::time::Duration,
    ) -> Result<(), UpdateTtlError> {
        let new_deadline = Timestamp::now() + ttl;
        let new_deadline_unix = new_deadline.as_second();
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = ? \
            WHERE id = ? AND deadline > UNIX_TIMESTAMP()",
        )
        .bind(new_deadline_unix)
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateTtlError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Load server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn load(&self, session_id: &SessionId) -> Result<Option<SessionRecord>, LoadError> {
        let row = sqlx09::query(
            "SELECT deadline, state \
            FROM sessions \
            WHERE id = ? AND deadline > UNIX_TIMESTAMP()",
        )
        .bind(session_id.inner().to_string())
        .fetch_optional(&self.0)
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        row.map(|r| record(from_second(r.try_get(0))?, r.try_get(1)))
            .transpose()
    }

    #[tracing::instrument(name = "Delete server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn delete(&self, id: &SessionId) -> Result<(), DeleteError> {
        let query = sqlx09::query(
            "DELETE FROM sessions \
            WHERE id = ? AND deadline > UNIX_TIMESTAMP()",
        )
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(DeleteError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Change id for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn change_id(&self, old_id: &SessionId, new_id: &SessionId) -> Result<(), ChangeIdError> {
        let query = sqlx09::query(
            "UPDATE sessions \
            SET id = ? \
            WHERE id = ? AND deadline > UNIX_TIMESTAMP()",
        )
        .bind(new_id.inner().to_string())
        .bind(old_id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), old_id).map_err(Into::into),
            Err(e) if is_duplicate_id(&e) => Err(DuplicateIdError {
                id: new_id.to_owned(),
            }
            .into()),
            Err(e) => Err(ChangeIdError::Other(e.into())),
        }
    }

    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let query = if let Some(batch_size) = batch_size {
            let batch_size: u64 = batch_size.get().try_into().unwrap_or(u64::MAX);
            sqlx09::query("DELETE FROM sessions WHERE deadline < UNIX_TIMESTAMP() LIMIT ?")
                .bind(batch_size)
        } else {
            sqlx09::query("DELETE FROM sessions WHERE deadline < UNIX_TIMESTAMP()")
        };
        let r = query.execute(&self.0).await.map_err(anyhow::Error::from)?;
        Ok(r.rows_affected().try_into().unwrap_or(usize::MAX))
    }
}

#[async_trait::async_trait]
impl SessionStorageBackend for RawSqlite {
    #[tracing::instrument(name = "Create server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn create(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), CreateError> {
        let deadline = Timestamp::now() + record.ttl;
        let deadline_unix = deadline.as_second();
        let state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "INSERT INTO sessions (id, deadline, state) \
            VALUES (?, ?, ?) \
            ON CONFLICT(id) DO UPDATE \
            SET deadline = excluded.deadline, state = excluded.state \
            WHERE sessions.deadline < unixepoch()",
        )
        .bind(id.inner().to_string())
        .bind(deadline_unix)
        .bind(state);
        match query.execute(&self.0).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_id(&e) => Err(DuplicateIdError { id: id.to_owned() }.into()),
            Err(e) => Err(CreateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update(
        &self,
        id: &SessionId,
        record: SessionRecordRef<'_>,
    ) -> Result<(), UpdateError> {
        let new_deadline = Timestamp::now() + record.ttl;
        let new_deadline_unix = new_deadline.as_second();
        let new_state = serde_json::to_value(record.state)?;
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = ?, state = ? \
            WHERE id = ? AND deadline > unixepoch()",
        )
        .bind(new_deadline_unix)
        .bind(new_state)
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Update TTL for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn update_ttl(
        &self,
        id: &SessionId,
        ttl: std::time::Duration,
    ) -> Result<(), UpdateTtlError> {
        let new_deadline = Timestamp::now() + ttl;
        let new_deadline_unix = new_deadline.as_second();
        let query = sqlx09::query(
            "UPDATE sessions \
            SET deadline = ? \
            WHERE id = ? AND deadline > unixepoch()",
        )
        .bind(new_deadline_unix)
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(UpdateTtlError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Load server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn load(&self, session_id: &SessionId) -> Result<Option<SessionRecord>, LoadError> {
        let row = sqlx09::query(
            "SELECT deadline, state \
            FROM sessions \
            WHERE id = ? AND deadline > unixepoch()",
        )
        .bind(session_id.inner().to_string())
        .fetch_optional(&self.0)
        .await
        .map_err(|e| LoadError::Other(e.into()))?;
        row.map(|r| record(from_second(r.try_get(0))?, r.try_get(1)))
            .transpose()
    }

    #[tracing::instrument(name = "Delete server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn delete(&self, id: &SessionId) -> Result<(), DeleteError> {
        let query = sqlx09::query(
            "DELETE FROM sessions \
            WHERE id = ? AND deadline > unixepoch()",
        )
        .bind(id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), id).map_err(Into::into),
            Err(e) => Err(DeleteError::Other(e.into())),
        }
    }

    #[tracing::instrument(name = "Change id for server-side session record", level = tracing::Level::INFO, skip_all)]
    async fn change_id(&self, old_id: &SessionId, new_id: &SessionId) -> Result<(), ChangeIdError> {
        let query = sqlx09::query(
            "UPDATE sessions \
            SET id = ? \
            WHERE id = ? AND deadline > unixepoch()",
        )
        .bind(new_id.inner().to_string())
        .bind(old_id.inner().to_string());
        match query.execute(&self.0).await {
            Ok(r) => as_unknown_id_error(r.rows_affected(), old_id).map_err(Into::into),
            Err(e) if is_duplicate_id(&e) => Err(DuplicateIdError {
                id: new_id.to_owned(),
            }
            .into()),
            Err(e) => Err(ChangeIdError::Other(e.into())),
        }
    }

    async fn delete_expired(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<usize, DeleteExpiredError> {
        let query = if let Some(batch_size) = batch_size {
            let batch_size: i64 = batch_size.get().try_into().unwrap_or(i64::MAX);
            sqlx09::query("DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE deadline < unixepoch() LIMIT ?)").bind(batch_size)
        } else {
            sqlx09::query("DELETE FROM sessions WHERE deadline < unixepoch()")
        };
        let r = query.execute(&self.0).await.map_err(anyhow::Error::from)?;
        Ok(r.rows_affected().try_into().unwrap_or(usize::MAX))
    }
}

/// Theirs' Postgres deadline, a `timestamptz`, bound and read as `jiff_sqlx::Timestamp` does
/// on sqlx 0.8: type OID 1184 (`timestamptz`), binary, microseconds since 2000-01-01 UTC.
/// (jiff-sqlx gets there through a civil datetime in UTC; the number is the same.)
struct PgTimestamp(Timestamp);

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix seconds.
const POSTGRES_EPOCH_SECS: i64 = 946_684_800;

fn postgres_epoch() -> Timestamp {
    // In range: a constant well inside jiff's span.
    Timestamp::from_second(POSTGRES_EPOCH_SECS).expect("2000-01-01 is a valid timestamp")
}

impl Type<Postgres> for PgTimestamp {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1184))
    }
}

impl Encode<'_, Postgres> for PgTimestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        let micros = i64::try_from(self.0.duration_since(postgres_epoch()).as_micros())?;
        Encode::<Postgres>::encode(micros, buf)
    }
}

impl<'r> Decode<'r, Postgres> for PgTimestamp {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => {
                let micros: i64 = Decode::<Postgres>::decode(value)?;
                Ok(Self(
                    postgres_epoch().checked_add(SignedDuration::from_micros(micros))?,
                ))
            }
            PgValueFormat::Text => Ok(Self(value.as_str()?.parse()?)),
        }
    }
}
