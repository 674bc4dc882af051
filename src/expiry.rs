//! Deleting expired sessions, and under an absolute lifetime telling the audit trail which of
//! them had reached it (OWASP ASVS 5.0, 7.3.2): a session past its lifetime is not idle, it was
//! ended by the store's policy, which a security team wants to see.
//!
//! A store without an absolute lifetime deletes as the contract says, one `DELETE` per batch.
//! With one, the `DELETE` returns the id, `created_at` and deadline of each session it deleted
//! (PostgreSQL, SQLite), or, on MySQL, which has no `DELETE ... RETURNING`, a locking read of the
//! batch precedes the `DELETE`s of those ids (1 000 per statement) in one transaction.

use crate::{
    SeaOrmSessionStore,
    audit::{self, Ended},
    execute::{Finish, retrying_lock_conflicts_up_to},
    prepared::Statements,
    transaction::padded,
    unusable,
};
use pavex_session::store::errors::DeleteExpiredError;
use pavex_session_sea_orm_entity::sessions::Column;
use sea_orm::{DbBackend, DbErr, Iden, QueryResult, Statement, TransactionOptions};
use std::num::NonZeroUsize;

/// Sessions read and deleted per transaction on MySQL's audited path when the caller asked for
/// all of them.
const BATCH_WHEN_UNBOUNDED: u64 = 10_000;

/// Ids per `DELETE` of MySQL's audited path (a batch of more takes several).
const DELETED_PER_STATEMENT: u64 = 1_000;

/// Times a MySQL batch runs at most while it keeps losing lock conflicts.
const ATTEMPTS: u32 = 4;

/// What one call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ExpiredDeleted {
    /// Expired sessions deleted.
    pub(crate) deleted: u64,
    /// Of those, the ones whose deadline had reached `created_at` + the absolute lifetime.
    pub(crate) at_lifetime: u64,
}

