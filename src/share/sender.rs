//! The sharer's side, sans I/O: the program's output goes into a terminal
//! emulator; what leaves is the latest screen, coalesced like mosh's state
//! sync (screens in between are skipped), as diffs against the screen
//! every viewer holds, with a full snapshot now and then for joiners and
//! anyone who fell out of step.

use std::time::{Duration, Instant};

use super::screen::{ShareScreen, MAX_COLS, MAX_ROWS};

/// At most this many updates a second (a screen that changes faster is
/// sampled: the last state always goes out).
const MIN_INTERVAL: Duration = Duration::from_millis(33);
/// A full screen at least this often, so a viewer out of step (a
/// joiner, a reconnect) waits no longer than this.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(5);
/// Output pace: after an update of `n` bytes the next waits `n / this`
/// (a `cat` of a big file costs at most this much of everyone's link).
const MAX_BYTES_PER_SEC: f64 = 48_000.0;

pub struct ShareSender {
    parser: vt100::Parser,
    /// The screen viewers hold (the last one sent), and its seq.
    sent: Option<(ShareScreen, u32)>,
    seq: u32,
    dirty: bool,
    snapshot_due: bool,
    last_snapshot: Option<Instant>,
    next_at: Option<Instant>,
}

impl ShareSender {
    pub fn new(cols: u16, rows: u16) -> Self {
        let (cols, rows) = clamp_size(cols, rows);
        ShareSender {
            parser: vt100::Parser::new(nonzero(rows), nonzero(cols), 0),
            sent: None,
            seq: 0,
            dirty: true,
            snapshot_due: true,
            last_snapshot: None,
            next_at: None,
        }
    }

    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (cols.get(), rows.get())
    }

    /// The program wrote `bytes`.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
        self.dirty = true;
    }

    /// The screen as it stands (the sharer's own view of its share).
    pub fn screen(&self) -> ShareScreen {
        ShareScreen::from_vt100(self.parser.screen())
    }

    pub fn resize(&mut self, cols: u16, rows: u16) {
        let (cols, rows) = clamp_size(cols, rows);
        self.parser
            .screen_mut()
            .set_size(nonzero(rows), nonzero(cols));
        self.dirty = true;
        self.snapshot_due = true;
    }

    /// Someone needs the whole screen (a joiner, a viewer out of step).
    pub fn want_snapshot(&mut self) {
        self.snapshot_due = true;
    }

    /// The next update to send, if one is due: the screen changed (or a
    /// snapshot is owed) and the pace allows.
    pub fn poll(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.next_at.is_some_and(|t| now < t) {
            return None;
        }
        let periodic = self
            .last_snapshot
            .is_none_or(|t| now.duration_since(t) >= SNAPSHOT_EVERY);
        if !self.dirty && !self.snapshot_due && !periodic {
            return None;
        }
        let screen = self.screen();
        let seq = self.seq.wrapping_add(1);
        let update = match &self.sent {
            Some((base, base_seq)) if !self.snapshot_due && !periodic => {
                match screen.encode_diff(base, *base_seq, seq) {
                    Some(diff) => diff,
                    None => {
                        self.dirty = false;
                        return None;
                    }
                }
            }
            _ => {
                self.last_snapshot = Some(now);
                self.snapshot_due = false;
                screen.encode_snapshot(seq)
            }
        };
        self.seq = seq;
        self.sent = Some((screen, seq));
        self.dirty = false;
        let pace = Duration::from_secs_f64(update.len() as f64 / MAX_BYTES_PER_SEC);
        self.next_at = Some(now + pace.max(MIN_INTERVAL));
        Some(update)
    }

    /// When [`poll`](Self::poll) may next have something (for timers).
    pub fn next_poll(&self, now: Instant) -> Instant {
        let paced = self.next_at.unwrap_or(now).max(now);
        if self.dirty || self.snapshot_due {
            paced
        } else {
            let periodic = self.last_snapshot.map_or(now, |t| t + SNAPSHOT_EVERY);
            paced.max(periodic)
        }
    }
}

fn nonzero(v: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(v).unwrap_or(std::num::NonZeroU16::MIN)
}

