//! # order-service
//!
//! Owns orders: their lines, the order status and payment status state
//! machines, and the saga that takes stock from the catalog service. The
//! saga's state lives in the orders database and status changes go through a
//! transactional outbox, so no crash or network failure leaks or
//! double-restores stock.
//!
//! ## Layout
//! - [`config`]: settings from flags / environment.
//! - [`domain`]: the rules as plain types and functions (both state machines,
//!   CreateOrder validation, the idempotency request hash, retry backoff); no
//!   I/O, unit-tested.
//! - [`store`]: every SQL statement, and the transactions that hold them.
//! - [`saga`]: CreateOrder: reserve at the catalog, confirm or reject.
//! - [`outbox`]: delivery of the inventory calls that status changes imply.
//! - [`reconciler`]: the background loop that finishes abandoned sagas,
//!   re-sends undelivered outbox rows and prunes old idempotency keys.
//! - [`catalog_client`]: the one long-lived channel to the catalog, with
//!   deadlines.
//! - [`grpc`]: `order.v1.OrderService`: wire types <-> domain calls.
//! - [`error`]: the service's one error type and its mapping to `tonic::Status`.
//!
//! [`Application::build`] binds its own listener (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future completes,
//! so tests start the real service in-process. [`Application::reconciler`]
//! hands out the reconciler, so tests can run a pass when they choose.

pub mod catalog_client;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod outbox;
pub mod reconciler;
pub mod saga;
pub mod store;

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use proto::order::v1::order_service_server::OrderServiceServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use config::Config;
pub use reconciler::{ReconcileReport, Reconciler};

/// The order service's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/order");

/// An order service that is connected to its database, holds its catalog
/// channel and is bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    store: store::Store,
    api: grpc::OrderApi,
    reconciler: Reconciler,
    config: Config,
}

impl Application {
    /// Connects to the database (creating and migrating it if configured),
    /// builds the catalog channel (connected lazily: the catalog may be down)
    /// and binds the listen address.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = proto::db::connect(&config.db_settings(), &MIGRATOR)
            .await
            .context("orders database")?;
        let catalog = catalog_client::CatalogClient::new(
            &config.catalog_url,
            config.catalog_connect_timeout(),
            config.catalog_timeout(),
            config.currency.clone(),
        )?;
        let listener = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
        let store = store::Store::new(pool);
        let relay = outbox::Relay::new(store.clone(), catalog.clone(), config.outbox_retry_base());
        let saga = saga::Saga::new(store.clone(), catalog.clone());
        let reconciler = Reconciler::new(
            store.clone(),
            catalog,
            relay.clone(),
            config.reserving_grace(),
        );
        let api = grpc::OrderApi::new(store.clone(), saga, relay, config.currency.clone());
        Ok(Self {
            listener,
            store,
            api,
            reconciler,
            config,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The reconciler this application runs in the background.
    pub fn reconciler(&self) -> Reconciler {
        self.reconciler.clone()
    }

    /// Serves (and runs the reconciler) until `shutdown` completes, then stops
    /// accepting, lets in-flight calls finish (bounded by the configured grace
    /// period), stops the reconciler and closes the pool.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            store,
            api,
            reconciler,
            config,
        } = self;
        let addr = listener.local_addr()?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<OrderServiceServer<grpc::OrderApi>>()
            .await;

        let (stop_reconciler, reconciler_stopped) = tokio::sync::oneshot::channel();
        let reconciler_task =
            tokio::spawn(reconciler.run(config.reconcile_interval(), reconciler_stopped));

        let grace = Duration::from_secs(config.shutdown_grace_secs);
        let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
        let reporter = health_reporter.clone();
        let signal = async move {
            shutdown.await;
            // Fail health checks first, so balancers stop sending new calls.
            reporter
                .set_not_serving::<OrderServiceServer<grpc::OrderApi>>()
                .await;
            reporter
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            let _ = drain_started_tx.send(());
            tracing::info!("draining in-flight calls");
        };

        tracing::info!(%addr, "order-service listening");
        let server = tonic::transport::Server::builder()
            .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
            .add_service(health_service)
            .add_service(proto::grpc::reflection_v1())
            .add_service(proto::grpc::reflection_v1alpha())
            .add_service(OrderServiceServer::new(api))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), signal);

        // Once draining starts, give in-flight calls `grace` to finish.
        let deadline = async move {
            if drain_started_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let served = tokio::select! {
            result = server => result.context("gRPC server failed"),
            () = deadline => {
                tracing::warn!("shutdown grace period over; abandoning in-flight calls");
                Ok(())
            }
        };
        // Whatever the reconciler was doing is safe to cut: it resumes on the
        // next start (or on another replica).
        let _ = stop_reconciler.send(());
        if let Err(error) = reconciler_task.await {
            tracing::error!(%error, "reconciler task failed");
        }
        store.close().await;
        tracing::info!("order-service stopped");
        served
    }
}
