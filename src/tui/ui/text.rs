//! Fitting text into columns: by display width, never splitting a
//! grapheme cluster, and for hints and status text never inside a word.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

const ELLIPSIS: &str = "…";

/// `text` cut to `width` columns, with an ellipsis if cut; whole grapheme
/// clusters only (an accent stays on its letter, a flag stays one flag).
pub fn truncate(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for g in text.graphemes(true) {
        let w = g.width();
        if used + w + 1 > width {
            break;
        }
        out.push_str(g);
        used += w;
    }
    out.push_str(ELLIPSIS);
    out
}

/// `text` cut to `width` columns at a word boundary, with an ellipsis if
/// cut: hints and status text never end in half a word. A first word
/// longer than the width is cut inside (there is nothing better).
pub fn cut_words(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let room = width.saturating_sub(ELLIPSIS.width());
    let mut best: Option<usize> = None;
    for (i, _) in text.match_indices(' ') {
        let head = text[..i].trim_end();
        if head.is_empty() {
            continue;
        }
        if head.width() > room {
            break;
        }
        best = Some(head.len());
    }
    match best {
        Some(end) => {
            // Don't end on a separator: "a │…" reads as garbage.
            let head = text[..end].trim_end_matches([' ', '│', ',', ':', ';', '(', '—', '-']);
            let head = if head.is_empty() { &text[..end] } else { head };
            format!("{head}{ELLIPSIS}")
        }
        None => truncate(text, width),
    }
}

/// Breaks a styled line into rows of at most `width` columns: at spaces
/// where it can, inside a word only when the word is longer than a row.
/// Leading spaces (indentation) are kept on the first row.
pub fn wrap_line(line: &Line<'_>, width: usize) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut cells: Vec<(&str, Style)> = Vec::new();
    for span in &line.spans {
        let style = line.style.patch(span.style);
        cells.extend(span.content.graphemes(true).map(|g| (g, style)));
    }
    // Runs of spaces and of non-spaces, alternating.
    let mut runs: Vec<&[(&str, Style)]> = Vec::new();
    let mut start = 0;
    for i in 1..=cells.len() {
        if i == cells.len() || (cells[i].0 == " ") != (cells[start].0 == " ") {
            runs.push(&cells[start..i]);
            start = i;
        }
    }
    let run_width = |r: &[(&str, Style)]| r.iter().map(|(g, _)| g.width()).sum::<usize>();
    let mut rows: Vec<Vec<(&str, Style)>> = vec![Vec::new()];
    let mut used = 0;
    let mut i = 0;
    while i < runs.len() {
        let run = runs[i];
        let is_space = run.first().is_some_and(|(g, _)| *g == " ");
        if is_space {
            let word = runs.get(i + 1).copied().unwrap_or(&[]);
            if used > 0 && used + run.len() + run_width(word) > width {
                // The break goes here; the spaces go.
                rows.push(Vec::new());
                used = 0;
            } else if used + run.len() <= width {
                rows.last_mut().expect("a row").extend_from_slice(run);
                used += run.len();
            }
            i += 1;
            continue;
        }
        if used > 0 && used + run_width(run) > width {
            rows.push(Vec::new());
            used = 0;
        }
        for cell in run {
            let w = cell.0.width();
            if used > 0 && used + w > width {
                rows.push(Vec::new());
                used = 0;
            }
            rows.last_mut().expect("a row").push(*cell);
            used += w;
        }
        i += 1;
    }
    rows.into_iter()
        .map(|cells| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            for (g, style) in cells {
                match spans.last_mut() {
                    Some(s) if s.style == style => s.content.to_mut().push_str(g),
                    _ => spans.push(Span::styled(g.to_string(), style)),
                }
            }
            Line::from(spans)
        })
        .collect()
}

/// The rows of a scrolled view: `total` rows, `height` shown, `scroll`
/// rows down (clamped). Returns the clamped scroll and whether there is
/// more above and below.
pub fn scroll_window(total: usize, height: usize, scroll: usize) -> (usize, bool, bool) {
    let max = total.saturating_sub(height);
    let scroll = scroll.min(max);
    (scroll, scroll > 0, scroll < max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::style::Modifier;

    #[test]
    fn truncation_keeps_graphemes_whole_and_fits() {
        assert_eq!(truncate("Ada", 5), "Ada");
        assert_eq!(truncate("abcdef", 4), "abc…");
        // e + combining acute stays together.
        let cut = truncate("cafe\u{301}s and more", 6);
        assert!(cut.starts_with("cafe\u{301}"), "{cut}");
        assert!(cut.width() <= 6);
        // Wide characters: never past the width.
        for w in 0..12 {
            assert!(truncate("日本語の名前です", w).width() <= w.max(1));
        }
        // A flag (two regional indicators) is never halved.
        let flags = "🇫🇷🇫🇷🇫🇷🇫🇷";
        let cut = truncate(flags, 6);
        assert_eq!(cut.chars().filter(|c| *c != '…').count() % 2, 0, "{cut}");
        assert_eq!(truncate("abc", 0), "");
    }

    #[test]
    fn hints_are_cut_between_words() {
        let hint = "--audio-source sets a microphone, tone or file";
        let cut = cut_words(hint, 40);
        assert_eq!(cut, "--audio-source sets a microphone, tone…");
        assert!(cut.width() <= 40);
        assert_eq!(cut_words(hint, 100), hint);
        // Never ends on a separator.
        assert_eq!(cut_words("in the call │ rtt 12 ms", 16), "in the call…");
        // One long word: cut inside, there is nothing better.
        assert_eq!(cut_words("abcdefghij", 5), "abcd…");
        for w in 0..50 {
            assert!(cut_words(hint, w).width() <= w.max(1), "{w}");
        }
    }

    #[test]
    fn styled_lines_wrap_at_spaces_and_keep_styles() {
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let line = Line::from(vec![
            Span::styled("  f  ", bold),
            Span::raw("one tile at a time / next"),
        ]);
        let rows: Vec<String> = wrap_line(&line, 14).iter().map(|l| l.to_string()).collect();
        assert_eq!(rows, vec!["  f  one tile", "at a time /", "next"]);
        assert_eq!(wrap_line(&line, 14)[0].spans[0].style, bold);
        // A word longer than the row is cut into rows.
        let rows: Vec<String> = wrap_line(&Line::raw("abcdefghij xy"), 4)
            .iter()
            .map(|l| l.to_string())
            .collect();
        assert_eq!(rows, vec!["abcd", "efgh", "ij", "xy"]);
        assert_eq!(wrap_line(&Line::raw(""), 4).len(), 1);
    }

    #[test]
    fn scrolling_clamps_and_says_what_is_hidden() {
        assert_eq!(scroll_window(10, 4, 0), (0, false, true));
        assert_eq!(scroll_window(10, 4, 3), (3, true, true));
        assert_eq!(scroll_window(10, 4, 99), (6, true, false));
        assert_eq!(scroll_window(3, 4, 5), (0, false, false));
    }
}
