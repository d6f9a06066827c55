//! Services every gRPC server of the platform registers beside its own:
//! reflection (v1 and v1alpha: grpcurl 1.8 still asks for v1alpha), which
//! describes the service's own API and `grpc.health.v1.Health`, so that
//! `grpcurl ... grpc.health.v1.Health/Check` works without a local .proto.

use tonic_reflection::server::{v1, v1alpha};

use proto::FILE_DESCRIPTOR_SET;

/// The descriptors reflection serves: the platform's protos and health's.
fn described() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

const VALID: &str = "the embedded descriptor sets are valid: protoc produced them at build time";

pub fn reflection_v1() -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    described().build_v1().expect(VALID)
}

pub fn reflection_v1alpha() -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    described().build_v1alpha().expect(VALID)
}

/// Asks the gRPC health service at `addr` about the overall `""` service;
/// true when it answers SERVING within `timeout`. What `--probe` runs (e.g.
/// a container health check); over TLS when `tls` is given.
pub async fn probe(
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> bool {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let check = async {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}")).ok()?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).ok()?;
        }
        let channel = endpoint.connect().await.ok()?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        Some(response.into_inner().status == ServingStatus::Serving as i32)
    };
    matches!(tokio::time::timeout(timeout, check).await, Ok(Some(true)))
}

/// Keeps a gRPC health reporter in step with a dependency (the database):
/// every `interval`, `check` decides SERVING or NOT_SERVING for the overall
/// service and for `S`. Runs until the task is dropped or aborted.
pub async fn follow_dependency<S, F, Fut>(
    reporter: tonic_health::server::HealthReporter,
    interval: std::time::Duration,
    mut check: F,
) where
    S: tonic::server::NamedService,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    use tonic_health::ServingStatus;
    let mut last = None;
    loop {
        let healthy = check().await;
        if last != Some(healthy) {
            let status = if healthy {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            if healthy {
                tracing::info!(service = S::NAME, "dependencies reachable: SERVING");
            } else {
                tracing::warn!(
                    service = S::NAME,
                    "a dependency is unreachable: NOT_SERVING"
                );
            }
            reporter.set_service_status("", status).await;
            reporter.set_service_status(S::NAME, status).await;
            last = Some(healthy);
        }
        tokio::time::sleep(interval).await;
    }
}
