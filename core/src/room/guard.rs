//! Online-guessing throttle (DESIGN.md §3): every SPAKE2 run lets the
//! other side test one guess at the passphrase, once it holds our
//! confirmation (or learns that its own failed). Unthrottled that is
//! thousands of guesses a second, and a typed two-word secret falls in
//! seconds.
//!
//! - A handshake with a peer that hasn't proven the passphrase yet is
//!   **charged** when it starts and **refunded** when that peer's
//!   confirmation checks out. One that ends any other way (a wrong
//!   confirmation, garbage, a timeout, the peer leaving) is a failure.
//! - The room orders confirmations so that the member who was there first
//!   sends its own only after checking the newcomer's: a guesser can't
//!   test its guess and slip away uncounted.
//! - A failure in which the peer could test a guess (it had our
//!   confirmation, or its own was checked) makes new handshakes with
//!   unproven peers wait: 0.5 s after the first, doubling to a minute per
//!   attempt; a quiet 10 minutes forgets them. A stall that gave nothing
//!   away is counted but costs no wait, so a few silent peers can't keep
//!   everyone else out: they hold a slot until their timeout, no longer.
//! - At most [`MAX_IN_PROGRESS`] handshakes started with unproven peers
//!   and not yet answered, and at most as many confirmations given to
//!   unproven peers and not yet answered in kind: the guesses that can be
//!   out at once.
//!
//! The guard outlives a connection (a relay that drops us doesn't reset
//! it).

use std::time::Duration;

use crate::time::Instant;

pub const MAX_IN_PROGRESS: usize = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// From this many guesses by newcomers on, the user is told someone may be
/// guessing.
pub const REPORT_FROM: u32 = 3;

/// How a charged handshake ended without a valid confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The peer could test a guess at the passphrase: it counts toward the
    /// wait. `reported`: it looks like guessing (a newcomer that failed, or
    /// anyone that took our confirmation and never answered) rather than a
    /// member refusing our own invite; the user is warned about those.
    Guess { reported: bool },
    /// Nothing was given away (it stalled before our confirmation).
    Stall,
}

#[derive(Debug, Default)]
pub struct Guard {
    /// Failures that gave a guess away: they set the wait.
    guesses: u32,
    /// Of those, the ones that look like guessing.
    reported_guesses: u32,
    stalls: u32,
    last_failure: Option<Instant>,
    /// No handshake with an unproven peer starts before this.
    not_before: Option<Instant>,
}

impl Guard {
    fn backoff(&self) -> Duration {
        if self.guesses == 0 {
            return Duration::ZERO;
        }
        let doublings = (self.guesses - 1).min(16);
        (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
    }

    fn forget_if_quiet(&mut self, now: Instant) {
        if self
            .last_failure
            .is_some_and(|t| now.saturating_duration_since(t) >= FORGET_AFTER)
        {
            *self = Guard::default();
        }
    }

    /// May a handshake with an unproven peer start (or our confirmation go
    /// to one) now, with `in_progress` such already running (given away)?
    pub fn may_start(&mut self, now: Instant, in_progress: usize) -> bool {
        self.forget_if_quiet(now);
        in_progress < MAX_IN_PROGRESS && self.not_before.is_none_or(|t| now >= t)
    }

    /// A charged handshake started: while guesses are fresh, the next one
    /// waits.
    pub fn started(&mut self, now: Instant) {
        if self.guesses > 0 {
            self.not_before = Some(now + self.backoff());
        }
    }

    /// A charged handshake failed. Returns (reported guesses, the wait now
    /// imposed) when the user should hear about it.
    pub fn failed(&mut self, now: Instant, how: Failure) -> Option<(u32, Duration)> {
        self.forget_if_quiet(now);
        self.last_failure = Some(now);
        match how {
            Failure::Stall => {
                self.stalls = self.stalls.saturating_add(1);
                None
            }
            Failure::Guess { reported } => {
                self.guesses = self.guesses.saturating_add(1);
                let wait = self.backoff();
                self.not_before = Some(now + wait);
                if !reported {
                    return None;
                }
                self.reported_guesses = self.reported_guesses.saturating_add(1);
                (self.reported_guesses >= REPORT_FROM).then_some((self.reported_guesses, wait))
            }
        }
    }

    /// Failures so far: (guesses, stalls).
    pub fn failures(&self) -> (u32, u32) {
        (self.guesses, self.stalls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUESS: Failure = Failure::Guess { reported: true };

    #[test]
    fn backoff_doubles_to_a_minute_and_is_forgotten() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        assert!(g.may_start(t0, 0));
        g.started(t0);
        assert!(g.may_start(t0, 1), "no wait without failures");
        assert_eq!(g.failed(t0, GUESS), None);
        assert!(!g.may_start(t0, 0));
        assert!(g.may_start(t0 + FIRST_BACKOFF, 0));
        assert_eq!(g.failed(t0, GUESS), None);
        assert_eq!(g.failed(t0, GUESS), Some((3, Duration::from_secs(2))));
        for _ in 0..20 {
            g.failed(t0, GUESS);
        }
        assert!(!g.may_start(t0 + Duration::from_secs(59), 0));
        assert!(g.may_start(t0 + MAX_BACKOFF, 0));
        g.started(t0 + MAX_BACKOFF);
        assert!(!g.may_start(t0 + MAX_BACKOFF + Duration::from_secs(1), 0));
        // Ten quiet minutes: forgotten.
        assert!(g.may_start(t0 + FORGET_AFTER, 0));
        assert_eq!(g.failures(), (0, 0));
    }

    #[test]
    fn stalls_are_counted_but_cost_no_wait() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        for _ in 0..50 {
            assert_eq!(g.failed(t0, Failure::Stall), None);
        }
        assert!(g.may_start(t0, 0));
        assert_eq!(g.failures(), (0, 50));
    }

    #[test]
    fn members_refusing_us_slow_us_down_without_a_guessing_alarm() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        for _ in 0..5 {
            assert_eq!(g.failed(t0, Failure::Guess { reported: false }), None);
        }
        assert!(!g.may_start(t0, 0));
    }

    #[test]
    fn at_most_a_few_handshakes_at_once() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        assert!(g.may_start(t0, MAX_IN_PROGRESS - 1));
        assert!(!g.may_start(t0, MAX_IN_PROGRESS));
    }
}
