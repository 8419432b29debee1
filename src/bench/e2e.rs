//! `bench e2e`: N members with test sources through an embedded relay, all
//! in this process. Glass-to-glass = capture timestamp → frame decoded,
//! scaled and drawn as half-blocks into a buffer at the receiver.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use clap::Args;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use tokio::sync::mpsc;

use super::stats::{process_cpu_seconds, quantile, Report};
use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::capture::now_us;
use crate::media::source::SourceSpec;
use crate::media::{jpeg, scale};
use crate::session::{self, SessionCommand, SessionEvent};
use crate::tui::render::{draw_image, ColourMode, TileMemory};

#[derive(Args)]
pub struct E2eArgs {
    /// Members in the call (at least 2), each sending the test pattern.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=32))]
    peers: u32,
    /// Seconds measured, after everyone is verified: 10, 10s or 1m.
    #[arg(long, default_value = "10", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Tile each receiver shows, in cells (video is twice as tall in pixels).
    #[arg(long, default_value = "80x24", value_parser = crate::cli::parse_size)]
    tile: (u32, u32),
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

struct Member {
    latencies: Vec<f64>,
    frames: u64,
    bytes_up: u64,
}

pub async fn run(args: E2eArgs) -> anyhow::Result<()> {
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let invite = Invite::generate(&mut rand_core::OsRng);
    let psk = session::derive_psk_async(&invite, KdfParams::V1)
        .await
        .map_err(anyhow::Error::msg)?;
    let cells = (args.tile.0 as u16, args.tile.1 as u16);
    let px = (args.tile.0, args.tile.1 * 2);
    let measure_from = Instant::now() + Duration::from_secs(2);
    let total = Duration::from_secs(args.seconds) + Duration::from_secs(2);
    let cpu0 = process_cpu_seconds(std::process::id()).unwrap_or(0.0);
    let mut handles = Vec::new();
    for i in 0..args.peers {
        let mut config = session::SessionConfig::new(
            invite.clone(),
            vec![relay.url()],
            format!("peer{i}"),
            SourceSpec::Test,
        );
        config.view = px;
        config.psk = Some(psk.clone());
        let (tx, mut rx) = mpsc::channel(4096);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let session = tokio::spawn(session::run(config, tx, cmd_rx));
        handles.push(tokio::spawn(async move {
            let mut member = Member {
                latencies: Vec::new(),
                frames: 0,
                bytes_up: 0,
            };
            let mut buf = Buffer::empty(Rect::new(0, 0, cells.0, cells.1));
            let mut memory = TileMemory::default();
            let deadline = tokio::time::Instant::now() + total;
            let mut up_at_start = None;
            let mut stats = None;
            loop {
                let ev = tokio::select! {
                    ev = rx.recv() => ev,
                    _ = tokio::time::sleep_until(deadline) => break,
                };
                match ev {
                    Some(SessionEvent::Connected { stats: s, .. }) => stats = Some(s),
                    Some(SessionEvent::Video {
                        jpeg: payload,
                        timestamp_us,
                        ..
                    }) => {
                        // Decode, scale, draw: what a TUI receiver does.
                        if let Ok(img) = jpeg::decode(&payload) {
                            let img = scale::scale_to_fit(&img, px);
                            let area = buf.area;
                            draw_image(
                                &mut buf,
                                area,
                                &img,
                                ColourMode::TrueColor,
                                &mut memory,
                                24,
                                1,
                            );
                        }
                        if Instant::now() >= measure_from {
                            member.frames += 1;
                            member
                                .latencies
                                .push(now_us().saturating_sub(timestamp_us) as f64 / 1000.0);
                            if up_at_start.is_none() {
                                up_at_start = stats.as_ref().map(
                                    |s: &std::sync::Arc<crate::net::link::LinkStats>| {
                                        (Instant::now(), s.bytes_up.load(Relaxed))
                                    },
                                );
                            }
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            if let (Some((at, up0)), Some(s)) = (up_at_start, &stats) {
                let secs = at.elapsed().as_secs_f64().max(0.001);
                member.bytes_up = ((s.bytes_up.load(Relaxed) - up0) as f64 / secs) as u64;
            }
            let _ = cmd_tx.send(SessionCommand::Leave).await;
            let _ = session.await;
            member
        }));
    }
    let mut latencies = Vec::new();
    let mut fps = Vec::new();
    let mut up = Vec::new();
    for h in handles {
        let m = h.await?;
        latencies.extend(m.latencies);
        fps.push(m.frames as f64 / args.seconds as f64 / (args.peers - 1) as f64);
        up.push(m.bytes_up as f64 * 8.0 / 1000.0);
    }
    let cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu0;
    relay.shutdown().await;
    let mut report = Report::new(format!(
        "bench e2e: {} members, {} s, {}x{} cell tiles, {} cores",
        args.peers,
        args.seconds,
        cells.0,
        cells.1,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    ));
    report.row("glass_to_glass_p50_ms", quantile(&mut latencies, 0.5), "ms");
    report.row(
        "glass_to_glass_p99_ms",
        quantile(&mut latencies, 0.99),
        "ms",
    );
    report.row(
        "delivered_fps_per_stream",
        quantile(&mut fps, 0.5),
        "fps (median over receivers)",
    );
    report.row(
        "cpu_per_client_percent",
        cpu / total.as_secs_f64() * 100.0 / args.peers as f64,
        "% of one core (process CPU / members, relay included)",
    );
    report.row(
        "wire_kbit_per_s_per_stream",
        quantile(&mut up, 0.5),
        "kbit/s (uplink incl. control)",
    );
    report.print(args.json);
    Ok(())
}
