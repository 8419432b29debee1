//! `bench relay`: R rooms × P peers, each sending F fps of B-byte media
//! frames through a relay, measuring what the relay adds.
//!
//! Payloads are random bytes of the sealed size with the send time in the
//! first 8 bytes (the relay never looks inside, so this is the real cost).
//! Without `--relay`, `streamflow relay` runs as a child process so its RSS
//! and CPU are its own.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::stats::{process_cpu_seconds, process_rss_mib, quantile, Report};
use crate::media::capture::now_us;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

#[derive(Args, Clone)]
pub struct RelayBenchArgs {
    /// Relay(s) to load; repeat for several (clients are spread over them).
    /// Without it, `streamflow relay` is started as a child process.
    #[arg(long = "relay", value_parser = crate::cli::RelayUrlParser, value_name = "URL")]
    relays: Vec<String>,
    /// Without --relay: start this many child relays (clients are spread
    /// over them, so rooms span relays). More than one needs --redis or
    /// --redis-cluster.
    #[arg(long = "relays", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    relay_count: u32,
    /// Redis URL for the child relays (e.g. redis://127.0.0.1:6379).
    #[arg(long)]
    redis: Option<String>,
    /// Redis Cluster seeds for the child relays instead of --redis
    /// (redis://HOST:PORT[,redis://HOST:PORT...]): rooms spread over its
    /// shards by slot.
    #[arg(long, value_name = "SEEDS", conflicts_with = "redis")]
    redis_cluster: Option<String>,
    /// Rooms, each with --peers members all sending to each other.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    rooms: u32,
    /// Members per room (at least 2).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(2..))]
    peers: u32,
    /// Frames per second each member sends.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    fps: u32,
    /// Bytes per frame before base64 (the relay's cost is per byte and per
    /// message), 8 to 1000000; sizes like 4KiB too.
    #[arg(long, default_value = "4096", value_parser = |s: &str| streamflow_relay::config::parse_size_within(s, 8, 1_000_000).map(|b| b as u32), value_name = "SIZE")]
    frame_bytes: u32,
    /// Seconds measured, after everyone joined: 10, 10s or 1m.
    #[arg(long, default_value = "10", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Pin the child relay(s) to these CPUs (a `taskset -c` list, e.g. `0`),
    /// to measure throughput per core; run the generator itself under
    /// `taskset -c 1` so the two don't share a core.
    #[arg(long, value_name = "CPUS")]
    relay_cpus: Option<String>,
    /// Extra flags for the child relay(s), e.g. `--relay-flag=--socket-unsent-limit=64KiB`.
    #[arg(long = "relay-flag", value_name = "FLAG", allow_hyphen_values = true)]
    relay_flags: Vec<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
    bytes_received: AtomicU64,
}

pub(super) struct ChildRelay {
    pub child: Child,
    pub url: String,
    pub metrics: std::net::SocketAddr,
}

impl Drop for ChildRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts `streamflow relay` with `flags` as a child (pinned to `cpus`, a
/// `taskset -c` list, when given) and waits until it accepts connections.
pub(super) async fn spawn_relay(
    cpus: Option<&str>,
    flags: &[String],
) -> anyhow::Result<ChildRelay> {
    let port = free_port()?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let exe = std::env::current_exe().context("locating the streamflow binary")?;
    // Pinned before it starts, so its runtime sizes itself to those CPUs.
    let mut cmd = match cpus {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus]).arg(exe);
            taskset
        }
        None => Command::new(exe),
    };
    cmd.args(["relay", "--listen", &addr.to_string()])
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = cmd
        .spawn()
        .context("starting `streamflow relay` (is `taskset` installed, for --relay-cpus?)")?;
    let relay = ChildRelay {
        child,
        url: format!("ws://{addr}"),
        metrics: addr,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(relay);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the child relay did not start listening on {addr}")
}

pub(super) async fn scrape(addr: std::net::SocketAddr, metric: &str) -> Option<f64> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
}

/// Connects once to `url`, so a relay that is not there is reported as
/// such (with the reason: refused, unknown host, timeout) before the load
/// starts.
async fn check_reachable(url: &str) -> anyhow::Result<()> {
    const LIMIT: Duration = Duration::from_secs(5);
    match tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((mut ws, _))) => {
            let _ = ws.close(None).await;
            Ok(())
        }
        Ok(Err(e)) => {
            let reason = match &e {
                tokio_tungstenite::tungstenite::Error::Io(io)
                    if io.kind() == std::io::ErrorKind::ConnectionRefused =>
                {
                    "connection refused".to_string()
                }
                other => other.to_string(),
            };
            bail!("cannot reach the relay at {url}: {reason}; is `streamflow relay` running there?")
        }
        Err(_) => bail!("no answer from the relay at {url} within {LIMIT:?}"),
    }
}

