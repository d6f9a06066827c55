//! # gateway
//!
//! The public REST API (described by the `/openapi.json` it serves, see
//! [`openapi`]), translated to the catalog and order gRPC services. Stateless: it validates, verifies webhook signatures, calls the
//! services with deadlines, and maps their answers back to HTTP.
//!
//! ## Layout
//! - [`config`]: settings from flags / environment (secrets redacted).
//! - [`server`]: the HTTP server loop (header read timeout, connection cap,
//!   idle timeout, HTTP/2 streams and keep-alive, graceful drain).
//! - [`routes`]: the router and its layers; one module per resource
//!   ([`routes::products`], [`routes::orders`], [`routes::webhook`],
//!   [`routes::meta`] for health, readiness, info and ReDoc).
//! - [`models`]: request / response types of the contract; the OpenAPI
//!   document is generated from them.
//! - [`json`] + [`money`]: strict JSON reading (exact numbers, every violation
//!   named, duplicate keys refused) and exact decimal parsing.
//! - [`extract`]: extractors whose refusals are problem details.
//! - [`error`]: the one error type, and the one gRPC status -> HTTP mapping.
//! - [`signature`]: webhook HMAC verification (both header forms, rotation).
//! - [`auth`]: API keys (`API_KEYS`) for product writes and order status
//!   changes.
//! - [`limit`]: load shedding (503 + `Retry-After` past
//!   `MAX_CONCURRENT_REQUESTS`), the body budget (`BODY_BUDGET_BYTES`) and
//!   the resource-bound settings.
//! - [`grpc`]: the long-lived channels to the services, deadlines, forwarded
//!   request ids.
//! - [`openapi`]: `/openapi.json` and the offline Swagger UI at `/docs`.
//! - [`product_cache`]: `GET /api/products/{id}` from memory, kept exact by
//!   the catalog's change feed.
//! - [`metrics`]: Prometheus series at `/metrics`.
//!
//! [`Application::build`] binds its own listener (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future
//! completes, so tests start the real gateway in-process.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod json;
pub mod limit;
pub mod metrics;
pub mod models;
pub mod money;
pub mod openapi;
pub mod product_cache;
pub mod routes;
pub mod server;
pub mod signature;

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use config::{Config, WriteAccess};

/// The API's name, as `GET /` reports it.
pub const API_NAME: &str = "E-commerce API";

/// A gateway bound to its port, with its channels built, ready to serve.
pub struct Application {
    listener: TcpListener,
    router: Router,
    shutdown_grace: Duration,
    /// Header timeout, connection cap, idle timeout, HTTP/2 settings.
    connections: server::ConnectionSettings,
    /// The product cache and the channel its change feed comes over; `None`
    /// when the cache is off (PRODUCT_CACHE_CAPACITY=0).
    product_feed: Option<(
        product_cache::ProductCache,
        platform::balance::ServiceChannel,
    )>,
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
        let backends = grpc::Backends::connect(&config, metrics.clone()).await?;
        let products = product_cache::ProductCache::bounded(
            config.product_cache_capacity,
            config.bounds.product_cache_max_bytes,
            Duration::from_millis(config.product_cache_ttl_ms),
            metrics.clone(),
        );
        // Read by every body extractor (see `extract::RawBody`).
        let body_budget = limit::BodyBudget::new(config.bounds.body_budget_bytes, metrics.clone());
        let product_feed = (config.product_cache_capacity > 0)
            .then(|| (products.clone(), backends.catalog_channel()));
        let state = routes::AppState {
            products,
            backends,
            metrics,
            // A `whsec_` secret that does not decode stops the start: it
            // could never verify a delivery.
            verifier: signature::Verifier::try_new(
                secrets,
                config.webhook_require_timestamp,
                config.webhook_tolerance(),
            )?,
            currency: config.currency.clone(),
            write_access,
        };
        let router = routes::router(
            state,
            routes::Limits {
                body: config.body_limit_bytes,
                webhook_body: config.webhook_body_limit_bytes,
                request_timeout: Duration::from_secs(config.request_timeout_secs),
                max_concurrent: config.max_concurrent_requests as usize,
            },
        )
        .layer(axum::Extension(body_budget));
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        Ok(Self {
            listener,
            router,
            shutdown_grace: Duration::from_secs(config.shutdown_grace_secs),
            connections: server::ConnectionSettings::new(
                Duration::from_secs(config.header_read_timeout_secs),
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

    /// Serves until `shutdown` completes, then stops accepting and lets
    /// in-flight requests finish, for at most the configured grace period.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            router,
            shutdown_grace,
            connections,
            product_feed,
        } = self;
        let addr = listener.local_addr()?;
        // Ends with the server (aborted below); the cache is bypassed until
        // the feed's first message.
        let feed =
            product_feed.map(|(cache, catalog)| tokio::spawn(product_cache::watch(cache, catalog)));
        let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            let _ = drain_started_tx.send(());
            tracing::info!("draining in-flight requests");
        };
        tracing::info!(%addr, docs = %format!("http://{addr}/docs"), "gateway listening");
        let server = server::serve(listener, router, connections, signal);
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
        tracing::info!("gateway stopped");
        Ok(())
    }
}
