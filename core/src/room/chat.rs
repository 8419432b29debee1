//! Who a chat line may reach (DESIGN.md §3 "Chat delivery"): exactly the
//! members verified when it was typed.
//!
//! - Typed while others are verified: sealed under our current sender key
//!   at once ([`super::Room::send_chat`]): only they hold it.
//! - Typed while alone: delivered to nobody, ever (the user is told).
//! - Typed while the connection is down: owed to the members verified when
//!   it went down ([`Recent`]), recognised after the reconnect by their
//!   signing keys (peer ids and X25519 keys are new after a reconnect,
//!   signing keys are not), each sent its copy sealed pairwise, once.
//!   Whoever joined since gets nothing; whoever doesn't come back within
//!   [`OWED_FOR`] never does.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use crate::time::Instant;

/// How long lines typed offline wait for their members to come back.
pub const OWED_FOR: Duration = Duration::from_secs(120);
/// Lines typed offline kept at most (the oldest is dropped, and said so).
pub const MAX_OWED: usize = 32;

/// A member, across reconnects: its Ed25519 public key.
pub type Signer = [u8; 32];

/// A relay going down tells its members that everyone left, one by one,
/// before it closes their connections: "verified when the connection went
/// down" means verified within this long before it did (and not gone by
/// choice).
pub const LOOKBACK: Duration = Duration::from_secs(10);

/// Members remembered at most (a full room's worth, and then some): a
/// relay showing member after member can't make this grow.
pub const MAX_RECENT: usize = 256;

/// Who was in the call lately, by signing key.
#[derive(Default)]
pub struct Recent {
    last_verified: HashMap<Signer, Instant>,
    ids: HashMap<String, Signer>,
}

impl Recent {
    /// While connected: these members are verified now. Members not seen
    /// for [`LOOKBACK`] are forgotten (they can't be owed anything), and
    /// past [`MAX_RECENT`] the longest unseen go first.
    pub fn saw(&mut self, verified: &[(Signer, String)], now: Instant) {
        for (signer, id) in verified {
            self.last_verified.insert(*signer, now);
            self.ids.insert(id.clone(), *signer);
        }
        self.last_verified
            .retain(|_, t| now.saturating_duration_since(*t) <= LOOKBACK);
        while self.last_verified.len() > MAX_RECENT {
            let Some(oldest) = self
                .last_verified
                .iter()
                .min_by_key(|(_, t)| **t)
                .map(|(s, _)| *s)
            else {
                break;
            };
            self.last_verified.remove(&oldest);
        }
        let known = &self.last_verified;
        self.ids.retain(|_, s| known.contains_key(s));
    }

    /// A member left by choice (`leave`): it is owed nothing more.
    pub fn left_by_choice(&mut self, peer: &str) {
        if let Some(signer) = self.ids.remove(peer) {
            self.last_verified.remove(&signer);
        }
    }

    /// The members verified within [`LOOKBACK`] before `at`.
    pub fn around(&self, at: Instant) -> HashSet<Signer> {
        self.last_verified
            .iter()
            .filter(|(_, t)| **t + LOOKBACK >= at)
            .map(|(s, _)| *s)
            .collect()
    }
}

/// What became of a typed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    /// Owed to this many members, delivered when they are back.
    Owed(usize),
    /// Nobody to deliver it to: typed while alone.
    Undelivered,
}

struct Owed {
    text: String,
    to: HashSet<Signer>,
    until: Instant,
}

#[derive(Default)]
pub struct ChatQueue {
    owed: VecDeque<Owed>,
}

impl ChatQueue {
    /// A line typed while offline, owed to `members` (verified when the
    /// connection went down). Returns what became of it, and whether an
    /// older line had to be dropped to make room.
    pub fn owe(&mut self, text: String, members: &HashSet<Signer>, now: Instant) -> (Typed, bool) {
        if members.is_empty() {
            return (Typed::Undelivered, false);
        }
        let dropped = self.owed.len() >= MAX_OWED;
        if dropped {
            self.owed.pop_front();
        }
        self.owed.push_back(Owed {
            text,
            to: members.clone(),
            until: now + OWED_FOR,
        });
        (Typed::Owed(members.len()), dropped)
    }

