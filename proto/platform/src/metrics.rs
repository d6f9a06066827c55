//! Prometheus metrics shared by the processes: the per-RPC RED series of a
//! gRPC server (rate, errors, duration), database pool gauges, the process
//! series (CPU, memory, file descriptors: [`process`]), and the small HTTP
//! server that serves `/metrics` (plus `/health` and `/ready`) on a
//! service's admin port.
//!
//! Each process owns its own [`Registry`] (not a global one), so services
//! started side by side in one test process keep their series apart. Every
//! page goes through [`render`], the one place that adds the process series:
//! the services' admin servers and the gateway's `/metrics` alike.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Instant,
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use prometheus_client::{
    encoding::{
        EncodeLabelSet,
        text::{encode_eof, encode_registry},
    },
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tower::{Layer, Service};

pub mod process;

/// Latency buckets (seconds) for request histograms: 0.5 ms .. 10 s.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    /// `/package.Service/Method`
    pub rpc: String,
    /// gRPC status code name, e.g. `OK`, `NOT_FOUND`.
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcPathLabel {
    pub rpc: String,
}

/// Rate, errors and latency per RPC of one gRPC server.
#[derive(Clone)]
pub struct GrpcServerMetrics {
    requests: Family<RpcLabels, Counter>,
    duration: Family<RpcPathLabel, Histogram>,
}

impl GrpcServerMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let requests = Family::<RpcLabels, Counter>::default();
        let duration = Family::<RpcPathLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "grpc_server_requests",
            "gRPC calls handled, by RPC and status code",
            requests.clone(),
        );
        registry.register(
            "grpc_server_request_duration_seconds",
            "Time to answer a gRPC call, by RPC",
            duration.clone(),
        );
        Self { requests, duration }
    }

    /// A tower layer for `tonic::transport::Server::builder().layer(..)`.
    pub fn layer(&self) -> GrpcMetricsLayer {
        GrpcMetricsLayer(self.clone())
    }

    fn observe(&self, rpc: &str, code: tonic::Code, seconds: f64) {
        self.requests
            .get_or_create(&RpcLabels {
                rpc: rpc.to_owned(),
                code: code_name(code).to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&RpcPathLabel {
                rpc: rpc.to_owned(),
            })
            .observe(seconds);
    }
}

/// The canonical upper-snake name of a status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[derive(Clone)]
pub struct GrpcMetricsLayer(GrpcServerMetrics);

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: GrpcServerMetrics,
}

impl<S, B, ResBody> Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let rpc = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // Errors are "trailers-only" responses: the status is in the
            // headers. A success puts it in the trailers, which are not seen
            // here; a response without a status header is counted as OK.
            let code = grpc_code_of(&result);
            metrics.observe(&rpc, code, started.elapsed().as_secs_f64());
            result
        })
    }
}

/// Database pool gauges, refreshed when `/metrics` is scraped.
#[derive(Clone, Default)]
pub struct PoolGauges {
    pub in_use: Gauge,
    pub idle: Gauge,
}

impl PoolGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let gauges = Self::default();
        registry.register(
            "db_pool_connections_in_use",
            "Database connections checked out",
            gauges.in_use.clone(),
        );
        registry.register(
            "db_pool_connections_idle",
            "Database connections open and idle",
            gauges.idle.clone(),
        );
        gauges
    }

    pub fn set(&self, size: u32, idle: usize) {
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        self.idle.set(idle);
        self.in_use.set((i64::from(size) - idle).max(0));
    }
}

/// Something the admin server asks before answering `/metrics` (to refresh
/// gauges) and `/ready`.
pub trait AdminHooks: Send + Sync + 'static {
    /// Refresh gauges that are computed on demand.
    fn refresh(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
    /// Whether the process should get traffic now.
    fn ready(&self) -> Pin<Box<dyn Future<Output = bool> + Send + '_>>;
}

struct AdminState {
    registry: Arc<Registry>,
    hooks: Arc<dyn AdminHooks>,
}

/// The admin router: `/metrics` (Prometheus text), `/health` (liveness),
/// `/ready` (readiness, from the hooks). The registry is owned (a service's)
/// or shared (`Arc`: the gateway's, whose series are updated from its
/// request path).
pub fn admin_router(registry: impl Into<Arc<Registry>>, hooks: Arc<dyn AdminHooks>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/health", get(|| async { (StatusCode::OK, "ok") }))
        .route("/ready", get(ready_handler))
        .with_state(Arc::new(AdminState {
            registry: registry.into(),
            hooks,
        }))
}

