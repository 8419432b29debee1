//! Any rate and channel count to 48 kHz mono, streaming: for microphones
//! at 44.1 kHz and WAV files at whatever rate they were made. (And the
//! reverse direction for speakers that don't take 48 kHz.)

use std::collections::VecDeque;

use rubato::{FftFixedIn, Resampler as _};

/// Streaming mono resampler: push any number of samples, pull what is ready.
pub struct Resampler {
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    chunk: usize,
    out: VecDeque<f32>,
}

impl Resampler {
    pub fn new(from_rate: u32, to_rate: u32) -> Result<Self, String> {
        if from_rate == 0 || to_rate == 0 {
            return Err(format!("bad sample rate {from_rate} → {to_rate}"));
        }
        let chunk = (from_rate as usize / 100).max(1);
        let inner = if from_rate == to_rate {
            None
        } else {
            Some(
                FftFixedIn::new(from_rate as usize, to_rate as usize, chunk, 1, 1)
                    .map_err(|e| format!("cannot resample {from_rate} Hz to {to_rate} Hz: {e}"))?,
            )
        };
        Ok(Resampler {
            inner,
            pending: Vec::new(),
            chunk,
            out: VecDeque::new(),
        })
    }

    pub fn push(&mut self, samples: &[f32]) {
        let Some(inner) = &mut self.inner else {
            self.out.extend(samples);
            return;
        };
        self.pending.extend_from_slice(samples);
        while self.pending.len() >= self.chunk {
            let input: Vec<f32> = self.pending.drain(..self.chunk).collect();
            if let Ok(mut output) = inner.process(&[input], None) {
                if let Some(channel) = output.pop() {
                    self.out.extend(channel);
                }
            }
        }
    }

    /// Samples ready.
    pub fn available(&self) -> usize {
        self.out.len()
    }

    /// Takes up to `n` ready samples.
    pub fn take(&mut self, n: usize) -> Vec<f32> {
        let n = n.min(self.out.len());
        self.out.drain(..n).collect()
    }

    /// Everything ready.
    pub fn take_all(&mut self) -> Vec<f32> {
        self.out.drain(..).collect()
    }
}

/// Interleaved frames of `channels` to mono by averaging.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    interleaved
        .chunks_exact(channels)
        .map(|f| f.iter().sum::<f32>() / channels as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_pitch_across_rates() {
        let hz = 1000.0;
        let from = 22_050;
        let input: Vec<f32> = (0..from)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / from as f32).sin())
            .collect();
        let mut r = Resampler::new(from as u32, 48_000).unwrap();
        r.push(&input);
        let out = r.take_all();
        // About a second at 48 kHz (minus the filter's delay).
        assert!(out.len() > 46_000 && out.len() <= 48_000, "{}", out.len());
        // Count zero crossings in the settled middle: 2 per cycle.
        let mid = &out[4_800..43_200];
        let crossings = mid.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        let expected = hz * mid.len() as f32 / 48_000.0;
        assert!(
            (crossings as f32 - expected).abs() <= 2.0,
            "{crossings} vs {expected}"
        );
    }

    #[test]
    fn downmix_averages() {
        assert_eq!(downmix(&[1.0, 0.0, 0.5, 0.5], 2), vec![0.5, 0.5]);
        assert_eq!(downmix(&[0.25], 1), vec![0.25]);
    }
}
