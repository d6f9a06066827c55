//! What the reconciler looks for (sagas gone quiet) and forgets (old
//! idempotency keys).

use std::time::Duration;

use tracing::instrument;
use uuid::Uuid;

use crate::error::OrderError;

use super::Store;

impl Store {
    /// Orders stuck in `reserving` for at least `grace`, oldest first.
    #[instrument(skip(self))]
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
    #[instrument(skip(self))]
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
