//! # gateway
//!
//! The public REST API (described by the `/openapi.json` it serves),
//! translated to the catalog and order gRPC services. Stateless: it
//! validates, checks API keys and webhook signatures, calls the services
//! with deadlines, and maps their answers back to HTTP.
//!
//! ## Layout
//!
//! Where each route, rule and mapping lives:
//!
//! - [`routes`]: **every route, registered once** in [`routes::api`], with
//!   who may call it; that one list gives the router, the OpenAPI operations
//!   and the access rules. One module per resource holds the handlers and
//!   their `#[utoipa::path]` docs ([`routes::products`], [`routes::orders`],
//!   [`routes::webhook`], [`routes::meta`] for health, readiness, info and
//!   ReDoc).
//! - [`models`]: the contract's request / response types (the OpenAPI
//!   schemas are generated from them) and their wire conversions.
//! - [`http`]: the HTTP side.
//!   - [`http::router`]: the application router and its layers (request ids,
//!     tracing, metrics, problem details, load shedding, request timeout,
//!     access guard); [`http::registry`]: how a route is registered once.
//!   - [`http::error`]: the one error type and format (RFC 9457 problem
//!     details).
//!   - [`http::extract`]: extractors whose refusals are problem details
//!     (JSON bodies, query strings, path ids, raw bodies, `Idempotency-Key`).
//!   - [`http::limit`]: load shedding (`MAX_CONCURRENT_REQUESTS`), the body
//!     budget (`BODY_BUDGET_BYTES`), the resource-bound settings.
//!   - [`http::openapi`]: the document's description and the responses every
//!     operation shares, `/openapi.json`, the offline Swagger UI at `/docs`.
//!   - [`http::server`]: the connection loop (header read timeout, connection
//!     cap, idle timeout, HTTP/2 streams and keep-alive, graceful drain).
//! - [`input`]: reading what clients send: [`input::json`] (strict bodies:
//!   every violation named, duplicate keys refused), [`input::money`] (exact
//!   numbers and prices), [`input::query`] (query strings, paging).
//! - [`upstream`]: the services.
//!   - [`upstream::Backends`]: the long-lived channels, deadlines, metrics;
//!     [`upstream::rpc`]: every RPC the gateway makes;
//!     [`upstream::Services`]: the one call path of handlers (request id and
//!     trace context forwarded, status mapped).
//!   - [`upstream::status`]: the one gRPC status -> HTTP answer mapping.
//!   - [`upstream::product_cache`]: `GET /api/products/{id}` from memory,
//!     kept exact by the catalog's change feed.
//! - [`security`]: who may do what.
//!   - [`security::access`]: the access rule of each operation (from the
//!     registration) and the guard enforcing it; a write without a rule is
//!     refused to everyone.
//!   - [`security::api_keys`]: `API_KEYS`, the rights, bearer tokens.
//!   - [`security::signature`]: webhook HMAC signatures (plain, timestamped,
//!     Standard Webhooks; rotation); [`security::webhook`]: reading them off
//!     a delivery.
//! - [`config`]: settings from flags / environment (secrets redacted).
//! - [`metrics`]: Prometheus series at `/metrics`, on the admin port
//!   (`ADMIN_ADDR`), beside `/health` and `/ready`.
//!
//! [`Application::build`] binds its own listeners (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future
//! completes, then drains, so tests start the real gateway in-process.
//!
//! ## Ports
//!
//! - `LISTEN_ADDR`: the API, plus `/health` and `/ready` for load balancers
//!   (`/ready` is 503 only while draining; see [`routes::meta::ready`]);
//! - `ADMIN_ADDR` (default `127.0.0.1:9100`): `/metrics`, `/health`, `/ready`,
//!   served by `platform::metrics::admin_router` as the services' admin ports
//!   are, so the metrics are not public.
//!
//! ## Stopping
//!
//! On the shutdown signal (SIGTERM), `/ready` answers 503 at once (both
//! ports), requests are still served normally for `DRAIN_DELAY` (while the
//! balancers notice), then the listener closes and in-flight requests get
//! `SHUTDOWN_GRACE` to finish; the admin port closes last.

pub mod config;
pub mod http;
pub mod input;
pub mod metrics;
pub mod models;
pub mod routes;
pub mod security;
pub mod upstream;

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, WriteAccess};
use security::signature::Verifier;
use upstream::{
    Backends,
    product_cache::{ProductCache, watch},
};

/// The API's name, as `GET /` reports it.
pub const API_NAME: &str = "E-commerce API";

/// A gateway bound to its ports, with its channels built, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    /// The admin port (`/metrics`, `/health`, `/ready`) and its router.
    admin_listener: TcpListener,
    admin_router: Router,
    /// Raised on the shutdown signal; read by both `/ready`s.
    drain: platform::drain::Drain,
    shutdown_grace: Duration,
    /// Header timeout, connection cap, idle timeout, HTTP/2 settings.
    connections: http::server::ConnectionSettings,
    /// The product cache and the channel its change feed comes over; `None`
    /// when the cache is off (PRODUCT_CACHE_CAPACITY=0).
    product_feed: Option<(ProductCache, platform::balance::ServiceChannel)>,
}

