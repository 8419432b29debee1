//! Opus inside the module, for browsers whose WebCodecs has no Opus
//! (older Firefox, Firefox for Android, older Safari): the page hands over
//! 20 ms of samples and gets a packet, or a packet and gets samples. Pure
//! Rust (`opus-rs`), as the module can't link the system's libopus. The
//! settings are every member's: 48 kHz mono, 20 ms, voice, 24 kbit/s,
//! constant size, no DTX.

use std::collections::HashMap;

use opus_rs::{Application, OpusDecoder, OpusEncoder};

pub const RATE: i32 = 48_000;
/// Samples in one 20 ms frame.
pub const FRAME: usize = 960;
/// Every packet's size: 24 kbit/s × 20 ms (sizes must not tell speech from
/// silence).
pub const PACKET_BYTES: usize = 60;
/// The encoder aims a little under the packet so padding can always make
/// up the rest (padding needs two bytes of its own).
const TARGET_BITRATE: i32 = 22_400;
/// Largest Opus packet (RFC 6716).
const MAX_PACKET: usize = 1275;
/// Members whose voice we decode at once (a room is far smaller).
const MAX_DECODERS: usize = 64;

#[derive(Default)]
pub struct Opus {
    encoder: Option<Box<OpusEncoder>>,
    decoders: HashMap<String, Box<OpusDecoder>>,
}

impl Opus {
    /// 20 ms of samples (f32, little-endian) to one packet of
    /// [`PACKET_BYTES`].
    pub fn encode(&mut self, pcm: &[u8]) -> Result<Vec<u8>, String> {
        let samples = samples_of(pcm).ok_or("voice: not 20 ms of f32 samples")?;
        if self.encoder.is_none() {
            let mut e = OpusEncoder::new(RATE, 1, Application::Voip)
                .map_err(|e| format!("Opus encoder: {e}"))?;
            e.bitrate_bps = TARGET_BITRATE;
            e.use_cbr = true;
            e.use_inband_fec = false;
            self.encoder = Some(Box::new(e));
        }
        let encoder = self.encoder.as_mut().expect("made above");
        let mut out = vec![0u8; MAX_PACKET];
        let n = encoder
            .encode(&samples, FRAME, &mut out)
            .map_err(|e| format!("Opus encode: {e}"))?;
        out.truncate(n);
        pad_to(out, PACKET_BYTES)
    }

    /// A member's packet to 20 ms of samples (f32, little-endian).
    pub fn decode(&mut self, peer: &str, packet: &[u8]) -> Result<Vec<u8>, String> {
        if packet.is_empty() || packet.len() > MAX_PACKET {
            return Err("voice: not an Opus packet".into());
        }
        if !self.decoders.contains_key(peer) {
            if self.decoders.len() >= MAX_DECODERS {
                return Err("voice: too many members to decode".into());
            }
            let d = OpusDecoder::new(RATE, 1).map_err(|e| format!("Opus decoder: {e}"))?;
            self.decoders.insert(peer.to_string(), Box::new(d));
        }
        let decoder = self.decoders.get_mut(peer).expect("made above");
        let mut pcm = vec![0f32; FRAME];
        let n = decoder
            .decode(packet, FRAME, &mut pcm)
            .map_err(|e| format!("Opus decode: {e}"))?;
        pcm.truncate(n.min(FRAME));
        Ok(pcm.iter().flat_map(|s| s.to_le_bytes()).collect())
    }

    /// A member left: its decoder goes.
    pub fn forget(&mut self, peer: &str) {
        self.decoders.remove(peer);
    }

    /// A new connection: members come back under new ids.
    pub fn forget_everyone(&mut self) {
        self.decoders.clear();
    }
}

fn samples_of(pcm: &[u8]) -> Option<Vec<f32>> {
    if pcm.len() != FRAME * 4 {
        return None;
    }
    Some(
        pcm.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .map(|s| {
                if s.is_finite() {
                    s.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect(),
    )
}

/// A one-frame packet grown to exactly `size` with Opus' own padding
/// (RFC 6716 §3.2.5: code 3, one frame, the padding flag), which decoders
/// skip.
fn pad_to(packet: Vec<u8>, size: usize) -> Result<Vec<u8>, String> {
    if packet.len() == size {
        return Ok(packet);
    }
    let Some((&toc, frame)) = packet.split_first() else {
        return Err("Opus encode: empty packet".into());
    };
    // Code 0 (one frame) only: what a 20 ms mono encoder makes.
    if toc & 0b11 != 0 || packet.len() + 2 > size {
        return Err(format!(
            "Opus encode: a {} byte packet doesn't pad to {size}",
            packet.len()
        ));
    }
    let padding = size - packet.len() - 2;
    debug_assert!(padding < 255, "one length byte");
    let mut out = Vec::with_capacity(size);
    out.push(toc | 0b11);
    out.push(0b0100_0001); // CBR, padding follows, one frame
    out.push(padding as u8);
    out.extend_from_slice(frame);
    out.resize(size, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, frame: usize) -> Vec<u8> {
        (0..FRAME)
            .map(|i| {
                let t = (frame * FRAME + i) as f32 / RATE as f32;
                0.4 * (2.0 * std::f32::consts::PI * hz * t).sin()
            })
            .flat_map(|s| s.to_le_bytes())
            .collect()
    }

    fn floats(b: &[u8]) -> Vec<f32> {
        b.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }

    #[test]
    fn every_packet_has_the_same_size_and_a_tone_comes_back() {
        let mut opus = Opus::default();
        let mut out = Vec::new();
        for i in 0..50 {
            // Speech-like then silence: the size must not change.
            let pcm = if i < 25 {
                tone(440.0, i)
            } else {
                vec![0; FRAME * 4]
            };
            let packet = opus.encode(&pcm).unwrap();
            assert_eq!(packet.len(), PACKET_BYTES, "frame {i}");
            if i < 25 {
                out.extend(floats(&opus.decode("a", &packet).unwrap()));
            }
        }
        let peak = out[FRAME * 5..].iter().fold(0f32, |m, s| m.max(s.abs()));
        assert!(peak > 0.2, "the tone came back at {peak}");
    }

    #[test]
    fn hostile_packets_and_samples_are_refused_not_fatal() {
        let mut opus = Opus::default();
        assert!(opus.encode(&[0; 10]).is_err());
        assert!(opus.decode("a", &[]).is_err());
        assert!(opus.decode("a", &vec![0xff; 2000]).is_err());
        // Garbage of every length decodes to something or an error.
        for n in 2..200 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 + n) as u8).collect();
            let _ = opus.decode("a", &junk);
        }
        let nan: Vec<u8> = (0..FRAME).flat_map(|_| f32::NAN.to_le_bytes()).collect();
        assert_eq!(opus.encode(&nan).unwrap().len(), PACKET_BYTES);
    }
}
