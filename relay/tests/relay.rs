//! End-to-end tests of the relay over real loopback sockets.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_presence_broadcast_direct_and_isolation() {
    let relay = relay(|_| {}).await;
    let url = relay.url();
    let mut clients = Vec::new();
    for i in 0..5 {
        let c = Client::join(&url, "room-a").await;
        // Each joiner's welcome lists exactly the peers that joined before it.
        let mut earlier: Vec<String> = clients.iter().map(|c: &Client| c.id.clone()).collect();
        earlier.sort();
        assert_eq!(c.peers(), earlier, "welcome of joiner {i}");
        // Everyone already in the room sees this join, in join order.
        for other in clients.iter_mut() {
            let m = other.recv().await;
            assert_eq!(m, json!({"type":"peer_joined","peer":c.id}));
        }
        clients.push(c);
    }
    assert_eq!(clients[0].welcome["limits"]["max_peers_per_room"], 64);

    // A client in another room hears nothing from room-a.
    let mut outsider = Client::join(&url, "room-b").await;
    assert!(outsider.peers().is_empty());

    // Broadcast reaches the four others, never the sender.
    clients[0]
        .send(json!({"type":"send","kind":"media","data":"AAEC"}))
        .await;
    let sender = clients[0].id.clone();
    for c in clients[1..].iter_mut() {
        let m = c.recv().await;
        assert_eq!(
            m,
            json!({"type":"blob","from":sender,"kind":"media","data":"AAEC"})
        );
    }
    assert_eq!(clients[0].try_recv(Duration::from_millis(300)).await, None);

    // A directed send reaches only its target.
    let target = clients[3].id.clone();
    clients[1]
        .send(json!({"type":"send","kind":"control","to":target,"data":"ZGlyZWN0"}))
        .await;
    let m = clients[3].recv().await;
    assert_eq!(m["from"], clients[1].id.as_str());
    assert_eq!(m["kind"], "control");
    assert_eq!(m["data"], "ZGlyZWN0");
    for i in [0, 1, 2, 4] {
        assert_eq!(
            clients[i].try_recv(Duration::from_millis(200)).await,
            None,
            "client {i} got a message sent to client 3"
        );
    }
    assert_eq!(outsider.try_recv(Duration::from_millis(200)).await, None);

    // A directed send to a peer of another room is refused.
    let outsider_id = outsider.id.clone();
    clients[1]
        .send(json!({"type":"send","kind":"control","to":outsider_id,"data":"eA=="}))
        .await;
    assert_eq!(clients[1].recv().await["code"], "unknown_peer");

    // Leave (explicit) and a dropped socket are both announced, in order.
    let leaver = clients.remove(2);
    let mut leaver_ws = leaver.ws;
    send(&mut leaver_ws, json!({"type":"leave"})).await;
    for c in clients.iter_mut() {
        assert_eq!(
            c.recv().await,
            json!({"type":"peer_left","peer":leaver.id,"reason":"leave"})
        );
    }
    let dropped = clients.pop().unwrap();
    drop(dropped.ws);
    for c in clients.iter_mut() {
        let m = c.recv().await;
        assert_eq!(m["type"], "peer_left");
        assert_eq!(m["peer"], dropped.id.as_str());
    }
    assert_eq!(outsider.try_recv(Duration::from_millis(200)).await, None);

    let (status, body) = http_get(relay.addr(), "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&body, "streamflow_relay_rooms"), 2.0);
    assert_eq!(metric(&body, "streamflow_relay_peers"), 4.0);
    relay.shutdown().await;
    assert_no_task_panics();
}

