//! The audio engine: a capture thread (source → voice processing → Opus →
//! packets for the session to seal) and a playout thread (opened packets →
//! per-sender jitter buffers → mix → sink, every 10 ms on the wall clock).
//! The session talks to it through an [`AudioHandle`]; the UI reads an
//! [`AudioView`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::codec::{self, Decoder, Encoder, FLAG_MUTED};
use super::jitter::JitterBuffer;
use super::mixer::Mixer;
use super::sink::AudioSink;
use super::source::AudioSource;
use super::voice::{FarEnd, VoiceProcessor};
use super::{level_dbfs, BLOCK, BLOCK_US, FRAME};
use crate::media::capture::now_us;

/// What the engine starts with (sources and sinks opened by the caller,
/// so their problems were said first).
pub struct AudioSetup {
    pub source: Option<Box<dyn AudioSource>>,
    pub sink: Option<Box<dyn AudioSink>>,
    /// Noise suppression and echo cancellation on a microphone.
    pub voice_processing: bool,
    /// Hold voice back to meet slower video (a UI that shows video).
    pub lip_sync: bool,
}

/// A packet to seal and send.
#[derive(Debug)]
pub struct Outgoing {
    pub timestamp_us: u64,
    pub flags: u8,
    pub payload: Vec<u8>,
}

/// One sender's stream over the last second (headless `audio_stats`).
#[derive(Debug, Clone, PartialEq)]
pub struct SenderStats {
    pub from: String,
    pub packets: u64,
    pub lost: u64,
    pub concealed: u64,
    pub jitter_ms: f64,
    pub playout_ms: f64,
}

/// A peer's voice as the UI shows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct PeerAudio {
    pub level_dbfs: f32,
    pub muted: bool,
    /// Capture time (µs, sender's clock) of what is playing now.
    pub playing_ts_us: Option<i64>,
    /// Capture → played, µs.
    pub delay_us: i64,
}

/// Our side and everyone's, for the status line and tiles.
#[derive(Debug, Clone, Default)]
pub struct AudioView {
    pub sending: bool,
    pub muted: bool,
    pub mic_level_dbfs: f32,
    pub peers: HashMap<String, PeerAudio>,
}

struct Incoming {
    from: String,
    timestamp_us: u64,
    flags: u8,
    payload: Vec<u8>,
    arrival_us: u64,
}

/// Packets waiting for the playout thread, at most (a second from 64 senders).
const MAX_INCOMING: usize = 64 * 50;
/// Stats kept for the session, at most (it takes them every second).
const MAX_STATS: usize = 1024;
/// Video may lead voice by this much before voice is held back to meet it.
const LIP_SYNC_LEAD_US: i64 = 45_000;

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// When sample 0 of the mix plays (µs since the epoch): the mix (and a
    /// recording of it) runs on the wall clock from there.
    started_us: std::sync::atomic::AtomicU64,
    muted: AtomicBool,
    incoming: Mutex<Vec<Incoming>>,
    left: Mutex<Vec<String>>,
    view: Mutex<AudioView>,
    stats: Mutex<Vec<SenderStats>>,
    mute_changes: Mutex<Vec<(String, bool)>>,
    /// Per sender: video's capture → arrival, smoothed (µs).
    video_delay: Mutex<HashMap<String, i64>>,
    warnings: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The session's side of the engine (cheap to clone).
#[derive(Clone)]
pub struct AudioHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for AudioHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AudioHandle")
    }
}

impl AudioHandle {
    /// An opened audio frame from `from`.
    pub fn receive(&self, from: &str, timestamp_us: u64, flags: u8, payload: Vec<u8>) {
        let mut q = lock(&self.shared.incoming);
        if q.len() < MAX_INCOMING {
            q.push(Incoming {
                from: from.to_string(),
                timestamp_us,
                flags,
                payload,
                arrival_us: now_us(),
            });
        }
    }

