//! Shared terminals drawn as text: each cell of the sharer's screen (already
//! cleaned: a grapheme and its colours, nothing a terminal would act on),
//! panned to follow the cursor when the tile is smaller than the screen,
//! never wrapped.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::super::app::App;
use super::super::render::{ansi256, ColourMode};
use super::super::terminals::SharedTerminal;
use crate::share::screen::{Colour, ShareScreen, BOLD, INVERSE, ITALIC, UNDERLINE, WIDE_TAIL};

/// Splits the video area between shares (the most room) and faces; returns
/// the area left for the faces' grid (empty when a share is focused).
pub fn draw_terminals(buf: &mut Buffer, app: &App, area: Rect) -> Rect {
    if app.terminals.list.is_empty() || area.width < 10 || area.height < 3 {
        return area;
    }
    let focused = app
        .terminal_focus
        .as_deref()
        .and_then(|f| app.terminals.get(f));
    if let Some(t) = focused {
        draw_terminal(buf, app, t, area, true);
        return Rect::default();
    }
    // Shares take two thirds, along the longer side (cells are twice as
    // tall as wide).
    let wide = area.width >= area.height * 2;
    let [shares, faces] = if wide {
        Layout::horizontal([Constraint::Ratio(2, 3), Constraint::Ratio(1, 3)]).areas(area)
    } else {
        Layout::vertical([Constraint::Ratio(2, 3), Constraint::Ratio(1, 3)]).areas(area)
    };
    let n = app.terminals.list.len();
    let parts = if wide {
        Layout::vertical(vec![Constraint::Ratio(1, n as u32); n]).split(shares)
    } else {
        Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(shares)
    };
    for (t, rect) in app.terminals.list.iter().zip(parts.iter()) {
        draw_terminal(buf, app, t, *rect, false);
    }
    faces
}

fn draw_terminal(buf: &mut Buffer, app: &App, t: &SharedTerminal, rect: Rect, focused: bool) {
    if rect.height < 2 || rect.width < 4 {
        return;
    }
    let [label, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(rect);
    let body = Rect {
        width: body.width.saturating_sub(1).max(1),
        ..body
    };
    terminal_label(app, t, focused, label.width as usize).render(label, buf);
    let Some(screen) = &t.screen else {
        Paragraph::new("waiting for the screen…")
            .style(Style::default().fg(Color::DarkGray))
            .render(body, buf);
        return;
    };
    let origin = view_origin(screen, t.pan, body);
    draw_cells(buf, screen, origin, body, app.colour);
}

/// The tile's top line: whose terminal, who may type, how to act on it.
fn terminal_label(
    app: &App,
    t: &SharedTerminal,
    focused: bool,
    width: usize,
) -> Paragraph<'static> {
    let mine = app.my_id.as_deref() == Some(t.from.as_str());
    let who = if mine {
        "your terminal".to_string()
    } else {
        format!("{}'s terminal", app.name_of(&t.from))
    };
    let typing = match (&t.controller, mine) {
        (Some(c), _) if app.my_id.as_deref() == Some(c.as_str()) => "you may type".to_string(),
        (Some(c), _) => format!("{} may type", app.name_of(c)),
        (None, true) => "only you type · g lets someone".into(),
        (None, false) => "read-only".into(),
    };
    let hint = match (focused, app.may_type_in(&t.from)) {
        (true, true) => "typing goes to it · Ctrl-] leaves",
        (true, false) => "arrows pan · Esc leaves",
        (false, _) => "f focuses",
    };
    let size = t
        .screen
        .as_ref()
        .map(|s| format!("{}×{}", s.cols, s.rows))
        .unwrap_or_default();
    let text = format!("{who} · {typing} · {size} · {hint}");
    let text = super::text::truncate(&text, width);
    Paragraph::new(Line::from(vec![Span::styled(
        text,
        Style::default().add_modifier(Modifier::BOLD),
    )]))
}

