//! Builds the pod sandbox's pause process (pause/pause.c) as a small static
//! binary that the runtime embeds and writes into each sandbox's rootfs.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = PathBuf::from("pause/pause.c");
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("pause");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let status = Command::new(&cc)
        .args(["-static", "-Os", "-s", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| panic!("running {cc} to build the pause binary: {e}"));
    assert!(status.success(), "{cc} failed to build {}", src.display());
}
