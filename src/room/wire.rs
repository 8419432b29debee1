//! The binary messages members exchange inside the relay's `data` field
//! (before base64). Everything here is either public by design
//! (commitments, hellos, SPAKE2 messages, confirmations) or sealed.
//!
//! `version u8 | type u8 | fields…`

use crate::crypto::pairwise::{Hello, CONFIRM_LEN, SPAKE2_MSG_LEN};
use crate::crypto::sign::SIGNATURE_LEN;

/// 2: commitments, signed frames, fixed-size key messages.
pub const WIRE_VERSION: u8 = 2;

const T_COMMIT: u8 = 1;
const T_HELLO: u8 = 2;
const T_PAKE: u8 = 3;
const T_CONFIRM: u8 = 4;
const T_SEALED: u8 = 5;
const T_FRAME: u8 = 6;

/// Type bytes of pairwise-sealed payloads (also bound into their AAD).
pub const SEALED_SENDER_KEY: u8 = 1;
pub const SEALED_CHAT: u8 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// A hash of the hello to come: broadcast on join, or sent to one
    /// newcomer. The hello follows only once the peer's commitment is in.
    Commit([u8; 32]),
    /// `{v, E, N, S}` in the clear, to one peer, after the commitments.
    Hello(Hello),
    Pake {
        from_e: [u8; 32],
        to_e: [u8; 32],
        msg: [u8; SPAKE2_MSG_LEN],
    },
    Confirm {
        from_e: [u8; 32],
        to_e: [u8; 32],
        mac: [u8; CONFIRM_LEN],
    },
    /// A pairwise AEAD message (sender-key delivery, private chat).
    Sealed {
        from_e: [u8; 32],
        to_e: [u8; 32],
        ctr: u64,
        ciphertext: Vec<u8>,
    },
    /// An SFrame message under the sender's key (media, chat, state),
    /// signed with the sender's signing key.
    Frame {
        signature: [u8; SIGNATURE_LEN],
        sealed: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unsupported wire version")]
    Version,
    #[error("unknown message type")]
    Type,
    #[error("truncated or oversized message")]
    Length,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Length);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        self.take(N)?.try_into().map_err(|_| WireError::Length)
    }

    fn end(self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Length)
        }
    }
}

impl WireMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![WIRE_VERSION];
        match self {
            WireMessage::Commit(c) => {
                out.push(T_COMMIT);
                out.extend_from_slice(c);
            }
            WireMessage::Hello(h) => {
                out.push(T_HELLO);
                out.push(h.v);
                out.extend_from_slice(&h.e);
                out.extend_from_slice(&h.n);
                out.extend_from_slice(&h.s);
            }
            WireMessage::Pake { from_e, to_e, msg } => {
                out.push(T_PAKE);
                out.extend_from_slice(from_e);
                out.extend_from_slice(to_e);
                out.extend_from_slice(msg);
            }
            WireMessage::Confirm { from_e, to_e, mac } => {
                out.push(T_CONFIRM);
                out.extend_from_slice(from_e);
                out.extend_from_slice(to_e);
                out.extend_from_slice(mac);
            }
            WireMessage::Sealed {
                from_e,
                to_e,
                ctr,
                ciphertext,
            } => {
                out.push(T_SEALED);
                out.extend_from_slice(from_e);
                out.extend_from_slice(to_e);
                out.extend_from_slice(&ctr.to_be_bytes());
                out.extend_from_slice(ciphertext);
            }
            WireMessage::Frame { signature, sealed } => {
                out.push(T_FRAME);
                out.extend_from_slice(signature);
                out.extend_from_slice(sealed);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(buf);
        if r.array::<1>()?[0] != WIRE_VERSION {
            return Err(WireError::Version);
        }
        let msg = match r.array::<1>()?[0] {
            T_COMMIT => {
                let c = r.array()?;
                r.end()?;
                WireMessage::Commit(c)
            }
            T_HELLO => {
                let v = r.array::<1>()?[0];
                let e = r.array()?;
                let n = r.array()?;
                let s = r.array()?;
                r.end()?;
                WireMessage::Hello(Hello { v, e, n, s })
            }
            T_PAKE => {
                let m = WireMessage::Pake {
                    from_e: r.array()?,
                    to_e: r.array()?,
                    msg: r.array()?,
                };
                r.end()?;
                m
            }
            T_CONFIRM => {
                let m = WireMessage::Confirm {
                    from_e: r.array()?,
                    to_e: r.array()?,
                    mac: r.array()?,
                };
                r.end()?;
                m
            }
            T_SEALED => WireMessage::Sealed {
                from_e: r.array()?,
                to_e: r.array()?,
                ctr: u64::from_be_bytes(r.array()?),
                ciphertext: r.0.to_vec(),
            },
            T_FRAME => WireMessage::Frame {
                signature: r.array()?,
                sealed: r.0.to_vec(),
            },
            _ => return Err(WireError::Type),
        };
        Ok(msg)
    }
}

