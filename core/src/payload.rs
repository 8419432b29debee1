//! What sealed frames carry besides chat: the byte formats of video
//! payloads and state messages, shared by every client (terminal and
//! browser).

/// Video payloads: `frame number u32 | JPEG`. The number lets receivers
/// count what was lost on the way.
pub mod video {
    /// Frame flag: the JPEG's standard Huffman tables were stripped
    /// ([`crate::jpeg::strip_tables`]); put them back before decoding.
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

/// Voice payloads: `seq u16 | Opus packet` (48 kHz mono, 20 ms, 24 kbit/s
/// hard CBR: every packet the same size); the frame's flags carry
/// [`audio::FLAG_MUTED`].
pub mod audio {
    /// Audio frame flag: the sender is muted (it still sends, silence).
    pub const FLAG_MUTED: u8 = 1;

    pub fn encode(seq: u16, opus: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(2 + opus.len());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(opus);
        v
    }

    /// The sequence number and Opus packet; None if malformed.
    pub fn decode(payload: &[u8]) -> Option<(u16, &[u8])> {
        let (seq, opus) = payload.split_at_checked(2)?;
        if opus.is_empty() || opus.len() > 1275 {
            return None;
        }
        Some((u16::from_be_bytes([seq[0], seq[1]]), opus))
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
