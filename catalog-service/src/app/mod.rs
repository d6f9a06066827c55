//! The catalog's use cases: each one takes validated domain values, applies
//! the rules of `crate::domain` and runs the statements of `crate::store` in
//! the order (and the transactions) the rules need. No SQL and no wire types
//! live here.
//!
//! - this file: products (create, read, list, change, delete);
//! - [`reservations`]: reserve (through the group-commit lane), release,
//!   commit, and how one batch of reservations is decided.

pub mod reservations;

use proto::paging::PageRequest;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use reservations::reserve_batch;

use crate::{
    domain::{
        Refusal,
        product::{NewProduct, Product, ProductPatch, StockFilter, stock, version},
    },
    error::CatalogError,
    metrics::CatalogMetrics,
    store::Store,
};

/// The catalog's application layer: what `crate::grpc` calls. Cheap to
/// clone.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    reservations: reservations::Lane,
    metrics: CatalogMetrics,
}

impl Catalog {
    /// Also starts the reservations' group-commit task; it ends once every
    /// clone is dropped and what was queued is answered.
    pub fn start(store: Store, metrics: CatalogMetrics) -> (Self, JoinHandle<()>) {
        let (reservations, task) = reservations::spawn_lane(store.clone(), metrics.clone());
        let catalog = Self {
            store,
            reservations,
            metrics,
        };
        (catalog, task)
    }

    pub async fn create_product(&self, product: NewProduct) -> Result<Product, CatalogError> {
        let created = self.store.insert_product(&product).await?;
        tracing::info!(product_id = %created.id, "product created");
        Ok(created)
    }

    pub async fn product(&self, id: Uuid) -> Result<Product, CatalogError> {
        let product = self.store.product(id).await?;
        Ok(product.ok_or(Refusal::ProductNotFound(id))?)
    }

    /// One page, newest first, and how many products match `filter` (see
    /// `Store::list_products` for when that total is an estimate).
    pub async fn list_products(
        &self,
        page: PageRequest,
        filter: StockFilter,
    ) -> Result<(Vec<Product>, u64), CatalogError> {
        self.store.list_products(page, filter).await
    }

    /// Changes only the fields the patch names, in one transaction. An empty
    /// patch changes nothing, not even `updated_at` (nor the version). A new
    /// stock level must leave room for the units pending orders hold
    /// ([`stock::room_for_held`]), and an `expected_version` must still be
    /// the product's ([`version::check`]): both are checked under the
    /// product's row lock, held until the write commits, so no other change
    /// (an edit, a reservation) can come between the check and the write.
    #[tracing::instrument(skip(self, patch))]
    pub async fn update_product(
        &self,
        id: Uuid,
        patch: ProductPatch,
        expected_version: Option<i64>,
    ) -> Result<Product, CatalogError> {
        if patch.is_empty() {
            // Nothing is written: the condition is checked against a read.
            let product = self.product(id).await?;
            version::check(id, expected_version, product.version)?;
            return Ok(product);
        }
        let mut tx = self.store.begin().await?;
        // An unconditional edit of other fields needs no lock of its own:
        // its UPDATE takes the row lock, and no rule reads the row first.
        if expected_version.is_some() || patch.quantity.is_some() {
            let current = tx.lock_product(id).await?;
            let current = current.ok_or(Refusal::ProductNotFound(id))?;
            version::check(id, expected_version, current)?;
            if let Some(quantity) = patch.quantity {
                let held = tx.held_units(id).await?;
                stock::room_for_held(quantity.units(), held).map_err(Refusal::invalid)?;
            }
        }
        let updated = tx.update_product(id, &patch).await?;
        let updated = updated.ok_or(Refusal::ProductNotFound(id))?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a product no reservation names; with `expected_version`,
    /// only if that is still its version (checked under the row lock, in the
    /// deleting transaction). The unconditional delete stays one statement.
    pub async fn delete_product(
        &self,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), CatalogError> {
        let deleted = match expected_version {
            None => self.store.delete_product(id).await?,
            Some(expected) => {
                let mut tx = self.store.begin().await?;
                let current = tx.lock_product(id).await?;
                let current = current.ok_or(Refusal::ProductNotFound(id))?;
                version::check(id, Some(expected), current)?;
                let deleted = tx.delete_product(id).await?;
                tx.commit().await?;
                deleted
            }
        };
        if !deleted {
            return Err(Refusal::ProductNotFound(id).into());
        }
        tracing::info!(product_id = %id, "product deleted");
        Ok(())
    }
}
