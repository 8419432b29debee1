//! Overlays drawn over the video: the help (`?`, with the safety words)
//! and the invite (`s`). Taller than the screen, they scroll (arrows,
//! PgUp/PgDn, Home/End) and say "↓ more" while there is more.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::super::app::App;
use super::text::{scroll_window, wrap_line};

pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "leave the call"),
    ("v", "camera on/off"),
    ("m", "mute / unmute your voice"),
    ("Tab, i", "chat: open and type (Tab, Esc close)"),
    ("Enter", "send the message"),
    ("← → Home End", "move in the line you type"),
    ("PgUp, PgDn", "scroll the chat history (and these boxes)"),
    ("c", "cycle colours: truecolor, 256, 16, mono"),
    ("p", "cycle cells: half, quadrant, sextant, pixels"),
    ("f", "one at a time: shares, others, you, the grid"),
    ("t, T", "share a terminal ($SHELL); T stops it"),
    ("g, G", "let the next member type in it; G: nobody"),
    ("Ctrl-]", "leave a terminal you type in"),
    ("s", "show the invite again"),
    (
        "w w",
        "we compared the safety words: everyone here is verified (✓✓) in later calls",
    ),
    ("Ctrl-Z", "suspend (fg resumes)"),
    ("?", "this help (↑↓ PgUp PgDn scroll, other keys close)"),
];

/// Where an overlay is, and how it is scrolled (clamped) and paged.
pub(super) struct Shown {
    pub rect: Rect,
    pub scroll: usize,
    pub page: usize,
}

/// Draws the help overlay. The safety words come first so they are on
/// screen however small the terminal is.
pub(super) fn draw_help(buf: &mut Buffer, area: Rect, app: &App) -> Shown {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    if app.reconnect_at.is_some() {
        lines.push(Line::raw(
            "Safety words: none while reconnecting (compare again after reconnecting).",
        ));
    } else if app.status.safety_words.is_empty() {
        lines.push(Line::raw(
            "Safety words: none yet (they appear when someone is verified).",
        ));
    } else {
        lines.push(Line::from(vec![
            Span::raw("Safety words: "),
            Span::styled(app.status.safety_words.clone(), bold),
        ]));
        lines.push(Line::raw(
            "Compare them aloud with everyone: the same words mean no one is in the middle. Then w w remembers everyone as verified.",
        ));
    }
    lines.push(Line::raw(""));
    const WANT: u16 = 64;
    let inner = WANT.min(area.width).saturating_sub(2).max(1) as usize;
    let key_width = HELP.iter().map(|(k, _)| k.width()).max().unwrap_or(0);
    // Descriptions wrap under themselves, beside the keys; too narrow for
    // that, each key gets a line of its own above its description.
    let beside = inner.saturating_sub(key_width + 2);
    for (k, v) in HELP {
        if *k == "s" && app.share.is_none() {
            continue;
        }
        if beside >= 12 {
            let pad = " ".repeat(key_width + 2);
            for (i, row) in super::status::wrap_words(v, beside).into_iter().enumerate() {
                lines.push(if i == 0 {
                    Line::from(vec![
                        Span::styled(format!("{k:>key_width$}  "), bold),
                        Span::raw(row),
                    ])
                } else {
                    Line::raw(format!("{pad}{row}"))
                });
            }
        } else {
            lines.push(Line::styled(k.to_string(), bold));
            for row in super::status::wrap_words(v, inner.saturating_sub(2).max(1)) {
                lines.push(Line::raw(format!("  {row}")));
            }
        }
    }
    let scroll = app.overlay_scroll;
    draw_box(buf, area, " StreamFlow keys ", lines, WANT, scroll)
}

