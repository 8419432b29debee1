//! `bench abuse`: the attacks that used to exhaust the relay's memory, run
//! together against a child relay with a memory budget, while a canary room
//! of four members keeps a call going. Reports the relay's peak RSS against
//! its budget and the canary's delivery and latency.
//!
//! The attacks (each as found in the abuse campaign):
//! - fragmenters: unjoined connections that open a text message and send
//!   64 KiB continuations without finishing it, answering pings, and come
//!   back when closed;
//! - non-readers: members that never read, fed by another member of their
//!   room with large directed control messages and 1 MiB media;
//! - idle connections: upgraded, never a word.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::relay::{scrape, sent_at, spawn_relay};
use super::stats::{process_cpu_seconds, process_rss_mib, quantile, Report};
use crate::media::capture::now_us;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
/// Continuation frames each fragmenter sends (64 KiB each: 2 MiB pinned).
const FRAGMENTS: usize = 31;
const FRAGMENT_BYTES: usize = 64 << 10;

#[derive(Args, Clone)]
pub struct AbuseArgs {
    /// The relay's --max-memory (e.g. 128MiB, 1GiB).
    #[arg(long, default_value = "128MiB", value_parser = |s: &str| streamflow_relay::config::parse_size(s).map(|_| s.trim().to_string()), value_name = "SIZE")]
    max_memory: String,
    /// Seconds of attack (the canary runs 2 s more before it): 30, 30s or
    /// 1m.
    #[arg(long, default_value = "30", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Connections holding unfinished fragmented messages.
    #[arg(long, default_value_t = 100)]
    fragmenters: usize,
    /// Members that never read, each fed by its own flooding member.
    #[arg(long, default_value_t = 20)]
    non_readers: usize,
    /// Upgraded connections that never say a word.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Tally {
    fragment_connections: AtomicU64,
    refused: AtomicU64,
    flood_bytes: AtomicU64,
}

