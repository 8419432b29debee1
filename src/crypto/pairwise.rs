//! Pairwise channels between two members (DESIGN.md §3):
//! commitment to hello → hello {v, E, N, S} in the clear → symmetric SPAKE2
//! (password = psk, identity = transcript) → X25519 mixed in →
//! per-direction keys and a confirmation MAC.
//!
//! The relay sees commitments and hellos (fresh public keys and nonces,
//! nothing derived from the passphrase) and SPAKE2 messages, which give an
//! active attacker one online guess per run and no offline oracle. The X25519
//! exchange makes keys forward secret: a passphrase leaked later does not
//! open recorded calls. A member reveals its hello to a peer only once it
//! holds that peer's commitment, so nobody can pick its hello after seeing
//! the other's: what the safety words hash is fixed before it is known.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use x25519_dalek::{PublicKey, ReusableSecret};
use zeroize::Zeroizing;

use super::kdf::lp;
use super::replay::{ReplayError, ReplayWindow};
use super::secret::Key32;

/// 2: commitments before hellos, and the signing key in the hello.
pub const PROTOCOL_VERSION: u8 = 2;
pub const SPAKE2_MSG_LEN: usize = 33;
pub const CONFIRM_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PairwiseError {
    #[error("SPAKE2 message rejected")]
    BadPake,
    #[error("peer's X25519 key is not contributory")]
    NonContributory,
    #[error("authentication failed")]
    Auth,
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

/// What a member reveals to each peer once it holds the peer's
/// commitment: a fresh X25519 key and nonce, and its signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub v: u8,
    pub e: [u8; 32],
    pub n: [u8; 16],
    /// Ed25519 public key the member signs its frames with.
    pub s: [u8; 32],
}

impl Hello {
    /// `SHA-256(lp("streamflow/2 commit" ‖ v ‖ E ‖ N ‖ S))`: sent first;
    /// the hello later must match it.
    pub fn commitment(&self) -> [u8; 32] {
        use sha2::Digest;
        Sha256::digest(lp(&[
            b"streamflow/2 commit",
            &[self.v],
            &self.e,
            &self.n,
            &self.s,
        ]))
        .into()
    }
}

/// This member's ephemeral identity for one connection. A reconnect makes a
/// new one (the signing key stays, see [`super::sign`]).
pub struct LocalIdentity {
    secret: ReusableSecret,
    hello: Hello,
}

impl LocalIdentity {
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore, signing_key: [u8; 32]) -> Self {
        let secret = ReusableSecret::random_from_rng(&mut *rng);
        let mut n = [0u8; 16];
        rng.fill_bytes(&mut n);
        let e = PublicKey::from(&secret).to_bytes();
        LocalIdentity {
            secret,
            hello: Hello {
                v: PROTOCOL_VERSION,
                e,
                n,
                s: signing_key,
            },
        }
    }

    pub fn hello(&self) -> Hello {
        self.hello
    }

    pub fn public(&self) -> [u8; 32] {
        self.hello.e
    }
}

/// `T = lp(v ‖ ROOM ‖ sort(E_A‖N_A‖S_A, E_B‖N_B‖S_B))`: the same bytes on
/// both sides; binds each side's signing key into the handshake.
pub fn transcript(room: &str, a: &Hello, b: &Hello) -> Vec<u8> {
    let part = |h: &Hello| {
        let mut p = Vec::with_capacity(80);
        p.extend_from_slice(&h.e);
        p.extend_from_slice(&h.n);
        p.extend_from_slice(&h.s);
        p
    };
    let (pa, pb) = (part(a), part(b));
    let (first, second) = if pa <= pb { (pa, pb) } else { (pb, pa) };
    lp(&[&[a.v.min(b.v)], room.as_bytes(), &first, &second])
}

/// One side of a handshake in progress: SPAKE2 started, waiting for the
/// peer's SPAKE2 message.
pub struct Handshake {
    spake: Spake2<Ed25519Group>,
    transcript: Vec<u8>,
    mine: [u8; 32],
    theirs: [u8; 32],
}