/// The invite overlay, if there is an invite. The join command breaks
/// only between arguments, so each line of it copies whole.
pub(super) fn draw_share(buf: &mut Buffer, area: Rect, app: &App) -> Option<Shown> {
    let share = app.share.as_ref()?;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let join = share.join_line();
    let want = (join.width() + 4).max(48) as u16;
    let inner = want.min(area.width).saturating_sub(2).max(1) as usize;
    let mut lines = vec![
        Line::raw("Give the others this (privately); they run:"),
        Line::raw(""),
    ];
    let command = command_rows(&join, inner);
    let whole = command.iter().all(|r| r.width() <= inner);
    lines.extend(command.into_iter().map(|r| Line::styled(r, bold)));
    lines.push(Line::raw(""));
    lines.push(Line::raw("or, piece by piece —"));
    for (label, value) in [("invite: ", &share.invite), ("relay:  ", &share.relay)] {
        if label.width() + value.width() <= inner {
            lines.push(Line::from(vec![
                Span::raw(label),
                Span::styled(value.clone(), bold),
            ]));
        } else {
            lines.push(Line::raw(label.trim_end().to_string()));
            lines.push(Line::styled(value.clone(), bold));
        }
    }
    if !whole {
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "Too narrow to show the invite on one line: widen the window to copy it.",
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::raw("Any other key closes this."));
    Some(draw_box(
        buf,
        area,
        " Invite ",
        lines,
        want,
        app.overlay_scroll,
    ))
}

/// A command broken into rows of at most `width` columns between its
/// arguments (never inside one), a flag kept with its value where they
/// fit, later rows indented: each row copies whole. An argument wider
/// than a row gets a row of its own.
pub(super) fn command_rows(command: &str, width: usize) -> Vec<String> {
    const INDENT: &str = "  ";
    let args: Vec<&str> = command.split_whitespace().collect();
    // Units that stay together: `--flag value`, or one argument.
    let mut units: Vec<Vec<&str>> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let pair = args[i].starts_with("--")
            && args.get(i + 1).is_some_and(|v| !v.starts_with('-'))
            && INDENT.width() + args[i].width() + 1 + args[i + 1].width() <= width;
        let n = if pair { 2 } else { 1 };
        units.push(args[i..i + n].to_vec());
        i += n;
    }
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for unit in units {
        let text = unit.join(" ");
        if row.is_empty() {
            if !rows.is_empty() {
                row.push_str(INDENT);
            }
            row.push_str(&text);
        } else if row.width() + 1 + text.width() <= width {
            row.push(' ');
            row.push_str(&text);
        } else {
            rows.push(std::mem::take(&mut row));
            row.push_str(INDENT);
            row.push_str(&text);
        }
    }
    if !row.is_empty() {
        rows.push(row);
    }
    rows
}

/// A bordered box centred in `area`, as wide as `want` allows, its lines
/// wrapped at spaces and shown from row `scroll` on; the bottom border
/// says when there is more above or below.
fn draw_box(
    buf: &mut Buffer,
    area: Rect,
    title: &str,
    lines: Vec<Line>,
    want: u16,
    scroll: usize,
) -> Shown {
    let width = want.min(area.width);
    let inner_width = width.saturating_sub(2).max(1) as usize;
    let rows: Vec<Line> = lines
        .iter()
        .flat_map(|l| wrap_line(l, inner_width))
        .collect();
    let height = (rows.len() as u16 + 2).min(area.height);
    let page = height.saturating_sub(2).max(1) as usize;
    let (scroll, above, below) = scroll_window(rows.len(), page, scroll);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let more = match (above, below) {
        (_, true) => Some(" ↓ more: ↓ PgDn "),
        (true, false) => Some(" ↑ more: ↑ PgUp "),
        _ => None,
    };
    let mut block = Block::default().borders(Borders::ALL).title(title);
    if let Some(more) = more {
        block = block.title_bottom(Line::styled(
            super::truncate(more, inner_width),
            Style::default().add_modifier(Modifier::REVERSED),
        ));
    }
    Clear.render(rect, buf);
    let shown: Vec<Line> = rows.into_iter().skip(scroll).take(page).collect();
    Paragraph::new(shown).block(block).render(rect, buf);
    Shown { rect, scroll, page }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_break_between_arguments_only() {
        let join = "streamflow join k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift --relay ws://203.0.113.7:8787";
        assert_eq!(command_rows(join, 200), vec![join.to_string()]);
        let rows = command_rows(join, 60);
        assert_eq!(
            rows,
            vec![
                "streamflow join",
                "  k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift",
                "  --relay ws://203.0.113.7:8787",
            ]
        );
        // Every argument whole on some row, in order.
        let rejoined: Vec<&str> = rows.iter().flat_map(|r| r.split_whitespace()).collect();
        assert_eq!(rejoined, join.split_whitespace().collect::<Vec<_>>());
        // Too narrow for the invite: it gets a row of its own, still whole.
        let rows = command_rows(join, 30);
        assert!(rows.contains(&"  k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift".to_string()));
    }
}
