//! A person's identity key across calls: an Ed25519 key kept in a file
//! (the client's `identity` module). It never signs anything the relay sees: in
//! each pairwise handshake it signs the transcript (both hellos, and so
//! both per-join signing keys) with the prover's own signing key named
//! once more, and that signature travels with its public half inside the
//! pairwise channel. A member learns who a peer is; the relay learns
//! nothing that repeats from one call to the next.

use sha2::Digest;

use super::kdf::lp;
use super::sign::{self, BadSignature, SigningIdentity, PUBLIC_LEN, SIGNATURE_LEN};

/// SHA-256 of the identity public key (labelled): what people compare
/// and what `known_peers` stores.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 32]);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

/// Words a fingerprint is read as (6 × 12.9 bits: enough to notice a
/// change, not a substitute for the hex when it matters).
const WORDS: usize = 6;

impl Fingerprint {
    pub fn of(public: &[u8; PUBLIC_LEN]) -> Self {
        Fingerprint(sha2::Sha256::digest(lp(&[b"streamflow/4 identity key", public])).into())
    }

    /// 64 hex digits (the form `known_peers` stores).
    pub fn hex(&self) -> String {
        to_hex(&self.0)
    }

    pub fn parse_hex(s: &str) -> Option<Self> {
        if s.len() != 64 || !s.is_ascii() {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Fingerprint(out))
    }

    /// Four hex digits: tells apart two members with the same name
    /// (`alice·3f2a`), and stays the same from call to call.
    pub fn short(&self) -> String {
        to_hex(&self.0[..2])
    }

    /// The first `digits` hex digits (at most all 64).
    pub fn prefix(&self, digits: usize) -> String {
        let mut h = self.hex();
        h.truncate(digits.min(64));
        h
    }

    /// How many leading hex digits this and `other` share.
    pub fn common_hex_digits(&self, other: &Fingerprint) -> usize {
        self.hex()
            .chars()
            .zip(other.hex().chars())
            .take_while(|(a, b)| a == b)
            .count()
    }

    /// The hex in groups of four, to read aloud.
    pub fn grouped(&self) -> String {
        let h = self.hex();
        h.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn words(&self) -> String {
        let list = crate::wordlist::words();
        (0..WORDS)
            .map(|i| {
                let v = u32::from(u16::from_be_bytes([self.0[2 * i], self.0[2 * i + 1]]));
                list[(v as usize) % list.len()]
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// OpenSSH's "drunken bishop" picture of the fingerprint (17×9 in a
    /// frame): a shape is easier to remember than digits.
    pub fn randomart(&self) -> String {
        const W: usize = 17;
        const H: usize = 9;
        const SYMBOLS: &[u8] = b" .o+=*BOX@%&#/^";
        let mut field = [[0u8; W]; H];
        let (mut x, mut y) = (W / 2, H / 2);
        let start = (x, y);
        for byte in self.0 {
            let mut b = byte;
            for _ in 0..4 {
                x = if b & 1 == 1 {
                    (x + 1).min(W - 1)
                } else {
                    x.saturating_sub(1)
                };
                y = if b & 2 == 2 {
                    (y + 1).min(H - 1)
                } else {
                    y.saturating_sub(1)
                };
                field[y][x] = field[y][x].saturating_add(1);
                b >>= 2;
            }
        }
        let mut out = String::from("+---[identity]----+\n");
        for (row, line) in field.iter().enumerate() {
            out.push('|');
            for (col, &n) in line.iter().enumerate() {
                out.push(if (col, row) == start {
                    'S'
                } else if (col, row) == (x, y) {
                    'E'
                } else {
                    SYMBOLS[(n as usize).min(SYMBOLS.len() - 1)] as char
                });
            }
            out.push_str("|\n");
        }
        out.push_str("+-----------------+");
        out
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the identity key signs in one handshake: a label, the transcript
/// (the room, both hellos) and the prover's own connection and signing
/// keys, so a signature can't be handed back to its maker as the other
/// side's (the transcript alone is the same on both sides).
fn binding(transcript: &[u8], prover_e: &[u8; 32], prover_s: &[u8; PUBLIC_LEN]) -> Vec<u8> {
    lp(&[
        b"streamflow/4 identity binding",
        transcript,
        prover_e,
        prover_s,
    ])
}

pub fn sign_binding(
    identity: &SigningIdentity,
    transcript: &[u8],
    prover_e: &[u8; 32],
    prover_s: &[u8; PUBLIC_LEN],
) -> [u8; SIGNATURE_LEN] {
    identity.sign(&binding(transcript, prover_e, prover_s))
}

pub fn verify_binding(
    identity: &[u8; PUBLIC_LEN],
    transcript: &[u8],
    prover_e: &[u8; 32],
    prover_s: &[u8; PUBLIC_LEN],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), BadSignature> {
    sign::verify(
        identity,
        &binding(transcript, prover_e, prover_s),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn bindings_hold_only_for_their_transcript_and_prover() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let alice = SigningIdentity::generate(&mut rng);
        let (e_a, e_m) = ([5u8; 32], [6u8; 32]);
        let (s_a, s_b) = ([1u8; 32], [2u8; 32]);
        let sig = sign_binding(&alice, b"transcript", &e_a, &s_a);
        assert!(verify_binding(&alice.public(), b"transcript", &e_a, &s_a, &sig).is_ok());
        assert!(verify_binding(&alice.public(), b"transcripT", &e_a, &s_a, &sig).is_err());
        // Reflected: the same signature as the other side's.
        assert!(verify_binding(&alice.public(), b"transcript", &e_a, &s_b, &sig).is_err());
        // Reflected by a peer whose hello names Alice's signing key under
        // its own connection key.
        assert!(verify_binding(&alice.public(), b"transcript", &e_m, &s_a, &sig).is_err());
        let mallory = SigningIdentity::generate(&mut rng);
        assert!(verify_binding(&mallory.public(), b"transcript", &e_a, &s_a, &sig).is_err());
    }

    #[test]
    fn fingerprints_print_stably() {
        let key = SigningIdentity::from_seed(&[7; 32]);
        let fp = Fingerprint::of(&key.public());
        assert_eq!(Fingerprint::parse_hex(&fp.hex()), Some(fp));
        assert_eq!(fp.short(), fp.hex()[..4]);
        assert_eq!(fp.prefix(6), fp.hex()[..6]);
        assert_eq!(fp.common_hex_digits(&fp), 64);
        let mut near = fp;
        near.0[3] ^= 0x01;
        assert_eq!(fp.common_hex_digits(&near), 7);
        assert_eq!(fp.grouped().split(' ').count(), 16);
        assert_eq!(fp.words().split(' ').count(), WORDS);
        let art = fp.randomart();
        assert_eq!(art.lines().count(), 11);
        assert!(art.lines().all(|l| l.chars().count() == 19), "{art}");
        assert!(art.contains('S') && art.contains('E'));
        // The seed round-trips.
        assert_eq!(
            SigningIdentity::from_seed(&key.seed()).public(),
            key.public()
        );
        assert_ne!(Fingerprint::of(&[8; 32]), fp);
    }
}
