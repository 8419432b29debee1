//! The real binary in a real terminal (tmux): the usual SSH size, signals
//! that end the process, and hosting — checked on the screen and in the
//! tty's modes afterwards, as a person would see them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::{safety_words, Tmux};
use common::BIN;

#[test]
fn demo_at_80x24_shows_everyone_and_the_whole_safety_words() {
    let tmux = Tmux::start(
        "80x24",
        80,
        24,
        &format!("{BIN} demo --audio-source none --audio-sink none; echo EXITED $?; sleep 60"),
    );
    let screen = tmux
        .wait_for(Duration::from_secs(40), |s| {
            s.contains("Ada")
                && s.contains("Grace")
                && s.contains("Linus")
                && s.contains('▀')
                && safety_words(s).is_some()
        })
        .unwrap_or_else(|s| panic!("demo at 80x24 incomplete:\n{s}"));
    // At 80 columns the words share the status line with the call's state.
    let status = screen.lines().last().unwrap();
    assert!(status.contains("in the call"), "{status}");
    let words = safety_words(status).unwrap_or_else(|| panic!("words not on one line: {status}"));
    // The help overlay repeats them.
    tmux.run(&["send-keys", "?"]);
    let help = tmux
        .wait_for(Duration::from_secs(10), |s| s.contains("StreamFlow keys"))
        .unwrap_or_else(|s| panic!("no help:\n{s}"));
    assert!(help.contains(&words.join(" ")), "{help}");
    tmux.run(&["send-keys", "x", "q"]);
    tmux.wait_for(Duration::from_secs(15), |s| s.contains("EXITED 0"))
        .unwrap_or_else(|s| panic!("did not exit cleanly:\n{s}"));
}

/// TERM and HUP end the call through the path that restores the terminal:
/// main screen, cursor shown, cooked mode with echo.
#[test]
fn signals_leave_a_working_terminal() {
    for signal in ["TERM", "HUP"] {
        let tmux = Tmux::start(
            &format!("sig{signal}"),
            100,
            30,
            &format!("{BIN} demo --audio-source none --audio-sink none; echo EXITED $?; stty -a; sleep 60"),
        );
        tmux.wait_for(Duration::from_secs(40), |s| {
            s.contains("Ada") && s.contains('▀')
        })
        .unwrap_or_else(|s| panic!("demo did not come up:\n{s}"));
        assert_eq!(tmux.display("#{alternate_on}"), "1");
        let pid = tmux.streamflow_pid();
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(killed.success());
        let screen = tmux
            .wait_for(Duration::from_secs(15), |s| {
                s.contains("EXITED") && s.contains("icanon")
            })
            .unwrap_or_else(|s| panic!("SIG{signal}: no exit:\n{s}"));
        assert!(screen.contains("EXITED 0"), "SIG{signal}:\n{screen}");
        assert_eq!(
            tmux.display("#{alternate_on}"),
            "0",
            "SIG{signal}: alternate screen"
        );
        assert_eq!(
            tmux.display("#{cursor_flag}"),
            "1",
            "SIG{signal}: cursor hidden"
        );
        let modes: Vec<&str> = screen.split_whitespace().collect();
        for mode in ["icanon", "echo", "isig", "icrnl", "opost"] {
            assert!(modes.contains(&mode), "SIG{signal}: {mode} off:\n{screen}");
        }
        assert!(!screen.contains('▀'), "SIG{signal}: video left on screen");
    }
}

/// `host` prints the invite once, on its own line, before the call takes
/// the screen; `s` shows it again in the call; it stays readable after.
#[test]
fn host_prints_the_invite_once_and_shows_it_again() {
    let tmux = Tmux::start(
        "host",
        120,
        30,
        &format!("{BIN} host --listen 127.0.0.1:0 --source test --name Hostess; echo EXITED $?; sleep 60"),
    );
    tmux.wait_for(Duration::from_secs(40), |s| {
        s.contains("Hostess") && s.contains('▀')
    })
    .unwrap_or_else(|s| panic!("host did not come up:\n{s}"));
    tmux.run(&["send-keys", "s"]);
    let overlay = tmux
        .wait_for(Duration::from_secs(10), |s| s.contains("streamflow join "))
        .unwrap_or_else(|s| panic!("no invite overlay:\n{s}"));
    // The join line whole on one screen line, and the invite on its own.
    let line = overlay
        .lines()
        .find(|l| l.contains("streamflow join "))
        .unwrap();
    // Up to the overlay's right border (the chat pane lies behind it).
    let from = &line[line.find("streamflow join").unwrap()..];
    let join: String = from.split('│').next().unwrap().trim_end().to_string();
    let parts: Vec<&str> = join.split_whitespace().collect();
    assert_eq!(parts.len(), 5, "{join}");
    let invite = parts[2];
    assert!(
        streamflow::invite::Invite::parse(invite).is_ok(),
        "{invite}"
    );
    assert!(parts[4].starts_with("ws://127.0.0.1:"), "{join}");
    tmux.run(&["send-keys", "x", "q"]);
    let after = tmux
        .wait_for(Duration::from_secs(15), |s| s.contains("EXITED"))
        .unwrap_or_else(|s| panic!("host did not exit:\n{s}"));
    assert!(after.contains("EXITED 0"), "{after}");
    assert_eq!(
        after.matches(invite).count(),
        1,
        "invite printed once:\n{after}"
    );
    assert!(after.contains(&join), "the join line, whole:\n{after}");
}
