//! One person's tile: name, verification, video state and the newest
//! picture (decoded only when drawn).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::render::TileMemory;
use crate::media::{jpeg, scale};
use crate::session::state::Camera;

pub struct Tile {
    pub id: String,
    /// The name shown: the one the peer chose, with its tag when another
    /// member has the same name (see [`super::app::App::refresh_names`]).
    pub name: Option<String>,
    /// The name the peer chose, the tag of its signing key, and whether
    /// the tag is shown (another member has the same name).
    pub own_name: Option<String>,
    pub tag: String,
    pub tagged: bool,
    pub verified: bool,
    pub mismatch: bool,
    /// What we knew of its identity key before this call.
    pub known: Option<crate::identity::known::Known>,
    /// A verified key under a new name: the name it was verified as.
    pub known_as: Option<String>,
    /// Its identity key (the tag that tells same-named members apart is
    /// drawn from it).
    pub identity: Option<[u8; 32]>,
    /// Its name came with another identity key than the one we knew: said
    /// on the tile for the rest of the call.
    pub identity_warning: Option<String>,
    /// What the peer says about its camera (sealed state messages).
    pub camera: Camera,
    /// Latest frame not drawn yet; decoded only when drawn (stale ones are
    /// skipped).
    pending: Option<Pending>,
    pub image: Option<RgbImage>,
    /// Counts changes of `image` (pixel modes send only new pictures).
    pub generation: u64,
    /// Pixel size and column step `image` was scaled for.
    scaled_for: ((u32, u32), (u32, u32)),
    source: Option<RgbImage>,
    arrivals: VecDeque<Instant>,
    pub latency_ms: f64,
    /// Capture time (µs since the epoch) of the pending and the shown picture.
    pending_ts: u64,
    pub(super) shown_ts: u64,
    pub memory: TileMemory,
    pub decode_failures: u64,
    /// Frames held back until the sender's voice catches up (lip sync):
    /// (JPEG, capture time µs, arrival).
    held: VecDeque<(Vec<u8>, u64, Instant)>,
    /// Voice: level of what is playing (dBFS), and muted.
    pub level_dbfs: f32,
    pub muted: bool,
    /// We hear this member (its voice reaches us).
    pub voice: bool,
    /// Video is paused for lack of bandwidth (ours, or for our own tile,
    /// our uplink's): said on the tile instead of a frozen picture.
    pub bandwidth_paused: bool,
}

/// Frames held for lip sync, at most (half a second at 30 fps).
const MAX_HELD: usize = 16;
/// Longest a frame waits for the voice (a voice stream that stalls must
/// not freeze the picture).
const MAX_HOLD: Duration = Duration::from_millis(300);
/// Video may lead the voice by this much (ITU-R BT.1359: ±45 ms is not
/// noticed).
pub const LIP_SYNC_LEAD_US: i64 = 45_000;
/// A level above this is "speaking".
pub const SPEAKING_DBFS: f32 = -45.0;

/// A picture waiting to be drawn.
enum Pending {
    Jpeg(Vec<u8>),
    /// Our own preview, already decoded.
    Image(RgbImage),
}

/// Longest name shown, in columns.
pub(super) const NAME_COLUMNS: usize = 24;

impl Tile {
    pub fn new(id: &str) -> Self {
        Tile {
            id: id.to_string(),
            name: None,
            own_name: None,
            tag: String::new(),
            tagged: false,
            verified: false,
            mismatch: false,
            known: None,
            known_as: None,
            identity: None,
            identity_warning: None,
            camera: Camera::On,
            pending: None,
            image: None,
            generation: 0,
            scaled_for: ((0, 0), (0, 0)),
            source: None,
            arrivals: VecDeque::new(),
            latency_ms: 0.0,
            pending_ts: 0,
            shown_ts: 0,
            memory: TileMemory::default(),
            decode_failures: 0,
            held: VecDeque::new(),
            level_dbfs: -100.0,
            muted: false,
            voice: false,
            bandwidth_paused: false,
        }
    }

    /// The name to show: cleaned for the screen, at most a few columns.
    pub fn label(&self) -> String {
        self.name_in(NAME_COLUMNS)
    }

    /// The name in at most `columns`: a tag that tells apart members with
    /// the same name is never the part cut off.
    pub fn name_in(&self, columns: usize) -> String {
        match (&self.own_name, &self.name) {
            (Some(own), _) if self.tagged && columns > self.tag.chars().count() + 2 => {
                let room = columns - self.tag.chars().count() - 1;
                format!("{}·{}", display_name(own, room), self.tag)
            }
            (_, Some(n)) => display_name(n, columns),
            _ => format!("{}…", self.id.chars().take(6).collect::<String>()),
        }
    }

