//! What the reconciler looks for (sagas gone quiet, orders unpaid past the
//! payment timeout) and forgets (old idempotency keys).

use std::time::Duration;

use tracing::instrument;
use uuid::Uuid;

use crate::error::OrderError;

use super::{Store, Tx};

impl Store {
    /// Orders stuck in `reserving` for at least `grace`, oldest first.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn stale_reserving(
        &self,
        grace: Duration,
        limit: i64,
    ) -> Result<Vec<Uuid>, OrderError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders WHERE status = 'reserving' AND created_at <= now() - $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(grace)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forgets idempotency keys older than `max_age`; returns how many.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn prune_idempotency_keys(&self, max_age: Duration) -> Result<u64, OrderError> {
        Ok(
            sqlx::query("DELETE FROM idempotency_keys WHERE created_at < now() - $1")
                .bind(max_age)
                .execute(&self.pool)
                .await?
                .rows_affected(),
        )
    }
}

impl Store {
    /// Orders pending and not paid, created at least `timeout` ago, oldest
    /// first: the payment timeout's candidates (each is checked again under
    /// its row lock before it is canceled). The scan runs on
    /// `orders_by_status_newest_first` (status, created_at).
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn unpaid_past(
        &self,
        timeout: Duration,
        limit: i64,
    ) -> Result<Vec<Uuid>, OrderError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM orders \
             WHERE status = 'pending' AND payment_status <> 'paid' AND created_at <= now() - $1 \
             ORDER BY created_at LIMIT $2",
        )
        .bind(timeout)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Tx {
    /// Whether order `id`, locked by this transaction, was created at least
    /// `timeout` ago (by the database's clock, as the scan judged it).
    pub async fn created_before(
        &mut self,
        id: Uuid,
        timeout: Duration,
    ) -> Result<bool, OrderError> {
        Ok(
            sqlx::query_scalar("SELECT created_at <= now() - $2 FROM orders WHERE id = $1")
                .bind(id)
                .bind(timeout)
                .fetch_optional(&mut *self.0)
                .await?
                .unwrap_or(false),
        )
    }
}
