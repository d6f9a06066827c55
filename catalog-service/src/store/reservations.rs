//! Reservation statements: claims on ids, stored states and lines, stock
//! taken (one statement for a whole batch) and given back, tombstones.
//! Which of them run, and in what order, is `crate::app::reservations`.

use std::collections::{BTreeSet, HashMap, HashSet};

use rust_decimal::Decimal;
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{Store, Tx};
use crate::{
    domain::reservation::{ReservationState, ReservedLine, StockRow},
    error::CatalogError,
};

/// What a reservation's stored state says, or an error for a spelling this
/// version does not know (never a default).
fn parse_state(stored: &str) -> Result<ReservationState, CatalogError> {
    stored
        .parse()
        .map_err(|_| CatalogError::Internal(format!("unknown reservation state {stored:?}")))
}

/// Each id once, in ascending order: the order every lock is taken in.
fn in_id_order(ids: &[Uuid]) -> Vec<Uuid> {
    let ids: BTreeSet<Uuid> = ids.iter().copied().collect();
    ids.into_iter().collect()
}

/// Runs `statement` with `$1` = `id`; `true` when it changed a row.
async fn changes_one<'e>(
    executor: impl PgExecutor<'e>,
    statement: &'static str,
    id: Uuid,
) -> Result<bool, CatalogError> {
    let done = sqlx::query(statement).bind(id).execute(executor).await?;
    Ok(done.rows_affected() == 1)
}

