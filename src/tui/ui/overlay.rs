//! Overlays drawn over the video: the help (`?`, with the safety words)
//! and the invite (`s`, host only).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use unicode_width::UnicodeWidthStr;

use super::super::app::{App, Share};

pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "leave the call"),
    ("v", "camera on/off"),
    ("m", "mute / unmute your voice"),
    ("Tab, i", "chat: open and type (Tab, Esc close)"),
    ("Enter", "send the message"),
    ("← → Home End", "move in the line you type"),
    ("PgUp, PgDn", "scroll the chat history"),
    ("c", "cycle colours: truecolor, 256, 16, mono"),
    ("f", "one tile at a time / next / back to the grid"),
    ("s", "show the invite again (host)"),
    ("?", "this help (any key closes it)"),
];

/// Draws the help overlay; returns where it is. The safety words come
/// first so they stay on screen however small the terminal is.
pub(super) fn draw_help(buf: &mut Buffer, area: Rect, app: &App) -> Rect {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    if app.status.safety_words.is_empty() {
        lines.push(Line::raw(
            "Safety words: none yet (they appear when someone is verified).",
        ));
    } else {
        lines.push(Line::from(vec![
            Span::raw("Safety words: "),
            Span::styled(app.status.safety_words.clone(), bold),
        ]));
        lines.push(Line::raw(
            "Compare them aloud with everyone: the same words mean no one is in the middle.",
        ));
    }
    lines.push(Line::raw(""));
    let key_width = HELP.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    for (k, v) in HELP {
        if *k == "s" && app.share.is_none() {
            continue;
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{k:>key_width$}  "), bold),
            Span::raw(*v),
        ]));
    }
    draw_box(buf, area, " StreamFlow keys ", lines, 64)
}

/// The invite and relay, each on its own line so they copy whole.
pub(super) fn draw_share(buf: &mut Buffer, area: Rect, share: &Share) -> Rect {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let lines = vec![
        Line::raw("Give the others this (privately); they run:"),
        Line::raw(""),
        Line::styled(share.join_line(), bold),
        Line::raw(""),
        Line::raw("or, piece by piece —"),
        Line::from(vec![
            Span::raw("invite: "),
            Span::styled(share.invite.clone(), bold),
        ]),
        Line::from(vec![
            Span::raw("relay:  "),
            Span::styled(share.relay.clone(), bold),
        ]),
        Line::raw(""),
        Line::raw("Any key closes this."),
    ];
    let widest = lines.iter().map(Line::width).max().unwrap_or(0) as u16;
    draw_box(buf, area, " Invite ", lines, widest + 4)
}

/// A bordered box centred in `area`, as wide as `want` allows; wrapped
/// text. Returns where it is.
fn draw_box(buf: &mut Buffer, area: Rect, title: &str, lines: Vec<Line>, want: u16) -> Rect {
    let width = want.min(area.width);
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let rows: usize = lines
        .iter()
        .map(|l| l.width().div_ceil(inner_width).max(1))
        .sum();
    let height = (rows as u16 + 2).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(title))
        .render(rect, buf);
    rect
}
