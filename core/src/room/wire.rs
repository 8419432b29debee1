//! The binary messages members exchange inside the relay's `data` field
//! (before base64). Everything here is either public by design
//! (commitments, hellos, SPAKE2 messages, confirmations) or sealed.
//!
//! `version u8 | type u8 | fields…`

use crate::crypto::pairwise::{Hello, CONFIRM_LEN, NONCE_LEN, SPAKE2_MSG_LEN};
use crate::crypto::sign::SIGNATURE_LEN;

/// 3: rounds (pairwise messages addressed by the round nonces), proofs of
/// signing keys.
pub const WIRE_VERSION: u8 = 3;

const T_COMMIT: u8 = 1;
const T_HELLO: u8 = 2;
const T_PAKE: u8 = 3;
const T_CONFIRM: u8 = 4;
const T_SEALED: u8 = 5;
const T_FRAME: u8 = 6;

/// Type bytes of pairwise-sealed payloads (also bound into their AAD).
pub const SEALED_SENDER_KEY: u8 = 1;
pub const SEALED_CHAT: u8 = 2;
pub const SEALED_PROOF: u8 = 3;
/// Keys typed into the receiver's shared terminal (it decides whether
/// the sender may type).
pub const SEALED_SHARE_KEYS: u8 = 4;
/// `--only-known`: what a member our sender key is withheld from gets
/// instead (the same size, at the same moments: the relay can't tell who
/// is allowed), and a beat to every member every few seconds: our capture
/// clock, so a member that can't open our frames still knows we are here.
pub const SEALED_PRESENCE: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// A hash of this round's hello, to one peer, with the sender's round
    /// number (so a late one can't replace a newer one) and the commitment
    /// of that peer's the sender holds (`seen`, zeros if none): sent to
    /// everyone when a round starts, and to a peer whose new commitment we
    /// see (so it knows we have it, and what ours is).
    Commit {
        round: u64,
        commit: [u8; 32],
        seen: [u8; 32],
    },
    /// `{v, E, N, S}` in the clear, broadcast once the round's commitments
    /// are in.
    Hello(Hello),
    /// Pairwise messages are addressed by the round nonces of sender and
    /// receiver: nothing from another round fits.
    Pake {
        from_n: [u8; NONCE_LEN],
        to_n: [u8; NONCE_LEN],
        msg: [u8; SPAKE2_MSG_LEN],
    },
    Confirm {
        from_n: [u8; NONCE_LEN],
        to_n: [u8; NONCE_LEN],
        mac: [u8; CONFIRM_LEN],
    },
    /// A pairwise AEAD message (proof of the signing key, sender-key
    /// delivery, private chat).
    Sealed {
        from_n: [u8; NONCE_LEN],
        to_n: [u8; NONCE_LEN],
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
            WireMessage::Commit {
                round,
                commit,
                seen,
            } => {
                out.push(T_COMMIT);
                out.extend_from_slice(&round.to_be_bytes());
                out.extend_from_slice(commit);
                out.extend_from_slice(seen);
            }
            WireMessage::Hello(h) => {
                out.push(T_HELLO);
                out.push(h.v);
                out.extend_from_slice(&h.e);
                out.extend_from_slice(&h.n);
                out.extend_from_slice(&h.s);
            }
            WireMessage::Pake { from_n, to_n, msg } => {
                out.push(T_PAKE);
                out.extend_from_slice(from_n);
                out.extend_from_slice(to_n);
                out.extend_from_slice(msg);
            }
            WireMessage::Confirm { from_n, to_n, mac } => {
                out.push(T_CONFIRM);
                out.extend_from_slice(from_n);
                out.extend_from_slice(to_n);
                out.extend_from_slice(mac);
            }
            WireMessage::Sealed {
                from_n,
                to_n,
                ctr,
                ciphertext,
            } => {
                out.push(T_SEALED);
                out.extend_from_slice(from_n);
                out.extend_from_slice(to_n);
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
                let m = WireMessage::Commit {
                    round: u64::from_be_bytes(r.array()?),
                    commit: r.array()?,
                    seen: r.array()?,
                };
                r.end()?;
                m
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
                    from_n: r.array()?,
                    to_n: r.array()?,
                    msg: r.array()?,
                };
                r.end()?;
                m
            }
            T_CONFIRM => {
                let m = WireMessage::Confirm {
                    from_n: r.array()?,
                    to_n: r.array()?,
                    mac: r.array()?,
                };
                r.end()?;
                m
            }
            T_SEALED => WireMessage::Sealed {
                from_n: r.array()?,
                to_n: r.array()?,
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

/// Pairwise-sealed sender-key delivery: `kid u64 | base key 32`.
pub struct SenderKeyMessage {
    pub kid: u64,
    pub base: crate::crypto::secret::Key32,
}

const SENDER_KEY_MESSAGE_LEN: usize = 8 + 32;

impl SenderKeyMessage {
    pub fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(SENDER_KEY_MESSAGE_LEN));
        out.extend_from_slice(&self.kid.to_be_bytes());
        out.extend_from_slice(self.base.expose());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        if buf.len() != SENDER_KEY_MESSAGE_LEN {
            return Err(WireError::Length);
        }
        let mut r = Reader(buf);
        let kid = u64::from_be_bytes(r.array()?);
        let base = crate::crypto::secret::Key32::from_bytes(r.array()?);
        Ok(SenderKeyMessage { kid, base })
    }
}