pub fn clamp_size(cols: u16, rows: u16) -> (u16, u16) {
    (cols.clamp(10, MAX_COLS), rows.clamp(3, MAX_ROWS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screens_coalesce_and_the_last_always_goes_out() {
        let t0 = Instant::now();
        let mut s = ShareSender::new(40, 5);
        let first = s.poll(t0).expect("a first snapshot");
        assert!(ShareScreen::peek(&first).unwrap().snapshot);
        let (mut held, mut seq) = ShareScreen::apply(None, &first).unwrap();
        // A burst of output within one interval: one update, the latest.
        for i in 0..100 {
            s.feed(format!("line {i}\r\n").as_bytes());
            assert_eq!(s.poll(t0 + Duration::from_millis(1)), None);
        }
        let update = s.poll(t0 + MIN_INTERVAL).expect("the latest screen");
        (held, seq) = ShareScreen::apply(Some((&held, seq)), &update).unwrap();
        assert!(held.text().contains("line 99"), "{}", held.text());
        assert_eq!(held, s.screen());
        // Nothing new: nothing sent until the periodic snapshot.
        assert_eq!(s.poll(t0 + MIN_INTERVAL * 3), None);
        let periodic = s.poll(t0 + SNAPSHOT_EVERY * 2).expect("periodic snapshot");
        assert!(ShareScreen::peek(&periodic).unwrap().snapshot);
        let _ = seq;
    }

    #[test]
    fn a_flood_is_paced_by_bytes() {
        let t0 = Instant::now();
        let mut s = ShareSender::new(200, 60);
        let mut now = t0;
        let mut bytes = 0;
        for i in 0..2000 {
            s.feed(format!("{i:0>190}\r\n").as_bytes());
            if let Some(u) = s.poll(now) {
                bytes += u.len();
            }
            now += Duration::from_millis(5);
        }
        let secs = now.duration_since(t0).as_secs_f64();
        assert!(
            bytes as f64 / secs <= MAX_BYTES_PER_SEC * 1.2,
            "{} B/s",
            bytes as f64 / secs
        );
    }

    /// Red team: a hostile program's output (escape sequences of every
    /// kind, wide and combining characters, C1 controls, bidi overrides),
    /// with resizes and snapshot requests in between, never panics the
    /// sharer, never puts a control character in a cell, and every viewer
    /// applying the updates holds exactly the sharer's screen.
    #[test]
    fn redteam_hostile_output_and_resizes_keep_viewers_in_step() {
        let pieces: &[&[u8]] = &[
            b"\x1b]52;c;aGVsbG8=\x07",
            b"\x1b]0;title\x1b\\",
            b"\x1b[?1000h",
            b"\x1bPq#0;2;0;0;0\x1b\\",
            b"\x07",
            b"\xc2\x9b2J",
            b"\xe2\x80\xae",
            b"\xe6\x97\xa5",
            b"\xf0\x9f\x91\x8b",
            b"\xcc\x81\xcc\x81\xcc\x81",
            b"\xe2\x80\x8b",
            b"\x1b[2J",
            b"\x1b[999;999H",
            b"\x1b[1;31;7m",
            b"\x1b[38;2;1;2;3m",
            b"\x1b[?1049h",
            b"\x1b[?1049l",
            b"\x1b[10L",
            b"\x1b[5@",
            b"\x1b[3;2r",
            b"\x1bM",
            b"\r\n",
            b"\t",
            b"ab",
            b"\x1b[?25l",
            b"\x1b[?25h",
        ];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let t0 = Instant::now();
        let mut now = t0;
        let mut s = ShareSender::new(12, 4);
        let mut view = crate::share::ShareView::default();
        for _ in 0..1_500 {
            let r = next();
            match r % 50 {
                0 => s.resize((next() % 500) as u16, (next() % 300) as u16),
                1 => s.want_snapshot(),
                _ => s.feed(pieces[(r >> 8) as usize % pieces.len()]),
            }
            now += Duration::from_millis(20);
            if let Some(u) = s.poll(now) {
                match view.apply(&u, now) {
                    Ok(_) => {}
                    Err(crate::share::screen::ShareError::NeedSnapshot) => continue,
                    Err(e) => panic!("the sharer's own update refused: {e:?}"),
                }
                let (held, _) = view.screen.as_ref().unwrap();
                assert_eq!(*held, s.screen());
                for cell in &held.cells {
                    assert!(
                        !cell.text.chars().any(|c| c.is_control()
                            || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
                        "{cell:?}"
                    );
                }
            }
        }
    }

    /// Red team: a member flooding NeedSnapshot (every one turns into
    /// `want_snapshot`) gets full screens, but no more often, nor more
    /// bytes a second, than the sharer's pace allows.
    #[test]
    fn redteam_snapshot_requests_are_paced() {
        let t0 = Instant::now();
        let mut s = ShareSender::new(MAX_COLS, MAX_ROWS);
        let text: String = (0..MAX_ROWS).map(|i| format!("{i:x>399}\r\n")).collect();
        s.feed(text.as_bytes());
        let (mut now, mut sent, mut bytes) = (t0, 0, 0);
        for _ in 0..5000 {
            s.want_snapshot();
            if let Some(u) = s.poll(now) {
                sent += 1;
                bytes += u.len();
            }
            now += Duration::from_millis(1);
        }
        let secs = now.duration_since(t0).as_secs_f64();
        assert!(
            sent as f64 <= secs / MIN_INTERVAL.as_secs_f64() + 1.0,
            "{sent} snapshots in {secs} s"
        );
        assert!(
            bytes as f64 / secs <= MAX_BYTES_PER_SEC * 1.2,
            "{} B/s",
            bytes as f64 / secs
        );
    }
}
