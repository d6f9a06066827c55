//! # catalog-service
//!
//! Owns products and their stock, and is the only writer of stock. Other
//! services take stock through reservations (Reserve, then Commit or Release),
//! idempotent by reservation id, so a retried or late call never moves stock
//! twice.
//!
//! ## Layout
//! One shape, outside in: [`grpc`] maps the wire to domain values and calls
//! [`app`]; [`app`] applies the rules of [`domain`] and runs the statements of
//! [`store`] in the order and transactions the rules need.
//! - [`grpc`]: `catalog.v1.CatalogService`, wire <-> domain only. `grpc`
//!   (mod.rs): one handler per RPC (parse, call `app`, reply);
//!   `grpc::wire`: which wire field is which domain value (and which field a
//!   violation names), money in the configured currency, timestamps.
//! - [`app`]: the use cases. `app` (mod.rs): products, and the stock-change
//!   check under the row lock; `app::reservations`: reserve through the
//!   group-commit lane (`platform::group_commit`: one id per batch, callers
//!   that left skipped), release, commit, and how one batch is decided in
//!   one transaction (claims, replays, the stock ledger).
//! - [`domain`]: every rule as plain types and functions, no I/O and no
//!   sqlx/tonic/proto: `domain::product` (names, descriptions, prices, stock,
//!   room for held units, the version check of conditional writes),
//!   `domain::reservation` (request normalisation, the
//!   all-or-nothing judgement on a stock ledger, replays, stored states),
//!   and the refusals (`domain::Refusal`, `domain::Violation`).
//! - [`store`]: every SQL statement and row mapping, no rule:
//!   `store` (mod.rs: pool, transactions, rows to domain types),
//!   `store::products`, `store::reservations`.
//! - [`error`]: the one error type (a refusal or a fault) and the one mapping
//!   to `tonic::Status` (code, reason, metadata).
//! - [`change_feed`]: which products changed (a trigger's notifications),
//!   streamed to readers that keep copies (`WatchProductChanges`).
//! - [`metrics`]: the catalog's business series.
//! - [`config`]: settings from flags / environment.
//!
//! [`Application::build`] binds its own listeners (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future completes,
//! so tests start the real service in-process. With TLS settings (see
//! `platform::tls`) the gRPC port speaks TLS, mutual when a client CA is given.

pub mod app;
pub mod change_feed;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod store;

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context;
use platform::{
    db::PoolWatch,
    runtime::wait_at_most,
    server::{Listeners, ServiceParts},
};
use proto::catalog::v1::catalog_service_server::CatalogServiceServer;

pub use config::Config;

/// The catalog's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/catalog");

/// A catalog service that is connected to its database and bound to its
/// ports, ready to serve.
pub struct Application {
    listeners: Listeners,
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
        let tls = config.service.tls.load()?;
        // Only `--probe` presents these; checked here too, so that a mistake
        // shows when the service starts rather than as a failing health check.
        config.service.grpc_tls.load()?;
        let platform::db::Database {
            pool,
            release_guard,
        } = platform::db::connect(&config.db_settings(), &MIGRATOR)
            .await
            .context("catalog database")?;
        let listeners =
            Listeners::bind(config.service.listen_addr, config.service.admin_addr).await?;
        Ok(Self {
            listeners,
            store: store::Store::new(pool),
            release_guard,
            tls,
            config,
        })
    }

    /// Serves until `shutdown` completes. Then: health turns NOT_SERVING (so
    /// balancers stop sending), the server stops accepting, in-flight calls
    /// finish (bounded by the configured grace period), the pool closes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (config, store) = (self.config, self.store);
        let mut registry = prometheus_client::registry::Registry::default();
        let hooks = PoolWatch::register(store.pool().clone(), &self.release_guard, &mut registry);
        let catalog_metrics = metrics::CatalogMetrics::register(&mut registry);

        let (catalog, reserve_worker) = app::Catalog::start(store.clone(), catalog_metrics);
        // Change-feed streams never end on their own: they are ended as soon
        // as shutdown starts, so the drain does not wait for them.
        let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            stopping_tx.send_replace(true);
        };
        let (changes, change_feed) =
            change_feed::ChangeFeed::spawn(config.service.database_url.to_string(), stopping);
        let api = grpc::CatalogApi::new(catalog, config.service.currency.clone(), changes)
            .with_max_list_offset(config.service.max_list_offset);
        let parts = ServiceParts {
            listeners: self.listeners,
            service: CatalogServiceServer::new(api),
            registry,
            hooks: Arc::new(hooks),
            tls: self.tls,
        };
        let served = platform::service::serve(
            "catalog-service",
            parts,
            store.pool().clone(),
            &config.service,
            shutdown,
        )
        .await;
        // The server (and with it every handle of the reservations' lane) is
        // gone: the lane answers what is queued, then ends. Past the grace
        // period, none of these is waited for long: `close` waits for
        // connections in use, and a call stuck in the database must not keep
        // the process alive for ever.
        let patience = Duration::from_secs(2);
        wait_at_most(patience, "reservation worker", reserve_worker).await;
        wait_at_most(patience, "change feed", change_feed).await;
        wait_at_most(patience, "database pool close", store.close()).await;
        tracing::info!("catalog-service stopped");
        served
    }
}

platform::grpc_service!(
    Application,
    Config,
    MIGRATOR,
    "catalog-service",
    platform::settings::Defaults {
        database_url: "postgres://postgres@127.0.0.1:5432/catalog",
        listen_addr: "127.0.0.1:50051",
        admin_addr: "127.0.0.1:9101",
    }
);
