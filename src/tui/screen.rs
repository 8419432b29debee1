//! What the terminal shows, and the bytes that change it: ratatui's
//! buffer diff with a byte budget for video.
//!
//! ratatui's `Terminal` writes every changed cell of every frame. Here the
//! text (status line, chat, roster, labels, overlays) always goes out in
//! full, at once, while video cells go out only as far as the flow
//! control's budget allows: the most-changed runs of cells first, and what
//! doesn't fit stays different from the screen, so the next frame (with
//! newer pictures) sends it. Nothing stale is ever queued; a thin link gets
//! a picture that refreshes in parts instead of one that falls behind.

use ratatui::buffer::{Buffer, Cell};
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::encode::{ansi16_index, Encoder};

/// DEC 2026 synchronized output: the terminal shows the frame at once, not
/// half-drawn. Terminals without it ignore the private mode.
pub const BEGIN_SYNC: &[u8] = b"\x1b[?2026h";
pub const END_SYNC: &[u8] = b"\x1b[?2026l";

/// Video cells a priority run holds at most.
const RUN_CELLS: usize = 16;
/// Assumed cost of a cursor move when estimating a run.
const MOVE_BYTES: f64 = 8.0;
/// Roughly how often [`Rendered::splits`] marks a cell boundary.
pub const SPLIT_EVERY: usize = 512;

/// Where video is on screen, and what covers it.
#[derive(Debug, Default, Clone)]
pub struct Regions {
    pub video: Vec<Rect>,
    /// Pixel modes: each tile's picture, drawn by the terminal over its
    /// (blank) video cells.
    pub images: Vec<super::graphics::TileImage>,
    /// Drawn over video (help, chat overlay): text, sent in full.
    pub overlays: Vec<Rect>,
}

/// One frame's bytes and what went into them.
#[derive(Debug, Default)]
pub struct Rendered {
    pub bytes: Vec<u8>,
    /// Text cells written.
    pub text_cells: usize,
    /// Video cells that differ from the screen, and how many were written.
    pub video_changed: usize,
    pub video_sent: usize,
    /// Estimated bytes for every changed video cell: what the frame wanted.
    pub video_wanted: usize,
    /// Bytes the video cells took.
    pub video_bytes: usize,
    /// Offsets in `bytes` between cells, about every [`SPLIT_EVERY`]
    /// bytes: where a query may be inserted.
    pub splits: Vec<usize>,
}

impl Rendered {
    /// Everything that changed was sent.
    pub fn complete(&self) -> bool {
        self.video_sent == self.video_changed
    }
}

pub struct Screen {
    /// What we believe the terminal shows.
    front: Buffer,
    encoder: Encoder,
    /// Clear the terminal before the next frame (start, resize).
    clear: bool,
    /// Frames each cell has waited with a pending video change: unsent
    /// runs gain priority, so a still corner is not starved by motion.
    waiting: Vec<u16>,
    /// Running estimate of bytes per video cell, for budgeting.
    bytes_per_cell: f64,
}

impl Screen {
    pub fn new(area: Rect) -> Self {
        Screen {
            front: Buffer::empty(area),
            encoder: Encoder::new(area.width),
            clear: true,
            waiting: vec![0; area.area() as usize],
            bytes_per_cell: 30.0,
        }
    }

    pub fn area(&self) -> Rect {
        self.front.area
    }

    /// What the terminal shows once the frames rendered so far arrive.
    pub fn shown(&self) -> &Buffer {
        &self.front
    }

    /// A new terminal size: clear and repaint everything.
    pub fn resize(&mut self, area: Rect) {
        *self = Screen {
            bytes_per_cell: self.bytes_per_cell,
            ..Screen::new(area)
        };
    }

    /// The screen's content is unknown (someone else wrote to it).
    pub fn invalidate(&mut self) {
        self.resize(self.front.area);
    }

