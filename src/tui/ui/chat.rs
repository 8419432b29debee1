//! The roster and the chat: a sidebar on wide terminals, a strip under the
//! video on narrow ones (open with Tab), and a one-line ticker of the
//! newest message while the strip is closed.

use crate::identity::known::Known;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::super::app::{App, ChatLine, Focus};
use super::super::tile::Tile;
use super::text::cut_words;
use super::truncate;
use crate::session::state::Camera;

/// Roster and chat, one above the other.
pub(super) fn draw_sidebar(buf: &mut Buffer, app: &mut App, area: Rect) {
    let roster_height = (app.peers.len() as u16 + 3).min(area.height / 2).max(3);
    let [roster, chat] =
        Layout::vertical([Constraint::Length(roster_height), Constraint::Min(3)]).areas(area);
    let width = roster.width.saturating_sub(2) as usize;
    let mut lines = vec![roster_entry(&app.me, true, width)];
    lines.extend(app.peers.iter().map(|t| roster_entry(t, false, width)));
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" In the call ({}) ", app.peers.len() + 1)),
        )
        .render(roster, buf);
    draw_chat_box(buf, app, chat, None);
}

/// The chat under the video, with the roster on its first line.
pub(super) fn draw_strip(buf: &mut Buffer, app: &mut App, area: Rect) {
    let mut spans = Vec::new();
    for (i, t) in std::iter::once(&app.me).chain(&app.peers).enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        spans.extend(roster_entry(t, i == 0, usize::MAX).spans);
    }
    draw_chat_box(buf, app, area, Some(Line::from(spans)));
}

/// The newest chat line, under the video while the chat is closed.
pub(super) fn draw_ticker(buf: &mut Buffer, app: &App, area: Rect) {
    let Some(line) = app.chat.back() else {
        return;
    };
    let hint = "  (Tab: chat)";
    let room = (area.width as usize).saturating_sub(hint.width());
    let text = cut_words(&line_text(line), room);
    Paragraph::new(Line::from(vec![
        Span::styled(text, line_style(line)),
        Span::styled(hint, Style::default().fg(Color::DarkGray)),
    ]))
    .render(area, buf);
}

/// One person in the roster: the mark, the name and the camera state in
/// `width` columns. The name gives way (cut by display width, whole
/// graphemes); the state is never cut.
fn roster_entry(t: &Tile, is_me: bool, width: usize) -> Line<'static> {
    let (mark, style) = if is_me {
        ("● ", Style::default())
    } else if t.mismatch {
        ("✗ ", Style::default().fg(Color::Red))
    } else if t.known == Some(Known::Changed) {
        (
            "⚠ ",
            Style::default()
                .fg(Color::Red)
                .add_modifier(ratatui::style::Modifier::BOLD),
        )
    } else if t.verified && t.known == Some(Known::Verified) && t.known_as.is_none() {
        ("✓✓", Style::default().fg(Color::Green))
    } else if t.verified {
        ("✓ ", Style::default().fg(Color::Green))
    } else {
        ("… ", Style::default().fg(Color::Yellow))
    };
    let state = match (t.camera, t.known) {
        (_, Some(Known::Changed)) if !is_me => " KEY CHANGED",
        (Camera::On, Some(Known::New)) if !is_me => " new",
        (Camera::On, _) => "",
        (Camera::Off, _) => " (camera off)",
        (Camera::Absent, _) => " (view only)",
    };
    let room = width.saturating_sub(mark.width() + state.width()).max(4);
    let name = t.name_in(room.min(super::super::tile::NAME_COLUMNS));
    let mut spans = vec![Span::styled(mark, style), Span::raw(name)];
    if !state.is_empty() {
        spans.push(Span::styled(state, Style::default().fg(Color::DarkGray)));
    }
    Line::from(spans)
}

/// The chat history (newest at the bottom, scrolled up by
/// `app.chat_scroll` rows) and the line being typed, in a box.
fn draw_chat_box(buf: &mut Buffer, app: &mut App, area: Rect, header: Option<Line<'static>>) {
    let focused = app.focus == Focus::Chat;
    let title = if focused {
        " Chat · Enter sends · Esc closes · PgUp/PgDn "
    } else {
        " Chat · Tab to type "
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title)
        .border_style(if focused {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        });
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let mut rest = inner;
    if let Some(h) = header {
        if rest.height >= 3 {
            let [top, below] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(rest);
            Paragraph::new(h).render(top, buf);
            rest = below;
        }
    }
    let [history, input] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(rest);
    let rows = history_rows(app, history.width as usize, history.height as usize);
    Paragraph::new(rows).render(history, buf);
    let prompt = if focused {
        format!(
            "> {}",
            app.editor.view((input.width as usize).saturating_sub(2))
        )
    } else {
        "> ".to_string()
    };
    Paragraph::new(prompt).render(input, buf);
}

