//! `bench thin`: a ~200 kbit/s link on the sender's uplink, then on one
//! receiver's downlink, with adaptation on and off: delay and delivered fps.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::mpsc;

use super::stats::{quantile, Report};
use super::throttle::{throttle, Direction};
use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::capture::now_us;
use crate::media::source::SourceSpec;
use crate::session::{self, SessionCommand, SessionEvent};

#[derive(Args)]
pub struct ThinArgs {
    /// Measured seconds per run (after a settling period of 5 s): 15, 15s
    /// or 1m.
    #[arg(long, default_value = "15", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Link rate in bytes per second (25000 ≈ 200 kbit/s; sizes like 64KiB
    /// too), at least 1000.
    #[arg(long, default_value = "25000", value_parser = |s: &str| streamflow_relay::config::parse_size_within(s, 1000, usize::MAX).map(|b| b as u64), value_name = "SIZE")]
    rate: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// A member run in-process; returns (delays in ms, frames) seen in the
/// measuring window.
struct Member {
    commands: mpsc::Sender<SessionCommand>,
    results: tokio::task::JoinHandle<(Vec<f64>, u64)>,
}

fn member(
    invite: &Invite,
    psk: &crate::crypto::secret::Key32,
    url: String,
    name: &str,
    source: SourceSpec,
    adapt: bool,
    window: (Instant, Instant),
) -> Member {
    let mut config = session::SessionConfig::new(invite.clone(), vec![url], name.into(), source);
    config.adapt = adapt;
    config.psk = Some(psk.clone());
    let (tx, mut rx) = mpsc::channel(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    tokio::spawn(session::run(config, tx, cmd_rx));
    let results = tokio::spawn(async move {
        let mut delays = Vec::new();
        let mut frames = 0;
        while let Some(ev) = rx.recv().await {
            if let SessionEvent::Video { timestamp_us, .. } = ev {
                let now = Instant::now();
                if now >= window.0 && now < window.1 {
                    frames += 1;
                    delays.push(now_us().saturating_sub(timestamp_us) as f64 / 1000.0);
                }
            }
        }
        (delays, frames)
    });
    Member {
        commands: cmd_tx,
        results,
    }
}

async fn finish(m: Member) -> (Vec<f64>, u64) {
    let _ = m.commands.send(SessionCommand::Leave).await;
    m.results.await.unwrap_or_default()
}

pub async fn run(args: ThinArgs) -> anyhow::Result<()> {
    let invite = Invite::generate(&mut rand_core::OsRng);
    let psk = session::derive_psk_async(&invite, KdfParams::V1)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut report = Report::new(format!(
        "bench thin: one {:.0} kbit/s link, {} s measured per run",
        args.rate as f64 * 8.0 / 1000.0,
        args.seconds
    ));
    let settle = Duration::from_secs(5);
    let measure = Duration::from_secs(args.seconds);
    // Four runs of settle + measure: say where we are (stderr; stdout
    // carries only the result).
    let runs = 4;
    let mut run_no = 0;
    let mut progress = |what: &str| {
        run_no += 1;
        eprintln!(
            "bench thin: run {run_no}/{runs}: {what} ({:.0} s)…",
            (settle + measure).as_secs_f64()
        );
    };
    for adapt in [true, false] {
        let tag = if adapt { "adapt_on" } else { "adapt_off" };
        // Uplink: the sender's link is thin.
        {
            progress(&format!(
                "thin uplink, adaptation {}",
                if adapt { "on" } else { "off" }
            ));
            let relay = start_relay().await?;
            let proxy = throttle(relay.addr(), Direction::Up).await;
            proxy.rate.store(args.rate, Relaxed);
            let window = (Instant::now() + settle, Instant::now() + settle + measure);
            let sender = member(
                &invite,
                &psk,
                proxy.url.clone(),
                "sender",
                SourceSpec::Test,
                adapt,
                window,
            );
            let viewer = member(
                &invite,
                &psk,
                relay.url(),
                "viewer",
                SourceSpec::None,
                adapt,
                window,
            );
            tokio::time::sleep(settle + measure).await;
            let (mut d, frames) = finish(viewer).await;
            finish(sender).await;
            relay.shutdown().await;
            report.row(
                format!("uplink_{tag}_delay_p50_ms"),
                quantile(&mut d, 0.5),
                "ms",
            );
            report.row(
                format!("uplink_{tag}_delay_p95_ms"),
                quantile(&mut d, 0.95),
                "ms",
            );
            report.row(
                format!("uplink_{tag}_fps"),
                frames as f64 / args.seconds as f64,
                "fps",
            );
        }
        // Downlink: one of two receivers is behind the thin link.
        {
            progress(&format!(
                "one thin receiver, adaptation {}",
                if adapt { "on" } else { "off" }
            ));
            let relay = start_relay().await?;
            let proxy = throttle(relay.addr(), Direction::Down).await;
            proxy.rate.store(args.rate, Relaxed);
            let window = (Instant::now() + settle, Instant::now() + settle + measure);
            let sender = member(
                &invite,
                &psk,
                relay.url(),
                "sender",
                SourceSpec::Test,
                adapt,
                window,
            );
            let fast = member(
                &invite,
                &psk,
                relay.url(),
                "fast",
                SourceSpec::None,
                adapt,
                window,
            );
            let slow = member(
                &invite,
                &psk,
                proxy.url.clone(),
                "slow",
                SourceSpec::None,
                adapt,
                window,
            );
            tokio::time::sleep(settle + measure).await;
            let (mut d, frames) = finish(slow).await;
            let (_, fast_frames) = finish(fast).await;
            finish(sender).await;
            relay.shutdown().await;
            report.row(
                format!("receiver_{tag}_slow_delay_p50_ms"),
                quantile(&mut d, 0.5),
                "ms",
            );
            report.row(
                format!("receiver_{tag}_slow_delay_p95_ms"),
                quantile(&mut d, 0.95),
                "ms",
            );
            report.row(
                format!("receiver_{tag}_slow_fps"),
                frames as f64 / args.seconds as f64,
                "fps",
            );
            report.row(
                format!("receiver_{tag}_fast_fps"),
                fast_frames as f64 / args.seconds as f64,
                "fps",
            );
        }
    }
    report.note(
        "delay = capture timestamp → decrypted at the receiver; the proxy has 4 KiB socket buffers",
    );
    report.print(args.json);
    Ok(())
}

async fn start_relay() -> anyhow::Result<streamflow_relay::RelayHandle> {
    streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await
}
