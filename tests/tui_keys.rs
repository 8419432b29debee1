//! The real binary in tmux, driven by keys as a person would: the host's
//! quit prompt, what 80 columns keep on screen, overlays that scroll,
//! Ctrl-Z, and the safety words across a reconnect (issue 19's first hour).
//! Deadlines carry a wide margin: the machine may be a loaded 2-core box.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::tmux::{safety_words, Tmux};
use common::{Client, BIN};

/// Startup (key derivation, three peers) on a busy machine.
const UP: Duration = Duration::from_secs(60);
/// A key's effect on screen.
const SHOWN: Duration = Duration::from_secs(10);

const PEERS: [&str; 3] = ["Ada", "Grace", "Linus"];

/// `streamflow demo` with no sound devices touched unless `audio` says.
fn demo(tag: &str, w: u16, h: u16, audio: &str) -> Tmux {
    let tmux = Tmux::start(
        tag,
        w,
        h,
        &format!("{BIN} demo {audio} --audio-sink none; r=$?; stty -a; echo EXITED $r; sleep 60"),
    );
    tmux.wait_for(UP, |s| {
        PEERS.iter().any(|p| s.contains(p))
            && s.contains('▀')
            && (w < 60 || safety_words(s).is_some())
    })
    .unwrap_or_else(|s| panic!("demo {w}x{h} did not come up:\n{s}"));
    tmux
}

fn quit_cleanly(tmux: &Tmux) {
    tmux.keys(&["q"]);
    let screen = tmux
        .wait_for(Duration::from_secs(20), |s| {
            s.contains("EXITED") && s.contains("icanon")
        })
        .unwrap_or_else(|s| panic!("did not exit:\n{s}"));
    assert!(screen.contains("EXITED 0"), "{screen}");
    assert!(!tmux.alternate(), "alternate screen left on");
}

