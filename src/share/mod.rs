//! Sharing a terminal in the call (DESIGN.md §10).
//!
//! The sharer runs a program in a pty of its own ([`pty`], [`live`]),
//! parses its output into a screen of cells ([`screen`]) and sends the
//! latest screen, sealed and signed like video, in a stream of its own
//! ([`sender`]). Viewers draw cells, never bytes. Who may type is the
//! sharer's call: one member at a time, whose keys travel sealed pairwise
//! to the sharer; the sharer writes keys to the pty only from that member.

pub mod live;
pub mod pty;
pub mod record;
pub mod screen;
pub mod sender;

use screen::{ShareError, ShareScreen};

/// What travels in [`Stream::Share`](crate::crypto::frame::Stream::Share)
/// frames (everyone's) and what a viewer asks of a sharer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareMessage {
    /// A screen update ([`screen`]'s wire form).
    Update(Vec<u8>),
    /// Who may type in the sharer's share now (None: nobody but the
    /// sharer).
    Control(Option<String>),
    /// The share ended.
    Stopped(String),
    /// A viewer is out of step with `sharer`'s screen: send a snapshot.
    NeedSnapshot(String),
}

const M_UPDATE: u8 = 1;
const M_CONTROL: u8 = 2;
const M_STOPPED: u8 = 3;
const M_NEED_SNAPSHOT: u8 = 4;
/// Peer ids and reasons are short.
const MAX_TEXT: usize = 200;

impl ShareMessage {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body): (u8, &[u8]) = match self {
            ShareMessage::Update(u) => (M_UPDATE, u),
            ShareMessage::Control(to) => (M_CONTROL, to.as_deref().unwrap_or("").as_bytes()),
            ShareMessage::Stopped(reason) => (M_STOPPED, reason.as_bytes()),
            ShareMessage::NeedSnapshot(sharer) => (M_NEED_SNAPSHOT, sharer.as_bytes()),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(tag);
        out.extend_from_slice(body);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<Self, ShareError> {
        let (&tag, body) = payload.split_first().ok_or(ShareError::Malformed)?;
        let text = || -> Result<String, ShareError> {
            if body.len() > MAX_TEXT {
                return Err(ShareError::Malformed);
            }
            let s = std::str::from_utf8(body).map_err(|_| ShareError::Malformed)?;
            Ok(crate::sanitize::clean(s))
        };
        Ok(match tag {
            M_UPDATE => ShareMessage::Update(body.to_vec()),
            M_CONTROL => {
                let to = text()?;
                ShareMessage::Control((!to.is_empty()).then_some(to))
            }
            M_STOPPED => ShareMessage::Stopped(text()?),
            M_NEED_SNAPSHOT => ShareMessage::NeedSnapshot(text()?),
            _ => return Err(ShareError::Malformed),
        })
    }
}

/// Bytes of update bodies (inflated) a viewer decodes per sharer per
/// second, and at most at once: a sharer paced like ours sends a small
/// share of it (a 400×200 snapshot is ~1.4 MB inflated, every 5 s); a
/// hostile one can't keep a viewer's core busy with bodies that inflate
/// a thousandfold.
const BODY_BUDGET_PER_SEC: f64 = 4_000_000.0;

/// A viewer's copy of one member's share.
#[derive(Debug)]
pub struct ShareView {
    /// The screen and its update number; None until a snapshot arrives.
    pub screen: Option<(ShareScreen, u32)>,
    /// Who may type in it (besides its sharer).
    pub controller: Option<String>,
    /// A snapshot was asked for and hasn't come yet.
    pub asked: bool,
    /// A screen was shown (`share_started` said).
    pub started: bool,
    /// Body bytes this viewer may still decode, refilled over time.
    budget: f64,
    refilled: std::time::Instant,
}

impl Default for ShareView {
    fn default() -> Self {
        ShareView {
            screen: None,
            controller: None,
            asked: false,
            started: false,
            budget: BODY_BUDGET_PER_SEC,
            refilled: std::time::Instant::now(),
        }
    }
}

impl ShareView {
    /// Applies an update. `Ok(true)`: the screen changed; `Err(NeedSnapshot)`
    /// when out of step (ask once, until a snapshot comes); `OverBudget`:
    /// dropped undecoded (the next diff finds us out of step).
    pub fn apply(&mut self, update: &[u8], now: std::time::Instant) -> Result<bool, ShareError> {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.refilled = now;
        self.budget = (self.budget + elapsed * BODY_BUDGET_PER_SEC).min(BODY_BUDGET_PER_SEC);
        let current = self.screen.as_ref().map(|(s, seq)| (s, *seq));
        let allowed = self.budget.max(0.0) as usize;
        // A body is never smaller than its wire form: charge that at least.
        self.budget -= update.len() as f64;
        match ShareScreen::apply_within(current, update, allowed) {
            Ok((next, body_len)) => {
                self.budget -= body_len as f64;
                let changed = self.screen.as_ref().is_none_or(|(s, _)| *s != next.0);
                self.screen = Some(next);
                self.asked = false;
                Ok(changed)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_junk_is_refused() {
        for m in [
            ShareMessage::Update(vec![1, 2, 3]),
            ShareMessage::Control(Some("p7".into())),
            ShareMessage::Control(None),
            ShareMessage::Stopped("the program exited".into()),
            ShareMessage::NeedSnapshot("p2".into()),
        ] {
            assert_eq!(ShareMessage::decode(&m.encode()), Ok(m));
        }
        assert!(ShareMessage::decode(&[]).is_err());
        assert!(ShareMessage::decode(&[9]).is_err());
        assert!(ShareMessage::decode(&[M_STOPPED, 0xff]).is_err());
        let long = [vec![M_CONTROL], vec![b'a'; MAX_TEXT + 1]].concat();
        assert!(ShareMessage::decode(&long).is_err());
        // Escapes in a reason are neutralised.
        assert_eq!(
            ShareMessage::decode(&[M_STOPPED, 0x1b, b'[', b'J']),
            Ok(ShareMessage::Stopped("\u{FFFD}[J".into()))
        );
    }
}