impl Handshake {
    /// Starts SPAKE2 with the peer whose hello we hold; returns the message to
    /// send it.
    pub fn start(
        me: &LocalIdentity,
        peer: &Hello,
        room: &str,
        psk: &Key32,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> (Handshake, Vec<u8>) {
        let transcript = transcript(room, &me.hello, peer);
        // spake2 copies the password into its state (`Password` and the
        // `Spake2` struct hold a Vec) and does not wipe it when dropped: a
        // copy of the psk lives on the heap until the handshake finishes
        // and its allocation is reused. The crate offers no way around it.
        let (spake, msg) = Spake2::<Ed25519Group>::start_symmetric_with_rng(
            &Password::new(psk.expose()),
            &Identity::new(&transcript),
            &mut *rng,
        );
        (
            Handshake {
                spake,
                transcript,
                mine: me.hello.e,
                theirs: peer.e,
            },
            msg,
        )
    }

    /// Completes the handshake with the peer's SPAKE2 message: derives the
    /// channel and the confirmation MAC to send.
    pub fn finish(
        self,
        me: &LocalIdentity,
        their_msg: &[u8],
    ) -> Result<(PairwiseChannel, [u8; CONFIRM_LEN]), PairwiseError> {
        let spake_key = Zeroizing::new(
            self.spake
                .finish(their_msg)
                .map_err(|_| PairwiseError::BadPake)?,
        );
        let dh = me.secret.diffie_hellman(&PublicKey::from(self.theirs));
        if !dh.was_contributory() {
            return Err(PairwiseError::NonContributory);
        }
        let hk = Hkdf::<Sha256>::new(Some(&spake_key), dh.as_bytes());
        let expand = |label: &[u8], e: &[u8; 32]| {
            let mut k = [0u8; 32];
            hk.expand(&lp(&[label, &self.transcript, e]), &mut k)
                .expect("valid length");
            let key = Key32::from_bytes(k);
            zeroize::Zeroize::zeroize(&mut k);
            key
        };
        let send_key = expand(b"streamflow/1 key", &self.mine);
        let recv_key = expand(b"streamflow/1 key", &self.theirs);
        let my_confirm_key = expand(b"streamflow/1 confirm", &self.mine);
        let their_confirm_key = expand(b"streamflow/1 confirm", &self.theirs);
        let confirm = confirm_mac(&my_confirm_key, &self.transcript, &self.mine);
        Ok((
            PairwiseChannel {
                send: Aes256Gcm::new(send_key.expose().into()),
                recv: Aes256Gcm::new(recv_key.expose().into()),
                send_ctr: 0,
                recv_window: ReplayWindow::default(),
                their_confirm_key,
                transcript: self.transcript,
                mine: self.mine,
                theirs: self.theirs,
            },
            confirm,
        ))
    }
}

fn confirm_mac(key: &Key32, transcript: &[u8], e: &[u8; 32]) -> [u8; CONFIRM_LEN] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("any key length");
    mac.update(&lp(&[b"confirm", transcript, e]));
    mac.finalize().into_bytes().into()
}

/// An established pairwise channel: AES-256-GCM per direction, 96-bit
/// counter nonces that never reset for a live key.
pub struct PairwiseChannel {
    send: Aes256Gcm,
    recv: Aes256Gcm,
    send_ctr: u64,
    recv_window: ReplayWindow,
    their_confirm_key: Key32,
    transcript: Vec<u8>,
    mine: [u8; 32],
    theirs: [u8; 32],
}

