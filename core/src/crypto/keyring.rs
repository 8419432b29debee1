//! A receiver's keys for one remote sender, by KID (DESIGN.md §3 "Key
//! slots").
//!
//! - A key delivered pairwise (authenticated by the sender itself) always
//!   takes its slot, replacing one derived by ratcheting there (and what was
//!   derived from that one).
//! - Ratcheting ahead happens only from the newest key, within its
//!   generation, and only once a frame's tag (and the caller's check of its
//!   signature) verifies: a frame can neither revive an older key nor reach
//!   across a fresh key.
//! - When a newer key arrives, every older one has [`GRACE`] left to open
//!   late frames, then it is dropped (and zeroized).

use crate::time::Instant;
use std::collections::BTreeMap;

use super::replay::ReplayWindow;
use super::secret::Key32;
use super::sframe::{
    generation, parse_header, ratchet, DerivedKey, SframeError, GRACE, MAX_RATCHET_AHEAD, TAG_LEN,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// Handed to us by the sender over the pairwise channel.
    Delivered,
    /// Computed by ratcheting from a delivered key.
    Derived,
}

struct Slot {
    base: Key32,
    derived: DerivedKey,
    window: ReplayWindow,
    origin: Origin,
    /// Set once a newer key exists: opens late frames until then.
    retire_at: Option<Instant>,
}

impl Slot {
    fn new(kid: u64, base: Key32, origin: Origin) -> Self {
        Slot {
            derived: DerivedKey::derive(&base, kid),
            base,
            window: ReplayWindow::default(),
            origin,
            retire_at: None,
        }
    }
}

/// A successfully opened frame.
#[derive(Debug)]
pub struct Opened {
    pub kid: u64,
    pub ctr: u64,
    pub plaintext: Vec<u8>,
}

/// The keys of one remote sender, by KID.
#[derive(Default)]
pub struct SenderKeyring {
    keys: BTreeMap<u64, Slot>,
}

impl SenderKeyring {
    /// Installs a key its owner delivered pairwise (a fresh key, or the
    /// ratcheted key a joiner receives).
    pub fn deliver(&mut self, kid: u64, base: Key32, now: Instant) {
        if let Some(slot) = self.keys.get(&kid) {
            if slot.origin == Origin::Delivered && slot.base.expose() == base.expose() {
                return; // a repeat: never reset the replay window of a live key
            }
        }
        // What was derived from the key this one replaces goes with it.
        let g = generation(kid);
        self.keys
            .retain(|k, s| !(s.origin == Origin::Derived && generation(*k) == g && *k > kid));
        let mut slot = Slot::new(kid, base, Origin::Delivered);
        if self.newest().is_some_and(|newest| newest > kid) {
            slot.retire_at = Some(now + GRACE); // already superseded
        }
        self.keys.insert(kid, slot);
        self.retire_older_than(kid, now);
    }

    fn newest(&self) -> Option<u64> {
        self.keys.keys().next_back().copied()
    }

    fn retire_older_than(&mut self, kid: u64, now: Instant) {
        for (_, k) in self.keys.range_mut(..kid) {
            k.retire_at.get_or_insert(now + GRACE);
        }
    }