    /// The bytes that turn the screen into `back`, sending at most about
    /// `video_budget` bytes of video.
    pub fn render(&mut self, back: &Buffer, regions: &Regions, video_budget: usize) -> Rendered {
        if back.area != self.front.area {
            self.resize(back.area);
        }
        let area = self.front.area;
        let width = area.width as usize;
        let mut out = Rendered::default();
        let bytes = &mut out.bytes;
        bytes.extend_from_slice(BEGIN_SYNC);
        if self.clear {
            bytes.extend_from_slice(b"\x1b[0m\x1b[2J");
            self.encoder.forget(area.width);
            self.front = Buffer::empty(area);
            self.clear = false;
        }
        let video_mask = mask(area, regions);
        let updates = self.front.diff(back);
        let mut video: Vec<(u16, u16, &Cell)> = Vec::new();
        for (x, y, cell) in updates {
            if video_mask[y as usize * width + x as usize] {
                video.push((x, y, cell));
            } else {
                self.encoder.cell(bytes, x, y, cell);
                out.text_cells += 1;
                mark_split(&mut out.splits, bytes.len());
            }
        }
        out.video_changed = video.len();

        // Runs of neighbouring changed cells on one row: the unit of
        // priority (a run shares one cursor move).
        let mut runs: Vec<(usize, usize)> = Vec::new(); // [start, end) into `video`
        for (i, (x, y, _)) in video.iter().enumerate() {
            let extend = runs.last().is_some_and(|&(start, end)| {
                let (px, py, _) = video[end - 1];
                py == *y && x - px <= 2 && end - start < RUN_CELLS
            });
            match runs.last_mut() {
                Some(run) if extend => run.1 = i + 1,
                _ => runs.push((i, i + 1)),
            }
        }
        let estimate = |cells: usize| MOVE_BYTES + cells as f64 * self.bytes_per_cell;
        let wanted: f64 = runs.iter().map(|(s, e)| estimate(e - s)).sum();
        out.video_wanted = wanted as usize;

        let video_start = bytes.len();
        let mut sent = vec![false; runs.len()];
        if wanted <= video_budget as f64 {
            for (x, y, cell) in &video {
                self.encoder.cell(bytes, *x, *y, cell);
                mark_split(&mut out.splits, bytes.len());
            }
            sent.iter_mut().for_each(|s| *s = true);
        } else {
            let mut order: Vec<(u64, usize)> = runs
                .iter()
                .enumerate()
                .map(|(r, &(s, e))| {
                    let priority: u64 = video[s..e]
                        .iter()
                        .map(|(x, y, cell)| {
                            let i = *y as usize * width + *x as usize;
                            let age = u64::from(self.waiting[i]);
                            u64::from(difference(&self.front.content[i], cell)) * (4 + age) / 4
                        })
                        .sum();
                    (priority, r)
                })
                .collect();
            order.sort_unstable_by_key(|o| std::cmp::Reverse(o.0));
            for (_, r) in order {
                let (s, e) = runs[r];
                let used = bytes.len() - video_start;
                if used as f64 + estimate(e - s) > video_budget as f64 {
                    continue; // a smaller run may still fit
                }
                for (x, y, cell) in &video[s..e] {
                    self.encoder.cell(bytes, *x, *y, cell);
                }
                mark_split(&mut out.splits, bytes.len());
                sent[r] = true;
            }
        }
        out.video_bytes = bytes.len() - video_start;
        let mut unsent: Vec<(usize, Cell)> = Vec::new();
        for (r, &(s, e)) in runs.iter().enumerate() {
            for (x, y, _) in &video[s..e] {
                let i = *y as usize * width + *x as usize;
                if sent[r] {
                    out.video_sent += 1;
                    self.waiting[i] = 0;
                } else {
                    unsent.push((i, self.front.content[i].clone()));
                    self.waiting[i] = self.waiting[i].saturating_add(1);
                }
            }
        }
        if out.video_sent > 0 {
            let per_cell = out.video_bytes as f64 / out.video_sent as f64;
            self.bytes_per_cell = self.bytes_per_cell * 0.8 + per_cell * 0.2;
        }
        // The screen now shows `back`, except the video cells not sent.
        self.front.content.clone_from(&back.content);
        for (i, cell) in unsent {
            self.front.content[i] = cell;
        }
        out.bytes.extend_from_slice(END_SYNC);
        out
    }
}

fn mark_split(splits: &mut Vec<usize>, at: usize) {
    if at - splits.last().copied().unwrap_or(0) >= SPLIT_EVERY {
        splits.push(at);
    }
}

/// True for cells that show video (inside a video rect, not under an overlay).
fn mask(area: Rect, regions: &Regions) -> Vec<bool> {
    let width = area.width as usize;
    let mut m = vec![false; area.area() as usize];
    let mut paint = |r: &Rect, value: bool| {
        let r = r.intersection(area);
        for y in r.top()..r.bottom() {
            for x in r.left()..r.right() {
                m[y as usize * width + x as usize] = value;
            }
        }
    };
    for r in &regions.video {
        paint(r, true);
    }
    for r in &regions.overlays {
        paint(r, false);
    }
    m
}

/// How different two cells look: summed channel distance of both colours
/// (a different symbol counts as fully different).
fn difference(a: &Cell, b: &Cell) -> u32 {
    if a.symbol() != b.symbol() {
        return 6 * 255;
    }
    distance(rgb(a.fg), rgb(b.fg)) + distance(rgb(a.bg), rgb(b.bg))
}

fn distance(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter().zip(b).map(|(x, y)| u32::from(x.abs_diff(y))).sum()
}

/// The colour a cell shows, as RGB (xterm's palette for indexed colours).
pub fn rgb(colour: Color) -> [u8; 3] {
    match colour {
        Color::Rgb(r, g, b) => [r, g, b],
        Color::Indexed(i) => xterm256(i),
        Color::Reset => [0, 0, 0],
        named => xterm256(ansi16_index(named)),
    }
}

