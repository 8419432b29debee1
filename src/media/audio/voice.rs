//! Voice processing for a microphone: echo cancellation (WebRTC's AEC, the
//! system's libwebrtc-audio-processing) so others don't hear themselves
//! back from our speakers, then noise suppression (RNNoise, in Rust). Both
//! work on 10 ms blocks; the echo canceller learns from what we play,
//! handed to it through [`FarEnd`].

use nnnoiseless::DenoiseState;

use super::BLOCK;

/// The capture side: cleans our microphone's blocks.
pub struct VoiceProcessor {
    #[cfg(target_os = "linux")]
    echo: Option<webrtc_audio_processing::Processor>,
    noise: Option<Box<DenoiseState<'static>>>,
    scratch: Vec<f32>,
}

/// The playback side's view of the echo canceller: what we play goes in.
#[derive(Clone)]
pub struct FarEnd {
    #[cfg(target_os = "linux")]
    echo: Option<webrtc_audio_processing::Processor>,
}

impl FarEnd {
    /// A block that is about to be played.
    pub fn played(&mut self, block: &[f32; BLOCK]) {
        #[cfg(target_os = "linux")]
        if let Some(p) = &mut self.echo {
            let mut copy = *block;
            let _ = p.process_render_frame(&mut copy);
        }
        #[cfg(not(target_os = "linux"))]
        let _ = block;
    }

    /// Nothing listens (voice processing off).
    pub fn none() -> Self {
        FarEnd {
            #[cfg(target_os = "linux")]
            echo: None,
        }
    }
}

impl VoiceProcessor {
    /// Echo cancellation and noise suppression, each if asked for.
    pub fn new(echo: bool, noise: bool) -> Result<(Self, FarEnd), String> {
        #[cfg(target_os = "linux")]
        let echo = if echo {
            use webrtc_audio_processing as wap;
            let init = wap::InitializationConfig {
                num_capture_channels: 1,
                num_render_channels: 1,
                ..Default::default()
            };
            let mut p = wap::Processor::new(&init).map_err(|e| format!("echo canceller: {e}"))?;
            p.set_config(wap::Config {
                echo_cancellation: Some(wap::EchoCancellation {
                    suppression_level: wap::EchoCancellationSuppressionLevel::High,
                    enable_extended_filter: true,
                    enable_delay_agnostic: true,
                    stream_delay_ms: None,
                }),
                enable_high_pass_filter: true,
                ..Default::default()
            });
            Some(p)
        } else {
            None
        };
        #[cfg(not(target_os = "linux"))]
        let _ = echo;
        let processor = VoiceProcessor {
            #[cfg(target_os = "linux")]
            echo: echo.clone(),
            noise: noise.then(DenoiseState::new),
            scratch: vec![0.0; BLOCK],
        };
        let far = FarEnd {
            #[cfg(target_os = "linux")]
            echo,
        };
        Ok((processor, far))
    }

    /// Cleans one captured block in place.
    pub fn process(&mut self, block: &mut [f32; BLOCK]) {
        #[cfg(target_os = "linux")]
        if let Some(p) = &mut self.echo {
            let _ = p.process_capture_frame(block);
        }
        if let Some(ns) = &mut self.noise {
            // RNNoise works on 16-bit-scaled samples.
            for (s, x) in self.scratch.iter_mut().zip(block.iter()) {
                *s = x * 32768.0;
            }
            let mut out = [0.0f32; BLOCK];
            ns.process_frame(&mut out, &self.scratch);
            for (b, o) in block.iter_mut().zip(out) {
                *b = (o / 32768.0).clamp(-1.0, 1.0);
            }
        }
    }
}

// RNNoise and WebRTC both take 10 ms at 48 kHz.
const _: () = assert!(DenoiseState::FRAME_SIZE == BLOCK);

#[cfg(test)]
mod tests {
    use super::*;

    /// Pseudo-random noise in −1..1 (a fixed LCG; tests stay repeatable).
    fn noise(n: usize, seed: u32) -> Vec<f32> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn noise_suppression_quiets_steady_noise() {
        let (mut vp, _) = VoiceProcessor::new(false, true).unwrap();
        let input: Vec<f32> = noise(48_000 * 2, 7).iter().map(|s| s * 0.05).collect();
        let mut out = Vec::new();
        for chunk in input.chunks_exact(BLOCK) {
            let mut b = [0.0; BLOCK];
            b.copy_from_slice(chunk);
            vp.process(&mut b);
            out.extend_from_slice(&b);
        }
        let tail = |v: &[f32]| super::super::level_dbfs(&v[v.len() / 2..]);
        assert!(
            tail(&out) < tail(&input) - 6.0,
            "{} vs {}",
            tail(&out),
            tail(&input)
        );
    }
}
