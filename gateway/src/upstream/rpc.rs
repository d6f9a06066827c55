//! Every RPC the gateway makes, as a typed descriptor: which service it goes
//! to, its name (the metrics label), and how to start it on a channel. A
//! handler names the RPC and passes the message; the request and answer
//! types follow from the descriptor, so a call cannot go to the wrong
//! service or method.

use std::{future::Future, pin::Pin};

use proto::{
    catalog::v1::{
        CreateProductRequest, DeleteProductRequest, DeleteProductResponse as Deleted,
        GetProductRequest, ListProductsRequest, ListProductsResponse, Product,
        UpdateProductRequest, catalog_service_client::CatalogServiceClient,
    },
    order::v1::{
        ApplyPaymentRequest, CreateOrderRequest, GetOrderRequest, ListOrdersRequest,
        ListOrdersResponse, Order, UpdateOrderStatusRequest as UpdateStatus,
        order_service_client::OrderServiceClient,
    },
};
use tonic::{Status, transport::Channel};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse, health_client::HealthClient};

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
            .finish()
    }
}

impl<Req, Resp> Rpc<Req, Resp> {
    /// Starts the call on `channel` (the channel of [`Self::service`]).
    pub fn start(&self, channel: Channel, request: tonic::Request<Req>) -> Pending<Resp> {
        (self.start)(channel, request)
    }
}

/// Declares each RPC of a service's client: `NAME: method("Label", Request) -> Response;`.
macro_rules! rpcs {
    ($($service:ident $client:ident {
        $($rpc:ident: $method:ident($label:literal, $request:ty) -> $response:ty;)*
    })*) => {$($(
        pub const $rpc: Rpc<$request, $response> = Rpc {
            service: Service::$service,
            name: $label,
            start: |channel, request| {
                Box::pin(async move { $client::new(channel).$method(request).await })
            },
        };
    )*)*};
}

rpcs! {
    Catalog CatalogServiceClient {
        CREATE_PRODUCT: create_product("CreateProduct", CreateProductRequest) -> Product;
        LIST_PRODUCTS: list_products("ListProducts", ListProductsRequest) -> ListProductsResponse;
        GET_PRODUCT: get_product("GetProduct", GetProductRequest) -> Product;
        UPDATE_PRODUCT: update_product("UpdateProduct", UpdateProductRequest) -> Product;
        DELETE_PRODUCT: delete_product("DeleteProduct", DeleteProductRequest) -> Deleted;
    }
    Order OrderServiceClient {
        CREATE_ORDER: create_order("CreateOrder", CreateOrderRequest) -> Order;
        LIST_ORDERS: list_orders("ListOrders", ListOrdersRequest) -> ListOrdersResponse;
        GET_ORDER: get_order("GetOrder", GetOrderRequest) -> Order;
        UPDATE_ORDER_STATUS: update_order_status("UpdateOrderStatus", UpdateStatus) -> Order;
        APPLY_PAYMENT: apply_payment("ApplyPayment", ApplyPaymentRequest) -> Order;
    }
    Catalog HealthClient {
        CATALOG_HEALTH: check("HealthCheck", HealthCheckRequest) -> HealthCheckResponse;
    }
    Order HealthClient {
        ORDER_HEALTH: check("HealthCheck", HealthCheckRequest) -> HealthCheckResponse;
    }
}
