//! What a member knows about one peer: where its handshake stands, its
//! sender keys, and whether it is still alive.

use crate::time::Instant;
use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

use super::wire::WireMessage;
use crate::crypto::keyring::SenderKeyring;
use crate::crypto::pairwise::{Handshake, Hello, PairwiseChannel, CONFIRM_LEN};

/// Where this round's handshake with a peer stands.
pub(super) enum Hs {
    /// Nothing under way this round.
    Idle,
    /// Their hello is in and they take part in our round; our SPAKE2
    /// waits for the guard.
    Queued(Instant),
    /// Our SPAKE2 message is out; waiting for theirs.
    Spake(Box<Handshake>),
    /// Keys derived; waiting for their confirmation. `ours` is our own,
    /// held back until theirs checks out (they are a newcomer we don't
    /// know yet), or `None` once sent.
    Confirming {
        channel: Box<PairwiseChannel>,
        ours: Option<[u8; CONFIRM_LEN]>,
    },
    /// Both confirmations checked: the channel is [`Peer::channel`];
    /// waiting for their proof of the signing key.
    Proving,
    /// Proven in this round.
    Done,
}

impl Hs {
    /// Counts against the guard's limit on handshakes at once.
    pub fn in_progress(&self) -> bool {
        matches!(self, Hs::Spake(_) | Hs::Confirming { .. } | Hs::Proving)
    }
}

/// Whether a peer takes part in our rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Standing {
    Active,
    /// Didn't commit, reveal or finish in time: left out of rounds until
    /// it sends a new commitment (a few times at most).
    Lapsed,
    /// Failed to prove the passphrase or its signing key, or sent
    /// something malformed: never again on this peer id.
    Excluded(&'static str),
}

/// A handshake of an earlier round that gave the peer our confirmation
/// (a chance to test its guess at the passphrase) before its own checked
/// out: it is settled when its confirmation comes (refunded) or not
/// (a failure), even though the round moved on.
pub(super) struct Settling {
    pub channel: Box<PairwiseChannel>,
    pub since: Instant,
}

/// Handshake messages that may arrive before we are ready for them (their
/// SPAKE2 while ours waits for the guard): small and fixed-size, a couple
/// per peer.
pub(super) const MAX_EARLY: usize = 2;

pub(super) struct Peer {
    /// Their latest commitment, and the round number it came with.
    pub commit: Option<[u8; 32]>,
    pub commit_round: u64,
    /// It arrived (or arrived again) after our last reveal: usable in our
    /// next round.
    pub commit_fresh: bool,
    /// Their hello for `commit`, once revealed.
    pub hello: Option<Hello>,
    /// A hello that came before the commitment it answers (a commitment
    /// is sent to us alone, a hello to everyone: across relays the two
    /// may be reordered). Used only once that commitment is here.
    pub early_hello: Option<Hello>,
    /// Their X25519 key: one per connection, fixed once seen.
    pub e: Option<[u8; 32]>,
    pub hs: Hs,
    /// When the current handshake started (its timeout).
    pub hs_started: Option<Instant>,
    /// The guard was charged for this handshake and not yet refunded.
    pub charged: bool,
    /// Our confirmation went out before theirs checked out.
    pub oracle: bool,
    /// Ours is to go first (they were here first, or are proven), and is
    /// held only while too many confirmations are out unanswered.
    pub owe_first: bool,
    pub settling: Option<Settling>,
    /// The newest established channel (keys, proofs, private chat), and
    /// the one before it, still opened for what was sealed under it.
    pub channel: Option<Box<PairwiseChannel>>,
    pub old_channel: Option<Box<PairwiseChannel>>,
    /// Proved the passphrase and its signing key on this connection: it
    /// holds our sender key and gets our fresh ones.
    pub member: bool,
    /// The signing key it proved.
    pub proven_s: Option<[u8; 32]>,
    /// Their identity key, proven with their signing key (the same one on
    /// every proof of this connection).
    pub identity: Option<[u8; 32]>,
    /// Our sender key was kept from them (`--only-known`, not verified).
    pub withheld: bool,
    pub standing: Standing,
    pub readmissions: u8,
    pub name: Option<String>,
    pub keyring: SenderKeyring,
    /// Last fresh authentic traffic (the silence rule).
    pub last_auth: Instant,
    pub freshness: Freshness,
    pub early: Vec<WireMessage>,
    /// Was in the room when we joined: its verdict decides WrongPassphrase,
    /// and we confirm to it first.
    pub member_before_us: bool,
    /// We sent it our confirmation before its own, once, as a newcomer
    /// that may hold us for the newcomer too (never again on this
    /// connection).
    pub conceded: bool,
    /// When we learned of it (welcome or `peer_joined`).
    pub known_since: Instant,
    /// We started a round for it because it never sent a commitment (once).
    pub prompted: bool,
}

impl Peer {
    pub fn new(now: Instant, member_before_us: bool) -> Self {
        Peer {
            commit: None,
            commit_round: 0,
            commit_fresh: false,
            hello: None,
            early_hello: None,
            e: None,
            hs: Hs::Idle,
            hs_started: None,
            charged: false,
            oracle: false,
            owe_first: false,
            settling: None,
            channel: None,
            old_channel: None,
            member: false,
            proven_s: None,
            identity: None,
            withheld: false,
            standing: Standing::Active,
            readmissions: 0,
            name: None,
            keyring: SenderKeyring::default(),
            last_auth: now,
            freshness: Freshness::default(),
            early: Vec::new(),
            member_before_us,
            conceded: false,
            known_since: now,
            prompted: false,
        }
    }

    pub fn is_verified(&self) -> bool {
        self.member
    }

    pub fn active(&self) -> bool {
        self.standing == Standing::Active
    }

    pub fn excluded(&self) -> bool {
        matches!(self.standing, Standing::Excluded(_))
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
    best_offset: Option<i128>,
    last_ts: u64,
}

pub(super) const FRESH_WINDOW_US: i128 = 10_000_000;

impl Freshness {
    pub fn fresh(&mut self, capture_us: u64, now_us: u64) -> bool {
        // (Wide enough that no pair of u64 times overflows.)
        let offset = i128::from(now_us) - i128::from(capture_us);
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

    pub fn contains(&self, value: &T) -> bool {
        self.set.contains(value)
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
    fn any_times_are_taken_without_overflow() {
        let mut f = Freshness::default();
        assert!(f.fresh(u64::MAX, 0));
        assert!(!f.fresh(0, u64::MAX));
        assert!(!f.fresh(1 << 63, 5));
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
