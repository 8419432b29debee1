//! The core (room, crypto, wire types) compiles for WebAssembly, so a
//! browser member can run the very code terminal members run (the browser
//! client's first step).

use std::path::Path;
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

fn target_installed() -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false)
}

#[test]
fn the_core_compiles_for_webassembly() {
    if !target_installed() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the {TARGET} target is missing: `rustup target add {TARGET}` (scripts/test does)"
        );
        eprintln!("skipped: the {TARGET} target is not installed");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The build's own target directory: the host-side proc-macros and
    // build scripts are shared with it (cargo locks it while it runs).
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "build",
            "--locked",
            "-p",
            "streamflow-core",
            "--lib",
            "--target",
            TARGET,
        ])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(root)
        .output()
        .expect("run cargo");
    assert!(
        out.status.success(),
        "the core doesn't build for {TARGET}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let built = std::fs::read_dir(target_dir.join(TARGET).join("debug").join("deps"))
        .map(|d| {
            d.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("libstreamflow_core-") && name.ends_with(".rmeta")
            })
        })
        .unwrap_or(false);
    assert!(built, "no streamflow-core metadata for {TARGET}");
}
