//! Sliding replay window of 128 counters per (sender, key).
//!
//! `check` is side-effect free; `commit` runs only after the AEAD tag verified,
//! so a forged frame (say, with a huge counter) can never move the window.

pub const WINDOW: u64 = 128;

#[derive(Debug, Default, Clone)]
pub struct ReplayWindow {
    /// Highest counter accepted so far, if any.
    top: Option<u64>,
    /// Bit i set = counter `top - i` was accepted.
    seen: u128,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("counter already seen (replay)")]
    Replay,
    #[error("counter older than the replay window")]
    TooOld,
}

impl ReplayWindow {
    pub fn check(&self, ctr: u64) -> Result<(), ReplayError> {
        let Some(top) = self.top else { return Ok(()) };
        if ctr > top {
            return Ok(());
        }
        let age = top - ctr;
        if age >= WINDOW {
            Err(ReplayError::TooOld)
        } else if self.seen & (1u128 << age) != 0 {
            Err(ReplayError::Replay)
        } else {
            Ok(())
        }
    }

    /// Records `ctr` as accepted. Call only after `check` passed and the
    /// message authenticated.
    pub fn commit(&mut self, ctr: u64) {
        match self.top {
            Some(top) if ctr <= top => self.seen |= 1u128 << (top - ctr),
            Some(top) => {
                let shift = ctr - top;
                self.seen = if shift >= WINDOW {
                    0
                } else {
                    self.seen << shift
                };
                self.seen |= 1;
                self.top = Some(ctr);
            }
            None => {
                self.seen = 1;
                self.top = Some(ctr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(w: &mut ReplayWindow, ctr: u64) -> Result<(), ReplayError> {
        w.check(ctr)?;
        w.commit(ctr);
        Ok(())
    }

    #[test]
    fn replay_and_window_rules() {
        let mut w = ReplayWindow::default();
        assert_eq!(accept(&mut w, 5), Ok(()));
        assert_eq!(accept(&mut w, 5), Err(ReplayError::Replay));
        assert_eq!(accept(&mut w, 3), Ok(())); // out of order, inside window
        assert_eq!(accept(&mut w, 3), Err(ReplayError::Replay)); // ...once
        assert_eq!(accept(&mut w, 200), Ok(()));
        assert_eq!(accept(&mut w, 200 - 127), Ok(()));
        assert_eq!(accept(&mut w, 200 - 128), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 5), Err(ReplayError::TooOld));
        assert_eq!(accept(&mut w, 199), Ok(()));
    }

    #[test]
    fn check_alone_does_not_move_the_window() {
        let mut w = ReplayWindow::default();
        accept(&mut w, 10).unwrap();
        assert!(w.check(u64::MAX).is_ok()); // a forged huge counter, never committed
        assert_eq!(accept(&mut w, 11), Ok(()));
        assert_eq!(accept(&mut w, 9), Ok(()));
    }

    #[test]
    fn far_jump_clears_history() {
        let mut w = ReplayWindow::default();
        accept(&mut w, 0).unwrap();
        accept(&mut w, 1000).unwrap();
        assert_eq!(accept(&mut w, 999), Ok(()));
        assert_eq!(accept(&mut w, 1000), Err(ReplayError::Replay));
    }
}
