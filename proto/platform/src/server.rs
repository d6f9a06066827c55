//! How both gRPC services serve, in one place: the service beside health
//! (following a dependency, the database) and reflection, per-RPC metrics and
//! a span per call, the admin HTTP server (`/metrics`, `/health`, `/ready`),
//! and the shutdown order operators rely on:
//!
//! 1. `shutdown` completes (SIGTERM / Ctrl-C in the binaries);
//! 2. health turns NOT_SERVING and `/ready` 503, so balancers stop sending;
//!    calls are still served normally for the drain delay (`DRAIN_DELAY`,
//!    see `crate::drain`), while the news reaches every balancer;
//! 3. the server stops accepting and in-flight calls finish, for at most
//!    `grace`;
//! 4. the admin server stops; the caller then closes its pool.
//!
//! With [`GrpcServe::tls`] the gRPC port speaks only TLS (mutual, when the
//! configuration names a client CA: a caller without a certificate from it is
//! refused at the handshake, before any RPC). The admin port stays plaintext
//! HTTP: it serves metrics and probes, never an RPC.
//!
//! Every call runs to its end ([`RunToCompletionLayer`]): a caller that goes
//! away or a deadline that passes stops the *answer*, never the work half-way,
//! so no handler is ever dropped inside a transaction, a saga step or a
//! delivery.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use prometheus_client::registry::Registry;
use tokio::{net::TcpListener, sync::watch};
use tonic::{body::Body, server::NamedService, transport::server::TcpIncoming};
use tower::Service;

use crate::metrics::{AdminHooks, GrpcServerMetrics};

/// The two ports a gRPC service binds when it is built (port 0 picks a free
/// one, as tests do): gRPC, and admin HTTP (`/metrics`, `/health`, `/ready`).
pub struct Listeners {
    pub grpc: TcpListener,
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds both; an error names the address that could not be bound.
    pub async fn bind(grpc: SocketAddr, admin: SocketAddr) -> std::io::Result<Self> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|error| {
                std::io::Error::new(
                    error.kind(),
                    format!("cannot listen on {addr} ({what}): {error}"),
                )
            })
        };
        Ok(Self {
            grpc: bind(grpc, "gRPC").await?,
            admin: bind(admin, "admin").await?,
        })
    }

    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// The admin HTTP address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }
}

/// What a service brings to [`serve`]: its ports, its server, its series and
/// admin hooks, its TLS.
pub struct ServiceParts<S> {
    pub listeners: Listeners,
    /// The service's own server (e.g. `CatalogServiceServer<..>`).
    pub service: S,
    /// The process's registry, with the service's own series registered; the
    /// per-RPC series are added here.
    pub registry: Registry,
    pub hooks: Arc<dyn AdminHooks>,
    /// TLS on the gRPC port (see `crate::tls`); `None`: plaintext.
    pub tls: Option<crate::tls::ServerTls>,
}

/// Everything [`serve`] needs besides the dependency check and the signal.
pub struct GrpcServe<S> {
    /// Used in log lines, e.g. `catalog-service`.
    pub name: &'static str,
    pub parts: ServiceParts<S>,
    /// How often `dependency_up` is asked.
    pub health_interval: Duration,
    /// After `shutdown`, how long to keep serving while NOT_SERVING (see
    /// `crate::drain`), before the server stops accepting.
    pub drain_delay: Duration,
    /// How long in-flight calls may run once the server stops accepting.
    pub grace: Duration,
}

