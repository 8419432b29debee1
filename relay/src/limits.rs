//! Per-connection rate limit and strike counting. Pure functions of the time
//! passed in, so they are tested without sleeping.

use std::time::{Duration, Instant};

/// Token bucket: `rate` tokens per second, holding at most `burst`.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    pub fn new(rate_per_sec: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate_per_sec),
            burst,
            tokens: burst,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }

    /// Spends `amount` tokens, going into debt if there are too few; returns
    /// how long until the debt is paid (zero when there was enough).
    pub fn spend(&mut self, amount: f64, now: Instant) -> Duration {
        self.refill(now);
        self.tokens -= amount;
        if self.tokens >= 0.0 || self.rate <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts protocol violations; too many within `window` means the connection
/// is abusive and gets closed. A quiet `window` forgives everything.
#[derive(Debug)]
pub struct Strikes {
    max: u32,
    window: Duration,
    count: u32,
    last: Option<Instant>,
}

impl Strikes {
    pub fn new(max: u32, window: Duration) -> Self {
        Strikes {
            max,
            window,
            count: 0,
            last: None,
        }
    }

    /// Records one violation; true when the connection should now be closed.
    pub fn strike(&mut self, now: Instant) -> bool {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) > self.window)
        {
            self.count = 0;
        }
        self.count += 1;
        self.last = Some(now);
        self.count >= self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200, 400, t0);
        let allowed = (0..1000).filter(|_| b.try_take(t0)).count();
        assert_eq!(allowed, 400);
        // 100 ms later: 20 more tokens.
        let t1 = t0 + Duration::from_millis(100);
        let allowed = (0..1000).filter(|_| b.try_take(t1)).count();
        assert_eq!(allowed, 20);
        // Long idle refills only up to the burst.
        let t2 = t1 + Duration::from_secs(60);
        let allowed = (0..1000).filter(|_| b.try_take(t2)).count();
        assert_eq!(allowed, 400);
    }

    #[test]
    fn strikes_close_repeat_offenders_and_forgive_quiet_ones() {
        let t0 = Instant::now();
        let mut s = Strikes::new(3, Duration::from_secs(30));
        assert!(!s.strike(t0));
        assert!(!s.strike(t0));
        assert!(s.strike(t0 + Duration::from_secs(1)));
        let mut s = Strikes::new(3, Duration::from_secs(30));
        assert!(!s.strike(t0));
        assert!(!s.strike(t0));
        assert!(!s.strike(t0 + Duration::from_secs(31)));
    }

    #[test]
    fn spending_into_debt_says_how_long_to_wait() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(1000, 2000, t0);
        assert_eq!(b.spend(1500.0, t0), Duration::ZERO);
        // 500 left; 1500 more is 1000 in debt: one second at 1000/s.
        assert_eq!(b.spend(1500.0, t0), Duration::from_secs(1));
        // Half a second later, half of the debt is paid.
        let wait = b.spend(0.0, t0 + Duration::from_millis(500));
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
    }
}