/// Pairwise-sealed presence (see [`SEALED_PRESENCE`]): `capture time µs
/// u64`, zero-padded to a sender-key message's size.
pub struct PresenceMessage {
    pub timestamp_us: u64,
}

impl PresenceMessage {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.timestamp_us.to_be_bytes().to_vec();
        out.resize(SENDER_KEY_MESSAGE_LEN, 0);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        if buf.len() != SENDER_KEY_MESSAGE_LEN {
            return Err(WireError::Length);
        }
        let timestamp_us = u64::from_be_bytes(Reader(buf).array()?);
        Ok(PresenceMessage { timestamp_us })
    }
}

/// Pairwise-sealed proof of the signing key, with the member's identity
/// key and name, always the same size whatever the name: `signature 64 |
/// identity 32 | identity signature 64 | name length u8 | name,
/// zero-padded to MAX_NAME_BYTES` (a name's length is not the relay's
/// business).
pub struct ProofMessage {
    /// The signing key's signature over the channel's transcript.
    pub signature: [u8; SIGNATURE_LEN],
    /// The long-lived identity key (only ever inside a pairwise channel).
    pub identity: [u8; 32],
    /// Its signature over the transcript and the prover's signing key.
    pub identity_signature: [u8; SIGNATURE_LEN],
    pub name: String,
}

pub const MAX_NAME_BYTES: usize = 64;
const PROOF_MESSAGE_LEN: usize = SIGNATURE_LEN + 32 + SIGNATURE_LEN + 1 + MAX_NAME_BYTES;

impl ProofMessage {
    pub fn encode(&self) -> Vec<u8> {
        let name = truncate_utf8(&self.name, MAX_NAME_BYTES).as_bytes();
        let mut out = Vec::with_capacity(PROOF_MESSAGE_LEN);
        out.extend_from_slice(&self.signature);
        out.extend_from_slice(&self.identity);
        out.extend_from_slice(&self.identity_signature);
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.resize(PROOF_MESSAGE_LEN, 0);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<Self, WireError> {
        if buf.len() != PROOF_MESSAGE_LEN {
            return Err(WireError::Length);
        }
        let mut r = Reader(buf);
        let signature = r.array()?;
        let identity = r.array()?;
        let identity_signature = r.array()?;
        let len = r.array::<1>()?[0] as usize;
        let name = r.take(len.min(MAX_NAME_BYTES))?;
        let name = crate::sanitize::clean_name(&String::from_utf8_lossy(name));
        Ok(ProofMessage {
            signature,
            identity,
            identity_signature,
            name,
        })
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
            WireMessage::Commit {
                round: 5,
                commit: [7; 32],
                seen: [8; 32],
            },
            WireMessage::Hello(Hello {
                v: 3,
                e: [1; 32],
                n: [2; 16],
                s: [3; 32],
            }),
            WireMessage::Pake {
                from_n: [3; 16],
                to_n: [4; 16],
                msg: [5; 33],
            },
            WireMessage::Confirm {
                from_n: [3; 16],
                to_n: [4; 16],
                mac: [6; 32],
            },
            WireMessage::Sealed {
                from_n: [3; 16],
                to_n: [4; 16],
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
        assert_eq!(WireMessage::decode(&[2, 1]), Err(WireError::Version));
        assert_eq!(WireMessage::decode(&[3, 99]), Err(WireError::Type));
        let mut long_commit = WireMessage::Commit {
            round: 1,
            commit: [1; 32],
            seen: [2; 32],
        }
        .encode();
        long_commit.push(0);
        assert_eq!(WireMessage::decode(&long_commit), Err(WireError::Length));
    }

    #[test]
    fn proofs_are_one_size_whatever_the_name() {
        let msg = |name: &str| ProofMessage {
            signature: [7; 64],
            identity: [8; 32],
            identity_signature: [9; 64],
            name: name.into(),
        };
        let short = msg("Al").encode();
        let long = msg("Bartholomew Featherstonehaugh").encode();
        assert_eq!(short.len(), long.len());
        let back = ProofMessage::decode(&long).unwrap();
        assert_eq!(back.name, "Bartholomew Featherstonehaugh");
        assert_eq!(back.signature, [7; 64]);
        assert_eq!(back.identity, [8; 32]);
        assert_eq!(back.identity_signature, [9; 64]);
        // Names are cleaned of control characters on the way in.
        let evil = ProofMessage::decode(&msg("x\x1b]2;pwned\x07").encode()).unwrap();
        assert!(!evil.name.chars().any(char::is_control), "{:?}", evil.name);
        assert!(ProofMessage::decode(&short[..short.len() - 1]).is_err());
        let key = SenderKeyMessage {
            kid: 5,
            base: crate::crypto::secret::Key32::from_bytes([1; 32]),
        };
        let back = SenderKeyMessage::decode(&key.encode()).unwrap();
        assert_eq!((back.kid, back.base.expose()), (5, &[1; 32]));
    }
}
