//! The capture thread: source → scale → JPEG, paced to the frame rate, handed
//! to the session through a one-slot channel (a frame not taken in time is
//! replaced by the next: latest wins, nothing queues up).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use image::RgbImage;

use super::jpeg;
use super::source::FrameSource;

/// Microseconds since the Unix epoch: the capture timestamp sealed into
/// every frame, from which receivers compute latency.
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Knobs the session turns while the thread runs.
pub struct CaptureControl {
    pub max_width: AtomicU32,
    pub max_height: AtomicU32,
    pub quality: AtomicU32,
    pub fps: AtomicU32,
    pub enabled: AtomicBool,
    stop: AtomicBool,
}

impl CaptureControl {
    pub fn new(fps: u32) -> Arc<Self> {
        Arc::new(CaptureControl {
            max_width: AtomicU32::new(80),
            max_height: AtomicU32::new(48),
            quality: AtomicU32::new(u32::from(jpeg::DEFAULT_QUALITY)),
            fps: AtomicU32::new(fps.clamp(1, 60)),
            enabled: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        })
    }

    pub fn set_size(&self, w: u32, h: u32) {
        self.max_width.store(w.clamp(8, MAX_ENCODE.0), Relaxed);
        self.max_height.store(h.clamp(8, MAX_ENCODE.1), Relaxed);
    }

    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
    }
}

/// Never encode more than this, whatever receivers ask for.
pub const MAX_ENCODE: (u32, u32) = (320, 192);

pub struct EncodedFrame {
    /// JPEG, without its Huffman tables when `tables_stripped`.
    pub jpeg: Vec<u8>,
    pub tables_stripped: bool,
    pub timestamp_us: u64,
    /// Time spent scaling and encoding.
    pub encode_time: Duration,
}

pub enum CaptureEvent {
    Frame(EncodedFrame),
    /// The source failed for good; the message says what to do.
    Failed(String),
}

/// Our own picture for the local preview tile (latest only).
pub type Preview = Arc<Mutex<Option<RgbImage>>>;

pub fn spawn(
    mut source: Box<dyn FrameSource>,
    control: Arc<CaptureControl>,
    events: tokio::sync::mpsc::Sender<CaptureEvent>,
    preview: Option<Preview>,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || {
            let mut next = Instant::now();
            let mut failures = 0;
            while !control.stop.load(Relaxed) && !events.is_closed() {
                let interval = Duration::from_secs(1) / control.fps.load(Relaxed).max(1);
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                }
                // Late (slow camera or encoder): skip ahead instead of bursting.
                next = (next + interval).max(Instant::now());
                if !control.enabled.load(Relaxed) {
                    continue;
                }
                let started = Instant::now();
                let max = (
                    control.max_width.load(Relaxed),
                    control.max_height.load(Relaxed),
                );
                let img = match source.next_frame(max) {
                    Ok(img) => {
                        failures = 0;
                        img
                    }
                    Err(e) => {
                        failures += 1;
                        if failures >= 5 {
                            let _ = events.blocking_send(CaptureEvent::Failed(format!(
                                "{e}; try `--source test`"
                            )));
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                };
                let timestamp_us = now_us();
                let quality = control.quality.load(Relaxed).clamp(1, 100) as u8;
                let full = jpeg::encode(&img, quality);
                let (jpeg, tables_stripped) = match jpeg::strip_tables(&full) {
                    Some(small) => (small, true),
                    None => (full, false),
                };
                if let Some(p) = &preview {
                    if let Ok(mut slot) = p.lock() {
                        *slot = Some(img);
                    }
                }
                // Full: the session is behind; this frame is dropped (the
                // next one is fresher anyway).
                let _ = events.try_send(CaptureEvent::Frame(EncodedFrame {
                    jpeg,
                    tables_stripped,
                    timestamp_us,
                    encode_time: started.elapsed(),
                }));
            }
        })
        .expect("spawning the capture thread")
}
