//! Hostile clients against a real relay on loopback: unfinished messages,
//! the memory budget, control floods aimed at another member, close-frame
//! rules, a full relay's health endpoint, repeat offenders, bad flags.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

/// A raw WebSocket connection: the handshake done by hand, then frames
/// written byte by byte as a hostile client would.
struct Raw {
    tcp: TcpStream,
}

impl Raw {
    async fn connect(addr: std::net::SocketAddr) -> Raw {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            tcp.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_string();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Raw { tcp }
    }

    /// A masked client frame.
    async fn frame(&mut self, opcode: u8, fin: bool, payload: &[u8]) -> std::io::Result<()> {
        let mut f = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n < 65536 => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let mask = [7u8, 1, 2, 3];
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&f).await
    }

    /// Reads frames until a close frame (its code) or EOF (None).
    async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let mut head = [0u8; 2];
            tokio::time::timeout_at(deadline, self.tcp.read_exact(&mut head))
                .await
                .ok()?
                .ok()?;
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                let mut b = [0u8; 2];
                self.tcp.read_exact(&mut b).await.ok()?;
                len = u64::from(u16::from_be_bytes(b));
            } else if len == 127 {
                let mut b = [0u8; 8];
                self.tcp.read_exact(&mut b).await.ok()?;
                len = u64::from_be_bytes(b);
            }
            let mut payload = vec![0u8; len as usize];
            self.tcp.read_exact(&mut payload).await.ok()?;
            if head[0] & 0x0f == 8 {
                return payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            }
        }
    }
}

async fn metrics(relay: &streamflow_relay::RelayHandle) -> String {
    http_get(relay.addr(), "/metrics").await.1
}

/// A message opened and never finished (fragments, pongs in between to
/// look alive) is closed at the deadline instead of pinning memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfinished_message_is_closed_at_the_deadline() {
    let relay = relay(|c| c.message_deadline = Duration::from_secs(1)).await;
    let mut raw = Raw::connect(relay.addr()).await;
    raw.frame(1, false, &vec![b'x'; 64 << 10]).await.unwrap();
    let started = Instant::now();
    let pinger = async {
        for _ in 0..20 {
            if raw.frame(0xA, true, b"hi").await.is_err()
                || raw.frame(0, false, &[b'x'; 1024]).await.is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    pinger.await;
    let code = raw.close_code(Duration::from_secs(5)).await;
    assert_eq!(code, Some(1008), "closed for the deadline");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        metric(
            &metrics(&relay).await,
            "streamflow_relay_message_deadline_total"
        ),
        1.0
    );
    // Ordinary clients pinging for longer than the deadline are fine.
    let mut idle = Client::join(&relay.url(), "r").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    idle.send(json!({"type":"send","kind":"media","data":"AA=="}))
        .await;
    assert_eq!(
        idle.try_recv(Duration::from_millis(300)).await,
        None,
        "still connected, nothing to hear"
    );
    relay.shutdown().await;
    assert_no_task_panics();
}

