//! Service endpoints: liveness, readiness, service info, the ReDoc page and
//! its script.
//!
//! ReDoc's standalone bundle is vendored in `gateway/assets/redoc/` (version,
//! license and checksum in the README there) and compiled into the binary,
//! like Swagger UI's files for `/docs`: both docs pages work with no internet
//! access. The script's route is not an operation of the API, so, like
//! Swagger UI's files, it is not in `/openapi.json` ([`redoc_assets_router`]).

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    http::{AppState, error::ApiError},
    models::{BackendState, Health, Readiness, ServiceInfo},
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

/// Readiness of this gateway, for load balancers: 200 while it serves,
/// with each service's state; 503 only once it is draining (SIGTERM).
///
/// A service that is down does not make the gateway unready: every replica
/// shares that service, so pulling them all would turn a partial outage
/// (only the operations that need the service answer 503 with
/// `Retry-After`; cached product reads, the other service's operations and
/// the documentation still work) into a total one, answered by the balancer
/// instead of the API. Not even with both down: the balancer would then have
/// no replica left and answer in its own words, and would add its probe
/// period to the recovery. The services' state is in the body, for
/// dashboards and people.
#[utoipa::path(
    get, path = "/ready", tag = "service",
    responses(
        (status = 200, description = "This gateway serves; `backends` says which services are up \
            (a service that is down only fails the operations that need it)", body = Readiness),
        (status = 503, description = "This gateway is draining (it got SIGTERM): send requests \
            elsewhere; it still serves until its drain delay ends (code `DRAINING`)"),
    )
)]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    if state.draining.is_draining() {
        return Err(ApiError::Draining);
    }
    let mut backends = BTreeMap::new();
    for (name, result) in state.backends.health().await {
        let shown = match result {
            Ok(ServingStatus::Serving) => BackendState::Up,
            // Polled every few seconds by every balancer: a line per poll
            // would flood the log for as long as the service is down (the
            // calls that fail are logged, and counted by the metrics).
            Ok(other) => {
                tracing::debug!(
                    service = name,
                    status = other.as_str_name(),
                    "service not serving"
                );
                BackendState::Down
            }
            Err(status) => {
                tracing::debug!(service = name, code = ?status.code(), message = status.message(), "health check failed");
                BackendState::Down
            }
        };
        backends.insert(name, shown);
    }
    Ok(Json(Readiness {
        status: "ready",
        backends,
    }))
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

/// ReDoc, reading `/openapi.json`; its script is served by the gateway
/// too, so the page works offline.
#[utoipa::path(
    get, path = "/redoc", tag = "service",
    responses((status = 200, description = "The ReDoc page (its script served by the gateway: works offline)", content_type = "text/html"))
)]
pub async fn redoc() -> Response {
    // (Not in the doc comment, which is the operation's documentation.)
    // The script is REDOC_SCRIPT_PATH. The Content-Security-Policy lets the
    // page load nothing from anywhere else: the bundle always renders a
    // Redocly logo from `cdn.redoc.ly` in its menu's footer (no option turns
    // it off), which the browser then refuses without asking the network
    // (the image hides itself). Inline styles, `blob:` workers and `data:`
    // images are what the bundle makes itself.
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(REDOC_CSP),
        )],
        Html(REDOC_PAGE),
    )
        .into_response()
}

/// The vendored ReDoc's version: `gateway/assets/redoc/README.md` records it
/// with the file's checksum (a test holds the two together).
pub const REDOC_VERSION: &str = "2.5.4";

/// Where the gateway serves ReDoc's script; the page asks for it with
/// `?v=<version>`, so a new version is a new URL despite the year-long cache.
pub const REDOC_SCRIPT_PATH: &str = "/redoc/redoc.standalone.js";

/// `redoc/bundles/redoc.standalone.js` from npm, byte for byte.
static REDOC_BUNDLE: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// What the ReDoc page may load: its script, the document and what the
/// bundle generates (inline styles, `data:` images and fonts, a search
/// worker from a `blob:`), all from this origin; nothing from elsewhere.
const REDOC_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

/// ReDoc's script, from the binary. Not an API operation, so not in the
/// document (Swagger UI's files under `/docs/` are not either).
pub fn redoc_assets_router() -> Router {
    Router::new().route(REDOC_SCRIPT_PATH, get(redoc_script))
}

async fn redoc_script() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            // Versioned by the page's `?v=`: safe to keep for a year.
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        REDOC_BUNDLE,
    )
        .into_response()
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
  <script src="/redoc/redoc.standalone.js?v=2.5.4"></script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    /// The page loads its script from the gateway, at this version's URL.
    #[test]
    fn the_redoc_page_asks_for_the_vendored_script() {
        let src = format!("src=\"{REDOC_SCRIPT_PATH}?v={REDOC_VERSION}\"");
        assert!(REDOC_PAGE.contains(&src), "{REDOC_PAGE}");
        assert!(REDOC_PAGE.contains("spec-url=\"/openapi.json\""));
    }

    /// The README next to the asset records what is embedded: its version
    /// and the sha256 of these very bytes.
    #[test]
    fn the_vendored_bundle_is_the_one_recorded() {
        let readme = include_str!("../../assets/redoc/README.md");
        let sha256 = hex::encode(Sha256::digest(REDOC_BUNDLE));
        assert!(readme.contains(&sha256), "README lacks sha256 {sha256}");
        assert!(readme.contains(&format!("redoc@{REDOC_VERSION}")));
        let head = String::from_utf8_lossy(&REDOC_BUNDLE[..200]);
        assert!(head.contains("redoc.standalone.js.LICENSE.txt"), "{head}");
        // The bundle's own banner names its version.
        let licenses = include_str!("../../assets/redoc/redoc.standalone.js.LICENSE.txt");
        assert!(licenses.contains(&format!("Version: \"{REDOC_VERSION}\"")));
    }
}
