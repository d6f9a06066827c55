//! Tracing for every process: log lines (human or JSON), and OpenTelemetry
//! spans exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. Only the specification's own
//! `OTEL_*` variables are read ([`init`] lists them); the platform's own
//! setting, `TRACES_FILTER`, has no `OTEL_` prefix.
//!
//! Spans follow the OpenTelemetry semantic conventions, set through
//! tracing-opentelemetry's special fields (`otel.name`, `otel.kind`,
//! `otel.status_code`):
//!
//! - a gRPC server opens a SERVER span per call ([`grpc_server_span`]), a
//!   client a CLIENT span per call ([`grpc_client_span`]), both named
//!   `package.Service/Method` with `rpc.system`, `rpc.service`, `rpc.method`,
//!   `rpc.grpc.status_code` and `server.address` / `server.port`;
//! - the gateway's HTTP request span is a SERVER span named
//!   `{method} {route}` (`gateway::http::trace`);
//! - the stores' spans are CLIENT spans with `db.system = "postgresql"` and
//!   `db.namespace` (the database), never the SQL's values.
//!
//! W3C trace context travels in gRPC metadata: a CLIENT span's context is
//! written into its call ([`inject_context`], or the [`PropagateContext`]
//! interceptor inside the span), servers continue it ([`grpc_server_span`]),
//! so one REST request is one trace across the three services, every
//! service's SERVER span a child of its caller's CLIENT span. Each request
//! span records its `trace_id`, so every log line written inside it carries
//! the id.

use opentelemetry::{
    global,
    propagation::{Extractor, Injector},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*};

/// Keeps the exporter alive; flushes buffered spans when shut down or dropped.
#[must_use = "dropping the guard stops span export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter.
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "span exporter did not shut down cleanly");
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// The OTLP transport spans are exported with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportProtocol {
    /// OTLP/gRPC (collectors listen on 4317); the default.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (collectors listen on 4318), POSTed to
    /// `/v1/traces`.
    HttpProtobuf,
}

/// The signal-specific protocol setting, read first.
pub const TRACES_PROTOCOL_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// The protocol setting of every signal, read when the traces one is unset.
pub const PROTOCOL_VAR: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";

impl ExportProtocol {
    /// What the protocol settings accept, as an error message lists them.
    pub const ACCEPTED: &'static str = "`grpc` or `http/protobuf`";

