//! Builds the browser client (`web/`, for `wasm32-unknown-unknown`) so that
//! `streamflow web` serves a page that came from this very binary.
//!
//! The module is built by a nested cargo into its own target directory
//! (`target/web-build`), with the `web` profile. Without the WebAssembly
//! target (`rustup target add wasm32-unknown-unknown`) the binary still
//! builds, with no browser client: `streamflow web` then says how to get
//! one. Under CI a missing module is an error.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    for path in [
        "web/src",
        "web/Cargo.toml",
        "core/src",
        "core/Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    println!("cargo:rerun-if-env-changed=CI");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"))
        .join("web-build");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&manifest)
        .args([
            "build",
            "--locked",
            "-p",
            "streamflow-web",
            "--profile",
            "web",
        ])
        .args(["--target", "wasm32-unknown-unknown", "--target-dir"])
        .arg(&target_dir)
        // Not for this build: clippy's wrapper and the host's flags.
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status();
    let built = target_dir.join("wasm32-unknown-unknown/web/streamflow_web.wasm");
    let wasm = match status {
        Ok(s) if s.success() => std::fs::read(&built).ok(),
        _ => None,
    };
    let wasm = match wasm {
        Some(bytes) => bytes,
        None if std::env::var_os("CI").is_some() => {
            panic!("the browser client (web/) did not build for wasm32-unknown-unknown")
        }
        None => {
            println!(
                "cargo:warning=no browser client in this build: rustup target add wasm32-unknown-unknown, then build again"
            );
            Vec::new()
        }
    };
    std::fs::write(out.join("streamflow.wasm"), wasm).expect("OUT_DIR is writable");
}
