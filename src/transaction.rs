//! The store's multi-statement transactions (a capped sign-in, ending a subject's sessions on
//! MySQL, a batch of the clean-up on MySQL).
//!
//! On MySQL/MariaDB every statement a transaction may run is prepared before its first statement
//! takes a lock. A MariaDB Galera node that aborts a transaction for another node's write (a
//! "brute force" abort) reports it on the client's next command; when that command is a
//! `COM_STMT_PREPARE` (a statement the connection has not prepared yet, which sqlx prepares
//! on first use), MariaDB 10.11 loses the error: the statements after it run on their own,
//! outside the transaction, and the `COMMIT` succeeds with nothing to commit. Seen on this
//! project's 3-node cluster: capped sign-ins reported written that were not (docs/cluster.md has
//! the measurement).
//! Statements prepared beforehand are only executed inside the transaction, and an abort is then
//! reported on the next one, which the caller runs again as a lock conflict.
//!
//! Elsewhere (PostgreSQL, SQLite, a connection that is not an sqlx pool) the transaction is
//! sea-orm's.

use crate::{SeaOrmSessionStore, execute::Finish, queries::Key};
use sea_orm::{
    ConnectionTrait, DatabaseTransaction, DbErr, ExecResult, QueryResult, Statement,
    TransactionOptions, TransactionTrait,
};

/// How many ids a statement of a transaction that ends sessions by id takes at once (a list
/// shorter than that is [`padded`]): the cap's eviction and the end of a subject's sessions on
/// MySQL.
pub(crate) const IDS_PER_STATEMENT: usize = 32;

/// Runs `$statement` in `$transaction`, measured: through sea-orm's `$sea_orm` method, or on
/// MySQL `$run` with the sqlx query and the transaction's connection, once the statement is
/// known to be prepared.
macro_rules! run_in {
    ($store:expr, $transaction:expr, $statement:expr, $sea_orm:ident, |$query:ident, $connection:ident| $run:expr) => {
        match $transaction {
            Transaction::SeaOrm(transaction) => {
                $store
                    .measured(&$statement, transaction.$sea_orm($statement.clone()))
                    .await
            }
            #[cfg(feature = "mysql")]
            Transaction::MySql(transaction, texts) => {
                was_prepared(texts, &$statement)?;
                let run = async {
                    let $query = crate::execute::sqlx_query(&$statement);
                    let $connection = &mut **transaction;
                    $run
                };
                $store.measured(&$statement, run).await
            }
        }
    };
}

/// A transaction begun by [`SeaOrmSessionStore::begin_preparing`].
pub(crate) enum Transaction {
    SeaOrm(DatabaseTransaction),
    /// On the sqlx MySQL pool, with the texts of the statements it prepared.
    #[cfg(feature = "mysql")]
    MySql(
        sea_orm::sqlx::Transaction<'static, sea_orm::sqlx::MySql>,
        Vec<String>,
    ),
}

impl SeaOrmSessionStore {
    /// Begins a transaction that will run only the statements `prepared` (by their SQL text;
    /// their values may differ), prepared before it returns on MySQL. `options` are sea-orm's
    /// (the MySQL path begins with the server's defaults, which is all the store asks for there).
    pub(crate) async fn begin_preparing(
        &self,
        options: TransactionOptions,
        prepared: &[&Statement],
    ) -> Result<Transaction, DbErr> {
        #[cfg(feature = "mysql")]
        if let sea_orm::DatabaseConnectionType::SqlxMySqlPoolConnection(_) = &self.db.inner {
            use sea_orm::sqlx::{AssertSqlSafe, Executor as _, SqlSafeStr as _};
            let pool = self.db.get_mysql_connection_pool();
            let mut transaction = pool.begin().await.map_err(crate::execute::query_error)?;
            let mut texts = Vec::with_capacity(prepared.len());
            for statement in prepared {
                let sql = AssertSqlSafe(statement.sql.clone()).into_sql_str();
                (&mut *transaction)
                    .prepare(sql)
                    .await
                    .map_err(crate::execute::query_error)?;
                texts.push(statement.sql.clone());
            }
            return Ok(Transaction::MySql(transaction, texts));
        }
        let _ = prepared;
        Ok(Transaction::SeaOrm(
            self.db.begin_with_options(options).await?,
        ))
    }

