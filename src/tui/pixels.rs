//! Which pixel mode the terminal takes: its answers to the queries sent
//! at start (kitty's graphics query, plain and through shared memory;
//! XTSMGRAPHICS' colour registers; the device attributes, whose attribute
//! 4 is sixel), and the pty's size in pixels.

use super::app::App;
use super::cells::{CellMode, CellsChoice};
use super::sixel::{SixelTerminal, VT340_REGISTERS};

/// The largest cell, in screen pixels, taken as real (a 4K screen's
/// 80-column terminal has cells of about 48×96).
const MAX_CELL_PIXELS: (u16, u16) = (64, 128);

impl App {
    /// Whether to ask the terminal about pixel modes at all.
    pub fn wants_pixels(&self) -> bool {
        matches!(
            self.cells_choice,
            CellsChoice::Auto | CellsChoice::Kitty | CellsChoice::Sixel
        )
    }

    /// The terminal answered a kitty graphics query: the plain one, or
    /// the shared-memory one (`shared`).
    pub fn on_graphics_answer(&mut self, ok: bool, shared: bool) {
        if shared {
            self.kitty_shared = ok;
        } else if self.kitty.is_none() {
            self.kitty = Some(ok);
        }
    }

    /// The terminal answered the colour-register query (it precedes the
    /// device attributes).
    pub fn on_colour_registers(&mut self, registers: u16) {
        // A picture's colours are indexed with a byte.
        let registers = registers.min(256);
        self.registers = Some(registers);
        if let Some(t) = &mut self.sixel {
            t.registers = registers;
        }
    }

    /// The pty's size in cells and in pixels (0 where the terminal doesn't
    /// say): sixel pictures are drawn at the cells' pixel size.
    pub fn on_window_pixels(&mut self, cols: u16, rows: u16, width: u16, height: u16) {
        let cell = (width / cols.max(1), height / rows.max(1));
        // Beyond any real font (a terminal that says so would have us
        // draw pictures of gigabytes): unknown.
        let plausible =
            (1..=MAX_CELL_PIXELS.0).contains(&cell.0) && (1..=MAX_CELL_PIXELS.1).contains(&cell.1);
        self.cell_pixels = plausible.then_some(cell);
        if let (Some(t), Some(cell)) = (&mut self.sixel, self.cell_pixels) {
            t.cell = cell;
        }
    }

    /// The pixel mode the terminal takes, for `--cells`: kitty's or
    /// sixel's as asked, `auto` and `p` preferring kitty's (no scaling or
    /// quantising here, fewer bytes).
    pub fn pixel_mode(&self) -> Option<CellMode> {
        let kitty = (self.kitty == Some(true)).then_some(CellMode::Kitty);
        let sixel = self.sixel.is_some().then_some(CellMode::Sixel);
        match self.cells_choice {
            CellsChoice::Sixel => sixel.or(kitty),
            _ => kitty.or(sixel),
        }
    }

