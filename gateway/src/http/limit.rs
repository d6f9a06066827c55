//! Per-process bounds on what clients can make the gateway hold.
//!
//! - Load shedding: a bound on requests in flight. Past it a request is
//!   answered at once with 503 and `Retry-After` (problem details) instead
//!   of queueing without bound, so an overloaded gateway stays fast to
//!   refuse, keeps its memory flat, and lets the load balancer and clients
//!   retry elsewhere or later. The probes and the metrics endpoint are never
//!   refused: a busy gateway is alive (a refused liveness probe would get it
//!   restarted, losing every request in flight), and its metrics matter most
//!   when it is busy.
//! - The body budget ([`BodyBudget`]): a bound on the bytes of request bodies
//!   being read at once, whatever the number of requests or connections.
//! - [`Bounds`]: the settings of these and of the connection-level bounds
//!   that [`super::server`] enforces (connections, HTTP/2 streams, idle
//!   connections, keep-alive pings), plus the product cache's size in bytes.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use clap::builder::TypedValueParser as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::metrics::Metrics;

/// Paths that are never shed (`/metrics` is on the admin port, which is
/// never shed either).
const EXEMPT: [&str; 2] = ["/health", "/ready"];

/// The permits of one process; cheap to clone (shared).
#[derive(Clone, Debug)]
pub struct InFlight {
    permits: Arc<Semaphore>,
    metrics: Metrics,
}

impl InFlight {
    pub fn new(max: usize, metrics: Metrics) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            metrics,
        }
    }
}

/// Layer: holds a permit while the request is served (until the response
/// head is ready), or refuses at once when none is free.
pub async fn shed(State(limit): State<InFlight>, request: Request, next: Next) -> Response {
    if EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    match limit.permits.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            limit.metrics.request_shed();
            ApiError::Overloaded.into_response()
        }
    }
}

/// The bytes of request bodies one process reads at once (`BODY_BUDGET_BYTES`).
///
/// Each body is charged before its first byte is read, for as much as it may
/// take: its `Content-Length`, or its route's body limit when it has none (a
/// chunked HTTP/1 body, an HTTP/2 stream without the header), and never more
/// than that limit. The charge is returned as soon as the body has been read
/// (or its reading failed). So however many uploads are in progress and
/// however slowly they trickle, the bodies buffered at once never exceed the
/// budget, and memory stays bounded without lowering the per-body limit.
///
/// Past the budget a request is refused at once with 503 and `Retry-After`
/// (counted with the shed requests), not made to wait: the budget is only
/// ever exhausted by many uploads in progress at once, which take seconds
/// (slow clients, by definition), so a short wait would rarely succeed and a
/// long one would hold yet more connections and tasks on behalf of whoever
/// is filling the budget. Refusing costs nothing and tells a well-behaved
/// client when to come back.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    bytes: Arc<Semaphore>,
    total: usize,
    metrics: Metrics,
}

/// A body's charge against the budget; returned when dropped.
#[derive(Debug)]
pub struct BodyCharge {
    _bytes: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `total` bytes (at least 1).
    pub fn new(total: usize, metrics: Metrics) -> Self {
        let total = total.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            metrics,
        }
    }

    /// Charges `bytes` (the most a body may take), or refuses at once. A
    /// body larger than the whole budget is charged the whole budget: it is
    /// read alone. An empty body is never refused.
    pub fn charge(&self, bytes: u64) -> Result<BodyCharge, ApiError> {
        if bytes == 0 {
            return Ok(BodyCharge { _bytes: None });
        }
        let bytes = usize::try_from(bytes)
            .unwrap_or(usize::MAX)
            .min(self.total)
            .min(u32::MAX as usize) as u32;
        match self.bytes.clone().try_acquire_many_owned(bytes) {
            Ok(permit) => Ok(BodyCharge {
                _bytes: Some(permit),
            }),
            Err(_) => {
                self.metrics.request_shed();
                Err(ApiError::Overloaded)
            }
        }
    }

    /// Bytes not charged right now.
    pub fn available(&self) -> usize {
        self.bytes.available_permits()
    }
}

