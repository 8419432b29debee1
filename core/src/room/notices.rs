//! What the room tells the user about failed verification: the
//! wrong-passphrase verdict, and peers that keep coming and going before
//! they verify.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::time::Instant;

use super::{Event, Output, Room};

/// Refusals from members who were here before us (DESIGN.md §3 "Wrong
/// passphrase"). One refusing member can't tell us who is wrong (it may be
/// the one with another invite); two or more, with nobody confirming,
/// can.
#[derive(Default)]
pub(super) struct Verdict {
    refusers: HashSet<String>,
    first: Option<Instant>,
    wrong_reported: bool,
    disagree_reported: bool,
}

/// Refusers we keep track of (a relay can't make us hold more).
const MAX_REFUSERS: usize = 16;

impl Verdict {
    pub fn refused(&mut self, peer: &str, now: Instant) {
        if self.refusers.len() < MAX_REFUSERS {
            self.refusers.insert(peer.to_string());
        }
        self.first.get_or_insert(now);
    }

    pub fn refused_by_several(&self) -> bool {
        self.refusers.len() >= 2
    }

    pub fn wrong_reported(&self) -> bool {
        self.wrong_reported
    }

    /// After `after` with refusals and nobody verified: the verdict (two
    /// or more refusers) or the note that the one member disagrees.
    pub fn tick(&mut self, now: Instant, after: Duration, verified: bool) -> Option<Event> {
        let first = self.first?;
        if verified || now.duration_since(first) < after {
            return None;
        }
        if self.refused_by_several() && !self.wrong_reported {
            self.wrong_reported = true;
            return Some(Event::WrongPassphrase);
        }
        if self.refusers.len() == 1 && !self.disagree_reported {
            self.disagree_reported = true;
            let peer = self.refusers.iter().next().cloned().unwrap_or_default();
            return Some(Event::PassphraseDisagrees { peer });
        }
        None
    }
}

/// Departures of peers that took part in a round but never verified.
#[derive(Default)]
pub(super) struct Churn {
    at: VecDeque<Instant>,
    last_told: Option<Instant>,
}

const CHURN_WINDOW: Duration = Duration::from_secs(60);
/// From this many unverified departures within the window, say so.
const CHURN_REPORT_FROM: usize = 3;
/// At most one warning this often.
const CHURN_REPORT_EVERY: Duration = Duration::from_secs(30);

impl Churn {
    fn note(&mut self, now: Instant) -> Option<Event> {
        self.at.push_back(now);
        while self
            .at
            .front()
            .is_some_and(|t| now.duration_since(*t) > CHURN_WINDOW)
        {
            self.at.pop_front();
        }
        let quiet = self
            .last_told
            .is_none_or(|t| now.duration_since(t) >= CHURN_REPORT_EVERY);
        if self.at.len() >= CHURN_REPORT_FROM && quiet {
            self.last_told = Some(now);
            return Some(Event::UnverifiedChurn {
                count: self.at.len(),
            });
        }
        None
    }
}

impl Room {
    /// `id` is leaving our rounds (it left, failed or stalled): if it had
    /// committed but never verified, that is churn worth counting.
    pub(super) fn note_unverified_departure(&mut self, id: &str, now: Instant) -> Option<Output> {
        let peer = self.peers.get(id)?;
        if peer.member || peer.commit.is_none() {
            return None;
        }
        self.churn.note(now).map(Output::Event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_refuser_is_a_disagreement_two_are_a_verdict() {
        let t0 = Instant::now();
        let after = Duration::from_secs(5);
        let mut v = Verdict::default();
        v.refused("a", t0);
        assert_eq!(v.tick(t0 + Duration::from_secs(4), after, false), None);
        assert_eq!(
            v.tick(t0 + after, after, false),
            Some(Event::PassphraseDisagrees { peer: "a".into() })
        );
        assert_eq!(v.tick(t0 + after, after, false), None, "said once");
        assert!(!v.refused_by_several());
        v.refused("b", t0 + after);
        assert_eq!(
            v.tick(t0 + after, after, false),
            Some(Event::WrongPassphrase)
        );
        // Somebody confirming overrules the refusals.
        let mut v = Verdict::default();
        v.refused("a", t0);
        v.refused("b", t0);
        assert_eq!(v.tick(t0 + after, after, true), None);
    }

    #[test]
    fn churn_is_reported_from_three_a_minute_and_not_too_often() {
        let t0 = Instant::now();
        let mut c = Churn::default();
        assert_eq!(c.note(t0), None);
        assert_eq!(c.note(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            c.note(t0 + Duration::from_secs(2)),
            Some(Event::UnverifiedChurn { count: 3 })
        );
        assert_eq!(c.note(t0 + Duration::from_secs(3)), None);
        assert_eq!(
            c.note(t0 + Duration::from_secs(40)),
            Some(Event::UnverifiedChurn { count: 5 })
        );
        // Spread over more than a minute: nothing.
        let mut c = Churn::default();
        for i in 0..10 {
            assert_eq!(c.note(t0 + Duration::from_secs(61 * i)), None);
        }
    }
}
