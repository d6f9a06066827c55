//! An OTLP trace receiver inside the test process: the services export their
//! spans to it over real OTLP, over gRPC ([`OtlpReceiver::endpoint`]) or
//! HTTP/protobuf (`POST /v1/traces`, [`OtlpReceiver::http_endpoint`]), and
//! tests look at what arrived and how.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, any_value::Value},
    trace::v1::{span::SpanKind, status::StatusCode},
};
use prost::Message;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

/// How a span reached the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    /// OTLP/HTTP, protobuf body, `POST /v1/traces`.
    HttpProtobuf,
}

/// An attribute's value, as exported.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Str(String),
    Int(i64),
    Bool(bool),
    Double(f64),
    /// Arrays, maps, bytes: not used by the platform's spans.
    Other(String),
}

/// One received span, flattened.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub kind: SpanKind,
    /// The span's status code (`Unset` unless the span says otherwise).
    pub status: StatusCode,
    pub attributes: BTreeMap<String, AttrValue>,
    pub transport: Transport,
}

impl ReceivedSpan {
    /// A string attribute, if the span has it as a string.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key)? {
            AttrValue::Str(value) => Some(value),
            _ => None,
        }
    }

    /// An integer attribute, if the span has it as an integer.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        match self.attributes.get(key)? {
            AttrValue::Int(value) => Some(*value),
            _ => None,
        }
    }
}

fn value_of(value: Option<&AnyValue>) -> AttrValue {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => AttrValue::Str(s.clone()),
        Some(Value::IntValue(i)) => AttrValue::Int(*i),
        Some(Value::BoolValue(b)) => AttrValue::Bool(*b),
        Some(Value::DoubleValue(d)) => AttrValue::Double(*d),
        other => AttrValue::Other(format!("{other:?}")),
    }
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<ReceivedSpan>>>);

impl Collector {
    fn collect(&self, request: ExportTraceServiceRequest, transport: Transport) {
        let mut spans = self.0.lock().expect("collector lock");
        for resource_spans in request.resource_spans {
            let service_name = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| match value_of(kv.value.as_ref()) {
                    AttrValue::Str(s) => s,
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(ReceivedSpan {
                        service_name: service_name.clone(),
                        kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                        status: span
                            .status
                            .as_ref()
                            .and_then(|s| StatusCode::try_from(s.code).ok())
                            .unwrap_or(StatusCode::Unset),
                        attributes: span
                            .attributes
                            .iter()
                            .map(|kv| (kv.key.clone(), value_of(kv.value.as_ref())))
                            .collect(),
                        name: span.name,
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        transport,
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.collect(request.into_inner(), Transport::Grpc);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// OTLP/HTTP: a protobuf `ExportTraceServiceRequest` POSTed to `/v1/traces`,
/// answered with a protobuf `ExportTraceServiceResponse` (the specification's
/// binary encoding); anything else is refused as a collector would.
async fn export_over_http(
    axum::extract::State(collector): axum::extract::State<Collector>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::{http::StatusCode as Http, response::IntoResponse};
    let protobuf = headers
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
    if !protobuf {
        return (Http::UNSUPPORTED_MEDIA_TYPE, "protobuf only").into_response();
    }
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            collector.collect(request, Transport::HttpProtobuf);
            let answer = ExportTraceServiceResponse {
                partial_success: None,
            };
            (
                [(axum::http::header::CONTENT_TYPE, "application/x-protobuf")],
                answer.encode_to_vec(),
            )
                .into_response()
        }
        Err(error) => (Http::BAD_REQUEST, error.to_string()).into_response(),
    }
}

/// A running receiver, on two ports (gRPC and HTTP); stops when dropped.
pub struct OtlpReceiver {
    /// The OTLP/gRPC port.
    pub addr: SocketAddr,
    /// The OTLP/HTTP port.
    pub http_addr: SocketAddr,
    collector: Collector,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let http_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let http_addr = http_listener.local_addr().expect("addr");
        let collector = Collector::default();
        let service = TraceServiceServer::new(collector.clone());
        let grpc = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        let router = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export_over_http))
            .with_state(collector.clone());
        let http = tokio::spawn(async move {
            let _ = axum::serve(http_listener, router).await;
        });
        Self {
            addr,
            http_addr,
            collector,
            tasks: [grpc, http],
        }
    }

    /// `http://127.0.0.1:port` of the gRPC port, for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (protocol `grpc`, the default).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:port` of the HTTP port, for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` with `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`
    /// (the exporter appends `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.collector.0.lock().expect("collector lock").clone()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
