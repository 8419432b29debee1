//! The sharer's running program: a pty of its own, a thread reading its
//! output into the session, a thread writing keys to it, and who may type.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Instant;

use tokio::sync::mpsc;

use super::pty::Pty;
use super::sender::{clamp_size, ShareSender};

/// Keys in one message at most (a paste is cut into several; receivers
/// refuse more).
pub use crate::room::MAX_SHARE_KEYS as MAX_KEYS;

pub struct LiveShare {
    pty: Pty,
    pub sender: ShareSender,
    /// The program's output, read off the pty; closed when it exits.
    pub output: mpsc::Receiver<Vec<u8>>,
    keys: std::sync::mpsc::Sender<Vec<u8>>,
    /// The one member (by peer id) who may type, besides us.
    pub controller: Option<String>,
    pub command: String,
}

impl LiveShare {
    /// Starts `command` (run by `/bin/sh -c`, so `$SHELL`, `vi file` and
    /// pipelines all work) in a pty of `cols`×`rows`.
    pub fn start(command: &str, cols: u16, rows: u16) -> std::io::Result<LiveShare> {
        let (cols, rows) = clamp_size(cols, rows);
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(command);
        cmd.env("TERM", "xterm-256color")
            .env("COLUMNS", cols.to_string())
            .env("LINES", rows.to_string())
            .env("STREAMFLOW_SHARE", "1");
        let pty = Pty::spawn(cmd, cols, rows)?;
        let (out_tx, output) = mpsc::channel(64);
        let mut reader = pty.master.try_clone()?;
        std::thread::Builder::new()
            .name("share-read".into())
            .spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        // EIO: the program and everything it started have
                        // exited (the slave side is closed).
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if out_tx.blocking_send(buf[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            })?;
        let (keys, key_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut writer = pty.master.try_clone()?;
        std::thread::Builder::new()
            .name("share-write".into())
            .spawn(move || {
                for keys in key_rx {
                    if writer.write_all(&keys).is_err() {
                        break;
                    }
                }
            })?;
        Ok(LiveShare {
            pty,
            sender: ShareSender::new(cols, rows),
            output,
            keys,
            controller: None,
            command: command.to_string(),
        })
    }

    /// Keys for the program (ours, or the controller's: the caller checks).
    pub fn type_keys(&self, keys: &[u8]) {
        let _ = self.keys.send(keys[..keys.len().min(MAX_KEYS)].to_vec());
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = clamp_size(cols, rows);
        let _ = self.pty.resize(cols, rows);
        self.sender.resize(cols, rows);
    }

    /// May `peer` type? Only the member the sharer granted, right now.
    pub fn may_type(&self, peer: &str) -> bool {
        self.controller.as_deref() == Some(peer)
    }

    /// The next update to send, fed by what the program wrote.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.sender.poll(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn only_the_granted_member_may_type_and_keys_reach_the_program() {
        let mut live = LiveShare::start("exec cat", 40, 5).unwrap();
        assert!(!live.may_type("bob"), "read-only by default");
        live.controller = Some("bob".into());
        assert!(live.may_type("bob") && !live.may_type("carol"));
        live.controller = None;
        assert!(!live.may_type("bob"), "revoked at once");
        live.type_keys(b"hello-share\r");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let bytes = tokio::time::timeout_at(deadline, live.output.recv())
                .await
                .expect("cat echoes within 10 s")
                .expect("cat still runs");
            live.sender.feed(&bytes);
            if live.sender.screen().text().contains("hello-share") {
                break;
            }
        }
    }
}
