//! Every RPC the gateway makes, as a typed descriptor: which service it goes
//! to, its name (the metrics label), its gRPC service and method (its span's
//! name and `rpc.*` attributes), and how to start it on a channel. A
//! handler names the RPC and passes the message; the request and answer
//! types follow from the descriptor, so a call cannot go to the wrong
//! service or method.

use std::{future::Future, pin::Pin};

use proto::{
    catalog::v1::{
        CreateProductRequest, DeleteProductRequest, DeleteProductResponse as Deleted,
        GetProductRequest, ListProductsRequest, ListProductsResponse, Product,
        UpdateProductRequest, catalog_service_client::CatalogServiceClient, catalog_service_server,
    },
    order::v1::{
        ApplyPaymentRequest, CreateOrderRequest, GetOrderRequest, ListOrdersRequest,
        ListOrdersResponse, Order, UpdateOrderStatusRequest as UpdateStatus,
        order_service_client::OrderServiceClient, order_service_server,
    },
};
use tonic::{Status, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_client::HealthClient, health_server,
};

/// Which service a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Catalog,
    Order,
}

/// A call in flight.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<tonic::Response<T>, Status>> + Send>>;

/// One RPC: where it goes, its name, and its client method.
pub struct Rpc<Req, Resp> {
    pub service: Service,
    /// As metrics label it, e.g. `CreateOrder`.
    pub name: &'static str,
    /// The gRPC service, `package.Service` (`rpc.service`), e.g.
    /// `catalog.v1.CatalogService`.
    pub grpc_service: &'static str,
    /// The gRPC method (`rpc.method`), e.g. `GetProduct`.
    pub grpc_method: &'static str,
    start: fn(Channel, tonic::Request<Req>) -> Pending<Resp>,
}

impl<Req, Resp> Clone for Rpc<Req, Resp> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Req, Resp> Copy for Rpc<Req, Resp> {}

impl<Req, Resp> std::fmt::Debug for Rpc<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rpc")
            .field("service", &self.service)
            .field("name", &self.name)
            .field("grpc_service", &self.grpc_service)
            .field("grpc_method", &self.grpc_method)
            .finish()
    }
}

impl<Req, Resp> Rpc<Req, Resp> {
    /// Starts the call on `channel` (the channel of [`Self::service`]).
    pub fn start(&self, channel: Channel, request: tonic::Request<Req>) -> Pending<Resp> {
        (self.start)(channel, request)
    }
}

/// Declares each RPC of a service's client:
/// `Service Client "package.Service" { NAME: method("Label", Request) -> Response; }`,
/// where the label (the metrics label) is also the gRPC method unless
/// `"Label" as "Method"` says otherwise.
macro_rules! rpcs {
    ($($service:ident $client:ident $grpc_service:expr => {
        $($rpc:ident: $method:ident($label:literal $(as $grpc_method:literal)?, $request:ty) -> $response:ty;)*
    })*) => {$($(
        pub const $rpc: Rpc<$request, $response> = Rpc {
            service: Service::$service,
            name: $label,
            grpc_service: $grpc_service,
            grpc_method: rpcs!(@method $label $($grpc_method)?),
            start: |channel, request| {
                Box::pin(async move { $client::new(channel).$method(request).await })
            },
        };
    )*)*};
    (@method $label:literal) => { $label };
    (@method $label:literal $grpc_method:literal) => { $grpc_method };
}

rpcs! {
    Catalog CatalogServiceClient catalog_service_server::SERVICE_NAME => {
        CREATE_PRODUCT: create_product("CreateProduct", CreateProductRequest) -> Product;
        LIST_PRODUCTS: list_products("ListProducts", ListProductsRequest) -> ListProductsResponse;
        GET_PRODUCT: get_product("GetProduct", GetProductRequest) -> Product;
        UPDATE_PRODUCT: update_product("UpdateProduct", UpdateProductRequest) -> Product;
        DELETE_PRODUCT: delete_product("DeleteProduct", DeleteProductRequest) -> Deleted;
    }
    Order OrderServiceClient order_service_server::SERVICE_NAME => {
        CREATE_ORDER: create_order("CreateOrder", CreateOrderRequest) -> Order;
        LIST_ORDERS: list_orders("ListOrders", ListOrdersRequest) -> ListOrdersResponse;
        GET_ORDER: get_order("GetOrder", GetOrderRequest) -> Order;
        UPDATE_ORDER_STATUS: update_order_status("UpdateOrderStatus", UpdateStatus) -> Order;
        APPLY_PAYMENT: apply_payment("ApplyPayment", ApplyPaymentRequest) -> Order;
    }
    Catalog HealthClient health_server::SERVICE_NAME => {
        CATALOG_HEALTH: check("HealthCheck" as "Check", HealthCheckRequest) -> HealthCheckResponse;
    }
    Order HealthClient health_server::SERVICE_NAME => {
        ORDER_HEALTH: check("HealthCheck" as "Check", HealthCheckRequest) -> HealthCheckResponse;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpcs_know_their_grpc_service_and_method() {
        assert_eq!(
            (GET_PRODUCT.grpc_service, GET_PRODUCT.grpc_method),
            ("catalog.v1.CatalogService", "GetProduct")
        );
        assert_eq!(
            (CREATE_ORDER.grpc_service, CREATE_ORDER.grpc_method),
            ("order.v1.OrderService", "CreateOrder")
        );
        assert_eq!(
            (
                CATALOG_HEALTH.grpc_service,
                CATALOG_HEALTH.grpc_method,
                CATALOG_HEALTH.name
            ),
            ("grpc.health.v1.Health", "Check", "HealthCheck")
        );
    }
}
