//! What a member knows about one peer: where its handshake stands, its
//! sender keys, and whether it is still alive.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;
use std::time::Instant;

use super::wire::WireMessage;
use crate::crypto::keyring::SenderKeyring;
use crate::crypto::pairwise::{Handshake, Hello, PairwiseChannel};

pub(super) enum PeerState {
    /// Known from presence, or committed; no hello yet.
    AwaitingHello,
    /// Its hello matched its commitment; our SPAKE2 waits for the guard.
    Queued,
    /// SPAKE2 started; waiting for their SPAKE2 message.
    Handshaking(Box<Handshake>),
    /// Keys derived; waiting for their confirmation.
    AwaitingConfirm(Box<PairwiseChannel>),
    Verified(Box<PairwiseChannel>),
    /// Their confirmation did not match: wrong passphrase, or a guess.
    Mismatch,
    /// A malformed handshake (garbage SPAKE2, a weak key, a hello that
    /// doesn't match its commitment): ignored, and not a verdict on the
    /// passphrase.
    Failed,
}

/// Handshake messages that may arrive before we are ready for them (their
/// SPAKE2 while ours waits for the guard): small and fixed-size, a couple
/// per peer.
pub(super) const MAX_EARLY: usize = 2;

pub(super) struct Peer {
    /// Their commitment to the hello to come.
    pub commit: Option<[u8; 32]>,
    /// Our commitment has reached them (broadcast after they joined, or
    /// sent to them).
    pub commit_sent: bool,
    /// Our hello went to them.
    pub hello_sent: bool,
    /// Their hello, once it matched their commitment.
    pub hello: Option<Hello>,
    pub state: PeerState,
    pub name: Option<String>,
    pub keyring: SenderKeyring,
    /// Last fresh authentic traffic (the silence rule).
    pub last_auth: Instant,
    pub freshness: Freshness,
    pub early: Vec<WireMessage>,
    /// Was in the room when we joined: its verdict decides WrongPassphrase.
    pub member_before_us: bool,
}

impl Peer {
    pub fn new(now: Instant, member_before_us: bool) -> Self {
        Peer {
            commit: None,
            commit_sent: member_before_us,
            hello_sent: false,
            hello: None,
            state: PeerState::AwaitingHello,
            name: None,
            keyring: SenderKeyring::default(),
            last_auth: now,
            freshness: Freshness::default(),
            early: Vec::new(),
            member_before_us,
        }
    }

    pub fn is_verified(&self) -> bool {
        matches!(self.state, PeerState::Verified(_))
    }

    /// Counts against the limit on handshakes at once.
    pub fn in_progress(&self) -> bool {
        matches!(
            self.state,
            PeerState::Handshaking(_) | PeerState::AwaitingConfirm(_)
        )
    }
}

/// "Alive" needs fresh traffic: a relay that held back a departed member's
/// frames must not keep it in the key set by dripping them out. A frame is
/// fresh when it is newer than the last one seen, and no more than
/// [`FRESH_WINDOW_US`] later than the quickest this sender's frames have
/// ever arrived (clocks may differ between machines, so only the
/// difference counts).
#[derive(Debug, Default)]
pub(super) struct Freshness {
    /// Smallest (arrival − capture) seen, µs.
    best_offset: Option<i64>,
    last_ts: u64,
}

pub(super) const FRESH_WINDOW_US: i64 = 10_000_000;

impl Freshness {
    pub fn fresh(&mut self, capture_us: u64, now_us: u64) -> bool {
        let offset = now_us as i64 - capture_us as i64;
        let best = self.best_offset.map_or(offset, |b| b.min(offset));
        self.best_offset = Some(best);
        let newer = capture_us > self.last_ts;
        self.last_ts = self.last_ts.max(capture_us);
        newer && offset - best <= FRESH_WINDOW_US
    }
}

/// A set that forgets its oldest entries past `capacity`.
pub(super) struct BoundedSet<T> {
    set: HashSet<T>,
    order: VecDeque<T>,
    capacity: usize,
}

impl<T: Hash + Eq + Clone> BoundedSet<T> {
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            set: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// True when `value` was not in the set.
    pub fn insert(&mut self, value: T) -> bool {
        if !self.set.insert(value.clone()) {
            return false;
        }
        self.order.push_back(value);
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn withheld_frames_are_not_fresh() {
        let mut f = Freshness::default();
        // Clocks 3 s apart, 20 ms of latency.
        let skew = 3_000_000;
        assert!(f.fresh(1_000_000, 1_000_000 + skew + 20_000));
        assert!(f.fresh(1_033_000, 1_033_000 + skew + 25_000));
        // A frame from 30 s ago, dripped out now.
        assert!(!f.fresh(1_040_000, 31_000_000 + skew));
        // Repeats and older frames are never fresh.
        assert!(!f.fresh(1_033_000, 1_040_000 + skew));
    }

    #[test]
    fn bounded_set_forgets_the_oldest() {
        let mut s = BoundedSet::new(2);
        assert!(s.insert(1));
        assert!(!s.insert(1));
        assert!(s.insert(2));
        assert!(s.insert(3));
        assert_eq!(s.len(), 2);
        assert!(s.insert(1), "1 was forgotten");
    }
}
