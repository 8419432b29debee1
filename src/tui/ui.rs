//! Drawing: a function of the [`App`] state (plus the tiles' decode caches).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget, Wrap};
use ratatui::Frame;

use super::app::{App, Focus, Tile};
use super::render::{draw_image, ColourMode};
use super::screen::Regions;

/// Sidebar (roster + chat) only when there is room for video beside it.
const SIDEBAR_MIN_WIDTH: u16 = 72;
/// Video aspect the grid is laid out for (the test pattern's 5:3).
const ASPECT: (u32, u32) = (5, 3);

/// Colour hysteresis threshold (sum of channel differences) per mode.
pub fn hysteresis(mode: ColourMode) -> u32 {
    match mode {
        ColourMode::TrueColor => 40,
        ColourMode::Ansi256 => 8,
        ColourMode::Ansi16 | ColourMode::Mono => 0,
    }
}

/// Splits `area` into `n` tiles, choosing the column count that gives the
/// largest video.
pub fn grid(area: Rect, n: usize) -> Vec<Rect> {
    if n == 0 || area.width == 0 || area.height == 0 {
        return Vec::new();
    }
    let best_cols = (1..=n)
        .max_by_key(|&cols| {
            let rows = n.div_ceil(cols);
            let w = u32::from(area.width) / cols as u32;
            let h = (u32::from(area.height) / rows as u32).saturating_sub(1) * 2;
            let (fw, fh) = crate::media::scale::fit(ASPECT, (w.max(1), h.max(1)));
            if w == 0 || h == 0 {
                0
            } else {
                fw * fh
            }
        })
        .unwrap_or(1);
    let rows = n.div_ceil(best_cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    let mut tiles = Vec::with_capacity(n);
    for (r, row) in row_areas.iter().enumerate() {
        let in_row = (n - r * best_cols).min(best_cols);
        let cols =
            Layout::horizontal(vec![Constraint::Ratio(1, best_cols as u32); best_cols]).split(*row);
        tiles.extend(cols.iter().take(in_row).copied());
    }
    tiles
}

/// What a draw produced besides the cells.
#[derive(Debug, Default)]
pub struct Drawn {
    /// The largest tile's video size in pixels (what we ask senders to
    /// encode at).
    pub largest: (u32, u32),
    /// Where video and overlays are, for the budgeted screen update.
    pub regions: Regions,
}

/// Draws everything into a ratatui frame (tests, snapshots); returns the
/// largest tile's video size in pixels.
pub fn draw(frame: &mut Frame, app: &mut App) -> (u32, u32) {
    let area = frame.area();
    draw_into(area, frame.buffer_mut(), app).largest
}

/// Draws everything into `buf`.
pub fn draw_into(area: Rect, buf: &mut Buffer, app: &mut App) -> Drawn {
    let mut drawn = Drawn::default();
    let [main, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let (video, sidebar) = if main.width >= SIDEBAR_MIN_WIDTH {
        let side = (main.width / 4).clamp(24, 40);
        let [v, s] = Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(main);
        (v, Some(s))
    } else if app.focus == Focus::Chat {
        let [v, s] = Layout::vertical([Constraint::Min(1), Constraint::Length(8.min(main.height))])
            .areas(main);
        (v, Some(s))
    } else {
        (main, None)
    };
    drawn.largest = draw_grid(buf, app, video, &mut drawn.regions);
    if let Some(s) = sidebar {
        draw_sidebar(buf, app, s);
    }
    draw_status(buf, app, status);
    if app.show_help {
        drawn.regions.overlays.push(draw_help(buf, area));
    }
    drawn
}

fn draw_grid(buf: &mut Buffer, app: &mut App, area: Rect, regions: &mut Regions) -> (u32, u32) {
    let picture = app.picture;
    let colour = picture.colour(app.colour);
    // Under pressure (a slow terminal or link) small colour changes are
    // let go too: fewer cells change, fewer bytes go out.
    let threshold = hysteresis(colour) * picture.hysteresis * app.pressure.clamp(1, 4);
    let refresh = app.video_refresh;
    let count = app.peers.len() + 1;
    let mut order: Vec<usize> = (0..count).collect();
    if let Some(f) = app.focused_tile.filter(|f| *f < count) {
        order = vec![f];
    }
    let rects = grid(area, order.len());
    let mut largest = (0, 0);
    for (rect, index) in rects.into_iter().zip(order) {
        let tile = if index == 0 {
            &mut app.me
        } else {
            &mut app.peers[index - 1]
        };
        let style = TileStyle {
            colour,
            threshold,
            column_step: picture.column_step,
            refresh,
        };
        let px = draw_tile(buf, tile, rect, style, index == 0, regions);
        if px.0 * px.1 > largest.0 * largest.1 {
            largest = px;
        }
    }
    largest
}

/// How tiles draw their video this frame.
#[derive(Clone, Copy)]
struct TileStyle {
    colour: ColourMode,
    threshold: u32,
    column_step: u32,
    /// Take the newest frames (false: redraw what is shown, for a frame
    /// that only carries text changes).
    refresh: bool,
}

fn draw_tile(
    buf: &mut Buffer,
    tile: &mut Tile,
    rect: Rect,
    style: TileStyle,
    is_me: bool,
    regions: &mut Regions,
) -> (u32, u32) {
    if rect.height < 2 || rect.width < 4 {
        return (0, 0);
    }
    let [label, video] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(rect);
    // One column of gap between tiles.
    let video = Rect {
        width: video.width.saturating_sub(1).max(1),
        ..video
    };
    let px = (u32::from(video.width), u32::from(video.height) * 2);
    let mut spans = vec![Span::styled(
        tile.label(),
        Style::default().add_modifier(Modifier::BOLD),
    )];
    if !is_me {
        spans.push(Span::raw(format!(
            "  {} fps  {:.0} ms",
            tile.fps(),
            tile.latency_ms
        )));
        if tile.mismatch {
            spans.push(Span::styled(
                "  ✗ not verified",
                Style::default().fg(Color::Red),
            ));
        } else if !tile.verified {
            spans.push(Span::styled(
                "  verifying…",
                Style::default().fg(Color::Yellow),
            ));
        }
    }
    Paragraph::new(Line::from(spans)).render(label, buf);
    if !tile.camera_on {
        centered_text("camera off").render(video, buf);
        return px;
    }
    let step = style.column_step.max(1);
    tile.prepare(((px.0 / step).max(1), px.1), step, style.refresh);
    match &tile.image {
        Some(img) => {
            draw_image(
                buf,
                video,
                img,
                style.colour,
                &mut tile.memory,
                style.threshold,
                step,
            );
            regions.video.push(video);
        }
        None => {
            let text = if is_me {
                "no video (view only)"
            } else {
                "waiting for video…"
            };
            centered_text(text).render(video, buf);
        }
    }
    px
}

fn centered_text(text: &str) -> Paragraph<'_> {
    Paragraph::new(text)
        .style(Style::default().fg(Color::DarkGray))
        .centered()
}

fn draw_sidebar(buf: &mut Buffer, app: &App, area: Rect) {
    let roster_height = (app.peers.len() as u16 + 3).min(area.height / 2).max(3);
    let [roster, chat] =
        Layout::vertical([Constraint::Length(roster_height), Constraint::Min(3)]).areas(area);
    let mut lines = vec![Line::from(vec![
        Span::raw("● "),
        Span::raw(app.me.label()),
        Span::styled(
            if app.camera_on { "" } else { "  camera off" },
            Style::default().fg(Color::DarkGray),
        ),
    ])];
    for t in &app.peers {
        let (mark, style) = if t.mismatch {
            ("✗ ", Style::default().fg(Color::Red))
        } else if t.verified {
            ("✓ ", Style::default().fg(Color::Green))
        } else {
            ("… ", Style::default().fg(Color::Yellow))
        };
        let mut spans = vec![Span::styled(mark, style), Span::raw(t.label())];
        if !t.camera_on {
            spans.push(Span::styled(
                "  camera off",
                Style::default().fg(Color::DarkGray),
            ));
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" In the call ({}) ", app.peers.len() + 1)),
        )
        .render(roster, buf);

    let focused = app.focus == Focus::Chat;
    let block = Block::default()
        .borders(Borders::ALL)
        .title(if focused {
            " Chat · Enter sends, Esc "
        } else {
            " Chat · Tab to type "
        })
        .border_style(if focused {
            Style::default().fg(Color::Cyan)
        } else {
            Style::default()
        });
    let inner = block.inner(chat);
    block.render(chat, buf);
    if inner.height == 0 {
        return;
    }
    let [history, input] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
    let width = history.width.max(1) as usize;
    // Newest at the bottom: take lines from the end until the pane is full.
    let mut shown: Vec<Line> = Vec::new();
    let mut rows = 0;
    for line in app.chat.iter().rev() {
        let text = if line.system {
            line.text.clone()
        } else {
            format!("{}: {}", line.who, line.text)
        };
        let needed = text.chars().count().div_ceil(width).max(1);
        if rows + needed > history.height as usize {
            break;
        }
        rows += needed;
        let style = if line.system {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        };
        shown.push(Line::styled(text, style));
    }
    shown.reverse();
    Paragraph::new(shown)
        .wrap(Wrap { trim: false })
        .render(history, buf);
    let prompt = if focused {
        format!("> {}▏", app.input)
    } else {
        "> ".to_string()
    };
    Paragraph::new(prompt).render(input, buf);
}