    /// Executes `statement` in `transaction`, measured like the store's other statements.
    pub(crate) async fn in_transaction(
        &self,
        transaction: &mut Transaction,
        statement: Statement,
    ) -> Result<ExecResult, DbErr> {
        run_in!(
            self,
            transaction,
            statement,
            execute_raw,
            |query, connection| {
                query
                    .execute(connection)
                    .await
                    .map(ExecResult::from)
                    .map_err(crate::execute::exec_error)
            }
        )
    }

    /// Runs the query `statement` in `transaction` and returns its rows.
    pub(crate) async fn rows_in_transaction(
        &self,
        transaction: &mut Transaction,
        statement: Statement,
    ) -> Result<Vec<QueryResult>, DbErr> {
        run_in!(
            self,
            transaction,
            statement,
            query_all_raw,
            |query, connection| {
                query
                    .fetch_all(connection)
                    .await
                    .map(|rows| rows.into_iter().map(QueryResult::from).collect())
                    .map_err(crate::execute::query_error)
            }
        )
    }

    /// Commits or rolls back `transaction` as `outcome` says, and returns its value; a failed
    /// `outcome` rolls back and is returned. Used inside
    /// [`retrying_lock_conflicts_up_to`](crate::execute::retrying_lock_conflicts_up_to), which
    /// runs the whole transaction again when it loses a lock conflict (on a cluster,
    /// certification).
    pub(crate) async fn finish<T>(
        transaction: Transaction,
        outcome: Result<Finish<T>, DbErr>,
    ) -> Result<T, DbErr> {
        match outcome {
            Ok(Finish::Commit(value)) => {
                transaction.commit().await?;
                Ok(value)
            }
            Ok(Finish::Rollback(value)) => {
                transaction.rollback().await?;
                Ok(value)
            }
            Err(e) => {
                // The error is what counts; a failed rollback is the pool's to clean up.
                transaction.rollback().await.ok();
                Err(e)
            }
        }
    }
}

impl Transaction {
    async fn commit(self) -> Result<(), DbErr> {
        match self {
            Transaction::SeaOrm(transaction) => transaction.commit().await,
            #[cfg(feature = "mysql")]
            Transaction::MySql(transaction, _) => transaction
                .commit()
                .await
                .map_err(crate::execute::query_error),
        }
    }

    async fn rollback(self) -> Result<(), DbErr> {
        match self {
            Transaction::SeaOrm(transaction) => transaction.rollback().await,
            #[cfg(feature = "mysql")]
            Transaction::MySql(transaction, _) => transaction
                .rollback()
                .await
                .map_err(crate::execute::query_error),
        }
    }
}

/// An error, never a `COM_STMT_PREPARE` inside the transaction, for a statement that
/// [`SeaOrmSessionStore::begin_preparing`] was not given: a defect of the store, which the
/// tests would meet.
#[cfg(feature = "mysql")]
fn was_prepared(texts: &[String], statement: &Statement) -> Result<(), DbErr> {
    match texts.contains(&statement.sql) {
        true => Ok(()),
        false => Err(DbErr::Custom(
            "A statement of a MySQL transaction was not prepared before the transaction's first \
             statement"
                .to_owned(),
        )),
    }
}

/// `ids` made exactly `len` long by repeating the last one (`None` when there is none): a
/// statement over a list of ids keeps the text that was prepared for `len` of them.
pub(crate) fn padded(ids: &[Key], len: usize) -> Option<Vec<Key>> {
    let last = ids.last()?.clone();
    let mut padded = ids.to_vec();
    padded.resize(len, last);
    Some(padded)
}