impl Application {
    /// Checks the configuration (an empty webhook secret is refused), builds
    /// the gRPC channels and binds the listen address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.dev_mode {
            tracing::warn!(
                "DEV_MODE is on: settings an operator must give may be left unset \
                 (development webhook secret, writes open without API keys). Never in production."
            );
        }
        let secrets = config.webhook_secrets()?;
        if secrets.is_development {
            tracing::warn!(
                "WEBHOOK_SECRET is not set: using the built-in development secret (DEV_MODE); \
                 anyone who reads the source can sign payment webhooks"
            );
        }
        let write_access = config.write_access()?;
        match &write_access {
            WriteAccess::Keys(keys) => {
                if config.open_writes {
                    tracing::warn!("OPEN_WRITES is ignored: API_KEYS is set, and wins");
                }
                tracing::info!(keys = ?keys, "access control on: product writes and order status changes need an API key")
            }
            WriteAccess::Open if config.open_writes => tracing::warn!(
                "OPEN_WRITES is on: product writes and order status changes are open to anyone"
            ),
            WriteAccess::Open => tracing::warn!(
                "API_KEYS is not set (DEV_MODE): product writes and order status changes are open to anyone"
            ),
        }
        let metrics = metrics::Metrics::new();
        let backends = Backends::connect(&config, metrics.clone()).await?;
        let products = ProductCache::bounded(
            config.product_cache_capacity,
            config.bounds.product_cache_max_bytes,
            config.product_cache_ttl,
            metrics.clone(),
        );
        // Read by every body extractor (see `http::extract::RawBody`).
        let body_budget =
            http::limit::BodyBudget::new(config.bounds.body_budget_bytes, metrics.clone());
        let product_feed = (config.product_cache_capacity > 0)
            .then(|| (products.clone(), backends.catalog_channel()));
        let drain = platform::drain::Drain::new(config.drain.delay());
        let admin_router = platform::metrics::admin_router(
            metrics.registry(),
            Arc::new(AdminReadiness(drain.flag())),
        );
        let state = http::AppState {
            draining: drain.flag(),
            products,
            backends,
            metrics,
            // A `whsec_` secret that does not decode stops the start: it
            // could never verify a delivery.
            verifier: Verifier::try_new(
                secrets,
                config.webhook_require_timestamp,
                config.webhook_tolerance(),
            )?,
            currency: config.currency.clone(),
            write_access,
        };
        let router =
            http::router(state, http::Limits::new(&config)).layer(axum::Extension(body_budget));
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let admin_listener = TcpListener::bind(config.admin_addr)
            .await
            .with_context(|| format!("cannot listen on {} (admin)", config.admin_addr))?;
        Ok(Self {
            listener,
            router,
            admin_listener,
            admin_router,
            drain,
            shutdown_grace: config.shutdown_grace,
            connections: http::server::ConnectionSettings::new(
                config.header_read_timeout,
                &config.bounds,
            ),
            product_feed,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The admin HTTP address (`/metrics`, `/health`, `/ready`).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` completes; then reports not ready at once,
    /// serves on for the drain delay, stops accepting and lets in-flight
    /// requests finish, for at most the configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            admin_listener,
            admin_router,
            drain,
            shutdown_grace,
            connections,
            product_feed,
        } = self;
        let addr = listener.local_addr()?;
        let admin_addr = admin_listener.local_addr()?;
        // Ends with the server (aborted below); the cache is bypassed until
        // the feed's first message.
        let feed = product_feed.map(|(cache, catalog)| tokio::spawn(watch(cache, catalog)));
        // Up until the public server is done, so the drain can be watched
        // (`/ready` 503, `/metrics`) from its start to its end.
        let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let admin = axum::serve(admin_listener, admin_router).with_graceful_shutdown(async move {
            let _ = admin_stop_rx.await;
        });
        let admin = tokio::spawn(async move {
            if let Err(error) = admin.await {
                tracing::error!(%error, "admin server failed");
            }
        });
        let draining = drain.flag();
        let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
        // `/ready` turns 503 as soon as `shutdown` completes; the listener
        // closes once the drain delay is over.
        let signal = async move {
            drain.after(shutdown, async {}).await;
            let _ = drain_started_tx.send(());
            tracing::info!("draining in-flight requests");
        };
        tracing::info!(%addr, %admin_addr, docs = %format!("http://{addr}/docs"), "gateway listening");
        let server = http::server::serve(listener, router, connections, draining, signal);
        let deadline = async move {
            if drain_started_rx.await.is_ok() {
                tokio::time::sleep(shutdown_grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result.context("HTTP server failed")?,
            () = deadline => tracing::warn!("shutdown grace period over; abandoning in-flight requests"),
        }
        if let Some(feed) = feed {
            feed.abort();
        }
        let _ = admin_stop_tx.send(());
        let _ = admin.await;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// The admin port's `/ready`: what the public `/ready` answers (503 only
/// while draining), as the platform's admin router asks it.
struct AdminReadiness(platform::drain::Draining);

impl platform::metrics::AdminHooks for AdminReadiness {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        let draining = self.0.is_draining();
        Box::pin(async move { !draining })
    }
}
