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
        product::{NewProduct, Product, ProductPatch, StockFilter, stock},
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
    /// patch changes nothing, not even `updated_at`. A new stock level must
    /// leave room for the units pending orders hold
    /// ([`stock::room_for_held`]), checked under the product's row lock.
    #[tracing::instrument(skip(self, patch))]
    pub async fn update_product(
        &self,
        id: Uuid,
        patch: ProductPatch,
    ) -> Result<Product, CatalogError> {
        if patch.is_empty() {
            return self.product(id).await;
        }
        let mut tx = self.store.begin().await?;
        if let Some(quantity) = patch.quantity {
            if !tx.lock_product(id).await? {
                return Err(Refusal::ProductNotFound(id).into());
            }
            let held = tx.held_units(id).await?;
            stock::room_for_held(quantity.units(), held).map_err(Refusal::invalid)?;
        }
        let updated = tx.update_product(id, &patch).await?;
        let updated = updated.ok_or(Refusal::ProductNotFound(id))?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Deletes a product no reservation names.
    pub async fn delete_product(&self, id: Uuid) -> Result<(), CatalogError> {
        if !self.store.delete_product(id).await? {
            return Err(Refusal::ProductNotFound(id).into());
        }
        tracing::info!(product_id = %id, "product deleted");
        Ok(())
    }
}
