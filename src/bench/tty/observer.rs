//! The far end of the link: a terminal's screen (vt100) fed with what
//! arrives, and the measurements taken on it: keystroke → visible, frames
//! actually shown, how old the shown video is.

use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Seek};
use std::time::{Duration, Instant};

/// What the terminal model noticed in the bytes it processed.
#[derive(Default)]
pub struct Events {
    /// DA1 queries (`CSI c`) seen, to be answered.
    pub queries: u32,
    /// Ends of synchronized updates (`CSI ? 2026 l`): frames.
    pub frame_ends: u32,
}

impl vt100::Callbacks for Events {
    fn unhandled_csi(
        &mut self,
        _: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        match (i1, c) {
            (None, 'c') if params.iter().all(|p| p.iter().all(|v| *v == 0)) => self.queries += 1,
            (Some(b'?'), 'l') if params.iter().any(|p| *p == [2026]) => self.frame_ends += 1,
            _ => {}
        }
    }
}

/// The keystrokes a user types into the chat box, one at a time: each is
/// sent when the previous one is on screen (or given up on), after a pause.
pub struct Typist {
    text: String,
    /// Keys of the current round: type up to this long, then delete.
    growing: bool,
    pending: Option<Pending>,
    next_at: Instant,
    pub latencies: Vec<Duration>,
    pub timeouts: u32,
    rng: u64,
}

struct Pending {
    pressed: Instant,
    expect: String,
    measured: bool,
}

const ROUND_LEN: usize = 12;
const GIVE_UP: Duration = Duration::from_secs(5);

impl Typist {
    pub fn new(start: Instant) -> Self {
        Typist {
            text: String::new(),
            growing: true,
            pending: None,
            next_at: start,
            latencies: Vec::new(),
            timeouts: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// The next key to press, if it is time: its bytes. `measure` says
    /// whether its latency counts (inside the measured window).
    pub fn next_key(&mut self, now: Instant, measure: bool) -> Option<Vec<u8>> {
        if self.pending.is_some() || now < self.next_at {
            return None;
        }
        let (key, expect) = if self.growing {
            let c = (b'a' + (self.text.len() % 26) as u8) as char;
            self.text.push(c);
            (vec![c as u8], self.text.clone())
        } else {
            self.text.pop();
            (vec![0x7f], self.text.clone())
        };
        if self.text.len() >= ROUND_LEN {
            self.growing = false;
        } else if self.text.is_empty() {
            self.growing = true;
        }
        self.pending = Some(Pending {
            pressed: now,
            expect: format!("> {expect}▏"),
            measured: measure,
        });
        Some(key)
    }

    /// Checks the screen for the pending key's effect.
    pub fn check(&mut self, screen: &str, now: Instant) {
        let Some(p) = &self.pending else { return };
        let done = screen.contains(&p.expect);
        let late = now.duration_since(p.pressed) >= GIVE_UP;
        if !done && !late {
            return;
        }
        if p.measured {
            if done {
                self.latencies.push(now.duration_since(p.pressed));
            } else {
                self.timeouts += 1;
            }
        }
        self.pending = None;
        // A person's pace: 150–450 ms between keys.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.next_at = now + Duration::from_millis(150 + self.rng % 300);
    }
}

/// Reads the renderer's `STREAMFLOW_TTY_TRACE` file as it grows: for each
/// video frame, where it ends in the byte stream, when it was written and
/// how old its newest picture was then.
pub struct TraceReader {
    path: std::path::PathBuf,
    reader: Option<BufReader<std::fs::File>>,
    pos: u64,
    pub frames: VecDeque<(u64, u64, Option<u64>)>,
}

impl TraceReader {
    /// The file need not exist yet (the app creates it).
    pub fn open(path: &std::path::Path) -> Self {
        TraceReader {
            path: path.to_path_buf(),
            reader: None,
            pos: 0,
            frames: VecDeque::new(),
        }
    }

    pub fn poll(&mut self) {
        if self.reader.is_none() {
            self.reader = std::fs::File::open(&self.path).ok().map(BufReader::new);
        }
        let Some(r) = &mut self.reader else { return };
        if r.seek(std::io::SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut line = String::new();
        while let Ok(n) = r.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break; // a line still being written: read it next time
            }
            self.pos += n as u64;
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let (Some(end), Some(at)) = (v["end"].as_u64(), v["at_us"].as_u64()) {
                    self.frames.push_back((end, at, v["age_us"].as_u64()));
                }
            }
            line.clear();
        }
    }
}

/// The terminal at the far end, and what was measured on it.
pub struct Observer {
    pub parser: vt100::Parser<Events>,
    /// Bytes of the app's output delivered so far.
    pub delivered: u64,
    /// Bytes delivered inside the measured window.
    pub delivered_measured: u64,
    video_hash: u64,
    /// When frames that changed the picture were shown (measured window).
    pub frames_shown: u32,
    /// Age of the shown picture at each frame shown (ms), measured window.
    pub ages_ms: Vec<f64>,
    pub typist: Typist,
    pub trace: Option<TraceReader>,
    /// Where the renderer's first frame starts in what was delivered: the
    /// trace counts from there (what came before is terminal set-up,
    /// notes on stderr, a shell or ssh banner).
    offset: Option<u64>,
    head: Vec<u8>,
}

impl Observer {
    pub fn new(cols: u16, rows: u16, start: Instant) -> Self {
        let rows = std::num::NonZeroU16::new(rows.max(1)).unwrap_or(vt100::Parser::DEFAULT_ROWS);
        let cols = std::num::NonZeroU16::new(cols.max(1)).unwrap_or(vt100::Parser::DEFAULT_COLS);
        Observer {
            parser: vt100::Parser::new_with_callbacks(rows, cols, 0, Events::default()),
            delivered: 0,
            delivered_measured: 0,
            video_hash: 0,
            frames_shown: 0,
            ages_ms: Vec::new(),
            typist: Typist::new(start),
            trace: None,
            offset: None,
            head: Vec::new(),
        }
    }

