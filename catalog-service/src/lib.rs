//! # catalog-service
//!
//! Owns products and their stock, and is the only writer of stock. Other
//! services take stock through reservations (Reserve, then Commit or Release),
//! idempotent by reservation id, so a retried or late call never moves stock
//! twice.
//!
//! ## Layout
//! - [`config`]: settings from flags / environment.
//! - [`domain`]: the rules as plain types and functions (validation, how a
//!   reservation request is normalised and judged); no I/O, unit-tested.
//! - [`store`]: every SQL statement, and the transactions that hold them.
//! - [`change_feed`]: which products changed (a trigger's notifications),
//!   streamed to readers that keep copies (`WatchProductChanges`).
//! - [`group_commit`]: the one task that decides concurrent reservations in
//!   shared transactions (a hot product sells faster than one commit each).
//! - [`grpc`]: `catalog.v1.CatalogService`: wire types <-> domain calls.
//! - [`error`]: the service's one error type and its mapping to `tonic::Status`.
//! - [`metrics`]: the catalog's business series.
//!
//! [`Application::build`] binds its own listeners (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future completes,
//! so tests start the real service in-process. With TLS settings (see
//! `platform::tls`) the gRPC port speaks TLS, mutual when a client CA is given.

pub mod change_feed;
pub mod config;
pub mod domain;
pub mod error;
pub mod group_commit;
pub mod grpc;
pub mod metrics;
pub mod store;

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use platform::metrics::{AdminHooks, PoolGauges};
use proto::catalog::v1::catalog_service_server::CatalogServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

/// The catalog's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/catalog");

/// A catalog service that is connected to its database and bound to its
/// ports, ready to serve.
pub struct Application {
    listener: TcpListener,
    admin_listener: TcpListener,
    store: store::Store,
    /// Counts connections caught coming back inside a transaction.
    release_guard: platform::db::ReleaseGuard,
    /// TLS on the gRPC port, loaded from the configured files.
    tls: Option<platform::tls::ServerTls>,
    config: Config,
}

impl Application {
    /// Connects to the database (creating and migrating it if configured) and
    /// binds the listen and admin addresses.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // TLS files first: a bad setting stops the start before anything
        // else is done, with a message naming it.
        let tls = config.tls.load()?;
        // Only `--probe` presents these; checked here too, so that a mistake
        // shows when the service starts rather than as a failing health check.
        config.grpc_tls.load()?;
        let platform::db::Database {
            pool,
            release_guard,
        } = platform::db::connect(&config.db_settings(), &MIGRATOR)
            .await
            .context("catalog database")?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let admin_listener = TcpListener::bind(config.admin_addr)
            .await
            .with_context(|| format!("cannot listen on {} (admin)", config.admin_addr))?;
        Ok(Self {
            listener,
            admin_listener,
            store: store::Store::new(pool),
            release_guard,
            tls,
            config,
        })
    }

    /// The gRPC address.
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

    /// Serves until `shutdown` completes. Then: health turns NOT_SERVING (so
    /// balancers stop sending), the server stops accepting, in-flight calls
    /// finish (bounded by the configured grace period), the pool closes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            admin_listener,
            store,
            release_guard,
            tls,
            config,
        } = self;
        let mut registry = prometheus_client::registry::Registry::default();
        let pool_gauges = PoolGauges::register(&mut registry);
        release_guard.register(&mut registry);
        let catalog_metrics = metrics::CatalogMetrics::register(&mut registry);
        let hooks = Arc::new(Hooks {
            store: store.clone(),
            pool_gauges,
        });

        let (reserver, reserve_worker) =
            group_commit::Reserver::spawn(store.clone(), catalog_metrics.clone());
        // Change-feed streams never end on their own: they are ended as soon
        // as shutdown starts, so the drain does not wait for them.
        let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            stopping_tx.send_replace(true);
        };
        let (changes, change_feed) =
            change_feed::ChangeFeed::spawn(config.database_url.clone(), stopping);
        let api = grpc::CatalogApi::new(
            store.clone(),
            reserver,
            config.currency.clone(),
            catalog_metrics,
            changes,
        )
        .with_max_list_offset(config.max_list_offset);
        let interval = Duration::from_millis(config.health_check_interval_ms);
        let pool = store.pool().clone();
        let database_up = move || platform::db::is_up(pool.clone(), interval);
        let served = platform::server::serve(
            platform::server::GrpcServe {
                name: "catalog-service",
                listener,
                admin_listener,
                service: CatalogServiceServer::new(api),
                registry,
                hooks,
                health_interval: interval,
                grace: Duration::from_secs(config.shutdown_grace_secs),
                tls,
            },
            database_up,
            shutdown,
        )
        .await
        .context("gRPC server failed");
        // The server (and with it every Reserver handle) is gone: the worker
        // answers what is queued, then ends. Past the grace period, not waited for.
        if tokio::time::timeout(Duration::from_secs(2), reserve_worker)
            .await
            .is_err()
        {
            tracing::warn!("reservation worker did not finish in time");
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), change_feed).await;
        // `close` waits for connections in use; past the grace period a call
        // stuck in the database must not keep the process alive for ever.
        if tokio::time::timeout(Duration::from_secs(2), store.close())
            .await
            .is_err()
        {
            tracing::warn!("database pool did not close in time; exiting anyway");
        }
        tracing::info!("catalog-service stopped");
        served
    }
}

/// What the admin server asks of the catalog.
struct Hooks {
    store: store::Store,
    pool_gauges: PoolGauges,
}

impl AdminHooks for Hooks {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            let pool = self.store.pool();
            self.pool_gauges.set(pool.size(), pool.num_idle());
        })
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { self.store.ping().await.is_ok() })
    }
}
