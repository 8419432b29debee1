//! Cells to terminal bytes, as few as possible: most of a video frame is
//! colour changes, so every byte per cell counts on a thin link.
//!
//! - foreground and background in one SGR (`CSI 38;2;r;g;b;48;2;r;g;b m`),
//!   and only the one that changed;
//! - the 16 ANSI colours as their classic codes (`31`, `91`, …), which any
//!   terminal understands, not as 256-colour indices;
//! - the shorter of a relative (`CSI n C`) and an absolute cursor move,
//!   and none at all for the next cell on the row.
//!
//! The encoder remembers the terminal's cursor and pen across frames; after
//! anything else writes to the terminal, [`Encoder::forget`] it.

use std::io::Write;

use ratatui::buffer::Cell;
use ratatui::style::{Color, Modifier};
use unicode_width::UnicodeWidthStr;

/// What we believe the terminal's cursor and pen are.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    cursor: Option<(u16, u16)>,
    fg: Option<Color>,
    bg: Option<Color>,
    modifier: Option<Modifier>,
    /// Terminal width: writing the last column leaves the cursor in a
    /// pending-wrap state, so its position is then unknown.
    width: u16,
}

impl Encoder {
    pub fn new(width: u16) -> Self {
        Encoder {
            width,
            ..Encoder::default()
        }
    }

    /// Cursor and pen unknown (a clear, a resize, someone else's output).
    pub fn forget(&mut self, width: u16) {
        *self = Encoder::new(width);
    }

    /// Appends the bytes that show `cell` at (`x`, `y`).
    pub fn cell(&mut self, out: &mut Vec<u8>, x: u16, y: u16, cell: &Cell) {
        self.move_to(out, x, y);
        self.pen(out, cell.fg, cell.bg, cell.modifier);
        // Text from others is cleaned where it enters; this is the last
        // line of defence: no control character reaches the terminal.
        let symbol = match cell.symbol() {
            s if s.chars().any(char::is_control) => "\u{FFFD}",
            s => s,
        };
        let width = symbol.width().max(1) as u16;
        out.extend_from_slice(symbol.as_bytes());
        let next = x.saturating_add(width);
        self.cursor = (next < self.width).then_some((next, y));
    }

    fn move_to(&mut self, out: &mut Vec<u8>, x: u16, y: u16) {
        if self.cursor == Some((x, y)) {
            return;
        }
        let absolute = |out: &mut Vec<u8>| {
            let _ = write!(out, "\x1b[{};{}H", y + 1, x + 1);
        };
        match self.cursor {
            Some((cx, cy)) if cy == y && x > cx => {
                let gap = x - cx;
                // CUF is shorter than CUP unless the row number is tiny.
                if gap == 1 {
                    out.extend_from_slice(b"\x1b[C");
                } else {
                    let _ = write!(out, "\x1b[{gap}C");
                }
            }
            _ => absolute(out),
        }
        self.cursor = Some((x, y));
    }

    fn pen(&mut self, out: &mut Vec<u8>, fg: Color, bg: Color, modifier: Modifier) {
        let mut params: Vec<u8> = Vec::with_capacity(40);
        if self.modifier != Some(modifier) {
            // Reset and rebuild: modifiers change rarely (text, not video).
            params.push(b'0');
            for (flag, code) in MODIFIER_CODES {
                if modifier.contains(flag) {
                    let _ = write!(params, ";{code}");
                }
            }
            self.modifier = Some(modifier);
            self.fg = Some(Color::Reset);
            self.bg = Some(Color::Reset);
        }
        if self.fg != Some(fg) {
            separator(&mut params);
            colour_params(&mut params, fg, false);
            self.fg = Some(fg);
        }
        if self.bg != Some(bg) {
            separator(&mut params);
            colour_params(&mut params, bg, true);
            self.bg = Some(bg);
        }
        if !params.is_empty() {
            out.extend_from_slice(b"\x1b[");
            out.extend_from_slice(&params);
            out.push(b'm');
        }
    }
}

const MODIFIER_CODES: [(Modifier, u8); 9] = [
    (Modifier::BOLD, 1),
    (Modifier::DIM, 2),
    (Modifier::ITALIC, 3),
    (Modifier::UNDERLINED, 4),
    (Modifier::SLOW_BLINK, 5),
    (Modifier::RAPID_BLINK, 6),
    (Modifier::REVERSED, 7),
    (Modifier::HIDDEN, 8),
    (Modifier::CROSSED_OUT, 9),
];