/// xterm's default 256-colour palette.
pub fn xterm256(i: u8) -> [u8; 3] {
    const BASE: [[u8; 3]; 16] = [
        [0, 0, 0],
        [205, 0, 0],
        [0, 205, 0],
        [205, 205, 0],
        [0, 0, 238],
        [205, 0, 205],
        [0, 205, 205],
        [229, 229, 229],
        [127, 127, 127],
        [255, 0, 0],
        [0, 255, 0],
        [255, 255, 0],
        [92, 92, 255],
        [255, 0, 255],
        [0, 255, 255],
        [255, 255, 255],
    ];
    const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];
    match i {
        0..=15 => BASE[i as usize],
        16..=231 => {
            let n = i - 16;
            [
                CUBE[(n / 36) as usize],
                CUBE[(n / 6 % 6) as usize],
                CUBE[(n % 6) as usize],
            ]
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            [g, g, g]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Style;

    fn video_buffer(area: Rect, shade: impl Fn(u16, u16) -> u8) -> Buffer {
        let mut b = Buffer::empty(area);
        for y in 0..area.height {
            for x in 0..area.width {
                let v = shade(x, y);
                b[(x, y)]
                    .set_symbol("▀")
                    .set_fg(Color::Rgb(v, v, v))
                    .set_bg(Color::Rgb(v, 0, 0));
            }
        }
        b
    }

    fn video_only(area: Rect) -> Regions {
        Regions {
            video: vec![area],
            ..Regions::default()
        }
    }

    #[test]
    fn unlimited_budget_sends_everything_and_then_nothing() {
        let area = Rect::new(0, 0, 20, 5);
        let mut s = Screen::new(area);
        let back = video_buffer(area, |x, y| (x * 10 + y) as u8);
        let first = s.render(&back, &video_only(area), usize::MAX);
        assert!(first.complete());
        assert_eq!(first.video_sent, 100);
        assert!(first.bytes.starts_with(BEGIN_SYNC) && first.bytes.ends_with(END_SYNC));
        let again = s.render(&back, &video_only(area), usize::MAX);
        assert_eq!(again.video_changed, 0);
        assert_eq!(again.bytes.len(), BEGIN_SYNC.len() + END_SYNC.len());
    }

    #[test]
    fn a_budget_sends_the_most_changed_runs_first_and_the_rest_later() {
        let area = Rect::new(0, 0, 64, 4);
        let mut s = Screen::new(area);
        s.render(&video_buffer(area, |_, _| 0), &video_only(area), usize::MAX);
        // Row 2 changes a lot, the others a little; every cell differs
        // from its neighbour, so each costs its own colour codes.
        let back = video_buffer(area, |x, y| {
            if y == 2 {
                150 + x as u8
            } else {
                5 + (x % 20) as u8
            }
        });
        let partial = s.render(&back, &video_only(area), 1_500);
        assert!(!partial.complete());
        assert!(partial.video_bytes <= 1_500, "{}", partial.video_bytes);
        assert!(partial.video_sent > 0);
        assert_eq!(
            s.front[(60, 2)].fg,
            Color::Rgb(210, 210, 210),
            "big change first"
        );
        assert_eq!(
            s.front[(5, 0)].fg,
            Color::Rgb(0, 0, 0),
            "small change waits"
        );
        // Later frames catch up with the rest, with nothing resent.
        let mut total = partial.video_sent;
        for _ in 0..20 {
            let r = s.render(&back, &video_only(area), 1_500);
            total += r.video_sent;
        }
        assert_eq!(total, 64 * 4);
        assert_eq!(s.render(&back, &video_only(area), 0).video_changed, 0);
    }

    #[test]
    fn text_goes_out_whatever_the_video_budget() {
        let area = Rect::new(0, 0, 30, 4);
        let mut s = Screen::new(area);
        let mut back = video_buffer(area, |x, _| x as u8 * 8);
        let plain = Style::default().fg(Color::White).bg(Color::Black);
        back.set_string(0, 3, "status: hello", plain);
        let regions = Regions {
            video: vec![Rect::new(0, 0, 30, 3)],
            ..Regions::default()
        };
        let r = s.render(&back, &regions, 0);
        assert_eq!(r.video_sent, 0);
        assert_eq!(r.text_cells, 30);
        let text = String::from_utf8_lossy(&r.bytes).to_string();
        assert!(text.contains("status: hello"), "{text:?}");
        // An overlay over the video is text too.
        back.set_string(2, 1, "HELP", plain);
        let regions = Regions {
            overlays: vec![Rect::new(2, 1, 4, 1)],
            ..regions
        };
        let r = s.render(&back, &regions, 0);
        assert!(String::from_utf8_lossy(&r.bytes).contains("HELP"));
    }

    #[test]
    fn resize_clears_and_repaints() {
        let area = Rect::new(0, 0, 10, 2);
        let mut s = Screen::new(area);
        let back = video_buffer(area, |_, _| 9);
        s.render(&back, &video_only(area), usize::MAX);
        let bigger = Rect::new(0, 0, 12, 3);
        let r = s.render(
            &video_buffer(bigger, |_, _| 9),
            &video_only(bigger),
            usize::MAX,
        );
        assert!(r.bytes.windows(4).any(|w| w == b"\x1b[2J"));
        assert_eq!(r.video_sent, 36);
    }

    #[test]
    fn palette_matches_xterm() {
        assert_eq!(xterm256(196), [255, 0, 0]);
        assert_eq!(xterm256(244), [128, 128, 128]);
        assert_eq!(rgb(Color::LightBlue), [92, 92, 255]);
    }
}
