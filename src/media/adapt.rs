//! Adaptive quality, driven by measurement: the sender steps JPEG quality,
//! frame rate and resolution down when its own uplink backs up or when most
//! of its receivers report rising delay or loss, and back up after a quiet
//! spell (hysteresis: down fast, up slowly).
//!
//! One slow receiver is a minority: the relay drops its stale media and its
//! smaller `view` shrinks what it asks for; it doesn't drag the room down.

use std::time::{Duration, Instant};

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Level {
    pub quality: u8,
    pub fps: u32,
    /// Fraction of the requested tile size to encode at.
    pub scale: f32,
}

pub const LADDER: [Level; 5] = [
    Level {
        quality: 25,
        fps: 5,
        scale: 0.5,
    },
    Level {
        quality: 30,
        fps: 10,
        scale: 0.5,
    },
    Level {
        quality: 33,
        fps: 15,
        scale: 0.75,
    },
    Level {
        quality: 38,
        fps: 24,
        scale: 1.0,
    },
    Level {
        quality: crate::media::jpeg::DEFAULT_QUALITY,
        fps: 30,
        scale: 1.0,
    },
];
pub const TOP: usize = LADDER.len() - 1;

/// A receiver's report on our stream over the last second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverReport {
    pub delay_ms: f64,
    pub received: u32,
    pub lost: u32,
}

impl ReceiverReport {
    fn congested(&self) -> bool {
        let total = self.received + self.lost;
        let loss = if total == 0 {
            0.0
        } else {
            f64::from(self.lost) / f64::from(total)
        };
        self.delay_ms > DELAY_LIMIT_MS || loss > LOSS_LIMIT
    }
}

/// What the sender measured over the last second.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Frames sent / replaced unsent in our uplink's one-frame slot.
    pub sent: u64,
    pub replaced: u64,
    /// Mean time from queueing a frame to the socket taking it.
    pub send_ms: f64,
    /// How long one frame takes on our uplink (its measured rate): our
    /// voice waits behind it.
    pub frame_link_ms: f64,
    pub reports: Vec<ReceiverReport>,
}

const DELAY_LIMIT_MS: f64 = 400.0;
const LOSS_LIMIT: f64 = 0.15;
const SEND_LIMIT_MS: f64 = 150.0;
/// A frame holding our uplink longer than this holds our voice up too
/// long: smaller frames.
const FRAME_LINK_LIMIT_MS: f64 = 40.0;
/// Minimum time between two steps down, and the quiet time before a step up.
const DOWN_EVERY: Duration = Duration::from_secs(1);
/// Receivers' reports must say "congested" this many seconds in a row
/// before we step down for them: one receiver's one-second stall (a busy
/// machine, a GC-like pause) is not the path filling up, and with two
/// receivers one slow one plus one blip would otherwise be a "majority".
const RECEIVERS_FOR: u32 = 2;
const UP_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Uplink,
    Receivers,
    Recovered,
}

pub struct Adapter {
    level: usize,
    enabled: bool,
    last_change: Instant,
    calm_since: Option<Instant>,
    /// Seconds in a row most receivers reported congestion.
    receivers_congested: u32,
}

impl Adapter {
    pub fn new(enabled: bool, now: Instant) -> Self {
        Adapter {
            level: TOP,
            enabled,
            last_change: now,
            calm_since: Some(now),
            receivers_congested: 0,
        }
    }

    pub fn level(&self) -> usize {
        self.level
    }

    pub fn current(&self) -> Level {
        LADDER[self.level]
    }

