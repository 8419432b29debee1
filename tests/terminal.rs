//! The real binary in a real terminal (tmux): the usual SSH size, signals
//! that end the process, and hosting — checked on the screen and in the
//! tty's modes afterwards, as a person would see them.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_streamflow");

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` (through sh) in a `w`×`h` terminal.
    fn start(tag: &str, w: u16, h: u16, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("sf-{tag}-{}", std::process::id()),
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            &w.to_string(),
            "-y",
            &h.to_string(),
            "-e",
            "COLORTERM=truecolor",
            command,
        ]);
        assert!(out.status.success(), "tmux: {out:?}");
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/debian-packages.txt)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.run(&["display", "-p", format]).stdout)
            .trim()
            .to_string()
    }

    /// Waits until `pred` holds for the screen; the last screen either way.
    fn wait_for(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        let end = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return Ok(screen);
            }
            if Instant::now() > end {
                return Err(screen);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The streamflow process under the pane's shell.
    fn streamflow_pid(&self) -> String {
        let shell = self.display("#{pane_pid}");
        let out = Command::new("pgrep")
            .args(["-P", &shell, "-x", "streamflow"])
            .output()
            .expect("pgrep");
        let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!pid.is_empty(), "no streamflow under {shell}");
        pid
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// The four safety words on the screen, if shown whole after `safety: `.
fn safety_words(screen: &str) -> Option<Vec<String>> {
    let flat: String = screen
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ");
    let at = flat.find("safety: ")? + "safety: ".len();
    let words: Vec<String> = flat[at..]
        .split_whitespace()
        .take(4)
        .map(str::to_string)
        .collect();
    (words.len() == 4 && words.iter().all(|w| streamflow::wordlist::contains(w))).then_some(words)
}

#[test]
fn demo_at_80x24_shows_everyone_and_the_whole_safety_words() {
    let tmux = Tmux::start(
        "80x24",
        80,
        24,
        &format!("{BIN} demo; echo EXITED $?; sleep 60"),
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
            &format!("{BIN} demo; echo EXITED $?; stty -a; sleep 60"),
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
