//! Generates the Rust client and server code for every `.proto` file, plus a
//! file descriptor set for gRPC server reflection.
//!
//! `protoc` comes from the `protoc-bin-vendored` crate, so a fresh machine needs
//! nothing but crates.io; a `PROTOC` in the environment still wins.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "common/v1/money.proto",
    "catalog/v1/catalog.proto",
    "order/v1/order.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // The well-known types (google/protobuf/timestamp.proto) ship beside it.
        let include = protoc_bin_vendored::include_path()?;
        // Edition 2024 marks set_var unsafe; pass the paths to the builder instead.
        return generate(Some(protoc), Some(include));
    }
    generate(None, None)
}

fn generate(
    protoc: Option<PathBuf>,
    well_known: Option<PathBuf>,
) -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let mut includes = vec![PathBuf::from(".")];
    includes.extend(well_known);
    let protos: Vec<PathBuf> = PROTOS.iter().map(PathBuf::from).collect();
    let mut config = prost_build::Config::new();
    if let Some(protoc) = protoc {
        config.protoc_executable(protoc);
    }
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("descriptor.bin"))
        .compile_with_config(config, &protos, &includes)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
