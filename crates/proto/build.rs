//! Compiles `proto/hookrelay/v1/agent.proto` with protox, a pure-Rust
//! protobuf compiler, so `cargo build` needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/hookrelay/v1/agent.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The rpc is named `Connect` (DESIGN §5), which would clash with the
        // generated `AgentClient::connect` constructor: agents build their
        // channel themselves.
        .build_transport(false)
        // Tunnel chunks are handed on as they come: `Bytes` saves a copy.
        .bytes(".hookrelay.v1.TunnelChunk")
        .compile_fds(descriptors)?;
    Ok(())
}