    /// From `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, else
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC (what this platform has
    /// always exported, to the collectors' port 4317). Any other value
    /// (`http/json` included: not built in) is an error naming the setting.
    pub fn from_env() -> Result<Self, String> {
        Self::resolve(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any source of variables.
    pub fn resolve(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        for name in [TRACES_PROTOCOL_VAR, PROTOCOL_VAR] {
            let Some(value) = var(name).filter(|value| !value.trim().is_empty()) else {
                continue;
            };
            return match value.trim().to_ascii_lowercase().as_str() {
                "grpc" => Ok(Self::Grpc),
                "http/protobuf" => Ok(Self::HttpProtobuf),
                _ => Err(format!(
                    "{name}={value:?} is not supported: use {}",
                    Self::ACCEPTED
                )),
            };
        }
        Ok(Self::Grpc)
    }

    /// As the settings write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// The filter of exported spans (`tracing_subscriber::EnvFilter` syntax,
/// default `info`), independent of `RUST_LOG`.
pub const TRACES_FILTER_VAR: &str = "TRACES_FILTER";
/// Its former name, inside the OpenTelemetry specification's reserved
/// `OTEL_` prefix: still read, with a warning naming [`TRACES_FILTER_VAR`].
pub const LEGACY_TRACES_FILTER_VAR: &str = "OTEL_TRACES_FILTER";

/// The export filter's directives and the variable they came from (`None`:
/// the default, `info`). `TRACES_FILTER` wins over the legacy name.
fn export_filter_directives(
    var: impl Fn(&str) -> Option<String>,
) -> (String, Option<&'static str>) {
    [TRACES_FILTER_VAR, LEGACY_TRACES_FILTER_VAR]
        .into_iter()
        .find_map(|name| {
            var(name)
                .filter(|value| !value.trim().is_empty())
                .map(|value| (value, Some(name)))
        })
        .unwrap_or_else(|| ("info".to_owned(), None))
}

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), JSON
/// lines when `LOG_FORMAT=json`, OTLP export when an endpoint is configured.
/// Must be called inside the tokio runtime (the OTLP/gRPC exporter is a
/// tonic client). A second call (tests start several services in one
/// process) keeps the first setup.
///
/// What it reads besides `RUST_LOG` and `LOG_FORMAT`: `TRACES_FILTER` (which
/// spans are exported, default `info`; the former `OTEL_TRACES_FILTER` still
/// works, with a warning) and the specification's variables:
/// `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` (export only when one is set),
/// `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` ([`ExportProtocol`]),
/// `OTEL_SDK_DISABLED=true` (no export), and through the SDK
/// `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`,
/// `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` / `_TIMEOUT`.
///
/// Fails, before anything is installed, on a setting that cannot work: an
/// unsupported protocol or an unparsable `TRACES_FILTER`, the message naming
/// the setting and what it accepts.
pub fn init(service_name: &str) -> anyhow::Result<Telemetry> {
    let env = |name: &str| std::env::var(name).ok();
    let export = otlp_endpoint_configured() && !sdk_disabled();
    let protocol = ExportProtocol::from_env().map_err(anyhow::Error::msg)?;
    let (directives, filter_source) = export_filter_directives(env);
    let export_filter = EnvFilter::try_new(&directives).map_err(|error| {
        anyhow::anyhow!(
            "{}={directives:?} is not a valid filter ({error}); write directives such as \
             `info` or `info,catalog_service=debug`",
            filter_source.unwrap_or(TRACES_FILTER_VAR)
        )
    })?;

    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Each layer has its own filter: `RUST_LOG` decides what is logged,
    // `TRACES_FILTER` (default `info`) what is exported, so quieter logs do
    // not cost spans.
    let fmt_layer = if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_filter(filter)
            .boxed()
    } else {
        fmt::layer().with_filter(filter).boxed()
    };

    let provider = export
        .then(|| build_provider(service_name, protocol))
        .flatten();
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(service_name.to_owned());
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(export_filter)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    if installed && filter_source == Some(LEGACY_TRACES_FILTER_VAR) {
        tracing::warn!(
            "{LEGACY_TRACES_FILTER_VAR} is deprecated (the OTEL_ prefix is the OpenTelemetry \
             specification's): rename it to {TRACES_FILTER_VAR}"
        );
    }
    match (&provider, installed) {
        (Some(_), true) => {
            global::set_tracer_provider(provider.clone().expect("checked"));
            tracing::info!(
                service = service_name,
                protocol = protocol.as_str(),
                "exporting spans over OTLP"
            );
        }
        (None, true) => {
            tracing::debug!("no OTLP endpoint set (or OTEL_SDK_DISABLED): spans are not exported")
        }
        (_, false) => {}
    }
    Ok(Telemetry {
        provider: provider.filter(|_| installed),
    })
}

fn otlp_endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

/// `OTEL_SDK_DISABLED=true`: the specification's switch for "no telemetry".
fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The exporter reads the endpoint itself, as the specification says: the
/// signal variable as is, else `OTEL_EXPORTER_OTLP_ENDPOINT` (with
/// `/v1/traces` appended over HTTP), else `localhost:4317` / `:4318`. The
/// protocol is passed explicitly, so the exporter never second-guesses
/// [`ExportProtocol`].
fn build_provider(service_name: &str, protocol: ExportProtocol) -> Option<SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = match protocol {
        ExportProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_protocol(Protocol::Grpc)
            .build(),
        // The blocking reqwest client: the batch processor exports from a
        // thread of its own, with no tokio runtime to drive an async client.
        ExportProtocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build(),
    };
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            // Observability must not take the service down: log and go on.
            eprintln!("cannot build the OTLP span exporter, spans will not be exported: {error}");
            return None;
        }
    };
    // OTEL_SERVICE_NAME, when set, wins over the binary's name.
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name(service_name.to_owned());
    }
    Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    )
}

/// The trace id of the current span, if tracing is exported (else `None`).
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Continues the trace of an incoming request (W3C `traceparent` in its
/// headers) in `span`, and records the trace id on the span (so log lines
/// carry it) when the span has a `trace_id` field.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent =
        global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    let _ = span.set_parent(parent);
    let context = span.context();
    let otel_span = context.span();
    let span_context = otel_span.span_context();
    if span_context.is_valid() {
        span.record("trace_id", tracing::field::display(span_context.trace_id()));
    }
}

/// `rpc.system` of every gRPC span.
pub const RPC_SYSTEM: &str = "grpc";