/// Pulls the 8-byte send timestamp out of a blob without a full JSON parse.
pub(super) fn sent_at(text: &str) -> Option<u64> {
    let start = text.find("\"data\":\"")? + 8;
    let head = text.get(start..start + 12)?;
    let bytes = B64.decode(head).ok()?;
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

pub async fn run(args: RelayBenchArgs) -> anyhow::Result<()> {
    let mut children = Vec::new();
    let urls = if args.relays.is_empty() {
        let bus = args.redis.is_some() || args.redis_cluster.is_some();
        if args.relay_count > 1 && !bus {
            return Err(super::Usage(format!(
                "--relays {} needs --redis URL or --redis-cluster SEEDS so the relays share rooms",
                args.relay_count
            ))
            .into());
        }
        for _ in 0..args.relay_count.max(1) {
            // The generator's own peers are well-behaved: lift the flood
            // limit so it measures forwarding, not rate limiting.
            let mut flags: Vec<String> = [
                "--rate-per-sec",
                "100000",
                "--rate-burst",
                "100000",
                "--max-bytes-per-sec",
                "1GiB",
            ]
            .map(String::from)
            .to_vec();
            if let Some(url) = &args.redis {
                flags.extend(["--redis".to_string(), url.clone()]);
            }
            if let Some(seeds) = &args.redis_cluster {
                flags.extend(["--redis-cluster".to_string(), seeds.clone()]);
            }
            flags.extend(args.relay_flags.iter().cloned());
            children.push(spawn_relay(args.relay_cpus.as_deref(), &flags).await?);
        }
        if bus {
            // Let the relays' buses connect before clients arrive.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        children.iter().map(|c| c.url.clone()).collect()
    } else {
        args.relays.clone()
    };
    // A dead relay is said at once, not after every client timed out.
    for url in &urls {
        check_reachable(url).await?;
    }
    let relay_rss = |children: &[ChildRelay]| -> f64 {
        children
            .iter()
            .filter_map(|c| process_rss_mib(c.child.id()))
            .sum()
    };
    let rss_idle = relay_rss(&children);
    let counters = Arc::new(Counters::default());
    let latencies = Arc::new(Mutex::new(Vec::<f64>::with_capacity(1 << 20)));
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let total = (args.rooms * args.peers) as usize;
    let start_barrier = Arc::new(tokio::sync::Barrier::new(total + 1));
    let payload_len = args.frame_bytes as usize;
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let room = format!("bench-{}", i / args.peers as usize);
        let url = urls[i % urls.len()].clone();
        let (counters, latencies, measuring, barrier) = (
            counters.clone(),
            latencies.clone(),
            measuring.clone(),
            start_barrier.clone(),
        );
        let (fps, seconds) = (args.fps, args.seconds);
        tasks.push(tokio::spawn(async move {
            let (ws, _) = tokio_tungstenite::connect_async(&url)
                .await
                .with_context(|| format!("connecting to {url}"))?;
            let (mut sink, mut stream) = ws.split();
            sink.send(Message::Text(
                format!(r#"{{"type":"join","room":"{room}","v":1}}"#).into(),
            ))
            .await?;
            // Wait for welcome.
            while let Some(m) = stream.next().await {
                if let Message::Text(t) = m? {
                    if t.contains("\"welcome\"") {
                        break;
                    }
                    if t.contains("\"error\"") {
                        bail!("relay refused: {t}");
                    }
                }
            }
            let reader_counters = counters.clone();
            let reader = tokio::spawn(async move {
                let counters = reader_counters;
                while let Some(Ok(m)) = stream.next().await {
                    if let Message::Text(t) = m {
                        if !measuring.load(Relaxed) || !t.contains("\"blob\"") {
                            continue;
                        }
                        counters.received.fetch_add(1, Relaxed);
                        counters.bytes_received.fetch_add(t.len() as u64, Relaxed);
                        if let Some(sent) = sent_at(&t) {
                            let us = now_us().saturating_sub(sent) as f64;
                            if let Ok(mut l) = latencies.lock() {
                                l.push(us / 1000.0);
                            }
                        }
                    }
                }
            });
            barrier.wait().await;
            let mut body = vec![0u8; payload_len];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut body);
            // Real senders aren't synchronized: spread the first frame
            // over one frame interval so the load is steady, not bursts.
            let period = Duration::from_secs(1) / fps;
            let phase = period.mul_f64(crate::net::backoff::random_unit());
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
            let end = Instant::now() + Duration::from_secs(seconds);
            while Instant::now() < end {
                tick.tick().await;
                body[..8].copy_from_slice(&now_us().to_be_bytes());
                let json = format!(
                    r#"{{"type":"send","kind":"media","data":"{}"}}"#,
                    B64.encode(&body)
                );
                if sink.send(Message::Text(json.into())).await.is_err() {
                    break;
                }
                counters.sent.fetch_add(1, Relaxed);
            }
            // Let the last frames arrive.
            tokio::time::sleep(Duration::from_millis(500)).await;
            reader.abort();
            Ok::<(), anyhow::Error>(())
        }));
    }
    // Everyone is connected and joined when the barrier opens.
    let joined = tokio::time::timeout(Duration::from_secs(60), start_barrier.wait()).await;
    if joined.is_err() {
        bail!("clients could not all join within 60 s");
    }
    let started = Instant::now();
    measuring.store(true, Relaxed);
    let me = std::process::id();
    let my_cpu0 = process_cpu_seconds(me).unwrap_or(0.0);
    let relay_cpu0: Vec<f64> = children
        .iter()
        .map(|c| process_cpu_seconds(c.child.id()).unwrap_or(0.0))
        .collect();
    let mut rss_samples: Vec<f64> = Vec::new();
    let sampler = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss_samples.push(relay_rss(&children));
        }
    };
    let all = futures_util::future::join_all(tasks);
    let results = tokio::select! {
        r = all => r,
        _ = sampler => unreachable!("the sampler loops forever"),
    };
    for r in results {
        r.context("client task panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = counters.sent.load(Relaxed) as f64;
    let received = counters.received.load(Relaxed) as f64;
    let expected = sent * (args.peers - 1) as f64;
    let mut lat = std::mem::take(&mut *latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);

    let mut report = Report::new(format!(
        "bench relay: {} rooms × {} peers, {} fps × {} B, {} s, {} relay(s), {} cores",
        args.rooms,
        args.peers,
        args.fps,
        args.frame_bytes,
        args.seconds,
        urls.len(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    ));
    report.row("messages_forwarded_per_s", received / elapsed, "msg/s");
    report.row(
        "bytes_forwarded_per_s",
        counters.bytes_received.load(Relaxed) as f64 / elapsed,
        "B/s",
    );
    report.row(
        "delivery_ratio",
        if expected > 0.0 {
            received / expected
        } else {
            0.0
        },
        "",
    );
    report.row("latency_p50_ms", quantile(&mut lat, 0.50), "ms");
    report.row("latency_p95_ms", quantile(&mut lat, 0.95), "ms");
    report.row("latency_p99_ms", quantile(&mut lat, 0.99), "ms");
    let mut dropped = 0.0;
    for c in &children {
        dropped += scrape(c.metrics, "streamflow_relay_media_dropped_total")
            .await
            .unwrap_or(0.0);
    }
    if !children.is_empty() {
        report.row("media_dropped", dropped, "msgs");
        let relay_cpu: f64 = children
            .iter()
            .zip(&relay_cpu0)
            .map(|(c, c0)| process_cpu_seconds(c.child.id()).unwrap_or(0.0) - c0)
            .sum();
        report.row(
            "relay_cpu_percent",
            relay_cpu / elapsed * 100.0,
            "% of one core",
        );
        let first = rss_samples.first().copied().unwrap_or(f64::NAN);
        let last = rss_samples.last().copied().unwrap_or(f64::NAN);
        let max = rss_samples.iter().copied().fold(f64::NAN, f64::max);
        report.row("relay_rss_idle_mib", rss_idle, "MiB");
        report.row("relay_rss_start_mib", first, "MiB");
        report.row("relay_rss_end_mib", last, "MiB");
        report.row("relay_rss_max_mib", max, "MiB");
        // Flat means the second half holds no more than the first did.
        let half = rss_samples.len() / 2;
        let max_of = |s: &[f64]| s.iter().copied().fold(f64::NAN, f64::max);
        report.row(
            "relay_rss_drift_mib",
            max_of(&rss_samples[half..]) - max_of(&rss_samples[..half.max(1)]),
            "MiB",
        );
        report.row(
            "relay_kib_per_connection",
            (first - rss_idle) * 1024.0 / total as f64,
            "KiB",
        );
        if rss_samples.len() >= 120 {
            let per_minute: Vec<String> = rss_samples
                .iter()
                .step_by(60)
                .map(|m| format!("{m:.0}"))
                .collect();
            report.note(format!(
                "relay RSS each minute (MiB): {}",
                per_minute.join(" ")
            ));
        }
    } else {
        report.note("external relay: its RSS, CPU and drops are not visible from here");
    }
    let my_cpu = process_cpu_seconds(me).unwrap_or(0.0) - my_cpu0;
    report.row(
        "generator_cpu_percent",
        my_cpu / elapsed * 100.0,
        "% of one core",
    );
    report.note("latency = send timestamp → receive, both in the generator: it includes the generator's own queues");
    report.print(args.json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_survives_the_blob() {
        let mut body = vec![0u8; 32];
        body[..8].copy_from_slice(&1234567u64.to_be_bytes());
        let blob = format!(
            r#"{{"type":"blob","from":"x","kind":"media","data":"{}"}}"#,
            B64.encode(&body)
        );
        assert_eq!(sent_at(&blob), Some(1234567));
        assert_eq!(sent_at("{}"), None);
    }
}
