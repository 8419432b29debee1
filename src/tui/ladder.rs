//! The picture quality ladder, stepped by the terminal path's measured
//! drain rate (DESIGN.md §4): a thin link gets a coarser picture that stays
//! live rather than a fine one that falls behind.
//!
//! The first steps down need no rung: frames only go out when the window
//! has room, so the frame rate falls by itself, and a frame the window
//! cuts short sends its most-changed cells first (fewer cells per update).
//! The rungs below that, and where they start, are the ones that lost the
//! least picture in `streamflow bench ladder` (BENCHMARKS.md), which
//! replays a moving scene through the real renderer over simulated links
//! and scores what the screen showed against the scene.

use std::time::{Duration, Instant};

use super::cells::CellMode;
use super::render::ColourMode;

/// How video is drawn at one rung.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    /// The deepest colour mode used (the user's choice may be shallower).
    pub colour_cap: ColourMode,
    /// Multiplier on the colour mode's hysteresis threshold.
    pub hysteresis: u32,
    /// Picture columns per pixel: 2 draws each pixel twice side by side
    /// (the repeat costs one symbol, no colour codes).
    pub column_step: u32,
    /// The finest cell mode used (the user's choice may be coarser; pixel
    /// modes have their own rule, [`crate::tui::renderer`]).
    pub finest_cells: CellMode,
}

impl Picture {
    /// The colour mode to draw in: the user's, or the cap if shallower.
    pub fn colour(&self, chosen: ColourMode) -> ColourMode {
        if chosen.depth() > self.colour_cap.depth() {
            self.colour_cap
        } else {
            chosen
        }
    }

    /// The cell mode to draw in: the user's, or half blocks where this
    /// rung allows no finer and the user's is a finer cell mode.
    pub fn cells(&self, chosen: CellMode) -> CellMode {
        if chosen.is_text() && self.finest_cells == CellMode::Half {
            CellMode::Half
        } else {
            chosen
        }
    }
}

/// The rungs, from `bench ladder` (BENCHMARKS.md), scored against each
/// tile's picture at full detail: where the link carries every frame
/// (about 25 B/s per video cell and up) sextants (or quadrants) show the
/// most; below that half blocks in full colour with the window's partial
/// refresh, down to about 8 B/s per cell; then 256 colours; at the very
/// thinnest, 256 colours with coarser hysteresis. Coarser hysteresis in
/// full colour, half resolution, 16 colours and finer cells with 256
/// colours never won.
pub const LEVELS: [Picture; 4] = [
    Picture {
        colour_cap: ColourMode::TrueColor,
        hysteresis: 1,
        column_step: 1,
        finest_cells: CellMode::Sextant,
    },
    Picture {
        colour_cap: ColourMode::TrueColor,
        hysteresis: 1,
        column_step: 1,
        finest_cells: CellMode::Half,
    },
    Picture {
        colour_cap: ColourMode::Ansi256,
        hysteresis: 2,
        column_step: 1,
        finest_cells: CellMode::Half,
    },
    Picture {
        colour_cap: ColourMode::Ansi256,
        hysteresis: 4,
        column_step: 1,
        finest_cells: CellMode::Half,
    },
];

/// Drain rate per video cell (bytes per cell per second) below which a
/// rung is left for the next coarser one: where the next rung's error
/// dropped below this one's in `bench ladder`.
pub const STEP_DOWN_BELOW: [f64; LEVELS.len()] = [25.0, 8.0, 3.0, 0.0];
/// Going back up needs this much more than the upper rung's floor, for
/// this long: no flapping between two rungs.
const UP_MARGIN: f64 = 1.3;
const UP_AFTER: Duration = Duration::from_secs(3);
/// Step down only while at least this share of frames are cut short.
const PRESSURE_TO_STEP_DOWN: f64 = 0.3;
const DOWN_AFTER: Duration = Duration::from_millis(700);

#[derive(Default)]
pub struct Ladder {
    level: usize,
    below_since: Option<Instant>,
    above_since: Option<Instant>,
}

impl Ladder {
    pub fn level(&self) -> usize {
        self.level
    }

    pub fn picture(&self) -> Picture {
        LEVELS[self.level]
    }

    /// Jumps straight to the rung that suits `rate` (the first estimate).
    pub fn settle(&mut self, rate: f64, video_cells: usize) {
        let per_cell = rate / video_cells.max(1) as f64;
        self.level = STEP_DOWN_BELOW
            .iter()
            .position(|floor| per_cell >= *floor)
            .unwrap_or(LEVELS.len() - 1);
        self.below_since = None;
        self.above_since = None;
    }

