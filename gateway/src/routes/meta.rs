//! Service endpoints: liveness, readiness, service info, the ReDoc page.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    response::{Html, Response},
};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    http::{AppState, error::ApiError},
    models::{Health, Readiness, ServiceInfo},
};

/// Liveness: the process is up and serving HTTP. Never calls a backend, so a
/// backend outage does not get the gateway restarted.
#[utoipa::path(
    get, path = "/health", tag = "service",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn health() -> Json<Health> {
    Json(Health { status: "healthy" })
}

/// Readiness: 200 only when both services report SERVING on
/// `grpc.health.v1` (which they do only while their databases answer).
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "Both services are serving", body = Readiness),
        (status = 503, description = "A service is unreachable or not serving; `detail` names it"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let mut services = BTreeMap::new();
    let mut not_ready = Vec::new();
    for (name, result) in state.backends.health().await {
        let shown = match result {
            Ok(ServingStatus::Serving) => "SERVING".to_owned(),
            Ok(other) => {
                not_ready.push(format!("{name} is {}", other.as_str_name()));
                other.as_str_name().to_owned()
            }
            Err(status) => {
                tracing::warn!(service = name, code = ?status.code(), message = status.message(), "health check failed");
                not_ready.push(format!("{name} is unreachable"));
                "UNREACHABLE".to_owned()
            }
        };
        services.insert(name, shown);
    }
    if not_ready.is_empty() {
        Ok(Json(Readiness {
            status: "ready",
            services,
        }))
    } else {
        Err(ApiError::Unavailable(format!(
            "Not ready: {}",
            not_ready.join(", ")
        )))
    }
}

/// Name, version and status of the API.
#[utoipa::path(
    get, path = "/", tag = "service",
    responses((status = 200, description = "Service info", body = ServiceInfo))
)]
pub async fn info() -> Json<ServiceInfo> {
    Json(ServiceInfo {
        name: crate::API_NAME,
        version: env!("CARGO_PKG_VERSION"),
        status: "running",
    })
}

/// Prometheus metrics: HTTP requests by route and status, calls to the
/// services by RPC and code, webhook refusals by reason.
#[utoipa::path(
    get, path = "/metrics", tag = "service",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.render()
}

/// ReDoc, reading `/openapi.json`. Its script comes from a CDN, so the page
/// needs internet access; `/docs` is the page that works offline.
#[utoipa::path(
    get, path = "/redoc", tag = "service",
    responses((status = 200, description = "The ReDoc page", content_type = "text/html"))
)]
pub async fn redoc() -> Html<&'static str> {
    Html(REDOC_PAGE)
}

const REDOC_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>E-commerce API - ReDoc</title>
  <style>body { margin: 0; padding: 0; }</style>
</head>
<body>
  <redoc spec-url="/openapi.json"></redoc>
  <script src="https://cdn.jsdelivr.net/npm/redoc@2/bundles/redoc.standalone.js"></script>
</body>
</html>
"#;
