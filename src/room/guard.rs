//! Online-guessing throttle (DESIGN.md §3 "Chat delivery" and issue notes):
//! every handshake we answer with SPAKE2 lets its sender test one guess at
//! the passphrase against our confirmation. Unthrottled that is thousands of
//! guesses a second, and a typed two-word secret falls in seconds.
//!
//! So: at most [`MAX_IN_PROGRESS`] handshakes at once, and after a
//! newcomer fails to prove the passphrase, new handshakes wait: 0.5 s after
//! the first failure, doubling to a minute per attempt. Failures from
//! members who were here before us don't count (they say our invite is
//! wrong, not that someone is guessing); a quiet 10 minutes forgets them.

use std::time::{Duration, Instant};

pub const MAX_IN_PROGRESS: usize = 8;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// From this many failures on, the user is told someone may be guessing.
pub const REPORT_FROM: u32 = 3;

#[derive(Debug, Default)]
pub struct Guard {
    failures: u32,
    last_failure: Option<Instant>,
    /// No handshake starts before this.
    not_before: Option<Instant>,
}

impl Guard {
    fn backoff(&self) -> Duration {
        if self.failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (self.failures - 1).min(16);
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

    /// May a handshake start now, with `in_progress` already running?
    pub fn may_start(&mut self, now: Instant, in_progress: usize) -> bool {
        self.forget_if_quiet(now);
        in_progress < MAX_IN_PROGRESS && self.not_before.is_none_or(|t| now >= t)
    }

    /// A handshake started: while failures are fresh, the next one waits.
    pub fn started(&mut self, now: Instant) {
        if self.failures > 0 {
            self.not_before = Some(now + self.backoff());
        }
    }

    /// A newcomer failed to prove the passphrase. Returns (failures, the
    /// wait now imposed) when the user should hear about it.
    pub fn failed(&mut self, now: Instant) -> Option<(u32, Duration)> {
        self.forget_if_quiet(now);
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
        let wait = self.backoff();
        self.not_before = Some(now + wait);
        (self.failures >= REPORT_FROM).then_some((self.failures, wait))
    }

    #[cfg(test)]
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute_and_is_forgotten() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        assert!(g.may_start(t0, 0));
        g.started(t0);
        assert!(g.may_start(t0, 1), "no wait without failures");
        assert_eq!(g.failed(t0), None);
        assert!(!g.may_start(t0, 0));
        assert!(g.may_start(t0 + FIRST_BACKOFF, 0));
        assert_eq!(g.failed(t0), None);
        assert_eq!(g.failed(t0), Some((3, Duration::from_secs(2))));
        for _ in 0..20 {
            g.failed(t0);
        }
        assert!(!g.may_start(t0 + Duration::from_secs(59), 0));
        assert!(g.may_start(t0 + MAX_BACKOFF, 0));
        g.started(t0 + MAX_BACKOFF);
        assert!(!g.may_start(t0 + MAX_BACKOFF + Duration::from_secs(1), 0));
        // Ten quiet minutes: forgotten.
        assert!(g.may_start(t0 + FORGET_AFTER, 0));
        assert_eq!(g.failures(), 0);
    }

    #[test]
    fn at_most_a_few_handshakes_at_once() {
        let t0 = Instant::now();
        let mut g = Guard::default();
        assert!(g.may_start(t0, MAX_IN_PROGRESS - 1));
        assert!(!g.may_start(t0, MAX_IN_PROGRESS));
    }
}
