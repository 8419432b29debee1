//! Safety words: 4 words over SHA-256(ROOM ‖ sorted (E, N, S) of the
//! members of one round). Identical for honest members; they change only
//! when membership does. Reading them aloud catches a relay in the middle
//! that knows the passphrase.
//!
//! What they are worth: 4 words from 7,772 are 51.7 bits. The room's
//! rounds ([`crate::room`]) make every value that goes into them committed
//! to before the values it is combined with were revealed, so a relay in
//! the middle gets one guess at the full width per round it forces: a
//! match with probability 2^-51.7 each time, never a search.

use sha2::{Digest, Sha256};

use super::kdf::put_lp;
use super::pairwise::Hello;
use crate::wordlist;

/// The full width of the words, in bits of the digest they come from.
pub const FULL_WIDTH: u32 = 256;

/// The words over `members`, from the first `bits` bits of the digest
/// only (tests narrow the width so that attacks on it finish; the words
/// are equal exactly when those bits are).
pub fn safety_words_bits(room: &str, members: &[Hello], bits: u32) -> [&'static str; 4] {
    let digest = digest(room, members);
    if bits >= FULL_WIDTH {
        return words_from(&digest);
    }
    let mut narrowed = [0u8; 32];
    for bit in 0..bits as usize {
        narrowed[bit / 8] |= digest[bit / 8] & (0x80 >> (bit % 8));
    }
    words_from(&Sha256::digest(narrowed).into())
}

pub fn safety_words(room: &str, members: &[Hello]) -> [&'static str; 4] {
    safety_words_bits(room, members, FULL_WIDTH)
}

fn digest(room: &str, members: &[Hello]) -> [u8; 32] {
    let mut parts: Vec<[u8; 80]> = members
        .iter()
        .map(|h| {
            let mut p = [0u8; 80];
            p[..32].copy_from_slice(&h.e);
            p[32..48].copy_from_slice(&h.n);
            p[48..].copy_from_slice(&h.s);
            p
        })
        .collect();
    parts.sort();
    parts.dedup();
    let mut input = Vec::new();
    put_lp(&mut input, b"streamflow/2 safety words");
    put_lp(&mut input, room.as_bytes());
    for p in &parts {
        put_lp(&mut input, p);
    }
    Sha256::digest(&input).into()
}

fn words_from(digest: &[u8; 32]) -> [&'static str; 4] {
    let words = wordlist::words();
    let mut out = [""; 4];
    for (i, chunk) in digest.chunks_exact(8).enumerate() {
        // 64 bits mod 7,772: bias below 2^-50.
        let v = u64::from_be_bytes(chunk.try_into().expect("8 bytes"));
        out[i] = words[(v % words.len() as u64) as usize];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(b: u8) -> Hello {
        Hello {
            v: 3,
            e: [b; 32],
            n: [b.wrapping_add(1); 16],
            s: [b.wrapping_add(2); 32],
        }
    }

    #[test]
    fn order_independent_and_membership_sensitive() {
        let ab = safety_words("r", &[hello(1), hello(2)]);
        assert_eq!(ab, safety_words("r", &[hello(2), hello(1)]));
        assert_ne!(ab, safety_words("r", &[hello(1), hello(2), hello(3)]));
        assert_ne!(ab, safety_words("s", &[hello(1), hello(2)]));
        assert!(ab.iter().all(|w| wordlist::contains(w)));
        // Every field of every member counts, signing key included.
        let other_s = Hello {
            s: [9; 32],
            ..hello(2)
        };
        assert_ne!(ab, safety_words("r", &[hello(1), other_s]));
    }

    #[test]
    fn narrowed_words_match_exactly_when_the_leading_bits_do() {
        let bits = 12;
        let (mut same, mut tries) = (0, 0);
        let a = safety_words_bits("r", &[hello(1), hello(2)], bits);
        for b in 3..=255u8 {
            tries += 1;
            let other = safety_words_bits("r", &[hello(1), hello(b)], bits);
            let leading = |h: &[u8; 32]| u16::from_be_bytes([h[0], h[1]]) >> 4;
            let equal_bits = leading(&digest("r", &[hello(1), hello(2)]))
                == leading(&digest("r", &[hello(1), hello(b)]));
            assert_eq!(other == a, equal_bits);
            same += usize::from(equal_bits);
        }
        assert!(same <= 2, "{same} of {tries} at 12 bits");
        assert_eq!(
            safety_words_bits("r", &[hello(1)], FULL_WIDTH),
            safety_words("r", &[hello(1)])
        );
    }
}
