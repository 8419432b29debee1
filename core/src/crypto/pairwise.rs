//! Pairwise channels between two members (DESIGN.md §3):
//! commitment to hello → hello {v, E, N, S} in the clear → symmetric SPAKE2
//! (password = psk, identity = transcript) → X25519 mixed in →
//! per-direction keys, a confirmation MAC, and a signature by S over the
//! transcript inside the channel (S is proven, never merely claimed).
//!
//! The relay sees commitments and hellos (public keys and nonces, nothing
//! derived from the passphrase) and SPAKE2 messages, which give an active
//! attacker one online guess per run and no offline oracle. The X25519
//! exchange makes keys forward secret: a passphrase leaked later does not
//! open recorded calls.
//!
//! E is one key per connection; N is drawn afresh for every round of the
//! room's commit-then-reveal protocol ([`crate::room`]), so a hello, once
//! revealed, is never reused: the next round has a new N, a new commitment
//! and a new handshake. Pairwise messages are addressed by the two N's, so
//! nothing from one round can be taken for another's.

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
use super::sign::{self, SigningIdentity, SIGNATURE_LEN};
use super::wipe::Wiped;

/// 3: a fresh N per round, messages addressed by N, signing keys proven.
pub const PROTOCOL_VERSION: u8 = 3;
pub const SPAKE2_MSG_LEN: usize = 33;
pub const CONFIRM_LEN: usize = 32;
pub const NONCE_LEN: usize = 16;

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

/// What a member reveals once it holds the commitments of its round: its
/// connection's X25519 key, this round's nonce, and its signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    pub v: u8,
    pub e: [u8; 32],
    pub n: [u8; NONCE_LEN],
    /// Ed25519 public key the member signs its frames with.
    pub s: [u8; 32],
}

impl Hello {
    /// `SHA-256(lp("streamflow/3 commit" ‖ v ‖ E ‖ N ‖ S))`: sent first;
    /// the hello later must match it. N is 128 random bits, so the
    /// commitment hides the hello until it is revealed.
    pub fn commitment(&self) -> [u8; 32] {
        use sha2::Digest;
        Sha256::digest(lp(&[
            b"streamflow/3 commit",
            &[self.v],
            &self.e,
            &self.n,
            &self.s,
        ]))
        .into()
    }
}

/// This member's ephemeral identity for one connection: an X25519 key for
/// the whole connection, and a nonce renewed every round. A reconnect
/// makes a new one (the signing key stays, see [`super::sign`]).
pub struct LocalIdentity {
    secret: ReusableSecret,
    hello: Hello,
}

impl LocalIdentity {
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore, signing_key: [u8; 32]) -> Self {
        let secret = ReusableSecret::random_from_rng(&mut *rng);
        let e = PublicKey::from(&secret).to_bytes();
        let mut me = LocalIdentity {
            secret,
            hello: Hello {
                v: PROTOCOL_VERSION,
                e,
                n: [0; NONCE_LEN],
                s: signing_key,
            },
        };
        me.renew(rng);
        me
    }

    /// A new round: a fresh nonce, so a new hello and a new commitment.
    pub fn renew(&mut self, rng: &mut impl rand_core::CryptoRngCore) {
        rng.fill_bytes(&mut self.hello.n);
    }

    /// Tests that model an attacker searching for its values set N directly.
    #[cfg(test)]
    pub fn set_nonce(&mut self, n: [u8; NONCE_LEN]) {
        self.hello.n = n;
    }

    pub fn hello(&self) -> Hello {
        self.hello
    }

    pub fn public(&self) -> [u8; 32] {
        self.hello.e
    }
}

/// `T = lp(v ‖ ROOM ‖ sort(E_A‖N_A‖S_A, E_B‖N_B‖S_B))`: the same bytes on
/// both sides; binds each side's signing key and round nonce into the
/// handshake.
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

/// What a member's proof of its signing key covers: a label, the
/// handshake transcript (unique to this pair and round) and the prover's
/// own connection and signing keys (the transcript is the same on both
/// sides: without them, a peer whose hello named our signing key could
/// hand our proof back to us as its own).
fn proof_message(transcript: &[u8], prover: &Hello) -> Vec<u8> {
    lp(&[b"streamflow/4 proof", transcript, &prover.e, &prover.s])
}

/// One side of a handshake in progress: SPAKE2 started, waiting for the
/// peer's SPAKE2 message.
pub struct Handshake {
    spake: Spake2<Ed25519Group>,
    transcript: Vec<u8>,
    mine: Hello,
    theirs: Hello,
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
                mine: me.hello,
                theirs: *peer,
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
        let dh = me.secret.diffie_hellman(&PublicKey::from(self.theirs.e));
        if !dh.was_contributory() {
            return Err(PairwiseError::NonContributory);
        }
        let hk = Wiped::new(Hkdf::<Sha256>::new(Some(&spake_key), dh.as_bytes()));
        let expand = |label: &[u8], e: &[u8; 32]| {
            let mut k = Zeroizing::new([0u8; 32]);
            hk.expand(&lp(&[label, &self.transcript, e]), k.as_mut())
                .expect("valid length");
            Key32::from_bytes(*k)
        };
        let (mine, theirs) = (self.mine.e, self.theirs.e);
        let send_key = expand(b"streamflow/3 key", &mine);
        let recv_key = expand(b"streamflow/3 key", &theirs);
        let my_confirm_key = expand(b"streamflow/3 confirm", &mine);
        let their_confirm_key = expand(b"streamflow/3 confirm", &theirs);
        let confirm = confirm_mac(&my_confirm_key, &self.transcript, &mine);
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
    let mut mac =
        Wiped::new(<Hmac<Sha256> as Mac>::new_from_slice(key.expose()).expect("any key length"));
    mac.update(&lp(&[b"confirm", transcript, e]));
    mac.finalize_reset().into_bytes().into()
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
    mine: Hello,
    theirs: Hello,
}

