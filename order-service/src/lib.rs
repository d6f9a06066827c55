//! # order-service
//!
//! Owns orders: their lines, the order status and payment status state
//! machines, and the saga that takes stock from the catalog service. The
//! saga's state lives in the orders database and status changes go through a
//! transactional outbox, so no crash or network failure leaks or
//! double-restores stock.
//!
//! ## Layout
//! One direction of dependency: the gRPC edge calls the application, which
//! applies the domain's rules to the store's primitives.
//! - [`grpc`]: `order.v1.OrderService`: request validation of wire fields,
//!   wire <-> domain mapping (statuses, orders, money), a call into [`app`].
//! - [`error`]: the service's one error type, [`error::OrderError`], and its
//!   mapping to `tonic::Status`; [`error::refusal`]: a stock refusal <->
//!   `tonic::Status` (code, message, `ErrorInfo` / `BadRequest` details).
//! - [`app`]: the use cases: opens and commits transactions, asks the
//!   domain, delivers what a commit implies. [`app::update_status`],
//!   [`app::apply_payment`], the CreateOrder saga ([`app::saga`]), outbox
//!   delivery ([`app::outbox`]) and the background [`app::reconciler`].
//! - [`domain`]: the rules as plain types and functions (both state
//!   machines, which orders take payments, CreateOrder validation, the
//!   idempotency request hash, what a reused payment event id means, stock
//!   refusals, retry backoff); no I/O, no wire or storage types, unit-tested.
//! - [`store`]: every SQL statement and row mapping: reads, single-statement
//!   writes, the [`store::Tx`] primitives the application composes, the
//!   group-commit lanes of the saga's writes.
//! - [`catalog_client`]: the one long-lived channel to the catalog, with
//!   deadlines; catalog wire types <-> domain (reserved lines, refusals).
//! - [`metrics`]: the service's business series (sagas, outbox, reconciler,
//!   expiry, the event log).
//! - [`config`]: settings from flags / environment.
//!
//! [`Application::build`] binds its own listeners (port 0 in tests) and
//! [`Application::run_until`] serves until the given shutdown future completes,
//! so tests start the real service in-process. [`Application::reconciler`]
//! hands out the reconciler, so tests can run a pass when they choose.
//! With TLS settings (see `platform::tls`) the gRPC port speaks TLS, mutual when
//! a client CA is given, and the catalog channel is TLS with this service's
//! client certificate.

pub mod app;
pub mod catalog_client;
pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod store;

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anyhow::Context;
use platform::{
    db::PoolWatch, metrics::AdminHooks, runtime::wait_at_most, server::Listeners,
    server::ServiceParts,
};
use proto::order::v1::order_service_server::OrderServiceServer;

pub use app::reconciler::{ReconcileReport, Reconciler};
pub use config::Config;

/// The order service's migrations, embedded in the binary.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/order");

/// An order service that is connected to its database, holds its catalog
/// channel and is bound to its ports, ready to serve.
pub struct Application {
    listeners: Listeners,
    store: store::Store,
    /// Counts connections caught coming back inside a transaction.
    release_guard: platform::db::ReleaseGuard,
    api: grpc::OrderApi,
    reconciler: Reconciler,
    /// The order event log: its sequencer runs beside the server.
    events: app::events::EventLog,
    metrics: metrics::OrderMetrics,
    /// TLS on the gRPC port, loaded from the configured files.
    tls: Option<platform::tls::ServerTls>,
    config: Config,
}

