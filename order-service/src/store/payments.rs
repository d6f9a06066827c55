//! Payment updates, and the event ids that deduplicate repeated deliveries.

use std::time::Duration;

use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{self, Order, OrderStatus, PaymentStatus, payment::payment_transition},
    error::OrderError,
};

use super::{Store, load_order, lock_visible};

impl Store {
    /// ApplyPayment: a seen event id with the same order and status is a
    /// no-op, with anything else a refusal (ALREADY_EXISTS, reason
    /// EVENT_ID_REUSED: see [`domain::payment::seen_event`] for why);
    /// otherwise only a pending order takes it, by the payment status
    /// machine. The event id is recorded, with the order and status, in the
    /// same transaction as the change, so it is seen iff it applied.
    #[instrument(skip(self))]
    pub async fn apply_payment(
        &self,
        id: Uuid,
        to: PaymentStatus,
        event_id: Option<&str>,
    ) -> Result<Order, OrderError> {
        let mut tx = self.pool.begin().await?;
        let current = lock_visible(&mut tx, id).await?;
        let mut seen_before = false;
        if let Some(event_id) = event_id {
            // A concurrent delivery of the same id waits here on the unique
            // index until the first commits (then conflicts) or rolls back
            // (then inserts). On a conflict the row is read by a second
            // statement, which sees the committed row; if the pruner deleted
            // it in between, the insert is simply tried again.
            let mut attempts = 0;
            let recorded = loop {
                let inserted = sqlx::query(
                    "INSERT INTO payment_events (event_id, order_id, payment_status) \
                     VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING",
                )
                .bind(event_id)
                .bind(id)
                .bind(to.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if inserted {
                    break None;
                }
                let row: Option<(Uuid, Option<String>)> = sqlx::query_as(
                    "SELECT order_id, payment_status FROM payment_events WHERE event_id = $1",
                )
                .bind(event_id)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(row) = row {
                    break Some(row);
                }
                attempts += 1;
                if attempts == 3 {
                    return Err(OrderError::internal(anyhow::anyhow!(
                        "payment event {event_id:?} neither inserts nor reads back"
                    )));
                }
            };
            if let Some((order_id, payment_status)) = recorded {
                let recorded = domain::payment::RecordedEvent {
                    order_id,
                    payment_status: payment_status
                        .map(|status| status.parse())
                        .transpose()
                        .map_err(OrderError::internal)?,
                };
                domain::payment::seen_event(event_id, recorded, id, to).map_err(|reused| {
                    tracing::warn!(
                        event_id,
                        order_id = %id,
                        "payment event id reused for another delivery"
                    );
                    // A definite refusal with its own reason; the gateway
                    // answers ALREADY_EXISTS with 409 and this message.
                    OrderError::Refused(proto::errors::with_info(
                        tonic::Code::AlreadyExists,
                        reused.to_string(),
                        proto::errors::reason::EVENT_ID_REUSED,
                        std::iter::empty(),
                    ))
                })?;
                seen_before = true;
            }
        }
        if !seen_before {
            if current.status != OrderStatus::Pending {
                return Err(OrderError::NotPending {
                    status: current.status,
                });
            }
            if payment_transition(current.payment_status, to)? {
                let updated = sqlx::query(
                    "UPDATE orders SET payment_status = $2, updated_at = now() \
                     WHERE id = $1 AND status = 'pending' AND payment_status = $3",
                )
                .bind(id)
                .bind(to.as_str())
                .bind(current.payment_status.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    return Err(OrderError::internal(anyhow::anyhow!(
                        "order {id} changed payment status under a row lock"
                    )));
                }
            }
        }
        let order = load_order(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound(id))?;
        tx.commit().await?;
        Ok(order)
    }

    /// Forgets at most `limit` payment event ids older than `max_age`, oldest
    /// first; returns how many. Bounded, so each call is one short
    /// transaction; the reconciler calls it until a call comes back short.
    /// Rows another replica is deleting at the same moment are skipped.
    #[instrument(skip(self))]
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
