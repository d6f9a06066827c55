//! The HTTP side of the gateway: the application router (the routes of
//! [`crate::routes::api`], the docs, the fallbacks) and the layers around it
//! (request ids, tracing, metrics, problem details for every error, load
//! shedding, the request timeout, access control), plus what those are made
//! of:
//!
//! - [`error`]: the one error type and format (problem details);
//! - [`extract`]: extractors whose refusals are problem details;
//! - [`limit`]: load shedding, the body budget, the resource-bound settings;
//! - [`openapi`]: `/openapi.json` and `/docs` (`/redoc` is in
//!   [`crate::routes::meta`], with its vendored script);
//! - [`preconditions`]: entity tags, `If-Match` and `If-None-Match`;
//! - [`problems`]: the problem types (codes, `type` URIs, their documentation);
//! - [`registry`]: how a route is registered once, with who may call it;
//! - [`server`]: the connection loop (timeouts, caps, HTTP/2, drain).
//! - [`trace`]: each request's span, by the OpenTelemetry HTTP conventions.

pub mod error;
pub mod extract;
pub mod limit;
pub mod openapi;
pub mod preconditions;
pub mod problems;
pub mod registry;
pub mod server;
pub mod trace;

// Router-level tests with the backends down (they had fallen out of the
// build when the module moved here).
#[cfg(test)]
mod tests;

use std::time::Duration;

use axum::{
    Extension, Router,
    extract::{DefaultBodyLimit, FromRef},
    http::{HeaderName, StatusCode, header},
    middleware,
    response::Response,
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use self::{
    error::{ApiError, PROBLEM_JSON, Problem, problem_response},
    limit::InFlight,
    problems::Kind,
};
use crate::{
    config::{Config, WriteAccess},
    metrics::{self, Metrics},
    security::{
        access::{self, Guard},
        signature::Verifier,
    },
    upstream::{Backends, product_cache::ProductCache},
};

/// What every handler shares; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub backends: Backends,
    /// `GET /api/products/{id}` from memory while the change feed is live.
    pub products: ProductCache,
    pub verifier: Verifier,
    /// The platform's single currency, written into wire money.
    pub currency: String,
    pub metrics: Metrics,
    /// Who may call the operations that need a right.
    pub write_access: WriteAccess,
    /// Raised on SIGTERM: `/ready` answers 503 from then on (see
    /// `platform::drain`).
    pub draining: platform::drain::Draining,
}

impl FromRef<AppState> for Backends {
    fn from_ref(state: &AppState) -> Self {
        state.backends.clone()
    }
}

/// Body limits per route family, and the bound on one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body: usize,
    pub webhook_body: usize,
    pub request_timeout: Duration,
    /// Requests served at once; past it, 503 + `Retry-After`.
    pub max_concurrent: usize,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        Self {
            body: config.body_limit_bytes,
            webhook_body: config.webhook_body_limit_bytes,
            request_timeout: config.request_timeout,
            max_concurrent: config.max_concurrent_requests as usize,
        }
    }
}

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: routes, docs, fallbacks and layers.
pub fn router(state: AppState, limits: Limits) -> Router {
    let (api, openapi, rules) = crate::routes::api(limits.webhook_body).split();
    let document = openapi::Document::new(&openapi::finish(openapi));
    // Inside routing (so the route template is known) and before any
    // extractor: an unauthorised write never has its body read.
    let guard = Guard {
        rules,
        writes: state.write_access.clone(),
    };
    let api = api
        .route_layer(middleware::from_fn_with_state(guard, access::guard))
        .with_state(state.clone())
        .layer(Extension(document));
    let in_flight = InFlight::new(limits.max_concurrent, state.metrics.clone());

    Router::new()
        .merge(api)
        .merge(openapi::docs_router())
        // ReDoc's script (the `/redoc` page is an operation of `api`); like
        // Swagger UI's files, not in the document.
        .merge(crate::routes::meta::redoc_assets_router())
        // Labels metrics by route template: added after every route.
        .route_layer(middleware::from_fn(metrics::tag_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body))
        .layer(
            ServiceBuilder::new()
                // Outermost first: an id exists before the span is opened, and
                // is copied onto the response on the way out.
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    // An OpenTelemetry SERVER span per request (`trace`).
                    TraceLayer::new_for_http()
                        .make_span_with(trace::request_span)
                        .on_response(trace::on_response),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(middleware::from_fn_with_state(
                    state.metrics,
                    metrics::track,
                ))
                .layer(middleware::map_response(ensure_problem))
                // Counted and traced like any request, refused before any work.
                .layer(middleware::from_fn_with_state(in_flight, limit::shed))
                // Inside `ensure_problem`, so its bare 408 becomes problem details.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    limits.request_timeout,
                )),
        )
}

async fn not_found() -> ApiError {
    ApiError::NotFound("Not found".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// A safety net: any error response that is not already problem details
/// (one produced by a layer or a library, e.g. a Swagger UI 404, the
/// timeout layer's 408) is rewritten into problem details, with the type its
/// status means, so clients see one error format everywhere; a 503 gets its
/// `Retry-After` like any other ([`problem_response`]).
async fn ensure_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return response;
    }
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request body too large",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::METHOD_NOT_ALLOWED => "Method not allowed for this path",
        StatusCode::REQUEST_TIMEOUT => "The request took too long and was abandoned",
        other => other.canonical_reason().unwrap_or("Error"),
    };
    let problem = Problem::new(Kind::for_status(status), status, detail);
    with_headers_of(response, problem_response(status, &problem))
}

/// Keeps the original response's headers (e.g. `Allow`, `x-request-id`, a
/// `Retry-After` it chose) except those that described its old body; an
/// original header replaces the replacement's of the same name.
fn with_headers_of(original: Response, mut replacement: Response) -> Response {
    let (parts, _body) = original.into_parts();
    for name in parts.headers.keys() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement.headers_mut().remove(name);
        }
    }
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replacement
                .headers_mut()
                .append(name.clone(), value.clone());
        }
    }
    replacement
}