    pub fn peer_left(&self, peer: &str) {
        lock(&self.shared.left).push(peer.to_string());
    }

    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Relaxed);
        lock(&self.shared.view).muted = muted;
    }

    pub fn muted(&self) -> bool {
        self.shared.muted.load(Relaxed)
    }

    /// A video frame from `from` arrived `delay_us` after its capture.
    pub fn note_video_delay(&self, from: &str, delay_us: i64) {
        let mut d = lock(&self.shared.video_delay);
        let e = d.entry(from.to_string()).or_insert(delay_us);
        *e += (delay_us - *e) / 8;
    }

    /// Per-sender stats gathered since the last call.
    pub fn take_stats(&self) -> Vec<SenderStats> {
        std::mem::take(&mut *lock(&self.shared.stats))
    }

    /// Peers whose mute state changed since the last call.
    pub fn take_mute_changes(&self) -> Vec<(String, bool)> {
        std::mem::take(&mut *lock(&self.shared.mute_changes))
    }

    /// Problems the threads ran into (a microphone gone), once each.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.shared.warnings))
    }

    pub fn view(&self) -> AudioView {
        lock(&self.shared.view).clone()
    }

    /// Wall-clock time (µs since the epoch) at which sample 0 of the mix
    /// played: sample n of a `--audio-sink` recording played n/48000 s later.
    pub fn started_us(&self) -> u64 {
        self.shared.started_us.load(Relaxed)
    }
}

/// The running engine; stops its threads when dropped.
pub struct AudioEngine {
    handle: AudioHandle,
    threads: Vec<JoinHandle<()>>,
}

impl AudioEngine {
    /// Starts capture (if there is a source) and playout. Packets to send
    /// come out of the returned receiver.
    pub fn start(setup: AudioSetup) -> Result<(Self, mpsc::Receiver<Outgoing>), String> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel(16);
        let mut threads = Vec::new();
        let mic = setup.source.as_ref().is_some_and(|s| s.is_mic());
        let (processor, far) = if setup.voice_processing && mic {
            let (p, f) = VoiceProcessor::new(true, true)?;
            (Some(p), f)
        } else {
            (None, FarEnd::none())
        };
        if let Some(source) = setup.source {
            let encoder = Encoder::new()?;
            lock(&shared.view).sending = true;
            let shared = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("audio-capture".into())
                    .spawn(move || capture(source, processor, encoder, tx, &shared))
                    .map_err(|e| e.to_string())?,
            );
        }
        {
            let clock = (Instant::now(), now_us());
            shared.started_us.store(clock.1, Relaxed);
            let shared = shared.clone();
            let (sink, lip_sync) = (setup.sink, setup.lip_sync);
            threads.push(
                std::thread::Builder::new()
                    .name("audio-playout".into())
                    .spawn(move || playout(sink, far, lip_sync, clock, &shared))
                    .map_err(|e| e.to_string())?,
            );
        }
        Ok((
            AudioEngine {
                handle: AudioHandle { shared },
                threads,
            },
            rx,
        ))
    }

    pub fn handle(&self) -> AudioHandle {
        self.handle.clone()
    }
}

