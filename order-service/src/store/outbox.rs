//! The outbox: inventory calls (release, commit) committed with the change
//! that implies them, delivered after, and retried until the catalog confirms.

use std::time::Duration;

use sqlx::FromRow;
use tracing::instrument;
use uuid::Uuid;

use crate::{domain::InventoryAction, error::OrderError};

use super::{Store, Tx};

/// An undelivered inventory call.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub reservation_id: Uuid,
    #[sqlx(try_from = "&'a str")]
    pub action: InventoryAction,
    /// Failed deliveries so far.
    pub attempts: i32,
}

impl Store {
    /// Undelivered outbox rows, and the age in seconds of the oldest (0 when
    /// none): the backlog gauges.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), OrderError> {
        Ok(sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) \
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ids of outbox rows that are due, oldest first.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn due_outbox(&self, limit: i64) -> Result<Vec<i64>, OrderError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM outbox WHERE next_attempt_at <= now() \
             ORDER BY next_attempt_at, id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Takes a due row for delivery: pushes its next attempt `lease` into the
    /// future, so that no other replica sends it meanwhile. `None` if it is
    /// gone or not due (someone else has it).
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn claim_outbox(
        &self,
        id: i64,
        lease: Duration,
    ) -> Result<Option<OutboxEntry>, OrderError> {
        Ok(sqlx::query_as(
            "UPDATE outbox SET next_attempt_at = now() + $2 \
             WHERE id = $1 AND next_attempt_at <= now() \
             RETURNING id, reservation_id, action, attempts",
        )
        .bind(id)
        .bind(lease)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The catalog confirmed the call: the row is done.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn outbox_delivered(&self, id: i64) -> Result<(), OrderError> {
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The call failed: count it, keep why, and try again after `retry_in`.
    #[instrument(skip(self, error), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn outbox_failed(
        &self,
        id: i64,
        retry_in: Duration,
        error: &str,
    ) -> Result<(), OrderError> {
        sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = now() + $2, \
             last_error = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(retry_in)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Tx {
    /// Queues the inventory call on reservation (= order) `id`: delivered
    /// once the transaction commits, and retried until the catalog confirms.
    pub async fn queue_inventory_call(
        &mut self,
        id: Uuid,
        action: InventoryAction,
    ) -> Result<OutboxEntry, OrderError> {
        Ok(sqlx::query_as(
            "INSERT INTO outbox (reservation_id, action) VALUES ($1, $2) \
             RETURNING id, reservation_id, action, attempts",
        )
        .bind(id)
        .bind(action.as_str())
        .fetch_one(&mut *self.0)
        .await?)
    }
}