    /// A member verified (again): the lines owed to it, oldest first, each
    /// handed out once.
    pub fn take_for(&mut self, member: &Signer) -> Vec<String> {
        let lines = self
            .owed
            .iter_mut()
            .filter_map(|o| o.to.remove(member).then(|| o.text.clone()))
            .collect();
        self.owed.retain(|o| !o.to.is_empty());
        lines
    }

    /// Gives up on lines whose members didn't come back in time; returns
    /// how many (line, member) deliveries were given up.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut given_up = 0;
        self.owed.retain(|o| {
            let keep = now < o.until;
            if !keep {
                given_up += o.to.len();
            }
            keep
        });
        given_up
    }

    /// Lines still owed to someone.
    pub fn len(&self) -> usize {
        self.owed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owed.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owed_lines_reach_exactly_their_members_once() {
        let t0 = Instant::now();
        let mut q = ChatQueue::default();
        let (alice, bob, carol) = ([1; 32], [2; 32], [3; 32]);
        let then: HashSet<Signer> = [alice, bob].into();
        assert_eq!(q.owe("first".into(), &then, t0), (Typed::Owed(2), false));
        assert_eq!(q.owe("second".into(), &then, t0), (Typed::Owed(2), false));
        // Carol joined while we were away: nothing for her.
        assert!(q.take_for(&carol).is_empty());
        assert_eq!(q.take_for(&alice), vec!["first", "second"]);
        assert!(q.take_for(&alice).is_empty(), "once");
        assert_eq!(q.len(), 2, "bob still owed");
        assert_eq!(q.take_for(&bob), vec!["first", "second"]);
        assert!(q.is_empty());
    }

    #[test]
    fn typed_alone_reaches_nobody_and_late_members_are_given_up() {
        let t0 = Instant::now();
        let mut q = ChatQueue::default();
        assert_eq!(
            q.owe("hello?".into(), &HashSet::new(), t0),
            (Typed::Undelivered, false)
        );
        assert!(q.is_empty());
        q.owe("x".into(), &[[1; 32]].into(), t0);
        assert_eq!(q.expire(t0 + OWED_FOR - Duration::from_secs(1)), 0);
        assert_eq!(q.expire(t0 + OWED_FOR), 1);
        assert!(q.take_for(&[1; 32]).is_empty());
    }

    #[test]
    fn recent_members_are_those_of_the_last_seconds_not_those_who_left() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        r.saw(&[([1; 32], "a".into()), ([2; 32], "b".into())], t0);
        r.saw(&[([1; 32], "a".into())], t0 + Duration::from_secs(5));
        r.left_by_choice("a");
        let at = t0 + Duration::from_secs(6);
        assert_eq!(r.around(at), [[2u8; 32]].into());
        assert!(r.around(t0 + LOOKBACK + Duration::from_secs(1)).is_empty());
    }

    #[test]
    fn recent_members_are_bounded() {
        let t0 = Instant::now();
        let mut r = Recent::default();
        for i in 0..1000u32 {
            let mut s = [0u8; 32];
            s[..4].copy_from_slice(&i.to_be_bytes());
            r.saw(
                &[(s, format!("p{i}"))],
                t0 + Duration::from_millis(u64::from(i)),
            );
        }
        let now = t0 + Duration::from_millis(1000);
        assert!(r.around(now).len() <= MAX_RECENT);
        assert!(r.ids.len() <= MAX_RECENT);
        // The newest are the ones kept.
        let mut last = [0u8; 32];
        last[..4].copy_from_slice(&999u32.to_be_bytes());
        assert!(r.around(now).contains(&last));
    }

    #[test]
    fn the_queue_is_bounded() {
        let t0 = Instant::now();
        let mut q = ChatQueue::default();
        let m: HashSet<Signer> = [[1; 32]].into();
        for i in 0..MAX_OWED {
            assert!(!q.owe(i.to_string(), &m, t0).1);
        }
        assert!(q.owe("one more".into(), &m, t0).1, "oldest dropped");
        assert_eq!(q.len(), MAX_OWED);
        assert_eq!(q.take_for(&[1; 32])[0], "1");
    }
}
