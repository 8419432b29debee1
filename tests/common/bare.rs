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