/// `package.Service` and `Method` of a gRPC path (`/package.Service/Method`).
/// A path of another shape is all service, no method.
pub fn split_rpc_path(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or((path, ""))
}

/// `server.address` and `server.port` of a request: its URI's authority
/// (HTTP/2 `:authority`), else its `Host` header. `None` when it has neither.
pub fn request_authority<B>(request: &http::Request<B>) -> Option<(String, Option<u16>)> {
    if let Some(authority) = request.uri().authority() {
        return Some((authority.host().to_owned(), authority.port_u16()));
    }
    let host = request.headers().get(http::header::HOST)?.to_str().ok()?;
    let authority: http::uri::Authority = host.parse().ok()?;
    Some((authority.host().to_owned(), authority.port_u16()))
}

/// The SERVER span a gRPC server opens for each call (pass to
/// `Server::trace_fn`): named `package.Service/Method`, with the RPC
/// conventions' attributes; [`GrpcStatusLayer`] records the answer's code.
/// It continues the caller's trace (W3C `traceparent` in the metadata).
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let (service, method) = split_rpc_path(path);
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = path.strip_prefix('/').unwrap_or(path),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system = RPC_SYSTEM,
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
        request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    if let Some((address, port)) = request_authority(request) {
        span.record("server.address", address.as_str());
        if let Some(port) = port {
            span.record("server.port", i64::from(port));
        }
    }
    if let Some(id) = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        span.record("request_id", id);
    }
    continue_trace(&span, request.headers());
    span
}

/// Where a client's calls go, for `server.address` / `server.port`: the
/// logical name the client was configured with (a service URL), not the
/// replica a balanced call happened to reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peer {
    pub address: String,
    pub port: Option<u16>,
}

impl Peer {
    /// From a service URL (`http://catalog-service:50051`); of a
    /// comma-separated list, the first. An unparsable URL gives an empty
    /// address (the attribute is then left out).
    pub fn from_url(url: &str) -> Self {
        let first = url.split(',').next().unwrap_or_default().trim();
        first
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| {
                let authority = uri.authority()?;
                let port = authority.port_u16().or(match uri.scheme_str() {
                    Some("https") => Some(443),
                    Some("http") => Some(80),
                    _ => None,
                });
                Some(Self {
                    address: authority.host().to_owned(),
                    port,
                })
            })
            .unwrap_or_default()
    }
}

/// The CLIENT span of one outgoing gRPC call to `service` (`package.Service`)
/// `method`: named `package.Service/Method`, with the RPC conventions'
/// attributes. Write its context into the call ([`inject_context`], or run
/// the call inside it with the [`PropagateContext`] interceptor), so the
/// server's span is its child; record the outcome with
/// [`record_grpc_status`].
pub fn grpc_client_span(service: &str, method: &str, peer: &Peer) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.client",
        otel.name = format!("{service}/{method}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        rpc.system = RPC_SYSTEM,
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
    );
    if !peer.address.is_empty() {
        span.record("server.address", peer.address.as_str());
    }
    if let Some(port) = peer.port {
        span.record("server.port", i64::from(port));
    }
    span
}

/// Which end of a call a span is, for [`record_grpc_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpcSide {
    Client,
    Server,
}

/// Records a call's outcome on its span: `rpc.grpc.status_code`, and span
/// status error by the RPC conventions: a client's for any code but OK, a
/// server's only for the codes that say the server failed (UNKNOWN,
/// DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS), not
/// for a refusal of the caller's request.
pub fn record_grpc_status(span: &tracing::Span, code: tonic::Code, side: RpcSide) {
    use tonic::Code;
    span.record("rpc.grpc.status_code", code as i64);
    let failed = match side {
        RpcSide::Client => code != Code::Ok,
        RpcSide::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
    };
    if failed {
        span.record("otel.status_code", "error");
    }
}

/// A server layer (`Server::builder().layer(..)`, inside `trace_fn`'s span)
/// that records each call's gRPC code on its [`grpc_server_span`]. Errors
/// are "trailers-only" answers (the code is in the headers); a success puts
/// it in the trailers, not seen here: an answer without a code in its
/// headers is OK.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcStatusLayer;

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcStatus { inner }
    }
}

/// See [`GrpcStatusLayer`].
#[derive(Debug, Clone)]
pub struct GrpcStatus<S> {
    inner: S,
}

