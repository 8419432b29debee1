//! A shared terminal as a viewer meets it: the real binary in tmux at
//! 80×24 watching a 120×40 share. The view pans with the cursor, `f`
//! focuses it, and nothing the shared program prints (clipboard writes,
//! title changes, mouse modes, DCS, bells) reaches the viewer's terminal.

mod common;

use std::time::Duration;

use common::tmux::Tmux;
use common::{fresh_invite, relay, Client, BIN};

const WAIT: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_a_bigger_share_pan_with_the_cursor_and_no_escapes() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    // 38 lines, then a marker far right on the bottom row (the cursor
    // ends there): only a view that follows the cursor shows it.
    let program = r"printf 'A\033]52;c;aGVsbG8=\007B\033]0;owned\007C\033[?1000hD\033Pqpayload\033\\E\007\007F\n'; i=0; while [ $i -lt 38 ]; do i=$((i+1)); echo line-$i; done; printf '%100s' BOTTOM-MARKER; sleep 600";
    let _ada = Client::spawn(
        &invite,
        &url,
        "Ada",
        &[
            "--source",
            "none",
            "--share",
            program,
            "--share-size",
            "120x40",
        ],
    );
    let dir = std::env::temp_dir().join(format!("sf-share-tui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bytes_file = dir.join("pane.out");
    let tmux = Tmux::start(
        "share",
        80,
        24,
        &format!(
            "{BIN} join {invite} --relay {url} --source none --audio-source none --audio-sink none --name Bob"
        ),
    );
    let pipe = tmux.run(&[
        "pipe-pane",
        "-O",
        &format!("cat >> {}", bytes_file.display()),
    ]);
    assert!(pipe.status.success(), "{pipe:?}");
    let screen = tmux
        .wait_for(WAIT, |s| {
            s.contains("BOTTOM-MARKER") && s.contains("Ada's terminal")
        })
        .unwrap_or_else(|s| panic!("the share's cursor row never showed:\n{s}"));
    // Panned down and right: the top-left of the share is out of view.
    assert!(!screen.contains("ABCDEF"), "not panned:\n{screen}");
    assert!(screen.contains("read-only"), "{screen}");
    // f: the share alone, the cursor still in view.
    tmux.keys(&["f"]);
    tmux.wait_for(WAIT, |s| {
        s.contains("arrows pan") && s.contains("BOTTOM-MARKER")
    })
    .unwrap_or_else(|s| panic!("f did not focus the share:\n{s}"));
    // Arrows pan by hand: up to the top, where the first line is.
    for _ in 0..20 {
        tmux.keys(&["Up", "Left", "Left"]);
    }
    tmux.wait_for(WAIT, |s| s.contains("ABCDEF") && s.contains("line-1"))
        .unwrap_or_else(|s| panic!("panning up did not reach the top:\n{s}"));
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    let _ = tmux.wait_for(Duration::from_secs(10), |_| !tmux.alternate());
    let written = std::fs::read(&bytes_file).unwrap_or_default();
    let text = String::from_utf8_lossy(&written);
    assert!(text.contains("line-1"), "the pipe saw the share");
    for bad in [
        "aGVsbG8",
        "owned",
        "payload",
        "\x1b]52",
        "\x1b[?1000h",
        "\x1bP",
        "\x07",
    ] {
        assert!(!text.contains(bad), "{bad:?} reached the viewer's terminal");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
