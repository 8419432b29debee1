//! Helpers for end-to-end tests: a relay on an ephemeral loopback port, and
//! the real `streamflow` binary run as a headless client.
#![allow(dead_code)]

pub mod bare;
pub mod procs;
pub mod tmux;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_streamflow");

pub async fn relay() -> streamflow_relay::RelayHandle {
    streamflow_relay::start(streamflow_relay::RelayConfig::loopback())
        .await
        .expect("relay starts")
}

/// A loopback address nothing listens on yet (a relay started later, or
/// restarted, takes it).
pub fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A relay on a given address (to restart one where its clients reconnect).
pub async fn relay_at(addr: std::net::SocketAddr) -> streamflow_relay::RelayHandle {
    streamflow_relay::start(streamflow_relay::RelayConfig {
        listen: addr,
        ..Default::default()
    })
    .await
    .expect("relay starts")
}

pub fn fresh_invite() -> String {
    streamflow::invite::Invite::generate(&mut rand_core::OsRng)
        .to_shareable()
        .to_string()
}

/// A headless client process and the JSON events it printed.
pub struct Client {
    pub child: Child,
    /// Each event with the moment this test read it.
    pub events: Arc<Mutex<Vec<(Instant, Value)>>>,
    pub stderr: Arc<Mutex<String>>,
}

/// A fresh, empty config directory (`XDG_CONFIG_HOME`): each client of a
/// test is its own person, with its own identity key and known peers,
/// and nothing touches the config of whoever runs the tests.
pub fn fresh_config_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sf-test-config-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Client {
    pub fn spawn(invite: &str, relay_url: &str, name: &str, extra: &[&str]) -> Client {
        Client::spawn_as(&fresh_config_dir(), invite, relay_url, name, extra)
    }

    /// A client whose identity and known peers live in `config` (the
    /// same person in several calls).
    pub fn spawn_as(
        config: &std::path::Path,
        invite: &str,
        relay_url: &str,
        name: &str,
        extra: &[&str],
    ) -> Client {
        let source: &[&str] = if extra.contains(&"--source") {
            &[]
        } else {
            &["--source", "test"]
        };
        // No sound devices unless a test asks: tests must not open the
        // microphone or speaker of a developer's machine.
        let audio_source: &[&str] = if extra.contains(&"--audio-source") {
            &[]
        } else {
            &["--audio-source", "none"]
        };
        let audio_sink: &[&str] = if extra.contains(&"--audio-sink") {
            &[]
        } else {
            &["--audio-sink", "none"]
        };
        let mut cmd = Command::new(BIN);
        cmd.args(["join", invite, "--relay", relay_url, "--headless"])
            .args(source)
            .args(audio_source)
            .args(audio_sink)
            .args(["--name", name])
            .args(extra)
            .env("XDG_CONFIG_HOME", config);
        Client::run(cmd)
    }

    /// Any headless `streamflow` command (e.g. `host --headless`), its
    /// events read as they come.
    pub fn run(mut cmd: Command) -> Client {
        let mut child = cmd
            .env("RUST_LOG", "warn")
            // Piped, so a test can send commands (`{"type":"mute"}`).
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn streamflow");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().unwrap();
        let ev = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("stdout must be JSON lines, got {line:?}: {e}"));
                assert!(v["type"].is_string(), "event without type: {line}");
                ev.lock().unwrap().push((Instant::now(), v));
            }
        });
        let err = child.stderr.take().unwrap();
        let se = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = se.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Client {
            child,
            events,
            stderr,
        }
    }

    pub fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Events of type `t` read in `[from, to)`.
    pub fn between(&self, t: &str, from: Instant, to: Instant) -> Vec<Value> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(at, v)| *at >= from && *at < to && v["type"] == t)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn of_type(&self, t: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["type"] == t)
            .collect()
    }

    /// Waits until an event satisfies `pred`, up to `timeout`.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(v) = self.events().into_iter().find(|e| pred(e)) {
                return Some(v);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Waits for the process to exit; kills it after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader threads drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        None
    }

    /// Writes one command line to the client's stdin.
    pub fn command(&mut self, json: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin is piped");
        writeln!(stdin, "{json}").expect("write a command");
        stdin.flush().expect("flush a command");
    }

    pub fn my_id(&self) -> Option<String> {
        self.of_type("joined")
            .first()
            .and_then(|e| e["you"].as_str().map(str::to_string))
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket proxy in front of the relay that records every message the
/// relay sends to clients: what a curious relay operator could log.
pub async fn tap(relay_url: String) -> (String, Arc<Mutex<Vec<String>>>) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (relay_url, log) = (relay_url.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(client) = tokio_tungstenite::accept_async(tcp).await else {
                    return;
                };
                let Ok((upstream, _)) = tokio_tungstenite::connect_async(&relay_url).await else {
                    return;
                };
                let (mut c_tx, mut c_rx) = client.split();
                let (mut u_tx, mut u_rx) = upstream.split();
                let up = async {
                    while let Some(Ok(m)) = c_rx.next().await {
                        if m.is_close() || u_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                    let _ = u_tx.close().await;
                };
                let down = async {
                    while let Some(Ok(m)) = u_rx.next().await {
                        if let Message::Text(t) = &m {
                            log.lock().unwrap().push(t.to_string());
                        }
                        if c_tx.send(m).await.is_err() {
                            break;
                        }
                    }
                };
                tokio::select! { _ = up => {}, _ = down => {} }
            });
        }
    });
    (url, seen)
}
