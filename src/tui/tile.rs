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
    pub name: Option<String>,
    pub verified: bool,
    pub mismatch: bool,
    /// What the peer says about its camera (sealed state messages).
    pub camera: Camera,
    /// Latest frame not drawn yet; decoded only when drawn (stale ones are
    /// skipped).
    pending: Option<Pending>,
    pub image: Option<RgbImage>,
    /// Pixel size and column step `image` was scaled for.
    scaled_for: ((u32, u32), u32),
    source: Option<RgbImage>,
    arrivals: VecDeque<Instant>,
    pub latency_ms: f64,
    /// Capture time (µs since the epoch) of the pending and the shown picture.
    pending_ts: u64,
    pub(super) shown_ts: u64,
    pub memory: TileMemory,
    pub decode_failures: u64,
}

/// A picture waiting to be drawn.
enum Pending {
    Jpeg(Vec<u8>),
    /// Our own preview, already decoded.
    Image(RgbImage),
}

/// Longest name shown, in columns.
const NAME_COLUMNS: usize = 24;

impl Tile {
    pub fn new(id: &str) -> Self {
        Tile {
            id: id.to_string(),
            name: None,
            verified: false,
            mismatch: false,
            camera: Camera::On,
            pending: None,
            image: None,
            scaled_for: ((0, 0), 0),
            source: None,
            arrivals: VecDeque::new(),
            latency_ms: 0.0,
            pending_ts: 0,
            shown_ts: 0,
            memory: TileMemory::default(),
            decode_failures: 0,
        }
    }

    /// The name to show: cleaned for the screen, at most a few columns.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => display_name(n, NAME_COLUMNS),
            None => format!("{}…", &self.id[..self.id.len().min(6)]),
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
                0 => String::new(),
                fps => format!("{fps} fps  {:.0} ms", self.latency_ms),
            },
        }
    }

    pub(super) fn on_frame(&mut self, jpeg: Vec<u8>, timestamp_us: u64, latency_ms: f64) {
        let now = Instant::now();
        self.pending = Some(Pending::Jpeg(jpeg));
        self.pending_ts = timestamp_us;
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

    /// Decodes the newest frame (if any, and `take_new`) and scales the
    /// picture to fit `px`, each pixel shown `column_step` columns wide.
    pub fn prepare(&mut self, px: (u32, u32), column_step: u32, take_new: bool) {
        let newest = if take_new || self.source.is_none() {
            self.pending.take()
        } else {
            None
        };
        match newest {
            Some(Pending::Jpeg(jpg)) => match jpeg::decode(&jpg) {
                Ok(img) => {
                    self.source = Some(img);
                    self.scaled_for = ((0, 0), 0);
                    self.shown_ts = self.pending_ts;
                }
                Err(_) => self.decode_failures += 1,
            },
            Some(Pending::Image(img)) => {
                self.source = Some(img);
                self.scaled_for = ((0, 0), 0);
            }
            None => {}
        }
        if self.scaled_for != (px, column_step) {
            if let Some(src) = &self.source {
                self.image = Some(scale::scale_to_fit_wide(src, px, column_step));
                self.scaled_for = (px, column_step);
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

/// A name as shown: emoji joiners and variation selectors removed (terminals
/// disagree on how wide their sequences are, which breaks borders), cut to
/// `columns` with an ellipsis.
pub fn display_name(name: &str, columns: usize) -> String {
    use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '\u{200D}' | '\u{FE0E}' | '\u{FE0F}') && !c.is_control())
        .collect();
    if clean.width() <= columns {
        return clean;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in clean.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > columns {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_lose_joiners() {
        assert_eq!(display_name("Ada", 24), "Ada");
        assert_eq!(
            display_name("👨\u{200D}👩\u{200D}👧 family", 24),
            "👨👩👧 family"
        );
        let long = display_name("Bartholomew Featherstonehaugh-Smythe", 12);
        assert!(long.ends_with('…'), "{long}");
        assert!(unicode_width::UnicodeWidthStr::width(long.as_str()) <= 12);
        assert!(
            unicode_width::UnicodeWidthStr::width(display_name("日本語の名前です長い", 8).as_str())
                <= 8
        );
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
