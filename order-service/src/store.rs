//! Every SQL statement of the service, and the transactions that hold them.
//!
//! State changes are conditional updates on the current state
//! (`... WHERE id = $1 AND status = 'pending'`) under a row lock, so concurrent
//! calls on one order serialize in the database: one wins, the others see the
//! new state. A status change and its outbox row commit together.
//!
//! The saga's two writes on the happy path (the `reserving` row of an order
//! without idempotency key, and its confirmation) go through group commit
//! (`lane` below): concurrent orders share one statement and one transaction, so
//! the database commits once per batch instead of twice per order. Each order
//! still gets its own answer; a failed batch is retried order by order.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{FromRow, PgConnection, PgPool};
use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{
        self, InventoryAction, ListFilter, NewOrder, Order, OrderItem, OrderStatus, PageRequest,
        PaymentStatus, ReservedLine, StatusChange, payment::payment_transition,
    },
    error::OrderError,
};

/// The database side of the service. Cheap to clone (a pool handle and the
/// group-commit lanes).
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// Saga step 1 for orders without an idempotency key.
    begin_lane: lane::Lane<NewReserving, ()>,
    /// Saga step 3.
    confirm_lane: lane::Lane<Confirmation, Option<Order>>,
}

/// An order to insert as `reserving`.
#[derive(Debug, Clone)]
struct NewReserving {
    id: Uuid,
    customer_id: i64,
}

/// An order to confirm: its reserved lines and exact total.
#[derive(Debug, Clone)]
struct Confirmation {
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

/// Why a rejected order was refused: the status its caller got, stored so an
/// idempotent replay answers the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: i32,
    pub message: String,
    pub details: Vec<u8>,
}

/// Where a CreateOrder saga stands, as seen by a repeated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaState {
    pub status: OrderStatus,
    pub rejection: Option<Rejection>,
}

/// An undelivered inventory call.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub reservation_id: Uuid,
    #[sqlx(try_from = "String")]
    pub action: InventoryAction,
    /// Failed deliveries so far.
    pub attempts: i32,
}