impl PairwiseChannel {
    /// Checks the peer's confirmation MAC in constant time.
    pub fn verify_confirm(&self, mac: &[u8]) -> Result<(), PairwiseError> {
        let mut m = Wiped::new(
            <Hmac<Sha256> as Mac>::new_from_slice(self.their_confirm_key.expose())
                .expect("any key length"),
        );
        m.update(&lp(&[b"confirm", &self.transcript, &self.theirs.e]));
        m.verify_slice_reset(mac).map_err(|_| PairwiseError::Auth)
    }

    /// Our signature over this channel's transcript: proves we hold the
    /// signing key our hello named. Sent sealed, inside the channel.
    pub fn prove(&self, signing: &SigningIdentity) -> [u8; SIGNATURE_LEN] {
        signing.sign(&proof_message(&self.transcript, &self.mine))
    }

    /// Checks the peer's proof against the signing key its hello named.
    pub fn verify_proof(&self, signature: &[u8; SIGNATURE_LEN]) -> Result<(), PairwiseError> {
        sign::verify(
            &self.theirs.s,
            &proof_message(&self.transcript, &self.theirs),
            signature,
        )
        .map_err(|_| PairwiseError::Auth)
    }

    /// Our identity key's signature on this channel (see
    /// [`super::identity`]).
    pub fn prove_identity(&self, identity: &SigningIdentity) -> [u8; SIGNATURE_LEN] {
        super::identity::sign_binding(identity, &self.transcript, &self.mine.e, &self.mine.s)
    }

    /// Checks the peer's identity key's signature on this channel.
    pub fn verify_identity(
        &self,
        identity: &[u8; 32],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<(), PairwiseError> {
        super::identity::verify_binding(
            identity,
            &self.transcript,
            &self.theirs.e,
            &self.theirs.s,
            signature,
        )
        .map_err(|_| PairwiseError::Auth)
    }

    /// The peer's hello this channel was made with.
    pub fn theirs(&self) -> &Hello {
        &self.theirs
    }

    /// Our hello this channel was made with.
    pub fn mine(&self) -> &Hello {
        &self.mine
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
        let aad = lp(&[&[kind], &self.transcript, &self.mine.e]);
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
        let aad = lp(&[&[kind], &self.transcript, &self.theirs.e]);
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

    use crate::crypto::sign::SigningIdentity;

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

    /// A member proves its signing key inside the channel: the proof is a
    /// signature over this pair's transcript, so another member's proof
    /// (over another transcript) or a claimed key without its secret half
    /// fails.
    #[test]
    fn signing_keys_are_proven_not_claimed() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let alice_s = SigningIdentity::generate(&mut rng);
        let bob_s = SigningIdentity::generate(&mut rng);
        let mallory_s = SigningIdentity::generate(&mut rng);
        let a = LocalIdentity::generate(&mut rng, alice_s.public());
        let b = LocalIdentity::generate(&mut rng, bob_s.public());
        // Mallory claims Bob's signing key in her hello.
        let m = LocalIdentity::generate(&mut rng, bob_s.public());
        let pair = |x: &LocalIdentity, y: &LocalIdentity, rng: &mut ChaCha20Rng| {
            let (hx, mx) = Handshake::start(x, &y.hello(), "room", &psk(1), rng);
            let (hy, my) = Handshake::start(y, &x.hello(), "room", &psk(1), rng);
            (hx.finish(x, &my).unwrap().0, hy.finish(y, &mx).unwrap().0)
        };
        let (at_alice, at_bob) = pair(&a, &b, &mut rng);
        assert!(at_alice.verify_proof(&at_bob.prove(&bob_s)).is_ok());
        assert!(at_bob.verify_proof(&at_alice.prove(&alice_s)).is_ok());
        let (alice_with_m, m_with_alice) = pair(&a, &m, &mut rng);
        // Mallory can only sign with her own key, or replay Bob's proof
        // from his channel with Alice: neither opens her claim.
        assert!(alice_with_m
            .verify_proof(&m_with_alice.prove(&mallory_s))
            .is_err());
        assert!(alice_with_m.verify_proof(&at_bob.prove(&bob_s)).is_err());
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

    /// Frozen (protocol 3): a full two-party handshake from a seeded RNG.
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
        "9bde96ea7ed1ec742294d9a614bdce7022384b3dee6b9cdfd8cd86f139fd01b1",
        "5323586a4d244459730db013a008f75d6499e3f6893c2b36dc568f480ca668ff9a",
        "64b866bcaff697723037cb3e462fac29f87a96a2ac8b2a505201dffe423c5f30",
        "f563bf52645c1b03a3449ba22166bd0989b53ee05bc8b524210cd610c533e6b3",
        "d2199fc5d0992c738b30bb7f0ce7c834671ae60e6748",
    ];
}
