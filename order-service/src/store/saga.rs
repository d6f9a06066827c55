//! CreateOrder's writes: the order `reserving` (with its idempotency key), its
//! confirmation (lines, total, `pending`), a refusal, and the steps of
//! abandonment (`rejected`, key freed). Confirmation and rejection are both
//! conditional on `reserving`, so exactly one of them wins.
//!
//! Why an order was refused is stored as the domain's [`Refusal`], as JSON in
//! `orders.refusal`. Rows written by earlier versions hold the status their
//! caller got instead (`rejection_code`, `rejection_message`,
//! `rejection_details`): both forms are read, the old one through
//! [`refusal::from_stored_status`].

use rust_decimal::Decimal;
use sqlx::{FromRow, PgPool};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{NewOrder, Order, OrderItem, OrderStatus, Refusal, ReservedLine},
    error::{OrderError, refusal},
};

use super::{BY_ID_WHILE_RESERVING, OrderRow, Store, Tx};

/// An order to insert as `reserving`.
#[derive(Debug, Clone)]
pub(super) struct NewReserving {
    id: Uuid,
    customer_id: i64,
}

/// An order to confirm: its reserved lines and exact total.
#[derive(Debug, Clone)]
pub(super) struct Confirmation {
    id: Uuid,
    lines: Vec<ReservedLine>,
    total: Decimal,
}

/// How a CreateOrder's first step went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begun {
    /// The order row (and its key, if any) is written: go on with the saga.
    Started,
    /// The idempotency key already names an order: this request is a repeat
    /// (or a mismatch, if the hashes differ). Nothing was written.
    Existing {
        order_id: Uuid,
        request_hash: String,
    },
}

/// Where a CreateOrder saga stands, as seen by a repeated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaState {
    pub status: OrderStatus,
    /// Why a rejected order was refused; `None` when it was abandoned (the
    /// outcome of its reservation was unknown).
    pub refusal: Option<Refusal>,
}

/// One row of `confirm_order`: the order, and one of its new lines.
#[derive(FromRow)]
struct ConfirmedRow {
    #[sqlx(flatten)]
    order: OrderRow,
    item_id: Option<i64>,
    product_id: Option<Uuid>,
    quantity: Option<i32>,
    price_at_purchase: Option<Decimal>,
}

#[derive(FromRow)]
struct SagaRow {
    #[sqlx(try_from = "&'a str")]
    status: OrderStatus,
    /// `orders.refusal` as JSON text.
    refusal: Option<String>,
    rejection_code: Option<i32>,
    rejection_message: Option<String>,
    rejection_details: Option<Vec<u8>>,
}

impl SagaRow {
    fn into_state(self) -> Result<SagaState, OrderError> {
        let refusal = match (self.refusal, self.rejection_code) {
            (Some(json), _) => Some(serde_json::from_str(&json).map_err(OrderError::internal)?),
            (None, Some(code)) => refusal::from_stored_status(
                code,
                self.rejection_message.unwrap_or_default(),
                self.rejection_details.unwrap_or_default(),
            ),
            (None, None) => None,
        };
        Ok(SagaState {
            status: self.status,
            refusal,
        })
    }
}

impl Store {
    /// Saga step 1: the order in state `reserving` (its id is also the
    /// reservation id) and, in the same transaction, its idempotency key.
    ///
    /// A key already taken by a transaction that has not committed yet makes
    /// the insert wait for it (PostgreSQL's unique check), so a concurrent
    /// duplicate sees the first request's order, never a second one.
    #[instrument(skip_all, fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace, order_id = %id, keyed = order.idempotency_key.is_some()))]
    pub async fn begin_order(
        &self,
        id: Uuid,
        order: &NewOrder,
        request_hash: &str,
    ) -> Result<Begun, OrderError> {
        let Some(key) = &order.idempotency_key else {
            // Without a key: one row of a shared insert (group commit).
            self.begin_lane
                .submit(NewReserving {
                    id,
                    customer_id: order.customer_id,
                })
                .await?;
            return Ok(Begun::Started);
        };
        // The key can be freed between our failed insert and our read (the
        // first request ended with an unknown outcome): then try again.
        for _ in 0..3 {
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO orders (id, customer_id, status) VALUES ($1, $2, 'reserving')",
            )
            .bind(id)
            .bind(order.customer_id)
            .execute(&mut *tx)
            .await?;
            let claimed: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO NOTHING RETURNING order_id",
            )
            .bind(key)
            .bind(request_hash)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if claimed.is_some() {
                tx.commit().await?;
                return Ok(Begun::Started);
            }
            tx.rollback().await?;
            let existing: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT order_id, request_hash FROM idempotency_keys WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
            if let Some((order_id, request_hash)) = existing {
                return Ok(Begun::Existing {
                    order_id,
                    request_hash,
                });
            }
        }
        Err(OrderError::InProgress)
    }

    /// The saga state of any order, internal states included.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn saga_state(&self, id: Uuid) -> Result<Option<SagaState>, OrderError> {
        let row: Option<SagaRow> = sqlx::query_as(
            "SELECT status, refusal::text AS refusal, rejection_code, rejection_message, \
             rejection_details FROM orders WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(SagaRow::into_state).transpose()
    }

    /// Saga step 3: the lines with their prices, the exact total and state
    /// `pending`, atomically, returning the confirmed order. `None` when the
    /// order is no longer `reserving` (the reconciler released it meanwhile):
    /// nothing is written. Shares its statement with concurrent
    /// confirmations (group commit).
    #[instrument(skip(self, lines), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace, lines = lines.len()))]
    pub async fn confirm_order(
        &self,
        id: Uuid,
        lines: &[ReservedLine],
        total: Decimal,
    ) -> Result<Option<Order>, OrderError> {
        self.confirm_lane
            .submit(Confirmation {
                id,
                lines: lines.to_vec(),
                total,
            })
            .await
    }

    /// Saga step 4: a definitely refused order becomes `rejected`,
    /// remembering why (an idempotent replay answers the same). `false` when
    /// the order was no longer `reserving`.
    #[instrument(skip(self, refusal), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn reject_order(&self, id: Uuid, refusal: &Refusal) -> Result<bool, OrderError> {
        mark_rejected(&self.pool, id, Some(refusal)).await
    }
}

