//! The order event log: recording an event in the transaction of its change,
//! numbering committed events (the sequencer), reading them in order, and the
//! retention. See the migration `cancel_reason_and_order_events` for why
//! events are numbered after commit and not when written.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::FromRow;
use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{CancelReason, OrderEventKind, OrderStatus, PaymentStatus},
    error::OrderError,
};

use super::{Store, Tx, parse_cancel_reason};

/// One numbered event, with the order's state as its change left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderEvent {
    pub sequence: i64,
    pub order_id: Uuid,
    pub kind: OrderEventKind,
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub cancel_reason: Option<CancelReason>,
    pub customer_id: i64,
    pub total_price: Decimal,
    pub occurred_at: DateTime<Utc>,
}

#[derive(FromRow)]
struct EventRow {
    sequence: i64,
    order_id: Uuid,
    #[sqlx(try_from = "&'a str")]
    kind: OrderEventKind,
    #[sqlx(try_from = "&'a str")]
    status: OrderStatus,
    #[sqlx(try_from = "&'a str")]
    payment_status: PaymentStatus,
    cancel_reason: Option<String>,
    customer_id: i64,
    total_price: Decimal,
    occurred_at: DateTime<Utc>,
}

/// Where the log stands: events `pruned_through + 1 ..= last_sequence` are
/// there to read, in order, with no gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct LogBounds {
    pub last_sequence: i64,
    pub pruned_through: i64,
}

impl Tx {
    /// Records that order `id` changed (`kind`), with its state as this
    /// transaction sees it after the change. Numbered once committed.
    pub async fn record_event(&mut self, id: Uuid, kind: OrderEventKind) -> Result<(), OrderError> {
        let inserted = sqlx::query(
            "INSERT INTO order_events \
                 (order_id, kind, status, payment_status, cancel_reason, customer_id, total_price) \
             SELECT id, $2, status, payment_status, cancel_reason, customer_id, total_price \
             FROM orders WHERE id = $1",
        )
        .bind(id)
        .bind(kind.as_str())
        .execute(&mut *self.0)
        .await?
        .rows_affected();
        Self::applied_under_lock(inserted, id, "event", kind.as_str())
    }
}

impl Store {
    /// Where the log stands now.
    pub async fn event_log_bounds(&self) -> Result<LogBounds, OrderError> {
        Ok(
            sqlx::query_as("SELECT last_sequence, pruned_through FROM order_event_sequencer")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// One round of the sequencer: numbers up to `limit` committed events not
    /// numbered yet, in write order, after the last number given; returns the
    /// last number given (by this round or an earlier one, of any replica)
    /// and how many this round numbered.
    ///
    /// Rounds hold the sequencer row's lock from their first statement to
    /// their commit, so they run one at a time and commit in the order of
    /// their numbers. The numbering statement starts after the lock is held,
    /// so it sees every event committed before; one that commits later is
    /// numbered by a later round, after everything numbered already. Hence
    /// any reader's snapshot holds 1..=last_sequence complete.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn sequence_events(&self, limit: i64) -> Result<(i64, u64), OrderError> {
        // Most rounds find nothing to do: check without taking the lock.
        let (last, waiting): (i64, bool) = sqlx::query_as(
            "SELECT last_sequence, \
                    EXISTS (SELECT 1 FROM order_events WHERE sequence IS NULL) \
             FROM order_event_sequencer",
        )
        .fetch_one(&self.pool)
        .await?;
        if !waiting {
            return Ok((last, 0));
        }
        let mut tx = self.pool.begin().await?;
        let last: i64 =
            sqlx::query_scalar("SELECT last_sequence FROM order_event_sequencer FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let numbered = sqlx::query(
            "WITH next AS ( \
                 SELECT id, row_number() OVER (ORDER BY id) AS n FROM order_events \
                 WHERE sequence IS NULL ORDER BY id LIMIT $2 \
             ) \
             UPDATE order_events AS e SET sequence = $1 + next.n FROM next WHERE e.id = next.id",
        )
        .bind(last)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let last = last + numbered as i64;
        sqlx::query("UPDATE order_event_sequencer SET last_sequence = $1")
            .bind(last)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((last, numbered))
    }

    /// Up to `limit` numbered events after `after`, in order.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<OrderEvent>, OrderError> {
        let rows: Vec<EventRow> = sqlx::query_as(
            "SELECT sequence, order_id, kind, status, payment_status, cancel_reason, customer_id, \
                    total_price, occurred_at \
             FROM order_events WHERE sequence > $1 ORDER BY sequence LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(OrderEvent {
                    sequence: row.sequence,
                    order_id: row.order_id,
                    kind: row.kind,
                    status: row.status,
                    payment_status: row.payment_status,
                    cancel_reason: parse_cancel_reason(row.cancel_reason)?,
                    customer_id: row.customer_id,
                    total_price: row.total_price,
                    occurred_at: row.occurred_at,
                })
            })
            .collect()
    }

    /// Deletes the oldest numbered events, up to `limit`, that are older than
    /// `retention`: a prefix of the log, stopping at the first younger one,
    /// so the log stays gap-free and nothing younger than the retention goes.
    /// Returns how many were deleted.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn prune_events(&self, retention: Duration, limit: i64) -> Result<u64, OrderError> {
        let mut tx = self.pool.begin().await?;
        // Under the sequencer's lock, so `pruned_through` moves with the rows.
        let pruned_through: i64 =
            sqlx::query_scalar("SELECT pruned_through FROM order_event_sequencer FOR UPDATE")
                .fetch_one(&mut *tx)
                .await?;
        let cut: Option<i64> = sqlx::query_scalar(
            "WITH head AS ( \
                 SELECT sequence, occurred_at FROM order_events \
                 WHERE sequence > $2 ORDER BY sequence LIMIT $3 \
             ) \
             SELECT coalesce( \
                 (SELECT min(sequence) - 1 FROM head WHERE occurred_at >= now() - $1), \
                 (SELECT max(sequence) FROM head))",
        )
        .bind(retention)
        .bind(pruned_through)
        .bind(limit)
        .fetch_one(&mut *tx)
        .await?;
        let Some(cut) = cut.filter(|cut| *cut > pruned_through) else {
            return Ok(0);
        };
        let deleted =
            sqlx::query("DELETE FROM order_events WHERE sequence > $1 AND sequence <= $2")
                .bind(pruned_through)
                .bind(cut)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        sqlx::query("UPDATE order_event_sequencer SET pruned_through = $1")
            .bind(cut)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted)
    }
}
