//! Sender keys per RFC 9605 (SFrame), cipher suite AES_256_GCM_SHA512_128
//! (0x0005): each member seals everything it sends to the room under its own
//! base key; CTR = a per-key counter, nonce = salt XOR CTR, AAD = header ‖
//! metadata (here: room and the sender's X25519 key).
//!
//! KID = `generation << 16 | step`: a fresh random key starts a new
//! generation at step 0; the ratchet moves through the steps of one
//! generation. Receivers ratchet ahead only within the newest generation,
//! so a fresh key never shares a KID with a derived one
//! ([`super::keyring`]).

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use super::replay::ReplayError;
use super::secret::Key32;
use super::wipe::Wiped;

pub const SUITE: u16 = 0x0005;
const NK: usize = 32;
const NN: usize = 12;
pub const TAG_LEN: usize = 16;
/// Longest header: config byte + 8-byte KID + 8-byte CTR.
pub const MAX_HEADER_LEN: usize = 17;
/// How far ahead of a known epoch a receiver ratchets on its own. Bounds the
/// work a forged KID can cause.
pub const MAX_RATCHET_AHEAD: u64 = 64;
/// How long a superseded key still opens late frames before it is zeroized.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SframeError {
    #[error("malformed SFrame header")]
    Malformed,
    #[error("no key for this sender and epoch")]
    UnknownKey,
    #[error("authentication failed")]
    Auth,
    #[error("signature does not match the sender")]
    Signature,
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("counter already used with this key")]
    CounterReuse,
}

/// Bits of the KID that count ratchet steps within a generation.
pub const STEP_BITS: u32 = 16;
const STEP_MASK: u64 = (1 << STEP_BITS) - 1;

/// The KID of `step` in `generation`.
pub fn kid(generation: u64, step: u64) -> u64 {
    (generation << STEP_BITS) | (step & STEP_MASK)
}

/// The generation a KID belongs to (one per fresh key).
pub fn generation(kid: u64) -> u64 {
    kid >> STEP_BITS
}

/// `sframe_key` and `sframe_salt` for one (base key, KID) (RFC 9605 §4.4.2).
pub struct DerivedKey {
    cipher: Aes256Gcm,
    salt: [u8; NN],
}

impl DerivedKey {
    pub fn derive(base_key: &Key32, kid: u64) -> Self {
        let (key, salt) = derive_key_salt(base_key.expose(), kid);
        DerivedKey {
            cipher: Aes256Gcm::new(key.as_ref().into()),
            salt,
        }
    }

    fn nonce(&self, ctr: u64) -> [u8; NN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    fn seal(&self, kid: u64, ctr: u64, metadata: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let (header, hlen) = encode_header(kid, ctr);
        let header = &header[..hlen];
        let mut aad = Vec::with_capacity(hlen + metadata.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(metadata);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&self.nonce(ctr)),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message under 64 GiB");
        let mut out = Vec::with_capacity(hlen + ct.len());
        out.extend_from_slice(header);
        out.extend_from_slice(&ct);
        out
    }

    pub(super) fn open(
        &self,
        header: &[u8],
        ctr: u64,
        metadata: &[u8],
        ct: &[u8],
    ) -> Option<Vec<u8>> {
        let mut aad = Vec::with_capacity(header.len() + metadata.len());
        aad.extend_from_slice(header);
        aad.extend_from_slice(metadata);
        self.cipher
            .decrypt(
                Nonce::from_slice(&self.nonce(ctr)),
                Payload { msg: ct, aad: &aad },
            )
            .ok()
    }
}

/// RFC 9605 §4.4.2 for suite 0x0005 (HKDF-SHA512, Nk = 32, Nn = 12).
fn derive_key_salt(base_key: &[u8], kid: u64) -> (Zeroizing<[u8; NK]>, [u8; NN]) {
    let hk = Wiped::new(Hkdf::<Sha512>::new(Some(&[]), base_key));
    let mut key = Zeroizing::new([0u8; NK]);
    let mut salt = [0u8; NN];
    hk.expand(&label(b"SFrame 1.0 Secret key ", kid), key.as_mut())
        .expect("valid length");
    hk.expand(&label(b"SFrame 1.0 Secret salt ", kid), &mut salt)
        .expect("valid length");
    (key, salt)
}

fn label(prefix: &[u8], kid: u64) -> Vec<u8> {
    let mut l = prefix.to_vec();
    l.extend_from_slice(&kid.to_be_bytes());
    l.extend_from_slice(&SUITE.to_be_bytes());
    l
}

/// One step of the sender-key ratchet: one-way, so a joiner handed epoch n+1
/// can't compute epoch n.
pub fn ratchet(base_key: &Key32) -> Key32 {
    let hk = Wiped::new(Hkdf::<Sha256>::from_prk(base_key.expose()).expect("32-byte PRK"));
    let mut next = [0u8; 32];
    hk.expand(b"streamflow/1 sender key ratchet", &mut next)
        .expect("valid length");
    let key = Key32::from_bytes(next);
    zeroize::Zeroize::zeroize(&mut next);
    key
}

/// Encodes the SFrame header (RFC 9605 §4.3): `|X|K|Y|C|` then the optional
/// KID and CTR bytes, big-endian, minimal length.
pub fn encode_header(kid: u64, ctr: u64) -> ([u8; MAX_HEADER_LEN], usize) {
    let mut out = [0u8; MAX_HEADER_LEN];
    let mut len = 1;
    let mut config = 0u8;
    let mut field = |value: u64, flag: u8, shift: u32, out: &mut [u8; MAX_HEADER_LEN]| {
        if value < 8 {
            config |= (value as u8) << shift;
        } else {
            let n = 8 - (value.leading_zeros() / 8) as usize;
            config |= flag | (((n - 1) as u8) << shift);
            out[len..len + n].copy_from_slice(&value.to_be_bytes()[8 - n..]);
            len += n;
        }
    };
    field(kid, 0x80, 4, &mut out);
    field(ctr, 0x08, 0, &mut out);
    out[0] = config;
    (out, len)
}

/// Parses a header: (KID, CTR, header length).
pub fn parse_header(buf: &[u8]) -> Result<(u64, u64, usize), SframeError> {
    let config = *buf.first().ok_or(SframeError::Malformed)?;
    let mut pos = 1;
    let mut field = |extended: bool, bits: u8| -> Result<u64, SframeError> {
        if !extended {
            return Ok(u64::from(bits));
        }
        let n = usize::from(bits) + 1;
        let bytes = buf.get(pos..pos + n).ok_or(SframeError::Malformed)?;
        pos += n;
        Ok(bytes.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b)))
    };
    let kid = field(config & 0x80 != 0, (config >> 4) & 0x07)?;
    let ctr = field(config & 0x08 != 0, config & 0x07)?;
    Ok((kid, ctr, pos))
}

