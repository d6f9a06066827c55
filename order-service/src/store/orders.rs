//! Reads of orders (one, a page of visible ones) and the status write.

use proto::paging::PageRequest;
use tracing::instrument;
use uuid::Uuid;

use crate::{
    domain::{CancelReason, ListFilter, Order, OrderStatus, PaymentStatus},
    error::OrderError,
};

use super::{ORDER_COLUMNS, OrderRow, Store, Tx, load_order, with_items};

impl Store {
    /// An order in any state, with its lines.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn order(&self, id: Uuid) -> Result<Option<Order>, OrderError> {
        let mut conn = self.pool.acquire().await?;
        load_order(&mut conn, id).await
    }

    /// One page of visible orders, newest first, and how many match in all.
    ///
    /// Neither costs more with the table's size: the page is bounded in depth
    /// ([`PageRequest`] refuses offsets past its bound), and `total` counts at
    /// most [`PageRequest::count_cap`] + 1 rows. Up to the cap it is exact;
    /// past it, it is the planner's estimate of the matching rows (from the
    /// statistics autovacuum keeps), never less than the rows counted.
    #[instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
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
}

impl Tx {
    /// A locked order's status `from` becomes `to`; a cancelation records
    /// why (`cancel_reason`, `None` for any other move).
    pub async fn set_status(
        &mut self,
        id: Uuid,
        from: OrderStatus,
        to: OrderStatus,
        cancel_reason: Option<CancelReason>,
    ) -> Result<(), OrderError> {
        let updated = sqlx::query(
            "UPDATE orders SET status = $2, cancel_reason = $4, updated_at = now() \
             WHERE id = $1 AND status = $3",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(from.as_str())
        .bind(cancel_reason.map(CancelReason::as_str))
        .execute(&mut *self.0)
        .await?
        .rows_affected();
        Self::applied_under_lock(updated, id, from.as_str(), to.as_str())
    }
}
