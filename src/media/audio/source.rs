//! Where our voice comes from: the microphone, a test tone, a WAV file (all
//! as 20 ms frames at 48 kHz mono, with the capture time of their first
//! sample), or nothing.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::{FRAME, FRAME_US, RATE};

/// `--audio-source`: `mic[:NAME]`, `tone[:HZ]`, `none` or a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub enum AudioSourceSpec {
    /// A capture device: the default one, or the one whose name contains NAME.
    Mic(Option<String>),
    /// A sine at this frequency.
    Tone(f32),
    None,
    /// A 16-bit PCM WAV file, looped.
    File(PathBuf),
}

impl FromStr for AudioSourceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Ok(match s.split_once(':') {
            _ if s == "mic" => AudioSourceSpec::Mic(None),
            _ if s == "none" => AudioSourceSpec::None,
            _ if s == "tone" => AudioSourceSpec::Tone(440.0),
            Some(("mic", name)) if !name.is_empty() => AudioSourceSpec::Mic(Some(name.into())),
            Some(("tone", hz)) => {
                let hz: f32 = hz
                    .parse()
                    .map_err(|_| format!("{hz:?} is not a frequency: e.g. tone:440"))?;
                if !(20.0..=20_000.0).contains(&hz) {
                    return Err("tone frequencies are 20 to 20000 Hz".into());
                }
                AudioSourceSpec::Tone(hz)
            }
            _ if s.is_empty() => {
                return Err("empty audio source: mic, tone, none or FILE.wav".into())
            }
            _ => AudioSourceSpec::File(PathBuf::from(s)),
        })
    }
}

/// A 20 ms frame and when its first sample was captured (µs since the epoch).
pub struct Captured {
    pub samples: [f32; FRAME],
    pub timestamp_us: u64,
}

pub trait AudioSource: Send {
    /// The next frame; blocks until it is due. An error means the source
    /// is gone (a device unplugged): voice stops, the call goes on.
    fn next_frame(&mut self) -> Result<Captured, String>;

    /// A microphone: voice processing (noise, echo) applies. Tones and
    /// files are sent as they are.
    fn is_mic(&self) -> bool {
        false
    }
}

/// Opens a source (None for `none`). Problems (no device, bad file) are
/// said here, before the call starts.
pub fn open(spec: &AudioSourceSpec) -> Result<Option<Box<dyn AudioSource>>, String> {
    Ok(match spec {
        AudioSourceSpec::None => None,
        AudioSourceSpec::Tone(hz) => Some(Box::new(Tone::new(*hz))),
        AudioSourceSpec::File(path) => Some(Box::new(Looped::new(super::wav::read(path)?))),
        #[cfg(target_os = "linux")]
        AudioSourceSpec::Mic(name) => {
            Some(Box::new(super::device::Microphone::open(name.as_deref())?))
        }
        #[cfg(not(target_os = "linux"))]
        AudioSourceSpec::Mic(_) => return Err("microphones are supported on Linux only".into()),
    })
}

/// Frames on the wall clock: frame n is due when its last sample would
/// have been captured, and is stamped with the time of its first.
pub struct Pacer {
    start: Instant,
    start_us: u64,
    n: u64,
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer {
            start: Instant::now(),
            start_us: crate::media::capture::now_us(),
            n: 0,
        }
    }
}

impl Pacer {
    /// Waits for the next frame; returns its capture timestamp.
    pub fn wait(&mut self) -> u64 {
        let frame = Duration::from_micros(FRAME_US);
        let due = self.start + frame * (self.n as u32 + 1);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > frame * 10 {
            // Suspended (or starved) for a while: start again from now
            // rather than rush out a burst of stale frames.
            *self = Pacer::default();
            return self.wait();
        }
        let ts = self.start_us + self.n * FRAME_US;
        self.n += 1;
        ts
    }
}

impl Pacer {
    /// Stamps a frame a device just delivered (on its own clock), without
    /// waiting: the next point of the 20 ms grid, re-anchored when the grid
    /// drifts more than 100 ms from the wall clock.
    pub fn stamp(&mut self) -> u64 {
        let captured = crate::media::capture::now_us().saturating_sub(FRAME_US);
        let ts = self.start_us + self.n * FRAME_US;
        if ts.abs_diff(captured) > 100_000 {
            self.start_us = captured;
            self.start = Instant::now();
            self.n = 1;
            return captured;
        }
        self.n += 1;
        ts
    }
}

