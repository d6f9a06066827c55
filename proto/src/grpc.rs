//! Services every gRPC server of the platform registers beside its own:
//! reflection (v1 and v1alpha: grpcurl 1.8 still asks for v1alpha).

use tonic_reflection::server::{v1, v1alpha};

use crate::FILE_DESCRIPTOR_SET;

pub fn reflection_v1() -> v1::ServerReflectionServer<impl v1::ServerReflection> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor set is valid: it was produced by protoc at build time")
}

pub fn reflection_v1alpha() -> v1alpha::ServerReflectionServer<impl v1alpha::ServerReflection> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .expect("the embedded descriptor set is valid: it was produced by protoc at build time")
}