/// Top-left cell shown: the hand-set pan, else the cursor kept in view
/// (the screen's start when it fits).
pub fn view_origin(screen: &ShareScreen, pan: Option<(u16, u16)>, area: Rect) -> (u16, u16) {
    let max_x = screen.cols.saturating_sub(area.width);
    let max_y = screen.rows.saturating_sub(area.height);
    if let Some((x, y)) = pan {
        return (x.min(max_x), y.min(max_y));
    }
    let (cr, cc) = screen.cursor;
    let follow = |cursor: u16, size: u16, max: u16| -> u16 {
        // The cursor two thirds of the way in: some context before it.
        cursor.saturating_sub(size * 2 / 3).min(max)
    };
    (
        follow(cc, area.width, max_x),
        follow(cr, area.height, max_y),
    )
}

fn draw_cells(
    buf: &mut Buffer,
    screen: &ShareScreen,
    origin: (u16, u16),
    area: Rect,
    colour: ColourMode,
) {
    let (ox, oy) = origin;
    for dy in 0..area.height.min(screen.rows.saturating_sub(oy)) {
        let row = oy + dy;
        let mut dx = 0;
        while dx < area.width && ox + dx < screen.cols {
            let col = ox + dx;
            let Some(cell) = screen.cell(row, col) else {
                break;
            };
            let mut style = Style::default()
                .fg(map_colour(cell.fg, colour))
                .bg(map_colour(cell.bg, colour));
            for (bit, modifier) in [
                (BOLD, Modifier::BOLD),
                (ITALIC, Modifier::ITALIC),
                (UNDERLINE, Modifier::UNDERLINED),
                (INVERSE, Modifier::REVERSED),
            ] {
                if cell.attrs & bit != 0 {
                    style = style.add_modifier(modifier);
                }
            }
            if screen.cursor_visible && screen.cursor == (row, col) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            let width = cell.text.width().max(1) as u16;
            // A wide character cut by the edge, or half of one: a blank.
            let symbol =
                if cell.attrs & WIDE_TAIL != 0 || dx + width > area.width || cell.text.is_empty() {
                    " "
                } else {
                    cell.text.as_str()
                };
            let target = &mut buf[(area.x + dx, area.y + dy)];
            target.set_symbol(symbol).set_style(style);
            dx += if symbol == " " { 1 } else { width };
        }
    }
}

fn map_colour(c: Colour, mode: ColourMode) -> Color {
    match (c, mode) {
        (_, ColourMode::Mono) | (Colour::Default, _) => Color::Reset,
        (Colour::Index(i), ColourMode::Ansi16) if i >= 16 => Color::Reset,
        (Colour::Index(i), _) => Color::Indexed(i),
        (Colour::Rgb(r, g, b), ColourMode::TrueColor) => Color::Rgb(r, g, b),
        (Colour::Rgb(r, g, b), ColourMode::Ansi256) => Color::Indexed(ansi256([r, g, b])),
        (Colour::Rgb(..), _) => Color::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn screen(cols: u16, rows: u16, cursor: (u16, u16)) -> ShareScreen {
        let mut s = ShareScreen::blank(cols, rows);
        s.cursor = cursor;
        s
    }

    #[test]
    fn the_view_follows_the_cursor_and_never_leaves_the_screen() {
        let area = Rect::new(0, 0, 80, 22);
        // Fits: from the start.
        assert_eq!(view_origin(&screen(60, 20, (19, 59)), None, area), (0, 0));
        // A 120×40 share in an 80×22 tile: the cursor stays in view.
        let s = screen(120, 40, (39, 119));
        let (x, y) = view_origin(&s, None, area);
        assert!(
            x <= 119 && 119 < x + 80 && y <= 39 && 39 < y + 22,
            "{x},{y}"
        );
        assert_eq!((x, y), (40, 18), "clamped to the screen's edge");
        let (x, y) = view_origin(&screen(120, 40, (0, 0)), None, area);
        assert_eq!((x, y), (0, 0));
        // Panned by hand: as asked, within bounds.
        assert_eq!(view_origin(&s, Some((500, 3)), area), (40, 3));
    }
}
