//! The plaintext inside every SFrame message: capture timestamp, stream id,
//! flags, payload, and zero padding to a size bucket so the relay learns less
//! from lengths (buckets are at most 12.5% apart).
//!
//! `ts_us u64 | stream u8 | flags u8 | len u32 | payload | padding`

pub const HEADER_LEN: usize = 14;
const MIN_BUCKET: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stream {
    Video = 1,
    Chat = 2,
    Feedback = 3,
    State = 4,
    /// Opus voice, 20 ms per message.
    Audio = 5,
    /// A shared terminal's screen and who may type in it
    /// (the client's `share`).
    Share = 6,
}

impl Stream {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Stream::Video,
            2 => Stream::Chat,
            3 => Stream::Feedback,
            4 => Stream::State,
            5 => Stream::Audio,
            6 => Stream::Share,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FramePlaintext {
    pub timestamp_us: u64,
    pub stream: Stream,
    pub flags: u8,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed frame plaintext")]
pub struct FrameError;

/// Smallest bucket ≥ `n`: multiples of 1/8 of the next lower power of two,
/// so padding adds at most 12.5%.
pub fn bucket(n: usize) -> usize {
    if n <= MIN_BUCKET {
        return MIN_BUCKET;
    }
    let step = 1usize << (usize::BITS - 1 - n.leading_zeros()).saturating_sub(3);
    n.div_ceil(step) * step
}

impl FramePlaintext {
    pub fn encode(&self) -> Vec<u8> {
        self.encode_to(bucket(HEADER_LEN + self.payload.len()))
    }

    /// Encodes padded to exactly `size` bytes (no bucket rounding; at
    /// least the header and payload): for a stream whose messages are all
    /// one size already, so the buckets would only add bytes.
    pub fn encode_exact(&self, size: usize) -> Vec<u8> {
        self.encode_to(size.max(HEADER_LEN + self.payload.len()))
    }

    fn encode_to(&self, size: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&self.timestamp_us.to_be_bytes());
        out.push(self.stream as u8);
        out.push(self.flags);
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out.resize(size, 0);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, FrameError> {
        if buf.len() < HEADER_LEN {
            return Err(FrameError);
        }
        let timestamp_us = u64::from_be_bytes(buf[0..8].try_into().map_err(|_| FrameError)?);
        let stream = Stream::from_u8(buf[8]).ok_or(FrameError)?;
        let flags = buf[9];
        let len = u32::from_be_bytes(buf[10..14].try_into().map_err(|_| FrameError)?) as usize;
        let payload = buf.get(HEADER_LEN..HEADER_LEN + len).ok_or(FrameError)?;
        Ok(FramePlaintext {
            timestamp_us,
            stream,
            flags,
            payload: payload.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_at_most_12_5_percent_apart() {
        let mut prev = bucket(1);
        for n in 1..200_000 {
            let b = bucket(n);
            assert!(b >= n);
            assert!(b as f64 <= (n.max(MIN_BUCKET) as f64) * 1.125, "{n} -> {b}");
            if b != prev {
                assert!(b as f64 <= prev as f64 * 1.125 + 1.0, "{prev} -> {b}");
                prev = b;
            }
        }
    }

    #[test]
    fn round_trip_and_truncation() {
        let f = FramePlaintext {
            timestamp_us: 123_456_789,
            stream: Stream::Chat,
            flags: 3,
            payload: b"hello".to_vec(),
        };
        let enc = f.encode();
        assert_eq!(enc.len(), 64);
        assert_eq!(FramePlaintext::decode(&enc).unwrap(), f);
        for cut in 0..HEADER_LEN + 5 {
            assert!(FramePlaintext::decode(&enc[..cut]).is_err());
        }
        let mut bad = enc.clone();
        bad[8] = 99;
        assert!(FramePlaintext::decode(&bad).is_err());
    }
}