/// The key a member seals its own messages with.
pub struct SenderKey {
    kid: u64,
    base: Key32,
    derived: DerivedKey,
    next_ctr: u64,
}

impl SenderKey {
    pub fn new(kid: u64, base: Key32) -> Self {
        SenderKey {
            derived: DerivedKey::derive(&base, kid),
            kid,
            base,
            next_ctr: 0,
        }
    }

    /// A fresh random key opening the generation after this one's.
    pub fn fresh(&self, rng: &mut impl rand_core::CryptoRngCore) -> SenderKey {
        SenderKey::new(kid(generation(self.kid) + 1, 0), Key32::random(rng))
    }

    pub fn kid(&self) -> u64 {
        self.kid
    }

    pub fn base(&self) -> &Key32 {
        &self.base
    }

    /// True once anything was sealed under this key.
    pub fn has_sealed(&self) -> bool {
        self.next_ctr > 0
    }

    /// The next step by ratchet (members derive it themselves), if the
    /// generation has steps left (else make a fresh key).
    pub fn ratcheted(&self) -> Option<SenderKey> {
        (self.kid & STEP_MASK < STEP_MASK)
            .then(|| SenderKey::new(self.kid + 1, ratchet(&self.base)))
    }

    /// Seals with the next counter. Counters never repeat for one key.
    /// Length of the header the next [`SenderKey::seal`] will write (it
    /// grows with the counter and the key id).
    pub fn next_header_len(&self) -> usize {
        encode_header(self.kid, self.next_ctr).1
    }

    pub fn seal(&mut self, metadata: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let ctr = self.next_ctr;
        self.seal_at(ctr, metadata, plaintext)
            .expect("the next counter is always fresh")
    }

