//! The shell completions and man pages in `share/` are generated from the
//! same definitions as `--help`; these tests fail when they fall behind.
//! Regenerate with `scripts/gen-cli-docs`.

mod common;

use std::path::Path;
use std::process::Command;

use common::BIN;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The binary with no STREAMFLOW_* settings of the caller's (clap shows
/// environment values in help and man pages).
fn bin() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("STREAMFLOW_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn shell_completions_are_current() {
    for (shell, file) in [
        ("bash", "streamflow.bash"),
        ("zsh", "_streamflow"),
        ("fish", "streamflow.fish"),
    ] {
        let out = bin().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let committed = std::fs::read(repo().join("share/completions").join(file))
            .unwrap_or_else(|e| panic!("share/completions/{file}: {e}"));
        assert!(
            out.stdout == committed,
            "share/completions/{file} is stale: run scripts/gen-cli-docs"
        );
    }
}

#[test]
fn man_pages_are_current() {
    let dir = std::env::temp_dir().join(format!("sf-man-{}", std::process::id()));
    let out = bin().args(["man", dir.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success());
    let mut pages: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    pages.sort();
    assert!(pages.len() >= 8, "one page per subcommand: {pages:?}");
    for page in &pages {
        let fresh = std::fs::read(dir.join(page)).unwrap();
        let committed = std::fs::read(repo().join("share/man").join(page))
            .unwrap_or_else(|e| panic!("share/man/{page:?}: {e}: run scripts/gen-cli-docs"));
        assert!(
            fresh == committed,
            "share/man/{page:?} is stale: run scripts/gen-cli-docs"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bare_streamflow_shows_the_help() {
    let bare = bin().output().unwrap();
    let help = bin().arg("--help").output().unwrap();
    assert_eq!(bare.status.code(), Some(2));
    let bare_text = String::from_utf8_lossy(&bare.stdout);
    let help_text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(bare_text, help_text);
    assert!(help_text.contains("Try it:"), "{help_text}");
    let version = bin().arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("streamflow "));
}
