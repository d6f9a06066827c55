//! The channels' construction (a bad URL or half a TLS setup stops the
//! start, naming the setting) and what every call carries.

use axum::http::Request;
use clap::Parser;

use super::*;

#[tokio::test]
async fn calls_carry_the_request_id_trace_context_and_deadline() {
    let (parts, ()) = Request::builder()
        .header("x-request-id", "req-42")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("authorization", "Bearer secret")
        .body(())
        .unwrap()
        .into_parts();
    let ctx = CallContext::of(&parts);
    let mut config = Config::parse_from(["gateway"]);
    config.grpc_timeout = std::time::Duration::from_millis(1_500);
    let backends = Backends::connect(&config, Metrics::new()).await.unwrap();
    let request = backends.request((), &ctx);
    let metadata = request.metadata();
    assert_eq!(metadata.get("x-request-id").unwrap(), "req-42");
    assert_eq!(
        metadata.get("traceparent").unwrap(),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert_eq!(metadata.get("grpc-timeout").unwrap(), "1500000u");
    // Only the listed headers travel on; credentials never do.
    assert!(metadata.get("authorization").is_none());
}

/// Why the channels could not be built from the default settings changed by
/// `change`, in full.
async fn connect_error(change: impl FnOnce(&mut Config)) -> String {
    let mut config = Config::parse_from(["gateway"]);
    change(&mut config);
    let error = Backends::connect(&config, Metrics::new())
        .await
        .unwrap_err();
    format!("{error:#}")
}

#[tokio::test]
async fn a_malformed_service_url_stops_the_start() {
    let error = connect_error(|config| config.order_url = "not a url".into()).await;
    assert!(error.contains("ORDER_URL"), "{error}");
}

#[tokio::test]
async fn an_https_url_without_tls_settings_stops_the_start() {
    let error = connect_error(|config| config.catalog_url = "https://127.0.0.1:50051".into()).await;
    assert!(error.contains("CATALOG_URL"), "{error}");
    assert!(error.contains("GRPC_TLS_CA_FILE"), "{error}");
}

#[tokio::test]
async fn half_configured_tls_stops_the_start_naming_the_setting() {
    let error = connect_error(|config| {
        config.grpc_tls.grpc_tls_cert_file = Some("/etc/tls/gateway.pem".into());
    })
    .await;
    assert!(error.contains("GRPC_TLS_KEY_FILE"), "{error}");
}
