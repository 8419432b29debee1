//! What sealed frames carry, stream by stream: the byte formats of video
//! payloads, receiver feedback and state messages.

/// Video payloads: `frame number u32 | JPEG`. The number lets receivers
/// count what was lost on the way.
pub mod video {
    /// Frame flag: the JPEG's standard Huffman tables were stripped
    /// ([`crate::media::jpeg::strip_tables`]); put them back before decoding.
    pub const FLAG_STANDARD_TABLES: u8 = 1;

    pub fn encode(seq: u32, jpeg: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + jpeg.len());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(jpeg);
        v
    }

    pub fn decode(payload: &[u8]) -> Option<(u32, &[u8])> {
        let (seq, jpeg) = payload.split_at_checked(4)?;
        Some((u32::from_be_bytes(seq.try_into().ok()?), jpeg))
    }
}

/// Receiver feedback (stream `Feedback`, once a second): for each sender
/// heard from, `id_len u8 | id | delay_ms u16 | received u16 | lost u16`.
pub mod feedback {
    use crate::media::adapt::ReceiverReport;

    pub fn encode(entries: &[(String, ReceiverReport)]) -> Vec<u8> {
        let mut out = vec![entries.len().min(255) as u8];
        for (id, r) in entries.iter().take(255) {
            let id = &id.as_bytes()[..id.len().min(64)];
            out.push(id.len() as u8);
            out.extend_from_slice(id);
            out.extend_from_slice(&(r.delay_ms.clamp(0.0, 65535.0) as u16).to_be_bytes());
            out.extend_from_slice(&(r.received.min(65535) as u16).to_be_bytes());
            out.extend_from_slice(&(r.lost.min(65535) as u16).to_be_bytes());
        }
        out
    }

    /// The entry about `me`, if the report has one.
    pub fn find(payload: &[u8], me: &str) -> Option<ReceiverReport> {
        let (&count, mut rest) = payload.split_first()?;
        for _ in 0..count {
            let (&len, tail) = rest.split_first()?;
            let (id, tail) = tail.split_at_checked(len as usize)?;
            let (nums, tail) = tail.split_at_checked(6)?;
            rest = tail;
            if id == me.as_bytes() {
                let n = |i: usize| u16::from_be_bytes([nums[i], nums[i + 1]]);
                return Some(ReceiverReport {
                    delay_ms: f64::from(n(0)),
                    received: u32::from(n(2)),
                    lost: u32::from(n(4)),
                });
            }
        }
        None
    }
}

/// Sealed state messages (stream `State`): `kind u8 | fields`.
pub mod state {
    pub const VIEW: u8 = 1;
    pub const CAMERA: u8 = 2;

    /// A member's camera, as it tells the others.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Camera {
        On,
        /// Turned off for now (`v`).
        Off,
        /// No video source at all: view only.
        Absent,
    }

    pub fn view(w: u32, h: u32) -> Vec<u8> {
        let mut v = vec![VIEW];
        v.extend_from_slice(&(w.min(u16::MAX as u32) as u16).to_be_bytes());
        v.extend_from_slice(&(h.min(u16::MAX as u32) as u16).to_be_bytes());
        v
    }

    pub fn camera(state: Camera) -> Vec<u8> {
        let value = match state {
            Camera::Off => 0,
            Camera::On => 1,
            Camera::Absent => 2,
        };
        vec![CAMERA, value]
    }

    pub fn parse_camera(value: u8) -> Option<Camera> {
        Some(match value {
            0 => Camera::Off,
            1 => Camera::On,
            2 => Camera::Absent,
            _ => return None,
        })
    }
}
