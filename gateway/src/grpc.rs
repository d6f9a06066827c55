//! The gateway's clients of the two services: one long-lived channel per
//! service, built at start and cloned into every handler (never a connection
//! per request). Every call carries a deadline and the request's id.
//!
//! Two ways to reach a service:
//! - lazy (`GRPC_BALANCE=false`): one endpoint, connected on first use, so the gateway
//!   starts even when a service is not up yet, and a service that is down
//!   answers UNAVAILABLE (503) at once;
//! - balanced (default): every address the URL resolves to (a
//!   headless Kubernetes Service resolves to every ready pod), probed and
//!   re-resolved every `GRPC_REFRESH_MS`, calls spread over the reachable
//!   ones. gRPC keeps long-lived HTTP/2 connections, which an L4 balancer
//!   would pin to one pod. When no address is reachable, calls are refused
//!   at once (503) instead of waiting for one to appear.
//!
//! With `GRPC_TLS_CA_FILE` (and the gateway's client certificate,
//! `GRPC_TLS_CERT_FILE` / `GRPC_TLS_KEY_FILE`), both channels are mutual TLS
//! (`platform::tls`): the URLs are `https://`, and each service's certificate
//! is checked against its URL's host.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{extract::FromRequestParts, http::request::Parts};
use platform::balance::{ChannelSettings, ServiceChannel};
use proto::{
    catalog::v1::catalog_service_client::CatalogServiceClient,
    order::v1::order_service_client::OrderServiceClient,
};
use tonic::{
    Status,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::Channel,
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{config::Config, metrics::Metrics};

/// Headers carried from the HTTP request onto every gRPC call it makes.
const FORWARDED_HEADERS: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

/// Which service a call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Catalog,
    Order,
}

/// One RPC: where it goes and its name (for metrics).
#[derive(Debug, Clone, Copy)]
pub struct Rpc {
    pub service: Service,
    pub name: &'static str,
}

/// Every RPC the gateway makes.
pub mod rpc {
    use super::{Rpc, Service};

    const fn catalog(name: &'static str) -> Rpc {
        Rpc {
            service: Service::Catalog,
            name,
        }
    }
    const fn order(name: &'static str) -> Rpc {
        Rpc {
            service: Service::Order,
            name,
        }
    }

    pub const CREATE_PRODUCT: Rpc = catalog("CreateProduct");
    pub const LIST_PRODUCTS: Rpc = catalog("ListProducts");
    pub const GET_PRODUCT: Rpc = catalog("GetProduct");
    pub const UPDATE_PRODUCT: Rpc = catalog("UpdateProduct");
    pub const DELETE_PRODUCT: Rpc = catalog("DeleteProduct");
    pub const CREATE_ORDER: Rpc = order("CreateOrder");
    pub const LIST_ORDERS: Rpc = order("ListOrders");
    pub const GET_ORDER: Rpc = order("GetOrder");
    pub const UPDATE_ORDER_STATUS: Rpc = order("UpdateOrderStatus");
    pub const APPLY_PAYMENT: Rpc = order("ApplyPayment");
    pub const CATALOG_HEALTH: Rpc = catalog("HealthCheck");
    pub const ORDER_HEALTH: Rpc = order("HealthCheck");
}

/// Channels to the services, cheap to clone.
#[derive(Clone, Debug)]
pub struct Backends {
    catalog: ServiceChannel,
    order: ServiceChannel,
    timeout: Duration,
    metrics: Metrics,
}