// The hooks query the database: run to their end even if the scraper hangs up.
async fn metrics_handler(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    crate::runtime::run_to_completion(async move {
        state.hooks.refresh().await;
        render(&state.registry)
    })
    .await
}

/// A registry's series followed by the process series ([`process`], read
/// now), in the OpenMetrics text format.
pub fn encode_page(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut process = Registry::default();
    process.register_collector(Box::new(process::ProcessCollector));
    let mut body = String::new();
    encode_registry(&mut body, registry)?;
    encode_registry(&mut body, &process)?;
    encode_eof(&mut body)?;
    Ok(body)
}

/// A registry as an HTTP response in the Prometheus/OpenMetrics text format,
/// the process series included ([`encode_page`]).
pub fn render(registry: &Registry) -> axum::response::Response {
    match encode_page(registry) {
        Ok(body) => (
            [(
                http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready_handler(State(state): State<Arc<AdminState>>) -> impl IntoResponse {
    let ready = crate::runtime::run_to_completion(async move { state.hooks.ready().await });
    if ready.await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// Registers fields of a metrics struct under their names and help texts, one
/// line each: `register_metrics!(registry, metrics, field => "name", "help";
/// ...)`. Each field is a cheap clone of the series the struct keeps.
#[macro_export]
macro_rules! register_metrics {
    ($registry:ident, $metrics:ident, $($field:ident => $name:literal, $help:literal;)+) => {
        $($registry.register($name, $help, $metrics.$field.clone());)+
    };
}

/// The gRPC status of an answer as a server layer sees it: errors are
/// "trailers-only" responses, with the status in the headers; a success puts
/// it in the trailers, which are not seen here, so an answer without a
/// status header counts as OK; a failed service call as UNAVAILABLE.
pub(crate) fn grpc_code_of<B, E>(result: &Result<http::Response<B>, E>) -> tonic::Code {
    match result {
        Ok(response) => response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .map_or(tonic::Code::Ok, tonic::Code::from_i32),
        Err(_) => tonic::Code::Unavailable,
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::BTreeMap,
        time::{SystemTime, UNIX_EPOCH},
    };

    use super::*;

    /// `series -> value` of an OpenMetrics page (labels kept in the key).
    fn samples(page: &str) -> BTreeMap<&str, f64> {
        page.lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series, value.parse().ok()?))
            })
            .collect()
    }

    /// The page has the registry's own series, then the process series with
    /// figures a running test process must have, and ends once with `# EOF`.
    #[cfg(target_os = "linux")]
    #[test]
    fn every_page_carries_the_process_series_with_sane_values() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        counter.inc();
        registry.register("widgets", "Widgets made", counter);
        // Some CPU time to show.
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            std::hint::black_box(spin.elapsed());
        }

        let page = encode_page(&registry).unwrap();
        assert!(page.ends_with("# EOF\n"), "{page}");
        assert_eq!(page.matches("# EOF").count(), 1, "{page}");
        assert!(
            page.contains("# TYPE process_cpu_seconds counter"),
            "{page}"
        );
        let samples = samples(&page);
        let value = |name: &str| {
            *samples
                .get(name)
                .unwrap_or_else(|| panic!("{name} missing from\n{page}"))
        };
        assert_eq!(value("widgets_total"), 1.0);

        let cpu = value("process_cpu_seconds_total");
        assert!(cpu > 0.0 && cpu < 3600.0, "cpu {cpu}");
        let resident = value("process_resident_memory_bytes");
        let virtual_memory = value("process_virtual_memory_bytes");
        assert!(resident > 1_000_000.0, "resident {resident}");
        assert!(virtual_memory >= resident, "virtual {virtual_memory}");
        let open = value("process_open_fds");
        assert!(open >= 3.0, "stdin, stdout, stderr at least: {open}");
        if let Some(max) = samples.get("process_max_fds") {
            assert!(*max >= open, "max fds {max} below open {open}");
        }
        assert!(value("process_threads") >= 1.0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0,
            "started {started}, now {now}"
        );
    }

    /// What the gateway serves goes through the same page.
    #[tokio::test]
    async fn render_answers_openmetrics_with_the_process_series() {
        let response = render(&Registry::default());
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()[http::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        if cfg!(target_os = "linux") {
            assert!(body.contains("\nprocess_resident_memory_bytes "), "{body}");
        }
        assert!(body.ends_with("# EOF\n"));
    }
}