    /// The terminal answered the device-attributes query that follows the
    /// pixel queries: by then it has answered whatever it answers. Pixel
    /// modes are decided at the first answer.
    pub fn on_device_attributes(&mut self, sixel: bool) {
        if std::mem::replace(&mut self.pixels_decided, true) || !self.wants_pixels() {
            return;
        }
        self.kitty.get_or_insert(false);
        if sixel {
            self.sixel = self.cell_pixels.map(|cell| SixelTerminal {
                cell,
                registers: self.registers.unwrap_or(VT340_REGISTERS),
            });
        }
        let mode = self.pixel_mode();
        let choice = self.cells_choice;
        match mode {
            Some(m) if choice == CellsChoice::Auto && self.remote => self.flash(format!(
                "this terminal shows {}: p switches to them (over SSH, megabytes a second)",
                m.label()
            )),
            Some(m) => {
                let asked = match choice {
                    CellsChoice::Kitty => Some(CellMode::Kitty),
                    CellsChoice::Sixel => Some(CellMode::Sixel),
                    _ => None,
                };
                if asked.is_some_and(|a| a != m) {
                    self.notice(format!(
                        "--cells {}: this terminal doesn't take them, it takes {}: drawing those",
                        choice.name(),
                        m.label()
                    ));
                }
                self.cells = m;
                self.dirty = true;
            }
            None if matches!(choice, CellsChoice::Kitty | CellsChoice::Sixel) => {
                let why = if sixel {
                    "it doesn't say its cells' size in pixels"
                } else {
                    "through tmux or screen it can't"
                };
                self.notice(format!(
                    "--cells {}: this terminal doesn't take pixels ({why}): drawing {}",
                    choice.name(),
                    self.cells.label()
                ));
            }
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

    /// `auto` takes pixels where the terminal answers the query, except
    /// over SSH (there `p` offers them); `--cells kitty` takes them
    /// anyway; no answer keeps the cells.
    #[test]
    fn pixels_follow_the_graphics_answer_and_ssh() {
        let cases = [
            (CellsChoice::Auto, false, true, CellMode::Kitty),
            (CellsChoice::Auto, true, true, CellMode::Half),
            (CellsChoice::Kitty, true, true, CellMode::Kitty),
            (CellsChoice::Auto, false, false, CellMode::Half),
            (CellsChoice::Sextant, false, true, CellMode::Half),
        ];
        for (choice, remote, ok, want) in cases {
            let mut app = App::new("me", ColourMode::TrueColor, None);
            app.cells_choice = choice;
            app.remote = remote;
            if ok {
                app.on_graphics_answer(ok, false);
            }
            app.on_device_attributes(false);
            assert_eq!(app.cells, want, "{choice:?} remote {remote} answer {ok}");
            // Whatever was chosen, p reaches pixels only where they exist.
            app.cells = CellMode::Sextant;
            let next = app.cells.next(app.pixel_mode());
            assert_eq!(next == CellMode::Kitty, ok, "{choice:?}");
        }
    }

    /// Sixel comes from the device attributes (attribute 4), needs the
    /// cells' pixel size, takes the register count (at most 256), and
    /// yields to kitty's graphics under `auto`.
    #[test]
    fn sixel_follows_the_attributes_the_pixel_size_and_the_registers() {
        let start = |choice, pixels: bool| {
            let mut app = App::new("me", ColourMode::TrueColor, None);
            app.cells_choice = choice;
            let (w, h) = if pixels {
                (80 * 6 + 4, 24 * 13 + 4)
            } else {
                (0, 0)
            };
            app.on_window_pixels(80, 24, w, h);
            app
        };
        let mut app = start(CellsChoice::Auto, true);
        app.on_colour_registers(1024);
        app.on_device_attributes(true);
        assert_eq!(app.cells, CellMode::Sixel);
        let t = SixelTerminal {
            cell: (6, 13),
            registers: 256,
        };
        assert_eq!(app.sixel, Some(t));
        // A later answer changes nothing; a resize follows the pixels.
        app.on_device_attributes(false);
        assert_eq!(app.cells, CellMode::Sixel);
        app.on_window_pixels(100, 30, 1000, 600);
        assert_eq!(app.sixel.unwrap().cell, (10, 20));
        // An absurd size is no size: the last plausible one stays.
        app.on_window_pixels(1, 1, u16::MAX, u16::MAX);
        assert_eq!(app.sixel.unwrap().cell, (10, 20));

        // No register answer: a VT340's 16.
        let mut app = start(CellsChoice::Sixel, true);
        app.on_device_attributes(true);
        assert_eq!(app.sixel.unwrap().registers, 16);
        assert_eq!(app.cells, CellMode::Sixel);

        // No pixel size (tmux): no sixel, said when asked for.
        let mut app = start(CellsChoice::Sixel, false);
        app.on_device_attributes(true);
        assert_eq!(app.sixel, None);
        assert_ne!(app.cells, CellMode::Sixel);
        assert!(
            app.chat.iter().any(|l| l.text.contains("pixel")),
            "not said"
        );

        // Kitty graphics first under auto; sixel when asked for.
        let mut app = start(CellsChoice::Auto, true);
        app.on_graphics_answer(true, false);
        app.on_device_attributes(true);
        assert_eq!(app.cells, CellMode::Kitty);
        let mut app = start(CellsChoice::Sixel, true);
        app.on_graphics_answer(true, false);
        app.on_device_attributes(true);
        assert_eq!(app.cells, CellMode::Sixel);
        assert_eq!(CellMode::Sextant.next(app.pixel_mode()), CellMode::Sixel);
        assert_eq!(CellMode::Sixel.next(app.pixel_mode()), CellMode::Half);
    }
}