/// Issue 19 item 1: the host's second `q` ends the call whenever the
/// prompt is still on screen (here 4 s after the first), and the prompt
/// leaves the screen when it expires. Item 8: at 72 columns the invite box
/// breaks the join command only between arguments; item 7: at 40×12 it
/// scrolls.
#[test]
fn the_host_leaves_while_the_prompt_is_shown_and_the_prompt_expires() {
    let tmux = Tmux::start(
        "hostquit",
        120,
        30,
        &format!(
            "{BIN} host --listen 127.0.0.1:0 --source test --name Hostess \
             --audio-source none --audio-sink none; r=$?; stty -a; echo EXITED $r; sleep 60"
        ),
    );
    tmux.wait_for(UP, |s| s.contains("Hostess") && s.contains('▀'))
        .unwrap_or_else(|s| panic!("host did not come up:\n{s}"));
    tmux.keys(&["s"]);
    let overlay = tmux
        .wait_for(SHOWN, |s| s.contains("streamflow join "))
        .unwrap_or_else(|s| panic!("no invite overlay:\n{s}"));
    let line = overlay
        .lines()
        .find(|l| l.contains("streamflow join "))
        .unwrap();
    let from = &line[line.find("streamflow join").unwrap()..];
    let parts: Vec<String> = from
        .split('│')
        .next()
        .unwrap()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert_eq!(parts.len(), 5, "{from}");
    let (invite, relay) = (parts[2].clone(), parts[4].clone());
    tmux.keys(&["x"]);

    // Item 8: narrower than the join line, each argument stays whole.
    tmux.run(&["resize-window", "-x", "72", "-y", "24"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["s"]);
    let narrow = tmux
        .wait_for(SHOWN, |s| s.contains("streamflow join"))
        .unwrap_or_else(|s| panic!("no invite overlay at 72 columns:\n{s}"));
    assert!(
        narrow.lines().any(|l| l.contains(&invite)),
        "the invite cut:\n{narrow}"
    );
    assert!(
        narrow
            .lines()
            .any(|l| l.contains(&format!("--relay {relay}"))),
        "--relay and its URL apart or cut:\n{narrow}"
    );
    tmux.keys(&["x"]);
    // Item 7: at 40×12 the invite box scrolls to its end.
    tmux.run(&["resize-window", "-x", "40", "-y", "12"]);
    std::thread::sleep(Duration::from_millis(500));
    tmux.keys(&["s"]);
    let top = tmux
        .wait_for(SHOWN, |s| s.contains("Give the others"))
        .unwrap_or_else(|s| panic!("no invite overlay at 40x12:\n{s}"));
    assert!(top.contains("↓ more"), "{top}");
    tmux.keys(&["End"]);
    tmux.wait_for(SHOWN, |s| {
        s.contains("Any other key closes") && s.contains("↑ more")
    })
    .unwrap_or_else(|s| panic!("the invite box never scrolled to its end:\n{s}"));
    tmux.keys(&["x"]);
    tmux.run(&["resize-window", "-x", "100", "-y", "30"]);
    std::thread::sleep(Duration::from_millis(500));

    let guest = Client::spawn(&invite, &relay, "Guest", &[]);
    tmux.wait_for(UP, |s| s.contains("Guest") && s.contains("in the call"))
        .unwrap_or_else(|s| panic!("the guest never showed:\n{s}"));
    let prompt = "End the call for 1 other person?";
    // A first q asks; left alone, the prompt goes.
    tmux.keys(&["q"]);
    let asked = Instant::now();
    tmux.wait_for(SHOWN, |s| s.contains(prompt))
        .unwrap_or_else(|s| panic!("no prompt:\n{s}"));
    let gone = tmux
        .wait_for(Duration::from_secs(30), |s| !s.contains(prompt))
        .unwrap_or_else(|s| panic!("the prompt stayed on screen:\n{s}"));
    assert!(
        asked.elapsed() >= Duration::from_secs(4),
        "the prompt went too soon:\n{gone}"
    );
    assert!(!gone.contains("EXITED"), "{gone}");
    // Asked again: a second q late, but while the prompt shows, ends it.
    tmux.keys(&["q"]);
    tmux.wait_for(SHOWN, |s| s.contains(prompt))
        .unwrap_or_else(|s| panic!("no prompt the second time:\n{s}"));
    std::thread::sleep(Duration::from_secs(4));
    let still = tmux.screen();
    assert!(still.contains(prompt), "the prompt left early:\n{still}");
    quit_cleanly(&tmux);
    drop(guest);
}

/// Issue 19 items 5 and 6 at 80×24: the demo takes `--audio-source` and
/// its peers speak (voice meters on their tiles); `? help` stays on the
/// status line; `c` and `f` flash the new mode; `s` says why there is no
/// invite.
#[test]
fn at_80_columns_help_stays_and_modes_flash() {
    let tmux = demo("80cols", 80, 24, "--audio-source tone");
    let screen = tmux.screen();
    let status = screen.lines().last().unwrap().trim_end();
    assert!(status.ends_with("? help"), "{status}");
    // The peers' voices arrive: meters on their tiles.
    let meter = |l: &str| l.contains('▮') || l.contains('▯');
    let peer = |l: &str| PEERS.iter().any(|p| l.contains(p));
    tmux.wait_for(UP, |s| s.lines().any(|l| peer(l) && meter(l)))
        .unwrap_or_else(|s| panic!("no voice in the demo:\n{s}"));
    tmux.keys(&["c"]);
    tmux.wait_for(SHOWN, |s| s.contains("colours: 256"))
        .unwrap_or_else(|s| panic!("c flashed nothing:\n{s}"));
    tmux.wait_for(SHOWN, |s| !s.contains("colours: 256"))
        .unwrap_or_else(|s| panic!("the flash stayed:\n{s}"));
    tmux.keys(&["f"]);
    tmux.wait_for(SHOWN, |s| s.contains("(2/4; f for the next)"))
        .unwrap_or_else(|s| panic!("f flashed nothing:\n{s}"));
    tmux.keys(&["f", "f", "f"]);
    tmux.wait_for(SHOWN, |s| s.contains("f: you (1/4"))
        .unwrap_or_else(|s| panic!("f never showed your own tile:\n{s}"));
    tmux.keys(&["s"]);
    let told = tmux
        .wait_for(SHOWN, |s| s.contains("only the host has an invite"))
        .unwrap_or_else(|s| panic!("s said nothing:\n{s}"));
    let status = told.lines().last().unwrap().trim_end();
    assert!(status.ends_with("? help"), "{status}");
    quit_cleanly(&tmux);
}

/// Issue 19 item 7: at 40×12 the help is taller than the screen: it says
/// "↓ more" and scrolls to its last line.
#[test]
fn at_40x12_the_help_scrolls() {
    let tmux = demo("40x12", 40, 12, "--audio-source none");
    tmux.keys(&["?"]);
    let top = tmux
        .wait_for(SHOWN, |s| s.contains("StreamFlow keys"))
        .unwrap_or_else(|s| panic!("no help:\n{s}"));
    assert!(top.contains("↓ more"), "{top}");
    assert!(!top.contains("this help"), "{top}");
    tmux.keys(&["PageDown", "PageDown", "PageDown", "PageDown"]);
    let bottom = tmux
        .wait_for(SHOWN, |s| s.contains("this help"))
        .unwrap_or_else(|s| panic!("never scrolled to the end:\n{s}"));
    assert!(bottom.contains("↑ more"), "{bottom}");
    tmux.keys(&["Home"]);
    tmux.wait_for(SHOWN, |s| s.contains("Safety words"))
        .unwrap_or_else(|s| panic!("Home did not go back up:\n{s}"));
    tmux.keys(&["x"]);
    tmux.wait_for(SHOWN, |s| !s.contains("StreamFlow keys"))
        .unwrap_or_else(|s| panic!("help did not close:\n{s}"));
    quit_cleanly(&tmux);
}

/// Issue 19: Ctrl-Z gives the shell a working terminal, `fg` brings the
/// call back whole, and keys work after.
#[test]
fn ctrl_z_suspends_and_fg_resumes() {
    let tmux = Tmux::start_with(
        "ctrlz",
        100,
        30,
        &["COLORTERM=truecolor", "PS1=$ "],
        "bash --norc --noprofile -i",
    );
    tmux.wait_for(SHOWN, |s| s.contains('$') || s.contains('#'))
        .unwrap_or_else(|s| panic!("no shell:\n{s}"));
    tmux.keys(&[
        &format!("{BIN} demo --audio-source none --audio-sink none"),
        "Enter",
    ]);
    tmux.wait_for(UP, |s| s.contains("Ada") && s.contains('▀'))
        .unwrap_or_else(|s| panic!("demo did not come up:\n{s}"));
    tmux.keys(&["C-z"]);
    let stopped = tmux
        .wait_for(SHOWN, |s| s.contains("Stopped"))
        .unwrap_or_else(|s| panic!("Ctrl-Z did not suspend:\n{s}"));
    assert!(!tmux.alternate(), "suspended in the alternate screen");
    assert!(!stopped.contains('▀'), "video left on the shell's screen");
    // The shell's terminal works: typed text echoes.
    tmux.keys(&["echo back-in-the-shell", "Enter"]);
    tmux.wait_for(SHOWN, |s| s.matches("back-in-the-shell").count() >= 2)
        .unwrap_or_else(|s| panic!("the shell's terminal is not usable:\n{s}"));
    tmux.keys(&["fg", "Enter"]);
    tmux.wait_for(UP, |s| s.contains("Ada") && s.contains('▀'))
        .unwrap_or_else(|s| panic!("fg did not bring the call back:\n{s}"));
    assert!(tmux.alternate());
    tmux.keys(&["?"]);
    tmux.wait_for(SHOWN, |s| s.contains("StreamFlow keys"))
        .unwrap_or_else(|s| panic!("keys dead after resuming:\n{s}"));
    tmux.keys(&["x", "q"]);
    // Back at the prompt (keys typed before it would be flushed).
    let prompt = |s: &str| {
        let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        last.trim_end().ends_with('#') || last.trim_end().ends_with('$')
    };
    tmux.wait_for(Duration::from_secs(20), |s| !s.contains("Ada") && prompt(s))
        .unwrap_or_else(|s| panic!("did not quit:\n{s}"));
    tmux.keys(&["stty -a; echo EXITED $?", "Enter"]);
    let after = tmux
        .wait_for(SHOWN, |s| s.contains("EXITED") && s.contains("icanon"))
        .unwrap_or_else(|s| panic!("no shell after:\n{s}"));
    assert!(!tmux.alternate());
    let modes: Vec<&str> = after.split_whitespace().collect();
    for mode in ["icanon", "echo", "isig"] {
        assert!(modes.contains(&mode), "{mode} off:\n{after}");
    }
}

/// A relay process on `addr`, up when this returns.
fn relay_at(addr: &str) -> Child {
    let child = Command::new(BIN)
        .args(["relay", "--listen", addr])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the relay");
    let end = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < end, "the relay never listened on {addr}");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

/// Issue 19 item 20: while reconnecting, the old safety words leave the
/// status line for "(compare again after reconnecting)"; after the
/// reconnect, words are shown again. And a member's `s` shows the invite
/// it joined with.
#[test]
fn old_safety_words_go_while_reconnecting() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let url = format!("ws://{addr}");
    let mut relay = relay_at(&addr);
    let invite = common::fresh_invite();
    let _guest = Client::spawn(&invite, &url, "Guest", &[]);
    let tmux = Tmux::start(
        "reconnect",
        100,
        30,
        &format!(
            "{BIN} join {invite} --relay {url} --source test --name Tui \
             --audio-source none --audio-sink none; r=$?; stty -a; echo EXITED $r; sleep 60"
        ),
    );
    let screen = tmux
        .wait_for(UP, |s| safety_words(s).is_some())
        .unwrap_or_else(|s| panic!("no safety words:\n{s}"));
    let words = safety_words(&screen).unwrap().join(" ");
    // A member's `s` shows the invite it joined with.
    tmux.keys(&["s"]);
    let shown = tmux
        .wait_for(SHOWN, |s| s.contains(&format!("streamflow join {invite}")))
        .unwrap_or_else(|s| panic!("s showed no invite for a member:\n{s}"));
    assert!(shown.contains(&format!("--relay {url}")), "{shown}");
    tmux.keys(&["x"]);
    tmux.wait_for(SHOWN, |s| !s.contains("streamflow join"))
        .unwrap_or_else(|s| panic!("the invite did not close:\n{s}"));
    let _ = relay.kill();
    let _ = relay.wait();
    let offline = tmux
        .wait_for(Duration::from_secs(40), |s| s.contains("offline"))
        .unwrap_or_else(|s| panic!("never offline:\n{s}"));
    let flat = offline
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        !flat.contains(&words),
        "old words shown while offline:\n{offline}"
    );
    assert!(
        flat.contains("compare again after reconnecting"),
        "{offline}"
    );
    let mut relay = relay_at(&addr);
    tmux.wait_for(UP, |s| safety_words(s).is_some() && !s.contains("offline"))
        .unwrap_or_else(|s| panic!("no words after reconnecting:\n{s}"));
    quit_cleanly(&tmux);
    let _ = relay.kill();
    let _ = relay.wait();
}