/// A stalled receiver (never reads) while others get 30 fps of 8 KB media:
/// the others keep ≥ 95% of frames, the stalled one's queue stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_receiver_does_not_hurt_others() {
    const QUEUE_BYTES: u64 = 512 << 10;
    let relay = relay(|c| c.media_queue_bytes = QUEUE_BYTES).await;
    let url = relay.url();

    // The stalled peer has a tiny receive buffer so the backlog lands in the
    // relay's queue quickly rather than in kernel buffers.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(relay.addr()).await.unwrap();
    let (mut stalled, _) =
        tokio_tungstenite::client_async(url.clone(), tokio_tungstenite::MaybeTlsStream::Plain(tcp))
            .await
            .unwrap();
    stalled
        .send(Message::Text(
            json!({"type":"join","room":"r","v":1}).to_string().into(),
        ))
        .await
        .unwrap();

    let mut sender = Client::join(&url, "r").await;
    let mut receivers = Vec::new();
    for _ in 0..3 {
        receivers.push(Client::join(&url, "r").await);
    }
    // Drain the joins so receivers only count blobs.
    let frames = 300; // 10 s at 30 fps
    let payload = "A".repeat(8 * 1024);
    let counters: Vec<_> = receivers
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut blobs = 0;
                while let Some(m) = c.try_recv(Duration::from_secs(3)).await {
                    if m["type"] == "blob" {
                        blobs += 1;
                    }
                }
                blobs
            })
        })
        .collect();
    let mut tick = tokio::time::interval(Duration::from_micros(33_333));
    for _ in 0..frames {
        tick.tick().await;
        sender
            .send(json!({"type":"send","kind":"media","data":payload}))
            .await;
    }
    for c in counters {
        let got = c.await.unwrap();
        assert!(
            got * 100 >= frames * 95,
            "a healthy receiver got {got}/{frames} frames"
        );
    }

    let (_, text) = http_get(relay.addr(), "/metrics").await;
    let high_water = metric(&text, "streamflow_relay_queue_high_water_bytes");
    let dropped = metric(&text, "streamflow_relay_media_dropped_total");
    assert!(
        high_water <= (QUEUE_BYTES + 64 * 1024) as f64,
        "stalled receiver's backlog reached {high_water} bytes"
    );
    assert!(
        dropped > 0.0,
        "the stalled receiver's old media was dropped"
    );

    // Once the stalled peer reads, its control messages (the joins) are there,
    // before any media, and it has not been cut off.
    let mut control = Vec::new();
    while let Some(m) = try_recv(&mut stalled, Duration::from_secs(2)).await {
        if m["type"] != "blob" {
            control.push(m["type"].as_str().unwrap().to_string());
        }
        if control.len() == 5 {
            break;
        }
    }
    assert_eq!(
        control,
        [
            "welcome",
            "peer_joined",
            "peer_joined",
            "peer_joined",
            "peer_joined"
        ]
    );
    relay.shutdown().await;
    assert_no_task_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_gets_error_codes_and_other_rooms_keep_working() {
    let relay = relay(|c| {
        c.max_message_bytes = 64 * 1024;
        c.max_peers_per_room = 2;
        c.max_rooms = 3;
    })
    .await;
    let url = relay.url();
    let mut a = Client::join(&url, "quiet").await;
    let mut b = Client::join(&url, "quiet").await;
    a.recv().await; // b joined

    let mut bad = connect(&url).await;
    let expect = |code: &'static str| {
        let code = code.to_string();
        move |m: serde_json::Value| {
            assert_eq!(m["type"], "error", "{m}");
            assert_eq!(m["code"], code.as_str(), "{m}");
            assert!(!m["message"].as_str().unwrap().is_empty());
        }
    };
    send(
        &mut bad,
        json!({"type":"send","kind":"media","data":"eA=="}),
    )
    .await;
    expect("not_joined")(recv(&mut bad).await);
    bad.send(Message::Text("{not json".into())).await.unwrap();
    expect("bad_message")(recv(&mut bad).await);
    send(&mut bad, json!({"type":"teleport"})).await;
    expect("bad_message")(recv(&mut bad).await);
    bad.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    expect("binary_unsupported")(recv(&mut bad).await);
    send(&mut bad, json!({"type":"join","room":"no spaces"})).await;
    expect("bad_room")(recv(&mut bad).await);
    send(&mut bad, json!({"type":"join","room":"x","v":9})).await;
    expect("unsupported_version")(recv(&mut bad).await);
    send(&mut bad, json!({"type":"join","room":"quiet"})).await;
    expect("room_full")(recv(&mut bad).await);
    // Unknown fields are ignored.
    send(
        &mut bad,
        json!({"type":"join","room":"noisy","v":1,"colour":"blue","extra":{"a":[1]}}),
    )
    .await;
    assert_eq!(recv(&mut bad).await["type"], "welcome");
    send(&mut bad, json!({"type":"join","room":"noisy"})).await;
    expect("already_joined")(recv(&mut bad).await);
    let big = "A".repeat(64 * 1024 + 1);
    send(&mut bad, json!({"type":"send","kind":"media","data":big})).await;
    expect("too_large")(recv(&mut bad).await);

    // Room limit: "quiet" and "noisy" exist; one more fits, then too_many_rooms.
    let _third = Client::join(&url, "third").await;
    let mut fourth = connect(&url).await;
    send(&mut fourth, json!({"type":"join","room":"fourth"})).await;
    expect("too_many_rooms")(recv(&mut fourth).await);

    // A flood of 10,000 messages: rate limited, and the quiet room still works.
    let flood = tokio::spawn(async move {
        let msg = json!({"type":"send","kind":"media","data":"eA=="}).to_string();
        for _ in 0..10_000 {
            if bad.feed(Message::Text(msg.clone().into())).await.is_err() {
                break;
            }
        }
        let _ = bad.flush().await;
        let mut codes = Vec::new();
        while let Some(m) = try_recv(&mut bad, Duration::from_secs(2)).await {
            if m["type"] == "error" {
                codes.push(m["code"].as_str().unwrap().to_string());
            }
        }
        codes
    });
    for i in 0..20 {
        a.send(json!({"type":"send","kind":"control","data":format!("{i}")}))
            .await;
        let m = b.recv().await;
        assert_eq!(m["data"], format!("{i}"));
    }
    let codes = flood.await.unwrap();
    assert!(codes.contains(&"rate_limited".to_string()), "{codes:?}");
    assert!(
        codes.len() < 50,
        "rate limiting answers per episode, not per message: {}",
        codes.len()
    );

    // Grossly oversize frames (past twice the limit) close the connection.
    let mut huge = Client::join(&url, "third").await;
    let data = "A".repeat(200 * 1024);
    let _ = huge
        .ws
        .send(Message::Text(
            json!({"type":"send","kind":"media","data":data})
                .to_string()
                .into(),
        ))
        .await;
    let mut saw_too_large = false;
    while let Some(m) = huge.try_recv(Duration::from_secs(5)).await {
        if m["code"] == "too_large" {
            saw_too_large = true;
        }
        if m["type"] == "__closed" {
            break;
        }
    }
    assert!(saw_too_large);

    let (_, text) = http_get(relay.addr(), "/metrics").await;
    assert!(text.contains("streamflow_relay_errors_total{code=\"rate_limited\"}"));
    assert!(metric(&text, "streamflow_relay_errors_total{code=\"bad_message\"}") >= 2.0);
    relay.shutdown().await;
    assert_no_task_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_offenders_are_closed() {
    let relay = relay(|c| c.max_strikes = 5).await;
    let mut ws = connect(&relay.url()).await;
    for _ in 0..5 {
        let _ = ws.send(Message::Text("garbage".into())).await;
    }
    let mut closed = None;
    while let Some(m) = try_recv(&mut ws, Duration::from_secs(5)).await {
        if m["type"] == "__closed" {
            closed = Some(m);
            break;
        }
    }
    let closed = closed.expect("connection closed after 5 strikes");
    assert_eq!(closed["code"], 1008);
    assert!(closed["reason"].as_str().unwrap().contains("violations"));
    relay.shutdown().await;
    assert_no_task_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_is_dropped_as_timeout() {
    let relay = relay(|c| {
        c.ping_interval = Duration::from_millis(200);
        c.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let url = relay.url();
    let mut watcher = Client::join(&url, "r").await;
    // The silent peer joins, then never reads again, so it never answers a
    // ping (tungstenite answers pings only while reading).
    let silent = Client::join(&url, "r").await;
    assert_eq!(watcher.recv().await["type"], "peer_joined");
    let started = Instant::now();
    // The watcher keeps reading, so it answers pings and stays.
    let m = watcher.recv().await;
    assert_eq!(
        m,
        json!({"type":"peer_left","peer":silent.id,"reason":"timeout"})
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(watcher.try_recv(Duration::from_millis(1500)).await, None);
    drop(silent);
    relay.shutdown().await;
    assert_no_task_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_metrics_listen() {
    let relay = relay(|_| {}).await;
    assert_eq!(
        http_get(relay.addr(), "/healthz").await,
        (200, "ok\n".into())
    );
    let (status, text) = http_get(relay.addr(), "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "rooms",
        "peers",
        "messages_in_total",
        "messages_out_total",
        "bytes_in_total",
        "bytes_out_total",
        "media_dropped_total",
        "errors_total",
    ] {
        assert!(
            text.contains(&format!("# HELP streamflow_relay_{name} "))
                && text.contains(&format!("# TYPE streamflow_relay_{name} ")),
            "{name} lacks HELP/TYPE"
        );
    }
    assert_eq!(http_get(relay.addr(), "/nope").await.0, 404);
    relay.shutdown().await;

    let relay = common::relay(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_ne!(relay.metrics_addr(), relay.addr());
    assert_eq!(http_get(relay.metrics_addr(), "/healthz").await.0, 200);
    assert_eq!(http_get(relay.addr(), "/healthz").await.0, 404);
    // The WebSocket port still works.
    let _c = Client::join(&relay.url(), "r").await;
    relay.shutdown().await;
    assert_no_task_panics();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_relay_serves_wss() {
    let dir = std::env::temp_dir().join(format!("streamflow-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let relay = relay(|c| {
        c.tls_cert = Some(cert_path.clone());
        c.tls_key = Some(key_path.clone());
    })
    .await;
    assert!(relay.url().starts_with("wss://"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let url = format!("wss://localhost:{}", relay.addr().port());
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        Some(tokio_tungstenite::Connector::Rustls(std::sync::Arc::new(
            client_config,
        ))),
    )
    .await
    .expect("wss handshake");
    send(&mut ws, json!({"type":"join","room":"secure"})).await;
    assert_eq!(recv(&mut ws).await["type"], "welcome");
    // Plain ws:// to a TLS port fails rather than hanging.
    let plain = format!("ws://127.0.0.1:{}", relay.addr().port());
    let attempt = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(plain),
    )
    .await;
    assert!(matches!(attempt, Ok(Err(_))));
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = ws.next().await;
}

/// Video reaches a receiver at once, with nothing but video in the room
/// (no control to wake the writer): the flow's first probe goes as soon as
/// video is offered, not at the next keep-alive ping 20 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_flows_at_once_with_nothing_else_in_the_room() {
    let relay = relay(|_| {}).await;
    let url = relay.url();
    let mut a = Client::join(&url, "v").await;
    let mut b = Client::join(&url, "v").await;
    assert_eq!(a.recv().await["type"], "peer_joined");
    let started = std::time::Instant::now();
    let mut got = None;
    for _ in 0..60 {
        a.send(json!({"type":"send","kind":"media","data":"AQID"}))
            .await;
        if let Some(m) = b.try_recv(Duration::from_millis(33)).await {
            got = Some(m);
            break;
        }
    }
    let m = got.expect("no video within 2 s");
    assert_eq!(m["type"], "blob", "{m}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "first frame after {:?}",
        started.elapsed()
    );
    relay.shutdown().await;
}