    /// Frames that arrived in the last second.
    pub fn fps(&self) -> usize {
        let now = Instant::now();
        self.arrivals
            .iter()
            .filter(|a| now.duration_since(**a) <= Duration::from_secs(1))
            .count()
    }

    /// What the tile's label says after the name: the rate, or why there
    /// is none.
    pub fn video_note(&self) -> String {
        match self.camera {
            Camera::Off => "camera off".into(),
            Camera::Absent => "view only".into(),
            Camera::On => match self.fps() {
                0 if self.bandwidth_paused => "video paused: link too thin".into(),
                0 => String::new(),
                fps => format!("{fps} fps  {:.0} ms", self.latency_ms),
            },
        }
    }

    pub(super) fn on_frame(&mut self, jpeg: Vec<u8>, timestamp_us: u64, latency_ms: f64) {
        let now = Instant::now();
        self.held.push_back((jpeg, timestamp_us, now));
        while self.held.len() > MAX_HELD {
            self.held.pop_front();
        }
        self.latency_ms = latency_ms;
        // A frame means the camera is on, whatever an older state said.
        self.camera = Camera::On;
        self.arrivals.push_back(now);
        while self
            .arrivals
            .front()
            .is_some_and(|a| now.duration_since(*a) > Duration::from_secs(1))
        {
            self.arrivals.pop_front();
        }
    }

    /// Moves the newest frame that may be shown now to be drawn next.
    /// `voice_at` is the capture time of the sender's voice playing now
    /// (None: no voice from it, nothing to wait for); a frame captured more
    /// than [`LIP_SYNC_LEAD_US`] after it waits, up to [`MAX_HOLD`].
    pub fn release(&mut self, voice_at: Option<i64>, now: Instant) {
        let due = |(_, ts, arrived): &(Vec<u8>, u64, Instant)| match voice_at {
            None => true,
            Some(at) => {
                *ts as i64 <= at + LIP_SYNC_LEAD_US || now.duration_since(*arrived) >= MAX_HOLD
            }
        };
        let Some(last_due) = self.held.iter().rposition(due) else {
            return;
        };
        // Older frames than the one shown next are stale: dropped.
        self.held.drain(..last_due);
        let (jpeg, ts, _) = self.held.pop_front().expect("last_due is in range");
        self.pending = Some(Pending::Jpeg(jpeg));
        self.pending_ts = ts;
    }

    /// Speaking now (for the tile's indicator).
    pub fn speaking(&self) -> bool {
        !self.muted && self.level_dbfs > SPEAKING_DBFS
    }

    /// The voice as a three-step meter (`▮▮▯`), or "muted".
    pub fn voice_note(&self) -> Option<String> {
        if self.muted {
            return Some("muted".into());
        }
        if !self.voice {
            return None;
        }
        Some(meter(self.level_dbfs))
    }

    /// Decodes the newest frame (if any, and `take_new`) and scales the
    /// picture to fit `px`, each pixel shown `column_step` columns wide.
    /// Decodes the newest frame if `take_new`, and scales the picture to
    /// fit `px` pixels shown `aspect.0 : aspect.1` (width to height).
    pub fn prepare(&mut self, px: (u32, u32), aspect: (u32, u32), take_new: bool) {
        let newest = if take_new || self.source.is_none() {
            self.pending.take()
        } else {
            None
        };
        match newest {
            Some(Pending::Jpeg(jpg)) => match jpeg::decode(&jpg) {
                Ok(img) => {
                    self.source = Some(img);
                    self.scaled_for = ((0, 0), (0, 0));
                    self.shown_ts = self.pending_ts;
                }
                Err(_) => self.decode_failures += 1,
            },
            Some(Pending::Image(img)) => {
                self.source = Some(img);
                self.scaled_for = ((0, 0), (0, 0));
            }
            None => {}
        }
        if self.scaled_for != (px, aspect) {
            if let Some(src) = &self.source {
                self.image = Some(scale::scale_to_fit_pixels(src, px, aspect));
                self.scaled_for = (px, aspect);
                self.generation += 1;
            }
        }
    }

    /// Our own preview: already an image, drawn with the next video frame.
    pub fn set_preview(&mut self, img: RgbImage) {
        self.pending = Some(Pending::Image(img));
    }

