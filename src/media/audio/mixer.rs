//! Everyone's voice summed into one stream, with a limiter so several
//! people talking at once never clip.

use super::{BLOCK, RATE};

/// The loudest sample the mix lets through (−0.5 dBFS).
pub const CEILING: f32 = 0.944;
/// How fast the limiter lets go after a peak (time constant).
const RELEASE_SECONDS: f32 = 0.1;

/// A peak limiter: instant attack (the gain drops before a loud sample
/// goes out, so nothing exceeds [`CEILING`]), smooth release.
pub struct Mixer {
    envelope: f32,
    release: f32,
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer {
            envelope: 0.0,
            release: (-1.0 / (RELEASE_SECONDS * RATE as f32)).exp(),
        }
    }
}

impl Mixer {
    /// Sums `blocks` and limits the result.
    pub fn mix<'a>(&mut self, blocks: impl IntoIterator<Item = &'a [f32; BLOCK]>) -> [f32; BLOCK] {
        let mut out = [0.0f32; BLOCK];
        for b in blocks {
            for (o, s) in out.iter_mut().zip(b) {
                *o += s;
            }
        }
        for s in &mut out {
            let magnitude = s.abs();
            self.envelope = if magnitude > self.envelope {
                magnitude
            } else {
                magnitude.max(self.envelope * self.release)
            };
            if self.envelope > CEILING {
                *s *= CEILING / self.envelope;
            }
            if !s.is_finite() {
                *s = 0.0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loud_sums_never_clip_and_quiet_ones_pass_untouched() {
        let mut m = Mixer::default();
        let loud = [0.8f32; BLOCK];
        let out = m.mix([&loud, &loud, &loud]);
        assert!(out.iter().all(|s| s.abs() <= CEILING + 1e-6));
        let mut m = Mixer::default();
        let quiet = [0.1f32; BLOCK];
        let out = m.mix([&quiet, &quiet]);
        assert!(out.iter().all(|s| (s - 0.2).abs() < 1e-6));
        // Garbage in (a hostile peer's NaN never reaches the speaker).
        let nan = [f32::NAN; BLOCK];
        assert!(Mixer::default().mix([&nan]).iter().all(|s| s.is_finite()));
    }
}
