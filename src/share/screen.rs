//! A shared terminal's screen as cells, and its wire form: a snapshot, or
//! the rows that changed since a screen every viewer has (DESIGN.md §10).
//!
//! Only cells travel, never the program's bytes: a viewer can't be sent
//! an escape sequence, because there is no field that holds one. Each
//! cell's text is checked on the way in (one printable grapheme, no
//! control characters), so a hostile sharer gets at most odd glyphs.
//!
//! ```text
//! update := version u8 | kind u8 | seq u32 | base u32 | cols u16 | rows u16
//!           | cursor_row u16 | cursor_col u16 | flags u8 | body
//!           flags: 1 cursor hidden, 2 body deflated (RFC 1951)
//! body   := count u16 | row*
//! row    := index u16 | start u16 | cells u16 | run*
//! run    := style | count u16 | form u8 | cells
//!           form 0: count bytes of printable ASCII (space = blank)
//!           form 1: count × (len u8 | UTF-8), 0 = blank
//! style  := colour(fg) | colour(bg) | attrs u8
//! colour := 0 (default) | 1 index u8 | 2 r g b
//! ```
//!
//! A snapshot's rows stop at their last cell that isn't a default blank.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

const VERSION: u8 = 1;
const KIND_SNAPSHOT: u8 = 0;
const KIND_DIFF: u8 = 1;
const HEADER_LEN: usize = 21;
/// Header flags.
const FLAG_HIDDEN: u8 = 1;
const FLAG_DEFLATED: u8 = 2;
/// Bodies this long or longer are worth deflating.
const DEFLATE_FROM: usize = 256;
/// The largest body any screen needs: every cell in the per-cell form
/// with its longest text, every run with the longest style.
pub const MAX_BODY: usize =
    2 + MAX_ROWS as usize * (6 + MAX_COLS as usize * (1 + MAX_CELL_BYTES + 14));
const FORM_ASCII: u8 = 0;
const FORM_CELLS: u8 = 1;
/// Shares are at most this big (both ways): bounds what a viewer holds.
pub const MAX_COLS: u16 = 400;
pub const MAX_ROWS: u16 = 200;
/// A cell's text: one grapheme, a few code points at most.
const MAX_CELL_BYTES: usize = 16;

