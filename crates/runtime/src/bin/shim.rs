//! The shim alone, for the runtime crate's own tests
//! (`krate-runtime-shim __shim launch DIR`); the product runs it as
//! `krate __shim ...`.

fn main() {
    let args: Vec<String> = std::env::args().skip(2).collect();
    std::process::exit(runtime::shim::main(&args));
}
