//! Resilience: relay restarts, half-open connections.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[test]
fn relay_restart_mid_call_rejoins_rekeys_and_delivers_queued_chat() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let addr = free_addr();
    let relay = rt.block_on(relay_at(addr));
    let url = format!("ws://{addr}");
    let invite = fresh_invite();
    let started = Instant::now();
    // Chat goes out at half the duration (15 s): during the outage below.
    let clients: Vec<Client> = (0..3)
        .map(|i| {
            let mut extra = vec!["--duration", "30", "--liveness-timeout", "5s"];
            if i == 0 {
                extra.extend(["--send-chat", "sent while offline"]);
            }
            Client::spawn(&invite, &url, &format!("Restart{i}"), &extra)
        })
        .collect();
    for c in &clients {
        c.wait_for(Duration::from_secs(20), |_| {
            c.of_type("peer_verified").len() >= 2
        })
        .expect("everyone verified before the outage");
    }
    // Outage from 9 s to 16 s after start.
    std::thread::sleep(Duration::from_secs(9).saturating_sub(started.elapsed()));
    rt.block_on(relay.shutdown());
    let down_at = Instant::now();
    std::thread::sleep(Duration::from_secs(16).saturating_sub(started.elapsed()));
    let relay = rt.block_on(relay_at(addr));
    let up_at = Instant::now();
    assert!(up_at.duration_since(down_at) >= Duration::from_secs(3));

    let mut clients = clients;
    for c in clients.iter_mut() {
        assert_eq!(
            c.wait(Duration::from_secs(40)),
            Some(0),
            "{}",
            c.stderr.lock().unwrap()
        );
    }
    for (i, c) in clients.iter().enumerate() {
        let events = c.events();
        let reconnecting = c.of_type("reconnecting");
        assert!(!reconnecting.is_empty(), "client {i} never reconnected");
        for r in &reconnecting {
            assert!(r["attempt"].as_u64().unwrap() >= 1);
            assert!(r["delay_ms"].as_u64().unwrap() <= 30_000);
        }
        let back = events
            .iter()
            .position(|e| e["type"] == "reconnected")
            .unwrap_or_else(|| panic!("client {i}: no reconnected event"));
        // After the rejoin: fresh handshakes with both others, then frames
        // from both (under their new peer ids).
        let after = &events[back..];
        let verified: HashSet<&str> = after
            .iter()
            .filter(|e| e["type"] == "peer_verified")
            .map(|e| e["peer"].as_str().unwrap())
            .collect();
        assert_eq!(verified.len(), 2, "client {i} re-verified {verified:?}");
        for peer in &verified {
            let frames = after
                .iter()
                .filter(|e| e["type"] == "frame" && e["from"] == *peer)
                .count();
            assert!(
                frames > 60,
                "client {i}: only {frames} frames from {peer} after rejoin"
            );
        }
        if i != 0 {
            let chats: Vec<_> = events
                .iter()
                .filter(|e| e["type"] == "chat" && e["text"] == "sent while offline")
                .collect();
            assert_eq!(
                chats.len(),
                1,
                "client {i} got the queued chat {} times",
                chats.len()
            );
        }
    }
    rt.block_on(relay.shutdown());
}

/// A relay that accepts, welcomes, then never reads or answers again: the
/// client must notice from the silence and reconnect.
#[test]
fn half_open_relay_is_detected_and_left() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let accepted = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await {
                    let _join = ws.next().await;
                    let welcome = r#"{"type":"welcome","you":"00000000000000aa","peers":[],"limits":{"max_message_bytes":1048576,"max_peers_per_room":64,"rate_per_sec":200,"rate_burst":400,"ping_interval_ms":20000,"idle_timeout_ms":60000}}"#;
                    let _ = ws.send(Message::Text(welcome.into())).await;
                    // Never read again: no pongs, nothing.
                    held.push(ws);
                }
            }
        });
        url
    });
    let mut client = Client::spawn(
        &fresh_invite(),
        &url,
        "HalfOpen",
        &["--liveness-timeout", "2s"],
    );
    client
        .wait_for(Duration::from_secs(20), |e| e["type"] == "joined")
        .expect("joined the silent relay");
    let joined_at = Instant::now();
    client
        .wait_for(Duration::from_secs(10), |e| e["type"] == "reconnecting")
        .expect("noticed the silent relay");
    let noticed = joined_at.elapsed();
    assert!(
        noticed >= Duration::from_millis(1500),
        "too eager: {noticed:?}"
    );
    assert!(noticed < Duration::from_secs(8), "took {noticed:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepted.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        accepted.load(Ordering::SeqCst) >= 2,
        "no reconnect attempt reached the relay"
    );
    let _ = client.child.kill();
}
