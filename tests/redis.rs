//! Several relays sharing rooms through a real Redis server (one per test,
//! on its own port, so a test can stop and restart it).
//!
//! These tests need `redis-server` (Debian package `redis-server`). With `CI`
//! set they fail when it is missing; elsewhere they say so and pass.

mod common;

use std::collections::HashSet;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listening on {port}");
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A redis-server on `port`, or `None` (and a note) when it isn't installed
/// outside CI.
fn redis_at(port: u16) -> Option<Proc> {
    let spawned = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => {
            wait_port(port);
            Some(Proc(child))
        }
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("redis-server is required in CI (scripts/install-deps installs it): {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: redis-server not available ({e}); install the Debian package redis-server");
            None
        }
    }
}

fn relay_process(redis_port: u16, ttl: &str) -> (Proc, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", &format!("redis://127.0.0.1:{redis_port}")])
        .args(["--redis-presence-ttl", ttl])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    (Proc(child), format!("ws://127.0.0.1:{port}"))
}

fn frames_from(c: &Client, peer: &str) -> usize {
    c.of_type("frame")
        .iter()
        .filter(|f| f["from"] == peer)
        .count()
}

#[test]
fn two_relays_one_room_everyone_sees_everyone() {
    let redis_port = free_port();
    let Some(_redis) = redis_at(redis_port) else {
        return;
    };
    let (_a, url_a) = relay_process(redis_port, "9s");
    let (_b, url_b) = relay_process(redis_port, "9s");
    let invite = fresh_invite();
    let mut clients: Vec<Client> = (0..5)
        .map(|i| {
            let url = if i < 3 { &url_a } else { &url_b };
            let chat = format!("hello from {i}");
            Client::spawn(
                &invite,
                url,
                &format!("Multi{i}"),
                &["--duration", "16", "--send-chat", &chat],
            )
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.wait(Duration::from_secs(60)),
            Some(0),
            "client {i}: {}",
            c.stderr.lock().unwrap()
        );
    }
    let ids: Vec<String> = clients.iter().map(|c| c.my_id().unwrap()).collect();
    for (r, c) in clients.iter().enumerate() {
        let verified: HashSet<String> = c
            .of_type("peer_verified")
            .iter()
            .map(|e| e["peer"].as_str().unwrap().to_string())
            .collect();
        let others: HashSet<String> = ids.iter().filter(|i| **i != ids[r]).cloned().collect();
        assert_eq!(verified, others, "client {r} presence");
        for (s, id) in ids.iter().enumerate() {
            if s == r {
                continue;
            }
            let n = frames_from(c, id);
            assert!(n > 150, "client {r} got {n} frames from {s}");
            assert!(
                c.of_type("chat")
                    .iter()
                    .any(|m| m["from"] == id.as_str() && m["text"] == format!("hello from {s}")),
                "client {r} missed chat from {s}"
            );
        }
    }
}

#[test]
fn a_crashed_relays_peers_leave_and_reconnect_elsewhere() {
    let redis_port = free_port();
    let Some(_redis) = redis_at(redis_port) else {
        return;
    };
    let (_a, url_a) = relay_process(redis_port, "3s");
    let (b, url_b) = relay_process(redis_port, "3s");
    let invite = fresh_invite();
    let on_a: Vec<Client> = (0..2)
        .map(|i| Client::spawn(&invite, &url_a, &format!("OnA{i}"), &["--duration", "40"]))
        .collect();
    let on_b: Vec<Client> = (0..2)
        .map(|i| {
            Client::spawn(
                &invite,
                &url_b,
                &format!("OnB{i}"),
                &["--duration", "40", "--relay", &url_a],
            )
        })
        .collect();
    for c in on_a.iter().chain(&on_b) {
        c.wait_for(Duration::from_secs(30), |_| {
            c.of_type("peer_verified").len() >= 3
        })
        .expect("everyone verified across relays");
    }
    let b_ids: Vec<String> = on_b.iter().map(|c| c.my_id().unwrap()).collect();
    drop(b); // SIGKILL: no leave messages, no goodbye
    let killed = Instant::now();
    for c in &on_a {
        for id in &b_ids {
            c.wait_for(Duration::from_secs(12), |e| {
                e["type"] == "peer_left" && e["peer"] == id.as_str()
            })
            .unwrap_or_else(|| panic!("relay B's peer {id} never left"));
        }
    }
    eprintln!(
        "crashed relay's peers announced after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    // B's clients came back through A and the room goes on.
    for c in &on_b {
        c.wait_for(Duration::from_secs(30), |e| e["type"] == "reconnected")
            .expect("reconnected to the other relay");
    }
    std::thread::sleep(Duration::from_secs(5));
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    for c in on_a.iter().chain(&on_b) {
        let frames = c.between("frame", since, Instant::now());
        let senders: HashSet<&str> = frames.iter().map(|f| f["from"].as_str().unwrap()).collect();
        assert_eq!(
            senders.len(),
            3,
            "after the failover each member hears the 3 others"
        );
    }
}

#[test]
fn redis_outage_keeps_local_delivery_and_cross_relay_resumes() {
    let redis_port = free_port();
    let Some(redis) = redis_at(redis_port) else {
        return;
    };
    let (mut a, url_a) = relay_process(redis_port, "9s");
    let (mut b, url_b) = relay_process(redis_port, "9s");
    let invite = fresh_invite();
    let a1 = Client::spawn(&invite, &url_a, "A1", &["--duration", "40"]);
    let a2 = Client::spawn(&invite, &url_a, "A2", &["--duration", "40"]);
    let b1 = Client::spawn(&invite, &url_b, "B1", &["--duration", "40"]);
    for c in [&a1, &a2, &b1] {
        c.wait_for(Duration::from_secs(30), |_| {
            c.of_type("peer_verified").len() >= 2
        })
        .expect("everyone verified");
    }
    let (id_a1, id_a2) = (a1.my_id().unwrap(), a2.my_id().unwrap());
    drop(redis);
    let down = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let _redis = redis_at(redis_port).expect("redis restarts");
    let up = Instant::now();
    // Local delivery never stopped: A2 kept getting A1's video throughout.
    let during = a2.between("frame", down, up);
    let local = during
        .iter()
        .filter(|f| f["from"] == id_a1.as_str())
        .count();
    assert!(
        local as f64 >= 5.0 * 20.0,
        "only {local} local frames during the outage"
    );
    // Cross-relay delivery resumes.
    let resumed = b1.wait_for(Duration::from_secs(15), |_| {
        b1.between("frame", up + Duration::from_secs(1), Instant::now())
            .iter()
            .any(|f| f["from"] == id_a2.as_str())
    });
    assert!(resumed.is_some(), "cross-relay frames did not resume");
    eprintln!(
        "cross-relay delivery resumed {:.1} s after Redis returned",
        up.elapsed().as_secs_f64()
    );
    assert!(a.0.try_wait().unwrap().is_none(), "relay A crashed");
    assert!(b.0.try_wait().unwrap().is_none(), "relay B crashed");
}
