//! Compiles `corridor/**/*.proto` with protox (pure Rust, so no `protoc` is
//! needed) and generates tonic clients and servers into `OUT_DIR`.

use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "corridor/fhir/v1/fhir.proto",
    "corridor/identity/v1/identity.proto",
    "corridor/encounters/v1/encounters.proto",
    "corridor/referrals/v1/referrals.proto",
    "corridor/federation/v1/federation.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let fds = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Served by gRPC reflection, so grpcurl works without .proto files.
    std::fs::write(out_dir.join("corridor_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
