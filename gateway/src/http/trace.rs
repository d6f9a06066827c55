//! The span of each HTTP request, by the OpenTelemetry HTTP server
//! conventions: kind SERVER, named `{method} {route}` (`GET
//! /api/products/{id}`: the matched route template, never the raw path, so
//! the names stay few) or `{method}` alone when no route matched, with
//! `http.request.method`, `http.route`, `url.path`, `url.scheme`,
//! `server.address` / `server.port` (from the `Host` header),
//! `http.response.status_code`, and `error.type` plus span status error on a
//! 5xx. The kind, name and status go through tracing-opentelemetry's special
//! fields (`otel.kind`, `otel.name`, `otel.status_code`).
//!
//! The span continues the client's W3C `traceparent` (if any); the gRPC calls
//! made while serving are CLIENT spans under it (`crate::upstream`).

use std::time::Duration;

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    response::Response,
};
use tower_http::trace::{DefaultOnResponse, OnResponse};
use tracing::{Level, Span, field::Empty};

use super::REQUEST_ID;

/// The value of `http.request.method`: the method when the HTTP
/// specification defines it, `_OTHER` for any other (the conventions'
/// rule, which also keeps span names few).
fn method_attribute(method: &Method) -> &str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::CONNECT,
        Method::OPTIONS,
        Method::TRACE,
        Method::PATCH,
    ];
    if KNOWN.contains(method) {
        method.as_str()
    } else {
        "_OTHER"
    }
}

/// The span name: `{method} {route}`, `{method}` without a route, and `HTTP`
/// in place of a method the conventions call `_OTHER`.
fn span_name(method: &str, route: Option<&str>) -> String {
    let method = if method == "_OTHER" { "HTTP" } else { method };
    match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    }
}

/// Opens the request's SERVER span (`TraceLayer::make_span_with`). The
/// layer runs after routing (`Router::layer` wraps each route), so the
/// matched route template is known here.
pub fn request_span(request: &Request) -> Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let method = method_attribute(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let span = tracing::info_span!(
        "http",
        otel.name = span_name(method, route),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        // The gateway itself serves plain HTTP (TLS ends before it).
        url.scheme = request.uri().scheme_str().unwrap_or("http"),
        server.address = Empty,
        server.port = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        request_id = %request_id,
        trace_id = Empty,
        // The name of the API key used, never the key.
        api_key = Empty,
    );
    if let Some((address, port)) = platform::telemetry::request_authority(request) {
        span.record("server.address", address.as_str());
        if let Some(port) = port {
            span.record("server.port", i64::from(port));
        }
    }
    // One trace from the client's traceparent (if any) through both services.
    platform::telemetry::continue_trace(&span, request.headers());
    span
}

/// Records the answer on the request's span (`TraceLayer::on_response`):
/// `http.response.status_code`, and on a 5xx `error.type` (the status code,
/// as the conventions say when there is no better class) and span status
/// error. A 4xx is the client's error, not the server's: status left unset.
/// Then logs the answer as `DefaultOnResponse` does.
pub fn on_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("error.type", status.as_str());
        span.record("otel.status_code", "error");
    }
    DefaultOnResponse::new()
        .level(Level::INFO)
        .on_response(response, latency, span);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_method_and_route_template() {
        assert_eq!(
            span_name("GET", Some("/api/products/{id}")),
            "GET /api/products/{id}"
        );
        assert_eq!(span_name("POST", None), "POST");
        assert_eq!(span_name("_OTHER", Some("/x")), "HTTP /x");
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_attribute(&Method::PATCH), "PATCH");
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_attribute(&custom), "_OTHER");
    }
}