/// Over the memory budget, the connection holding the most goes first;
/// smaller ones and a call in progress keep going.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_budget_sheds_the_biggest_offender_first() {
    let relay = relay(|c| {
        c.max_memory = 6 << 20;
        c.max_message_bytes = 4 << 20;
        c.message_deadline = Duration::from_secs(60);
    })
    .await;
    let url = relay.url();
    let mut a = Client::join(&url, "call").await;
    let mut b = Client::join(&url, "call").await;
    a.recv().await; // b joined
    let mut small = Raw::connect(relay.addr()).await;
    small.frame(1, false, &vec![b'x'; 300 << 10]).await.unwrap();
    let mut big = Raw::connect(relay.addr()).await;
    big.frame(1, false, &vec![b'x'; 1 << 20]).await.unwrap();
    // The biggest: keeps growing until the relay sheds it (charged twice
    // its size, it passes the 6 MiB budget at ~2 MiB).
    let mut bigger = Raw::connect(relay.addr()).await;
    bigger.frame(1, false, &vec![b'x'; 64 << 10]).await.unwrap();
    let mut sent = 64 << 10;
    while sent < 4 << 20 {
        if bigger.frame(0, false, &vec![b'x'; 64 << 10]).await.is_err() {
            break;
        }
        sent += 64 << 10;
    }
    // Closed (the close frame may be lost to the reset of a socket still
    // being written to): nothing more comes.
    let code = bigger.close_code(Duration::from_secs(5)).await;
    assert!(matches!(code, None | Some(1013)), "{code:?}");
    // Back under the budget once the shed connection is gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut m = metrics(&relay).await;
    while metric(&m, "streamflow_relay_memory_used_bytes") > (6 << 20) as f64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
        m = metrics(&relay).await;
    }
    assert!(
        metric(&m, "streamflow_relay_memory_used_bytes") <= (6 << 20) as f64,
        "{m}"
    );
    assert_eq!(
        metric(&m, "streamflow_relay_memory_shed_total"),
        1.0,
        "only the biggest"
    );
    // The call went on throughout.
    a.send(json!({"type":"send","kind":"media","data":"AQID"}))
        .await;
    assert_eq!(b.recv().await["data"], "AQID");
    // The smaller ones are still there: finishing a message gets an answer
    // (an error: it's not JSON).
    for raw in [&mut small, &mut big] {
        raw.frame(0, true, b"x").await.unwrap();
        let mut head = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(5), raw.tcp.read_exact(&mut head))
            .await
            .expect("an answer")
            .expect("still connected");
        assert_eq!(head[0] & 0x0f, 1, "a text frame (the error)");
    }
    relay.shutdown().await;
    assert_no_task_panics();
}

/// A member flooding another with directed control can't get it
/// disconnected: the flood is charged to the sender, who is told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_flood_is_charged_to_its_sender_not_the_victim() {
    let relay = relay(|c| c.max_strikes = 1000).await;
    let url = relay.url();
    // The victim reads nothing for now (tiny receive buffer: the backlog
    // stays in the relay's queue).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(relay.addr()).await.unwrap();
    let (mut victim, _) =
        tokio_tungstenite::client_async(url.clone(), tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    send(&mut victim, json!({"type":"join","room":"r","v":1})).await;
    let victim_id = recv(&mut victim).await["you"].as_str().unwrap().to_string();
    let mut flooder = Client::join(&url, "r").await;
    // Too big for control at all.
    let huge = "A".repeat(100 << 10);
    flooder
        .send(json!({"type":"send","kind":"control","to":victim_id,"data":huge}))
        .await;
    assert_eq!(flooder.recv().await["code"], "too_large");
    let data = "A".repeat(60 << 10);
    for _ in 0..150 {
        flooder
            .send(json!({"type":"send","kind":"control","to":victim_id,"data":data}))
            .await;
    }
    let mut told = false;
    while let Some(m) = flooder.try_recv(Duration::from_secs(2)).await {
        if m["code"] == "rate_limited" && m["message"].as_str().unwrap().contains("behind") {
            told = true;
        }
    }
    assert!(told, "the flooder is told to slow down");
    let m = metrics(&relay).await;
    assert_eq!(
        metric(&m, "streamflow_relay_slow_receiver_disconnects_total"),
        0.0,
        "the victim stays"
    );
    assert!(metric(&m, "streamflow_relay_control_refused_total") > 0.0);
    // The victim, reading again, is still in the call.
    let mut got = 0;
    while let Some(v) = try_recv(&mut victim, Duration::from_secs(2)).await {
        assert_ne!(v["type"], "__closed", "the victim was closed: {v}");
        got += 1;
    }
    assert!(got > 0);
    send(
        &mut victim,
        json!({"type":"send","kind":"media","data":"AA=="}),
    )
    .await;
    assert_eq!(flooder.recv().await["type"], "blob");
    relay.shutdown().await;
    assert_no_task_panics();
}