/// Pairwise-sealed sender-key delivery, always the same size whatever the
/// name: `kid u64 | base key 32 | name length u8 | name, zero-padded to
/// MAX_NAME_BYTES` (a name's length is not the relay's business).
pub struct SenderKeyMessage {
    pub kid: u64,
    pub base: crate::crypto::secret::Key32,
    pub name: String,
}

pub const MAX_NAME_BYTES: usize = 64;
const SENDER_KEY_MESSAGE_LEN: usize = 8 + 32 + 1 + MAX_NAME_BYTES;

impl SenderKeyMessage {
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let name = truncate_utf8(&self.name, MAX_NAME_BYTES).as_bytes();
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(SENDER_KEY_MESSAGE_LEN));
        out.extend_from_slice(&self.kid.to_be_bytes());
        out.extend_from_slice(self.base.expose());
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.resize(SENDER_KEY_MESSAGE_LEN, 0);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        if buf.len() != SENDER_KEY_MESSAGE_LEN {
            return Err(WireError::Length);
        }
        let mut r = Reader(buf);
        let kid = u64::from_be_bytes(r.array()?);
        let base = crate::crypto::secret::Key32::from_bytes(r.array()?);
        let len = r.array::<1>()?[0] as usize;
        let name = r.take(len.min(MAX_NAME_BYTES))?;
        let name = crate::sanitize::clean(&String::from_utf8_lossy(name));
        Ok(SenderKeyMessage { kid, base, name })
    }
}

/// The longest prefix of `s` within `max` bytes, on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_truncation() {
        let msgs = [
            WireMessage::Commit([7; 32]),
            WireMessage::Hello(Hello {
                v: 2,
                e: [1; 32],
                n: [2; 16],
                s: [3; 32],
            }),
            WireMessage::Pake {
                from_e: [3; 32],
                to_e: [4; 32],
                msg: [5; 33],
            },
            WireMessage::Confirm {
                from_e: [3; 32],
                to_e: [4; 32],
                mac: [6; 32],
            },
            WireMessage::Sealed {
                from_e: [3; 32],
                to_e: [4; 32],
                ctr: 7,
                ciphertext: vec![8; 40],
            },
            WireMessage::Frame {
                signature: [9; 64],
                sealed: vec![9; 20],
            },
        ];
        for m in msgs {
            let enc = m.encode();
            assert_eq!(WireMessage::decode(&enc).unwrap(), m);
            for cut in 0..enc.len().min(90) {
                // Truncations either fail or (for the variable tails) decode
                // to something shorter; never panic.
                let _ = WireMessage::decode(&enc[..cut]);
            }
            assert!(WireMessage::decode(&enc[..1]).is_err());
        }
        assert_eq!(WireMessage::decode(&[1, 1]), Err(WireError::Version));
        assert_eq!(WireMessage::decode(&[2, 99]), Err(WireError::Type));
        let mut long_commit = WireMessage::Commit([1; 32]).encode();
        long_commit.push(0);
        assert_eq!(WireMessage::decode(&long_commit), Err(WireError::Length));
    }

    #[test]
    fn key_messages_are_one_size_whatever_the_name() {
        let msg = |name: &str| SenderKeyMessage {
            kid: 5,
            base: crate::crypto::secret::Key32::from_bytes([1; 32]),
            name: name.into(),
        };
        let short = msg("Al").encode();
        let long = msg("Bartholomew Featherstonehaugh").encode();
        assert_eq!(short.len(), long.len());
        let back = SenderKeyMessage::decode(&long).unwrap();
        assert_eq!(back.name, "Bartholomew Featherstonehaugh");
        assert_eq!(back.kid, 5);
        // Names are cleaned of control characters on the way in.
        let evil = SenderKeyMessage::decode(&msg("x\x1b]2;pwned\x07").encode()).unwrap();
        assert!(!evil.name.chars().any(char::is_control), "{:?}", evil.name);
        assert!(SenderKeyMessage::decode(&short[..short.len() - 1]).is_err());
    }
}
