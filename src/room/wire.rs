//! The binary messages members exchange inside the relay's `data` field
//! (before base64). Everything here is either public by design (hello,
//! SPAKE2 messages, confirmations) or sealed.
//!
//! `version u8 | type u8 | fields…`

use crate::crypto::pairwise::{Hello, CONFIRM_LEN, SPAKE2_MSG_LEN};

pub const WIRE_VERSION: u8 = 1;

const T_HELLO: u8 = 1;
const T_PAKE: u8 = 2;
const T_CONFIRM: u8 = 3;
const T_SEALED: u8 = 4;
const T_FRAME: u8 = 5;

/// Type byte of pairwise-sealed payloads (also bound into their AAD).
pub const SEALED_SENDER_KEY: u8 = 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// `{v, E, N}` in the clear: broadcast on join, or sent to one newcomer.
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
    /// A pairwise AEAD message (sender-key delivery).
    Sealed {
        from_e: [u8; 32],
        to_e: [u8; 32],
        ctr: u64,
        ciphertext: Vec<u8>,
    },
    /// An SFrame message under the sender's key (media, chat, state).
    Frame(Vec<u8>),
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
            WireMessage::Hello(h) => {
                out.push(T_HELLO);
                out.push(h.v);
                out.extend_from_slice(&h.e);
                out.extend_from_slice(&h.n);
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
            WireMessage::Frame(bytes) => {
                out.push(T_FRAME);
                out.extend_from_slice(bytes);
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
            T_HELLO => {
                let v = r.array::<1>()?[0];
                let e = r.array()?;
                let n = r.array()?;
                r.end()?;
                WireMessage::Hello(Hello { v, e, n })
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
            T_FRAME => WireMessage::Frame(r.0.to_vec()),
            _ => return Err(WireError::Type),
        };
        Ok(msg)
    }
}

/// Pairwise-sealed sender-key delivery: `epoch u64 | base key 32 | name`.
pub struct SenderKeyMessage {
    pub epoch: u64,
    pub base: crate::crypto::secret::Key32,
    pub name: String,
}

pub const MAX_NAME_BYTES: usize = 64;

impl SenderKeyMessage {
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(40 + self.name.len()));
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(self.base.expose());
        out.extend_from_slice(self.name.as_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader(buf);
        let epoch = u64::from_be_bytes(r.array()?);
        let base = crate::crypto::secret::Key32::from_bytes(r.array()?);
        if r.0.len() > MAX_NAME_BYTES {
            return Err(WireError::Length);
        }
        let name = String::from_utf8_lossy(r.0).into_owned();
        Ok(SenderKeyMessage { epoch, base, name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reject_truncation() {
        let msgs = [
            WireMessage::Hello(Hello {
                v: 1,
                e: [1; 32],
                n: [2; 16],
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
            WireMessage::Frame(vec![9; 20]),
        ];
        for m in msgs {
            let enc = m.encode();
            assert_eq!(WireMessage::decode(&enc).unwrap(), m);
            for cut in 0..enc.len().min(75) {
                // Truncations either fail or (for the variable tails) decode
                // to something shorter; never panic.
                let _ = WireMessage::decode(&enc[..cut]);
            }
            assert!(WireMessage::decode(&enc[..1]).is_err());
        }
        assert_eq!(WireMessage::decode(&[2, 1]), Err(WireError::Version));
        assert_eq!(WireMessage::decode(&[1, 99]), Err(WireError::Type));
        let mut long_hello = WireMessage::Hello(Hello {
            v: 1,
            e: [1; 32],
            n: [2; 16],
        })
        .encode();
        long_hello.push(0);
        assert_eq!(WireMessage::decode(&long_hello), Err(WireError::Length));
    }
}
