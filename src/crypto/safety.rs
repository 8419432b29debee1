//! Safety words: 4 words (51 bits) over SHA-256(ROOM ‖ sorted (E, N) of all
//! verified members). Identical for honest members; they change only when
//! membership does. Reading them aloud catches a relay in the middle that
//! knows the passphrase.

use sha2::{Digest, Sha256};

use super::kdf::put_lp;
use super::pairwise::Hello;
use crate::wordlist;

pub fn safety_words(room: &str, members: &[Hello]) -> [&'static str; 4] {
    let mut parts: Vec<[u8; 48]> = members
        .iter()
        .map(|h| {
            let mut p = [0u8; 48];
            p[..32].copy_from_slice(&h.e);
            p[32..].copy_from_slice(&h.n);
            p
        })
        .collect();
    parts.sort();
    parts.dedup();
    let mut input = Vec::new();
    put_lp(&mut input, b"streamflow/1 safety words");
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
            v: 1,
            e: [b; 32],
            n: [b.wrapping_add(1); 16],
        }
    }

    #[test]
    fn order_independent_and_membership_sensitive() {
        let ab = safety_words("r", &[hello(1), hello(2)]);
        assert_eq!(ab, safety_words("r", &[hello(2), hello(1)]));
        assert_ne!(ab, safety_words("r", &[hello(1), hello(2), hello(3)]));
        assert_ne!(ab, safety_words("s", &[hello(1), hello(2)]));
        assert!(ab.iter().all(|w| wordlist::contains(w)));
    }
}