async fn state_of<'e>(
    executor: impl PgExecutor<'e>,
    id: Uuid,
) -> Result<Option<ReservationState>, CatalogError> {
    let state: Option<String> = sqlx::query_scalar("SELECT state FROM reservations WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await?;
    state.as_deref().map(parse_state).transpose()
}

impl Store {
    /// `held` becomes `committed`; `true` when this call changed it.
    #[tracing::instrument(skip(self), fields(otel.kind = "client", db.system = "postgresql", db.namespace = %self.namespace))]
    pub async fn mark_committed(&self, id: Uuid) -> Result<bool, CatalogError> {
        changes_one(
            &self.pool,
            "UPDATE reservations SET state = 'committed', updated_at = now() WHERE id = $1 AND state = 'held'",
            id,
        )
        .await
    }

    /// The stored state of a reservation, if there is one.
    pub async fn reservation_state(
        &self,
        id: Uuid,
    ) -> Result<Option<ReservationState>, CatalogError> {
        state_of(&self.pool, id).await
    }
}

impl Tx {
    /// Claims the ids nobody stored yet (as `held`) and returns them. Claims
    /// are taken in id order, so two batches (two replicas) never wait on
    /// each other's claims in a cycle; a concurrent claim of the same id
    /// blocks here until its transaction ends, and then this one sees it.
    pub async fn claim(&mut self, ids: &[Uuid]) -> Result<HashSet<Uuid>, CatalogError> {
        let ids = in_id_order(ids);
        let claimed = sqlx::query_scalar(
            "INSERT INTO reservations (id, state) \
             SELECT id, 'held' FROM UNNEST($1::uuid[]) AS r(id) ORDER BY id \
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(claimed.into_iter().collect())
    }

    /// Stored reservations' states and lines (in product id order).
    pub async fn reservations(
        &mut self,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (ReservationState, Vec<ReservedLine>)>, CatalogError> {
        let states: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, state FROM reservations WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&mut *self.0)
                .await?;
        let mut stored = HashMap::with_capacity(states.len());
        for (id, state) in states {
            stored.insert(id, (parse_state(&state)?, Vec::new()));
        }
        let lines: Vec<StoredLine> = sqlx::query_as(
            "SELECT reservation_id, product_id, product_name, quantity, unit_price \
             FROM reservation_lines WHERE reservation_id = ANY($1) ORDER BY reservation_id, product_id",
        )
        .bind(ids)
        .fetch_all(&mut *self.0)
        .await?;
        for StoredLine {
            reservation_id,
            line,
        } in lines
        {
            if let Some((_, lines)) = stored.get_mut(&reservation_id) {
                lines.push(line);
            }
        }
        Ok(stored)
    }

    /// Locks the products' rows, in id order, and reads their stock.
    pub async fn lock_stock(&mut self, products: &[Uuid]) -> Result<Vec<StockRow>, CatalogError> {
        let products = in_id_order(products);
        let rows = sqlx::query_as(
            "SELECT id, name, price, quantity FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        )
        .bind(&products)
        .fetch_all(&mut *self.0)
        .await?;
        Ok(rows)
    }

    /// Deletes claims: their ids are free again.
    pub async fn drop_claims(&mut self, ids: &[Uuid]) -> Result<(), CatalogError> {
        sqlx::query("DELETE FROM reservations WHERE id = ANY($1)")
            .bind(ids)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Takes units from stock, per product; each row must still hold them
    /// (`quantity >= n`), or nothing is taken and the transaction is to be
    /// rolled back.
    pub async fn take_stock(&mut self, taken: &[(Uuid, i64)]) -> Result<(), CatalogError> {
        let (ids, units): (Vec<Uuid>, Vec<i64>) = taken.iter().copied().unzip();
        let updated = sqlx::query(
            "UPDATE products AS p SET quantity = p.quantity - r.quantity, updated_at = now() \
             FROM UNNEST($1::uuid[], $2::int8[]) AS r(id, quantity) \
             WHERE p.id = r.id AND p.quantity >= r.quantity",
        )
        .bind(&ids)
        .bind(&units)
        .execute(&mut *self.0)
        .await?
        .rows_affected();
        if updated != ids.len() as u64 {
            // Cannot happen while the rows are locked; refuse rather than oversell.
            return Err(CatalogError::Internal(format!(
                "guarded stock update took {updated} of {} products",
                ids.len()
            )));
        }
        Ok(())
    }

    /// Stores the lines of reservations, one statement for all of them.
    pub async fn insert_lines(
        &mut self,
        lines: &[(Uuid, ReservedLine)],
    ) -> Result<(), CatalogError> {
        let mut columns = LineColumns::default();
        for (reservation_id, line) in lines {
            columns.reservation_ids.push(*reservation_id);
            columns.product_ids.push(line.product_id);
            columns.names.push(line.product_name.clone());
            columns.quantities.push(line.quantity);
            columns.prices.push(line.unit_price);
        }
        sqlx::query(
            "INSERT INTO reservation_lines (reservation_id, product_id, product_name, quantity, unit_price) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::int4[], $5::numeric[])",
        )
        .bind(&columns.reservation_ids)
        .bind(&columns.product_ids)
        .bind(&columns.names)
        .bind(&columns.quantities)
        .bind(&columns.prices)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// Stores an unknown id as `released` (a tombstone: a late reserve of it
    /// is refused); `true` when the id was unknown.
    pub async fn tombstone(&mut self, id: Uuid) -> Result<bool, CatalogError> {
        changes_one(
            &mut *self.0,
            "INSERT INTO reservations (id, state) VALUES ($1, 'released') ON CONFLICT (id) DO NOTHING",
            id,
        )
        .await
    }

    /// `held` becomes `released`; `true` when this call changed it.
    pub async fn mark_released(&mut self, id: Uuid) -> Result<bool, CatalogError> {
        changes_one(
            &mut *self.0,
            "UPDATE reservations SET state = 'released', updated_at = now() WHERE id = $1 AND state = 'held'",
            id,
        )
        .await
    }

    /// The stored state of a reservation, if there is one.
    pub async fn reservation_state(
        &mut self,
        id: Uuid,
    ) -> Result<Option<ReservationState>, CatalogError> {
        state_of(&mut *self.0, id).await
    }

    /// Gives a reservation's units back to stock: locks its products' rows
    /// in id order (as reservations do), then adds its lines back.
    pub async fn restock(&mut self, id: Uuid) -> Result<(), CatalogError> {
        sqlx::query(
            "SELECT p.id FROM products p JOIN reservation_lines l ON l.product_id = p.id \
             WHERE l.reservation_id = $1 ORDER BY p.id FOR UPDATE OF p",
        )
        .bind(id)
        .execute(&mut *self.0)
        .await?;
        sqlx::query(
            "UPDATE products AS p SET quantity = p.quantity + l.quantity, updated_at = now() \
             FROM reservation_lines l WHERE l.reservation_id = $1 AND p.id = l.product_id",
        )
        .bind(id)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}

/// A stored line with the reservation it belongs to.
#[derive(sqlx::FromRow)]
struct StoredLine {
    reservation_id: Uuid,
    #[sqlx(flatten)]
    line: ReservedLine,
}

/// Lines column by column (one UNNEST insert for all of them).
#[derive(Default)]
struct LineColumns {
    reservation_ids: Vec<Uuid>,
    product_ids: Vec<Uuid>,
    names: Vec<String>,
    quantities: Vec<i32>,
    prices: Vec<Decimal>,
}
