//! `bench audio`: voice through the real pipeline (capture pacing, Opus,
//! sealing, an embedded relay, the jitter buffer, the mix), all in this
//! process.
//!
//! - Mouth-to-ear: a sender makes a click every 200 ms; the receiver's
//!   sink finds each click in its mix. Latency = the click's capture time
//!   → the moment the mix hands it to the sink (device buffers excluded).
//!   On loopback, then with the receiver behind a link with ±jitter.
//! - Wire: bytes per second of the sender's audio messages (JSON, base64,
//!   sealing and signature included).
//! - CPU: N members each sending video and voice; the process's CPU time
//!   (relay included) per member.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::mpsc;

use super::shaper::{LinkSpec, Shaper};
use super::stats::{process_cpu_seconds, quantile, Report};
use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::audio::engine::AudioSetup;
use crate::media::audio::sink::AudioSink;
use crate::media::audio::source::{AudioSource, Captured, Clicks, Tone};
use crate::media::audio::{BLOCK, RATE};
use crate::media::capture::now_us;
use crate::media::source::SourceSpec;
use crate::net::link::LinkStats;
use crate::session::{self, SessionCommand, SessionConfig, SessionEvent};

#[derive(Args)]
pub struct AudioArgs {
    /// Seconds measured per run (after the call is up): 20, 20s or 2m.
    #[arg(long, default_value = "20", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// One-way delay of the jittery link (the second run).
    #[arg(long, default_value = "30ms", value_parser = streamflow_relay::config::parse_duration)]
    delay: Duration,
    /// The jittery link varies the delay by ± this.
    #[arg(long, default_value = "30ms", value_parser = streamflow_relay::config::parse_duration)]
    jitter: Duration,
    /// Members in the CPU run, each sending video and voice.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(2..=16))]
    peers: u32,
    /// Instead: voice on thin links, judged by what a listener hears. A
    /// speaker sends speech and video, a second member video; the
    /// listener's downlink (400 kbit/s 40 ms, 1 Mbit/s 20 ms, 160 kbit/s
    /// 80 ms) or the speaker's uplink (300 kbit/s 40 ms) goes through a
    /// link emulator. Speech scored with STOI (and PESQ-WB if Python's
    /// `pesq` is installed).
    #[arg(long)]
    thin: bool,
    /// With --thin: only this case (unshaped, down_400k_40ms, down_1m_20ms,
    /// down_160k_80ms, up_300k_40ms).
    #[arg(long, requires = "thin")]
    case: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Clicks every 10 frames (200 ms): longer than any latency measured, so
/// each click heard belongs to the last one sent.
const CLICK_PERIOD_FRAMES: u64 = 10;
const CLICK_PERIOD_US: u64 = CLICK_PERIOD_FRAMES * 20_000;
/// Settling time before measuring (handshakes, first key, jitter buffer).
const SETTLE: Duration = Duration::from_secs(3);

/// The click source, noting when each click was captured.
struct Mouth {
    clicks: Clicks,
    sent: Arc<Mutex<Vec<u64>>>,
}

impl AudioSource for Mouth {
    fn next_frame(&mut self) -> Result<Captured, String> {
        let frame = self.clicks.next_frame()?;
        if frame.samples[..48].iter().any(|s| *s != 0.0) {
            self.sent
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(frame.timestamp_us);
        }
        Ok(frame)
    }
}

/// A sink that finds click onsets in the mix and notes when they played.
/// (`quiet` counts samples since the last loud one.)
struct Ear {
    quiet: usize,
    heard: Arc<Mutex<Vec<u64>>>,
}

impl AudioSink for Ear {
    fn write(&mut self, block: &[f32; BLOCK]) -> Result<(), String> {
        let at = now_us();
        for (i, s) in block.iter().enumerate() {
            if s.abs() > 0.1 {
                // A click: its first loud sample, after 50 ms without one.
                if self.quiet >= RATE as usize / 20 {
                    let onset = at + i as u64 * 1_000_000 / u64::from(RATE);
                    self.heard
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(onset);
                }
                self.quiet = 0;
            } else {
                self.quiet += 1;
            }
        }
        Ok(())
    }
}

/// Latencies (ms) of clicks heard in the window: each onset against the
/// latest click captured before it.
fn latencies(sent: &[u64], heard: &[u64], from_us: u64) -> Vec<f64> {
    heard
        .iter()
        .filter(|h| **h >= from_us)
        .filter_map(|h| {
            let click = sent.iter().rev().find(|s| **s <= *h)?;
            let d = h - click;
            (d < CLICK_PERIOD_US).then_some(d as f64 / 1000.0)
        })
        .collect()
}

/// A member's session config for an in-process call (shared with
/// [`super::voice`]).
pub(super) fn config(
    invite: &Invite,
    psk: &crate::crypto::secret::Key32,
    url: String,
    name: &str,
    video: SourceSpec,
    audio: AudioSetup,
) -> SessionConfig {
    let mut c = SessionConfig::new(invite.clone(), vec![url], name.into(), video);
    c.psk = Some(psk.clone());
    c.audio = Some(Mutex::new(audio));
    c
}

/// A member run in-process until told to leave; hands out its link stats.
struct Member {
    commands: mpsc::Sender<SessionCommand>,
    stats: Arc<Mutex<Option<Arc<LinkStats>>>>,
    /// Voice received, summed over senders: (packets, concealed frames).
    voice: Arc<Mutex<(u64, u64)>>,
    task: tokio::task::JoinHandle<()>,
}

fn member(config: SessionConfig) -> Member {
    let (tx, mut rx) = mpsc::channel(4096);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let stats = Arc::new(Mutex::new(None));
    let voice = Arc::new(Mutex::new((0, 0)));
    let (s, v) = (stats.clone(), voice.clone());
    let task = tokio::spawn(async move {
        let session = tokio::spawn(session::run(config, tx, cmd_rx));
        while let Some(ev) = rx.recv().await {
            match ev {
                SessionEvent::Connected { stats, .. } => {
                    *s.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
                }
                SessionEvent::AudioStats(stats) => {
                    let mut v = v.lock().unwrap_or_else(|e| e.into_inner());
                    for st in stats {
                        v.0 += st.packets;
                        v.1 += st.concealed;
                    }
                }
                _ => {}
            }
        }
        let _ = session.await;
    });
    Member {
        commands: cmd_tx,
        stats,
        voice,
        task,
    }
}

impl Member {
    async fn leave(self) {
        let _ = self.commands.send(SessionCommand::Leave).await;
        let _ = self.task.await;
    }

