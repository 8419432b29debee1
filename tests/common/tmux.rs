//! The real binary in a real terminal: tmux as the user's terminal, keys
//! sent as a person types them, the screen read back as text.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of our own, killed on drop.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// Runs `command` (through sh) in a `w`×`h` terminal.
    pub fn start(tag: &str, w: u16, h: u16, command: &str) -> Tmux {
        Tmux::start_with(tag, w, h, &["COLORTERM=truecolor"], command)
    }

    /// Like [`Tmux::start`], with these `NAME=VALUE`s in the environment.
    pub fn start_with(tag: &str, w: u16, h: u16, env: &[&str], command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("sf-{tag}-{}", std::process::id()),
        };
        let (w, h) = (w.to_string(), h.to_string());
        let mut args = vec!["new-session", "-d", "-x", &w, "-y", &h];
        for e in env {
            args.extend(["-e", e]);
        }
        // Its own config (identity, known peers) unless the test gives one.
        let config = format!("XDG_CONFIG_HOME={}", super::fresh_config_dir().display());
        if !env.iter().any(|e| e.starts_with("XDG_CONFIG_HOME=")) {
            args.extend(["-e", &config]);
        }
        args.push(command);
        let out = tmux.run(&args);
        assert!(out.status.success(), "tmux: {out:?}");
        tmux
    }

    /// Types `keys` (tmux key names: `q`, `C-z`, `PageDown`, `Enter`).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys"];
        args.extend(keys);
        let out = self.run(&args);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// The terminal shows the alternate screen (a full-screen program).
    pub fn alternate(&self) -> bool {
        self.display("#{alternate_on}") == "1"
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/debian-packages.txt)")
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p"]).stdout).into_owned()
    }

    pub fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.run(&["display", "-p", format]).stdout)
            .trim()
            .to_string()
    }

    /// Waits until `pred` holds for the screen; the last screen either way.
    pub fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
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
    pub fn streamflow_pid(&self) -> String {
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
pub fn safety_words(screen: &str) -> Option<Vec<String>> {
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
