//! Tracing for every process: log lines (human or JSON), and OpenTelemetry
//! spans exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
//! usual `OTEL_*` variables apply: `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, ...).
//!
//! W3C trace context travels in gRPC metadata: clients add it with the
//! [`PropagateContext`] interceptor, servers continue it with
//! [`grpc_server_span`], so one REST request is one trace across the three
//! services. Each request span records its `trace_id`, so every log line
//! written inside it carries the id.

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

/// Installs the global subscriber: `RUST_LOG` filter (default `info`), JSON
/// lines when `LOG_FORMAT=json`, OTLP export when configured. Must be called
/// inside the tokio runtime (the OTLP exporter is a tonic client). A second
/// call (tests start several services in one process) keeps the first setup.
pub fn init(service_name: &str) -> Telemetry {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    // Each layer has its own filter: `RUST_LOG` decides what is logged,
    // `OTEL_TRACES_FILTER` (default `info`) what is exported, so quieter logs
    // do not cost spans.
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

    let provider = otlp_endpoint_configured()
        .then(|| build_provider(service_name))
        .flatten();
    let otel_layer = provider.as_ref().map(|provider| {
        let tracer = provider.tracer(service_name.to_owned());
        let export_filter = std::env::var("OTEL_TRACES_FILTER")
            .ok()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(export_filter)
    });
    let installed = tracing_subscriber::registry()
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()
        .is_ok();
    match (&provider, installed) {
        (Some(_), true) => {
            global::set_tracer_provider(provider.clone().expect("checked"));
            tracing::info!(service = service_name, "exporting spans over OTLP");
        }
        (None, true) => {
            tracing::debug!("OTEL_EXPORTER_OTLP_ENDPOINT not set: spans are not exported")
        }
        (_, false) => {}
    }
    Telemetry {
        provider: provider.filter(|_| installed),
    }
}

fn otlp_endpoint_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|var| std::env::var(var).is_ok_and(|v| !v.trim().is_empty()))
}

fn build_provider(service_name: &str) -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
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

/// The span a gRPC server opens for each call (pass to `Server::trace_fn`).
pub fn grpc_server_span(request: &http::Request<()>) -> tracing::Span {
    let span = tracing::info_span!(
        "grpc.server",
        rpc = %request.uri().path(),
        request_id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
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
    let context = tracing::Span::current().context();
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