impl Tx {
    /// Saga step 5's first write: an order whose reservation may or may not
    /// be held becomes `rejected`, with no refusal (its outcome is unknown).
    /// `false` when it had already left `reserving`: nothing written.
    pub async fn abandon_reserving(&mut self, id: Uuid) -> Result<bool, OrderError> {
        mark_rejected(&mut *self.0, id, None).await
    }

    /// Frees the idempotency key of order `id`: a repeated request then
    /// starts afresh.
    pub async fn free_idempotency_key(&mut self, id: Uuid) -> Result<(), OrderError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE order_id = $1")
            .bind(id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}

/// Saga step 1 for a batch: every order `reserving`, in one statement.
pub(super) async fn insert_reserving(
    pool: PgPool,
    batch: Vec<NewReserving>,
) -> Result<Vec<()>, OrderError> {
    let ids: Vec<Uuid> = batch.iter().map(|o| o.id).collect();
    let customers: Vec<i64> = batch.iter().map(|o| o.customer_id).collect();
    sqlx::query(
        "INSERT INTO orders (id, customer_id, status) \
         SELECT id, customer_id, 'reserving' FROM UNNEST($1::uuid[], $2::int8[]) AS o(id, customer_id)",
    )
    .bind(&ids)
    .bind(&customers)
    .execute(&pool)
    .await?;
    Ok(vec![(); batch.len()])
}

/// Saga step 3 for a batch, in one statement: each order still `reserving`
/// becomes `pending` with its total and gets its lines (ids in the catalog's
/// line order); the others are left alone (`None`).
pub(super) async fn confirm_orders(
    pool: PgPool,
    batch: Vec<Confirmation>,
) -> Result<Vec<Option<Order>>, OrderError> {
    let ids: Vec<Uuid> = batch.iter().map(|c| c.id).collect();
    let totals: Vec<Decimal> = batch.iter().map(|c| c.total).collect();
    let mut line_orders = Vec::new();
    let mut product_ids = Vec::new();
    let mut quantities = Vec::new();
    let mut prices = Vec::new();
    for confirmation in &batch {
        for line in &confirmation.lines {
            line_orders.push(confirmation.id);
            product_ids.push(line.product_id);
            quantities.push(line.quantity);
            prices.push(line.unit_price);
        }
    }
    // The expected state travels with each row of a MATERIALIZED input (see
    // BY_ID_WHILE_RESERVING). The LEFT JOIN keeps a confirmed order even if
    // it had no lines.
    let rows: Vec<ConfirmedRow> = sqlx::query_as(
        "WITH input AS MATERIALIZED ( \
             SELECT t.id, t.total, 'reserving'::text AS expected \
             FROM UNNEST($1::uuid[], $2::numeric[]) AS t(id, total) \
         ), confirmed AS ( \
             UPDATE orders AS o SET status = 'pending', total_price = input.total, updated_at = now() \
             FROM input WHERE o.id = input.id AND o.status = input.expected \
             RETURNING o.id, o.customer_id, o.status, o.payment_status, o.total_price, \
                       o.cancel_reason, o.created_at, o.updated_at \
         ), created AS ( \
             INSERT INTO order_events (order_id, kind, status, payment_status, customer_id, total_price) \
             SELECT id, 'created', status, payment_status, customer_id, total_price FROM confirmed \
         ), items AS ( \
             INSERT INTO order_items (order_id, product_id, quantity, price_at_purchase) \
             SELECT line.order_id, line.product_id, line.quantity, line.price \
             FROM UNNEST($3::uuid[], $4::uuid[], $5::int4[], $6::numeric[]) \
                  WITH ORDINALITY AS line (order_id, product_id, quantity, price, n) \
             WHERE line.order_id IN (SELECT id FROM confirmed) \
             ORDER BY line.n \
             RETURNING id, order_id, product_id, quantity, price_at_purchase \
         ) \
         SELECT c.id, c.customer_id, c.status, c.payment_status, c.total_price, \
                c.cancel_reason, c.created_at, c.updated_at, i.id AS item_id, i.product_id, i.quantity, \
                i.price_at_purchase \
         FROM confirmed c LEFT JOIN items i ON i.order_id = c.id ORDER BY c.id, i.id",
    )
    .bind(&ids)
    .bind(&totals)
    .bind(&line_orders)
    .bind(&product_ids)
    .bind(&quantities)
    .bind(&prices)
    .fetch_all(&pool)
    .await?;
    let mut confirmed: std::collections::HashMap<Uuid, Order> = std::collections::HashMap::new();
    for row in rows {
        let order = match confirmed.entry(row.order.id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(row.order.into_order(Vec::new())?)
            }
        };
        if let (Some(id), Some(product_id), Some(quantity), Some(price_at_purchase)) = (
            row.item_id,
            row.product_id,
            row.quantity,
            row.price_at_purchase,
        ) {
            order.items.push(OrderItem {
                id,
                product_id,
                quantity,
                price_at_purchase,
            });
        }
    }
    Ok(ids.iter().map(|id| confirmed.remove(id)).collect())
}