    /// Seals with an explicit counter, refusing one already used (or older).
    pub fn seal_at(
        &mut self,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SframeError> {
        if ctr < self.next_ctr || ctr == u64::MAX {
            return Err(SframeError::CounterReuse);
        }
        self.next_ctr = ctr + 1;
        Ok(self.derived.seal(self.kid, ctr, metadata, plaintext))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '\n'], "")).unwrap()
    }

    /// RFC 9605 Appendix C.4, cipher suite 0x0005, every intermediate value.
    #[test]
    fn rfc9605_appendix_c_suite_0005() {
        let kid = 0x123;
        let ctr = 0x4567;
        let base_key = h("000102030405060708090a0b0c0d0e0f");
        assert_eq!(
            label(b"SFrame 1.0 Secret key ", kid),
            h("534672616d6520312e3020536563726574206b65792000000000000001230005")
        );
        assert_eq!(
            label(b"SFrame 1.0 Secret salt ", kid),
            h("534672616d6520312e30205365637265742073616c742000000000000001230005")
        );
        let (prk, _) = Hkdf::<Sha512>::extract(Some(&[]), &base_key);
        assert_eq!(
            prk.to_vec(),
            h(
                "0fc3ea6de6aac97a35f194cf9bed94d4b5230f1cb45a785c9fe5dce9c188938a\
               b6ba005bc4c0a19181599e9d1bcf7b74aca48b60bf5e254e546d809313e083a3"
            )
        );
        let (key, salt) = derive_key_salt(&base_key, kid);
        assert_eq!(
            key.to_vec(),
            h("d3e27b0d4a5ae9e55df01a70e6d4d28d969b246e2936f4b7a5d9b494da6b9633")
        );
        assert_eq!(salt.to_vec(), h("84991c167b8cd23c93708ec7"));
        let metadata = h("4945544620534672616d65205747");
        let derived = DerivedKey {
            cipher: Aes256Gcm::new(key.as_ref().into()),
            salt,
        };
        assert_eq!(derived.nonce(ctr).to_vec(), h("84991c167b8cd23c9370cba0"));
        let (header, hlen) = encode_header(kid, ctr);
        let mut aad = header[..hlen].to_vec();
        aad.extend_from_slice(&metadata);
        assert_eq!(aad, h("99012345674945544620534672616d65205747"));
        let pt = h("64726166742d696574662d736672616d652d656e63");
        let ct = derived.seal(kid, ctr, &metadata, &pt);
        assert_eq!(
            ct,
            h("990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced279")
        );
        let opened = derived
            .open(&ct[..hlen], ctr, &metadata, &ct[hlen..])
            .unwrap();
        assert_eq!(opened, pt);
    }

    #[test]
    fn kids_split_into_generation_and_step() {
        assert_eq!(kid(3, 5), (3 << 16) | 5);
        assert_eq!(generation(kid(3, 5)), 3);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let k = SenderKey::new(kid(3, 5), Key32::from_bytes([1; 32]));
        assert_eq!(k.ratcheted().unwrap().kid(), kid(3, 6));
        assert_eq!(k.fresh(&mut rng).kid(), kid(4, 0));
        let last = SenderKey::new(kid(3, STEP_MASK), Key32::from_bytes([1; 32]));
        assert!(
            last.ratcheted().is_none(),
            "never ratchet into the next generation"
        );
    }

    #[test]
    fn header_round_trips_and_rejects_truncation() {
        for (kid, ctr) in [
            (0, 0),
            (7, 7),
            (8, 0),
            (0x1ff, 0xaaaa),
            (u64::MAX, u64::MAX),
        ] {
            let (buf, len) = encode_header(kid, ctr);
            assert_eq!(parse_header(&buf[..len]), Ok((kid, ctr, len)));
            for cut in 0..len {
                assert_eq!(parse_header(&buf[..cut]), Err(SframeError::Malformed));
            }
        }
        assert_eq!(encode_header(7, 0).1, 1);
        assert_eq!(encode_header(0x1ff, 0xaa), {
            let mut b = [0u8; MAX_HEADER_LEN];
            b[..4].copy_from_slice(&[0x98, 0x01, 0xff, 0xaa]);
            (b, 4)
        });
    }

    #[test]
    fn seal_refuses_a_reused_counter() {
        let mut tx = SenderKey::new(0, Key32::from_bytes([0x42; 32]));
        tx.seal_at(5, b"m", b"a").unwrap();
        assert_eq!(
            tx.seal_at(5, b"m", b"b").err(),
            Some(SframeError::CounterReuse)
        );
        assert_eq!(
            tx.seal_at(2, b"m", b"b").err(),
            Some(SframeError::CounterReuse)
        );
        assert!(tx.seal_at(6, b"m", b"b").is_ok());
    }

    /// Nonces are salt XOR counter under one key, so unique (KID, CTR) pairs
    /// mean unique (key, nonce) pairs: check a million seals.
    #[test]
    fn no_key_nonce_repeats_over_a_million_frames() {
        let mut tx = SenderKey::new(0, Key32::from_bytes([9; 32]));
        let mut seen = std::collections::HashSet::with_capacity(1 << 20);
        let probe = DerivedKey::derive(&Key32::from_bytes([0; 32]), 0);
        for i in 0..1_000_000u64 {
            if i % 250_000 == 0 && i > 0 {
                tx = tx.ratcheted().unwrap();
            }
            let sealed = tx.seal(b"", b"");
            let (kid, ctr, _) = parse_header(&sealed).unwrap();
            let nonce = probe.nonce(ctr);
            assert!(seen.insert((kid, nonce)), "repeat at {i}");
        }
    }
}
