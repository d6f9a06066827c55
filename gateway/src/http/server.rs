//! The HTTP server loop: axum's router on hyper (HTTP/1 and h2c, detected per
//! connection), with what `axum::serve` does not set:
//!
//! - a bound on how long a client may take to send its request headers
//!   (slowloris: a connection that sends nothing, or trickles its head, is
//!   closed after HEADER_READ_TIMEOUT);
//! - a cap on open connections (MAX_CONNECTIONS, both protocols). A
//!   connection accepted past it is closed at once, unread. Leaving it in
//!   the kernel's backlog instead would look to its client like a hang (the
//!   handshake completes, nothing answers) until its own timeout, and would
//!   keep the backlog full for everyone behind it; a close is a clear,
//!   immediate signal to retry elsewhere or later, and costs the gateway an
//!   accept and a close;
//! - an idle timeout (IDLE_CONNECTION_TIMEOUT): a connection with no
//!   request in progress for that long is closed gracefully (GOAWAY on
//!   HTTP/2), so idle clients cannot hold connection slots forever. HTTP/2
//!   keep-alive pings do not count as activity: they show the peer is there,
//!   not that it needs the connection;
//! - HTTP/2 settings: at most HTTP2_MAX_CONCURRENT_STREAMS streams per
//!   connection (advertised; one more is refused with REFUSED_STREAM), and
//!   keep-alive pings (HTTP2_KEEPALIVE_INTERVAL, answered within
//!   HTTP2_KEEPALIVE_TIMEOUT or the connection is closed), which find
//!   peers that vanished without closing;
//! - the drain on shutdown: while draining (from SIGTERM until the drain
//!   delay ends, see `platform::drain`) every HTTP/1 response says
//!   `Connection: close`, so keep-alive clients reconnect, and are balanced
//!   elsewhere, after the answer they are reading rather than on a
//!   connection closed under a request they just sent (an L4 balancer such
//!   as kube-proxy keeps an open connection on its pod however unready);
//!   then the listener closes and every connection is shut down gracefully.
//!
//! Bodies are bounded by the router's request timeout (408), their size
//! limits (413) and the body budget (503), backend calls by their gRPC
//! deadline, so every phase of a request has a limit.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, extract::Request, response::Response};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto::Builder,
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Notify, Semaphore, watch},
};
use tower::Service;

use super::limit::Bounds;

/// How a connection may be used, from the configuration.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    pub http2_max_concurrent_streams: u32,
    /// `None`: no keep-alive pings.
    pub http2_keepalive_interval: Option<Duration>,
    pub http2_keepalive_timeout: Duration,
}

impl ConnectionSettings {
    pub fn new(header_read_timeout: Duration, bounds: &Bounds) -> Self {
        Self {
            header_read_timeout,
            idle_timeout: bounds.idle_connection_timeout,
            max_connections: bounds.max_connections as usize,
            http2_max_concurrent_streams: bounds.http2_max_concurrent_streams,
            http2_keepalive_interval: (!bounds.http2_keepalive_interval.is_zero())
                .then_some(bounds.http2_keepalive_interval),
            http2_keepalive_timeout: bounds.http2_keepalive_timeout,
        }
    }
}

