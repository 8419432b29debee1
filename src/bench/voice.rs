//! Voice on thin links, judged by what a person hears: a speaker sends
//! speech and the test pattern, a second member sends video only, and a
//! listener records its mix. Either the listener's downlink or the
//! speaker's uplink goes through a link emulator (a real TCP proxy: rate,
//! one-way delay, a router queue of 200 ms, and a 16 KiB receive buffer
//! towards the relay, so the bottleneck pushes back as a real one does).
//!
//! Measured at the listener: how the speech scores against what was said
//! (STOI, and PESQ-WB when Python's `pesq` is installed), the voice's
//! playout delay (capture → played) and concealment from its own
//! `audio_stats`, and each video sender's frames per second and frame age.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::audio::config;
use super::shaper::{LinkSpec, Shaper};
use super::speech;
use super::stats::quantile;
use crate::crypto::secret::Key32;
use crate::invite::Invite;
use crate::media::audio::engine::AudioSetup;
use crate::media::audio::sink::AudioSink;
use crate::media::audio::source::Looped;
use crate::media::audio::BLOCK;
use crate::media::capture::now_us;
use crate::media::source::SourceSpec;
use crate::session::{self, SessionCommand, SessionConfig, SessionEvent};

/// What is said, looped.
pub const SPEECH: &str = "Streamflow carries every voice sealed from end to end. \
    The quick brown fox jumps over the lazy dog, while seven silver bells ring twice.";

/// Where the thin link is.
#[derive(Debug, Clone, Copy)]
pub enum Thin {
    /// Nowhere.
    None,
    /// The listener's downlink: bits per second, one-way delay.
    Down(f64, Duration),
    /// The speaker's uplink.
    Up(f64, Duration),
}

/// What the listener got.
#[derive(Debug, Clone)]
pub struct Heard {
    pub stoi: f64,
    pub pesq_wb: Option<f64>,
    pub correlation: f32,
    /// The listener's `audio_stats` for the speaker, once a second.
    pub playout_ms: Vec<f64>,
    pub concealed_percent: f64,
    /// Frames per second from each video sender, lowest first.
    pub fps: Vec<f64>,
    /// Capture → received, every frame.
    pub frame_latency_ms: Vec<f64>,
    /// At the end, the listener was told the relay paused video to it
    /// (`video_paused`, direction in).
    pub video_paused_in: bool,
    /// At the end, the speaker's uplink had paused its video.
    pub speaker_video_paused_out: bool,
}

impl Heard {
    pub fn playout_p50(&self) -> f64 {
        quantile(&mut self.playout_ms.clone(), 0.5)
    }

    pub fn playout_max(&self) -> f64 {
        quantile(&mut self.playout_ms.clone(), 1.0)
    }

    pub fn frame_latency_p95(&self) -> f64 {
        quantile(&mut self.frame_latency_ms.clone(), 0.95)
    }

    pub fn min_fps(&self) -> f64 {
        self.fps.iter().copied().fold(f64::INFINITY, f64::min)
    }
}

/// 10 ms blocks of the mix, with the wall-clock time of each.
type Blocks = Arc<Mutex<Vec<(u64, [f32; BLOCK])>>>;

/// The listener's mix, with the wall-clock time of each block.
struct Recorder {
    blocks: Blocks,
}

impl AudioSink for Recorder {
    fn write(&mut self, block: &[f32; BLOCK]) -> Result<(), String> {
        let mut b = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        // (An hour at most: the bench runs for seconds.)
        if b.len() < 360_000 {
            b.push((now_us(), *block));
        }
        Ok(())
    }
}

/// What the listener's session said, gathered.
#[derive(Default)]
struct Listened {
    /// (when, from, capture timestamp)
    frames: Vec<(u64, String, u64)>,
    /// (when, stats) for the voice it hears (only the speaker sends any).
    stats: Vec<(u64, crate::media::audio::engine::SenderStats)>,
    /// The latest `VideoPaused` state, in and out.
    paused_in: bool,
    paused_out: bool,
}

/// A member in this process until told to leave.
struct Member {
    commands: mpsc::Sender<SessionCommand>,
    task: tokio::task::JoinHandle<()>,
}

fn member(config: SessionConfig, listened: Option<Arc<Mutex<Listened>>>) -> Member {
    let (tx, mut rx) = mpsc::channel(8192);
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let task = tokio::spawn(async move {
        let session = tokio::spawn(session::run(config, tx, cmd_rx));
        while let Some(ev) = rx.recv().await {
            let Some(l) = &listened else { continue };
            let mut l = l.lock().unwrap_or_else(|e| e.into_inner());
            match ev {
                SessionEvent::Video {
                    from, timestamp_us, ..
                } => l.frames.push((now_us(), from, timestamp_us)),
                SessionEvent::AudioStats(stats) => {
                    let at = now_us();
                    l.stats.extend(stats.into_iter().map(|st| (at, st)));
                }
                SessionEvent::VideoPaused { incoming, paused } => match incoming {
                    true => l.paused_in = paused,
                    false => l.paused_out = paused,
                },
                _ => {}
            }
        }
        let _ = session.await;
    });
    Member {
        commands: cmd_tx,
        task,
    }
}