pub async fn run(args: AbuseArgs) -> anyhow::Result<()> {
    let budget_mib = match streamflow_relay::memory::parse_size(&args.max_memory) {
        Ok(bytes) => bytes as f64 / (1024.0 * 1024.0),
        Err(e) => {
            return Err(super::Usage(format!("--max-memory {}: {e}", args.max_memory)).into())
        }
    };
    let relay = spawn_relay(None, &["--max-memory".to_string(), args.max_memory.clone()]).await?;
    let addr = relay.metrics;
    let url = relay.url.clone();
    let pid = relay.child.id();
    let rss_idle = process_rss_mib(pid).unwrap_or(f64::NAN);

    // The canary gets its own thread and runtime: the attackers' tasks must
    // not delay its clock.
    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Window::default());
    let canary = {
        let (url, stop, window) = (url.clone(), stop.clone(), window.clone());
        std::thread::spawn(move || -> anyhow::Result<Canary> {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(canary(url, stop, window))
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;

    let tally = Arc::new(Tally::default());
    // Idle connections first (they are the cheapest), then the rest.
    let mut idle = Vec::new();
    for n in 0..args.idle {
        match upgrade(attacker_ip(3, n), addr).await {
            Ok(Some(s)) => idle.push(s),
            Ok(None) => {
                tally.refused.fetch_add(1, Relaxed);
            }
            Err(_) => break,
        }
    }
    let mut attackers = Vec::new();
    for n in 0..args.fragmenters {
        let from = attacker_ip(1, n);
        attackers.push(tokio::spawn(fragmenter(
            from,
            addr,
            tally.clone(),
            stop.clone(),
        )));
    }
    for n in 0..args.non_readers {
        attackers.push(tokio::spawn(flooded_non_reader(
            attacker_ip(2, n),
            addr,
            format!("sink-{n}"),
            tally.clone(),
            stop.clone(),
        )));
    }
    let idle_held = idle.len();

    window.start.store(now_us(), Relaxed);
    let cpu0 = process_cpu_seconds(pid).unwrap_or(0.0);
    let me = std::process::id();
    let my_cpu0 = process_cpu_seconds(me).unwrap_or(0.0);
    let started = Instant::now();
    let (mut rss_max, mut used_max) = (0.0f64, 0.0f64);
    while started.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        rss_max = rss_max.max(process_rss_mib(pid).unwrap_or(0.0));
        if let Some(used) = scrape(addr, "streamflow_relay_memory_used_bytes").await {
            used_max = used_max.max(used / (1024.0 * 1024.0));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let relay_cpu = process_cpu_seconds(pid).unwrap_or(0.0) - cpu0;
    let my_cpu = process_cpu_seconds(me).unwrap_or(0.0) - my_cpu0;
    window.end.store(now_us(), Relaxed);
    stop.store(true, Relaxed);
    drop(idle);
    for a in attackers {
        a.abort();
    }
    let canary = canary
        .join()
        .map_err(|_| anyhow::anyhow!("the canary thread panicked"))??;
    let metric = |name: &'static str| scrape(addr, name);
    let alive = relay.child.id() == pid && process_rss_mib(pid).is_some();

    let mut report = Report::new(format!(
        "bench abuse: budget {}, {} s: {} fragmenters, {} flooded non-readers, {} idle connections, canary room of 4 at 30 fps × 2 KB",
        args.max_memory, args.seconds, args.fragmenters, args.non_readers, args.idle
    ));
    report.row("budget_mib", budget_mib, "MiB");
    report.row("relay_rss_idle_mib", rss_idle, "MiB");
    report.row("relay_rss_max_mib", rss_max, "MiB");
    report.row(
        "rss_over_budget_mib",
        rss_max - budget_mib,
        "MiB (target ≤ 64)",
    );
    report.row(
        "memory_used_max_mib",
        used_max,
        "MiB (the relay's own account)",
    );
    report.row(
        "relay_cpu_percent",
        relay_cpu / elapsed * 100.0,
        "% of one core",
    );
    report.row(
        "attackers_cpu_percent",
        my_cpu / elapsed * 100.0,
        "% of one core (this process: attackers and canary)",
    );
    report.row("canary_delivery_ratio", canary.delivery(), "");
    let mut lat = canary.latencies_ms;
    report.row("canary_latency_p50_ms", quantile(&mut lat, 0.50), "ms");
    report.row(
        "canary_latency_p99_ms",
        quantile(&mut lat, 0.99),
        "ms (target ≤ 10)",
    );
    report.row("idle_connections_held", idle_held as f64, "");
    report.row(
        "fragment_connections_opened",
        tally.fragment_connections.load(Relaxed) as f64,
        "",
    );
    report.row(
        "flood_mib_sent",
        tally.flood_bytes.load(Relaxed) as f64 / (1024.0 * 1024.0),
        "MiB",
    );
    report.row(
        "upgrades_refused_503",
        tally.refused.load(Relaxed) as f64,
        "",
    );
    for (row, name) in [
        ("memory_shed", "streamflow_relay_memory_shed_total"),
        ("memory_refused", "streamflow_relay_memory_refused_total"),
        (
            "message_deadline_closes",
            "streamflow_relay_message_deadline_total",
        ),
        ("control_refused", "streamflow_relay_control_refused_total"),
        (
            "slow_receiver_disconnects",
            "streamflow_relay_slow_receiver_disconnects_total",
        ),
    ] {
        report.row(row, metric(name).await.unwrap_or(f64::NAN), "");
    }
    if !alive {
        report.note("the relay died during the attack");
    }
    report.print(args.json);
    if !alive {
        bail!("the relay died during the attack");
    }
    Ok(())
}

/// Attackers come from their own loopback addresses (127.0.<group>.<n>),
/// so the relay's per-address penalties fall on them, not on the canary
/// or on the metrics scrapes from 127.0.0.1.
fn attacker_ip(group: u8, n: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(127, 0, group, 1 + (n % 250) as u8)
}

async fn connect_from(
    from: std::net::Ipv4Addr,
    to: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    socket.connect(to).await
}

/// A raw WebSocket upgrade; `None` when the relay refused it (503).
async fn upgrade(
    from: std::net::Ipv4Addr,
    addr: std::net::SocketAddr,
) -> anyhow::Result<Option<TcpStream>> {
    let mut s = connect_from(from, addr).await?;
    s.write_all(
        b"GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await? == 0 || head.len() > 4096 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(head.starts_with(b"HTTP/1.1 101").then_some(s))
}

/// One client frame, masked with a zero key (valid, and free to apply).
fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(payload);
    f
}

/// Opens a text message and never finishes it; reconnects when closed.
async fn fragmenter(
    from: std::net::Ipv4Addr,
    addr: std::net::SocketAddr,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let chunk = vec![b'a'; FRAGMENT_BYTES];
    let first = client_frame(false, 0x1, &chunk);
    let more = client_frame(false, 0x0, &chunk);
    let pong = client_frame(true, 0xA, b"");
    while !stop.load(Relaxed) {
        let Ok(Some(mut s)) = upgrade(from, addr).await else {
            tally.refused.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        tally.fragment_connections.fetch_add(1, Relaxed);
        let mut sent = 0;
        let mut sink = [0u8; 4096];
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Continuations while there are any, then pongs that
                    // keep the connection looking alive.
                    let frame = match sent {
                        0 => &first,
                        n if n <= FRAGMENTS => &more,
                        _ => &pong,
                    };
                    sent += 1;
                    if s.write_all(frame).await.is_err() {
                        break;
                    }
                }
                read = s.read(&mut sink) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        break;
                    }
                }
            }
            if stop.load(Relaxed) {
                return;
            }
        }
    }
}

