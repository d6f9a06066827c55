//! Every SQL statement of the catalog, and the transactions around them.
//!
//! Stock only moves inside [`Store::reserve`] and [`Store::release`] (and an
//! operator's explicit [`Store::update_product`]). Both lock the product rows
//! they touch with `SELECT ... ORDER BY id FOR UPDATE` first, so concurrent
//! reservations take locks in one global order and never deadlock; the
//! stock UPDATE then re-checks `quantity >= n` as a last guard.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    domain::{
        product::{NewProduct, PageRequest, Product, ProductPatch, StockFilter},
        reservation::{self, ReservationRequest, ReservationState, ReservedLine, StockRow},
    },
    error::CatalogError,
};

/// Name of the FK that stops a product in a reservation from being deleted.
const PRODUCT_REFERENCED_FK: &str = "reservation_lines_product_fk";

/// What a reservation call got: its lines, and whether they were stored
/// earlier (the same request again: no stock moved this time).
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    pub lines: Vec<ReservedLine>,
    pub replayed: bool,
}

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool, for its gauges.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Whether the database answers (for health checks).
    #[tracing::instrument(skip(self))]
    pub async fn ping(&self) -> Result<(), CatalogError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub async fn insert_product(&self, product: &NewProduct) -> Result<Product, CatalogError> {
        let inserted = sqlx::query_as::<_, Product>(
            "INSERT INTO products (id, name, description, price, quantity) \
             VALUES ($1, $2, $3, $4, $5) \
             RETURNING id, name, description, price, quantity, created_at, updated_at",
        )
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

    #[tracing::instrument(skip(self))]
    pub async fn get_product(&self, id: Uuid) -> Result<Product, CatalogError> {
        sqlx::query_as::<_, Product>(
            "SELECT id, name, description, price, quantity, created_at, updated_at \
             FROM products WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CatalogError::ProductNotFound(id))
    }

    /// One page, newest first, and the total matching the filter. Each filter
    /// has its own static statement so that it can use its partial index.
    #[tracing::instrument(skip(self))]
    pub async fn list_products(
        &self,
        page: PageRequest,
        filter: StockFilter,
    ) -> Result<(Vec<Product>, u64), CatalogError> {
        let (count_sql, page_sql) = match filter {
            StockFilter::All => (
                "SELECT count(*) FROM products",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
            StockFilter::InStock => (
                "SELECT count(*) FROM products WHERE quantity > 0",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 WHERE quantity > 0 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
            StockFilter::OutOfStock => (
                "SELECT count(*) FROM products WHERE quantity = 0",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 WHERE quantity = 0 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
        };
        // One snapshot for both statements, so the total agrees with the page.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let total: i64 = sqlx::query_scalar(count_sql).fetch_one(&mut *tx).await?;
        let products = sqlx::query_as::<_, Product>(page_sql)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((products, u64::try_from(total).unwrap_or(0)))
    }

    /// Changes only the fields the patch names. An empty patch changes nothing,
    /// not even `updated_at`.
    #[tracing::instrument(skip(self, patch))]
    pub async fn update_product(
        &self,
        id: Uuid,
        patch: &ProductPatch,
    ) -> Result<Product, CatalogError> {
        if patch.is_empty() {
            return self.get_product(id).await;
        }
        let (set_description, description) = match &patch.description {
            None => (false, None),
            Some(description) => (true, description.as_ref().map(|d| d.as_str())),
        };
        sqlx::query_as::<_, Product>(
            "UPDATE products SET \
                name = COALESCE($2, name), \
                description = CASE WHEN $3 THEN $4 ELSE description END, \
                price = COALESCE($5, price), \
                quantity = COALESCE($6, quantity), \
                updated_at = now() \
             WHERE id = $1 \
             RETURNING id, name, description, price, quantity, created_at, updated_at",
        )
        .bind(id)
        .bind(patch.name.as_ref().map(|n| n.as_str()))
        .bind(set_description)
        .bind(description)
        .bind(patch.price.map(|p| p.amount()))
        .bind(patch.quantity.map(|q| q.units()))
        .fetch_optional(&self.pool)
        .await?
        .ok_or(CatalogError::ProductNotFound(id))
    }

    #[tracing::instrument(skip(self))]
    pub async fn delete_product(&self, id: Uuid) -> Result<(), CatalogError> {
        let result = sqlx::query("DELETE FROM products WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await;
        match result {
            Ok(done) if done.rows_affected() == 1 => Ok(()),
            Ok(_) => Err(CatalogError::ProductNotFound(id)),
            Err(sqlx::Error::Database(db)) if db.constraint() == Some(PRODUCT_REFERENCED_FK) => {
                Err(CatalogError::ProductReferenced(id))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Takes stock for every line or for none, in one transaction; idempotent
    /// by reservation id (see `domain::reservation`).
    #[tracing::instrument(skip(self, request), fields(reservation_id = %request.id, lines = request.lines.len()))]
    pub async fn reserve(&self, request: &ReservationRequest) -> Result<Reserved, CatalogError> {
        let mut tx = self.pool.begin().await?;
        // Claims the id. A concurrent request with the same id blocks here until
        // this transaction ends, then sees its outcome.
        let claimed = sqlx::query(
            "INSERT INTO reservations (id, state) VALUES ($1, 'held') ON CONFLICT (id) DO NOTHING",
        )
        .bind(request.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            let (state, stored) = load_reservation(&mut tx, request.id).await?;
            let state = state.ok_or_else(|| {
                CatalogError::Internal(format!("reservation {} vanished while read", request.id))
            })?;
            let lines = reservation::replay(request, state, stored)?;
            return Ok(Reserved {
                lines,
                replayed: true,
            });
        }

        let rows = sqlx::query_as::<_, StockRow>(
            "SELECT id, name, price, quantity FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(request.product_ids())
        .fetch_all(&mut *tx)
        .await?;
        // On refusal the transaction is dropped, which rolls back the claim too.
        let lines = reservation::judge(request, &rows)?;

        let ids: Vec<Uuid> = lines.iter().map(|l| l.product_id).collect();
        let names: Vec<&str> = lines.iter().map(|l| l.product_name.as_str()).collect();
        let quantities: Vec<i32> = lines.iter().map(|l| l.quantity).collect();
        let prices: Vec<rust_decimal::Decimal> = lines.iter().map(|l| l.unit_price).collect();
        let taken = sqlx::query(
            "UPDATE products AS p SET quantity = p.quantity - r.quantity, updated_at = now() \
             FROM UNNEST($1::uuid[], $2::int4[]) AS r(id, quantity) \
             WHERE p.id = r.id AND p.quantity >= r.quantity",
        )
        .bind(&ids)
        .bind(&quantities)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken != lines.len() as u64 {
            // Cannot happen while the rows are locked; refuse rather than oversell.
            return Err(CatalogError::Internal(format!(
                "guarded stock update took {taken} of {} lines",
                lines.len()
            )));
        }
        sqlx::query(
            "INSERT INTO reservation_lines (reservation_id, product_id, product_name, quantity, unit_price) \
             SELECT $1, * FROM UNNEST($2::uuid[], $3::text[], $4::int4[], $5::numeric[])",
        )
        .bind(request.id)
        .bind(&ids)
        .bind(&names)
        .bind(&quantities)
        .bind(&prices)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Reserved {
            lines,
            replayed: false,
        })
    }

    /// Gives back the stock of a held reservation, exactly once. Returns
    /// whether this call moved stock. An unknown id leaves a tombstone.
    #[tracing::instrument(skip(self))]
    pub async fn release(&self, id: Uuid) -> Result<bool, CatalogError> {
        let mut tx = self.pool.begin().await?;
        let tombstoned = sqlx::query(
            "INSERT INTO reservations (id, state) VALUES ($1, 'released') ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if tombstoned {
            tx.commit().await?;
            tracing::info!(reservation_id = %id, "released an unknown reservation: tombstone recorded");
            return Ok(false);
        }
        let released = sqlx::query(
            "UPDATE reservations SET state = 'released', updated_at = now() WHERE id = $1 AND state = 'held'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !released {
            let (state, _) = load_reservation(&mut tx, id).await?;
            return match state {
                Some(ReservationState::Committed) => Err(CatalogError::ReservationCommitted(id)),
                // Already released (by an earlier call): nothing more to give back.
                Some(_) => Ok(false),
                None => Err(CatalogError::Internal(format!(
                    "reservation {id} vanished while read"
                ))),
            };
        }
        // Same lock order as reserve: product id.
        sqlx::query(
            "SELECT p.id FROM products p JOIN reservation_lines l ON l.product_id = p.id \
             WHERE l.reservation_id = $1 ORDER BY p.id FOR UPDATE OF p",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE products AS p SET quantity = p.quantity + l.quantity, updated_at = now() \
             FROM reservation_lines l WHERE l.reservation_id = $1 AND p.id = l.product_id",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes a held reservation final. Returns whether this call changed it.
    #[tracing::instrument(skip(self))]
    pub async fn commit(&self, id: Uuid) -> Result<bool, CatalogError> {
        let committed = sqlx::query(
            "UPDATE reservations SET state = 'committed', updated_at = now() WHERE id = $1 AND state = 'held'",
        )
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if committed {
            return Ok(true);
        }
        let state: Option<String> =
            sqlx::query_scalar("SELECT state FROM reservations WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match state.as_deref().map(ReservationState::parse).transpose()? {
            None => Err(CatalogError::ReservationNotFound(id)),
            Some(ReservationState::Committed) => Ok(false),
            Some(ReservationState::Released) => Err(CatalogError::ReservationReleased(id)),
            Some(ReservationState::Held) => Err(CatalogError::Internal(format!(
                "reservation {id} is held but could not be committed"
            ))),
        }
    }
}

/// A reservation's state and lines (in product id order), read in `tx`.
async fn load_reservation(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
) -> Result<(Option<ReservationState>, Vec<ReservedLine>), CatalogError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    let state = state.as_deref().map(ReservationState::parse).transpose()?;
    let lines = sqlx::query_as::<_, ReservedLine>(
        "SELECT product_id, product_name, quantity, unit_price FROM reservation_lines \
         WHERE reservation_id = $1 ORDER BY product_id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    Ok((state, lines))
}
