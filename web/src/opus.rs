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
/// up the rest (padding needs two bytes of its own beyond the TOC).
const TARGET_BITRATE: i32 = 22_400;
/// Largest Opus packet (RFC 6716).
const MAX_PACKET: usize = 1275;
/// Members whose voice we decode at once: the most a room can hold.
const MAX_DECODERS: usize = 256;

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
        Ok(constant_size(&out[..n]))
    }

    /// A member's packet to 20 ms of samples (f32, little-endian). Only
    /// what members send gets to the decoder: [`PACKET_BYTES`], mono,
    /// 20 ms, one frame. A decoder fault would stop the module, and with it
    /// the call, so nothing else is given the chance.
    pub fn decode(&mut self, peer: &str, packet: &[u8]) -> Result<Vec<u8>, String> {
        if !as_members_send(packet) {
            return Err("voice: a packet no member's encoder makes".into());
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

/// The TOC configurations of 20 ms frames (RFC 6716 §3.1): SILK NB, MB,
/// WB; hybrid SWB, FB; CELT NB, WB, SWB, FB.
const TWENTY_MS: [u8; 9] = [1, 5, 9, 13, 15, 19, 23, 27, 31];
/// What the filler packet claims to be: SILK wideband, 20 ms, mono.
const FILLER_TOC: u8 = 9 << 3;

/// The TOC (with its frame-count code cleared) and the one frame of a
/// one-frame packet: code 0, or code 3 counting one frame (with or without
/// padding). None for anything else.
fn one_frame(packet: &[u8]) -> Option<(u8, &[u8])> {
    let (&toc, rest) = packet.split_first()?;
    match toc & 0b11 {
        0 => Some((toc & !0b11, rest)),
        3 => {
            let (&count, mut rest) = rest.split_first()?;
            if count & 0x3f != 1 {
                return None;
            }
            let mut padding = 0usize;
            if count & 0x40 != 0 {
                // Length bytes: 255 means 254 bytes and another length byte.
                loop {
                    let (&b, r) = rest.split_first()?;
                    rest = r;
                    if b == 255 {
                        padding += 254;
                    } else {
                        padding += usize::from(b);
                        break;
                    }
                }
            }
            let frame = rest.len().checked_sub(padding)?;
            Some((toc & !0b11, &rest[..frame]))
        }
        _ => None,
    }
}

/// Whether a packet is what members' encoders make: exactly
/// [`PACKET_BYTES`], mono, 20 ms, one frame.
pub fn as_members_send(packet: &[u8]) -> bool {
    packet.len() == PACKET_BYTES
        && one_frame(packet)
            .is_some_and(|(toc, _)| toc & 0b100 == 0 && TWENTY_MS.contains(&(toc >> 3)))
}

/// Any packet, as exactly [`PACKET_BYTES`]: a one-frame packet grown with
/// Opus' own padding (RFC 6716 §3.2.5: code 3, one frame, the padding
/// flag), which decoders skip; anything that doesn't fit becomes an empty
/// frame of the same size, which decoders conceal. Whatever an encoder
/// does, the relay sees one size.
pub fn constant_size(packet: &[u8]) -> Vec<u8> {
    if packet.len() == PACKET_BYTES {
        return packet.to_vec();
    }
    let (toc, frame) = match one_frame(packet) {
        Some((toc, frame)) if frame.len() + 3 <= PACKET_BYTES => (toc, frame),
        _ => (FILLER_TOC, &[][..]),
    };
    let mut out = Vec::with_capacity(PACKET_BYTES);
    out.push(toc | 0b11);
    out.push(0b0100_0001); // padding follows, one frame
    out.push((PACKET_BYTES - 3 - frame.len()) as u8);
    out.extend_from_slice(frame);
    out.resize(PACKET_BYTES, 0);
    out
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
    fn every_packet_leaves_at_the_one_size() {
        let frame = [7u8; 40];
        let code0 = [&[9u8 << 3][..], &frame].concat();
        let padded = constant_size(&code0);
        assert_eq!(padded.len(), PACKET_BYTES);
        assert_eq!(
            one_frame(&padded),
            Some((9 << 3, &frame[..])),
            "the frame survives"
        );
        assert!(as_members_send(&padded));
        // A padded packet of another size is padded again, frame intact.
        let other = [&[(9u8 << 3) | 3, 0x41, 5][..], &frame, &[0; 5]].concat();
        assert_eq!(
            one_frame(&constant_size(&other)),
            Some((9 << 3, &frame[..]))
        );
        // Too big, two frames, empty: an empty frame of the same size.
        for odd in [vec![9 << 3; 300], vec![(9 << 3) | 1, 1, 2, 3], vec![]] {
            let out = constant_size(&odd);
            assert_eq!(out.len(), PACKET_BYTES);
            assert_eq!(one_frame(&out).map(|(_, f)| f.len()), Some(0));
        }
    }

    #[test]
    fn only_what_members_send_reaches_the_decoder() {
        let mut opus = Opus::default();
        let good = opus.encode(&tone(440.0, 0)).unwrap();
        assert!(as_members_send(&good));
        let stereo = [&[good[0] | 0b100][..], &good[1..]].concat();
        let ten_ms = [&[(8u8 << 3) | (good[0] & 0b11)][..], &good[1..]].concat();
        for bad in [&good[..59], &stereo[..], &ten_ms[..], &[0u8][..]] {
            assert!(opus.decode("a", bad).is_err(), "{bad:?}");
        }
    }

    /// Random packets of the accepted shape, every 20 ms configuration: the
    /// decoder returns samples or an error, never panics (debug builds
    /// check overflow too, which the module's release build doesn't).
    #[test]
    fn the_decoder_survives_random_packets_of_the_accepted_shape() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut opus = Opus::default();
        for config in TWENTY_MS {
            for i in 0..400 {
                let mut p = [0u8; PACKET_BYTES];
                p.iter_mut().for_each(|b| *b = next() as u8);
                p[0] = config << 3;
                if i % 2 == 1 {
                    p[0] |= 3;
                    p[1] = 0x41;
                    p[2] = (next() % 58) as u8;
                }
                assert!(as_members_send(&p));
                let _ = opus.decode(&format!("m{}", i % 3), &p);
            }
        }
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