/// Issue 19: with NO_COLOR the picture is drawn with a brightness ramp
/// (shades between black and white), not one threshold that loses the
/// names and clocks.
#[test]
fn no_color_draws_shades() {
    let tmux = Tmux::start_with(
        "nocolor",
        100,
        30,
        &["NO_COLOR=1"],
        &format!("{BIN} demo --audio-source none --audio-sink none; echo EXITED $?; sleep 60"),
    );
    let shaded = |s: &str| s.contains('░') || s.contains('▒') || s.contains('▓');
    let screen = tmux
        .wait_for(UP, |s| PEERS.iter().all(|p| s.contains(p)) && shaded(s))
        .unwrap_or_else(|s| panic!("no shades in mono:\n{s}"));
    let status = screen.lines().last().unwrap();
    assert!(
        status.contains("mono") || status.contains("? help"),
        "{status}"
    );
    if std::env::var_os("SHOW_SCREEN").is_some() {
        eprintln!("{screen}");
    }
    tmux.keys(&["q"]);
    tmux.wait_for(Duration::from_secs(20), |s| s.contains("EXITED 0"))
        .unwrap_or_else(|s| panic!("did not exit:\n{s}"));
}

/// Issue 19: a long, hostile name in the roster (the sidebar from 120
/// columns) gives way to the member's state, which stays whole.
#[test]
fn a_long_name_in_the_roster_keeps_its_state() {
    let tmux = Tmux::start(
        "roster",
        140,
        30,
        &format!(
            "{BIN} host --listen 127.0.0.1:0 --source test --name Hostess \
             --audio-source none --audio-sink none; r=$?; stty -a; echo EXITED $r; sleep 60"
        ),
    );
    tmux.wait_for(UP, |s| s.contains("Hostess") && s.contains('▀'))
        .unwrap_or_else(|s| panic!("host did not come up:\n{s}"));
    tmux.keys(&["s"]);
    let overlay = tmux
        .wait_for(SHOWN, |s| s.contains("streamflow join "))
        .unwrap_or_else(|s| panic!("no invite overlay:\n{s}"));
    let line = overlay
        .lines()
        .find(|l| l.contains("streamflow join "))
        .unwrap();
    let from = &line[line.find("streamflow join").unwrap()..];
    let parts: Vec<&str> = from.split('│').next().unwrap().split_whitespace().collect();
    assert_eq!(parts.len(), 5, "{from}");
    tmux.keys(&["x"]);
    let name = "pwned\u{1b}[2J日本語の名前です👨\u{200D}👩\u{200D}👧 Bartholomew Featherstonehaugh";
    let guest = Client::spawn(parts[2], parts[4], name, &["--source", "none"]);
    let screen = tmux
        .wait_for(UP, |s| {
            s.lines()
                .any(|l| l.contains("✓ pwned") && l.contains("(view only)"))
        })
        .unwrap_or_else(|s| panic!("the roster cut the state:\n{s}"));
    let row = screen.lines().find(|l| l.contains("✓ pwned")).unwrap();
    assert!(!row.contains('\u{1b}'), "{row}");
    assert!(row.contains('…'), "the long name not shortened: {row}");
    quit_cleanly_after_asking(&tmux);
    drop(guest);
}

/// The host with others present: q asks, q again ends the call.
fn quit_cleanly_after_asking(tmux: &Tmux) {
    tmux.keys(&["q"]);
    tmux.wait_for(SHOWN, |s| s.contains("End the call for"))
        .unwrap_or_else(|s| panic!("no prompt:\n{s}"));
    quit_cleanly(tmux);
}