/// `reserving` -> `rejected`, with the refusal if there was one; `false` if
/// no longer `reserving`.
async fn mark_rejected<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    id: Uuid,
    refusal: Option<&Refusal>,
) -> Result<bool, OrderError> {
    let refusal = refusal
        .map(serde_json::to_string)
        .transpose()
        .map_err(OrderError::internal)?;
    let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BY_ID_WHILE_RESERVING} UPDATE orders AS o SET status = 'rejected', \
         refusal = $2::jsonb, updated_at = now() \
         FROM target WHERE o.id = target.id AND o.status = target.expected"
    )))
    .bind(id)
    .bind(refusal)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

#[cfg(test)]
mod tests {
    use crate::domain::{RefusalKind, RefusalReason};

    use super::*;

    fn row(refusal: Option<&str>, legacy: Option<(i32, &str, Vec<u8>)>) -> SagaRow {
        SagaRow {
            status: OrderStatus::Rejected,
            refusal: refusal.map(str::to_owned),
            rejection_code: legacy.as_ref().map(|(code, _, _)| *code),
            rejection_message: legacy.as_ref().map(|(_, message, _)| (*message).to_owned()),
            rejection_details: legacy.map(|(_, _, details)| details),
        }
    }

    /// The stored form is a contract with every row already written: this
    /// JSON must keep reading as this refusal.
    #[test]
    fn the_stored_refusal_reads_back() {
        let json = r#"{"reason":{"insufficient_stock":{"product_id":"00000000-0000-0000-0000-000000000007","product_name":"Laptop","available":1,"requested":2}},"message":"Insufficient stock"}"#;
        let expected = Refusal {
            reason: RefusalReason::InsufficientStock {
                product_id: Uuid::from_u128(7),
                product_name: "Laptop".into(),
                available: 1,
                requested: 2,
            },
            message: "Insufficient stock".into(),
        };
        let state = row(Some(json), None).into_state().unwrap();
        assert_eq!(state.refusal, Some(expected.clone()));
        assert_eq!(serde_json::to_string(&expected).unwrap(), json);
    }

    #[test]
    fn rows_of_earlier_versions_read_as_refusals() {
        let status = proto::errors::with_info(
            tonic::Code::AlreadyExists,
            "Reservation exists with other items",
            "SOMETHING_NEW",
            [("id", "x".to_owned())],
        );
        let legacy = (
            status.code() as i32,
            status.message(),
            status.details().to_vec(),
        );
        let state = row(None, Some(legacy)).into_state().unwrap();
        let refusal = state.refusal.unwrap();
        assert_eq!(refusal.reason.kind(), RefusalKind::Conflict);
        assert_eq!(refusal.message, "Reservation exists with other items");
        // An abandoned order of an earlier version was stored as UNAVAILABLE.
        let abandoned = (tonic::Code::Unavailable as i32, "unavailable", Vec::new());
        let state = row(None, Some(abandoned)).into_state().unwrap();
        assert_eq!(state.refusal, None);
        assert_eq!(row(None, None).into_state().unwrap().refusal, None);
    }

    #[test]
    fn a_stored_refusal_this_version_cannot_read_is_an_error() {
        assert!(row(Some(r#"{"reason":"?"}"#), None).into_state().is_err());
    }
}