    /// One step per call at most; returns the new level when it changed.
    /// `pressure` is the share of recent video frames the window cut
    /// short: a thin link with a still picture needs no coarser rung.
    pub fn update(
        &mut self,
        rate: f64,
        video_cells: usize,
        pressure: f64,
        now: Instant,
    ) -> Option<usize> {
        if rate <= 0.0 || video_cells == 0 {
            return None;
        }
        let per_cell = rate / video_cells as f64;
        if per_cell < STEP_DOWN_BELOW[self.level] && pressure >= PRESSURE_TO_STEP_DOWN {
            self.above_since = None;
            let since = *self.below_since.get_or_insert(now);
            if now.duration_since(since) >= DOWN_AFTER && self.level + 1 < LEVELS.len() {
                self.level += 1;
                self.below_since = None;
                return Some(self.level);
            }
            return None;
        }
        self.below_since = None;
        if self.level > 0 && per_cell >= STEP_DOWN_BELOW[self.level - 1] * UP_MARGIN {
            let since = *self.above_since.get_or_insert(now);
            if now.duration_since(since) >= UP_AFTER {
                self.level -= 1;
                self.above_since = None;
                return Some(self.level);
            }
        } else {
            self.above_since = None;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `per_cell` every 100 ms for `secs`; returns the levels seen.
    fn feed(l: &mut Ladder, per_cell: f64, from: Instant, secs: f64) -> Vec<usize> {
        let cells = 1000;
        let mut seen = vec![l.level()];
        for i in 0..(secs * 10.0) as u32 {
            let now = from + Duration::from_millis(100 * u64::from(i));
            if let Some(level) = l.update(per_cell * cells as f64, cells, 1.0, now) {
                seen.push(level);
            }
        }
        seen
    }

    #[test]
    fn steps_down_quickly_and_up_slowly() {
        let t0 = Instant::now();
        let mut l = Ladder::default();
        // Plenty: stays at the top.
        assert_eq!(feed(&mut l, 1e6, t0, 5.0), vec![0]);
        // Thin: down one rung at a time to the first that suits it.
        let thin = STEP_DOWN_BELOW[1] / 2.0;
        assert_eq!(
            feed(&mut l, thin, t0 + Duration::from_secs(5), 5.0),
            vec![0, 1, 2]
        );
        // Quickly: within a second per rung.
        let mut l = Ladder::default();
        let seen = feed(&mut l, thin, t0, 1.6);
        assert_eq!(seen, vec![0, 1, 2]);
        // Back to plenty: one rung per UP_AFTER.
        let t1 = t0 + Duration::from_secs(20);
        let seen = feed(&mut l, 1e6, t1, UP_AFTER.as_secs_f64() * 2.0 + 0.5);
        assert_eq!(seen, vec![2, 1, 0]);
    }

    #[test]
    fn no_flapping_at_a_boundary() {
        let t0 = Instant::now();
        let mut l = Ladder::default();
        let cells = 100;
        let at_floor = STEP_DOWN_BELOW[0] * cells as f64 * 0.99;
        l.update(at_floor, cells, 1.0, t0);
        assert_eq!(l.update(at_floor, cells, 1.0, t0 + DOWN_AFTER), Some(1));
        // Just above the upper rung's floor is not enough to go back.
        let just_above = STEP_DOWN_BELOW[0] * cells as f64 * 1.05;
        for s in 0..30 {
            assert_eq!(
                l.update(just_above, cells, 1.0, t0 + Duration::from_secs(s)),
                None
            );
        }
    }

    #[test]
    fn a_still_picture_on_a_thin_link_keeps_its_rung() {
        let t0 = Instant::now();
        let mut l = Ladder::default();
        let thin = STEP_DOWN_BELOW[1] * 1000.0;
        for s in 0..30 {
            assert_eq!(l.update(thin, 1000, 0.0, t0 + Duration::from_secs(s)), None);
        }
        assert_eq!(l.level(), 0);
    }

    #[test]
    fn settle_picks_the_rung_for_the_rate() {
        let mut l = Ladder::default();
        l.settle(STEP_DOWN_BELOW[1] * 1000.0, 1000);
        assert_eq!(l.level(), 1);
        l.settle(1e9, 1000);
        assert_eq!(l.level(), 0);
        l.settle(0.0, 1000);
        assert_eq!(l.level(), LEVELS.len() - 1);
    }

    /// Finer cells only at the top rung; pixel modes aren't the ladder's.
    #[test]
    fn finer_cells_only_where_the_link_carries_every_frame() {
        assert_eq!(LEVELS[0].cells(CellMode::Sextant), CellMode::Sextant);
        for p in &LEVELS[1..] {
            assert_eq!(p.cells(CellMode::Sextant), CellMode::Half);
            assert_eq!(p.cells(CellMode::Quadrant), CellMode::Half);
            assert_eq!(p.cells(CellMode::Kitty), CellMode::Kitty);
            assert_eq!(p.cells(CellMode::Sixel), CellMode::Sixel);
        }
    }

    #[test]
    fn the_user_colour_choice_is_a_ceiling_too() {
        let p = LEVELS[2];
        assert_eq!(p.colour(ColourMode::TrueColor), ColourMode::Ansi256);
        assert_eq!(p.colour(ColourMode::Ansi16), ColourMode::Ansi16);
        assert_eq!(p.colour(ColourMode::Mono), ColourMode::Mono);
    }
}