impl SeaOrmSessionStore {
    /// Deletes expired sessions (all, or at most `batch_size`, oldest deadline first); under an
    /// absolute lifetime, an audit event for each one that had reached it.
    pub(crate) async fn delete_expired_audited(
        &self,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<ExpiredDeleted, DeleteExpiredError> {
        let statements = self.statements().await.map_err(unusable)?;
        self.delete_expired_sessions(statements, batch_size).await
    }

    /// Deletes at most `limit` rows of the revoked sign-ins table whose deadline has passed
    /// (revoked sign-ins no request can continue, the cap's guard rows), and on MySQL at most
    /// `limit` stale subject entries, so that neither table grows for ever; returns how many rows
    /// it deleted. The [`ExpiredSessionCleaner`](crate::ExpiredSessionCleaner) runs it at the
    /// end of each round; it is not part of `delete_expired`, which stays one statement.
    pub(crate) async fn delete_expired_revocations(
        &self,
        limit: NonZeroUsize,
    ) -> Result<u64, DeleteExpiredError> {
        let statements = self.statements().await.map_err(unusable)?;
        let (queries, backend) = (statements.queries(), statements.backend());
        let limit = u64::try_from(limit.get()).unwrap_or(u64::MAX);
        let mut deleted = 0_u64;
        let stale = queries.delete_stale_entries(limit);
        for delete in std::iter::once(queries.delete_expired_revoked(limit)).chain(stale) {
            let done = self
                .execute(&backend.build(&delete))
                .await
                .map_err(anyhow::Error::from)?;
            deleted = deleted.saturating_add(done.rows_affected());
        }
        Ok(deleted)
    }

    /// The expired sessions of [`delete_expired_audited`](Self::delete_expired_audited).
    async fn delete_expired_sessions(
        &self,
        statements: &Statements,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<ExpiredDeleted, DeleteExpiredError> {
        if self.absolute_lifetime.is_none() {
            let done = self
                .execute(&statements.delete_expired(batch_size))
                .await
                .map_err(anyhow::Error::from)?;
            return Ok(ExpiredDeleted {
                deleted: done.rows_affected(),
                at_lifetime: 0,
            });
        }
        let deleted = match statements.backend() {
            DbBackend::MySql => self.delete_expired_locked(statements, batch_size).await,
            backend => {
                let mut delete = statements.queries().delete_expired(batch_size);
                delete.returning(sea_orm::sea_query::Query::returning().columns([
                    Column::Id,
                    Column::Subject,
                    Column::CreatedAt,
                    Column::Deadline,
                ]));
                let rows = self.query(&backend.build(&delete)).await;
                rows.and_then(|rows| self.audit_expired(&rows))
            }
        };
        deleted.map_err(|e| DeleteExpiredError::from(anyhow::Error::from(e)))
    }

    /// MySQL: each batch read with a locking read and deleted in one transaction, so that the
    /// sessions reported are the ones deleted (a session written meanwhile is neither).
    async fn delete_expired_locked(
        &self,
        statements: &Statements,
        batch_size: Option<NonZeroUsize>,
    ) -> Result<ExpiredDeleted, DbErr> {
        let queries = statements.queries();
        let limit = batch_size.map_or(BATCH_WHEN_UNBOUNDED, |n| {
            u64::try_from(n.get()).unwrap_or(u64::MAX)
        });
        let select = DbBackend::MySql.build(&queries.oldest_expired_locked(limit));
        // Every `DELETE` binds `chunk` ids (the last one repeated), so that its text is the one
        // prepared before the transaction's first statement ([`crate::transaction`]).
        let chunk = usize::try_from(limit.min(DELETED_PER_STATEMENT)).unwrap_or(1);
        let delete_among = |ids: Vec<Vec<u8>>| -> Statement {
            DbBackend::MySql.build(&queries.delete_expired_among(ids))
        };
        let template = delete_among(vec![Vec::new(); chunk]);
        let (select, template, delete_among) = (&select, &template, &delete_among);
        let mut total = ExpiredDeleted::default();
        loop {
            let batch = retrying_lock_conflicts_up_to(ATTEMPTS, || async {
                let mut transaction = self
                    .begin_preparing(TransactionOptions::default(), &[select, template])
                    .await?;
                let outcome = async {
                    let rows = self
                        .rows_in_transaction(&mut transaction, select.clone())
                        .await?;
                    let ids = rows
                        .iter()
                        .map(|row| row.try_get::<Vec<u8>>("", &Column::Id.to_string()))
                        .collect::<Result<Vec<_>, _>>()?;
                    for ids in ids.chunks(chunk).filter_map(|ids| padded(ids, chunk)) {
                        self.in_transaction(&mut transaction, delete_among(ids))
                            .await?;
                    }
                    Ok(Finish::Commit(rows))
                }
                .await;
                Self::finish(transaction, outcome).await
            })
            .await?;
            let done = self.audit_expired(&batch)?;
            total.deleted = total.deleted.saturating_add(done.deleted);
            total.at_lifetime = total.at_lifetime.saturating_add(done.at_lifetime);
            // One batch when the caller asked for one; all of them otherwise.
            if batch_size.is_some() || done.deleted < limit {
                return Ok(total);
            }
        }
    }

    /// Counts the deleted sessions `rows` (id, subject, `created_at`, deadline) and records an audit
    /// event for each one that had reached the absolute lifetime.
    fn audit_expired(&self, rows: &[QueryResult]) -> Result<ExpiredDeleted, DbErr> {
        let lifetime_ms = self.lifetime_ms();
        let (id, subject, created_at, deadline) = (
            Column::Id.to_string(),
            Column::Subject.to_string(),
            Column::CreatedAt.to_string(),
            Column::Deadline.to_string(),
        );
        let mut at_lifetime = 0;
        for row in rows {
            let lived = row
                .try_get::<i64>("", &deadline)?
                .saturating_sub(row.try_get::<i64>("", &created_at)?);
            if lived >= lifetime_ms {
                at_lifetime += 1;
                let ended_subject: Option<Vec<u8>> = row.try_get("", &subject)?;
                let stored_id: Vec<u8> = row.try_get("", &id)?;
                audit::session_ended(
                    Ended::AbsoluteLifetime,
                    ended_subject.as_deref(),
                    &stored_id,
                );
            }
        }
        Ok(ExpiredDeleted {
            deleted: rows.len() as u64,
            at_lifetime,
        })
    }
}
