//! Product statements: insert, read, list (one snapshot for page and total),
//! patch, delete, and what a stock change or a conditional write must check
//! first (the row lock, which reads the version, and the units pending
//! orders hold). `version` is never written here: the database's trigger
//! (migration `product_version`) bumps it on every change of a row.

use proto::paging::{self, PageRequest};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{Store, Tx};
use crate::{
    domain::{
        Refusal,
        product::{NewProduct, Product, ProductPatch, StockFilter},
    },
    error::CatalogError,
};

/// Name of the FK that stops a product in a reservation from being deleted.
const PRODUCT_REFERENCED_FK: &str = "reservation_lines_product_fk";

/// The columns of a [`Product`], for `SELECT` and `RETURNING` lists.
macro_rules! columns {
    () => {
        "id, name, description, price, quantity, created_at, updated_at, version"
    };
}

/// The three statements of one list filter: capped count, planner estimate,
/// page. Each filter has its own static statements, so that they can use its
/// partial index.
macro_rules! list_statements {
    ($where:literal) => {
        (
            concat!(
                "SELECT count(*) FROM (SELECT 1 FROM products ",
                $where,
                " LIMIT $1) AS capped"
            ),
            concat!("EXPLAIN SELECT 1 FROM products ", $where),
            concat!(
                "SELECT ",
                columns!(),
                " FROM products ",
                $where,
                " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
            ),
        )
    };
}

impl Store {
    #[tracing::instrument(skip_all, fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn insert_product(&self, product: &NewProduct) -> Result<Product, CatalogError> {
        let inserted = sqlx::query_as(concat!(
            "INSERT INTO products (id, name, description, price, quantity) \
             VALUES ($1, $2, $3, $4, $5) RETURNING ",
            columns!()
        ))
        // v7: time-ordered ids keep the primary key index append-mostly.
        .bind(Uuid::now_v7())
        .bind(product.name.as_str())
        .bind(product.description.as_ref().map(|d| d.as_str()))
        .bind(product.price.amount())
        .bind(product.quantity.units())
        .fetch_one(&self.pool)
        .await?;
        Ok(inserted)
    }

    #[tracing::instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn product(&self, id: Uuid) -> Result<Option<Product>, CatalogError> {
        let product = sqlx::query_as(concat!(
            "SELECT ",
            columns!(),
            " FROM products WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(product)
    }

    /// One page, newest first, and the total matching the filter.
    ///
    /// Neither costs more with the table's size: the page is bounded in depth
    /// ([`PageRequest`] refuses offsets past its bound), and `total` counts at
    /// most [`PageRequest::count_cap`] + 1 rows. Up to the cap it is exact;
    /// past it, it is the planner's estimate of the matching rows (from the
    /// statistics autovacuum keeps), never less than the rows counted.
    #[tracing::instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn list_products(
        &self,
        page: PageRequest,
        filter: StockFilter,
    ) -> Result<(Vec<Product>, u64), CatalogError> {
        let (count_sql, estimate_sql, page_sql) = match filter {
            StockFilter::All => list_statements!(""),
            StockFilter::InStock => list_statements!("WHERE quantity > 0"),
            StockFilter::OutOfStock => list_statements!("WHERE quantity = 0"),
        };
        // One snapshot for every statement, so the total agrees with the page.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let cap = page.count_cap();
        let counted: i64 = sqlx::query_scalar(count_sql)
            .bind(cap + 1)
            .fetch_one(&mut *tx)
            .await?;
        let estimate = if counted > cap {
            // The first line of the plan is its top node, with its row estimate.
            let plan: String = sqlx::query_scalar(estimate_sql).fetch_one(&mut *tx).await?;
            paging::plan_rows(&plan)
        } else {
            None
        };
        let products = sqlx::query_as(page_sql)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((products, paging::capped_total(counted, cap, estimate)))
    }

    /// Whether a product was deleted (`false`: there was none). A product
    /// some reservation names is refused ([`Refusal::ProductReferenced`]).
    #[tracing::instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn delete_product(&self, id: Uuid) -> Result<bool, CatalogError> {
        delete(&self.pool, id).await
    }
}

/// `DELETE` of one product, alone or in a transaction: whether there was
/// one; [`Refusal::ProductReferenced`] when a reservation names it.
async fn delete<'e>(executor: impl PgExecutor<'e>, id: Uuid) -> Result<bool, CatalogError> {
    let result = sqlx::query("DELETE FROM products WHERE id = $1")
        .bind(id)
        .execute(executor)
        .await;
    match result {
        Ok(done) => Ok(done.rows_affected() == 1),
        Err(sqlx::Error::Database(db)) if db.constraint() == Some(PRODUCT_REFERENCED_FK) => {
            Err(Refusal::ProductReferenced(id).into())
        }
        Err(other) => Err(other.into()),
    }
}

impl Tx {
    /// Locks the product's row (reservations and releases take it too) and
    /// returns its version, which no other transaction can change until
    /// this one ends; `None` when there is no such product.
    pub async fn lock_product(&mut self, id: Uuid) -> Result<Option<i64>, CatalogError> {
        let version = sqlx::query_scalar("SELECT version FROM products WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(version)
    }

    /// As [`Store::delete_product`], in this transaction (after
    /// [`Tx::lock_product`], for a delete conditioned on the version).
    pub async fn delete_product(&mut self, id: Uuid) -> Result<bool, CatalogError> {
        delete(&mut *self.0, id).await
    }

    /// Units of the product that held reservations hold. A statement of its
    /// own: after [`Tx::lock_product`], it sees every reservation committed
    /// before the lock was granted.
    pub async fn held_units(&mut self, id: Uuid) -> Result<i64, CatalogError> {
        let held = sqlx::query_scalar(
            "SELECT COALESCE(sum(l.quantity), 0)::int8 FROM reservation_lines l \
             JOIN reservations r ON r.id = l.reservation_id \
             WHERE l.product_id = $1 AND r.state = 'held'",
        )
        .bind(id)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(held)
    }

    /// Changes only the fields the patch names (and `updated_at`); `None`
    /// when there is no such product.
    pub async fn update_product(
        &mut self,
        id: Uuid,
        patch: &ProductPatch,
    ) -> Result<Option<Product>, CatalogError> {
        let (set_description, description) = match &patch.description {
            None => (false, None),
            Some(description) => (true, description.as_ref().map(|d| d.as_str())),
        };
        let updated = sqlx::query_as(concat!(
            "UPDATE products SET \
                name = COALESCE($2, name), \
                description = CASE WHEN $3 THEN $4 ELSE description END, \
                price = COALESCE($5, price), \
                quantity = COALESCE($6, quantity), \
                updated_at = now() \
             WHERE id = $1 RETURNING ",
            columns!()
        ))
        .bind(id)
        .bind(patch.name.as_ref().map(|n| n.as_str()))
        .bind(set_description)
        .bind(description)
        .bind(patch.price.map(|p| p.amount()))
        .bind(patch.quantity.map(|q| q.units()))
        .fetch_optional(&mut *self.0)
        .await?;
        Ok(updated)
    }
}
