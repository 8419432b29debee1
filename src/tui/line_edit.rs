//! The chat input line: a cursor that moves (Left, Right, Home, End),
//! deletes on either side, a length cap, and a view that scrolls so the
//! cursor stays in sight however long the line.

use unicode_width::UnicodeWidthChar;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Done,
    /// The line is at its longest; the character was not added.
    Full,
}

#[derive(Debug, Default, Clone)]
pub struct LineEditor {
    chars: Vec<char>,
    /// Position of the cursor, in characters (0 ..= len).
    cursor: usize,
    /// Typed (or pasted) past the cap: kept, and brought up as the next
    /// line when this one is taken, so a long paste loses nothing.
    overflow: Vec<char>,
}

/// Kept past the cap at most (a few lines' worth); beyond it is dropped.
const MAX_OVERFLOW: usize = 16 * 1024;

impl LineEditor {
    pub fn insert(&mut self, c: char, max_chars: usize) -> Edit {
        if self.chars.len() >= max_chars {
            if self.overflow.len() < MAX_OVERFLOW {
                self.overflow.push(if c.is_control() { ' ' } else { c });
            }
            return Edit::Full;
        }
        // What we draw is one line: no control characters in it.
        let c = if c.is_control() { ' ' } else { c };
        self.chars.insert(self.cursor, c);
        self.cursor += 1;
        Edit::Done
    }

    pub fn backspace(&mut self) {
        if self.cursor > 0 {
            self.cursor -= 1;
            self.chars.remove(self.cursor);
        }
    }

    pub fn delete(&mut self) {
        if self.cursor < self.chars.len() {
            self.chars.remove(self.cursor);
        }
    }

    pub fn left(&mut self) {
        self.cursor = self.cursor.saturating_sub(1);
    }

    pub fn right(&mut self) {
        self.cursor = (self.cursor + 1).min(self.chars.len());
    }

    pub fn home(&mut self) {
        self.cursor = 0;
    }

    pub fn end(&mut self) {
        self.cursor = self.chars.len();
    }

    pub fn text(&self) -> String {
        self.chars.iter().collect()
    }

    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// Empties the line and returns what it held; what overflowed it (up to
    /// `max_chars`) becomes the new line.
    pub fn take(&mut self, max_chars: usize) -> String {
        let line = std::mem::take(&mut self.chars).into_iter().collect();
        let next = self.overflow.len().min(max_chars);
        self.chars = self.overflow.drain(..next).collect();
        self.cursor = self.chars.len();
        line
    }

    /// Characters waiting past the cap.
    pub fn overflowed(&self) -> usize {
        self.overflow.len()
    }

    /// What fits in `width` columns with the cursor in sight (as the
    /// caret `▏` before the character it is on): the text around it.
    pub fn view(&self, width: usize) -> String {
        let width = width.max(2);
        let w = |c: &char| c.width().unwrap_or(0);
        // Columns before the cursor that fit, leaving one for the caret
        // and, when there is text after it, a few for context.
        let after: usize = self.chars[self.cursor..].iter().map(w).sum();
        let room_before = width - 1 - after.min(width / 3).min(width - 1);
        let mut start = self.cursor;
        let mut used = 0;
        while start > 0 && used + w(&self.chars[start - 1]) <= room_before {
            start -= 1;
            used += w(&self.chars[start]);
        }
        let mut out: String = self.chars[start..self.cursor].iter().collect();
        out.push('▏');
        let mut cols = used + 1;
        for c in &self.chars[self.cursor..] {
            if cols + w(c) > width {
                break;
            }
            out.push(*c);
            cols += w(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(s: &str) -> LineEditor {
        let mut e = LineEditor::default();
        for c in s.chars() {
            e.insert(c, 100);
        }
        e
    }

    #[test]
    fn cursor_moves_and_edits_in_the_middle() {
        let mut e = typed("helo");
        e.left();
        e.insert('l', 100);
        assert_eq!(e.text(), "hello");
        e.home();
        e.delete();
        e.insert('j', 100);
        assert_eq!(e.text(), "jello");
        e.end();
        e.backspace();
        assert_eq!(e.text(), "jell");
        e.left();
        e.left();
        e.backspace();
        assert_eq!(e.text(), "jll");
        assert_eq!(e.take(100), "jll");
        assert!(e.is_empty());
    }

    #[test]
    fn a_paste_past_the_cap_waits_for_the_next_line() {
        let mut e = LineEditor::default();
        for c in "abcdefgh".chars() {
            e.insert(c, 3);
        }
        assert_eq!(e.overflowed(), 5);
        assert_eq!(e.take(3), "abc");
        assert_eq!(e.take(3), "def");
        assert_eq!(e.take(3), "gh");
        assert!(e.is_empty() && e.overflowed() == 0);
    }

    #[test]
    fn long_lines_scroll_to_keep_the_cursor_in_view() {
        let e = typed("the quick brown fox jumps over the lazy dog");
        let v = e.view(12);
        assert!(v.ends_with("lazy dog▏"), "{v:?}");
        assert!(unicode_width::UnicodeWidthStr::width(v.as_str()) <= 12);
        let mut e = e;
        e.home();
        let v = e.view(12);
        assert!(v.starts_with("▏the quick"), "{v:?}");
        for _ in 0..20 {
            e.right();
        }
        let v = e.view(12);
        assert!(v.contains('▏'));
        assert!(unicode_width::UnicodeWidthStr::width(v.as_str()) <= 12);
    }

    #[test]
    fn capped_and_no_control_characters() {
        let mut e = LineEditor::default();
        for _ in 0..5 {
            e.insert('x', 5);
        }
        assert_eq!(e.insert('x', 5), Edit::Full);
        assert_eq!(e.len(), 5);
        let mut e = LineEditor::default();
        e.insert('\x1b', 5);
        assert_eq!(e.text(), " ");
    }

    #[test]
    fn wide_characters_count_two_columns() {
        let e = typed("日本語テキスト");
        let v = e.view(8);
        assert!(
            unicode_width::UnicodeWidthStr::width(v.as_str()) <= 8,
            "{v:?}"
        );
    }
}