fn draw_status(buf: &mut Buffer, app: &App, area: Rect) {
    let s = &app.status;
    let rtt = s
        .rtt
        .map(|r| format!("rtt {:.0} ms", r.as_secs_f64() * 1000.0))
        .unwrap_or_else(|| "rtt –".into());
    let connection = match app.reconnect_at {
        Some(at) => format!(
            "{}, retry in {:.0} s",
            s.connection,
            at.saturating_duration_since(std::time::Instant::now())
                .as_secs_f64()
                .ceil()
        ),
        None => s.connection.clone(),
    };
    // (priority, text): when the line is too narrow the least important
    // parts go first, so what matters (the call's state, the safety
    // words, the terminal path) stays readable at any width.
    let mut parts: Vec<(u8, String)> = vec![
        (0, connection),
        (3, rtt),
        (4, format!("↑{:.0} ↓{:.0} kbit/s", s.up_kbps, s.down_kbps)),
        (6, format!("key #{}", s.epoch)),
        (5, format!("send q{}/{}", s.level, crate::media::adapt::TOP)),
        (1, format!("safety: {}", s.safety_words)),
        (1, s.verification.clone()),
        (6, app.colour.label().to_string()),
        (2, s.tty.clone()),
        (
            7,
            format!(
                "render {:.0} fps {:.1} KB/f",
                s.render_fps,
                s.bytes_per_frame / 1024.0
            ),
        ),
    ];
    if app.chat_pending > 0 {
        parts.push((2, format!("{} chat unsent", app.chat_pending)));
    }
    if s.decrypt_failures > 0 {
        parts.push((2, format!("{} undecryptable", s.decrypt_failures)));
    }
    let undecodable: u64 = app.peers.iter().map(|t| t.decode_failures).sum();
    if undecodable > 0 {
        parts.push((2, format!("{undecodable} undecodable")));
    }
    parts.push((5, "? help".into()));
    let text = fit_parts(parts, area.width as usize);
    Paragraph::new(text)
        .style(Style::default().bg(Color::DarkGray).fg(Color::White))
        .render(area, buf);
}

