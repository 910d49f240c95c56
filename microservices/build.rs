//! Compiles the protos with protox (pure Rust: no system protoc needed) and
//! generates tonic clients and servers, plus a descriptor set for server
//! reflection.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/bank/v1/bank.proto", "proto/chat/v1/chat.proto"];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let fds = protox::compile(protos, ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