    /// Finds the renderer's first frame: its first synchronized update,
    /// with the query before it if there is one.
    fn find_first_frame(&mut self, bytes: &[u8]) {
        const BEGIN: &[u8] = b"\x1b[?2026h";
        const QUERY: &[u8] = b"\x1b[c";
        if self.offset.is_some() || self.head.len() > 1 << 20 {
            return;
        }
        let head_start = self.delivered - self.head.len() as u64;
        self.head.extend_from_slice(bytes);
        if let Some(i) = self.head.windows(BEGIN.len()).position(|w| w == BEGIN) {
            let query_first = i >= QUERY.len() && &self.head[i - QUERY.len()..i] == QUERY;
            let start = if query_first { i - QUERY.len() } else { i };
            self.offset = Some(head_start + start as u64);
            self.head = Vec::new();
        }
    }

    /// `bytes` arrived at `now`; returns how many queries they carried.
    pub fn deliver(&mut self, bytes: &[u8], now: Instant, measuring: bool) -> u32 {
        let before = self.parser.callbacks().queries;
        let frames_before = self.parser.callbacks().frame_ends;
        self.parser.process(bytes);
        self.find_first_frame(bytes);
        self.delivered += bytes.len() as u64;
        if measuring {
            self.delivered_measured += bytes.len() as u64;
        }
        let frames = self.parser.callbacks().frame_ends - frames_before;
        if frames > 0 {
            let hash = self.video_hash();
            if hash != self.video_hash {
                self.video_hash = hash;
                if measuring {
                    self.frames_shown += 1;
                }
            }
            self.match_trace(now, measuring);
        }
        self.typist.check(&self.parser.screen().contents(), now);
        self.parser.callbacks().queries - before
    }

    /// Frames whose last byte has now arrived: how old their picture is.
    fn match_trace(&mut self, now: Instant, measuring: bool) {
        let (Some(trace), Some(offset)) = (&mut self.trace, self.offset) else {
            return;
        };
        trace.poll();
        let shown = self.delivered.saturating_sub(offset);
        let now_us = crate::media::capture::now_us();
        let _ = now;
        while let Some(&(end, at_us, age_us)) = trace.frames.front() {
            if end > shown {
                break;
            }
            trace.frames.pop_front();
            if let (Some(age), true) = (age_us, measuring) {
                let transit = now_us.saturating_sub(at_us);
                self.ages_ms.push((transit + age) as f64 / 1000.0);
            }
        }
    }

    /// A fingerprint of the video cells (their symbols and colours):
    /// changes when the picture does.
    fn video_hash(&self) -> u64 {
        let screen = self.parser.screen();
        let (rows, cols) = screen.size();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for r in 0..rows.get() {
            for c in 0..cols.get() {
                if let Some(cell) = screen.cell(r, c) {
                    if is_video_symbol(cell.contents()) {
                        cell.contents().hash(&mut h);
                        colour_key(cell.fgcolor()).hash(&mut h);
                        colour_key(cell.bgcolor()).hash(&mut h);
                    }
                }
            }
        }
        h.finish()
    }

    pub fn contents(&self) -> String {
        self.parser.screen().contents()
    }

    /// The status line's terminal part, e.g. `tty 42 ms 0.9 Mbit/s p1`.
    pub fn tty_status(&self) -> Option<String> {
        let text = self.contents();
        let line = text.lines().rev().find(|l| l.contains("tty "))?;
        let part = line
            .split('│')
            .find(|p| p.trim_start().starts_with("tty "))?;
        Some(part.trim().to_string())
    }
}

fn colour_key(c: vt100::Color) -> u32 {
    match c {
        vt100::Color::Default => 1 << 24 | 1 << 25,
        vt100::Color::Idx(i) => 1 << 25 | u32::from(i),
        vt100::Color::Rgb(r, g, b) => u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b),
    }
}

/// A symbol only video draws: the half block, quadrants, sextants.
fn is_video_symbol(s: &str) -> bool {
    s.chars().next().is_some_and(is_video_char)
}

/// A character only video draws: the half block, quadrants, sextants.
pub fn is_video_char(c: char) -> bool {
    c == '▀' || ('\u{2596}'..='\u{259F}').contains(&c) || ('\u{1FB00}'..='\u{1FB3B}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_queries_and_frames_and_sees_text() {
        let t0 = Instant::now();
        let mut o = Observer::new(40, 5, t0);
        let n = o.deliver(b"\x1b[c\x1b[?2026hhello\x1b[?2026l\x1b[c", t0, true);
        assert_eq!(n, 2);
        assert_eq!(o.parser.callbacks().frame_ends, 1);
        assert!(o.contents().contains("hello"));
    }

    #[test]
    fn typist_measures_until_the_effect_shows() {
        let t0 = Instant::now();
        let mut t = Typist::new(t0);
        assert_eq!(t.next_key(t0, true), Some(b"a".to_vec()));
        assert_eq!(t.next_key(t0, true), None, "one at a time");
        t.check("> ▏", t0 + Duration::from_millis(10));
        t.check("> a▏", t0 + Duration::from_millis(80));
        assert_eq!(t.latencies, vec![Duration::from_millis(80)]);
        let later = t0 + Duration::from_secs(1);
        assert_eq!(t.next_key(later, true), Some(b"b".to_vec()));
        t.check("nothing", later + GIVE_UP);
        assert_eq!(t.timeouts, 1);
    }
}