impl Member {
    async fn leave(self) {
        let _ = self.commands.send(SessionCommand::Leave).await;
        let _ = self.task.await;
    }
}

/// The link emulator for `thin` in front of `relay`, if any: the issue's
/// model of an access link.
fn link(relay: std::net::SocketAddr, thin: Thin) -> anyhow::Result<Option<Shaper>> {
    let open = LinkSpec::new(0.0, Duration::ZERO);
    let shaped = |bps: f64, delay: Duration| LinkSpec::new(bps / 8.0, delay).with_rcvbuf(16 * 1024);
    Ok(match thin {
        Thin::None => None,
        Thin::Down(bps, delay) => Some(Shaper::start(
            relay,
            shaped(bps, delay),
            LinkSpec::new(0.0, delay),
        )?),
        Thin::Up(bps, delay) => Some(Shaper::start(
            relay,
            LinkSpec::new(0.0, delay).with_rcvbuf(open.queue),
            shaped(bps, delay),
        )?),
    })
}

/// One call: `settle` for the handshakes and buffers, then `seconds`
/// measured. `speech` is the source, 48 kHz (see [`speech::espeak`]).
pub async fn listen(
    thin: Thin,
    settle: Duration,
    seconds: u64,
    speech_48k: &[f32],
    scratch: &std::path::Path,
) -> anyhow::Result<Heard> {
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let invite = Invite::generate(&mut rand_core::OsRng);
    // The key derivation is not what is measured: any key will do.
    let psk = Key32::random(&mut rand_core::OsRng);
    let shaper = link(relay.addr(), thin)?;
    let via = |side: &str| match (&shaper, thin, side) {
        (Some(s), Thin::Down(..), "listener") | (Some(s), Thin::Up(..), "speaker") => {
            format!("ws://{}", s.addr)
        }
        _ => relay.url(),
    };
    let blocks = Arc::new(Mutex::new(Vec::new()));
    let listened = Arc::new(Mutex::new(Listened::default()));
    let listener = member(
        config(
            &invite,
            &psk,
            via("listener"),
            "listener",
            SourceSpec::None,
            AudioSetup {
                source: None,
                sink: Some(Box::new(Recorder {
                    blocks: blocks.clone(),
                })),
                voice_processing: false,
                lip_sync: false,
            },
        ),
        Some(listened.clone()),
    );
    let speaker_cfg = config(
        &invite,
        &psk,
        via("speaker"),
        "speaker",
        SourceSpec::Test,
        AudioSetup {
            source: Some(Box::new(Looped::new(speech_48k.to_vec()))),
            sink: None,
            voice_processing: false,
            lip_sync: false,
        },
    );
    let spoke = Arc::new(Mutex::new(Listened::default()));
    let speaker = member(speaker_cfg, Some(spoke.clone()));
    let camera = member(
        config(
            &invite,
            &psk,
            relay.url(),
            "camera",
            SourceSpec::Test,
            AudioSetup {
                source: None,
                sink: None,
                voice_processing: false,
                lip_sync: false,
            },
        ),
        None,
    );
    // The call is up once the listener hears the speaker.
    let deadline = Instant::now() + Duration::from_secs(30);
    while listened
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .stats
        .is_empty()
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the listener never heard the speaker"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(settle).await;
    let from_us = now_us();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let until_us = now_us();
    listener.leave().await;
    speaker.leave().await;
    camera.leave().await;
    relay.shutdown().await;

    let l = listened.lock().unwrap_or_else(|e| e.into_inner());
    let in_window = |at: &u64| (from_us..until_us).contains(at);
    let stats: Vec<_> = l.stats.iter().filter(|(at, _)| in_window(at)).collect();
    let packets: u64 = stats.iter().map(|(_, s)| s.packets).sum();
    let concealed: u64 = stats.iter().map(|(_, s)| s.concealed).sum();
    let mut per_sender: std::collections::HashMap<&str, u64> = Default::default();
    let mut frame_latency_ms = Vec::new();
    for (at, from, ts) in l.frames.iter().filter(|(at, ..)| in_window(at)) {
        *per_sender.entry(from.as_str()).or_default() += 1;
        frame_latency_ms.push(at.saturating_sub(*ts) as f64 / 1000.0);
    }
    let secs = (until_us - from_us) as f64 / 1e6;
    let mut fps: Vec<f64> = per_sender.values().map(|n| *n as f64 / secs).collect();
    // A video sender nothing arrived from counts, at 0.
    while fps.len() < 2 {
        fps.push(0.0);
    }
    fps.sort_by(f64::total_cmp);
    let recorded: Vec<f32> = blocks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(at, _)| in_window(at))
        .flat_map(|(_, b)| b.iter().copied())
        .collect();
    let scored = speech::score(&recorded, speech_48k, scratch);
    let speaker_video_paused_out = spoke.lock().unwrap_or_else(|e| e.into_inner()).paused_out;
    Ok(Heard {
        stoi: scored.stoi,
        pesq_wb: scored.pesq_wb,
        correlation: scored.correlation,
        playout_ms: stats.iter().map(|(_, s)| s.playout_ms).collect(),
        concealed_percent: concealed as f64 * 100.0 / packets.max(1) as f64,
        fps,
        frame_latency_ms,
        video_paused_in: l.paused_in,
        speaker_video_paused_out,
    })
}