fn separator(params: &mut Vec<u8>) {
    if !params.is_empty() {
        params.push(b';');
    }
}

/// SGR parameters for one colour, foreground or background.
fn colour_params(params: &mut Vec<u8>, colour: Color, background: bool) {
    let base: u8 = if background { 40 } else { 30 };
    let _ = match colour {
        Color::Reset => write!(params, "{}", base + 9),
        Color::Rgb(r, g, b) => write!(params, "{};2;{r};{g};{b}", base + 8),
        Color::Indexed(i) => write!(params, "{};5;{i}", base + 8),
        named => {
            let i = ansi16_index(named);
            if i < 8 {
                write!(params, "{}", base + i)
            } else {
                write!(params, "{}", base + 60 + (i - 8))
            }
        }
    };
}

/// Position of a named colour among the 16 ANSI colours.
pub fn ansi16_index(colour: Color) -> u8 {
    match colour {
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        _ => 7,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(symbol: &str, fg: Color, bg: Color) -> Cell {
        let mut c = Cell::default();
        c.set_symbol(symbol).set_fg(fg).set_bg(bg);
        c
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).replace('\x1b', "^")
    }

    #[test]
    fn one_sgr_for_both_colours_and_only_what_changed() {
        let mut e = Encoder::new(80);
        let mut out = Vec::new();
        let a = cell("▀", Color::Rgb(1, 2, 3), Color::Rgb(4, 5, 6));
        let b = cell("▀", Color::Rgb(1, 2, 3), Color::Rgb(7, 8, 9));
        e.cell(&mut out, 0, 0, &a);
        e.cell(&mut out, 1, 0, &b);
        e.cell(&mut out, 2, 0, &b);
        assert_eq!(
            text(&out),
            "^[1;1H^[0;38;2;1;2;3;48;2;4;5;6m▀^[48;2;7;8;9m▀▀"
        );
    }

    #[test]
    fn relative_moves_on_a_row_absolute_across_rows() {
        let mut e = Encoder::new(80);
        let mut out = Vec::new();
        let c = cell("x", Color::Reset, Color::Reset);
        e.cell(&mut out, 10, 5, &c);
        e.cell(&mut out, 12, 5, &c);
        e.cell(&mut out, 13, 5, &c);
        e.cell(&mut out, 2, 6, &c);
        assert_eq!(text(&out), "^[6;11H^[0mx^[Cxx^[7;3Hx");
    }

    #[test]
    fn classic_codes_for_the_sixteen_colours() {
        let mut e = Encoder::new(80);
        let mut out = Vec::new();
        e.cell(&mut out, 0, 0, &cell("a", Color::Red, Color::LightBlue));
        e.cell(
            &mut out,
            1,
            0,
            &cell("b", Color::Indexed(200), Color::Reset),
        );
        assert_eq!(text(&out), "^[1;1H^[0;31;104ma^[38;5;200;49mb");
    }

    #[test]
    fn last_column_and_wide_symbols_leave_the_cursor_right() {
        let mut e = Encoder::new(4);
        let mut out = Vec::new();
        let c = cell("x", Color::Reset, Color::Reset);
        e.cell(&mut out, 3, 0, &c);
        // Pending wrap: the next cell needs an absolute move.
        e.cell(&mut out, 0, 1, &c);
        e.cell(&mut out, 1, 1, &cell("語", Color::Reset, Color::Reset));
        e.cell(&mut out, 3, 1, &c);
        assert_eq!(text(&out), "^[1;4H^[0mx^[2;1Hx語x");
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        let mut e = Encoder::new(80);
        let mut out = Vec::new();
        e.cell(&mut out, 0, 0, &cell("\x1b", Color::Reset, Color::Reset));
        assert_eq!(
            out.iter().filter(|b| **b == 0x1b).count(),
            2,
            "only our own CUP and SGR"
        );
        assert!(String::from_utf8_lossy(&out).contains('\u{FFFD}'));
    }

    #[test]
    fn modifiers_reset_and_rebuild_the_pen() {
        let mut e = Encoder::new(80);
        let mut out = Vec::new();
        let mut bold = cell("B", Color::White, Color::Reset);
        bold.modifier = Modifier::BOLD;
        e.cell(&mut out, 0, 0, &bold);
        e.cell(&mut out, 1, 0, &cell("n", Color::White, Color::Reset));
        assert_eq!(text(&out), "^[1;1H^[0;1;97mB^[0;97mn");
    }
}
