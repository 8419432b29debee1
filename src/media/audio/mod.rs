//! Voice: capture, voice processing, Opus, the receive-side jitter buffers,
//! the mix and playback. The session sees it through [`engine::AudioEngine`]:
//! packets to seal come out of it, opened packets go in.
//!
//! Everything runs at 48 kHz mono. Senders make 20 ms frames (one Opus
//! packet each, constant bitrate, so sizes and rates say nothing about
//! speech); the mixer and the voice processing work in 10 ms blocks.

pub mod codec;
#[cfg(target_os = "linux")]
pub mod device;
pub mod engine;
pub mod jitter;
pub mod mixer;
pub mod resample;
pub mod sink;
pub mod source;
pub mod voice;
pub mod wav;

/// Samples per second, everywhere inside.
pub const RATE: u32 = 48_000;
/// Samples per Opus frame and per packet: 20 ms.
pub const FRAME: usize = 960;
/// Samples per mixer tick and voice-processing block: 10 ms.
pub const BLOCK: usize = 480;
/// One frame, in microseconds.
pub const FRAME_US: u64 = 20_000;
/// One block, in microseconds.
pub const BLOCK_US: u64 = 10_000;

/// Root-mean-square level of `samples` in dBFS (−100 for silence).
pub fn level_dbfs(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return -100.0;
    }
    let mean = samples.iter().map(|s| s * s).sum::<f32>() / samples.len() as f32;
    if mean <= 1e-10 {
        -100.0
    } else {
        10.0 * mean.log10()
    }
}

/// Drops samples from a frame-sized chunk into a fixed array (zero-padded).
pub fn frame_from(samples: &[f32]) -> [f32; FRAME] {
    let mut f = [0.0; FRAME];
    let n = samples.len().min(FRAME);
    f[..n].copy_from_slice(&samples[..n]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(level_dbfs(&[0.0; 10]), -100.0);
        let full: Vec<f32> = (0..480)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert!(level_dbfs(&full).abs() < 0.01);
        let half = vec![0.5; 10];
        assert!((level_dbfs(&half) + 6.02).abs() < 0.05);
    }
}