/// Serves until `shutdown` completes and the drain is over (see the module
/// header). `dependency_up` decides SERVING / NOT_SERVING while running.
pub async fn serve<S, C, Fut>(
    serve: GrpcServe<S>,
    dependency_up: C,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error>
where
    S: Service<http::Request<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Response: axum::response::IntoResponse,
    S::Future: Send + 'static,
    C: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    let GrpcServe {
        name,
        parts:
            ServiceParts {
                listeners:
                    Listeners {
                        grpc: listener,
                        admin: admin_listener,
                    },
                service,
                mut registry,
                hooks,
                tls,
            },
        health_interval,
        drain_delay,
        grace,
    } = serve;
    // First, before anything is started: the only step that can fail (and
    // does not, for a configuration `crate::tls` loaded).
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        builder = builder.tls_config(tls.config())?;
    }
    let rpc_metrics = GrpcServerMetrics::register(&mut registry);

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<S>().await;
    let health_follower = tokio::spawn(crate::grpc::follow_dependency::<S, _, _>(
        health_reporter.clone(),
        health_interval,
        dependency_up,
    ));

    // `drain_*`: not ready (raised at once on `shutdown`); `stop_*`: the
    // server stops accepting (raised after the drain delay); `admin_stop_*`:
    // the admin server goes, last, so `/ready` says 503 and `/metrics` can be
    // scraped for the whole drain.
    let (drain_tx, drain_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (admin_stop_tx, admin_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let admin = axum::serve(
        admin_listener,
        crate::metrics::admin_router(
            registry,
            Arc::new(DrainAware {
                inner: hooks,
                draining: drain_rx.clone(),
            }),
        ),
    )
    .with_graceful_shutdown(async move {
        let _ = admin_stop_rx.await;
    });
    let admin_task = tokio::spawn(async move {
        if let Err(error) = admin.await {
            tracing::error!(%error, "admin server failed");
        }
    });

    let signal = async move {
        shutdown.await;
        // Fail health checks first, so balancers stop sending new calls.
        health_follower.abort();
        health_reporter.set_not_serving::<S>().await;
        health_reporter
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = drain_tx.send(true);
        // Then keep serving normally for the drain delay: whoever balances
        // over this instance learns it is going only some time after it is
        // told (see `crate::drain`).
        if !drain_delay.is_zero() {
            tracing::info!(delay = ?drain_delay, "NOT_SERVING; still serving until the drain delay ends");
            tokio::time::sleep(drain_delay).await;
        }
        let _ = stop_tx.send(true);
        tracing::info!("draining in-flight calls");
    };

    if let Ok(addr) = listener.local_addr() {
        let transport = match &tls {
            None => "plaintext",
            Some(tls) if tls.requires_client_certificate() => "mutual TLS",
            Some(_) => "TLS, client certificates not checked",
        };
        tracing::info!(%addr, transport, "{name} listening");
    }
    let server = builder
        .trace_fn(crate::telemetry::grpc_server_span)
        .layer(rpc_metrics.layer())
        // The call's gRPC code on its span (`rpc.grpc.status_code`).
        .layer(crate::telemetry::GrpcStatusLayer)
        .layer(RunToCompletionLayer)
        .add_service(health_service)
        .add_service(crate::grpc::reflection_v1())
        .add_service(crate::grpc::reflection_v1alpha())
        .add_service(service)
        // TCP_NODELAY on every accepted connection: gRPC answers are small
        // writes, and Nagle holding one back until the previous one is
        // acknowledged (delayed ACK: 40 ms) showed as a 40 ms p99 step.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal);

    // Once the server stops accepting, in-flight calls get `grace` to finish.
    let deadline = async move {
        drained(stop_rx).await;
        tokio::time::sleep(grace).await;
    };
    let served = tokio::select! {
        result = server => result,
        () = deadline => {
            tracing::warn!("shutdown grace period over; abandoning in-flight calls");
            Ok(())
        }
    };
    let _ = admin_stop_tx.send(());
    let _ = admin_task.await;
    served
}

/// Runs each call's handler in a task of its own, spawned when the call
/// arrives. The server (and tonic's `grpc-timeout` deadline) only ever drops
/// the wait for the answer: the handler, with whatever transaction, lock or
/// saga step it holds, goes on to its end and is answered into the void.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunToCompletionLayer;

impl<S> tower::Layer<S> for RunToCompletionLayer {
    type Service = RunToCompletion<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RunToCompletion { inner }
    }
}

/// See [`RunToCompletionLayer`].
#[derive(Debug, Clone)]
pub struct RunToCompletion<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for RunToCompletion<S>
where
    S: Service<http::Request<B>>,
    S::Future: Send + 'static,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let caller = Caller::default();
        request.extensions_mut().insert(caller.clone());
        let handler = self.inner.call(request);
        Box::pin(async move {
            let waiting = Waiting(Some(caller));
            // Spawned at the first poll, which the server makes inside the
            // call's span, so the handler's spans (and the trace context it
            // passes on) stay in the caller's trace. Dropped before that, the
            // handler has not started anything.
            let answer = crate::runtime::run_to_completion(handler).await;
            waiting.answered();
            answer
        })
    }
}

/// Whether the caller of a gRPC call still waits for its answer (in the
/// request's extensions). The handler runs to its end either way; work it has
/// not started yet, such as a reservation still queued for its batch, may be
/// skipped once the caller has left.
#[derive(Debug, Clone, Default)]
pub struct Caller(Arc<std::sync::atomic::AtomicBool>);

impl Caller {
    /// True once the server stopped waiting for the answer (the client went
    /// away or its deadline passed).
    pub fn has_left(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// Marks the caller gone if dropped before the answer came.
struct Waiting(Option<Caller>);

impl Waiting {
    fn answered(mut self) {
        self.0 = None;
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(caller) = self.0.take() {
            caller.0.store(true, std::sync::atomic::Ordering::Release);
        }
    }
}

/// Completes once draining has started (never, if the sender is gone first).
async fn drained(mut draining: watch::Receiver<bool>) {
    if draining.wait_for(|draining| *draining).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Not ready while draining, whatever the service's own hooks say.
struct DrainAware {
    inner: Arc<dyn AdminHooks>,
    draining: watch::Receiver<bool>,
}

impl AdminHooks for DrainAware {
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.inner.refresh()
    }

    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>> {
        Box::pin(async move { !*self.draining.borrow() && self.inner.ready().await })
    }
}
