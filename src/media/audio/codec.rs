//! Opus, as every member uses it: 48 kHz mono, 20 ms frames, voice mode,
//! hard constant bitrate without DTX, so every packet has the same size
//! and the same rate whether someone speaks, is silent or is muted (voice
//! activity and variable sizes leak what is said).
//!
//! Payload inside a sealed audio frame: `seq u16 | Opus packet`; the frame's
//! flags carry [`FLAG_MUTED`].

use super::{FRAME, RATE};

/// Bits per second of Opus, before sealing and framing.
pub const BITRATE: i32 = 24_000;
/// Bytes per Opus packet at [`BITRATE`] (all of them: CBR).
pub const PACKET_BYTES: usize = (BITRATE as usize / 8) * FRAME / RATE as usize;
pub use streamflow_core::payload::audio::FLAG_MUTED;

pub struct Encoder {
    inner: opus::Encoder,
}

impl Encoder {
    pub fn new() -> Result<Self, String> {
        let err = |e: opus::Error| format!("Opus encoder: {e}");
        let mut inner =
            opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip).map_err(err)?;
        inner
            .set_bitrate(opus::Bitrate::Bits(BITRATE))
            .map_err(err)?;
        inner.set_vbr(false).map_err(err)?;
        inner.set_dtx(false).map_err(err)?;
        inner.set_signal(opus::Signal::Voice).map_err(err)?;
        inner.set_inband_fec(false).map_err(err)?;
        Ok(Encoder { inner })
    }

    /// One 20 ms frame to exactly [`PACKET_BYTES`] bytes.
    pub fn encode(&mut self, frame: &[f32; FRAME]) -> Result<Vec<u8>, String> {
        let mut out = vec![0u8; PACKET_BYTES];
        let n = self
            .inner
            .encode_float(frame, &mut out)
            .map_err(|e| format!("Opus encode: {e}"))?;
        if n < PACKET_BYTES {
            // Hard CBR gives the exact size; pad (Opus' own padding, which
            // decoders skip) if a frame ever comes out short.
            opus::packet::pad(&mut out, n).map_err(|e| format!("Opus pad: {e}"))?;
        }
        Ok(out)
    }
}

pub struct Decoder {
    inner: opus::Decoder,
}

impl Decoder {
    pub fn new() -> Result<Self, String> {
        let inner = opus::Decoder::new(RATE, opus::Channels::Mono)
            .map_err(|e| format!("Opus decoder: {e}"))?;
        Ok(Decoder { inner })
    }

    /// Decodes a packet; a malformed one is concealed instead.
    pub fn decode(&mut self, packet: &[u8]) -> ([f32; FRAME], bool) {
        let mut out = [0.0; FRAME];
        match self.inner.decode_float(packet, &mut out, false) {
            Ok(FRAME) => (out, true),
            _ => (self.conceal(), false),
        }
    }

    /// Opus packet-loss concealment: a plausible 20 ms continuing what came
    /// before (fading to silence over repeated losses).
    pub fn conceal(&mut self) -> [f32; FRAME] {
        let mut out = [0.0; FRAME];
        out.copy_from_slice(&self.conceal_samples(FRAME));
        out
    }

    /// Concealment of at least `samples` (rounded up to 2.5, 5, 10 or
    /// 20 ms, the sizes Opus conceals in): to stretch the delay by just
    /// what is needed.
    pub fn conceal_samples(&mut self, samples: usize) -> Vec<f32> {
        let n = [120, 240, 480, FRAME]
            .into_iter()
            .find(|n| *n >= samples)
            .unwrap_or(FRAME);
        let mut out = vec![0.0; n];
        if self.inner.decode_float(&[], &mut out, false).is_err() {
            out.fill(0.0);
        }
        out
    }
}

pub use streamflow_core::payload::audio::{decode as decode_payload, encode as encode_payload};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_are_all_the_same_size_and_decode() {
        let mut enc = Encoder::new().unwrap();
        let mut dec = Decoder::new().unwrap();
        let mut sizes = std::collections::HashSet::new();
        let mut phase = 0.0f32;
        let mut energy_in = 0.0;
        let mut energy_out = 0.0;
        for n in 0..100 {
            let mut frame = [0.0; FRAME];
            // Speech-like bursts, then silence: sizes must not change.
            if n % 20 < 10 {
                for s in &mut frame {
                    *s = phase.sin() * 0.3;
                    phase += 2.0 * std::f32::consts::PI * 300.0 / RATE as f32;
                }
            }
            let packet = enc.encode(&frame).unwrap();
            sizes.insert(packet.len());
            let (out, ok) = dec.decode(&packet);
            assert!(ok);
            if n >= 5 {
                energy_in += frame.iter().map(|s| s * s).sum::<f32>();
                energy_out += out.iter().map(|s| s * s).sum::<f32>();
            }
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![PACKET_BYTES]);
        assert_eq!(PACKET_BYTES, 60);
        let ratio = energy_out / energy_in;
        assert!((0.5..2.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn loss_is_concealed_and_garbage_never_panics() {
        let mut dec = Decoder::new().unwrap();
        let concealed = dec.conceal();
        assert!(concealed.iter().all(|s| s.is_finite()));
        // Whatever a hostile peer sends decodes to something finite.
        for junk in [&[0xff; 7][..], &[0u8; 1275], &[0x78, 1, 2, 3]] {
            let (out, _) = dec.decode(junk);
            assert!(out.iter().all(|s| s.is_finite()));
        }
        assert_eq!(decode_payload(&[0, 1]), None);
        assert_eq!(decode_payload(&[0, 1, 9]), Some((1, &[9u8][..])));
        assert_eq!(encode_payload(258, &[7]), vec![1, 2, 7]);
    }
}
