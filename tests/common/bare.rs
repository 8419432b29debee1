//! A bare protocol-v1 client (no call, just presence), for the tests that
//! look at who each relay thinks is in a room.

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins `room`; returns the socket, our id and the welcome's peers.
pub async fn join(url: &str, room: &str) -> (Ws, String, Vec<String>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    ws.send(Message::Text(
        json!({"type":"join","room":room,"v":1}).to_string().into(),
    ))
    .await
    .unwrap();
    loop {
        let t = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            // The relay's flow probes: any WebSocket client answers them.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => panic!("no welcome from {url}"),
        };
        let v: Value = serde_json::from_str(&t).unwrap();
        if v["type"] == "welcome" {
            let mut peers: Vec<String> = v["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
                .collect();
            peers.sort();
            return (ws, v["you"].as_str().unwrap().to_string(), peers);
        }
        if v["type"] == "error" {
            return (
                ws,
                String::new(),
                vec![format!("error:{}", v["code"].as_str().unwrap())],
            );
        }
    }
}

/// Joins, looks at the welcome, and leaves: who `url`'s relay says is
/// in `room` now.
pub async fn roster(url: &str, room: &str) -> Vec<String> {
    let (mut ws, _, peers) = join(url, room).await;
    let _ = ws
        .send(Message::Text(json!({"type":"leave"}).to_string().into()))
        .await;
    let _ = ws.close(None).await;
    // Gone only when the relay has closed its side: a probe still
    // counted would show in the next roster or metric read.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    peers
}

/// The relay-limits flags the refused-join tests give relay A: two rooms,
/// two members a room, and strikes enough for the refusals.
pub const REFUSING_RELAY: [&str; 6] = [
    "--max-rooms",
    "2",
    "--max-peers-per-room",
    "2",
    "--max-strikes",
    "1000",
];

/// Joins relay A (started with [`REFUSING_RELAY`]) in ways it refuses:
/// room "full" (filled by two members on relay B) `room_full` 20 times,
/// then, with "keep" and "other" taking its two rooms, `extra{i}` for
/// `extras` rooms `too_many_rooms`. Returns the members who must stay
/// joined: keep, the two in "full", other.
pub async fn refused_joins(url_a: &str, url_b: &str, extras: usize) -> [Ws; 4] {
    let (keep, _, _) = join(url_a, "keep").await;
    // Two on relay B fill room "full" for relay A's limit of 2.
    let (f1, _, _) = join(url_b, "full").await;
    let (f2, _, _) = join(url_b, "full").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..20 {
        let (_, _, answer) = join(url_a, "full").await;
        assert_eq!(answer, vec!["error:room_full".to_string()]);
    }
    // One room is left under the limit: fill it, then ask for more.
    let (other, _, _) = join(url_a, "other").await;
    for i in 0..extras {
        let (_, _, answer) = join(url_a, &format!("extra{i}")).await;
        assert_eq!(answer, vec!["error:too_many_rooms".to_string()]);
    }
    [keep, f1, f2, other]
}
