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
//! - [`grpc`]: `catalog.v1.CatalogService`: wire types <-> domain calls.
//! - [`error`]: the service's one error type and its mapping to `tonic::Status`.
//!
//! [`Application::build`] binds its own listener (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future completes,
//! so tests start the real service in-process.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod store;

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use proto::catalog::v1::catalog_service_server::CatalogServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use config::Config;

/// The catalog's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/catalog");

/// A catalog service that is connected to its database and bound to its port,
/// ready to serve.
pub struct Application {
    listener: TcpListener,
    store: store::Store,
    config: Config,
}

impl Application {
    /// Connects to the database (creating and migrating it if configured) and
    /// binds the listen address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = proto::db::connect(&config.db_settings(), &MIGRATOR)
            .await
            .context("catalog database")?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        Ok(Self {
            listener,
            store: store::Store::new(pool),
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight
    /// calls finish (bounded by the configured grace period) and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            store,
            config,
        } = self;
        let addr = listener.local_addr()?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<CatalogServiceServer<grpc::CatalogApi>>()
            .await;

        let api = grpc::CatalogApi::new(store.clone(), config.currency.clone());
        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
        let reporter = health_reporter.clone();
        let signal = async move {
            shutdown.await;
            // Fail health checks first, so balancers stop sending new calls.
            reporter
                .set_not_serving::<CatalogServiceServer<grpc::CatalogApi>>()
                .await;
            reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            let _ = drain_started_tx.send(());
            tracing::info!("draining in-flight calls");
        };

        tracing::info!(%addr, "catalog-service listening");
        let server = tonic::transport::Server::builder()
            .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
            .add_service(health_service)
            .add_service(proto::grpc::reflection_v1())
            .add_service(proto::grpc::reflection_v1alpha())
            .add_service(CatalogServiceServer::new(api))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);

        // Once draining starts, give in-flight calls `grace` to finish.
        let deadline = async move {
            if drain_started_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            result = server => result.context("gRPC server failed")?,
            () = deadline => tracing::warn!("shutdown grace period over; abandoning in-flight calls"),
        }
        store.close().await;
        tracing::info!("catalog-service stopped");
        Ok(())
    }
}
