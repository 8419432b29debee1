//! Several relays sharing rooms through a real Redis server (one per test,
//! on its own port, so a test can stop and restart it).
//!
//! These tests need `redis-server` (Debian package `redis-server`). With `CI`
//! set they fail when it is missing; elsewhere they say so and pass.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::*;
use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
    let (proc, url, _) = relay_process_with(redis_port, ttl, &[]);
    (proc, url)
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
        if verified != others {
            // Every member's side, to tell a relay that lost a presence
            // from a handshake that stalled.
            let all: Vec<String> = clients
                .iter()
                .zip(&ids)
                .map(|(c, id)| {
                    let events: Vec<String> = c
                        .events()
                        .iter()
                        .filter(|e| e["type"] != "frame" && e["type"] != "audio_stats")
                        .map(|e| e.to_string())
                        .collect();
                    format!(
                        "{id}:\n  {}\n  {}",
                        events.join("\n  "),
                        c.stderr.lock().unwrap()
                    )
                })
                .collect();
            panic!(
                "client {r} ({}) verified {verified:?}, expected {others:?}\n{}",
                ids[r],
                all.join("\n")
            );
        }
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

fn relay_process_with(redis_port: u16, ttl: &str, extra: &[&str]) -> (Proc, String, u16) {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", &format!("redis://127.0.0.1:{redis_port}")])
        .args(["--redis-presence-ttl", ttl])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port);
    (Proc(child), format!("ws://127.0.0.1:{port}"), port)
}

fn relay_metric(port: u16, name: &str) -> f64 {
    metrics_page(port)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}

