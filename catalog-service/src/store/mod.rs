//! Every SQL statement of the catalog and how its rows map to domain types;
//! no rule is decided here (`crate::app` calls these primitives in order and
//! applies `crate::domain` between them).
//!
//! - this file: the pool, transactions ([`Tx`]) and row mapping;
//! - `products`: product reads and writes, the row lock (which also reads
//!   the version a conditional write checks), and the held-units sum;
//! - `reservations`: claims, stock taken and given back, stored lines and
//!   states.
//!
//! Stock only moves in statements that hold their locks in one global order:
//! reservation rows first, then product rows by id (`ORDER BY id FOR
//! UPDATE`), so concurrent reservations and releases never deadlock; the
//! stock UPDATE re-checks `quantity >= n` as a last guard.

mod products;
mod reservations;

use std::sync::Arc;

use sqlx::{PgPool, Postgres, Row, Transaction, postgres::PgRow};

use crate::{
    domain::{
        product::Product,
        reservation::{ReservedLine, StockRow},
    },
    error::CatalogError,
};

#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// The database's name: `db.namespace` of the store's spans, which are
    /// OpenTelemetry CLIENT spans with `db.system = "postgresql"` (never the
    /// SQL or its values).
    namespace: Arc<str>,
}

/// One transaction: the primitives of `products` and `reservations` run in
/// it; dropped without [`Tx::commit`], it rolls back.
pub struct Tx(Transaction<'static, Postgres>);

impl Store {
    pub fn new(pool: PgPool) -> Self {
        Self {
            namespace: platform::db::database_name(&pool),
            pool,
        }
    }

    /// The pool, for its gauges.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction (READ COMMITTED, read-write).
    pub async fn begin(&self) -> Result<Tx, CatalogError> {
        Ok(Tx(self.pool.begin().await?))
    }
}

impl Tx {
    pub async fn commit(self) -> Result<(), CatalogError> {
        self.0.commit().await?;
        Ok(())
    }
}

/// `sqlx::FromRow` for a domain type whose fields are the columns of the
/// same names: the domain stays free of sqlx, the mapping lives here.
macro_rules! from_columns {
    ($type:ty: $($field:ident),+) => {
        impl<'r> sqlx::FromRow<'r, PgRow> for $type {
            fn from_row(row: &'r PgRow) -> sqlx::Result<Self> {
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)+
                })
            }
        }
    };
}

from_columns!(Product: id, name, description, price, quantity, created_at, updated_at, version);
from_columns!(StockRow: id, name, price, quantity);
from_columns!(ReservedLine: product_id, product_name, quantity, unit_price);