    /// Feeds one second of measurements; returns the new level on a change.
    pub fn update(&mut self, s: &Signals, now: Instant) -> Option<(usize, Reason)> {
        if !self.enabled {
            return None;
        }
        let attempts = s.sent + s.replaced;
        let uplink = (attempts > 0 && s.replaced * 10 > attempts)
            || s.send_ms > SEND_LIMIT_MS
            || s.frame_link_ms > FRAME_LINK_LIMIT_MS;
        let congested_receivers = s.reports.iter().filter(|r| r.congested()).count();
        let most = !s.reports.is_empty() && congested_receivers * 2 > s.reports.len();
        self.receivers_congested = if most {
            self.receivers_congested + 1
        } else {
            0
        };
        let receivers = self.receivers_congested >= RECEIVERS_FOR;
        if uplink || receivers || most {
            self.calm_since = None;
            if (uplink || receivers)
                && self.level > 0
                && now.duration_since(self.last_change) >= DOWN_EVERY
            {
                self.level -= 1;
                self.last_change = now;
                let reason = if uplink {
                    Reason::Uplink
                } else {
                    Reason::Receivers
                };
                return Some((self.level, reason));
            }
            return None;
        }
        let calm = *self.calm_since.get_or_insert(now);
        if self.level < TOP
            && now.duration_since(calm) >= UP_AFTER
            && now.duration_since(self.last_change) >= UP_AFTER
        {
            self.level += 1;
            self.last_change = now;
            self.calm_since = Some(now);
            return Some((self.level, Reason::Recovered));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(delay_ms: f64, lost: u32) -> ReceiverReport {
        ReceiverReport {
            delay_ms,
            received: 30 - lost,
            lost,
        }
    }

    fn second(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn frames_that_hold_the_uplink_long_step_down() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let long = Signals {
            sent: 30,
            frame_link_ms: 70.0,
            ..Default::default()
        };
        assert_eq!(a.update(&long, t0 + second(1)), Some((3, Reason::Uplink)));
        let short = Signals {
            sent: 30,
            frame_link_ms: 20.0,
            ..Default::default()
        };
        assert_eq!(a.update(&short, t0 + second(2)), None);
    }

    #[test]
    fn uplink_backlog_steps_down_fast_and_recovers_slowly() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let backlog = Signals {
            sent: 10,
            replaced: 20,
            ..Default::default()
        };
        assert_eq!(
            a.update(&backlog, t0 + second(1)),
            Some((3, Reason::Uplink))
        );
        assert_eq!(
            a.update(&backlog, t0 + second(2)),
            Some((2, Reason::Uplink))
        );
        let calm = Signals {
            sent: 15,
            ..Default::default()
        };
        // Hysteresis: no step up before 5 quiet seconds.
        for s in 3..7 {
            assert_eq!(a.update(&calm, t0 + second(s)), None);
        }
        assert_eq!(
            a.update(&calm, t0 + second(8)),
            Some((3, Reason::Recovered))
        );
        assert_eq!(a.update(&calm, t0 + second(9)), None);
        assert_eq!(
            a.update(&calm, t0 + second(13)),
            Some((4, Reason::Recovered))
        );
        assert_eq!(a.update(&calm, t0 + second(30)), None); // already at the top
    }

    #[test]
    fn slow_send_counts_as_uplink_congestion() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let slow = Signals {
            sent: 30,
            send_ms: 400.0,
            ..Default::default()
        };
        assert_eq!(a.update(&slow, t0 + second(2)), Some((3, Reason::Uplink)));
    }

    #[test]
    fn a_slow_minority_of_receivers_does_not_drag_the_room_down() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let one_slow = Signals {
            sent: 30,
            reports: vec![report(900.0, 20), report(20.0, 0), report(25.0, 1)],
            ..Default::default()
        };
        for s in 1..10 {
            assert_eq!(a.update(&one_slow, t0 + second(s)), None);
        }
        let most_slow = Signals {
            sent: 30,
            reports: vec![report(900.0, 20), report(700.0, 0), report(25.0, 1)],
            ..Default::default()
        };
        // One second of it may be a blip; two in a row is the path.
        assert_eq!(a.update(&most_slow, t0 + second(11)), None);
        assert_eq!(
            a.update(&most_slow, t0 + second(12)),
            Some((3, Reason::Receivers))
        );
    }

    /// Two receivers, one throttled for good: a one-second stall of the
    /// other (its machine busy) is not a majority worth stepping down for.
    #[test]
    fn a_fast_receivers_one_second_blip_is_not_a_majority() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let steady = Signals {
            sent: 30,
            reports: vec![report(900.0, 20), report(20.0, 0)],
            ..Default::default()
        };
        let blip = Signals {
            sent: 30,
            reports: vec![report(900.0, 20), report(650.0, 0)],
            ..Default::default()
        };
        for s in 1..30 {
            let signals = if s % 4 == 0 { &blip } else { &steady };
            assert_eq!(a.update(signals, t0 + second(s)), None, "second {s}");
        }
        assert_eq!(a.level(), TOP);
    }

    #[test]
    fn never_below_the_bottom_and_disabled_means_fixed() {
        let t0 = Instant::now();
        let mut a = Adapter::new(true, t0);
        let bad = Signals {
            sent: 1,
            replaced: 30,
            ..Default::default()
        };
        for s in 1..20 {
            a.update(&bad, t0 + second(s));
        }
        assert_eq!(a.level(), 0);
        let mut fixed = Adapter::new(false, t0);
        assert_eq!(fixed.update(&bad, t0 + second(5)), None);
        assert_eq!(fixed.level(), TOP);
    }
}
