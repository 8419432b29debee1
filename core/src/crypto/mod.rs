//! The crypto core (DESIGN.md §3). No I/O: the room state machine drives it.
//!
//! - [`kdf`]: passphrase → room key (Argon2id, HKDF).
//! - [`pairwise`]: hello, SPAKE2 + X25519 handshake, pairwise channels.
//! - [`sframe`]: RFC 9605 sender keys, seal, ratchet, KIDs.
//! - [`keyring`]: a receiver's key slots for one sender, open.
//! - [`identity`]: the long-lived identity key's fingerprint and what it signs.
//! - [`sign`]: per-sender Ed25519 signatures on everything sealed.
//! - [`replay`]: the 128-counter replay window.
//! - [`frame`]: the plaintext layout inside sender-key messages.
//! - [`safety`]: safety words.
//! - [`secret`]: zeroizing, redacted key type.
//! - [`wipe`]: keyed HKDF/HMAC state wiped on drop.

pub mod frame;
pub mod identity;
pub mod kdf;
pub mod keyring;
pub mod pairwise;
pub mod replay;
pub mod safety;
pub mod secret;
pub mod sframe;
pub mod sign;
pub mod wipe;
