//! Load shedding: a per-process bound on requests in flight. Past it a
//! request is answered at once with 503 and `Retry-After` (problem details)
//! instead of queueing without bound, so an overloaded gateway stays fast to
//! refuse, keeps its memory flat, and lets the load balancer and clients
//! retry elsewhere or later.
//!
//! The probes and the metrics endpoint are never refused: a busy gateway is
//! alive (a refused liveness probe would get it restarted, losing every
//! request in flight), and its metrics matter most when it is busy.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tokio::sync::Semaphore;

use crate::{error::ApiError, metrics::Metrics};

/// Paths that are never shed.
const EXEMPT: [&str; 3] = ["/health", "/ready", "/metrics"];

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
