//! Per-sender authenticity (DESIGN.md §3): sender keys are shared with
//! every member, so any member could seal a frame that opens as someone
//! else's. Each member therefore also holds an Ed25519 signing key, made
//! fresh when it starts (kept across reconnects, so the members it was in a
//! call with can be recognised when they come back), whose public half is
//! committed to and bound into every pairwise handshake transcript; and it
//! signs everything it seals. Receivers check the signature against the key
//! the handshake authenticated before accepting anything as that member's.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

use super::kdf::lp;

pub const PUBLIC_LEN: usize = 32;
pub const SIGNATURE_LEN: usize = 64;

/// This member's signing key: wiped on drop (ed25519-dalek's `zeroize`),
/// never printed.
pub struct SigningIdentity {
    key: SigningKey,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningIdentity(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bad signature")]
pub struct BadSignature;

impl SigningIdentity {
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        SigningIdentity {
            key: SigningKey::generate(rng),
        }
    }

    /// From a stored 32-byte seed (the identity file).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningIdentity {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The 32-byte seed, to store (wiped when the caller drops it).
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.key.to_bytes())
    }

    pub fn public(&self) -> [u8; PUBLIC_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs `message` (already labelled by the caller).
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.key.sign(message).to_bytes()
    }

    /// Signs a sealed frame of ours.
    pub fn sign_frame(
        &self,
        room: &str,
        sender_e: &[u8; 32],
        sealed: &[u8],
    ) -> [u8; SIGNATURE_LEN] {
        self.sign(&frame_message(room, sender_e, sealed))
    }
}

/// A short tag for a signing key (4 hex digits): tells apart members who
/// chose the same name (`alice·3f2a`). Not a fingerprint to verify
/// anything by: 16 bits, chosen by whoever made the key.
pub fn short_tag(public: &[u8; PUBLIC_LEN]) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(lp(&[b"streamflow/3 tag", public]));
    format!("{:02x}{:02x}", h[0], h[1])
}

/// What a frame signature covers: a label, the room, the sender's X25519
/// key for this session (so a signature can't be moved to another room or
/// session) and the sealed bytes, header included.
fn frame_message(room: &str, sender_e: &[u8; 32], sealed: &[u8]) -> Vec<u8> {
    lp(&[b"streamflow/2 frame", room.as_bytes(), sender_e, sealed])
}

/// Checks `signature` on a sealed frame against the sender's public key.
pub fn verify_frame(
    public: &[u8; PUBLIC_LEN],
    room: &str,
    sender_e: &[u8; 32],
    sealed: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), BadSignature> {
    verify(public, &frame_message(room, sender_e, sealed), signature)
}

/// Checks `signature` on `message` (strict: no malleable or small-order
/// encodings).
pub fn verify(
    public: &[u8; PUBLIC_LEN],
    message: &[u8],
    signature: &[u8; SIGNATURE_LEN],
) -> Result<(), BadSignature> {
    let key = VerifyingKey::from_bytes(public).map_err(|_| BadSignature)?;
    let sig = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &sig).map_err(|_| BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn signatures_bind_room_session_and_bytes() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let alice = SigningIdentity::generate(&mut rng);
        let mallory = SigningIdentity::generate(&mut rng);
        let e = [7u8; 32];
        let sig = alice.sign_frame("room", &e, b"sealed");
        assert!(verify_frame(&alice.public(), "room", &e, b"sealed", &sig).is_ok());
        assert!(verify_frame(&alice.public(), "room", &e, b"sealeD", &sig).is_err());
        assert!(verify_frame(&alice.public(), "roon", &e, b"sealed", &sig).is_err());
        assert!(verify_frame(&alice.public(), "room", &[8; 32], b"sealed", &sig).is_err());
        // Another member's key doesn't make Alice's signature.
        let forged = mallory.sign_frame("room", &e, b"sealed");
        assert!(verify_frame(&alice.public(), "room", &e, b"sealed", &forged).is_err());
        // Junk keys and signatures are errors, not panics.
        assert!(verify_frame(&[0xff; 32], "room", &e, b"x", &[0; 64]).is_err());
    }

    /// RFC 8032 §7.1, test 2, through the crate we use.
    #[test]
    fn ed25519_rfc8032_vector() {
        let sk: [u8; 32] =
            hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
                .unwrap()
                .try_into()
                .unwrap();
        let key = SigningKey::from_bytes(&sk);
        assert_eq!(
            hex::encode(key.verifying_key().to_bytes()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        assert_eq!(
            hex::encode(key.sign(&[0x72]).to_bytes()),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }
}
