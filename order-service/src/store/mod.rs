//! Every SQL statement of the service and the mapping of its rows to domain
//! types; no rule is decided here. The application composes these primitives:
//! reads and single-statement writes on [`Store`], and on [`Tx`] (a
//! transaction the application opens, fills and commits) the steps of an
//! atomic change, such as "lock the order row", "write the new status",
//! "queue the inventory call".
//!
//! State changes are conditional updates on the current state
//! (`... WHERE id = $1 AND status = 'pending'`) under a row lock, so concurrent
//! calls on one order serialize in the database: one wins, the others see the
//! new state.
//!
//! The saga's two writes on the happy path (the `reserving` row of an order
//! without idempotency key, and its confirmation) go through group commit
//! (`lane`): concurrent orders share one statement and one transaction, so
//! the database commits once per batch instead of twice per order. Each order
//! still gets its own answer; a failed batch is retried order by order.
//!
//! ## Layout
//! - this file: the [`Store`] handle, the [`Tx`] transaction, the order row
//!   and what every concern shares (an order with its lines, the row lock of
//!   a state change, a conditional update under that lock);
//! - [`saga`]: CreateOrder's writes (begin, confirm, reject, mark rejected,
//!   free the key) and the saga state a repeated request reads;
//! - [`orders`]: reads (an order in any state, a page of visible ones) and
//!   the status write;
//! - [`payments`]: the payment status write and the event ids that
//!   deduplicate deliveries;
//! - [`outbox`]: queueing, claiming and settling inventory calls;
//! - [`reconciler`]: what the reconciler looks for (stuck sagas, orders
//!   unpaid past the payment timeout) and prunes;
//! - [`events`]: the order event log (recorded with each change, numbered in
//!   commit order by the sequencer, read by WatchOrderEvents, pruned);
//! - the saga's writes go through group-commit lanes (`platform::group_commit`).

mod events;
mod orders;
mod outbox;
mod payments;
mod reconciler;
mod saga;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use platform::group_commit::Lane;
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    domain::{CancelReason, Order, OrderItem, OrderStatus, PaymentStatus},
    error::OrderError,
};

pub use events::{LogBounds, OrderEvent};
pub use outbox::OutboxEntry;
pub use saga::{Begun, SagaState};
use saga::{Confirmation, NewReserving, confirm_orders, insert_reserving};

/// The database side of the service. Cheap to clone (a pool handle and the
/// group-commit lanes).
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The database's name: `db.namespace` of the store's spans, which are
    /// OpenTelemetry CLIENT spans with `db.system = "postgresql"` (never the
    /// SQL or its values).
    namespace: Arc<str>,
    /// Saga step 1 for orders without an idempotency key.
    begin_lane: Lane<NewReserving, (), OrderError>,
    /// Saga step 3.
    confirm_lane: Lane<Confirmation, Option<Order>, OrderError>,
}

/// A transaction on the orders database, opened by [`Store::begin`]. Its
/// writes take effect together on [`Tx::commit`]; dropped without it, it
/// rolls back.
pub struct Tx(Transaction<'static, Postgres>);

/// An order's states, read under its row lock: they stay so until the
/// transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Locked {
    pub status: OrderStatus,
    pub payment_status: PaymentStatus,
    pub cancel_reason: Option<CancelReason>,
}

#[derive(FromRow)]
struct LockedRow {
    #[sqlx(try_from = "&'a str")]
    status: OrderStatus,
    #[sqlx(try_from = "&'a str")]
    payment_status: PaymentStatus,
    cancel_reason: Option<String>,
}

impl LockedRow {
    fn into_locked(self) -> Result<Locked, OrderError> {
        Ok(Locked {
            status: self.status,
            payment_status: self.payment_status,
            cancel_reason: parse_cancel_reason(self.cancel_reason)?,
        })
    }
}

/// The `cancel_reason` column (a CHECK constraint keeps it to the known
/// spellings).
fn parse_cancel_reason(value: Option<String>) -> Result<Option<CancelReason>, OrderError> {
    value
        .map(|reason| {
            reason.parse().map_err(|_| {
                OrderError::internal(anyhow::anyhow!("unknown cancel_reason {reason:?}"))
            })
        })
        .transpose()
}

#[derive(FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: i64,
    #[sqlx(try_from = "&'a str")]
    status: OrderStatus,
    #[sqlx(try_from = "&'a str")]
    payment_status: PaymentStatus,
    total_price: Decimal,
    cancel_reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl OrderRow {
    fn into_order(self, items: Vec<OrderItem>) -> Result<Order, OrderError> {
        Ok(Order {
            id: self.id,
            customer_id: self.customer_id,
            status: self.status,
            payment_status: self.payment_status,
            total_price: self.total_price,
            cancel_reason: parse_cancel_reason(self.cancel_reason)?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            items,
        })
    }
}