impl Backends {
    /// Builds both channels. Lazy channels connect on first use; balanced
    /// ones resolve and probe their addresses once before this returns (so
    /// the first request finds them), then keep doing so in the background.
    /// Must be called inside a tokio runtime.
    pub async fn connect(config: &Config, metrics: Metrics) -> anyhow::Result<Self> {
        // Read and checked once, here; every connection reuses them.
        let tls = config.grpc_tls.load()?;
        match &tls {
            Some(tls) => tracing::info!(?tls, "calls to the services use TLS"),
            None => {
                tracing::info!("GRPC_TLS_CA_FILE is not set: calls to the services are plaintext")
            }
        }
        let settings = ChannelSettings {
            connect_timeout: config.grpc_connect_timeout(),
            refresh_interval: Duration::from_millis(config.grpc_refresh_ms.max(10)),
            tls,
        };
        let (catalog, order) = tokio::join!(
            ServiceChannel::connect(&config.catalog_url, config.grpc_balance, &settings),
            ServiceChannel::connect(&config.order_url, config.grpc_balance, &settings),
        );
        Ok(Self {
            catalog: catalog.context("CATALOG_URL")?,
            order: order.context("ORDER_URL")?,
            timeout: config.grpc_timeout(),
            metrics,
        })
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.catalog.channel())
    }

    /// The catalog's channel itself (the product cache's change feed).
    pub fn catalog_channel(&self) -> ServiceChannel {
        self.catalog.clone()
    }

    pub fn orders(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.order.channel())
    }

    fn upstream(&self, service: Service) -> &ServiceChannel {
        match service {
            Service::Catalog => &self.catalog,
            Service::Order => &self.order,
        }
    }

    /// Wraps a message with the deadline and the forwarded headers.
    pub fn request<T>(&self, message: T, ctx: &CallContext) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        // Tells the service when to give up too (grpc-timeout).
        request.set_timeout(self.timeout);
        ctx.apply(request.metadata_mut());
        // With span export on, the current (HTTP request) span's context
        // replaces the client's raw traceparent, so the services' spans hang
        // under the gateway's.
        platform::telemetry::inject_current_context(request.metadata_mut());
        request
    }

    /// Runs a call under the deadline. A call that outlives it is abandoned
    /// and answered DEADLINE_EXCEEDED (504), whatever the transport does.
    pub async fn call<T>(
        &self,
        rpc: Rpc,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        let started = Instant::now();
        let result = self.upstream(rpc.service).call(self.timeout, call).await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        self.metrics.observe_rpc(rpc.name, code, started);
        result
    }

    /// Each service's overall health (`grpc.health.v1`, service `""`), checked
    /// concurrently.
    pub async fn health(&self) -> [(&'static str, Result<ServingStatus, Status>); 2] {
        let check = |rpc: Rpc| async move {
            let mut client = HealthClient::new(self.upstream(rpc.service).channel());
            let mut request = tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            });
            request.set_timeout(self.timeout);
            let response = self.call(rpc, client.check(request)).await?;
            Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
        };
        let (catalog, order) = tokio::join!(check(rpc::CATALOG_HEALTH), check(rpc::ORDER_HEALTH));
        [("catalog", catalog), ("order", order)]
    }
}

/// What a handler's gRPC calls inherit from its HTTP request.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    headers: Vec<(&'static str, AsciiMetadataValue)>,
}

impl CallContext {
    fn apply(&self, metadata: &mut MetadataMap) {
        for (name, value) in &self.headers {
            metadata.insert(*name, value.clone());
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CallContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let headers = FORWARDED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = parts.headers.get(*name)?.to_str().ok()?;
                // A value that is not valid metadata is dropped, not fatal.
                Some((*name, AsciiMetadataValue::try_from(value).ok()?))
            })
            .collect();
        Ok(Self { headers })
    }
}

#[cfg(test)]
mod tests {
    use axum::{extract::FromRequestParts, http::Request};
    use clap::Parser;

    use super::*;

    #[tokio::test]
    async fn calls_carry_the_request_id_trace_context_and_deadline() {
        let (mut parts, ()) = Request::builder()
            .header("x-request-id", "req-42")
            .header(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            )
            .header("authorization", "Bearer secret")
            .body(())
            .unwrap()
            .into_parts();
        let ctx = CallContext::from_request_parts(&mut parts, &())
            .await
            .unwrap();
        let mut config = Config::parse_from(["gateway"]);
        config.grpc_timeout_ms = 1_500;
        let backends = Backends::connect(&config, Metrics::new()).await.unwrap();
        let request = backends.request((), &ctx);
        let metadata = request.metadata();
        assert_eq!(metadata.get("x-request-id").unwrap(), "req-42");
        assert_eq!(
            metadata.get("traceparent").unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(metadata.get("grpc-timeout").unwrap(), "1500000u");
        // Only the listed headers travel on; credentials never do.
        assert!(metadata.get("authorization").is_none());
    }

    #[tokio::test]
    async fn a_malformed_service_url_stops_the_start() {
        let mut config = Config::parse_from(["gateway"]);
        config.order_url = "not a url".into();
        let error = Backends::connect(&config, Metrics::new())
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("ORDER_URL"), "{error:#}");
    }

    #[tokio::test]
    async fn an_https_url_without_tls_settings_stops_the_start() {
        let mut config = Config::parse_from(["gateway"]);
        config.catalog_url = "https://127.0.0.1:50051".into();
        let error = format!(
            "{:#}",
            Backends::connect(&config, Metrics::new())
                .await
                .unwrap_err()
        );
        assert!(error.contains("CATALOG_URL"), "{error}");
        assert!(error.contains("GRPC_TLS_CA_FILE"), "{error}");
    }

    #[tokio::test]
    async fn half_configured_tls_stops_the_start_naming_the_setting() {
        let mut config = Config::parse_from(["gateway"]);
        config.grpc_tls.grpc_tls_cert_file = Some("/etc/tls/gateway.pem".into());
        let error = format!(
            "{:#}",
            Backends::connect(&config, Metrics::new())
                .await
                .unwrap_err()
        );
        assert!(error.contains("GRPC_TLS_KEY_FILE"), "{error}");
    }
}