    fn link(&self) -> Option<Arc<LinkStats>> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What one mouth-to-ear run measured.
struct EarRun {
    latencies: Vec<f64>,
    /// The sender's audio on the wire, kbit/s.
    kbps: f64,
    /// Frames the receiver concealed, % of packets it got in the window.
    concealed_percent: f64,
}

/// One mouth-to-ear run; the receiver reaches the relay at `receiver_url`.
async fn mouth_to_ear(
    invite: &Invite,
    psk: &crate::crypto::secret::Key32,
    relay_url: String,
    receiver_url: String,
    seconds: u64,
) -> EarRun {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let heard = Arc::new(Mutex::new(Vec::new()));
    let mouth = AudioSetup {
        source: Some(Box::new(Mouth {
            clicks: Clicks::new(CLICK_PERIOD_FRAMES),
            sent: sent.clone(),
        })),
        sink: None,
        voice_processing: false,
        lip_sync: false,
    };
    let ear = AudioSetup {
        source: None,
        sink: Some(Box::new(Ear {
            quiet: 0,
            heard: heard.clone(),
        })),
        voice_processing: false,
        lip_sync: false,
    };
    let sender = member(config(
        invite,
        psk,
        relay_url,
        "mouth",
        SourceSpec::None,
        mouth,
    ));
    let receiver = member(config(
        invite,
        psk,
        receiver_url,
        "ear",
        SourceSpec::None,
        ear,
    ));
    tokio::time::sleep(SETTLE).await;
    let from_us = now_us();
    let up0 = sender.link().map(|s| s.audio_bytes_up.load(Relaxed));
    let voice0 = *receiver.voice.lock().unwrap_or_else(|e| e.into_inner());
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let up1 = sender.link().map(|s| s.audio_bytes_up.load(Relaxed));
    let voice1 = *receiver.voice.lock().unwrap_or_else(|e| e.into_inner());
    let concealed_percent =
        (voice1.1 - voice0.1) as f64 * 100.0 / (voice1.0 - voice0.0).max(1) as f64;
    let kbps = match (up0, up1) {
        (Some(a), Some(b)) => (b - a) as f64 * 8.0 / 1000.0 / t0.elapsed().as_secs_f64(),
        _ => f64::NAN,
    };
    receiver.leave().await;
    sender.leave().await;
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let heard = heard.lock().unwrap_or_else(|e| e.into_inner()).clone();
    EarRun {
        latencies: latencies(&sent, &heard, from_us),
        kbps,
        concealed_percent,
    }
}

pub async fn run(args: AudioArgs) -> anyhow::Result<()> {
    if args.thin {
        return thin(&args).await;
    }
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let invite = Invite::generate(&mut rand_core::OsRng);
    let psk = session::derive_psk_async(&invite, KdfParams::V1)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut report = Report::new(format!(
        "bench audio: mouth-to-ear through the real pipeline, {} s per run",
        args.seconds
    ));

    eprintln!("bench audio: run 1/3: loopback…");
    let mut run = mouth_to_ear(&invite, &psk, relay.url(), relay.url(), args.seconds).await;
    if run.latencies.is_empty() {
        anyhow::bail!("no click was heard on loopback: the audio path is broken");
    }
    let clicks = (args.seconds * 1_000_000 / CLICK_PERIOD_US) as f64;
    let heard = |run: &EarRun| run.latencies.len() as f64 * 100.0 / clicks;
    report.row("loopback_clicks_heard_percent", heard(&run), "%");
    report.row("loopback_p50_ms", quantile(&mut run.latencies, 0.5), "ms");
    report.row("loopback_p99_ms", quantile(&mut run.latencies, 0.99), "ms");
    report.row("loopback_concealed_percent", run.concealed_percent, "%");
    report.row("wire_kbps_per_stream", run.kbps, "kbit/s");

    eprintln!(
        "bench audio: run 2/3: receiver behind {} ms ± {} ms…",
        args.delay.as_millis(),
        args.jitter.as_millis()
    );
    let jittery = LinkSpec::new(0.0, args.delay).with_jitter(args.jitter);
    let shaper = Shaper::start(relay.addr(), jittery, LinkSpec::new(0.0, Duration::ZERO))?;
    let url = format!("ws://{}", shaper.addr);
    let mut run = mouth_to_ear(&invite, &psk, relay.url(), url, args.seconds).await;
    if run.latencies.is_empty() {
        anyhow::bail!("no click was heard behind the jittery link");
    }
    report.row("jitter_clicks_heard_percent", heard(&run), "%");
    report.row("jitter_p50_ms", quantile(&mut run.latencies, 0.5), "ms");
    report.row("jitter_p99_ms", quantile(&mut run.latencies, 0.99), "ms");
    report.row("jitter_concealed_percent", run.concealed_percent, "%");

    eprintln!(
        "bench audio: run 3/3: {} members with video and voice…",
        args.peers
    );
    let mut members = Vec::new();
    for i in 0..args.peers {
        let setup = AudioSetup {
            source: Some(Box::new(Tone::new(300.0 + 100.0 * i as f32))),
            sink: None,
            voice_processing: false,
            lip_sync: false,
        };
        members.push(member(config(
            &invite,
            &psk,
            relay.url(),
            &format!("m{i}"),
            SourceSpec::Test,
            setup,
        )));
    }
    tokio::time::sleep(SETTLE).await;
    let me = std::process::id();
    let (cpu0, t0) = (process_cpu_seconds(me).unwrap_or(0.0), Instant::now());
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let cpu = process_cpu_seconds(me).unwrap_or(0.0) - cpu0;
    let per_member = cpu / t0.elapsed().as_secs_f64() * 100.0 / f64::from(args.peers);
    for m in members {
        m.leave().await;
    }
    report.row("cpu_percent_per_member", per_member, "% of a core");
    report.note(format!(
        "mouth-to-ear = click capture time → handed to the sink (device buffers excluded); \
         jittery link = {} ms ± {} ms one way on the receiver's downlink; CPU includes the \
         embedded relay; {} members each send the test pattern and a tone",
        args.delay.as_millis(),
        args.jitter.as_millis(),
        args.peers
    ));
    report.print(args.json);
    relay.shutdown().await;
    Ok(())
}

/// The thin-link table (`--thin`).
async fn thin(args: &AudioArgs) -> anyhow::Result<()> {
    use super::voice::{listen, Thin};
    let scratch = std::env::temp_dir().join(format!("sf-bench-voice-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let wav = scratch.join("speech.wav");
    super::speech::espeak(&wav, super::voice::SPEECH).map_err(anyhow::Error::msg)?;
    let speech = crate::media::audio::wav::read(&wav).map_err(anyhow::Error::msg)?;
    let ms = Duration::from_millis;
    let cases = [
        ("unshaped", Thin::None),
        ("down_400k_40ms", Thin::Down(400e3, ms(40))),
        ("down_1m_20ms", Thin::Down(1e6, ms(20))),
        ("down_160k_80ms", Thin::Down(160e3, ms(80))),
        ("up_300k_40ms", Thin::Up(300e3, ms(40))),
    ];
    let mut report = Report::new(format!(
        "bench audio --thin: speech + 2 video senders, {} s measured per case",
        args.seconds
    ));
    if let Some(only) = &args.case {
        if !cases.iter().any(|(name, _)| name == only) {
            let names: Vec<_> = cases.iter().map(|(name, _)| *name).collect();
            anyhow::bail!("no case {only:?}: one of {}", names.join(", "));
        }
    }
    for (name, case) in cases {
        if args.case.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        eprintln!("bench audio --thin: {name}…");
        let h = listen(
            case,
            Duration::from_secs(5),
            args.seconds,
            &speech,
            &scratch,
        )
        .await?;
        if let Some(p) = h.pesq_wb {
            report.row(format!("{name}_pesq_wb"), p, "MOS-LQO (PESQ-WB)");
        }
        report.row(format!("{name}_stoi"), h.stoi, "STOI");
        report.row(format!("{name}_playout_p50_ms"), h.playout_p50(), "ms");
        report.row(format!("{name}_playout_max_ms"), h.playout_max(), "ms");
        report.row(
            format!("{name}_concealed_percent"),
            h.concealed_percent,
            "%",
        );
        report.row(
            format!("{name}_video_fps_min"),
            h.min_fps(),
            "fps (slower sender)",
        );
        report.row(
            format!("{name}_frame_latency_p95_ms"),
            h.frame_latency_p95(),
            "ms",
        );
    }
    report.note(
        "links: rate and one-way delay, a 200 ms router queue, a 16 KiB receive buffer \
         towards the relay; playout = the listener's audio_stats (capture → played)",
    );
    report.print(args.json);
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_matched_to_the_last_one_sent() {
        let sent = [1_000_000, 1_200_000, 1_400_000];
        let heard = [1_035_000, 1_240_000, 1_000_000 - 5, 1_900_000];
        assert_eq!(latencies(&sent, &heard, 0), vec![35.0, 40.0]);
    }
}