    /// A new picture waits to be drawn.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// For benchmarks and tests: `jpeg` as this tile's newest frame.
    pub(super) fn set_pending_jpeg(&mut self, jpeg: Vec<u8>) {
        self.pending = Some(Pending::Jpeg(jpeg));
    }
}

/// A level (dBFS) as three bars: speaking quietly, normally, loudly.
pub fn meter(level_dbfs: f32) -> String {
    let bars = [SPEAKING_DBFS, -30.0, -18.0]
        .iter()
        .filter(|t| level_dbfs > **t)
        .count();
    let mut m = "▮".repeat(bars);
    m.push_str(&"▯".repeat(3 - bars));
    m
}

/// A name as shown: cut to `columns` (by display width, whole grapheme
/// clusters) with an ellipsis. An emoji sequence joined with ZWJ
/// (👩‍👩‍👧) shows as its first emoji: terminals disagree on how wide the
/// joined forms are, which breaks borders, and shown apart they would read
/// as several people. Variation selectors and controls go.
pub fn display_name(name: &str, columns: usize) -> String {
    use unicode_segmentation::UnicodeSegmentation;
    let mut clean = String::new();
    for g in name.graphemes(true) {
        let joined = g.contains('\u{200D}');
        let mut kept = g
            .chars()
            .filter(|c| !matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}') && !c.is_control());
        if joined {
            clean.extend(kept.next());
        } else {
            clean.extend(kept);
        }
    }
    super::ui::truncate(&clean, columns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_lose_joiners() {
        assert_eq!(display_name("Ada", 24), "Ada");
        // One family, not three people.
        assert_eq!(
            display_name("👨\u{200D}👩\u{200D}👧 family", 24),
            "👨 family"
        );
        assert_eq!(display_name("pwned\u{1b}[2J\u{7}", 24), "pwned[2J");
        let long = display_name("Bartholomew Featherstonehaugh-Smythe", 12);
        assert!(long.ends_with('…'), "{long}");
        assert!(unicode_width::UnicodeWidthStr::width(long.as_str()) <= 12);
        assert!(
            unicode_width::UnicodeWidthStr::width(display_name("日本語の名前です長い", 8).as_str())
                <= 8
        );
    }

    #[test]
    fn video_waits_for_the_voice_but_not_forever() {
        let mut t = Tile::new("p");
        let now = Instant::now();
        t.on_frame(vec![1], 1_000_000, 1.0);
        t.on_frame(vec![2], 1_033_000, 1.0);
        // The voice plays what was captured at 0.9 s: both frames are more
        // than 45 ms ahead of it.
        t.release(Some(900_000), now);
        assert!(!t.has_pending());
        // At 0.96 s the first is within 45 ms; the second still waits.
        t.release(Some(960_000), now);
        assert!(matches!(t.pending, Some(Pending::Jpeg(ref j)) if j == &[1]));
        // Without voice from this peer, nothing waits.
        t.release(None, now);
        assert!(matches!(t.pending, Some(Pending::Jpeg(ref j)) if j == &[2]));
        // A stalled voice holds a frame at most MAX_HOLD.
        t.on_frame(vec![3], 2_000_000, 1.0);
        t.release(Some(0), now);
        assert!(matches!(t.pending, Some(Pending::Jpeg(ref j)) if j == &[2]));
        t.release(Some(0), now + MAX_HOLD + Duration::from_millis(1));
        assert!(matches!(t.pending, Some(Pending::Jpeg(ref j)) if j == &[3]));
    }

    #[test]
    fn voice_meter_and_mute() {
        let mut t = Tile::new("p");
        assert_eq!(t.voice_note(), None, "no voice from it");
        t.voice = true;
        t.level_dbfs = -100.0;
        assert_eq!(t.voice_note().as_deref(), Some("▯▯▯"));
        t.level_dbfs = -20.0;
        assert_eq!(t.voice_note().as_deref(), Some("▮▮▯"));
        assert!(t.speaking());
        t.muted = true;
        assert_eq!(t.voice_note().as_deref(), Some("muted"));
        assert!(!t.speaking());
    }

    #[test]
    fn the_rate_falls_when_frames_stop() {
        let mut t = Tile::new("p");
        t.on_frame(vec![], 0, 1.0);
        assert_eq!(t.fps(), 1);
        t.arrivals[0] -= Duration::from_secs(2);
        assert_eq!(t.fps(), 0, "stale arrivals don't count");
        assert_eq!(t.video_note(), "");
        t.camera = Camera::Absent;
        assert_eq!(t.video_note(), "view only");
    }
}
