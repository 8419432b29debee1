//! Safety words: 4 words over SHA-256(ROOM ‖ sorted (E, N, S) of all
//! verified members). Identical for honest members; they change only when
//! membership does. Reading them aloud catches a relay in the middle that
//! knows the passphrase.
//!
//! What they are worth: 4 words from 7,772 are 51.7 bits. Every member
//! commits to its (E, N, S) before it sees a peer's ([`super::pairwise`]),
//! so a relay in the middle must fix what it shows each victim before it
//! learns that victim's values. The best it can do is learn one side's
//! words and then search for values that give the other side the same
//! words: a second-preimage search of about 2^51 hashes per attempt, one
//! attempt per run (a failure shows different words), never a birthday
//! search over both sides at once.

use sha2::{Digest, Sha256};

use super::kdf::put_lp;
use super::pairwise::Hello;
use crate::wordlist;

pub fn safety_words(room: &str, members: &[Hello]) -> [&'static str; 4] {
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
    let digest = Sha256::digest(&input);
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
            v: 2,
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
}
