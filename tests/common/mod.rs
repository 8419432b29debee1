//! Helpers for end-to-end tests: a relay on an ephemeral loopback port, and
//! the real `streamflow` binary run as a headless client.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_streamflow");

pub async fn relay() -> streamflow_relay::RelayHandle {
    streamflow_relay::start(streamflow_relay::RelayConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
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

impl Client {
    pub fn spawn(invite: &str, relay_url: &str, name: &str, extra: &[&str]) -> Client {
        let source: &[&str] = if extra.contains(&"--source") {
            &[]
        } else {
            &["--source", "test"]
        };
        let mut child = Command::new(BIN)
            .args(["join", invite, "--relay", relay_url, "--headless"])
            .args(source)
            .args(["--name", name])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
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

/// Which direction of a [`Throttle`] proxy is rate-limited.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → upstream (the client's uplink).
    Up,
    /// Upstream → client (the client's downlink).
    Down,
}

/// A TCP proxy in front of `upstream` that limits one direction to `rate`
/// bytes/s (0 = unlimited), with 4 KiB socket buffers: a thin link with
/// a few hundred milliseconds of buffering in it, as real thin links have.
pub struct Throttle {
    pub url: String,
    pub rate: Arc<std::sync::atomic::AtomicU64>,
}

pub async fn throttle(upstream: std::net::SocketAddr, direction: Direction) -> Throttle {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 * 1024).unwrap();
    socket.set_send_buffer_size(4 * 1024).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(64).unwrap();
    let url = format!("ws://{}", listener.local_addr().unwrap());
    let rate = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let shared = rate.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let rate = shared.clone();
            tokio::spawn(async move {
                let up = tokio::net::TcpSocket::new_v4().unwrap();
                up.set_recv_buffer_size(4 * 1024).unwrap();
                up.set_send_buffer_size(4 * 1024).unwrap();
                let Ok(server) = up.connect(upstream).await else {
                    return;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let pump = |limited: bool| {
                    let rate = rate.clone();
                    move |mut r: tokio::net::tcp::OwnedReadHalf,
                          mut w: tokio::net::tcp::OwnedWriteHalf| async move {
                        let mut buf = vec![0u8; 1024];
                        loop {
                            let n = match r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                            let bps = rate.load(Relaxed);
                            if limited && bps > 0 {
                                tokio::time::sleep(std::time::Duration::from_secs_f64(
                                    n as f64 / bps as f64,
                                ))
                                .await;
                            }
                        }
                        let _ = w.shutdown().await;
                    }
                };
                let a = tokio::spawn(pump(direction == Direction::Up)(cr, sw));
                let b = tokio::spawn(pump(direction == Direction::Down)(sr, cw));
                let _ = tokio::join!(a, b);
            });
        }
    });
    Throttle { url, rate }
}