/// Several members, each inside its own share, together fill a receiver's
/// control queue; then someone joins. The relay's presence message used to
/// overflow the queue and close the receiver (1008, "control backlog
/// overflowed"). Now members together get three quarters of it: the last
/// of them are refused (and told), the presence message fits, and the
/// receiver stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_together_cannot_crowd_out_presence() {
    let relay = relay(|c| c.max_strikes = 1000).await;
    let url = relay.url();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(relay.addr()).await.unwrap();
    let (mut victim, _) =
        tokio_tungstenite::client_async(url.clone(), tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    send(&mut victim, json!({"type":"join","room":"r","v":1})).await;
    let victim_id = recv(&mut victim).await["you"].as_str().unwrap().to_string();
    // The default queue holds 256 control messages, a quarter of them from
    // any one sender: five senders send 64 each, inside their shares.
    let data = "A".repeat(2 << 10);
    let mut senders = Vec::new();
    for _ in 0..5 {
        let mut s = Client::join(&url, "r").await;
        for _ in 0..64 {
            s.send(json!({"type":"send","kind":"control","to":victim_id,"data":data}))
                .await;
        }
        senders.push(s);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let late = Client::join(&url, "r").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut told = 0;
    for s in &mut senders {
        while let Some(m) = s.try_recv(Duration::from_millis(200)).await {
            told += usize::from(m["code"] == "rate_limited");
        }
    }
    assert!(told > 0, "the last senders are told to slow down");
    let m = metrics(&relay).await;
    assert_eq!(
        metric(&m, "streamflow_relay_slow_receiver_disconnects_total"),
        0.0,
        "the receiver was closed for the relay's own presence message"
    );
    // The victim, reading again, gets the presence message.
    let mut saw_join = false;
    while let Some(v) = try_recv(&mut victim, Duration::from_secs(2)).await {
        assert_ne!(v["type"], "__closed", "the victim was closed: {v}");
        saw_join |= v["type"] == "peer_joined" && v["peer"] == late.id.as_str();
    }
    assert!(saw_join, "presence reached the receiver");
    relay.shutdown().await;
    assert_no_task_panics();
}

/// Members come and go; handshake messages to one who just left get
/// `unknown_peer`. That race used to count as a protocol violation: twenty
/// of them and the sender was closed, its address penalised. Now it is
/// said at most once a second and costs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_a_departed_peer_are_not_punished() {
    let relay = relay(|_| {}).await;
    let url = relay.url();
    let mut sender = Client::join(&url, "r").await;
    let mut gone = Client::join(&url, "r").await;
    let gone_id = gone.id.clone();
    gone.send(json!({"type":"leave"})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..100 {
        sender
            .send(json!({"type":"send","kind":"control","to":gone_id,"data":"AA=="}))
            .await;
    }
    let mut errors = 0;
    while let Some(m) = sender.try_recv(Duration::from_millis(500)).await {
        assert_ne!(m["type"], "__closed", "closed for a race: {m}");
        if m["type"] == "error" {
            assert_eq!(m["code"], "unknown_peer");
            errors += 1;
        }
    }
    assert!(
        (1..=2).contains(&errors),
        "{errors} errors for one second of them"
    );
    // Still in the room: a new member hears it.
    let mut other = Client::join(&url, "r").await;
    sender
        .send(json!({"type":"send","kind":"media","data":"AA=="}))
        .await;
    loop {
        let m = other.recv().await;
        if m["type"] == "blob" {
            break;
        }
    }
    relay.shutdown().await;
    assert_no_task_panics();
}

/// RFC 6455: the client's close code is echoed, an invalid one is answered
/// with 1002, and text that isn't UTF-8 with 1007.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_frames_follow_rfc_6455() {
    let relay = relay(|_| {}).await;
    let mut ws = connect(&relay.url()).await;
    ws.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: "bye".into(),
    })))
    .await
    .unwrap();
    let mut echoed = None;
    while let Ok(Some(m)) = tokio::time::timeout(
        Duration::from_secs(5),
        futures_util::StreamExt::next(&mut ws),
    )
    .await
    {
        if let Ok(Message::Close(f)) = m {
            echoed = f.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(echoed, Some(4001));

    let mut raw = Raw::connect(relay.addr()).await;
    raw.frame(8, true, &999u16.to_be_bytes()).await.unwrap();
    assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(1002));

    let mut raw = Raw::connect(relay.addr()).await;
    raw.frame(1, true, &[0xff, 0xfe, 0x80]).await.unwrap();
    assert_eq!(raw.close_code(Duration::from_secs(5)).await, Some(1007));
    relay.shutdown().await;
    assert_no_task_panics();
}

