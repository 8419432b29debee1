//! Our side of the relay's rate limit: the relay announces how many
//! messages a second (and what burst) it takes from us, and drops what
//! goes over. A membership change sends a burst of control messages (a
//! round of handshakes with every member); rather than have some dropped,
//! the writer spends tokens from a bucket a little below the relay's and
//! waits for the next one when it runs dry.

use std::time::{Duration, Instant};

/// The share of the relay's rate and burst we use (the relay's clock and
/// ours differ a little; its bucket must never run dry first).
const MARGIN: f64 = 0.9;

#[derive(Debug)]
pub struct Pacer {
    per_sec: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// For a relay that takes `rate_per_sec` messages a second with a
    /// burst of `burst`; 0 (unknown) means no pacing.
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let per_sec = f64::from(rate_per_sec) * MARGIN;
        let burst = (f64::from(burst) * MARGIN).max(1.0);
        Pacer {
            per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        self.last = now;
    }

    /// Takes a token; how long to wait first when there is none.
    pub fn take(&mut self, now: Instant) -> Duration {
        if self.per_sec <= 0.0 {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_sec)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_pass_then_the_rate_holds() {
        let t0 = Instant::now();
        let mut p = Pacer::new(200, 400, t0);
        // 360 (90% of the burst) at once, then one per 1/180 s.
        for _ in 0..360 {
            assert_eq!(p.take(t0), Duration::ZERO);
        }
        let wait = p.take(t0);
        assert!(wait > Duration::from_millis(5) && wait < Duration::from_millis(6));
        // A second later, the bucket holds 180 again (not more than it
        // can, never more than the burst).
        let t1 = t0 + Duration::from_secs(1) + wait;
        let sent = (0..400).take_while(|_| p.take(t1).is_zero()).count();
        assert!((179..=181).contains(&sent), "{sent}");
        // Over any second, at most the relay's rate (plus its burst).
        let mut p = Pacer::new(200, 400, t0);
        let mut at = t0;
        let mut n = 0;
        while at < t0 + Duration::from_secs(10) {
            at += p.take(at);
            n += 1;
        }
        assert!(n <= 400 + 2000, "{n}");
        assert!(n >= 360 + 1700, "{n}");
    }

    #[test]
    fn an_unknown_rate_is_not_paced() {
        let t0 = Instant::now();
        let mut p = Pacer::new(0, 0, t0);
        for _ in 0..10_000 {
            assert_eq!(p.take(t0), Duration::ZERO);
        }
    }
}