#[derive(FromRow)]
struct OrderRow {
    id: Uuid,
    customer_id: i64,
    #[sqlx(try_from = "String")]
    status: OrderStatus,
    #[sqlx(try_from = "String")]
    payment_status: PaymentStatus,
    total_price: Decimal,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl OrderRow {
    fn into_order(self, items: Vec<OrderItem>) -> Order {
        Order {
            id: self.id,
            customer_id: self.customer_id,
            status: self.status,
            payment_status: self.payment_status,
            total_price: self.total_price,
            created_at: self.created_at,
            updated_at: self.updated_at,
            items,
        }
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
    #[sqlx(try_from = "String")]
    status: OrderStatus,
    rejection_code: Option<i32>,
    rejection_message: Option<String>,
    rejection_details: Option<Vec<u8>>,
}

#[derive(FromRow)]
struct StatusRow {
    #[sqlx(try_from = "String")]
    status: OrderStatus,
    #[sqlx(try_from = "String")]
    payment_status: PaymentStatus,
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
    "id, customer_id, status, payment_status, total_price, created_at, updated_at";

impl Store {
    /// Also starts the group-commit workers (so: inside a tokio runtime); they
    /// stop when the last clone of the store is dropped.
    pub fn new(pool: PgPool) -> Self {
        let begin_lane = lane::Lane::spawn({
            let pool = pool.clone();
            move |batch: Vec<NewReserving>| insert_reserving(pool.clone(), batch)
        });
        let confirm_lane = lane::Lane::spawn({
            let pool = pool.clone();
            move |batch: Vec<Confirmation>| confirm_orders(pool.clone(), batch)
        });
        Self {
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

    /// Whether the database answers (health checks).
    #[instrument(skip_all)]
    pub async fn ping(&self) -> Result<(), OrderError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    // ---- CreateOrder saga -------------------------------------------------

    /// Saga step 1: the order in state `reserving` (its id is also the
    /// reservation id) and, in the same transaction, its idempotency key.
    ///
    /// A key already taken by a transaction that has not committed yet makes
    /// the insert wait for it (PostgreSQL's unique check), so a concurrent
    /// duplicate sees the first request's order, never a second one.
    #[instrument(skip_all, fields(order_id = %id, keyed = order.idempotency_key.is_some()))]
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
    #[instrument(skip(self))]
    pub async fn saga_state(&self, id: Uuid) -> Result<Option<SagaState>, OrderError> {
        let row: Option<SagaRow> = sqlx::query_as(
            "SELECT status, rejection_code, rejection_message, rejection_details \
             FROM orders WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|row| SagaState {
            status: row.status,
            rejection: row.rejection_code.map(|code| Rejection {
                code,
                message: row.rejection_message.unwrap_or_default(),
                details: row.rejection_details.unwrap_or_default(),
            }),
        }))
    }

    /// Saga step 3: the lines with their prices, the exact total and state
    /// `pending`, atomically, returning the confirmed order. `None` when the
    /// order is no longer `reserving` (the reconciler released it meanwhile):
    /// nothing is written. Shares its statement with concurrent
    /// confirmations (group commit).
    #[instrument(skip(self, lines), fields(lines = lines.len()))]
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
    #[instrument(skip(self, rejection), fields(code = rejection.code))]
    pub async fn reject_order(&self, id: Uuid, rejection: &Rejection) -> Result<bool, OrderError> {
        mark_rejected(&self.pool, id, rejection).await
    }

    /// Saga step 5, for the saga and the reconciler alike: an order whose
    /// reservation may or may not be held becomes `rejected`, its idempotency
    /// key is freed (its caller learnt nothing, and may retry afresh) and a
    /// "release reservation" outbox row is written, in one transaction. From
    /// then on the saga can no longer confirm it (confirmation wants
    /// `reserving`) and the release is delivered until the catalog confirms
    /// it, so stock comes back exactly once whatever fails next. Returns the
    /// outbox row to deliver now; `None` when the order had already left
    /// `reserving` (confirmed, or abandoned by someone else): nothing written.
    #[instrument(skip(self, rejection))]
    pub async fn abandon_order(
        &self,
        id: Uuid,
        rejection: &Rejection,
    ) -> Result<Option<OutboxEntry>, OrderError> {
        let mut tx = self.pool.begin().await?;
        if !mark_rejected(&mut *tx, id, rejection).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        free_idempotency_key(&mut tx, id).await?;
        let entry = insert_outbox(&mut tx, id, InventoryAction::Release).await?;
        tx.commit().await?;
        Ok(Some(entry))
    }

    // ---- Reads ------------------------------------------------------------

    /// A visible order; internal saga states read as not found.
    #[instrument(skip(self))]
    pub async fn get_order(&self, id: Uuid) -> Result<Order, OrderError> {
        let mut conn = self.pool.acquire().await?;
        load_order(&mut conn, id)
            .await?
            .filter(|order| order.status.is_visible())
            .ok_or(OrderError::NotFound(id))
    }

    /// One page of visible orders, newest first, and how many match in all.
    ///
    /// Neither costs more with the table's size: the page is bounded in depth
    /// ([`PageRequest`] refuses offsets past its bound), and `total` counts at
    /// most [`PageRequest::count_cap`] + 1 rows. Up to the cap it is exact;
    /// past it, it is the planner's estimate of the matching rows (from the
    /// statistics autovacuum keeps), never less than the rows counted.
    #[instrument(skip(self))]
    pub async fn list_orders(
        &self,
        filter: ListFilter,
        page: PageRequest,
    ) -> Result<(Vec<Order>, u64), OrderError> {
        // One snapshot for every statement, so the total agrees with the page.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let condition = Self::list_condition(&filter);
        let status = filter.status.map(OrderStatus::as_str);
        let payment_status = filter.payment_status.map(PaymentStatus::as_str);
        let cap = page.count_cap();
        // $1 to $3 are always bound, typed, whether the condition names them
        // or not (PostgreSQL accepts typed parameters a statement ignores).
        let counted: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM (SELECT 1 FROM orders WHERE {condition} LIMIT $4) AS capped"
        )))
        .bind(status)
        .bind(payment_status)
        .bind(filter.customer_id)
        .bind(cap + 1)
        .fetch_one(&mut *tx)
        .await?;
        let estimate = if counted > cap {
            // The first line of the plan is its top node, with its row estimate.
            let plan: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "EXPLAIN SELECT 1 FROM orders WHERE {condition}"
            )))
            .bind(status)
            .bind(payment_status)
            .bind(filter.customer_id)
            .fetch_one(&mut *tx)
            .await?;
            proto::paging::plan_rows(&plan)
        } else {
            None
        };
        let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE {condition} \
             ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
        )))
        .bind(status)
        .bind(payment_status)
        .bind(filter.customer_id)
        .bind(page.limit())
        .bind(page.offset())
        .fetch_all(&mut *tx)
        .await?;
        let orders = with_items(&mut tx, rows).await?;
        tx.commit().await?;
        Ok((orders, proto::paging::capped_total(counted, cap, estimate)))
    }

    /// The WHERE condition of a list: visible orders, and only the filters
    /// given (`status = $1`, `payment_status = $2`, `customer_id = $3`). Each
    /// shape is its own statement, so each gets a plan on its own index
    /// (`orders_by_*_newest_first`); one statement with `$n IS NULL OR ...`
    /// would get one generic plan that can scan every visible order to find a
    /// rare customer's page.
    fn list_condition(filter: &ListFilter) -> String {
        let mut condition = String::from("status IN ('pending', 'completed', 'canceled')");
        if filter.status.is_some() {
            condition.push_str(" AND status = $1");
        }
        if filter.payment_status.is_some() {
            condition.push_str(" AND payment_status = $2");
        }
        if filter.customer_id.is_some() {
            condition.push_str(" AND customer_id = $3");
        }
        condition
    }

    // ---- Status and payment changes ----------------------------------------

    /// UpdateOrderStatus: decides with the status machine under a row lock,
    /// and on a change writes the new status and the outbox row (release on
    /// cancel, commit on complete) in one transaction. Returns the order and
    /// the outbox row to deliver now, if any.
    #[instrument(skip(self))]
    pub async fn change_status(
        &self,
        id: Uuid,
        to: OrderStatus,
    ) -> Result<(Order, Option<OutboxEntry>), OrderError> {
        let mut tx = self.pool.begin().await?;
        let current = lock_visible(&mut tx, id).await?;
        let mut entry = None;
        if let StatusChange::Changed(action) = domain::status::transition(current.status, to)? {
            let updated = sqlx::query(
                "UPDATE orders SET status = $2, updated_at = now() WHERE id = $1 AND status = $3",
            )
            .bind(id)
            .bind(to.as_str())
            .bind(current.status.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated != 1 {
                return Err(OrderError::internal(anyhow::anyhow!(
                    "order {id} changed status under a row lock"
                )));
            }
            if let Some(action) = action {
                entry = Some(insert_outbox(&mut tx, id, action).await?);
            }
        }
        let order = load_order(&mut tx, id)
            .await?
            .ok_or(OrderError::NotFound(id))?;
        tx.commit().await?;
        Ok((order, entry))
    }

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

    // ---- Outbox -------------------------------------------------------------

    /// How many outbox rows wait for delivery (a gauge).
    #[instrument(skip(self))]
    /// Undelivered outbox rows, and the age in seconds of the oldest (0 when none).
    pub async fn outbox_backlog(&self) -> Result<(i64, f64), OrderError> {
        Ok(sqlx::query_as(
            "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at))::float8, 0) \
             FROM outbox",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// Ids of outbox rows that are due, oldest first.
    #[instrument(skip(self))]
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
    #[instrument(skip(self))]
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
    #[instrument(skip(self))]
    pub async fn outbox_delivered(&self, id: i64) -> Result<(), OrderError> {
        sqlx::query("DELETE FROM outbox WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The call failed: count it, keep why, and try again after `retry_in`.
    #[instrument(skip(self, error))]
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

    // ---- Reconciler -----------------------------------------------------------

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

/// Saga step 1 for a batch: every order `reserving`, in one statement.
async fn insert_reserving(pool: PgPool, batch: Vec<NewReserving>) -> Result<Vec<()>, OrderError> {
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
async fn confirm_orders(
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
                       o.created_at, o.updated_at \
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
                c.created_at, c.updated_at, i.id AS item_id, i.product_id, i.quantity, \
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
        let order = confirmed
            .entry(row.order.id)
            .or_insert_with(|| row.order.into_order(Vec::new()));
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

/// The outbox row for an inventory call on reservation (= order) `id`.
async fn insert_outbox(
    conn: &mut PgConnection,
    id: Uuid,
    action: InventoryAction,
) -> Result<OutboxEntry, OrderError> {
    Ok(sqlx::query_as(
        "INSERT INTO outbox (reservation_id, action) VALUES ($1, $2) \
         RETURNING id, reservation_id, action, attempts",
    )
    .bind(id)
    .bind(action.as_str())
    .fetch_one(conn)
    .await?)
}

/// `reserving` -> `rejected` with the reason; `false` if no longer `reserving`.
async fn mark_rejected<'c>(
    conn: impl sqlx::PgExecutor<'c>,
    id: Uuid,
    rejection: &Rejection,
) -> Result<bool, OrderError> {
    let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{BY_ID_WHILE_RESERVING} UPDATE orders AS o SET status = 'rejected', rejection_code = $2, \
         rejection_message = $3, rejection_details = $4, updated_at = now() \
         FROM target WHERE o.id = target.id AND o.status = target.expected"
    )))
    .bind(id)
    .bind(rejection.code)
    .bind(&rejection.message)
    .bind(&rejection.details)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

async fn free_idempotency_key(conn: &mut PgConnection, order_id: Uuid) -> Result<(), OrderError> {
    sqlx::query("DELETE FROM idempotency_keys WHERE order_id = $1")
        .bind(order_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a visible order's row for a state change; hidden or missing orders
/// are not found.
async fn lock_visible(conn: &mut PgConnection, id: Uuid) -> Result<StatusRow, OrderError> {
    let row: Option<StatusRow> =
        sqlx::query_as("SELECT status, payment_status FROM orders WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    row.filter(|row| row.status.is_visible())
        .ok_or(OrderError::NotFound(id))
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
    Ok(rows
        .into_iter()
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
        .collect())
}

/// Group commit: one task per lane takes every request queued while its
/// previous statement was in flight (no timer: a lone request goes at once)
/// and runs them as one batch, so concurrent orders share one transaction.
mod lane {
    use std::future::Future;

    use tokio::sync::{mpsc, oneshot};

    use crate::error::OrderError;

    /// Most requests one statement carries.
    const MAX_BATCH: usize = 128;
    /// Requests that may wait before callers are slowed down.
    const QUEUE: usize = 4096;

    type Reply<O> = oneshot::Sender<Result<O, OrderError>>;

    /// A handle to one lane. Cheap to clone.
    pub struct Lane<R, O> {
        requests: mpsc::Sender<(R, Reply<O>)>,
    }

    impl<R, O> Clone for Lane<R, O> {
        fn clone(&self) -> Self {
            Self {
                requests: self.requests.clone(),
            }
        }
    }

    impl<R, O> Lane<R, O>
    where
        R: Clone + Send + 'static,
        O: Send + 'static,
    {
        /// Starts the lane's task; `run` does one batch, answering one outcome
        /// per request in order, or failing the whole batch (nothing written).
        pub fn spawn<F, Fut>(run: F) -> Self
        where
            F: Fn(Vec<R>) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = Result<Vec<O>, OrderError>> + Send + 'static,
        {
            let (requests, queue) = mpsc::channel(QUEUE);
            tokio::spawn(work(run, queue));
            Self { requests }
        }

        /// Runs `request` in the next batch.
        pub async fn submit(&self, request: R) -> Result<O, OrderError> {
            let (reply, answer) = oneshot::channel();
            self.requests
                .send((request, reply))
                .await
                .map_err(|_| stopped())?;
            answer.await.map_err(|_| stopped())?
        }
    }

    fn stopped() -> OrderError {
        OrderError::internal(anyhow::anyhow!("a group-commit worker has stopped"))
    }

    async fn work<R, O, F, Fut>(run: F, mut queue: mpsc::Receiver<(R, Reply<O>)>)
    where
        R: Clone,
        F: Fn(Vec<R>) -> Fut,
        Fut: Future<Output = Result<Vec<O>, OrderError>>,
    {
        while let Some(first) = queue.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            // A caller that went away (its deadline passed) does not proceed
            // with its order: writing for it would only leave work behind.
            batch.retain(|(_, reply)| !reply.is_closed());
            if batch.is_empty() {
                continue;
            }
            let (requests, replies): (Vec<R>, Vec<Reply<O>>) = batch.into_iter().unzip();
            match run(requests.clone()).await {
                Ok(outcomes) => {
                    for (reply, outcome) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(outcome));
                    }
                }
                Err(error) if requests.len() == 1 => {
                    let reply = replies.into_iter().next().expect("one reply");
                    let _ = reply.send(Err(error));
                }
                Err(error) => {
                    // One bad request must not fail the others: each alone.
                    tracing::warn!(%error, batch = requests.len(), "group-commit batch failed; retrying one by one");
                    for (request, reply) in requests.into_iter().zip(replies) {
                        let outcome = run(vec![request])
                            .await
                            .and_then(|mut one| one.pop().ok_or_else(stopped));
                        let _ = reply.send(outcome);
                    }
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use std::{
            sync::{Arc, Mutex},
            time::Duration,
        };

        use tokio::sync::Semaphore;

        use super::*;

        /// A lane that doubles numbers, records its batches, and waits for a
        /// permit before each batch (so a test can hold it while calls queue).
        fn doubling(gate: Arc<Semaphore>, batches: Arc<Mutex<Vec<Vec<u32>>>>) -> Lane<u32, u32> {
            Lane::spawn(move |batch: Vec<u32>| {
                let (gate, batches) = (gate.clone(), batches.clone());
                async move {
                    gate.acquire().await.expect("open").forget();
                    batches.lock().unwrap().push(batch.clone());
                    if batch.len() > 1 && batch.contains(&13) {
                        return Err(OrderError::internal(anyhow::anyhow!("13 in a batch")));
                    }
                    if batch == [13] {
                        return Err(OrderError::internal(anyhow::anyhow!("13 alone")));
                    }
                    Ok(batch.iter().map(|n| n * 2).collect())
                }
            })
        }

        /// Submits `n` from a task, and waits until the lane has it queued.
        async fn queue(
            lane: &Lane<u32, u32>,
            n: u32,
        ) -> tokio::task::JoinHandle<Result<u32, OrderError>> {
            let lane_ = lane.clone();
            let call = tokio::spawn(async move { lane_.submit(n).await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            call
        }

        #[tokio::test]
        async fn calls_queued_during_a_batch_share_the_next_one_each_with_its_own_answer() {
            let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
            let lane = doubling(gate.clone(), Arc::clone(&batches));
            let first = queue(&lane, 1).await;
            let mut queued = Vec::new();
            for n in 2..=6 {
                queued.push(queue(&lane, n).await);
            }
            gate.add_permits(2);
            assert_eq!(first.await.unwrap().unwrap(), 2);
            for (n, call) in (2..=6).zip(queued) {
                assert_eq!(call.await.unwrap().unwrap(), n * 2);
            }
            assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![2, 3, 4, 5, 6]]);
        }

        #[tokio::test]
        async fn a_failed_batch_is_retried_call_by_call_so_only_the_bad_call_fails() {
            let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
            let lane = doubling(gate.clone(), Arc::clone(&batches));
            let first = queue(&lane, 1).await;
            let (a, bad, b) = (
                queue(&lane, 2).await,
                queue(&lane, 13).await,
                queue(&lane, 3).await,
            );
            gate.add_permits(5);
            assert_eq!(first.await.unwrap().unwrap(), 2);
            assert_eq!(a.await.unwrap().unwrap(), 4);
            assert!(bad.await.unwrap().is_err());
            assert_eq!(b.await.unwrap().unwrap(), 6);
            assert_eq!(
                *batches.lock().unwrap(),
                vec![vec![1], vec![2, 13, 3], vec![2], vec![13], vec![3]]
            );
        }

        #[tokio::test]
        async fn a_caller_gone_while_queued_is_left_out_of_the_batch() {
            let (gate, batches) = (Arc::new(Semaphore::new(0)), Arc::default());
            let lane = doubling(gate.clone(), Arc::clone(&batches));
            let first = queue(&lane, 1).await;
            let gone = queue(&lane, 7).await;
            gone.abort();
            let _ = gone.await;
            let kept = queue(&lane, 8).await;
            gate.add_permits(2);
            assert_eq!(first.await.unwrap().unwrap(), 2);
            assert_eq!(kept.await.unwrap().unwrap(), 16);
            assert_eq!(*batches.lock().unwrap(), vec![vec![1], vec![8]]);
        }
    }
}