/// Cell attributes.
pub const BOLD: u8 = 1;
pub const ITALIC: u8 = 2;
pub const UNDERLINE: u8 = 4;
pub const INVERSE: u8 = 8;
/// The second half of a wide character (drawn by the cell before it).
pub const WIDE_TAIL: u8 = 16;
const KNOWN_ATTRS: u8 = BOLD | ITALIC | UNDERLINE | INVERSE | WIDE_TAIL;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Colour {
    #[default]
    Default,
    Index(u8),
    Rgb(u8, u8, u8),
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cell {
    /// One printable grapheme; empty for a blank.
    pub text: String,
    pub fg: Colour,
    pub bg: Colour,
    pub attrs: u8,
}

impl Cell {
    fn style(&self) -> (Colour, Colour, u8) {
        (self.fg, self.bg, self.attrs)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareScreen {
    pub cols: u16,
    pub rows: u16,
    pub cells: Vec<Cell>,
    /// (row, column).
    pub cursor: (u16, u16),
    pub cursor_visible: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("malformed share update")]
    Malformed,
    #[error("a share update for a screen we don't have")]
    NeedSnapshot,
    #[error("share updates beyond what a viewer decodes in a second")]
    OverBudget,
}

/// What an update says about itself, before it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateHeader {
    pub snapshot: bool,
    pub seq: u32,
    /// The screen a diff applies to.
    pub base: u32,
}

impl ShareScreen {
    pub fn blank(cols: u16, rows: u16) -> Self {
        let (cols, rows) = (cols.clamp(1, MAX_COLS), rows.clamp(1, MAX_ROWS));
        ShareScreen {
            cols,
            rows,
            cells: vec![Cell::default(); usize::from(cols) * usize::from(rows)],
            cursor: (0, 0),
            cursor_visible: true,
        }
    }

    /// The screen a terminal emulator shows, as cells.
    pub fn from_vt100(screen: &vt100::Screen) -> Self {
        let (rows, cols) = screen.size();
        let mut out = ShareScreen::blank(cols.get(), rows.get());
        for row in 0..out.rows {
            for col in 0..out.cols {
                let Some(cell) = screen.cell(row, col) else {
                    continue;
                };
                let mut attrs = 0;
                for (on, bit) in [
                    (cell.bold(), BOLD),
                    (cell.italic(), ITALIC),
                    (cell.underline(), UNDERLINE),
                    (cell.inverse(), INVERSE),
                    (cell.is_wide_continuation(), WIDE_TAIL),
                ] {
                    if on {
                        attrs |= bit;
                    }
                }
                let text = if cell.is_wide_continuation() {
                    String::new()
                } else {
                    clean_cell(cell.contents())
                };
                let i = out.index(row, col);
                out.cells[i] = Cell {
                    text,
                    fg: colour(cell.fgcolor()),
                    bg: colour(cell.bgcolor()),
                    attrs,
                };
            }
        }
        let (r, c) = screen.cursor_position();
        out.cursor = (r.min(out.rows - 1), c.min(out.cols - 1));
        out.cursor_visible = !screen.hide_cursor();
        out
    }

    fn index(&self, row: u16, col: u16) -> usize {
        usize::from(row) * usize::from(self.cols) + usize::from(col)
    }

    pub fn cell(&self, row: u16, col: u16) -> Option<&Cell> {
        (row < self.rows && col < self.cols).then(|| &self.cells[self.index(row, col)])
    }

    fn row(&self, row: u16) -> &[Cell] {
        let start = self.index(row, 0);
        &self.cells[start..start + usize::from(self.cols)]
    }

    /// The visible text, one line per row, trailing blanks trimmed.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for row in 0..self.rows {
            let mut line = String::new();
            for cell in self.row(row) {
                if cell.attrs & WIDE_TAIL != 0 {
                    continue;
                }
                line.push_str(if cell.text.is_empty() {
                    " "
                } else {
                    &cell.text
                });
            }
            out.push_str(line.trim_end());
            if row + 1 < self.rows {
                out.push('\n');
            }
        }
        out
    }

    /// The whole screen, as update `seq`.
    pub fn encode_snapshot(&self, seq: u32) -> Vec<u8> {
        let blank = Cell::default();
        let used: Vec<(u16, u16)> = (0..self.rows)
            .filter_map(|row| {
                let end = self.row(row).iter().rposition(|c| *c != blank)?;
                Some((row, end as u16 + 1))
            })
            .collect();
        let mut body = (used.len() as u16).to_be_bytes().to_vec();
        for (row, end) in used {
            self.encode_row(&mut body, row, 0, end);
        }
        self.finish(KIND_SNAPSHOT, seq, seq, body)
    }

    /// The rows that differ from `base` (which viewers hold as update
    /// `base_seq`), as update `seq`; `None` when nothing visible changed.
    /// A different size is a snapshot.
    pub fn encode_diff(&self, base: &ShareScreen, base_seq: u32, seq: u32) -> Option<Vec<u8>> {
        if (base.cols, base.rows) != (self.cols, self.rows) {
            return Some(self.encode_snapshot(seq));
        }
        let mut changed = Vec::new();
        for row in 0..self.rows {
            let (now, then) = (self.row(row), base.row(row));
            let Some(first) = (0..now.len()).find(|&i| now[i] != then[i]) else {
                continue;
            };
            let last = (0..now.len())
                .rev()
                .find(|&i| now[i] != then[i])
                .unwrap_or(first);
            changed.push((row, first as u16, (last + 1) as u16));
        }
        let moved = (self.cursor, self.cursor_visible) != (base.cursor, base.cursor_visible);
        if changed.is_empty() && !moved {
            return None;
        }
        let mut body = (changed.len() as u16).to_be_bytes().to_vec();
        for (row, start, end) in changed {
            self.encode_row(&mut body, row, start, end);
        }
        Some(self.finish(KIND_DIFF, seq, base_seq, body))
    }

    /// The header, then the body: deflated when that makes it smaller
    /// (whole screens of text shrink to a third or less).
    fn finish(&self, kind: u8, seq: u32, base: u32, body: Vec<u8>) -> Vec<u8> {
        let packed = (body.len() >= DEFLATE_FROM)
            .then(|| miniz_oxide::deflate::compress_to_vec(&body, 6))
            .filter(|p| p.len() < body.len());
        let mut out = Vec::with_capacity(HEADER_LEN + body.len());
        out.push(VERSION);
        out.push(kind);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&base.to_be_bytes());
        for v in [self.cols, self.rows, self.cursor.0, self.cursor.1] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let hidden = u8::from(!self.cursor_visible);
        match packed {
            Some(p) => {
                out.push(hidden | FLAG_DEFLATED);
                out.extend_from_slice(&p);
            }
            None => {
                out.push(hidden);
                out.extend_from_slice(&body);
            }
        }
        out
    }

    fn encode_row(&self, out: &mut Vec<u8>, row: u16, start: u16, end: u16) {
        let cells = &self.row(row)[usize::from(start)..usize::from(end)];
        for v in [row, start, end - start] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        let mut i = 0;
        while i < cells.len() {
            let style = cells[i].style();
            let run = cells[i..].iter().take_while(|c| c.style() == style).count();
            put_colour(out, style.0);
            put_colour(out, style.1);
            out.push(style.2);
            out.extend_from_slice(&(run as u16).to_be_bytes());
            let cells = &cells[i..i + run];
            let ascii = |c: &Cell| c.text.is_empty() || (c.text.len() == 1 && c.text != " ");
            if cells.iter().all(ascii) {
                out.push(FORM_ASCII);
                out.extend(cells.iter().map(|c| c.text.bytes().next().unwrap_or(b' ')));
            } else {
                out.push(FORM_CELLS);
                for cell in cells {
                    out.push(cell.text.len() as u8);
                    out.extend_from_slice(cell.text.as_bytes());
                }
            }
            i += run;
        }
    }

    /// Reads an update's header without applying it.
    pub fn peek(update: &[u8]) -> Result<UpdateHeader, ShareError> {
        let mut r = Reader(update);
        if r.u8()? != VERSION {
            return Err(ShareError::Malformed);
        }
        let kind = r.u8()?;
        if kind != KIND_SNAPSHOT && kind != KIND_DIFF {
            return Err(ShareError::Malformed);
        }
        Ok(UpdateHeader {
            snapshot: kind == KIND_SNAPSHOT,
            seq: r.u32()?,
            base: r.u32()?,
        })
    }

    /// A screen from a snapshot, or this one with a diff applied (only
    /// when this screen is the diff's base: `held` is its seq). All or
    /// nothing: a malformed update leaves the screen as it was.
    pub fn apply(
        current: Option<(&ShareScreen, u32)>,
        update: &[u8],
    ) -> Result<(ShareScreen, u32), ShareError> {
        ShareScreen::apply_within(current, update, MAX_BODY).map(|(applied, _)| applied)
    }

    /// Like [`apply`](Self::apply), refusing (`OverBudget`) a body larger
    /// than `max_body` bytes once inflated: a viewer's budget for decoding
    /// one sharer's updates. Also says how large the body was.
    pub fn apply_within(
        current: Option<(&ShareScreen, u32)>,
        update: &[u8],
        max_body: usize,
    ) -> Result<((ShareScreen, u32), usize), ShareError> {
        let max_body = max_body.min(MAX_BODY);
        let head = ShareScreen::peek(update)?;
        let mut r = Reader(&update[10..]);
        let (cols, rows) = (r.u16()?, r.u16()?);
        if cols == 0 || rows == 0 || cols > MAX_COLS || rows > MAX_ROWS {
            return Err(ShareError::Malformed);
        }
        let mut screen = if head.snapshot {
            ShareScreen::blank(cols, rows)
        } else {
            match current {
                Some((s, seq)) if seq == head.base && (s.cols, s.rows) == (cols, rows) => s.clone(),
                _ => return Err(ShareError::NeedSnapshot),
            }
        };
        let (cr, cc) = (r.u16()?, r.u16()?);
        if cr >= rows || cc >= cols {
            return Err(ShareError::Malformed);
        }
        screen.cursor = (cr, cc);
        let flags = r.u8()?;
        if flags & !(FLAG_HIDDEN | FLAG_DEFLATED) != 0 {
            return Err(ShareError::Malformed);
        }
        screen.cursor_visible = flags & FLAG_HIDDEN == 0;
        // Inflated up to what the largest screen could need: a bomb stops
        // there.
        let inflated;
        if flags & FLAG_DEFLATED != 0 {
            inflated =
                miniz_oxide::inflate::decompress_to_vec_with_limit(r.0, max_body).map_err(|e| {
                    match e.status {
                        miniz_oxide::inflate::TINFLStatus::HasMoreOutput if max_body < MAX_BODY => {
                            ShareError::OverBudget
                        }
                        _ => ShareError::Malformed,
                    }
                })?;
            r = Reader(&inflated);
        } else if r.0.len() > max_body {
            return Err(if max_body < MAX_BODY {
                ShareError::OverBudget
            } else {
                ShareError::Malformed
            });
        }
        let body_len = r.0.len();
        let count = r.u16()?;
        if count > rows {
            return Err(ShareError::Malformed);
        }
        for _ in 0..count {
            let (row, start, len) = (r.u16()?, r.u16()?, r.u16()?);
            if row >= rows || u32::from(start) + u32::from(len) > u32::from(cols) {
                return Err(ShareError::Malformed);
            }
            let mut col = start;
            let end = start + len;
            while col < end {
                let fg = r.colour()?;
                let bg = r.colour()?;
                let attrs = r.u8()?;
                if attrs & !KNOWN_ATTRS != 0 {
                    return Err(ShareError::Malformed);
                }
                let run = r.u16()?;
                if run == 0 || u32::from(col) + u32::from(run) > u32::from(end) {
                    return Err(ShareError::Malformed);
                }
                let form = r.u8()?;
                for _ in 0..run {
                    let bytes = match form {
                        FORM_ASCII => r.take(1)?,
                        FORM_CELLS => {
                            let n = usize::from(r.u8()?);
                            if n > MAX_CELL_BYTES {
                                return Err(ShareError::Malformed);
                            }
                            r.take(n)?
                        }
                        _ => return Err(ShareError::Malformed),
                    };
                    let text = std::str::from_utf8(bytes).map_err(|_| ShareError::Malformed)?;
                    let i = screen.index(row, col);
                    screen.cells[i] = Cell {
                        text: clean_cell(text),
                        fg,
                        bg,
                        attrs,
                    };
                    col += 1;
                }
            }
        }
        if !r.0.is_empty() {
            return Err(ShareError::Malformed);
        }
        Ok(((screen, head.seq), body_len))
    }
}

