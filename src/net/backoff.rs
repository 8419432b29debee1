//! Reconnect schedule: exponential backoff (1, 2, 4, 8 … capped at 30 s) with
//! "equal jitter" (each delay is uniformly within its upper half), so a
//! relay restart doesn't bring every client back in the same instant.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_secs(1);
pub const CAP: Duration = Duration::from_secs(30);

/// The un-jittered delay before reconnect attempt `attempt` (1-based).
pub fn base_delay(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    (FIRST * 2u32.pow(doublings)).min(CAP)
}

/// The delay before attempt `attempt`, with `unit` (uniform in [0, 1)) as
/// the jitter draw: between half and all of the base delay.
pub fn delay(attempt: u32, unit: f64) -> Duration {
    let base = base_delay(attempt);
    base / 2 + base.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
}

/// A jitter draw from the OS RNG.
pub fn random_unit() -> f64 {
    rand_core::RngCore::next_u32(&mut rand_core::OsRng) as f64 / (u32::MAX as f64 + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_doubles_to_the_cap() {
        let secs: Vec<u64> = (1..=8).map(|a| base_delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(base_delay(1000), CAP);
        assert_eq!(base_delay(0), FIRST);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        for attempt in 1..10 {
            let base = base_delay(attempt);
            assert_eq!(delay(attempt, 0.0), base / 2);
            assert!(delay(attempt, 0.999_999) <= base);
            assert!(delay(attempt, 0.999_999) > base.mul_f64(0.99));
            let mid = delay(attempt, 0.5);
            assert!(mid > base / 2 && mid < base);
        }
        // Out-of-range draws are clamped, never panic.
        assert_eq!(delay(3, -1.0), base_delay(3) / 2);
        assert_eq!(delay(3, 7.0), base_delay(3));
        for _ in 0..100 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