/// Resource bounds of one gateway process; flattened into
/// [`crate::Config`]. The HTTP/2 and connection settings are applied by
/// [`super::server`], the body budget by [`super::extract`], the cache size
/// by [`crate::upstream::product_cache`].
#[derive(Clone, Debug, clap::Args)]
pub struct Bounds {
    /// Sum of the request bodies this process reads at once (bytes): each
    /// body is charged its Content-Length, or its route's body limit without
    /// one, while it is read. Past it: 503 with `Retry-After`, at once.
    #[arg(long, env = "BODY_BUDGET_BYTES", default_value_t = 32 * 1024 * 1024,
          value_parser = positive_u64().map(|n| n as usize))]
    pub body_budget_bytes: usize,

    /// Most connections (HTTP/1 and HTTP/2 alike) this process keeps open;
    /// one accepted past it is closed at once, without being read.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096,
          value_parser = positive_u32())]
    pub max_connections: u32,

    /// A connection with no request in progress for this long is closed
    /// gracefully (HTTP/2: GOAWAY). HTTP/1 connections are also closed after
    /// HEADER_READ_TIMEOUT without a request head. (Was
    /// IDLE_CONNECTION_TIMEOUT_SECS.)
    #[arg(long, env = "IDLE_CONNECTION_TIMEOUT", default_value = "60s",
          value_parser = crate::config::parse_positive_duration)]
    pub idle_connection_timeout: Duration,

    /// Streams (requests) one HTTP/2 connection may have open at once,
    /// advertised in SETTINGS; one more is refused (RST_STREAM REFUSED_STREAM).
    #[arg(long, env = "HTTP2_MAX_CONCURRENT_STREAMS", default_value_t = 100,
          value_parser = positive_u32())]
    pub http2_max_concurrent_streams: u32,

    /// After this long without a frame from the client, an HTTP/2
    /// connection is pinged; `0s`: never. Finds peers that vanished without a
    /// FIN or RST (a NAT or a load balancer that dropped the flow). (Was
    /// HTTP2_KEEPALIVE_INTERVAL_SECS.)
    #[arg(long, env = "HTTP2_KEEPALIVE_INTERVAL", default_value = "20s",
          value_parser = platform::settings::parse_duration)]
    pub http2_keepalive_interval: Duration,

    /// How long a keep-alive ping may go unanswered before the connection is
    /// closed. (Was HTTP2_KEEPALIVE_TIMEOUT_SECS.)
    #[arg(long, env = "HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s",
          value_parser = crate::config::parse_positive_duration)]
    pub http2_keepalive_timeout: Duration,

    /// Bytes of response bodies the product read cache keeps at most, over
    /// all its entries (each of its shards keeps its share); on top of the
    /// PRODUCT_CACHE_CAPACITY bound on entries.
    #[arg(long, env = "PRODUCT_CACHE_MAX_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub product_cache_max_bytes: usize,
}

/// A count that must be at least 1.
fn positive_u32() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

/// A size or duration that must be at least 1.
fn positive_u64() -> clap::builder::RangedU64ValueParser<u64> {
    clap::value_parser!(u64).range(1..)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_total_and_recovers_when_charges_end() {
        let budget = BodyBudget::new(100, Metrics::new());
        let a = budget.charge(60).unwrap();
        assert!(matches!(budget.charge(50), Err(ApiError::Overloaded)));
        let b = budget.charge(40).unwrap();
        assert_eq!(budget.available(), 0);
        // Empty bodies are free.
        let _empty = budget.charge(0).unwrap();
        drop(a);
        assert_eq!(budget.available(), 60);
        drop(b);
        // A body larger than the budget is charged the whole budget.
        let whole = budget.charge(1 << 40).unwrap();
        assert_eq!(budget.available(), 0);
        drop(whole);
        assert_eq!(budget.available(), 100);
    }

    #[test]
    fn defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            bounds: Bounds,
        }
        let bounds = Wrapper::parse_from(["gateway"]).bounds;
        assert_eq!(bounds.body_budget_bytes, 32 * 1024 * 1024);
        assert_eq!(bounds.max_connections, 4096);
        assert_eq!(bounds.idle_connection_timeout, Duration::from_secs(60));
        assert_eq!(bounds.http2_max_concurrent_streams, 100);
        assert_eq!(bounds.http2_keepalive_interval, Duration::from_secs(20));
        assert_eq!(bounds.http2_keepalive_timeout, Duration::from_secs(10));
        assert_eq!(bounds.product_cache_max_bytes, 16 * 1024 * 1024);
    }
}
