//! Compiles `proto/message.proto` with protox (no system `protoc`) into prost types and the tonic
//! client and server of the message service.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/message.proto");
    let descriptors = protox::compile(["message.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