const SEPARATOR: &str = " │ ";

/// Joins the parts that fit in `width` columns, dropping the least
/// important (highest number) first, keeping the order of the rest.
fn fit_parts(mut parts: Vec<(u8, String)>, width: usize) -> String {
    use unicode_width::UnicodeWidthStr;
    parts.retain(|(_, p)| !p.is_empty());
    let total = |parts: &[(u8, String)]| -> usize {
        parts.iter().map(|(_, p)| p.width()).sum::<usize>()
            + SEPARATOR.width() * parts.len().saturating_sub(1)
    };
    while parts.len() > 1 && total(&parts) > width {
        let least = parts
            .iter()
            .enumerate()
            .max_by_key(|(i, (priority, _))| (*priority, *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        parts.remove(least);
    }
    parts
        .into_iter()
        .map(|(_, p)| p)
        .collect::<Vec<_>>()
        .join(SEPARATOR)
}

pub const HELP: &[(&str, &str)] = &[
    ("q, Ctrl-C", "leave the call"),
    ("v", "camera on/off"),
    ("Tab, i", "type a chat message"),
    ("Enter", "send the message"),
    ("Esc", "back to the video"),
    ("c", "cycle colours: truecolor, 256, 16, mono"),
    ("f", "focus one tile / next / back to the grid"),
    ("?", "this help (any key closes it)"),
];

/// Draws the help overlay; returns where it is.
fn draw_help(buf: &mut Buffer, area: Rect) -> Rect {
    let width = 60.min(area.width);
    let height = (HELP.len() as u16 + 6).min(area.height);
    let rect = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(
                    format!("{k:>10}  "),
                    Style::default().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*v),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw(
        "Compare the safety words aloud: equal words mean no one is in the middle.",
    ));
    Clear.render(rect, buf);
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" StreamFlow keys "),
        )
        .render(rect, buf);
    rect
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parts_drop_least_important_first() {
        let parts = vec![
            (0, "in the call".to_string()),
            (7, "render 30 fps".to_string()),
            (1, "safety: a b c d".to_string()),
            (2, "tty 40 ms".to_string()),
        ];
        assert_eq!(
            fit_parts(parts.clone(), 200),
            "in the call │ render 30 fps │ safety: a b c d │ tty 40 ms"
        );
        assert_eq!(
            fit_parts(parts.clone(), 45),
            "in the call │ safety: a b c d │ tty 40 ms"
        );
        assert_eq!(
            fit_parts(parts.clone(), 30),
            "in the call │ safety: a b c d"
        );
        assert_eq!(fit_parts(parts, 3), "in the call");
    }
}