/// A sine, for tests and for checking a call's audio path.
pub struct Tone {
    step: f32,
    phase: f32,
    pacer: Pacer,
}

/// The test tone's amplitude: −12 dBFS peak, so a few mixed together don't
/// hit the limiter hard.
pub const TONE_AMPLITUDE: f32 = 0.25;

impl Tone {
    pub fn new(hz: f32) -> Self {
        Tone {
            step: 2.0 * std::f32::consts::PI * hz / RATE as f32,
            phase: 0.0,
            pacer: Pacer::default(),
        }
    }
}

impl AudioSource for Tone {
    fn next_frame(&mut self) -> Result<Captured, String> {
        let timestamp_us = self.pacer.wait();
        let mut samples = [0.0; FRAME];
        for s in &mut samples {
            *s = self.phase.sin() * TONE_AMPLITUDE;
            self.phase = (self.phase + self.step) % (2.0 * std::f32::consts::PI);
        }
        Ok(Captured {
            samples,
            timestamp_us,
        })
    }
}

/// Samples played in a loop (a WAV file), in real time.
pub struct Looped {
    samples: Vec<f32>,
    at: usize,
    pacer: Pacer,
}

impl Looped {
    pub fn new(samples: Vec<f32>) -> Self {
        Looped {
            samples,
            at: 0,
            pacer: Pacer::default(),
        }
    }
}

impl AudioSource for Looped {
    fn next_frame(&mut self) -> Result<Captured, String> {
        let timestamp_us = self.pacer.wait();
        let mut samples = [0.0; FRAME];
        for s in &mut samples {
            *s = self.samples[self.at];
            self.at = (self.at + 1) % self.samples.len();
        }
        Ok(Captured {
            samples,
            timestamp_us,
        })
    }
}

/// Clicks at a fixed period (for measuring mouth-to-ear latency): a 1 ms
/// burst at the start of every `period_frames`-th frame, silence between.
pub struct Clicks {
    period_frames: u64,
    n: u64,
    pacer: Pacer,
}

impl Clicks {
    pub fn new(period_frames: u64) -> Self {
        Clicks {
            period_frames: period_frames.max(2),
            n: 0,
            pacer: Pacer::default(),
        }
    }

    /// The click's samples (a windowed 2 kHz burst, 1 ms).
    pub fn shape() -> Vec<f32> {
        let len = RATE as usize / 1000;
        (0..len)
            .map(|i| {
                let w = (std::f32::consts::PI * i as f32 / len as f32).sin();
                w * 0.8 * (2.0 * std::f32::consts::PI * 2000.0 * i as f32 / RATE as f32).sin()
            })
            .collect()
    }
}

impl AudioSource for Clicks {
    fn next_frame(&mut self) -> Result<Captured, String> {
        let timestamp_us = self.pacer.wait();
        let mut samples = [0.0; FRAME];
        if self.n % self.period_frames == 0 {
            let click = Clicks::shape();
            samples[..click.len()].copy_from_slice(&click);
        }
        self.n += 1;
        Ok(Captured {
            samples,
            timestamp_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("mic".parse(), Ok(AudioSourceSpec::Mic(None)));
        assert_eq!(
            "mic:USB".parse(),
            Ok(AudioSourceSpec::Mic(Some("USB".into())))
        );
        assert_eq!("tone".parse(), Ok(AudioSourceSpec::Tone(440.0)));
        assert_eq!("tone:1000".parse(), Ok(AudioSourceSpec::Tone(1000.0)));
        assert!("tone:loud".parse::<AudioSourceSpec>().is_err());
        assert!("tone:5".parse::<AudioSourceSpec>().is_err());
        assert_eq!("none".parse(), Ok(AudioSourceSpec::None));
        assert_eq!(
            "speech.wav".parse(),
            Ok(AudioSourceSpec::File(PathBuf::from("speech.wav")))
        );
    }

    #[test]
    fn frames_are_paced_and_stamped_20_ms_apart() {
        let mut tone = Tone::new(440.0);
        let started = Instant::now();
        let a = tone.next_frame().unwrap();
        let b = tone.next_frame().unwrap();
        let c = tone.next_frame().unwrap();
        assert_eq!(b.timestamp_us - a.timestamp_us, FRAME_US);
        assert_eq!(c.timestamp_us - b.timestamp_us, FRAME_US);
        assert!(started.elapsed() >= Duration::from_millis(55));
        let peak = a.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((peak - TONE_AMPLITUDE).abs() < 0.01);
    }
}
