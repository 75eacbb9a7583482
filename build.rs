//! Compiles `proto/heartbeat.proto` with protox (a pure-Rust protobuf compiler: no system `protoc`)
//! into prost types, and saves the encoded descriptor set for the JSON mapping.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/heartbeat.proto");
    let descriptors = protox::compile(["heartbeat.proto"], ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("heartbeat.descriptors.bin"), prost::Message::encode_to_vec(&descriptors))?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
