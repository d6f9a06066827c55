//! Every SQL statement of the catalog, and the transactions around them.
//!
//! Stock only moves inside [`Store::reserve_batch`] and [`Store::release`]
//! (and an operator's explicit [`Store::update_product`]). Both take their
//! locks in one global order, reservation rows first, then product rows with
//! `SELECT ... ORDER BY id FOR UPDATE`, so concurrent reservations never
//! deadlock; the stock UPDATE then re-checks `quantity >= n` as a last guard.

use std::collections::{BTreeSet, HashMap, HashSet};

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::{
    domain::{
        product::{NewProduct, PageRequest, Product, ProductPatch, StockFilter, stock},
        reservation::{
            self, ReservationRequest, ReservationState, ReservedLine, StockLedger, StockRow,
        },
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
    /// has its own static statements so that they can use its partial index.
    ///
    /// Neither costs more with the table's size: the page is bounded in depth
    /// ([`PageRequest`] refuses offsets past its bound), and `total` counts at
    /// most [`PageRequest::count_cap`] + 1 rows. Up to the cap it is exact;
    /// past it, it is the planner's estimate of the matching rows (from the
    /// statistics autovacuum keeps), never less than the rows counted.
    #[tracing::instrument(skip(self))]
    pub async fn list_products(
        &self,
        page: PageRequest,
        filter: StockFilter,
    ) -> Result<(Vec<Product>, u64), CatalogError> {
        let (count_sql, estimate_sql, page_sql) = match filter {
            StockFilter::All => (
                "SELECT count(*) FROM (SELECT 1 FROM products LIMIT $1) AS capped",
                "EXPLAIN SELECT 1 FROM products",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
            StockFilter::InStock => (
                "SELECT count(*) FROM (SELECT 1 FROM products WHERE quantity > 0 LIMIT $1) AS capped",
                "EXPLAIN SELECT 1 FROM products WHERE quantity > 0",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 WHERE quantity > 0 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
            StockFilter::OutOfStock => (
                "SELECT count(*) FROM (SELECT 1 FROM products WHERE quantity = 0 LIMIT $1) AS capped",
                "EXPLAIN SELECT 1 FROM products WHERE quantity = 0",
                "SELECT id, name, description, price, quantity, created_at, updated_at FROM products \
                 WHERE quantity = 0 ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
            ),
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
            proto::paging::plan_rows(&plan)
        } else {
            None
        };
        let products = sqlx::query_as::<_, Product>(page_sql)
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((
            products,
            proto::paging::capped_total(counted, cap, estimate),
        ))
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
        let mut tx = self.pool.begin().await?;
        if let Some(quantity) = patch.quantity {
            check_room_for_held_units(&mut tx, id, quantity.units()).await?;
        }
        let (set_description, description) = match &patch.description {
            None => (false, None),
            Some(description) => (true, description.as_ref().map(|d| d.as_str())),
        };
        let updated = sqlx::query_as::<_, Product>(
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
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(CatalogError::ProductNotFound(id))?;
        tx.commit().await?;
        Ok(updated)
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
    /// by reservation id (see `domain::reservation`). A batch of one.
    pub async fn reserve(&self, request: &ReservationRequest) -> Result<Reserved, CatalogError> {
        self.reserve_batch(std::slice::from_ref(request))
            .await?
            .pop()
            .expect("one outcome per request")
    }

    /// Group commit: decides a batch of reservations in one transaction, so
    /// one commit (one WAL flush, one hold of a hot product's row lock) serves
    /// them all. Each request is still all or nothing on its own, judged in
    /// the given order on the stock the ones before it left (a
    /// [`StockLedger`]), exactly as if they had run one after the other; a
    /// known id replays its stored outcome, a tombstoned one is refused.
    ///
    /// Ids must be distinct (the batcher defers a duplicate to the next
    /// batch). Returns one outcome per request, in order; `Err` only when the
    /// transaction itself failed, and then nothing was taken for anyone.
    ///
    /// Five statements whatever the batch size: claim every id, lock every
    /// product, [drop the claims of refused requests,] take the stock, store
    /// the lines.
    #[tracing::instrument(skip_all, fields(batch = requests.len()))]
    pub async fn reserve_batch(
        &self,
        requests: &[ReservationRequest],
    ) -> Result<Vec<Result<Reserved, CatalogError>>, CatalogError> {
        let mut outcomes: Vec<Option<Result<Reserved, CatalogError>>> = vec![None; requests.len()];
        let mut tx = self.pool.begin().await?;

        // Claims the ids, in id order, so two batches (two replicas) never
        // wait on each other's claims in a cycle. A concurrent claim of the
        // same id blocks here until its transaction ends, then this one sees
        // its outcome. Locks are then taken in one global order: reservation
        // claims first, product rows (by id) second; release does the same.
        let mut ids: Vec<Uuid> = requests.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        let claimed: HashSet<Uuid> = sqlx::query_scalar(
            "INSERT INTO reservations (id, state) \
             SELECT id, 'held' FROM UNNEST($1::uuid[]) AS r(id) ORDER BY id \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();

        // Ids seen before: the stored outcome when it is the same request
        // again, a refusal otherwise (released, tombstoned, other items).
        let known: Vec<Uuid> = ids
            .iter()
            .filter(|id| !claimed.contains(id))
            .copied()
            .collect();
        if !known.is_empty() {
            let mut stored = load_reservations(&mut tx, &known).await?;
            for (request, outcome) in requests.iter().zip(&mut outcomes) {
                if claimed.contains(&request.id) {
                    continue;
                }
                let (state, lines) = stored.remove(&request.id).ok_or_else(|| {
                    CatalogError::Internal(format!(
                        "reservation {} vanished while read",
                        request.id
                    ))
                })?;
                *outcome = Some(
                    reservation::replay(request, state, lines).map(|lines| Reserved {
                        lines,
                        replayed: true,
                    }),
                );
            }
        }

        if !claimed.is_empty() {
            let products: BTreeSet<Uuid> = requests
                .iter()
                .filter(|r| claimed.contains(&r.id))
                .flat_map(|r| r.lines.iter().map(|line| line.product_id))
                .collect();
            let products: Vec<Uuid> = products.into_iter().collect();
            let rows = sqlx::query_as::<_, StockRow>(
                "SELECT id, name, price, quantity FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .bind(&products)
            .fetch_all(&mut *tx)
            .await?;
            let mut ledger = StockLedger::new(rows);
            let mut refused = Vec::new();
            let mut line_columns = LineColumns::default();
            for (request, outcome) in requests.iter().zip(&mut outcomes) {
                if !claimed.contains(&request.id) {
                    continue;
                }
                let judged = ledger.take(request);
                match &judged {
                    Ok(lines) => line_columns.extend(request.id, lines),
                    Err(_) => refused.push(request.id),
                }
                *outcome = Some(judged.map(|lines| Reserved {
                    lines,
                    replayed: false,
                }));
            }
            // A refused request leaves no trace: its id stays free, as if its
            // own transaction had rolled back.
            if !refused.is_empty() {
                sqlx::query("DELETE FROM reservations WHERE id = ANY($1)")
                    .bind(&refused)
                    .execute(&mut *tx)
                    .await?;
            }
            let (taken_ids, taken_units): (Vec<Uuid>, Vec<i64>) = ledger.taken().unzip();
            if !taken_ids.is_empty() {
                let taken = sqlx::query(
                    "UPDATE products AS p SET quantity = p.quantity - r.quantity, updated_at = now() \
                     FROM UNNEST($1::uuid[], $2::int8[]) AS r(id, quantity) \
                     WHERE p.id = r.id AND p.quantity >= r.quantity",
                )
                .bind(&taken_ids)
                .bind(&taken_units)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken != taken_ids.len() as u64 {
                    // Cannot happen while the rows are locked; refuse rather than oversell.
                    return Err(CatalogError::Internal(format!(
                        "guarded stock update took {taken} of {} products",
                        taken_ids.len()
                    )));
                }
                sqlx::query(
                    "INSERT INTO reservation_lines (reservation_id, product_id, product_name, quantity, unit_price) \
                     SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::numeric[])",
                )
                .bind(&line_columns.reservation_ids)
                .bind(&line_columns.product_ids)
                .bind(&line_columns.names)
                .bind(&line_columns.quantities)
                .bind(&line_columns.prices)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(outcomes
            .into_iter()
            .map(|outcome| outcome.expect("every request was decided"))
            .collect())
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

/// Refuses a stock level that would not leave room for the units pending
/// orders hold: each of them may come back (a cancel), and stock plus every
/// held unit must still fit in a 32-bit quantity, or the release would fail
/// for ever. Locks the product row first (reservations and releases take it
/// too), then sums the held units in a statement of its own, which sees every
/// reservation committed before the lock was granted.
async fn check_room_for_held_units(
    tx: &mut Transaction<'_, Postgres>,
    id: Uuid,
    quantity: i32,
) -> Result<(), CatalogError> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM products WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    if exists.is_none() {
        return Err(CatalogError::ProductNotFound(id));
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT COALESCE(sum(l.quantity), 0)::int8 FROM reservation_lines l \
         JOIN reservations r ON r.id = l.reservation_id \
         WHERE l.product_id = $1 AND r.state = 'held'",
    )
    .bind(id)
    .fetch_one(&mut **tx)
    .await?;
    stock::room_for_held(quantity, held).map_err(CatalogError::invalid)
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

/// Several reservations' states and lines (lines in product id order), read
/// in `tx`.
async fn load_reservations(
    tx: &mut Transaction<'_, Postgres>,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, (ReservationState, Vec<ReservedLine>)>, CatalogError> {
    let states: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT id, state FROM reservations WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut **tx)
            .await?;
    let mut stored = HashMap::with_capacity(states.len());
    for (id, state) in states {
        stored.insert(id, (ReservationState::parse(&state)?, Vec::new()));
    }
    let lines: Vec<StoredLine> = sqlx::query_as(
        "SELECT reservation_id, product_id, product_name, quantity, unit_price \
         FROM reservation_lines WHERE reservation_id = ANY($1) ORDER BY reservation_id, product_id",
    )
    .bind(ids)
    .fetch_all(&mut **tx)
    .await?;
    for line in lines {
        if let Some((_, lines)) = stored.get_mut(&line.reservation_id) {
            lines.push(ReservedLine {
                product_id: line.product_id,
                product_name: line.product_name,
                quantity: line.quantity,
                unit_price: line.unit_price,
            });
        }
    }
    Ok(stored)
}

#[derive(sqlx::FromRow)]
struct StoredLine {
    reservation_id: Uuid,
    product_id: Uuid,
    product_name: String,
    quantity: i32,
    unit_price: rust_decimal::Decimal,
}

/// The lines of a batch's accepted reservations, column by column (one
/// UNNEST insert for all of them).
#[derive(Default)]
struct LineColumns {
    reservation_ids: Vec<Uuid>,
    product_ids: Vec<Uuid>,
    names: Vec<String>,
    quantities: Vec<i32>,
    prices: Vec<rust_decimal::Decimal>,
}

impl LineColumns {
    fn extend(&mut self, reservation_id: Uuid, lines: &[ReservedLine]) {
        for line in lines {
            self.reservation_ids.push(reservation_id);
            self.product_ids.push(line.product_id);
            self.names.push(line.product_name.clone());
            self.quantities.push(line.quantity);
            self.prices.push(line.unit_price);
        }
    }
}