/// A cell's text as a viewer may draw it: one grapheme of at most two
/// columns, with nothing that a terminal would act on (control characters,
/// bidirectional overrides); anything else is a blank or U+FFFD.
pub fn clean_cell(text: &str) -> String {
    if text.is_empty() || text.len() > MAX_CELL_BYTES {
        return String::new();
    }
    let cleaned = crate::sanitize::clean(text);
    if cleaned.contains('\u{FFFD}') && !text.contains('\u{FFFD}') {
        return "\u{FFFD}".into();
    }
    // One grapheme that takes one or two columns: a zero-width one (a lone
    // combining mark, U+200B) or several would put what follows out of
    // place on the viewer's screen.
    let mut graphemes = cleaned.graphemes(true);
    let (first, more) = (graphemes.next(), graphemes.next());
    if more.is_some() {
        return "\u{FFFD}".into();
    }
    match first.map(|g| g.width()) {
        Some(1 | 2) if cleaned != " " => cleaned,
        _ => String::new(),
    }
}

fn colour(c: vt100::Color) -> Colour {
    match c {
        vt100::Color::Default => Colour::Default,
        vt100::Color::Idx(i) => Colour::Index(i),
        vt100::Color::Rgb(r, g, b) => Colour::Rgb(r, g, b),
    }
}