/// The rows of history that fit in `height`, `app.chat_scroll` rows up
/// from the newest (clamped to what there is), with a marker when scrolled.
fn history_rows(app: &mut App, width: usize, height: usize) -> Vec<Line<'static>> {
    if height == 0 || width == 0 {
        return Vec::new();
    }
    // Wrap only as many lines as the view needs: the newest first.
    let need = height + app.chat_scroll;
    let mut rows: Vec<Line<'static>> = Vec::new();
    for line in app.chat.iter().rev() {
        let style = line_style(line);
        let wrapped = wrap(&line_text(line), width);
        for row in wrapped.into_iter().rev() {
            rows.push(Line::styled(row, style));
        }
        if rows.len() >= need {
            break;
        }
    }
    let max_scroll = rows.len().saturating_sub(height);
    app.chat_scroll = app.chat_scroll.min(max_scroll);
    let mut shown: Vec<Line<'static>> = rows
        .into_iter()
        .skip(app.chat_scroll)
        .take(height)
        .collect();
    if app.chat_scroll > 0 {
        if let Some(first) = shown.first_mut() {
            *first = Line::styled(
                truncate(&newer_rows(app.chat_scroll), width),
                Style::default().fg(Color::Cyan),
            );
        }
    }
    shown.reverse();
    shown
}

/// The marker on a scrolled history.
fn newer_rows(n: usize) -> String {
    let rows = if n == 1 { "row" } else { "rows" };
    format!("↓ {n} newer {rows}: PgDn")
}

fn line_text(line: &ChatLine) -> String {
    if line.system {
        line.text.clone()
    } else {
        format!("{}: {}", line.who, line.text)
    }
}

fn line_style(line: &ChatLine) -> Style {
    if line.system {
        Style::default().fg(Color::DarkGray)
    } else {
        Style::default()
    }
}

/// Breaks `text` into rows of at most `width` columns: at spaces where it
/// can, inside a word only when the word is longer than a row (by display
/// width, so wide characters don't overflow).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut used = 0;
    for word in text.split(' ') {
        if used > 0 && used + 1 + word.width() > width {
            rows.push(std::mem::take(&mut row));
            used = 0;
        }
        if used > 0 {
            row.push(' ');
            used += 1;
        }
        for c in word.chars() {
            let w = c.width().unwrap_or(0);
            if used > 0 && used + w > width {
                rows.push(std::mem::take(&mut row));
                used = 0;
            }
            row.push(c);
            used += w;
        }
    }
    rows.push(row);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

    #[test]
    fn wrapping_keeps_words_and_widths() {
        assert_eq!(wrap("hello there world", 11), vec!["hello there", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), vec![""]);
        for row in wrap("日本語の名前です 長い名前 です", 5) {
            assert!(row.width() <= 5, "{row}");
        }
    }

    #[test]
    fn one_newer_row_is_singular() {
        assert_eq!(newer_rows(1), "↓ 1 newer row: PgDn");
        assert_eq!(newer_rows(5), "↓ 5 newer rows: PgDn");
    }

    /// A long (hostile) name gives way to its state; the state is whole.
    #[test]
    fn long_names_in_the_roster_keep_their_state() {
        let mut t = Tile::new("p");
        t.name =
            Some("pwned\u{FFFD}\u{FFFD}日本語の名前です👨\u{200D}👩\u{200D}👧 and so on".into());
        t.verified = true;
        t.camera = Camera::Off;
        for width in [28usize, 30, 42] {
            let line = roster_entry(&t, false, width);
            let text = line.to_string();
            assert!(text.ends_with(" (camera off)"), "{width}: {text}");
            assert!(text.width() <= width, "{width}: {text}");
            assert!(text.starts_with("✓ pwned"), "{text}");
        }
    }

    #[test]
    fn history_scrolls_and_clamps() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        for i in 0..20 {
            app.notice(format!("line {i}"));
        }
        let rows = history_rows(&mut app, 30, 5);
        let text = |rows: &[Line]| -> Vec<String> { rows.iter().map(|l| l.to_string()).collect() };
        assert_eq!(text(&rows).last().unwrap(), "line 19");
        app.chat_scroll = 5;
        let rows = history_rows(&mut app, 30, 5);
        assert_eq!(text(&rows)[0], "line 10");
        assert!(text(&rows).last().unwrap().contains("5 newer rows"));
        app.chat_scroll = 1000;
        let rows = history_rows(&mut app, 30, 5);
        assert_eq!(app.chat_scroll, 15, "clamped to the oldest line");
        assert_eq!(text(&rows)[0], "line 0");
    }
}