impl Drop for AudioEngine {
    fn drop(&mut self) {
        self.handle.shared.stop.store(true, Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn capture(
    mut source: Box<dyn AudioSource>,
    mut processor: Option<VoiceProcessor>,
    mut encoder: Encoder,
    out: mpsc::Sender<Outgoing>,
    shared: &Shared,
) {
    let mut seq: u16 = 0;
    while !shared.stop.load(Relaxed) {
        let mut frame = match source.next_frame() {
            Ok(f) => f,
            Err(e) => {
                lock(&shared.warnings).push(format!("voice stopped: {e}"));
                lock(&shared.view).sending = false;
                return;
            }
        };
        if let Some(p) = &mut processor {
            for half in frame.samples.chunks_exact_mut(BLOCK) {
                let block: &mut [f32; BLOCK] = half.try_into().expect("BLOCK-sized chunk");
                p.process(block);
            }
        }
        let muted = shared.muted.load(Relaxed);
        lock(&shared.view).mic_level_dbfs = if muted {
            -100.0
        } else {
            level_dbfs(&frame.samples)
        };
        if muted {
            // Still a packet, of silence, the same size: the relay can't
            // tell a muted member from a quiet one.
            frame.samples = [0.0; FRAME];
        }
        let packet = match encoder.encode(&frame.samples) {
            Ok(p) => p,
            Err(e) => {
                lock(&shared.warnings).push(format!("voice stopped: {e}"));
                return;
            }
        };
        let _ = out.try_send(Outgoing {
            timestamp_us: frame.timestamp_us,
            flags: if muted { FLAG_MUTED } else { 0 },
            payload: codec::encode_payload(seq, &packet),
        });
        seq = seq.wrapping_add(1);
    }
}

struct Stream {
    buffer: JitterBuffer,
    decoder: Decoder,
    muted: bool,
}

/// Blocks of silence written at most when catching up after a stall.
const MAX_CATCH_UP_BLOCKS: u64 = 60 * 100;

fn playout(
    mut sink: Option<Box<dyn AudioSink>>,
    mut far: FarEnd,
    lip_sync: bool,
    (start, start_us): (Instant, u64),
    shared: &Shared,
) {
    let mut streams: HashMap<String, Stream> = HashMap::new();
    let mut mixer = Mixer::default();
    let tick = Duration::from_micros(BLOCK_US);
    let mut n = 0u64;
    let mut last_stats = Instant::now();
    while !shared.stop.load(Relaxed) {
        let due = start + tick * n as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > tick * 10 {
            // Stalled (a suspended process): the time passed is silence,
            // so a recording stays on the wall clock.
            let behind = ((now - start).as_micros() as u64 / BLOCK_US).saturating_sub(n);
            if let Some(out) = &mut sink {
                for _ in 0..behind.min(MAX_CATCH_UP_BLOCKS) {
                    let _ = out.write(&[0.0; BLOCK]);
                }
            }
            n += behind;
            continue;
        }
        let block_us = start_us + n * BLOCK_US;
        n += 1;

        for peer in std::mem::take(&mut *lock(&shared.left)) {
            streams.remove(&peer);
            lock(&shared.view).peers.remove(&peer);
        }
        for p in std::mem::take(&mut *lock(&shared.incoming)) {
            let Some((seq, opus)) = codec::decode_payload(&p.payload) else {
                continue;
            };
            if !streams.contains_key(&p.from) {
                let Ok(decoder) = Decoder::new() else {
                    continue;
                };
                streams.insert(
                    p.from.clone(),
                    Stream {
                        buffer: JitterBuffer::default(),
                        decoder,
                        muted: false,
                    },
                );
            }
            let s = streams.get_mut(&p.from).expect("inserted above");
            let muted = p.flags & FLAG_MUTED != 0;
            s.buffer
                .push(seq, p.timestamp_us, opus, muted, p.arrival_us);
        }
        if lip_sync {
            let video = lock(&shared.video_delay);
            for (from, s) in &mut streams {
                let floor = video.get(from).map_or(0, |d| d - LIP_SYNC_LEAD_US);
                s.buffer.set_floor_us(floor);
            }
        }
        let blocks: Vec<[f32; BLOCK]> = streams
            .values_mut()
            .map(|s| s.buffer.pull(block_us, &mut s.decoder))
            .collect();
        let mix = mixer.mix(&blocks);
        far.played(&mix);
        if let Some(out) = &mut sink {
            if let Err(e) = out.write(&mix) {
                lock(&shared.warnings).push(format!("audio output stopped: {e}"));
                sink = None;
            }
        }

        let mut changes = Vec::new();
        {
            let mut view = lock(&shared.view);
            for (from, s) in &mut streams {
                let muted = s.buffer.muted();
                if muted != s.muted {
                    s.muted = muted;
                    changes.push((from.clone(), muted));
                }
                view.peers.insert(
                    from.clone(),
                    PeerAudio {
                        level_dbfs: s.buffer.level_dbfs(),
                        muted,
                        playing_ts_us: s.buffer.playing_ts(),
                        delay_us: s.buffer.delay_us(),
                    },
                );
            }
        }
        if !changes.is_empty() {
            lock(&shared.mute_changes).extend(changes);
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            let mut stats = lock(&shared.stats);
            for (from, s) in &mut streams {
                let c = s.buffer.take_counters();
                if stats.len() < MAX_STATS {
                    stats.push(SenderStats {
                        from: from.clone(),
                        packets: c.received,
                        lost: c.lost,
                        concealed: c.concealed,
                        jitter_ms: s.buffer.jitter_us() as f64 / 1000.0,
                        playout_ms: s.buffer.delay_us() as f64 / 1000.0,
                    });
                }
            }
        }
    }
}