impl Application {
    /// Connects to the database (creating and migrating it if configured),
    /// builds the catalog channel (connected lazily: the catalog may be down)
    /// and binds the listen and admin addresses.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        // TLS files first: a bad setting stops the start before anything
        // else is done, with a message naming it.
        let tls = config.service.tls.load()?;
        let catalog_tls = config.service.grpc_tls.load()?;
        let platform::db::Database {
            pool,
            release_guard,
        } = platform::db::connect(&config.db_settings(), &MIGRATOR)
            .await
            .context("orders database")?;
        let catalog = catalog_client::CatalogClient::new(
            &config.catalog_url,
            config.grpc_balance,
            &platform::balance::ChannelSettings {
                connect_timeout: config.grpc_connect_timeout,
                refresh_interval: config.grpc_refresh_interval.max(Duration::from_millis(10)),
                tls: catalog_tls,
            },
            config.grpc_timeout,
            config.service.currency.clone(),
        )
        .await?;
        let listeners =
            Listeners::bind(config.service.listen_addr, config.service.admin_addr).await?;
        let store = store::Store::new(pool);
        let metrics = metrics::OrderMetrics::default();
        let relay = app::outbox::Relay::new(
            store.clone(),
            catalog.clone(),
            config.outbox_retry_base,
            metrics.clone(),
        );
        let saga = app::saga::Saga::new(
            store.clone(),
            catalog.clone(),
            relay.clone(),
            metrics.clone(),
        );
        let reconciler = Reconciler::new(
            store.clone(),
            relay.clone(),
            config.reserving_grace,
            metrics.clone(),
        )
        .with_payment_event_retention(config.payment_event_retention)
        .with_payment_timeout(config.pending_payment_timeout)
        .with_order_event_retention(config.order_event_retention);
        let events = app::events::EventLog::new(store.clone(), metrics.clone());
        let orders = app::Orders::new(store.clone(), saga, relay, events.clone());
        let api = grpc::OrderApi::new(orders, config.service.currency.clone()).with_bounds(
            grpc::Bounds {
                max_order_lines: config.max_order_lines as usize,
                max_list_offset: config.service.max_list_offset,
            },
        );
        Ok(Self {
            listeners,
            store,
            release_guard,
            api,
            reconciler,
            events,
            metrics,
            tls,
            config,
        })
    }

    /// The reconciler this application runs in the background.
    pub fn reconciler(&self) -> Reconciler {
        self.reconciler.clone()
    }

    /// Serves (and runs the reconciler) until `shutdown` completes. Then:
    /// health turns NOT_SERVING (so balancers stop sending), the server stops
    /// accepting, in-flight calls finish (bounded by the configured grace
    /// period), the reconciler stops, the pool closes.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let config = self.config;
        let store = self.store;
        let mut registry = prometheus_client::registry::Registry::default();
        let pool = PoolWatch::register(store.pool().clone(), &self.release_guard, &mut registry);
        self.metrics.register(&mut registry);
        let hooks = Hooks {
            pool,
            store: store.clone(),
            metrics: self.metrics,
        };

        let (stop_reconciler, reconciler_stopping) = tokio::sync::watch::channel(false);
        let reconciler_task = tokio::spawn(
            self.reconciler
                .run(config.reconcile_interval(), reconciler_stopping),
        );
        let sequencer_task = tokio::spawn(self.events.clone().run_sequencer());
        // Event streams never end on their own: end them as shutdown starts,
        // so the drain does not wait for them (consumers resume elsewhere).
        let events = self.events;
        let shutdown = {
            let events = events.clone();
            async move {
                shutdown.await;
                events.stop();
            }
        };

        // Health follows the database only: reads and status changes work
        // without the catalog, and creates answer UNAVAILABLE on their own.
        let parts = ServiceParts {
            listeners: self.listeners,
            service: OrderServiceServer::new(self.api),
            registry,
            hooks: Arc::new(hooks),
            tls: self.tls,
        };
        let served = platform::service::serve(
            "order-service",
            parts,
            store.pool().clone(),
            &config.service,
            shutdown,
        )
        .await;
        // The reconciler finishes the step under way and skips the rest of its
        // pass: it resumes on the next start (or on another replica).
        stop_reconciler.send_replace(true);
        events.stop();
        if let Err(error) = reconciler_task.await {
            tracing::error!(%error, "reconciler task failed");
        }
        if let Err(error) = sequencer_task.await {
            tracing::error!(%error, "order event sequencer task failed");
        }
        // `close` waits for connections in use; past the grace period a call
        // stuck in the database must not keep the process alive for ever.
        wait_at_most(Duration::from_secs(2), "database pool close", store.close()).await;
        tracing::info!("order-service stopped");
        served
    }
}

/// What the admin server asks of the order service.
struct Hooks {
    pool: PoolWatch,
    store: store::Store,
    metrics: metrics::OrderMetrics,
}

impl AdminHooks for Hooks {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            self.pool.refresh();
            if let Ok((backlog, oldest_age)) = self.store.outbox_backlog().await {
                self.metrics.outbox_backlog.set(backlog);
                self.metrics.outbox_oldest_age_seconds.set(oldest_age);
            }
        })
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(self.pool.ready())
    }
}

platform::grpc_service!(
    Application,
    Config,
    MIGRATOR,
    "order-service",
    platform::settings::Defaults {
        database_url: "postgres://postgres@127.0.0.1:5432/orders",
        listen_addr: "127.0.0.1:50052",
        admin_addr: "127.0.0.1:9102",
    },
    renamed = config::RENAMED
);
