//! Prometheus metrics of the gateway, served at `/metrics` on its admin port
//! (`ADMIN_ADDR`, `platform::metrics::admin_router`): HTTP requests by
//! route template and status (never by raw path, so ids cannot blow up the
//! series), calls to the services by RPC and gRPC code, and webhook refusals
//! by reason.
//!
//! The registry belongs to one `Application`, so gateways started side by
//! side in one test process keep their series apart.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};
use platform::metrics::{code_name, latency_histogram};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    /// The route template (`/api/products/{id}`), or `unmatched`.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    /// e.g. `CreateOrder`.
    rpc: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcName {
    rpc: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

/// How a product cache lookup went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheLookup {
    Hit,
    Miss,
    /// The change feed is not live: the cache was not consulted.
    Bypass,
}

/// Every series of the gateway; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<RpcName, Histogram>,
    webhook_refusals: Family<ReasonLabel, Counter>,
    shed_requests: Counter,
    /// Product cache lookups: hit, miss, bypass (feed not live).
    cache_hits: Counter,
    cache_misses: Counter,
    cache_bypasses: Counter,
    cache_live: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        let rpc_duration = Family::<RpcName, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let webhook_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "http_server_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            http_duration.clone(),
        );
        registry.register(
            "grpc_client_requests",
            "Calls to the catalog and order services, by RPC and gRPC status code",
            rpc_requests.clone(),
        );
        registry.register(
            "grpc_client_request_duration_seconds",
            "Time a call to a service took, by RPC",
            rpc_duration.clone(),
        );
        registry.register(
            "webhook_refusals",
            "Payment webhooks refused before reaching the order service, by reason",
            webhook_refusals.clone(),
        );
        let shed_requests = Counter::default();
        registry.register(
            "http_server_shed_requests",
            "Requests refused with 503 because the gateway was at MAX_CONCURRENT_REQUESTS",
            shed_requests.clone(),
        );
        let cache_lookups = Family::<ResultLabel, Counter>::default();
        registry.register(
            "product_cache_lookups",
            "GET /api/products/{id} answered from the product cache (hit), fetched (miss), \
             or fetched because the catalog's change feed is not live (bypass)",
            cache_lookups.clone(),
        );
        let lookup = |result: &str| {
            cache_lookups
                .get_or_create(&ResultLabel {
                    result: result.to_owned(),
                })
                .clone()
        };
        let cache_live = Gauge::default();
        registry.register(
            "product_cache_live",
            "1 while the catalog's change feed is live and the product cache in use, else 0",
            cache_live.clone(),
        );
        Self {
            cache_hits: lookup("hit"),
            cache_misses: lookup("miss"),
            cache_bypasses: lookup("bypass"),
            cache_live,
            registry: Arc::new(registry),
            http_requests,
            http_duration,
            rpc_requests,
            rpc_duration,
            webhook_refusals,
            shed_requests,
        }
    }

    /// One product cache lookup.
    pub fn product_cache_lookup(&self, lookup: CacheLookup) {
        match lookup {
            CacheLookup::Hit => self.cache_hits.inc(),
            CacheLookup::Miss => self.cache_misses.inc(),
            CacheLookup::Bypass => self.cache_bypasses.inc(),
        };
    }

    pub fn product_cache_live(&self, live: bool) {
        self.cache_live.set(i64::from(live));
    }

    /// One request refused by load shedding.
    pub fn request_shed(&self) {
        self.shed_requests.inc();
    }

    /// Records one finished call to a service.
    pub fn observe_rpc(&self, rpc: &str, code: tonic::Code, started: Instant) {
        self.rpc_requests
            .get_or_create(&RpcLabels {
                rpc: rpc.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.rpc_duration
            .get_or_create(&RpcName {
                rpc: rpc.to_owned(),
            })
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn webhook_refused(&self, reason: &str) {
        self.webhook_refusals
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// The Prometheus text of every series.
    pub fn render(&self) -> Response {
        platform::metrics::render(&self.registry)
    }

    /// The registry, for the admin server's `/metrics`.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }
}

/// The route template a request matched, carried on the response so the
/// outer metrics layer (which runs before routing) can label by it.
#[derive(Clone, Debug)]
pub struct RouteTemplate(pub String);

/// Inner layer (`route_layer`): copies the matched route onto the response.
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(RouteTemplate(route));
    }
    response
}

/// Outer layer: counts and times every request, by the route it matched.
pub async fn track(State(metrics): State<Metrics>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<RouteTemplate>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    metrics
        .http_duration
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
