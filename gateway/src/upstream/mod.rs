//! The gateway's clients of the two services: one long-lived channel per
//! service, built at start and cloned into every handler (never a connection
//! per request). Every call goes through [`Backends::send`]: under the
//! deadline, counted by RPC and code. A handler calls through [`Services`]
//! (an extractor), so its calls also carry its request's id and trace
//! context, and fail as an answer already mapped from the gRPC status. Each
//! call is an OpenTelemetry CLIENT span (`catalog.v1.CatalogService/GetProduct`,
//! `rpc.*` attributes, `platform::telemetry::grpc_client_span`) whose context
//! goes with the call, so the service's span is its child.
//!
//! - [`rpc`]: every RPC the gateway makes, as a typed descriptor;
//! - [`call`]: what a handler's calls inherit from its request, and the one
//!   call path handlers use;
//! - [`status`]: the one gRPC status -> HTTP answer mapping;
//! - [`product_cache`]: `GET /api/products/{id}` from memory, kept exact by
//!   the catalog's change feed.
//!
//! Two ways to reach a service:
//! - lazy (`GRPC_BALANCE=false`): one endpoint, connected on first use, so the gateway
//!   starts even when a service is not up yet, and a service that is down
//!   answers UNAVAILABLE (503) at once;
//! - balanced (default): every address the URL resolves to (a
//!   headless Kubernetes Service resolves to every ready pod), probed and
//!   re-resolved every `GRPC_REFRESH_INTERVAL`, calls spread over the reachable
//!   ones. gRPC keeps long-lived HTTP/2 connections, which an L4 balancer
//!   would pin to one pod. "Reachable" means ready: an address whose
//!   service answers NOT_SERVING (its database down, or draining after
//!   SIGTERM), or stops answering at all, leaves the balancer. When no
//!   address is ready, calls are refused at once (503) instead of each
//!   waiting for its deadline.
//!
//! With `GRPC_TLS_CA_FILE` (and the gateway's client certificate,
//! `GRPC_TLS_CERT_FILE` / `GRPC_TLS_KEY_FILE`), both channels are mutual TLS
//! (`platform::tls`): the URLs are `https://`, and each service's certificate
//! is checked against its URL's host.

pub mod call;
pub mod product_cache;
pub mod rpc;
pub mod status;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use anyhow::Context;
use platform::{
    balance::{ChannelSettings, ServiceChannel},
    telemetry::{self, Peer, RpcSide},
};
use tonic::Status;
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse, health_check_response::ServingStatus,
};
use tracing::Instrument;

pub use call::{CallContext, Services};
pub use rpc::{Rpc, Service};
pub use status::Subject;

use crate::{config::Config, metrics::Metrics};

/// Longest a readiness check waits for a service's health answer.
pub const HEALTH_CHECK_LIMIT: Duration = Duration::from_millis(800);

/// Channels to the services, cheap to clone.
#[derive(Clone, Debug)]
pub struct Backends {
    catalog: ServiceChannel,
    order: ServiceChannel,
    /// `server.address` / `server.port` of each service's calls (from its URL).
    catalog_peer: Peer,
    order_peer: Peer,
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
            refresh_interval: config.grpc_refresh_interval.max(Duration::from_millis(10)),
            tls,
        };
        let (catalog, order) = tokio::join!(
            ServiceChannel::connect(&config.catalog_url, config.grpc_balance, &settings),
            ServiceChannel::connect(&config.order_url, config.grpc_balance, &settings),
        );
        Ok(Self {
            catalog: catalog.context("CATALOG_URL")?,
            order: order.context("ORDER_URL")?,
            catalog_peer: Peer::from_url(&config.catalog_url),
            order_peer: Peer::from_url(&config.order_url),
            timeout: config.grpc_timeout(),
            metrics,
        })
    }

    /// The catalog's channel itself (the product cache's change feed).
    pub fn catalog_channel(&self) -> ServiceChannel {
        self.catalog.clone()
    }

    fn upstream(&self, service: Service) -> (&ServiceChannel, &Peer) {
        match service {
            Service::Catalog => (&self.catalog, &self.catalog_peer),
            Service::Order => (&self.order, &self.order_peer),
        }
    }

    /// Wraps a message with the deadline and the forwarded headers (with
    /// span export on, [`Self::send`] replaces the client's raw traceparent
    /// with its call span's context).
    pub fn request<T>(&self, message: T, ctx: &CallContext) -> tonic::Request<T> {
        let mut request = self.bare_request(message);
        ctx.apply(request.metadata_mut());
        request
    }

    /// A message with the deadline only: tells the service when to give up
    /// too (`grpc-timeout`).
    fn bare_request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// Sends one call to its service under the deadline and counts it. A
    /// call that outlives the deadline is abandoned and answered
    /// DEADLINE_EXCEEDED (504), whatever the transport does; a balanced
    /// channel with no ready address (none reachable, or all NOT_SERVING or
    /// hung: `platform::balance`) answers UNAVAILABLE (503) at once.
    ///
    /// The call is a CLIENT span (child of the current one, the HTTP
    /// request's) whose context replaces any `traceparent` in `request`, so
    /// the service's span hangs under it; its outcome (the code, deadline and
    /// "no address" included) is recorded on it.
    pub async fn send<Req, Resp>(
        &self,
        rpc: Rpc<Req, Resp>,
        mut request: tonic::Request<Req>,
    ) -> Result<Resp, Status> {
        let started = Instant::now();
        let (upstream, peer) = self.upstream(rpc.service);
        let span = telemetry::grpc_client_span(rpc.grpc_service, rpc.grpc_method, peer);
        telemetry::inject_context(&span, request.metadata_mut());
        let result = upstream
            .call(self.timeout, rpc.start(upstream.channel(), request))
            .instrument(span.clone())
            .await;
        let code = result
            .as_ref()
            .map_or_else(Status::code, |_| tonic::Code::Ok);
        telemetry::record_grpc_status(&span, code, RpcSide::Client);
        self.metrics.observe_rpc(rpc.name, code, started);
        result
    }

    /// Each service's overall health (`grpc.health.v1`, service `""`), checked
    /// concurrently, each for at most [`HEALTH_CHECK_LIMIT`] (or the
    /// deadline, if shorter): `/ready` must answer within a balancer's probe
    /// timeout (the kubelet's is 1 s) even when a service hangs.
    pub async fn health(&self) -> [(&'static str, Result<ServingStatus, Status>); 2] {
        let limit = HEALTH_CHECK_LIMIT.min(self.timeout);
        let check = |rpc: Rpc<HealthCheckRequest, HealthCheckResponse>| async move {
            let request = self.bare_request(HealthCheckRequest {
                service: String::new(),
            });
            let response = tokio::time::timeout(limit, self.send(rpc, request))
                .await
                .map_err(|_| Status::deadline_exceeded("no health answer in time"))??;
            Ok(ServingStatus::try_from(response.status).unwrap_or(ServingStatus::Unknown))
        };
        let (catalog, order) = tokio::join!(check(rpc::CATALOG_HEALTH), check(rpc::ORDER_HEALTH));
        [("catalog", catalog), ("order", order)]
    }
}
