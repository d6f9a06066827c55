//! `catalog.v1.CatalogService`: turns wire messages into validated domain
//! values, calls the store, and turns results back into wire messages. No
//! rule lives here beyond "which wire field is which domain value".

use std::str::FromStr;

use proto::{
    catalog::v1::{self as pb, catalog_service_server::CatalogService},
    common::v1::Money,
    errors::Violation,
};
use rust_decimal::Decimal;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    change_feed::ChangeFeed,
    domain::{
        product::{
            Description, NewProduct, PageRequest, Price, Product, ProductName, ProductPatch, Stock,
        },
        reservation::{ReservationRequest, ReservedLine},
    },
    error::CatalogError,
    group_commit::Reserver,
    metrics::CatalogMetrics,
    store::Store,
};

#[derive(Clone)]
pub struct CatalogApi {
    store: Store,
    /// ReserveInventory goes through group commit (see `group_commit`).
    reserver: Reserver,
    currency: String,
    metrics: CatalogMetrics,
    /// WatchProductChanges subscribes here.
    changes: ChangeFeed,
    /// Deepest offset a ListProducts page may start at (`MAX_LIST_OFFSET`).
    max_list_offset: u32,
}

impl CatalogApi {
    pub fn new(
        store: Store,
        reserver: Reserver,
        currency: String,
        metrics: CatalogMetrics,
        changes: ChangeFeed,
    ) -> Self {
        Self {
            store,
            reserver,
            currency,
            metrics,
            changes,
            max_list_offset: proto::paging::DEFAULT_MAX_LIST_OFFSET,
        }
    }

    /// Bounds how deep ListProducts pages (see `proto::paging`).
    pub fn with_max_list_offset(mut self, max_list_offset: u32) -> Self {
        self.max_list_offset = max_list_offset;
        self
    }

    fn money(&self, amount: Decimal) -> Result<Money, CatalogError> {
        proto::money::from_decimal(amount, &self.currency).map_err(|e| {
            CatalogError::Internal(format!("stored amount {amount} not representable: {e}"))
        })
    }

    fn product(&self, product: Product) -> Result<pb::Product, CatalogError> {
        Ok(pb::Product {
            id: product.id.to_string(),
            name: product.name,
            description: product.description,
            price: Some(self.money(product.price)?),
            quantity: product.quantity,
            created_at: Some(proto::time::to_timestamp(product.created_at)),
            updated_at: Some(proto::time::to_timestamp(product.updated_at)),
        })
    }

    fn reserved_line(&self, line: ReservedLine) -> Result<pb::ReservedLine, CatalogError> {
        Ok(pb::ReservedLine {
            product_id: line.product_id.to_string(),
            product_name: line.product_name,
            quantity: line.quantity,
            unit_price: Some(self.money(line.unit_price)?),
        })
    }

    /// A wire price as a validated `Price`: present, in this platform's
    /// currency (an empty code means the default), exact.
    fn price(&self, field: &str, money: Option<&Money>) -> Result<Price, Violation> {
        let money = money.ok_or_else(|| Violation::new(field, "is required"))?;
        if !money.currency_code.is_empty() && money.currency_code != self.currency {
            return Err(Violation::new(
                field,
                format!("currency must be {}", self.currency),
            ));
        }
        let amount =
            proto::money::to_decimal(money).map_err(|e| Violation::new(field, e.to_string()))?;
        Price::parse(field, amount)
    }
}

fn parse_uuid(field: &str, value: &str) -> Result<Uuid, Violation> {
    Uuid::from_str(value).map_err(|_| Violation::new(field, "must be a UUID"))
}

/// Collects every violation of a request, so the caller learns all at once.
#[derive(Default)]
struct Checks(Vec<Violation>);

impl Checks {
    fn take<T>(&mut self, result: Result<T, Violation>) -> Option<T> {
        result.map_err(|v| self.0.push(v)).ok()
    }

    fn finish(self) -> Result<(), CatalogError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CatalogError::Invalid(self.0))
        }
    }
}

