//! `catalog.v1.CatalogService`: each call parses its request into validated
//! domain values ([`wire`]), runs one use case of `crate::app`, and turns the
//! result back into a wire message. No rule lives here beyond "which wire
//! field is which domain value"; errors become a `Status` through
//! `crate::error`.

pub mod wire;

use proto::catalog::v1::{self as pb, catalog_service_server::CatalogService};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{app::Catalog, change_feed::ChangeFeed, error::CatalogError};
use wire::Wire;

#[derive(Clone)]
pub struct CatalogApi {
    app: Catalog,
    wire: Wire,
    /// WatchProductChanges subscribes here.
    changes: ChangeFeed,
    /// Deepest offset a ListProducts page may start at (`MAX_LIST_OFFSET`).
    max_list_offset: u32,
}

impl CatalogApi {
    /// `currency`: the one currency of every price (ISO 4217).
    pub fn new(app: Catalog, currency: String, changes: ChangeFeed) -> Self {
        Self {
            app,
            wire: Wire::new(currency),
            changes,
            max_list_offset: proto::paging::DEFAULT_MAX_LIST_OFFSET,
        }
    }

    /// Bounds how deep ListProducts pages (see `proto::paging`).
    pub fn with_max_list_offset(mut self, max_list_offset: u32) -> Self {
        self.max_list_offset = max_list_offset;
        self
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

/// A call's answer: the message, or the error as its `Status`.
fn reply<T>(message: Result<T, CatalogError>) -> RpcResult<T> {
    Ok(Response::new(message?))
}

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> RpcResult<pb::Product> {
        let product = self.wire.new_product(request.into_inner())?;
        let created = self.app.create_product(product).await?;
        reply(self.wire.product(created))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_product(&self, request: Request<pb::GetProductRequest>) -> RpcResult<pb::Product> {
        let id = wire::id("id", &request.get_ref().id)?;
        let product = self.app.product(id).await?;
        reply(self.wire.product(product))
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> RpcResult<pb::ListProductsResponse> {
        let (page, filter) = wire::list(request.get_ref(), self.max_list_offset)?;
        let (products, total) = self.app.list_products(page, filter).await?;
        let products = self.wire.products(products)?;
        reply(Ok(pb::ListProductsResponse { products, total }))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> RpcResult<pb::Product> {
        let (id, patch, expected_version) = self.wire.patch(request.into_inner())?;
        let updated = self.app.update_product(id, patch, expected_version).await?;
        reply(self.wire.product(updated))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> RpcResult<pb::DeleteProductResponse> {
        let id = wire::id("id", &request.get_ref().id)?;
        let expected_version = request.get_ref().expected_version;
        self.app.delete_product(id, expected_version).await?;
        reply(Ok(pb::DeleteProductResponse {}))
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn reserve_inventory(
        &self,
        request: Request<pb::ReserveInventoryRequest>,
    ) -> RpcResult<pb::ReserveInventoryResponse> {
        let caller = request.extensions().get::<platform::server::Caller>();
        let caller = caller.cloned().unwrap_or_default();
        let reservation = wire::reservation(request.get_ref())?;
        let reservation_id = reservation.id.to_string();
        let reserved = self.app.reserve(reservation, &caller).await?;
        let lines = self.wire.reserved_lines(reserved.lines)?;
        reply(Ok(pb::ReserveInventoryResponse {
            reservation_id,
            lines,
        }))
    }

    /// `released` is false when no stock moved: released by an earlier
    /// call, or unknown (the id is tombstoned).
    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn release_inventory(
        &self,
        request: Request<pb::ReleaseInventoryRequest>,
    ) -> RpcResult<pb::ReleaseInventoryResponse> {
        let id = wire::id("reservation_id", &request.get_ref().reservation_id)?;
        let released = self.app.release(id).await?;
        reply(Ok(pb::ReleaseInventoryResponse { released }))
    }

    /// `committed` is false when an earlier call committed it already.
    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn commit_inventory(
        &self,
        request: Request<pb::CommitInventoryRequest>,
    ) -> RpcResult<pb::CommitInventoryResponse> {
        let id = wire::id("reservation_id", &request.get_ref().reservation_id)?;
        let committed = self.app.commit(id).await?;
        reply(Ok(pb::CommitInventoryResponse { committed }))
    }

    type WatchProductChangesStream = ReceiverStream<Result<pb::ProductChanges, Status>>;

    async fn watch_product_changes(
        &self,
        _request: Request<pb::WatchProductChangesRequest>,
    ) -> RpcResult<Self::WatchProductChangesStream> {
        let changes = self.changes.subscribe()?;
        Ok(Response::new(ReceiverStream::new(changes)))
    }
}
