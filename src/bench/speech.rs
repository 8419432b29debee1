//! How speech sounds after the trip: a recording of what a member heard,
//! compared with what was said. For the voice benchmarks and tests.
//!
//! - [`espeak`]: speech to send, from espeak-ng.
//! - [`best_lag`]: where a recording lines up with a looped source.
//! - [`stoi`]: short-time objective intelligibility (Taal et al., IEEE
//!   TASLP 2011): correlation of one-third-octave band envelopes over
//!   384 ms segments; 1 is the source itself, unintelligible speech falls
//!   toward 0.4. Gaps, concealment and time smear all lower it.
//! - [`pesq_wb`]: ITU-T P.862.2 (PESQ-WB, MOS-LQO 1–4.6) through Python's
//!   `pesq` package, when it is installed (`pip install pesq numpy`); the
//!   reference implementation, for the figures in BENCHMARKS.md.

use std::path::Path;
use std::process::Command;

use rustfft::num_complex::Complex32;
use rustfft::FftPlanner;

use crate::media::audio::resample::Resampler;
use crate::media::audio::{wav, RATE};

/// Speech as a WAV file (espeak-ng's 22.05 kHz mono).
pub fn espeak(path: &Path, text: &str) -> Result<(), String> {
    let status = Command::new("espeak-ng")
        .args(["-s", "150", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .map_err(|e| format!("espeak-ng: {e} (Debian package espeak-ng; scripts/install-deps)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("espeak-ng failed: {status}"))
    }
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Averages of `factor` samples: a crude low-pass and decimation.
pub fn decimate(x: &[f32], factor: usize) -> Vec<f32> {
    x.chunks_exact(factor)
        .map(|c| c.iter().sum::<f32>() / factor as f32)
        .collect()
}

/// Normalised cross-correlation of `w` with the looped `s` at `lag`.
pub fn corr_at(w: &[f32], s: &[f32], lag: usize) -> f32 {
    let (mut dot, mut ew, mut es) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &a) in w.iter().enumerate() {
        let b = s[(lag + i) % s.len()];
        dot += f64::from(a) * f64::from(b);
        ew += f64::from(a) * f64::from(a);
        es += f64::from(b) * f64::from(b);
    }
    (dot / (ew.sqrt() * es.sqrt()).max(1e-12)) as f32
}

/// Where `recorded` lines up with the looped `source` (both 48 kHz): the
/// best normalised cross-correlation and the lag into `source` (48 kHz
/// samples) of `recorded`'s first sample. Found on 10 ms energy envelopes
/// first, then refined at 8 kHz around the best few envelope lags.
pub fn best_lag(recorded: &[f32], source: &[f32]) -> (f32, usize) {
    let (r8, s8) = (decimate(recorded, 6), decimate(source, 6));
    if s8.is_empty() || r8.is_empty() {
        return (0.0, 0);
    }
    let env = |x: &[f32]| -> Vec<f32> { x.chunks_exact(80).map(rms).collect() };
    let (re, se) = (env(&r8), env(&s8));
    let mut coarse: Vec<(f32, usize)> = (0..se.len())
        .map(|lag| (corr_at(&re, &se, lag), lag))
        .collect();
    coarse.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best = (f32::MIN, 0);
    for &(_, lag) in coarse.iter().take(3) {
        let centre = lag * 80;
        for d in 0..=320 {
            let l = (centre + s8.len() * 2 + d - 160) % s8.len();
            let c = corr_at(&r8, &s8, l);
            if c > best.0 {
                best = (c, l * 6);
            }
        }
    }
    best
}

/// STOI works at 10 kHz.
const STOI_RATE: u32 = 10_000;
const FRAME: usize = 256;
const HOP: usize = 128;
const FFT: usize = 512;
const BANDS: usize = 15;
const SEGMENT: usize = 30;
/// Lower bound of the signal-to-distortion ratio per band (dB).
const BETA_DB: f32 = -15.0;
/// Frames this far below the loudest are silence, left out.
const DYNAMIC_RANGE_DB: f32 = 40.0;

fn to_stoi_rate(x: &[f32]) -> Vec<f32> {
    match Resampler::new(RATE, STOI_RATE) {
        Ok(mut r) => {
            r.push(x);
            r.take_all()
        }
        Err(_) => Vec::new(),
    }
}

/// One-third-octave band edges (FFT bins), from 150 Hz up.
fn band_bins() -> Vec<(usize, usize)> {
    let bin_hz = STOI_RATE as f32 / FFT as f32;
    (0..BANDS)
        .map(|i| {
            let centre = 150.0 * 2f32.powf(i as f32 / 3.0);
            let lo = centre * 2f32.powf(-1.0 / 6.0);
            let hi = centre * 2f32.powf(1.0 / 6.0);
            let lo_bin = (lo / bin_hz).round() as usize;
            let hi_bin = ((hi / bin_hz).round() as usize).min(FFT / 2);
            (lo_bin, hi_bin.max(lo_bin + 1))
        })
        .collect()
}

/// Short-time objective intelligibility of `degraded` against `clean`
/// (both 48 kHz, aligned, the same length).
pub fn stoi(clean: &[f32], degraded: &[f32]) -> f64 {
    let (c, d) = (to_stoi_rate(clean), to_stoi_rate(degraded));
    let n = c.len().min(d.len());
    if n < FRAME * 2 {
        return 0.0;
    }
    let window: Vec<f32> = (0..FRAME)
        .map(|i| {
            let x = std::f32::consts::PI * 2.0 * (i + 1) as f32 / (FRAME + 1) as f32;
            0.5 - 0.5 * x.cos()
        })
        .collect();
    // Frames, without the silent ones (judged on the clean signal).
    let starts: Vec<usize> = (0..=n - FRAME).step_by(HOP).collect();
    let energy = |x: &[f32], s: usize| {
        let e: f32 = (0..FRAME).map(|i| (x[s + i] * window[i]).powi(2)).sum();
        10.0 * (e.max(1e-20)).log10()
    };
    let loudest = starts
        .iter()
        .map(|&s| energy(&c, s))
        .fold(f32::MIN, f32::max);
    let kept: Vec<usize> = starts
        .into_iter()
        .filter(|&s| energy(&c, s) > loudest - DYNAMIC_RANGE_DB)
        .collect();
    if kept.len() < SEGMENT {
        return 0.0;
    }
    let fft = FftPlanner::<f32>::new().plan_fft_forward(FFT);
    let bands = band_bins();
    let envelopes = |x: &[f32]| -> Vec<[f32; BANDS]> {
        kept.iter()
            .map(|&s| {
                let mut buf: Vec<Complex32> = (0..FFT)
                    .map(|i| {
                        Complex32::new(if i < FRAME { x[s + i] * window[i] } else { 0.0 }, 0.0)
                    })
                    .collect();
                fft.process(&mut buf);
                let mut out = [0.0; BANDS];
                for (b, &(lo, hi)) in bands.iter().enumerate() {
                    out[b] = buf[lo..hi].iter().map(|z| z.norm_sqr()).sum::<f32>().sqrt();
                }
                out
            })
            .collect()
    };
    let (ec, ed) = (envelopes(&c), envelopes(&d));
    let clip = 1.0 + 10f32.powf(-BETA_DB / 20.0);
    let mut total = 0.0f64;
    let mut count = 0usize;
    for m in SEGMENT..=ec.len() {
        for b in 0..BANDS {
            let x: Vec<f32> = (m - SEGMENT..m).map(|j| ec[j][b]).collect();
            let y: Vec<f32> = (m - SEGMENT..m).map(|j| ed[j][b]).collect();
            let (nx, ny) = (
                x.iter().map(|v| v * v).sum::<f32>().sqrt(),
                y.iter().map(|v| v * v).sum::<f32>().sqrt(),
            );
            let scale = nx / ny.max(1e-12);
            let y: Vec<f32> = y
                .iter()
                .zip(&x)
                .map(|(yv, xv)| (yv * scale).min(xv * clip))
                .collect();
            total += f64::from(correlation(&x, &y));
            count += 1;
        }
    }
    total / count.max(1) as f64
}

fn correlation(x: &[f32], y: &[f32]) -> f32 {
    let mx = x.iter().sum::<f32>() / x.len() as f32;
    let my = y.iter().sum::<f32>() / y.len() as f32;
    let (mut dot, mut ex, mut ey) = (0.0f32, 0.0f32, 0.0f32);
    for (a, b) in x.iter().zip(y) {
        let (a, b) = (a - mx, b - my);
        dot += a * b;
        ex += a * a;
        ey += b * b;
    }
    dot / (ex.sqrt() * ey.sqrt()).max(1e-12)
}

/// PESQ-WB (ITU-T P.862.2) of `degraded` against `clean` (48 kHz, aligned),
/// through Python's `pesq` package; None when it isn't installed.
pub fn pesq_wb(clean: &[f32], degraded: &[f32], scratch: &Path) -> Option<f64> {
    let at16 = |x: &[f32]| -> Option<Vec<f32>> {
        let mut r = Resampler::new(RATE, 16_000).ok()?;
        r.push(x);
        Some(r.take_all())
    };
    let (c, d) = (at16(clean)?, at16(degraded)?);
    let (cp, dp) = (scratch.join("ref16k.wav"), scratch.join("deg16k.wav"));
    wav::write_at(&cp, &c, 16_000).ok()?;
    wav::write_at(&dp, &d, 16_000).ok()?;
    let script = "import sys, numpy, wave\n\
        def r(p):\n\
        \x20 w = wave.open(p); b = w.readframes(w.getnframes())\n\
        \x20 return numpy.frombuffer(b, dtype=numpy.int16).astype(numpy.float32) / 32768.0\n\
        from pesq import pesq\n\
        print(pesq(16000, r(sys.argv[1]), r(sys.argv[2]), 'wb'))\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&cp)
        .arg(&dp)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// A recording compared with the looped source it came from.
#[derive(Debug, Clone, Copy)]
pub struct Scored {
    /// Cross-correlation at the best alignment.
    pub correlation: f32,
    pub stoi: f64,
    pub pesq_wb: Option<f64>,
}

/// Lines `recorded` up with the looped `source` (48 kHz) piece by piece
/// (the playout delay may move a little during a call), then scores it.
pub fn score(recorded: &[f32], source: &[f32], scratch: &Path) -> Scored {
    // Pieces of 2 s, each aligned on its own.
    let piece = RATE as usize * 2;
    let (mut clean, mut heard) = (Vec::new(), Vec::new());
    let mut corr = Vec::new();
    for chunk in recorded.chunks_exact(piece) {
        let (c, lag) = best_lag(chunk, source);
        corr.push(c);
        heard.extend_from_slice(chunk);
        clean.extend((0..chunk.len()).map(|i| source[(lag + i) % source.len()]));
    }
    let correlation = if corr.is_empty() {
        0.0
    } else {
        corr.iter().sum::<f32>() / corr.len() as f32
    };
    Scored {
        correlation,
        stoi: stoi(&clean, &heard),
        pesq_wb: pesq_wb(&clean, &heard, scratch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// A speech-like signal: noise under a syllable-rate envelope.
    fn babble(seconds: usize) -> Vec<f32> {
        let n = RATE as usize * seconds;
        let carrier = noise(n, 7);
        (0..n)
            .map(|i| {
                let t = i as f32 / RATE as f32;
                let env = (0.5 + 0.5 * (2.0 * std::f32::consts::PI * 4.0 * t).sin()).powi(2);
                carrier[i] * env
            })
            .collect()
    }

    #[test]
    fn stoi_ranks_clean_above_gappy_above_noise() {
        let clean = babble(4);
        assert!(stoi(&clean, &clean) > 0.99);
        // 40 ms gaps every 100 ms: badly broken speech.
        let gappy: Vec<f32> = clean
            .iter()
            .enumerate()
            .map(|(i, s)| if (i / 1920) % 5 < 2 { 0.0 } else { *s })
            .collect();
        let noisy = noise(clean.len(), 99);
        let (g, n) = (stoi(&clean, &gappy), stoi(&clean, &noisy));
        assert!(g < 0.9 && n < g, "gappy {g}, noise {n}");
    }

    #[test]
    fn a_recording_is_found_in_its_looped_source() {
        let source = babble(3);
        let lag = 12_342; // (found to within the 8 kHz step: 6 samples)
        let recorded: Vec<f32> = (0..RATE as usize * 2)
            .map(|i| source[(lag + i) % source.len()])
            .collect();
        let (c, found) = best_lag(&recorded, &source);
        assert!(c > 0.95, "{c}");
        assert!(found.abs_diff(lag) <= 6, "{found} vs {lag}");
    }
}