/// Refused joins (`too_many_rooms`, and `room_full` caused by peers on
/// another relay) leave nothing behind: no Redis subscription, no room.
#[test]
fn refused_joins_leave_nothing_behind() {
    let redis_port = free_port();
    let Some(_redis) = redis_at(redis_port) else {
        return;
    };
    let (_a, url_a, port_a) = relay_process_with(redis_port, "9s", &bare::REFUSING_RELAY);
    let (_b, url_b, _) = relay_process_with(redis_port, "9s", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The sockets that must stay joined live until the checks below.
    let _members = rt.block_on(bare::refused_joins(&url_a, &url_b, 200));
    std::thread::sleep(Duration::from_millis(500));
    let channels = redis_cli(redis_port, &["PUBSUB", "CHANNELS", "sf:room:*"]);
    let mut channels: Vec<&str> = channels.split_whitespace().collect();
    channels.sort();
    assert_eq!(
        channels,
        vec!["sf:room:{full}", "sf:room:{keep}", "sf:room:{other}"]
    );
    let full_subscribers = redis_cli(redis_port, &["PUBSUB", "NUMSUB", "sf:room:{full}"]);
    assert_eq!(
        full_subscribers.split_whitespace().nth(1),
        Some("1"),
        "only relay B: {full_subscribers}"
    );
    assert_eq!(relay_metric(port_a, "streamflow_relay_rooms"), 2.0);
}

/// After a Redis outage in which members left on both relays, presence
/// converges to exactly what one relay would show: no ghosts. And a relay
/// killed (-9) during the outage has its members removed too.
#[test]
fn presence_converges_after_a_redis_outage() {
    let redis_port = free_port();
    let Some(redis) = redis_at(redis_port) else {
        return;
    };
    let (_a, url_a, port_a) = relay_process_with(redis_port, "6s", &[]);
    let (_b, url_b, _) = relay_process_with(redis_port, "6s", &[]);
    let (mut c, url_c, _) = relay_process_with(redis_port, "6s", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (keep_a, keep_b, ghosts) = rt.block_on(async {
        let (a1, id_a1, _) = bare::join(&url_a, "r").await;
        let (a2, _, _) = bare::join(&url_a, "r").await;
        let (b1, id_b1, _) = bare::join(&url_b, "r").await;
        let (b2, _, _) = bare::join(&url_b, "r").await;
        let (c1, _, _) = bare::join(&url_c, "r").await;
        // Everyone sees everyone across relays before the outage.
        let deadline = Instant::now() + Duration::from_secs(10);
        while bare::roster(&url_a, "r").await.len() < 5 {
            assert!(Instant::now() < deadline, "presence never spread");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ((a1, id_a1), (b1, id_b1), (a2, b2, c1))
    });
    drop(redis);
    std::thread::sleep(Duration::from_millis(500));
    // During the outage: one member leaves on each side, relay C dies.
    drop(ghosts);
    c.0.kill().unwrap();
    let _ = c.0.wait();
    std::thread::sleep(Duration::from_secs(2));
    let _redis = redis_at(redis_port).expect("redis restarts");
    let back = Instant::now();
    let mut expected = vec![keep_a.1.clone(), keep_b.1.clone()];
    expected.sort();
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (on_a, on_b) = (
                bare::roster(&url_a, "r").await,
                bare::roster(&url_b, "r").await,
            );
            if on_a == expected && on_b == expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "presence never converged: A says {on_a:?}, B says {on_b:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    eprintln!(
        "presence converged {:.1} s after Redis returned",
        back.elapsed().as_secs_f64()
    );
    assert_eq!(relay_metric(port_a, "streamflow_relay_peers"), 1.0);
    drop((keep_a, keep_b));
}

/// Control from a member on another relay used to be queued as the relay's
/// own and charged to nobody: one sender on relay B could close a receiver
/// on relay A (its control backlog overflowed), with no `rate_limited`.
/// Now it is charged to its sender like local control: past its share the
/// rest is refused, the sender is told through its own relay, and the
/// receiver stays.
#[test]
fn control_over_the_bus_is_charged_to_its_remote_sender() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let redis_port = free_port();
    let Some(_redis) = redis_at(redis_port) else {
        return;
    };
    let (_a, url_a, port_a) = relay_process_with(redis_port, "9s", &[]);
    let (_b, url_b, _) = relay_process_with(redis_port, "9s", &["--max-strikes", "1000"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        // The receiver on A reads nothing for now (a tiny receive buffer:
        // the backlog stays in relay A's queue).
        let port: u16 = url_a.rsplit(':').next().unwrap().parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let tcp = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap();
        let (mut victim, _) = tokio_tungstenite::client_async(
            url_a.clone(),
            tokio_tungstenite::MaybeTlsStream::Plain(tcp),
        )
        .await
        .unwrap();
        let text = |v: serde_json::Value| Message::Text(v.to_string().into());
        victim
            .send(text(serde_json::json!({"type":"join","room":"r","v":1})))
            .await
            .unwrap();
        let victim_id = loop {
            let t = match victim.next().await {
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => panic!("no welcome"),
            };
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "welcome" {
                break v["you"].as_str().unwrap().to_string();
            }
        };
        // The sender on B, once B knows the receiver.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut flooder = loop {
            let (ws, _, peers) = bare::join(&url_b, "r").await;
            if peers.contains(&victim_id) {
                break ws;
            }
            assert!(
                Instant::now() < deadline,
                "relay B never learned the receiver"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // More than the receiver's whole control queue (256 messages).
        let data = "A".repeat(2 << 10);
        for _ in 0..300 {
            flooder
                .send(text(serde_json::json!(
                    {"type":"send","kind":"control","to":victim_id,"data":data}
                )))
                .await
                .unwrap();
        }
        let mut told = false;
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && !told {
            match tokio::time::timeout(Duration::from_millis(500), flooder.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                    told = v["code"] == "rate_limited"
                        && v["message"].as_str().unwrap_or("").contains("behind");
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                Ok(_) => break,
                Err(_) => {}
            }
        }
        assert!(told, "the remote sender is told to slow down");
        assert_eq!(
            relay_metric(port_a, "streamflow_relay_slow_receiver_disconnects_total"),
            0.0,
            "the receiver was closed for a remote sender's flood"
        );
        assert!(relay_metric(port_a, "streamflow_relay_control_refused_total") > 0.0);
        // The receiver, reading again, is still connected.
        let mut got = 0;
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(2), victim.next()).await {
            match m {
                Ok(Message::Text(_)) => got += 1,
                Ok(Message::Close(c)) => panic!("the receiver was closed: {c:?}"),
                Ok(_) => {}
                Err(e) => panic!("the receiver's connection failed: {e}"),
            }
        }
        assert!(got > 0);
    });
}
