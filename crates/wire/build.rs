//! Compiles the vendored Kubernetes `.proto` files (proto/) into one
//! FileDescriptorSet with protox (a Rust protobuf compiler: no protoc needed).
//! The library embeds the set and decodes it once, on first use.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let proto = root.join("proto");
    println!("cargo:rerun-if-changed=proto");

    let mut files = Vec::new();
    collect(&proto, &mut files);
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&proto).expect("under proto/").to_path_buf())
        .collect();

    let mut compiler = protox::Compiler::new([&proto]).expect("protox include path");
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(&relative)
        .unwrap_or_else(|e| panic!("compiling proto/: {e:?}"));
    let set = compiler.encode_file_descriptor_set();

    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("kubernetes.binpb");
    std::fs::write(&out, set).expect("writing descriptor set");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading proto/") {
        let path = entry.expect("proto/ entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "proto") {
            files.push(path);
        }
    }
}