/// A full relay still answers /healthz and /metrics; calls get a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_when_the_relay_is_full() {
    let relay = relay(|c| c.max_connections = Some(2)).await;
    let url = relay.url();
    let _a = Client::join(&url, "r").await;
    let _b = Client::join(&url, "r").await;
    let refused = tokio_tungstenite::connect_async(&url).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    let (status, body) = http_get(relay.addr(), "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let m = metrics(&relay).await;
    assert_eq!(metric(&m, "streamflow_relay_connections"), 2.0);
    assert!(metric(&m, "streamflow_relay_pending_upgrades") >= 0.0);
    relay.shutdown().await;
    assert_no_task_panics();
}

/// An address closed for abuse waits a little before it may connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_closed_for_abuse_waits_before_reconnecting() {
    let relay = relay(|c| c.max_strikes = 3).await;
    let url = relay.url();
    let mut ws = connect(&url).await;
    for _ in 0..3 {
        let _ = ws.send(Message::Text("garbage".into())).await;
    }
    while let Some(m) = try_recv(&mut ws, Duration::from_secs(5)).await {
        if m["type"] == "__closed" {
            break;
        }
    }
    assert!(
        tokio_tungstenite::connect_async(&url).await.is_err(),
        "refused at once"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        tokio_tungstenite::connect_async(&url).await.is_ok(),
        "welcome again after the wait"
    );
    relay.shutdown().await;
    assert_no_task_panics();
}

const RELAY_BIN: &str = env!("CARGO_BIN_EXE_streamflow-relay");

/// Values that would break every connection are refused at start.
#[test]
fn nonsense_flags_are_usage_errors() {
    for args in [
        ["--ping-interval", "0.0001ms"],
        ["--max-peers-per-room", "0"],
        ["--max-memory", "0"],
        ["--max-control-bytes", "lots"],
    ] {
        let out = std::process::Command::new(RELAY_BIN)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}

/// The open-file soft limit is raised to the hard limit, and logs written
/// to a pipe carry no colour codes.
#[test]
fn fd_limit_is_raised_and_piped_logs_are_plain() {
    use std::io::{BufRead, BufReader};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -Sn 256; exec {RELAY_BIN} --listen 127.0.0.1:{port}"
        ))
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(!first.contains('\u{1b}'), "colour in a pipe: {first:?}");
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = open_files.split_whitespace().collect();
    assert_eq!(
        fields[3], fields[4],
        "soft limit raised to the hard one: {open_files}"
    );
}

/// A connection over --max-bytes-per-sec is read more slowly, not cut off:
/// everything it sends arrives, no faster than the configured rate, and it
/// gets no error for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_sender_is_paced_to_its_byte_rate() {
    let relay = relay(|c| {
        c.max_bytes_per_sec = 256 << 10;
        c.max_message_bytes = 64 << 10;
        c.media_max_age = Duration::from_secs(60);
    })
    .await;
    let url = relay.url();
    let mut sender = Client::join(&url, "r").await;
    let mut receiver = Client::join(&url, "r").await;
    assert_eq!(sender.recv().await["type"], "peer_joined");
    // 20 messages of ~61 KB: 1.2 MB, of which the burst (128 KiB) passes at
    // once and the rest at 256 KiB/s: at least 4 s until the last arrives.
    // (Frames a receiver is behind on are superseded by the sender's newer
    // ones, so not all 20 need arrive; the last one must.)
    let started = Instant::now();
    for i in 0..20 {
        let data = format!("{i:04}{}", "A".repeat(60 << 10));
        sender
            .send(json!({"type":"send","kind":"media","data":data}))
            .await;
    }
    loop {
        let m = receiver
            .try_recv(Duration::from_secs(20))
            .await
            .expect("the last message arrives");
        assert_eq!(m["type"], "blob", "{m}");
        if m["data"].as_str().unwrap().starts_with("0019") {
            break;
        }
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "paced to 256 KiB/s: {took:?}"
    );
    assert!(
        sender.try_recv(Duration::from_millis(200)).await.is_none(),
        "no error for the sender"
    );
    relay.shutdown().await;
    assert_no_task_panics();
}
