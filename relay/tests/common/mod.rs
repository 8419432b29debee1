//! A minimal protocol-v1 client for driving a real relay over loopback.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use streamflow_relay::{RelayConfig, RelayHandle};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Panics inside the relay's tasks (tokio catches them, so they would not
/// fail a test on their own), counted by a hook installed with the relay.
pub static TASK_PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_task_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("tokio-runtime-worker"))
            {
                TASK_PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// Fails the test if any relay task panicked.
pub fn assert_no_task_panics() {
    assert_eq!(
        TASK_PANICS.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "a relay task panicked"
    );
}

/// A relay on an ephemeral loopback port, with `tweak` applied to the defaults.
pub async fn relay(tweak: impl FnOnce(&mut RelayConfig)) -> RelayHandle {
    count_task_panics();
    let mut config = RelayConfig::loopback();
    tweak(&mut config);
    streamflow_relay::start(config).await.expect("relay starts")
}

pub struct Client {
    pub ws: Ws,
    pub id: String,
    pub welcome: Value,
}

pub async fn connect(url: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect to relay");
    ws
}

impl Client {
    /// Connects and joins `room`, returning once `welcome` arrived.
    pub async fn join(url: &str, room: &str) -> Client {
        let mut ws = connect(url).await;
        send(&mut ws, json!({"type":"join","room":room,"v":1})).await;
        let welcome = recv(&mut ws).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let id = welcome["you"].as_str().unwrap().to_string();
        Client { ws, id, welcome }
    }

    pub fn peers(&self) -> Vec<String> {
        let mut p: Vec<String> = self.welcome["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        p.sort();
        p
    }

    pub async fn send(&mut self, v: Value) {
        send(&mut self.ws, v).await
    }

    pub async fn recv(&mut self) -> Value {
        recv(&mut self.ws).await
    }

    /// Next message, or `None` if nothing arrives within `wait`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        try_recv(&mut self.ws, wait).await
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// Next text message as JSON; panics after 10 s.
pub async fn recv(ws: &mut Ws) -> Value {
    try_recv(ws, Duration::from_secs(10))
        .await
        .expect("a message within 10 s")
}

pub async fn try_recv(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()??;
        match msg {
            Ok(Message::Text(t)) => {
                return Some(serde_json::from_str(&t).expect("relay sends JSON"))
            }
            Ok(Message::Close(frame)) => {
                return Some(
                    json!({"type":"__closed","code": frame.as_ref().map(|f| u16::from(f.code)), "reason": frame.map(|f| f.reason.to_string())}),
                )
            }
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// GET `path` over plain HTTP/1.1; returns (status, body).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    let status = buf[9..12].parse().unwrap();
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Reads one metric's value from Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("metric {name} missing"))
}