/// A member that never reads, and another member of its room that floods
/// it with directed control (just under the cap) and 1 MiB media.
async fn flooded_non_reader(
    from: std::net::Ipv4Addr,
    addr: std::net::SocketAddr,
    room: String,
    tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
) {
    let join = format!(r#"{{"type":"join","room":"{room}","v":1}}"#);
    let control = B64.encode(vec![7u8; 45 << 10]);
    let media = format!(
        r#"{{"type":"send","kind":"media","data":"{}"}}"#,
        B64.encode(vec![9u8; 700 << 10])
    );
    while !stop.load(Relaxed) {
        let url = format!("ws://{addr}");
        let feeder = match connect_from(from, addr).await {
            Ok(tcp) => tokio_tungstenite::client_async(url, tcp).await.ok(),
            Err(_) => None,
        };
        let Some((feeder, _)) = feeder else {
            tally.refused.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        let (mut tx, mut rx) = feeder.split();
        if tx.send(Message::Text(join.clone().into())).await.is_err() {
            continue;
        }
        let Ok(Some(mut victim)) = upgrade(from, addr).await else {
            tally.refused.fetch_add(1, Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if victim
            .write_all(&client_frame(true, 0x1, join.as_bytes()))
            .await
            .is_err()
        {
            continue;
        }
        // The victim's id, from the feeder's peer_joined.
        let mut target = None;
        while target.is_none() {
            match tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.contains("peer_joined") => {
                    target = serde_json::from_str::<serde_json::Value>(&t)
                        .ok()
                        .and_then(|v| v["peer"].as_str().map(String::from));
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
        let Some(target) = target else { continue };
        let directed =
            format!(r#"{{"type":"send","kind":"control","to":"{target}","data":"{control}"}}"#);
        // The feeder reads what it is sent (errors, presence) as a member would.
        let drain = tokio::spawn(async move { while let Some(Ok(_)) = rx.next().await {} });
        // 15 control + 8 media per second: well within the rate limit.
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        'flood: while !stop.load(Relaxed) {
            tick.tick().await;
            for i in 0..23 {
                let m = if i < 15 { &directed } else { &media };
                if tx.send(Message::Text(m.clone().into())).await.is_err() {
                    break 'flood;
                }
                tally.flood_bytes.fetch_add(m.len() as u64, Relaxed);
            }
        }
        drain.abort();
        drop(victim);
    }
}

/// The measured span, in `now_us` time: a canary frame counts (sent and
/// received alike) when its send time is inside it.
struct Window {
    start: AtomicU64,
    end: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Window {
            start: AtomicU64::new(u64::MAX),
            end: AtomicU64::new(u64::MAX),
        }
    }
}

impl Window {
    fn contains(&self, at: u64) -> bool {
        at >= self.start.load(Relaxed) && at <= self.end.load(Relaxed)
    }
}

struct Canary {
    sent: u64,
    received: u64,
    latencies_ms: Vec<f64>,
}

impl Canary {
    fn delivery(&self) -> f64 {
        self.received as f64 / (self.sent * 3).max(1) as f64
    }
}

/// Four members at 30 fps × 2 KB, counting the frames sent in `window`.
async fn canary(url: String, stop: Arc<AtomicBool>, window: Arc<Window>) -> anyhow::Result<Canary> {
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut members = Vec::new();
    for _ in 0..4 {
        let (ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .context("canary connecting")?;
        let (mut tx, mut rx) = ws.split();
        tx.send(Message::Text(
            r#"{"type":"join","room":"canary","v":1}"#.into(),
        ))
        .await?;
        let (received, latencies, in_window) =
            (received.clone(), latencies.clone(), window.clone());
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                let Message::Text(t) = m else { continue };
                let Some(at) = sent_at(&t).filter(|at| in_window.contains(*at)) else {
                    continue;
                };
                received.fetch_add(1, Relaxed);
                let ms = now_us().saturating_sub(at) as f64 / 1000.0;
                latencies.lock().unwrap_or_else(|e| e.into_inner()).push(ms);
            }
        });
        let (sent, stop, window) = (sent.clone(), stop.clone(), window.clone());
        let writer = tokio::spawn(async move {
            let mut body = vec![0u8; 2048];
            let mut tick = tokio::time::interval(Duration::from_millis(33));
            while !stop.load(Relaxed) {
                tick.tick().await;
                let at = now_us();
                body[..8].copy_from_slice(&at.to_be_bytes());
                let json = format!(
                    r#"{{"type":"send","kind":"media","data":"{}"}}"#,
                    B64.encode(&body)
                );
                if tx.send(Message::Text(json.into())).await.is_err() {
                    return;
                }
                if window.contains(at) {
                    sent.fetch_add(1, Relaxed);
                }
            }
        });
        members.push((reader, writer));
    }
    while !stop.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What was sent last gets its time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for (reader, writer) in members {
        reader.abort();
        writer.abort();
    }
    let latencies_ms = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(Canary {
        sent: sent.load(Relaxed),
        received: received.load(Relaxed),
        latencies_ms,
    })
}