impl PairwiseChannel {
    /// Checks the peer's confirmation MAC in constant time.
    pub fn verify_confirm(&self, mac: &[u8]) -> Result<(), PairwiseError> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.their_confirm_key.expose())
            .expect("any key length");
        m.update(&lp(&[b"confirm", &self.transcript, &self.theirs]));
        m.verify_slice(mac).map_err(|_| PairwiseError::Auth)
    }

    pub fn their_public(&self) -> [u8; 32] {
        self.theirs
    }

    fn nonce(ctr: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&ctr.to_be_bytes());
        n
    }

    /// Seals `plaintext` as message type `kind`; returns (counter, ciphertext).
    pub fn seal(&mut self, kind: u8, plaintext: &[u8]) -> (u64, Vec<u8>) {
        let ctr = self.send_ctr;
        self.send_ctr = ctr.checked_add(1).expect("2^64 pairwise messages");
        let aad = lp(&[&[kind], &self.transcript, &self.mine]);
        let ct = self
            .send
            .encrypt(
                Nonce::from_slice(&Self::nonce(ctr)),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("AES-GCM seals any message under 64 GiB");
        (ctr, ct)
    }

    pub fn open(&mut self, kind: u8, ctr: u64, ct: &[u8]) -> Result<Vec<u8>, PairwiseError> {
        self.recv_window.check(ctr)?;
        let aad = lp(&[&[kind], &self.transcript, &self.theirs]);
        let pt = self
            .recv
            .decrypt(
                Nonce::from_slice(&Self::nonce(ctr)),
                Payload { msg: ct, aad: &aad },
            )
            .map_err(|_| PairwiseError::Auth)?;
        self.recv_window.commit(ctr);
        Ok(pt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    type Finished = Result<(PairwiseChannel, [u8; 32]), PairwiseError>;

    fn psk(b: u8) -> Key32 {
        Key32::from_bytes([b; 32])
    }

    fn handshake(
        rng: &mut ChaCha20Rng,
        psk_a: &Key32,
        psk_b: &Key32,
    ) -> (LocalIdentity, LocalIdentity, Finished, Finished) {
        let a = LocalIdentity::generate(rng, [1; 32]);
        let b = LocalIdentity::generate(rng, [2; 32]);
        let (ha, ma) = Handshake::start(&a, &b.hello(), "room", psk_a, rng);
        let (hb, mb) = Handshake::start(&b, &a.hello(), "room", psk_b, rng);
        let ra = ha.finish(&a, &mb);
        let rb = hb.finish(&b, &ma);
        (a, b, ra, rb)
    }

    #[test]
    fn same_passphrase_confirms_and_directions_differ() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (_, _, ra, rb) = handshake(&mut rng, &psk(7), &psk(7));
        let (mut ca, confirm_a) = ra.unwrap();
        let (mut cb, confirm_b) = rb.unwrap();
        assert!(cb.verify_confirm(&confirm_a).is_ok());
        assert!(ca.verify_confirm(&confirm_b).is_ok());
        assert_ne!(confirm_a, confirm_b);
        let (ctr, ct) = ca.seal(9, b"hi b");
        assert_eq!(cb.open(9, ctr, &ct).unwrap(), b"hi b");
        // k_A→B ≠ k_B→A: B's own sealing key does not open what A sealed.
        let (ctr_b, ct_b) = cb.seal(9, b"hi b");
        assert_ne!(ct_b, ct);
        assert_eq!(ctr_b, ctr);
        // Replays and wrong types are rejected.
        assert_eq!(
            cb.open(9, ctr, &ct),
            Err(PairwiseError::Replay(ReplayError::Replay))
        );
        let (ctr2, ct2) = ca.seal(9, b"x");
        assert_eq!(cb.open(8, ctr2, &ct2), Err(PairwiseError::Auth));
    }

    #[test]
    fn wrong_passphrase_fails_confirmation() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let (_, _, ra, rb) = handshake(&mut rng, &psk(7), &psk(8));
        let (ca, confirm_a) = ra.unwrap();
        let (cb, confirm_b) = rb.unwrap();
        assert_eq!(cb.verify_confirm(&confirm_a), Err(PairwiseError::Auth));
        assert_eq!(ca.verify_confirm(&confirm_b), Err(PairwiseError::Auth));
    }

    #[test]
    fn garbage_pake_message_is_an_error_not_a_panic() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a = LocalIdentity::generate(&mut rng, [1; 32]);
        let b = LocalIdentity::generate(&mut rng, [2; 32]);
        // (A well-formed but wrong message can't be detected by SPAKE2 itself;
        // it yields a different key and fails at confirmation.)
        for msg in [vec![], vec![0x41; 33], vec![0x53; 5], vec![0xff; 40]] {
            let (ha, _) = Handshake::start(&a, &b.hello(), "room", &psk(1), &mut rng);
            assert!(ha.finish(&a, &msg).is_err());
        }
    }

    #[test]
    fn low_order_peer_key_is_rejected() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let a = LocalIdentity::generate(&mut rng, [1; 32]);
        let b = LocalIdentity::generate(&mut rng, [2; 32]);
        let evil = Hello {
            e: [0u8; 32],
            ..b.hello()
        };
        let (ha, _) = Handshake::start(&a, &evil, "room", &psk(1), &mut rng);
        let (_, mb) = Handshake::start(&b, &a.hello(), "room", &psk(1), &mut rng);
        assert_eq!(
            ha.finish(&a, &mb).err(),
            Some(PairwiseError::NonContributory)
        );
    }

    #[test]
    fn transcript_is_order_independent_and_length_prefixed() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let a = LocalIdentity::generate(&mut rng, [1; 32]).hello();
        let b = LocalIdentity::generate(&mut rng, [2; 32]).hello();
        assert_eq!(transcript("r", &a, &b), transcript("r", &b, &a));
        assert_ne!(transcript("r", &a, &b), transcript("s", &a, &b));
        // The signing key is part of it.
        let b2 = Hello { s: [3; 32], ..b };
        assert_ne!(transcript("r", &a, &b), transcript("r", &a, &b2));
    }

    #[test]
    fn commitments_bind_every_field() {
        let h = Hello {
            v: PROTOCOL_VERSION,
            e: [1; 32],
            n: [2; 16],
            s: [3; 32],
        };
        let c = h.commitment();
        for other in [
            Hello { v: 1, ..h },
            Hello { e: [9; 32], ..h },
            Hello { n: [9; 16], ..h },
            Hello { s: [9; 32], ..h },
        ] {
            assert_ne!(other.commitment(), c);
        }
        assert_eq!(h.commitment(), c);
    }

    /// RFC 7748 §5.2: X25519 known answers, through the crate we use.
    #[test]
    fn x25519_rfc7748_vectors() {
        let cases = [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
            ),
        ];
        for (scalar, u, out) in cases {
            let k: [u8; 32] = hex::decode(scalar).unwrap().try_into().unwrap();
            let u: [u8; 32] = hex::decode(u).unwrap().try_into().unwrap();
            assert_eq!(hex::encode(x25519_dalek::x25519(k, u)), out);
        }
        // §5.2 iterated, one round: k = u = the base point.
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert_eq!(
            hex::encode(x25519_dalek::x25519(nine, nine)),
            "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
        );
    }

    /// Frozen (protocol 2): a full two-party handshake from a seeded RNG.
    /// Any silent change of labels, transcript layout or key schedule fails
    /// here.
    #[test]
    fn frozen_two_party_handshake() {
        let mut rng = ChaCha20Rng::seed_from_u64(2024);
        let psk = Key32::from_bytes([0x5a; 32]);
        let a = LocalIdentity::generate(&mut rng, [0xa1; 32]);
        let b = LocalIdentity::generate(&mut rng, [0xb2; 32]);
        let (ha, ma) = Handshake::start(&a, &b.hello(), "k7f3m2q9xw4hd8ta", &psk, &mut rng);
        let (hb, mb) = Handshake::start(&b, &a.hello(), "k7f3m2q9xw4hd8ta", &psk, &mut rng);
        let (mut ca, confirm_a) = ha.finish(&a, &mb).unwrap();
        let (mut cb, confirm_b) = hb.finish(&b, &ma).unwrap();
        let (ctr, sealed) = ca.seal(1, b"frozen");
        let got = [
            hex::encode(a.hello().e),
            hex::encode(a.hello().n),
            hex::encode(a.hello().commitment()),
            hex::encode(&ma),
            hex::encode(confirm_a),
            hex::encode(confirm_b),
            hex::encode(&sealed),
        ];
        assert_eq!(got, FROZEN_HANDSHAKE, "got {got:#?}");
        assert_eq!(cb.open(1, ctr, &sealed).unwrap(), b"frozen");
        assert!(cb.verify_confirm(&confirm_a).is_ok());
    }

    const FROZEN_HANDSHAKE: [&str; 7] = [
        "3d2f5d8f77d00adf4ea03f35b36cd9e1c6bcc4e7230ee0346d6b2c471eb0af66",
        "d0396850d2f9ebf47cfc73cf63d3f7bb",
        "f65949bf163548561f15fa3ed21830a014195be77dcbee7a2bec925b4d3b55a5",
        "5323586a4d244459730db013a008f75d6499e3f6893c2b36dc568f480ca668ff9a",
        "97c9a71ddd84e00ce1546217dfa97ea018543aef54f9fa93733e59234773326f",
        "949230314f47895b6fe6a0b6884326ba20f7d0db11b40057775079abc0d60ab6",
        "4b810532c3f2c1f1270d92bab82b6e25465b1a5e633f",
    ];
}