/// Serves `router` on `listener` until `signal` completes, then stops
/// accepting and waits for the open connections to finish their requests
/// (the caller bounds that wait). While `draining`, HTTP/1 responses close
/// their connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    draining: platform::drain::Draining,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    // Each connection holds a receiver of `draining`; `closed()` resolves
    // when the last one is gone.
    let (draining_tx, draining_rx) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .keep_alive_interval(settings.http2_keepalive_interval)
        .keep_alive_timeout(settings.http2_keepalive_timeout);
    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let mut refusals = RefusalLog::default();

    tokio::pin!(signal);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(error) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap: closed at once, never read (see the module header).
            drop(stream);
            refusals.refused(settings.max_connections);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let service = TowerToHyperService::new(Tracked {
            inner: router.clone(),
            activity: activity.clone(),
            draining: draining.clone(),
        });
        let builder = builder.clone();
        let mut draining = draining_rx.clone();
        let header_read_timeout = settings.header_read_timeout;
        let idle_timeout = settings.idle_timeout;
        tokio::spawn(async move {
            // Held for as long as the connection is open.
            let _slot = slot;
            // hyper's header timer starts once it reads a request head, and
            // the HTTP/1-or-2 detection before that waits for bytes without
            // a limit: a connection that sends nothing is dropped here.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_read_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        // Clients that go away, or are cut for being too slow.
                        tracing::debug!(%error, "connection ended with an error");
                    }
                }
                // `draining` only ever changes to true (or its sender goes).
                _ = draining.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
                () = activity.idle_for(idle_timeout) => {
                    // No request in progress: nothing is cut. HTTP/1 is
                    // closed; HTTP/2 gets a GOAWAY and a PING, and closes when
                    // the client acknowledges the PING. A client that never
                    // does would keep it open, so it gets one more idle
                    // period, then the connection is dropped.
                    tracing::debug!("closing an idle connection");
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(idle_timeout, connection).await;
                }
            }
            drop(draining);
        });
    }
    drop(listener);
    let _ = draining_tx.send(true);
    drop(draining_rx);
    draining_tx.closed().await;
    Ok(())
}

/// Logs refused connections at most once a second, with how many there were:
/// a line per refusal would flood the log exactly when the process is
/// busiest.
#[derive(Debug, Default)]
struct RefusalLog {
    since_last_line: u64,
    last_line: Option<Instant>,
}

impl RefusalLog {
    fn refused(&mut self, cap: usize) {
        self.since_last_line += 1;
        if self
            .last_line
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(
                refused = self.since_last_line,
                max_connections = cap,
                "at MAX_CONNECTIONS: closing new connections at once"
            );
            self.since_last_line = 0;
            self.last_line = Some(Instant::now());
        }
    }
}

/// What one connection is doing: requests in progress, and since when it
/// has had none.
#[derive(Debug)]
struct Activity {
    in_progress: AtomicUsize,
    /// When the last request ended (or the connection opened).
    quiet_since: Mutex<Instant>,
    /// Woken when the last request in progress ends.
    quiet: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            in_progress: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
            quiet: Notify::new(),
        })
    }

    fn begin(self: &Arc<Self>) -> InProgress {
        self.in_progress.fetch_add(1, Ordering::AcqRel);
        InProgress(self.clone())
    }

    /// Resolves once no request has been in progress for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            // Registered before checking, so an end in between is not missed.
            let quiet = self.quiet.notified();
            if self.in_progress.load(Ordering::Acquire) > 0 {
                quiet.await;
                continue;
            }
            let since = *self
                .quiet_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let deadline = since + timeout;
            if Instant::now() >= deadline {
                // A request may have begun just now; check once more.
                if self.in_progress.load(Ordering::Acquire) == 0 {
                    return;
                }
                continue;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// One request in progress on a connection; ends when dropped.
struct InProgress(Arc<Activity>);

impl Drop for InProgress {
    fn drop(&mut self) {
        *self
            .0
            .quiet_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        if self.0.in_progress.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.quiet.notify_waiters();
        }
    }
}

/// The router, counting the requests in progress on its connection. A
/// request counts until its response head is ready; a response body still
/// streaming after that is safe from the idle close, which is graceful.
#[derive(Clone)]
struct Tracked {
    inner: Router,
    activity: Arc<Activity>,
    draining: platform::drain::Draining,
}

impl<B> Service<Request<B>> for Tracked
where
    Router: Service<Request<B>, Response = Response, Error = Infallible>,
    <Router as Service<Request<B>>>::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as Service<Request<B>>>::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_progress = self.activity.begin();
        let http1 = request.version() < http::Version::HTTP_2;
        let draining = self.draining.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await;
            // hyper closes an HTTP/1 connection after a response that says
            // so; HTTP/2 connections get their GOAWAY when the listener
            // closes (a client reopens for new requests, race-free).
            if http1
                && draining.is_draining()
                && let Ok(response) = response.as_mut()
            {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            drop(in_progress);
            response
        })
    }
}
