//! The gateway's clients of the two services: one long-lived channel per
//! service, built at start (lazily connected, so the gateway starts even when a
//! service is not up yet), cloned into every handler. Every call carries a
//! deadline and the request's id.

use std::{future::Future, time::Duration};

use anyhow::Context;
use axum::{extract::FromRequestParts, http::request::Parts};
use proto::{
    catalog::v1::catalog_service_client::CatalogServiceClient,
    order::v1::order_service_client::OrderServiceClient,
};
use tonic::{
    Status,
    metadata::{AsciiMetadataValue, MetadataMap},
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::config::Config;

/// Headers carried from the HTTP request onto every gRPC call it makes.
const FORWARDED_HEADERS: [&str; 3] = ["x-request-id", "traceparent", "tracestate"];

/// Channels to the services, cheap to clone.
#[derive(Clone, Debug)]
pub struct Backends {
    catalog: Channel,
    order: Channel,
    timeout: Duration,
}

impl Backends {
    /// Builds both channels without connecting: the first call connects, and a
    /// service that is down answers UNAVAILABLE (503) instead of stopping the
    /// gateway from starting. Must be called inside a tokio runtime.
    pub fn connect_lazy(config: &Config) -> anyhow::Result<Self> {
        let endpoint = |url: &str, name: &str| -> anyhow::Result<Channel> {
            let endpoint = Endpoint::from_shared(url.to_owned())
                .with_context(|| format!("{name} URL {url:?} is not a valid URI"))?
                .connect_timeout(config.grpc_connect_timeout())
                .tcp_nodelay(true)
                // Notice a dead connection (e.g. a replica gone) between calls.
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10))
                .keep_alive_while_idle(true);
            Ok(endpoint.connect_lazy())
        };
        Ok(Self {
            catalog: endpoint(&config.catalog_url, "CATALOG_URL")?,
            order: endpoint(&config.order_url, "ORDER_URL")?,
            timeout: config.grpc_timeout(),
        })
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.catalog.clone())
    }

    pub fn orders(&self) -> OrderServiceClient<Channel> {
        OrderServiceClient::new(self.order.clone())
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
        proto::telemetry::inject_current_context(request.metadata_mut());
        request
    }

    /// Runs a call under the deadline. A call that outlives it is abandoned
    /// and answered DEADLINE_EXCEEDED (504), whatever the transport does.
    pub async fn call<T>(
        &self,
        call: impl Future<Output = Result<tonic::Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(result) => result.map(tonic::Response::into_inner),
            Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
        }
    }

    /// Each service's overall health (`grpc.health.v1`, service `""`), checked
    /// concurrently.
    pub async fn health(&self) -> [(&'static str, Result<ServingStatus, Status>); 2] {
        let check = |channel: Channel| async move {
            let mut client = HealthClient::new(channel);
            let mut request = tonic::Request::new(HealthCheckRequest {
                service: String::new(),
            });
            request.set_timeout(self.timeout);
            let response = self.call(client.check(request)).await?;
            Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
        };
        let (catalog, order) = tokio::join!(check(self.catalog.clone()), check(self.order.clone()));
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
        let backends = Backends::connect_lazy(&config).unwrap();
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
        let error = Backends::connect_lazy(&config).unwrap_err();
        assert!(format!("{error:#}").contains("ORDER_URL"), "{error:#}");
    }
}