    pub fn latest_kid(&self) -> Option<u64> {
        self.newest()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Drops (and so zeroizes) keys whose grace period is over.
    pub fn purge(&mut self, now: Instant) {
        self.keys
            .retain(|_, k| k.retire_at.is_none_or(|at| now < at));
    }

    /// Opens one SFrame message. `accept` runs after the tag verified and
    /// before anything is recorded (the replay window, a derived key): the
    /// caller checks the sender's signature there; false rejects the frame.
    pub fn open(
        &mut self,
        frame: &[u8],
        metadata: &[u8],
        now: Instant,
        accept: impl FnOnce() -> bool,
    ) -> Result<Opened, SframeError> {
        let (kid, ctr, hlen) = parse_header(frame)?;
        let (header, ct) = frame.split_at(hlen);
        if ct.len() < TAG_LEN {
            return Err(SframeError::Malformed);
        }
        if let Some(slot) = self.keys.get_mut(&kid) {
            if slot.retire_at.is_some_and(|at| now >= at) {
                return Err(SframeError::UnknownKey);
            }
            slot.window.check(ctr)?;
            let plaintext = slot
                .derived
                .open(header, ctr, metadata, ct)
                .ok_or(SframeError::Auth)?;
            if !accept() {
                return Err(SframeError::Signature);
            }
            slot.window.commit(ctr);
            return Ok(Opened {
                kid,
                ctr,
                plaintext,
            });
        }
        // Unknown KID: ratchet from the newest key, if it is a little ahead
        // in the same generation.
        let newest = self.newest().ok_or(SframeError::UnknownKey)?;
        if kid <= newest
            || generation(kid) != generation(newest)
            || kid - newest > MAX_RATCHET_AHEAD
        {
            return Err(SframeError::UnknownKey);
        }
        let mut base = self.keys[&newest].base.clone();
        for _ in newest..kid {
            base = ratchet(&base);
        }
        let mut slot = Slot::new(kid, base, Origin::Derived);
        let plaintext = slot
            .derived
            .open(header, ctr, metadata, ct)
            .ok_or(SframeError::Auth)?;
        if !accept() {
            return Err(SframeError::Signature);
        }
        slot.window.commit(ctr);
        self.keys.insert(kid, slot);
        self.retire_older_than(kid, now);
        Ok(Opened {
            kid,
            ctr,
            plaintext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::replay::ReplayError;
    use crate::crypto::sframe::{encode_header, kid, SenderKey};

    fn meta(room: &str, e: u8) -> Vec<u8> {
        let mut m = room.as_bytes().to_vec();
        m.extend_from_slice(&[e; 32]);
        m
    }

    fn pair(kid: u64) -> (SenderKey, SenderKeyring, Instant) {
        let base = Key32::from_bytes([0x42; 32]);
        let now = Instant::now();
        let mut ring = SenderKeyring::default();
        ring.deliver(kid, base.clone(), now);
        (SenderKey::new(kid, base), ring, now)
    }

    fn open(
        ring: &mut SenderKeyring,
        f: &[u8],
        m: &[u8],
        now: Instant,
    ) -> Result<Opened, SframeError> {
        ring.open(f, m, now, || true)
    }

    #[test]
    fn round_trip_sizes_up_to_1_mib() {
        let (mut tx, mut rx, now) = pair(3);
        for len in [0usize, 1, 15, 16, 17, 1000, 65_536, 1 << 20] {
            let pt: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = tx.seal(&meta("r", 1), &pt);
            let opened = open(&mut rx, &sealed, &meta("r", 1), now).unwrap();
            assert_eq!(opened.plaintext, pt);
        }
    }

    #[test]
    fn wrong_room_or_sender_in_aad_is_rejected() {
        let (mut tx, mut rx, now) = pair(0);
        let sealed = tx.seal(&meta("r", 1), b"hi");
        assert_eq!(
            open(&mut rx, &sealed, &meta("s", 1), now).err(),
            Some(SframeError::Auth)
        );
        assert_eq!(
            open(&mut rx, &sealed, &meta("r", 2), now).err(),
            Some(SframeError::Auth)
        );
        // A failed attempt did not burn the counter.
        assert!(open(&mut rx, &sealed, &meta("r", 1), now).is_ok());
    }

    #[test]
    fn a_rejected_signature_records_nothing() {
        let (tx, mut rx, now) = pair(kid(0, 0));
        let m = meta("r", 1);
        // A frame one step ahead, whose signature the caller rejects: no
        // key is derived, no counter burnt.
        let mut ahead = tx.ratcheted().unwrap();
        let f = ahead.seal(&m, b"forged?");
        assert_eq!(
            rx.open(&f, &m, now, || false).err(),
            Some(SframeError::Signature)
        );
        assert_eq!(rx.latest_kid(), Some(kid(0, 0)));
        assert!(open(&mut rx, &f, &m, now).is_ok());
    }

    #[test]
    fn replay_window_per_sender_and_kid() {
        let (mut tx, mut rx, now) = pair(0);
        let m = meta("r", 1);
        let frames: Vec<Vec<u8>> = (0..200).map(|_| tx.seal(&m, b"x")).collect();
        assert!(open(&mut rx, &frames[199], &m, now).is_ok());
        assert_eq!(
            open(&mut rx, &frames[199], &m, now).err(),
            Some(SframeError::Replay(ReplayError::Replay))
        );
        assert!(open(&mut rx, &frames[150], &m, now).is_ok()); // out of order, once
        assert!(open(&mut rx, &frames[150], &m, now).is_err());
        assert_eq!(
            open(&mut rx, &frames[10], &m, now).err(),
            Some(SframeError::Replay(ReplayError::TooOld))
        );
        // A forged frame with a huge counter fails the tag and moves nothing.
        let mut forged = encode_header(0, u64::MAX - 1).0[..9].to_vec();
        forged.extend_from_slice(&[0u8; 40]);
        assert_eq!(
            open(&mut rx, &forged, &m, now).err(),
            Some(SframeError::Auth)
        );
        assert!(open(&mut rx, &frames[198], &m, now).is_ok());
        // A new KID starts its own window: counter 0 is fine again.
        let mut next = tx.ratcheted().unwrap();
        let f0 = next.seal(&m, b"y");
        assert_eq!(open(&mut rx, &f0, &m, now).unwrap().ctr, 0);
        // The old key still opens late frames during the grace period only.
        assert!(open(&mut rx, &frames[197], &m, now + GRACE / 2).is_ok());
        assert_eq!(
            open(&mut rx, &frames[196], &m, now + GRACE).err(),
            Some(SframeError::UnknownKey)
        );
        rx.purge(now + GRACE);
        assert_eq!(rx.latest_kid(), Some(1));
    }

    #[test]
    fn ratchet_forward_is_bounded_and_one_way() {
        let (tx, mut rx, now) = pair(0);
        let m = meta("r", 1);
        let mut far = tx.ratcheted().unwrap();
        for _ in 0..MAX_RATCHET_AHEAD {
            far = far.ratcheted().unwrap();
        }
        let f = far.seal(&m, b"z");
        assert_eq!(
            open(&mut rx, &f, &m, now).err(),
            Some(SframeError::UnknownKey)
        );
        // A receiver holding only step 5 can't open step 4.
        let mut late = SenderKeyring::default();
        let mut k4 = SenderKey::new(4, Key32::from_bytes([1; 32]));
        let k5 = k4.ratcheted().unwrap();
        late.deliver(5, k5.base().clone(), now);
        let old = k4.seal(&m, b"old");
        assert_eq!(
            open(&mut late, &old, &m, now).err(),
            Some(SframeError::UnknownKey)
        );
    }

    /// The impersonation of DESIGN.md §3 "Key slots": a member holding
    /// Alice's key makes (by ratcheting) a frame under her next KID, which
    /// receivers derive and install; then Alice's own fresh key arrives.
    #[test]
    fn a_delivered_key_overrides_a_derived_one_and_fresh_keys_never_collide() {
        let now = Instant::now();
        let m = meta("r", 1);
        let alice_base = Key32::from_bytes([0xa1; 32]);
        let alice = SenderKey::new(kid(0, 0), alice_base.clone());
        let mut bob = SenderKeyring::default();
        bob.deliver(kid(0, 0), alice_base.clone(), now);
        // Mallory had Alice's key: she computes the next step herself.
        let mut mallory_as_alice = alice.ratcheted().unwrap();
        let forged = mallory_as_alice.seal(&m, b"I am Alice");
        assert!(
            open(&mut bob, &forged, &m, now).is_ok(),
            "derived (no signatures here)"
        );
        assert_eq!(bob.latest_kid(), Some(kid(0, 1)));
        // Alice's fresh key (after Mallory left) opens a new generation.
        let mut rng =
            <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(5);
        let mut fresh = alice.fresh(&mut rng);
        assert_eq!(fresh.kid(), kid(1, 0));
        bob.deliver(fresh.kid(), fresh.base().clone(), now);
        let real = fresh.seal(&m, b"really Alice");
        assert!(open(&mut bob, &real, &m, now).is_ok());
        // Mallory's line is retired after the grace period...
        let later = now + GRACE;
        bob.purge(later);
        let mut more = mallory_as_alice.ratcheted().unwrap();
        let forged2 = more.seal(&m, b"still me");
        assert_eq!(
            open(&mut bob, &forged2, &m, later).err(),
            Some(SframeError::UnknownKey)
        );
        // ...and a delivered key takes a slot that a derived one holds,
        // with what was derived from it.
        let mut carol = SenderKeyring::default();
        carol.deliver(kid(2, 0), Key32::from_bytes([1; 32]), now);
        let mut derived_line = SenderKey::new(kid(2, 0), Key32::from_bytes([1; 32]))
            .ratcheted()
            .unwrap();
        let f = derived_line.seal(&m, b"x");
        assert!(open(&mut carol, &f, &m, now).is_ok());
        let real_next = SenderKey::new(kid(2, 1), Key32::from_bytes([2; 32]));
        carol.deliver(kid(2, 1), real_next.base().clone(), now);
        let mut real_next = real_next;
        let g = real_next.seal(&m, b"y");
        assert!(
            open(&mut carol, &g, &m, now).is_ok(),
            "the delivered key wins"
        );
        let f2 = derived_line.seal(&m, b"z");
        assert_eq!(
            open(&mut carol, &f2, &m, now).err(),
            Some(SframeError::Auth)
        );
    }

    #[test]
    fn superseded_keys_stay_retired() {
        let now = Instant::now();
        let m = meta("r", 1);
        let mut ring = SenderKeyring::default();
        let k0 = SenderKey::new(kid(0, 0), Key32::from_bytes([1; 32]));
        ring.deliver(kid(0, 0), k0.base().clone(), now);
        let k2 = k0.ratcheted().unwrap().ratcheted().unwrap();
        ring.deliver(k2.kid(), k2.base().clone(), now);
        // A delayed frame under step 1 (between the two) can't revive it:
        // nothing is derived below the newest key.
        let mut k1 = k0.ratcheted().unwrap();
        let late = k1.seal(&m, b"late");
        assert_eq!(
            open(&mut ring, &late, &m, now).err(),
            Some(SframeError::UnknownKey)
        );
        // An out-of-order delivery of an older key is superseded at once.
        ring.deliver(k1.kid(), k1.base().clone(), now);
        assert!(
            open(&mut ring, &late, &m, now).is_ok(),
            "within the grace period"
        );
        ring.purge(now + GRACE);
        let late2 = k1.seal(&m, b"later");
        assert_eq!(
            open(&mut ring, &late2, &m, now + GRACE).err(),
            Some(SframeError::UnknownKey)
        );
        assert_eq!(ring.latest_kid(), Some(k2.kid()));
    }

    proptest::proptest! {
        #[test]
        fn any_bit_flip_or_truncation_is_rejected(
            pt in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            bit in 0usize..10_000,
            cut in 0usize..400,
        ) {
            let (mut tx, mut rx, now) = pair(300);
            let m = meta("room", 7);
            let sealed = tx.seal(&m, &pt);
            let mut flipped = sealed.clone();
            let bit = bit % (sealed.len() * 8);
            flipped[bit / 8] ^= 1 << (bit % 8);
            proptest::prop_assert!(open(&mut rx, &flipped, &m, now).is_err());
            let cut = cut % sealed.len();
            proptest::prop_assert!(open(&mut rx, &sealed[..cut], &m, now).is_err());
            proptest::prop_assert_eq!(open(&mut rx, &sealed, &m, now).unwrap().plaintext, pt);
        }

        #[test]
        fn parse_header_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..20)) {
            let _ = parse_header(&bytes);
        }
    }
}
