//! gRPC server reflection, as grpcurl uses it: both services list their own
//! API and `grpc.health.v1.Health`, and describe each, so that
//! `grpcurl -plaintext <addr> grpc.health.v1.Health/Check` needs no .proto.

use tests::{catalog::spawn_catalog, order::spawn_order};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// What the reflection service at `url` answers to `request`.
async fn ask(url: &str, request: MessageRequest) -> MessageResponse {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())
        .expect("a valid URL")
        .connect()
        .await
        .expect("connects");
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection is served")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answers")
        .expect("one answer");
    answer.message_response.expect("a response")
}

async fn assert_describes(url: &str, own_service: &str) {
    let MessageResponse::ListServicesResponse(list) =
        ask(url, MessageRequest::ListServices(String::new())).await
    else {
        panic!("ListServices answered something else");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [own_service, "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    for symbol in [own_service, "grpc.health.v1.Health"] {
        let answer = ask(url, MessageRequest::FileContainingSymbol(symbol.into())).await;
        let MessageResponse::FileDescriptorResponse(files) = answer else {
            panic!("{symbol}: no file descriptor: {answer:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}: empty");
    }
}

#[tokio::test]
async fn both_services_describe_their_api_and_health() {
    let catalog = spawn_catalog().await;
    assert_describes(&catalog.url(), "catalog.v1.CatalogService").await;
    let order = spawn_order(&catalog.url()).await;
    assert_describes(&order.url(), "order.v1.OrderService").await;
}
