//! Compiles the Prometheus remote_write 1.0 messages (proto/remote_write.proto)
//! with protox, like the stacktop-proto crate does its contract: pure Rust,
//! no `protoc` binary. Only messages: the collector sends them over plain
//! HTTP, not gRPC.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/remote_write.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