impl<S, B, ResBody> tower::Service<http::Request<B>> for GrpcStatus<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let answer = self.inner.call(request);
        Box::pin(async move {
            // Read at the first poll: tonic polls the call inside its span
            // (but calls `call` outside it).
            let span = tracing::Span::current();
            let result = answer.await;
            let code = crate::metrics::grpc_code_of(&result);
            record_grpc_status(&span, code, RpcSide::Server);
            result
        })
    }
}

/// The header / metadata key that carries a request's id across processes.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A tonic client interceptor that sends the current span's trace context
/// (W3C `traceparent`) with every call.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateContext;

impl tonic::service::Interceptor for PropagateContext {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_current_context(request.metadata_mut());
        Ok(request)
    }
}

/// Writes the current span's trace context into outgoing gRPC metadata.
pub fn inject_current_context(metadata: &mut MetadataMap) {
    inject_context(&tracing::Span::current(), metadata);
}

/// Writes `span`'s trace context (e.g. a call's [`grpc_client_span`]) into
/// outgoing gRPC metadata. Without span export it writes nothing, so a
/// `traceparent` already there (forwarded from the caller) stays.
pub fn inject_context(span: &tracing::Span, metadata: &mut MetadataMap) {
    let context = span.context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MetadataInjector(metadata));
    });
}

struct MetadataInjector<'a>(&'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<_, _> = pairs.iter().copied().collect();
        move |name| map.get(name).map(|v| (*v).to_owned())
    }

    #[test]
    fn the_traces_protocol_wins_over_the_general_one_and_grpc_is_the_default() {
        assert_eq!(ExportProtocol::resolve(vars(&[])), Ok(ExportProtocol::Grpc));
        assert_eq!(
            ExportProtocol::resolve(vars(&[(PROTOCOL_VAR, "http/protobuf")])),
            Ok(ExportProtocol::HttpProtobuf)
        );
        assert_eq!(
            ExportProtocol::resolve(vars(&[
                (PROTOCOL_VAR, "http/protobuf"),
                (TRACES_PROTOCOL_VAR, "grpc")
            ])),
            Ok(ExportProtocol::Grpc)
        );
        assert_eq!(
            ExportProtocol::resolve(vars(&[(TRACES_PROTOCOL_VAR, " ")])),
            Ok(ExportProtocol::Grpc)
        );
    }

    #[test]
    fn an_unsupported_protocol_names_the_setting_and_the_accepted_values() {
        let error = ExportProtocol::resolve(vars(&[(PROTOCOL_VAR, "http/json")])).unwrap_err();
        assert!(error.contains(PROTOCOL_VAR), "{error}");
        assert!(error.contains("`grpc` or `http/protobuf`"), "{error}");
        let error = ExportProtocol::resolve(vars(&[(TRACES_PROTOCOL_VAR, "udp")])).unwrap_err();
        assert!(error.contains(TRACES_PROTOCOL_VAR), "{error}");
    }

    #[test]
    fn traces_filter_wins_and_the_legacy_name_is_still_read() {
        assert_eq!(export_filter_directives(vars(&[])), ("info".into(), None));
        assert_eq!(
            export_filter_directives(vars(&[(LEGACY_TRACES_FILTER_VAR, "debug")])),
            ("debug".into(), Some(LEGACY_TRACES_FILTER_VAR))
        );
        assert_eq!(
            export_filter_directives(vars(&[
                (LEGACY_TRACES_FILTER_VAR, "debug"),
                (TRACES_FILTER_VAR, "warn")
            ])),
            ("warn".into(), Some(TRACES_FILTER_VAR))
        );
    }

    #[test]
    fn rpc_paths_split_into_service_and_method() {
        assert_eq!(
            split_rpc_path("/catalog.v1.CatalogService/GetProduct"),
            ("catalog.v1.CatalogService", "GetProduct")
        );
        assert_eq!(split_rpc_path("/odd"), ("odd", ""));
    }

    #[test]
    fn a_peer_is_the_first_url_host_and_port() {
        assert_eq!(
            Peer::from_url("http://catalog-service:50051, http://other:1"),
            Peer {
                address: "catalog-service".into(),
                port: Some(50051)
            }
        );
        assert_eq!(
            Peer::from_url("https://catalog.example"),
            Peer {
                address: "catalog.example".into(),
                port: Some(443)
            }
        );
        assert_eq!(Peer::from_url("not a url"), Peer::default());
    }
}