#[derive(FromRow)]
struct ItemRow {
    id: i64,
    order_id: Uuid,
    product_id: Uuid,
    quantity: i32,
    price_at_purchase: Decimal,
}

/// Finds the order `$1` only while it is `reserving`, through its primary
/// key. Written as `WHERE id = $1 AND status = 'reserving'`, the planner
/// prefers the partial index `orders_reserving_by_age` (it holds "2 rows"),
/// but every order passes through `reserving`, so under load that index is
/// mostly dead entries until vacuum, and scanning it made each saga step
/// slower as orders piled up (c=1 latency 2 -> 6 ms in deploy/bench). The
/// expected state comes from a MATERIALIZED CTE, so it is a join condition the
/// planner cannot match against the index's predicate: the lookup is by id.
const BY_ID_WHILE_RESERVING: &str =
    "WITH target AS MATERIALIZED (SELECT $1::uuid AS id, 'reserving'::text AS expected)";

const ORDER_COLUMNS: &str =
    "id, customer_id, status, payment_status, total_price, cancel_reason, created_at, updated_at";

impl Store {
    /// Also starts the group-commit workers (so: inside a tokio runtime); they
    /// stop when the last clone of the store is dropped.
    pub fn new(pool: PgPool) -> Self {
        let begin_lane = Lane::spawn({
            let pool = pool.clone();
            move |batch: Vec<NewReserving>| insert_reserving(pool.clone(), batch)
        });
        let confirm_lane = Lane::spawn({
            let pool = pool.clone();
            move |batch: Vec<Confirmation>| confirm_orders(pool.clone(), batch)
        });
        Self {
            namespace: platform::db::database_name(&pool),
            pool,
            begin_lane,
            confirm_lane,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store {
    /// Opens a transaction for the application to fill.
    pub async fn begin(&self) -> Result<Tx, OrderError> {
        Ok(Tx(self.pool.begin().await?))
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), OrderError> {
        Ok(self.0.commit().await?)
    }

    /// Ends the transaction without writing anything.
    pub async fn rollback(self) -> Result<(), OrderError> {
        Ok(self.0.rollback().await?)
    }

    /// Locks an order's row (any state) until the transaction ends; `None`
    /// when there is no such order.
    pub async fn lock_order(&mut self, id: Uuid) -> Result<Option<Locked>, OrderError> {
        let row: Option<LockedRow> = sqlx::query_as(
            "SELECT status, payment_status, cancel_reason FROM orders WHERE id = $1 FOR UPDATE",
        )
        .bind(id)
        .fetch_optional(&mut *self.0)
        .await?;
        row.map(LockedRow::into_locked).transpose()
    }

    /// An order (any state) with its lines, as this transaction sees it.
    pub async fn order(&mut self, id: Uuid) -> Result<Option<Order>, OrderError> {
        load_order(&mut self.0, id).await
    }

    /// Runs `statement`, a conditional update of a locked order: `$1` the
    /// order, `$2` the new value, `$3` the value it is conditional on. The
    /// row lock guarantees it applies; if it did not, something changed the
    /// row under the lock, and the transaction must not go on.
    async fn update_locked(
        &mut self,
        statement: &'static str,
        id: Uuid,
        to: &str,
        from: &str,
    ) -> Result<(), OrderError> {
        let updated = sqlx::query(statement)
            .bind(id)
            .bind(to)
            .bind(from)
            .execute(&mut *self.0)
            .await?
            .rows_affected();
        Self::applied_under_lock(updated, id, from, to)
    }

    /// A conditional update of a locked order updated its row: under the
    /// lock it must have; if it did not, something changed the row under the
    /// lock, and the transaction must not go on.
    fn applied_under_lock(updated: u64, id: Uuid, from: &str, to: &str) -> Result<(), OrderError> {
        if updated == 1 {
            Ok(())
        } else {
            Err(OrderError::internal(anyhow::anyhow!(
                "order {id} changed under a row lock ({from} -> {to})"
            )))
        }
    }
}

async fn load_order(conn: &mut PgConnection, id: Uuid) -> Result<Option<Order>, OrderError> {
    let row: Option<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(with_items(conn, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

/// Attaches their lines to orders, with one query for all of them.
async fn with_items(
    conn: &mut PgConnection,
    rows: Vec<OrderRow>,
) -> Result<Vec<Order>, OrderError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let items: Vec<ItemRow> = sqlx::query_as(
        "SELECT id, order_id, product_id, quantity, price_at_purchase \
         FROM order_items WHERE order_id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let lines = items
                .iter()
                .filter(|item| item.order_id == row.id)
                .map(|item| OrderItem {
                    id: item.id,
                    product_id: item.product_id,
                    quantity: item.quantity,
                    price_at_purchase: item.price_at_purchase,
                })
                .collect();
            row.into_order(lines)
        })
        .collect()
}