type RpcResult<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CatalogService for CatalogApi {
    #[tracing::instrument(skip_all)]
    async fn create_product(
        &self,
        request: Request<pb::CreateProductRequest>,
    ) -> RpcResult<pb::Product> {
        let request = request.into_inner();
        let mut checks = Checks::default();
        let name = checks.take(ProductName::parse("name", request.name));
        let description = request
            .description
            .map(|d| checks.take(Description::parse("description", d)));
        let price = checks.take(self.price("price", request.price.as_ref()));
        let quantity = checks.take(Stock::parse("quantity", request.quantity));
        checks.finish()?;
        let (Some(name), Some(price), Some(quantity)) = (name, price, quantity) else {
            unreachable!("checks.finish() returned Ok, so every value parsed")
        };
        let product = NewProduct {
            name,
            description: description.flatten(),
            price,
            quantity,
        };
        let created = self.store.insert_product(&product).await?;
        tracing::info!(product_id = %created.id, "product created");
        Ok(Response::new(self.product(created)?))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn get_product(&self, request: Request<pb::GetProductRequest>) -> RpcResult<pb::Product> {
        let id = parse_uuid("id", &request.get_ref().id).map_err(CatalogError::invalid)?;
        let product = self.store.get_product(id).await?;
        Ok(Response::new(self.product(product)?))
    }

    #[tracing::instrument(skip_all)]
    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> RpcResult<pb::ListProductsResponse> {
        let request = request.into_inner();
        let page = PageRequest::parse_within(request.page, request.page_size, self.max_list_offset)
            .map_err(CatalogError::Invalid)?;
        let (products, total) = self
            .store
            .list_products(page, request.in_stock.into())
            .await?;
        let products = products
            .into_iter()
            .map(|p| self.product(p))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ListProductsResponse { products, total }))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn update_product(
        &self,
        request: Request<pb::UpdateProductRequest>,
    ) -> RpcResult<pb::Product> {
        let request = request.into_inner();
        let mut checks = Checks::default();
        let id = checks.take(parse_uuid("id", &request.id));
        let name = request
            .name
            .map(|n| checks.take(ProductName::parse("name", n)));
        let description = match (request.description, request.clear_description) {
            (Some(_), true) => {
                checks.0.push(Violation::new(
                    "clear_description",
                    "cannot be set together with description",
                ));
                None
            }
            (Some(text), false) => Some(
                checks
                    .take(Description::parse("description", text))
                    .map(Some),
            ),
            (None, true) => Some(Some(None)),
            (None, false) => None,
        };
        let price = request
            .price
            .as_ref()
            .map(|p| checks.take(self.price("price", Some(p))));
        let quantity = request
            .quantity
            .map(|q| checks.take(Stock::parse("quantity", q)));
        checks.finish()?;
        // Every Option<Option<T>> above is Some(Some(_)) or None once checks passed.
        let patch = ProductPatch {
            name: name.flatten(),
            description: description.flatten(),
            price: price.flatten(),
            quantity: quantity.flatten(),
        };
        let id = id.expect("checked");
        let product = self.store.update_product(id, &patch).await?;
        Ok(Response::new(self.product(product)?))
    }

    #[tracing::instrument(skip_all, fields(id = %request.get_ref().id))]
    async fn delete_product(
        &self,
        request: Request<pb::DeleteProductRequest>,
    ) -> RpcResult<pb::DeleteProductResponse> {
        let id = parse_uuid("id", &request.get_ref().id).map_err(CatalogError::invalid)?;
        self.store.delete_product(id).await?;
        tracing::info!(product_id = %id, "product deleted");
        Ok(Response::new(pb::DeleteProductResponse {}))
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn reserve_inventory(
        &self,
        request: Request<pb::ReserveInventoryRequest>,
    ) -> RpcResult<pb::ReserveInventoryResponse> {
        let caller = request
            .extensions()
            .get::<platform::server::Caller>()
            .cloned()
            .unwrap_or_default();
        let request = request.into_inner();
        let mut checks = Checks::default();
        let id = checks.take(parse_uuid("reservation_id", &request.reservation_id));
        if request.items.is_empty() {
            checks
                .0
                .push(Violation::new("items", "must contain at least one item"));
        }
        let mut items = Vec::with_capacity(request.items.len());
        for (i, item) in request.items.iter().enumerate() {
            let product_id = checks.take(parse_uuid(
                &format!("items[{i}].product_id"),
                &item.product_id,
            ));
            if item.quantity <= 0 {
                checks.0.push(Violation::new(
                    format!("items[{i}].quantity"),
                    "must be greater than 0",
                ));
            }
            items.extend(product_id.map(|p| (p, item.quantity)));
        }
        checks.finish()?;
        let id = id.expect("checked");
        let reserved = self
            .reserver
            .reserve(ReservationRequest::new(id, items), caller)
            .await;
        self.metrics.reservation(match &reserved {
            Ok(r) if r.replayed => "replayed",
            Ok(_) => "reserved",
            Err(CatalogError::InsufficientStock { .. }) => "insufficient_stock",
            Err(CatalogError::ProductsNotFound(_)) => "not_found",
            Err(CatalogError::ReservationReleased(_) | CatalogError::ReservationMismatch(_)) => {
                "refused"
            }
            Err(_) => "error",
        });
        let reserved = reserved?;
        if !reserved.replayed {
            let units: i64 = reserved.lines.iter().map(|l| i64::from(l.quantity)).sum();
            self.metrics
                .units_reserved
                .inc_by(u64::try_from(units).unwrap_or(0));
        }
        let lines = reserved
            .lines
            .into_iter()
            .map(|l| self.reserved_line(l))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(pb::ReserveInventoryResponse {
            reservation_id: id.to_string(),
            lines,
        }))
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn release_inventory(
        &self,
        request: Request<pb::ReleaseInventoryRequest>,
    ) -> RpcResult<pb::ReleaseInventoryResponse> {
        let id = parse_uuid("reservation_id", &request.get_ref().reservation_id)
            .map_err(CatalogError::invalid)?;
        let released = self.store.release(id).await?;
        if released {
            self.metrics.releases.inc();
            tracing::info!(reservation_id = %id, "reservation released, stock restored");
        }
        Ok(Response::new(pb::ReleaseInventoryResponse { released }))
    }

    #[tracing::instrument(skip_all, fields(reservation_id = %request.get_ref().reservation_id))]
    async fn commit_inventory(
        &self,
        request: Request<pb::CommitInventoryRequest>,
    ) -> RpcResult<pb::CommitInventoryResponse> {
        let id = parse_uuid("reservation_id", &request.get_ref().reservation_id)
            .map_err(CatalogError::invalid)?;
        let committed = self.store.commit(id).await?;
        if committed {
            self.metrics.commits.inc();
        }
        Ok(Response::new(pb::CommitInventoryResponse { committed }))
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
