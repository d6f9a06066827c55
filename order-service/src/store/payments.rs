//! The payment status write, and the event ids that deduplicate repeated
//! deliveries.

use std::time::Duration;

use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{PaymentStatus, payment::RecordedEvent},
    error::OrderError,
};

use super::{Store, Tx};

impl Tx {
    /// Records payment event `event_id` as carrying `to` for order `id`;
    /// `None` when it is new (recorded now, seen once this transaction
    /// commits), or what it was first recorded with. Recording in the
    /// transaction of the change makes an id seen iff its change applied.
    ///
    /// A concurrent delivery of the same id waits on the unique index until
    /// the first commits (then conflicts) or rolls back (then inserts). On a
    /// conflict the row is read by a second statement, which sees the
    /// committed row; if the pruner deleted it in between, the insert is
    /// simply tried again.
    pub async fn record_payment_event(
        &mut self,
        event_id: &str,
        id: Uuid,
        to: PaymentStatus,
    ) -> Result<Option<RecordedEvent>, OrderError> {
        for _ in 0..3 {
            let inserted = sqlx::query(
                "INSERT INTO payment_events (event_id, order_id, payment_status) \
                 VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(event_id)
            .bind(id)
            .bind(to.as_str())
            .execute(&mut *self.0)
            .await?
            .rows_affected()
                == 1;
            if inserted {
                return Ok(None);
            }
            let row: Option<(Uuid, Option<String>)> = sqlx::query_as(
                "SELECT order_id, payment_status FROM payment_events WHERE event_id = $1",
            )
            .bind(event_id)
            .fetch_optional(&mut *self.0)
            .await?;
            if let Some((order_id, payment_status)) = row {
                // NULL for events recorded before statuses were kept.
                let payment_status = payment_status
                    .map(|status| status.parse())
                    .transpose()
                    .map_err(OrderError::internal)?;
                return Ok(Some(RecordedEvent {
                    order_id,
                    payment_status,
                }));
            }
        }
        Err(OrderError::internal(anyhow::anyhow!(
            "payment event {event_id:?} neither inserts nor reads back"
        )))
    }

    /// A locked pending order's payment status `from` becomes `to`.
    pub async fn set_payment_status(
        &mut self,
        id: Uuid,
        from: PaymentStatus,
        to: PaymentStatus,
    ) -> Result<(), OrderError> {
        self.update_locked(
            "UPDATE orders SET payment_status = $2, updated_at = now() \
             WHERE id = $1 AND status = 'pending' AND payment_status = $3",
            id,
            to.as_str(),
            from.as_str(),
        )
        .await
    }
}

impl Store {
    /// Forgets at most `limit` payment event ids older than `max_age`, oldest
    /// first; returns how many. Bounded, so each call is one short
    /// transaction; the reconciler calls it until a call comes back short.
    /// Rows another replica is deleting at the same moment are skipped.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn prune_payment_events(
        &self,
        max_age: Duration,
        limit: i64,
    ) -> Result<u64, OrderError> {
        Ok(sqlx::query(
            "DELETE FROM payment_events WHERE event_id IN ( \
                 SELECT event_id FROM payment_events WHERE created_at < now() - $1 \
                 ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(max_age)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
