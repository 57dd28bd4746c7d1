//! Compiles the stacktop.v1 contract with protox (pure Rust, so no `protoc`
//! binary is needed) and generates prost messages plus tonic clients and
//! servers. The encoded descriptor set is kept for gRPC server reflection.

use std::path::PathBuf;

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/stacktop/v1/common.proto",
    "proto/stacktop/v1/alerts.proto",
    "proto/stacktop/v1/ingest.proto",
    "proto/stacktop/v1/fleet.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR not set")?);
    std::fs::write(out_dir.join("stacktop_descriptor.bin"), fds.encode_to_vec())?;
    // `Ingest.Connect` would clash with the generated `IngestClient::connect`
    // constructor; clients build a `Channel` themselves and call `new`.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