fn put_colour(out: &mut Vec<u8>, c: Colour) {
    match c {
        Colour::Default => out.push(0),
        Colour::Index(i) => out.extend_from_slice(&[1, i]),
        Colour::Rgb(r, g, b) => out.extend_from_slice(&[2, r, g, b]),
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ShareError> {
        if self.0.len() < n {
            return Err(ShareError::Malformed);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, ShareError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ShareError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ShareError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn colour(&mut self) -> Result<Colour, ShareError> {
        Ok(match self.u8()? {
            0 => Colour::Default,
            1 => Colour::Index(self.u8()?),
            2 => {
                let b = self.take(3)?;
                Colour::Rgb(b[0], b[1], b[2])
            }
            _ => return Err(ShareError::Malformed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen_of(bytes: &[u8], cols: u16, rows: u16) -> ShareScreen {
        let mut p = vt100::Parser::new(rows.try_into().unwrap(), cols.try_into().unwrap(), 0);
        p.process(bytes);
        ShareScreen::from_vt100(p.screen())
    }

    #[test]
    fn a_snapshot_round_trips() {
        let s = screen_of(
            b"hello \x1b[1;31mred\x1b[0m \xe6\x97\xa5\xe6\x9c\xac\r\nnext",
            20,
            4,
        );
        let (back, seq) = ShareScreen::apply(None, &s.encode_snapshot(7)).unwrap();
        assert_eq!(seq, 7);
        assert_eq!(back, s);
        assert_eq!(back.text(), "hello red 日本\nnext\n\n");
        let red = back.cell(0, 6).unwrap();
        assert_eq!(red.fg, Colour::Index(1));
        assert_eq!(red.attrs & BOLD, BOLD);
        assert_eq!(back.cell(0, 11).unwrap().attrs & WIDE_TAIL, WIDE_TAIL);
    }

    #[test]
    fn a_diff_carries_only_changed_rows_and_needs_its_base() {
        let mut p = vt100::Parser::new(24.try_into().unwrap(), 80.try_into().unwrap(), 0);
        p.process(b"line one\r\nline two\r\n");
        let a = ShareScreen::from_vt100(p.screen());
        p.process(b"x");
        let b = ShareScreen::from_vt100(p.screen());
        let diff = b.encode_diff(&a, 1, 2).unwrap();
        assert!(
            diff.len() < 40,
            "a one-cell change took {} bytes",
            diff.len()
        );
        let (applied, seq) = ShareScreen::apply(Some((&a, 1)), &diff).unwrap();
        assert_eq!((applied, seq), (b.clone(), 2));
        // Not the base: the viewer needs a snapshot.
        assert_eq!(
            ShareScreen::apply(Some((&a, 5)), &diff),
            Err(ShareError::NeedSnapshot)
        );
        assert_eq!(
            ShareScreen::apply(None, &diff),
            Err(ShareError::NeedSnapshot)
        );
        // Nothing changed: nothing to send.
        assert_eq!(b.encode_diff(&b, 2, 3), None);
    }

    #[test]
    fn full_screens_are_deflated_and_bombs_refused() {
        let text: String = (0..24)
            .map(|i| format!("line {i}: the quick brown fox jumps\r\n"))
            .collect();
        let s = screen_of(text.as_bytes(), 80, 24);
        let packed = s.encode_snapshot(3);
        assert_eq!(packed[18] & FLAG_DEFLATED, FLAG_DEFLATED);
        assert!(packed.len() < 400, "{} bytes", packed.len());
        assert_eq!(ShareScreen::apply(None, &packed).unwrap(), (s, 3));
        // A body that inflates past any real screen is refused.
        let mut bomb = packed[..19].to_vec();
        bomb.extend(miniz_oxide::deflate::compress_to_vec(
            &vec![0u8; MAX_BODY + 1],
            6,
        ));
        assert_eq!(ShareScreen::apply(None, &bomb), Err(ShareError::Malformed));
    }

    #[test]
    fn hostile_sequences_leave_only_cells() {
        let s = screen_of(
            b"a\x1b]52;c;aGVsbG8=\x07b\x1b]0;title\x07c\x1b[?1000hd\x1bPq#0;2;0;0;0\x1b\\e\x07\x07f",
            40,
            2,
        );
        assert_eq!(s.text(), "abcdef\n");
        for cell in &s.cells {
            assert!(!cell.text.chars().any(|c| c.is_control()), "{cell:?}");
        }
    }

    /// Red team: a run whose count overflows `col + run` (u16). In a debug
    /// build that is an overflow panic; in release it wraps, passes the
    /// bounds check and writes cells past the end of the screen (index out
    /// of bounds: a panic too). Either way one small deflated update from
    /// a hostile sharer crashes every viewer.
    #[test]
    fn redteam_a_run_count_that_overflows_is_refused_not_a_panic() {
        let mut body = 1u16.to_be_bytes().to_vec(); // one row
        for v in [0u16, 1, 1] {
            // row 0, from column 1, one cell
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&[0, 0, 0]); // default style
        body.extend_from_slice(&u16::MAX.to_be_bytes()); // run: 65535 cells
        body.push(FORM_ASCII);
        body.extend(std::iter::repeat_n(b'a', usize::from(u16::MAX)));
        let mut update = vec![VERSION, KIND_SNAPSHOT];
        update.extend_from_slice(&1u32.to_be_bytes());
        update.extend_from_slice(&1u32.to_be_bytes());
        for v in [2u16, 1, 0, 0] {
            // 2×1 screen, cursor at 0,0
            update.extend_from_slice(&v.to_be_bytes());
        }
        update.push(FLAG_DEFLATED);
        update.extend(miniz_oxide::deflate::compress_to_vec(&body, 6));
        assert!(update.len() < 400, "{} bytes on the wire", update.len());
        let got = std::panic::catch_unwind(|| ShareScreen::apply(None, &update));
        assert_eq!(
            got.ok(),
            Some(Err(ShareError::Malformed)),
            "a viewer panicked on a hostile run count"
        );
    }

    /// Red team: a cell whose text draws in no column (a zero-width space,
    /// a lone combining mark) passes `clean_cell`; the TUI counts it as one
    /// column (`width().max(1)`) while the terminal doesn't advance, so the
    /// rest of the line is drawn shifted left: a hostile sharer skews what
    /// the viewer sees. Such a cell should be a blank (or U+FFFD).
    #[test]
    fn redteam_zero_width_cells_are_not_drawn_as_text() {
        for text in [
            "\u{200B}",
            "\u{0301}",
            "\u{FEFF}",
            "\u{2060}",
            "\u{0301}\u{0301}",
        ] {
            let got = clean_cell(text);
            assert!(
                got.is_empty() || got.width() >= 1,
                "{text:?} kept as {got:?}, {} columns wide",
                got.width()
            );
        }
    }

    /// Red team: the module promises "one printable grapheme" per cell,
    /// but `clean_cell` only bounds the width: a hostile sharer's cell of
    /// "ab" (two graphemes, two columns, no WIDE_TAIL after it) passes,
    /// so the headless `text` row is longer than `cols` and the TUI skips
    /// the next real cell.
    #[test]
    fn redteam_a_cell_holds_one_grapheme() {
        for text in ["ab", "a\u{0301}b"] {
            let got = clean_cell(text);
            assert!(
                got.is_empty() || got == "\u{FFFD}",
                "{text:?} kept as {got:?}"
            );
        }
    }

    /// Red team (claim 3): how much work a small update buys. A ~4 KB
    /// deflated snapshot inflates to a full 400×200 screen of 16-byte
    /// cells (1.36 MB; ~72 ms to decode in a debug build). A flood of them
    /// at the relay's message rate would pin a viewer's core, so a viewer
    /// decodes at most a budget of body bytes per sharer per second and
    /// refuses the rest undecoded.
    #[test]
    fn redteam_worst_case_updates_are_decoded_within_a_budget() {
        let cell = "\u{0301}".repeat(8);
        let mut body = MAX_ROWS.to_be_bytes().to_vec();
        for row in 0..MAX_ROWS {
            for v in [row, 0, MAX_COLS] {
                body.extend_from_slice(&v.to_be_bytes());
            }
            body.extend_from_slice(&[0, 0, 0]);
            body.extend_from_slice(&MAX_COLS.to_be_bytes());
            body.push(FORM_CELLS);
            for _ in 0..MAX_COLS {
                body.push(cell.len() as u8);
                body.extend_from_slice(cell.as_bytes());
            }
        }
        let mut update = vec![VERSION, KIND_SNAPSHOT];
        update.extend_from_slice(&1u32.to_be_bytes());
        update.extend_from_slice(&1u32.to_be_bytes());
        for v in [MAX_COLS, MAX_ROWS, 0, 0] {
            update.extend_from_slice(&v.to_be_bytes());
        }
        update.push(FLAG_DEFLATED);
        update.extend(miniz_oxide::deflate::compress_to_vec(&body, 10));
        // Alone it decodes (a real 400×200 screen is that big), but a
        // viewer decodes only so much of one sharer a second: a stream of
        // these is refused undecoded until the budget refills.
        assert!(ShareScreen::apply(None, &update).is_ok());
        let t0 = std::time::Instant::now();
        let mut view = crate::share::ShareView::default();
        let results: Vec<_> = (0..6).map(|_| view.apply(&update, t0)).collect();
        let decoded = results.iter().filter(|r| r.is_ok()).count();
        assert!((1..=3).contains(&decoded), "{results:?}");
        assert_eq!(results[5], Err(ShareError::OverBudget));
        let later = t0 + std::time::Duration::from_secs(2);
        assert!(view.apply(&update, later).is_ok(), "the budget refills");
    }

    #[test]
    fn forged_cells_are_cleaned_and_bad_updates_refused() {
        let s = screen_of(b"abcd", 4, 1);
        let mut update = s.encode_snapshot(1);
        // Rewrite the row as cells, the first an escape sequence.
        let form_at = update.len() - 5;
        update.truncate(form_at);
        update.extend_from_slice(&[FORM_CELLS, 3, 0x1b, b'[', b'J', 0, 0, 0]);
        let (got, _) = ShareScreen::apply(None, &update).unwrap();
        assert_eq!(got.cell(0, 0).unwrap().text, "\u{FFFD}");
        // Truncated, oversized and trailing bytes are all refused.
        let good = s.encode_snapshot(1);
        for bad in [
            good[..good.len() - 1].to_vec(),
            [good.clone(), vec![0]].concat(),
            {
                let mut b = good.clone();
                b[10..12].copy_from_slice(&(MAX_COLS + 1).to_be_bytes());
                b
            },
        ] {
            assert_eq!(
                ShareScreen::apply(None, &bad),
                Err(ShareError::Malformed),
                "{bad:?}"
            );
        }
        // Garbage never panics.
        for n in 0..200u32 {
            let junk: Vec<u8> = (0..n)
                .map(|i| (i.wrapping_mul(2654435761) >> 7) as u8)
                .collect();
            let _ = ShareScreen::apply(None, &junk);
            let _ = ShareScreen::apply(Some((&s, 1)), &junk);
        }
    }
}
