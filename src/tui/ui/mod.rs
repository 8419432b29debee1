//! Drawing: a function of the [`App`] state (plus the tiles' decode caches).
//!
//! Layout by width: from 120 columns a sidebar (roster and chat) sits beside
//! the video; below that the video takes the width and the chat opens as a
//! strip under it (Tab). When the grid's tiles would be too small to see,
//! one tile is shown at a time (`f` steps through them). The status line
//! keeps the safety words whole, on a line of their own if need be.

mod chat;
mod overlay;
mod status;
pub mod terminal;
pub mod text;

use crate::identity::known::Known;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::app::{App, Focus, Tile};
use super::cells::CellMode;
use super::graphics::{self, TileImage};
use super::render::{draw_image_cells, ColourMode};
use super::screen::Regions;
use crate::session::state::Camera;

pub use overlay::HELP;
pub(super) use text::truncate;

/// Sidebar (roster + chat) only when the video keeps most of the width.
const SIDEBAR_MIN_WIDTH: u16 = 120;
/// Smallest tile (cells) worth showing in a grid; below it, one at a time.
const MIN_TILE: (u16, u16) = (22, 7);
/// The chat strip's height when open below the video (narrow terminals).
const CHAT_STRIP_ROWS: u16 = 9;
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
    grid_at_least(area, n, (1, 1)).unwrap_or_default()
}

/// Like [`grid`], among the layouts whose tiles are all at least `min`
/// cells; None if there is none.
fn grid_at_least(area: Rect, n: usize, min: (u16, u16)) -> Option<Vec<Rect>> {
    if n == 0 || area.width == 0 || area.height == 0 {
        return None;
    }
    let cols = (1..=n)
        .filter(|&cols| {
            let rows = n.div_ceil(cols) as u16;
            area.width / cols as u16 >= min.0 && area.height / rows >= min.1
        })
        .max_by_key(|&cols| {
            let rows = n.div_ceil(cols);
            let w = u32::from(area.width) / cols as u32;
            let h = (u32::from(area.height) / rows as u32).saturating_sub(1) * 2;
            let (fw, fh) = crate::media::scale::fit(ASPECT, (w.max(1), h.max(1)));
            // Ties (same picture size) go to fewer columns: rows fill the
            // width.
            (fw * fh, std::cmp::Reverse(cols))
        })?;
    let rows = n.div_ceil(cols);
    let row_areas = Layout::vertical(vec![Constraint::Ratio(1, rows as u32); rows]).split(area);
    let mut tiles = Vec::with_capacity(n);
    for (r, row) in row_areas.iter().enumerate() {
        let in_row = (n - r * cols).min(cols);
        let split = Layout::horizontal(vec![Constraint::Ratio(1, cols as u32); cols]).split(*row);
        tiles.extend(split.iter().take(in_row).copied());
    }
    Some(tiles)
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
    let status_lines = status::lines(app, area.width);
    let status_rows = (status_lines.len() as u16).min(area.height.saturating_sub(1).max(1));
    let [main, status] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(status_rows)]).areas(area);
    let mut video = main;
    if main.width >= SIDEBAR_MIN_WIDTH {
        let side = (main.width / 4).clamp(30, 44);
        let [v, s] = Layout::horizontal([Constraint::Min(1), Constraint::Length(side)]).areas(main);
        video = v;
        chat::draw_sidebar(buf, app, s);
    } else if app.focus == Focus::Chat {
        let rows = CHAT_STRIP_ROWS.min(main.height / 2).max(main.height.min(4));
        let [v, s] = Layout::vertical([Constraint::Min(0), Constraint::Length(rows)]).areas(main);
        video = v;
        chat::draw_strip(buf, app, s);
    } else if main.height >= 14 && !app.chat.is_empty() {
        let [v, t] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(main);
        video = v;
        chat::draw_ticker(buf, app, t);
    }
    let faces = terminal::draw_terminals(buf, app, video);
    if !faces.is_empty() {
        drawn.largest = draw_grid(buf, app, faces, &mut drawn.regions);
    }
    status::draw(buf, status, status_lines);
    if let Some(rect) = draw_banner(buf, app, video) {
        drawn.regions.overlays.push(rect);
    }
    let shown = if app.show_help {
        Some(overlay::draw_help(buf, area, app))
    } else if app.show_share {
        overlay::draw_share(buf, area, app)
    } else {
        None
    };
    if let Some(shown) = shown {
        app.overlay_scroll = shown.scroll;
        app.overlay_page = shown.page;
        drawn.regions.overlays.push(shown.rect);
    }
    drawn
}

/// The banner over the bottom of the video: the host's quit prompt (it
/// asks, so it stands out) or a flashed message, word-wrapped to at most
/// three rows.
fn draw_banner(buf: &mut Buffer, app: &App, video: Rect) -> Option<Rect> {
    let (text, urgent) = app.banner(std::time::Instant::now())?;
    if video.width == 0 || video.height == 0 {
        return None;
    }
    let width = video.width as usize;
    let mut rows = status::wrap_words(&text, width.saturating_sub(2).max(1));
    rows.truncate(3.min(video.height as usize));
    let rect = Rect {
        x: video.x,
        y: video.bottom() - rows.len() as u16,
        width: video.width,
        height: rows.len() as u16,
    };
    let style = if urgent {
        Style::default()
            .fg(Color::Black)
            .bg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::REVERSED)
    };
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|r| {
            Line::raw(format!(
                " {} ",
                text::cut_words(&r, width.saturating_sub(2))
            ))
        })
        .collect();
    ratatui::widgets::Clear.render(rect, buf);
    Paragraph::new(lines).style(style).render(rect, buf);
    Some(rect)
}

fn draw_grid(buf: &mut Buffer, app: &mut App, area: Rect, regions: &mut Regions) -> (u32, u32) {
    let picture = app.picture;
    let colour = picture.colour(app.colour);
    // Under pressure (a slow terminal or link) small colour changes are
    // let go too: fewer cells change, fewer bytes go out.
    let threshold = hysteresis(colour) * picture.hysteresis * app.pressure.clamp(1, 4);
    let refresh = app.video_refresh;
    let count = app.peers.len() + 1;
    let fitting = grid_at_least(area, count, MIN_TILE);
    app.one_at_a_time = count > 1 && fitting.is_none();
    let all = fitting.unwrap_or_else(|| grid(area, count));
    let (order, position): (Vec<usize>, Option<(usize, usize)>) =
        match app.focused_tile.filter(|f| *f < count) {
            Some(f) => (vec![f], Some((f, count))),
            // Too small for everyone: the first of the others.
            None if app.one_at_a_time => (vec![1], Some((1, count))),
            None => ((0..count).collect(), None),
        };
    let rects = if order.len() == count {
        all
    } else {
        grid(area, 1)
    };
    let style = TileStyle {
        colour,
        threshold,
        column_step: picture.column_step,
        refresh,
        cells: picture.cells(app.cells),
    };
    let mut largest = (0, 0);
    for (rect, index) in rects.into_iter().zip(order) {
        let tile = if index == 0 {
            &mut app.me
        } else {
            &mut app.peers[index - 1]
        };
        let px = draw_tile(buf, tile, rect, style, index == 0, position, regions);
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
    /// Half blocks, quadrants or sextants.
    cells: CellMode,
}

fn draw_tile(
    buf: &mut Buffer,
    tile: &mut Tile,
    rect: Rect,
    style: TileStyle,
    is_me: bool,
    position: Option<(usize, usize)>,
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
    // A changed identity key is said on the tile itself, above the video,
    // for the rest of the call.
    let video = match &tile.identity_warning {
        Some(warning) if !is_me && video.height >= 3 => {
            let rows = if video.height >= 8 { 2 } else { 1 };
            let [warn, rest] =
                Layout::vertical([Constraint::Length(rows), Constraint::Min(1)]).areas(video);
            Paragraph::new(format!("⚠ {warning}"))
                .wrap(ratatui::widgets::Wrap { trim: true })
                .style(
                    Style::default()
                        .fg(Color::White)
                        .bg(Color::Red)
                        .add_modifier(Modifier::BOLD),
                )
                .render(warn, buf);
            rest
        }
        _ => video,
    };
    // Half blocks: a pixel a column, two a row (what senders are asked
    // for); finer cells ask for twice that.
    let half_px = (u32::from(video.width), u32::from(video.height) * 2);
    let cells = if style.colour == ColourMode::Mono {
        CellMode::Half
    } else {
        style.cells
    };
    let px = if cells == CellMode::Half {
        half_px
    } else {
        (half_px.0 * 2, half_px.1 * 2)
    };
    tile_label(tile, is_me, position, label.width as usize).render(label, buf);
    let absent = match tile.camera {
        Camera::Off => Some("camera off"),
        Camera::Absent if is_me => Some("view only: no camera"),
        Camera::Absent => Some("view only"),
        Camera::On => None,
    };
    if let Some(text) = absent {
        centered_text(text, video).render(video, buf);
        return px;
    }
    if !cells.is_text() {
        let (cw, ch) = cells.pixels();
        let grid = (u32::from(video.width) * cw, u32::from(video.height) * ch);
        tile.prepare(grid, cells.pixel_aspect(), style.refresh);
        if let Some(img) = &tile.image {
            // Blank cells under the picture the terminal draws.
            buf.set_style(video, Style::default().bg(Color::Black));
            regions.images.push(TileImage {
                id: graphics::tile_id(&tile.id),
                generation: tile.generation,
                rect: video,
                image: img.clone(),
            });
            regions.video.push(video);
            return grid;
        }
    }
    let step = style.column_step.max(1);
    if cells == CellMode::Half {
        tile.prepare(((px.0 / step).max(1), px.1), (step, 1), style.refresh);
    } else {
        let (cw, ch) = cells.pixels();
        let grid = (u32::from(video.width) * cw, u32::from(video.height) * ch);
        tile.prepare(grid, cells.pixel_aspect(), style.refresh);
    }
    match &tile.image {
        Some(img) => {
            draw_image_cells(
                buf,
                video,
                img,
                style.colour,
                &mut tile.memory,
                style.threshold,
                step,
                cells,
            );
            regions.video.push(video);
        }
        None => {
            let text = if is_me {
                "starting video…"
            } else if tile.mismatch {
                "could not prove the passphrase"
            } else if !tile.verified {
                "verifying…"
            } else {
                "waiting for video…"
            };
            centered_text(text, video).render(video, buf);
        }
    }
    px
}

/// A tile's top line: the name (bold), then what matters about it —
/// verification first, then the video rate or why there is none, then
/// where it is in a one-at-a-time view. The name gives way to the rest
/// down to a few columns, so long names never push the state off.
fn tile_label(
    tile: &Tile,
    is_me: bool,
    position: Option<(usize, usize)>,
    width: usize,
) -> Paragraph<'static> {
    let mut notes: Vec<(String, Style)> = Vec::new();
    if !is_me {
        if tile.mismatch {
            notes.push(("✗ not verified".into(), Style::default().fg(Color::Red)));
        } else if !tile.verified {
            notes.push(("verifying…".into(), Style::default().fg(Color::Yellow)));
        } else if let Some((mark, style)) = identity_mark(tile.known) {
            // A verified key under a new name says which name it was
            // verified as: the name alone proves nothing.
            let mark = match (&tile.known_as, tile.known) {
                (Some(was), Some(Known::Verified)) => {
                    format!("{mark} as {}", super::tile::display_name(was, 16))
                }
                _ => mark.to_string(),
            };
            notes.push((mark, style));
        }
    }
    if let Some(voice) = tile.voice_note() {
        let style = if tile.muted {
            Style::default().fg(Color::Red)
        } else if tile.speaking() {
            Style::default().fg(Color::Green)
        } else {
            Style::default().fg(Color::DarkGray)
        };
        notes.push((voice, style));
    }
    let note = if is_me {
        match tile.camera {
            Camera::On if tile.bandwidth_paused => "video paused: uplink too thin".into(),
            Camera::On => String::new(),
            _ => tile.video_note(),
        }
    } else {
        tile.video_note()
    };
    if !note.is_empty() {
        notes.push((note, Style::default()));
    }
    if let Some((i, n)) = position {
        notes.push((
            format!("{}/{n} · f next", i + 1),
            Style::default().fg(Color::DarkGray),
        ));
    }
    const GAP: usize = 2;
    const NAME_MIN: usize = 8;
    let notes_width =
        |notes: &[(String, Style)]| -> usize { notes.iter().map(|(t, _)| t.width() + GAP).sum() };
    // Least important notes go first when even a short name won't fit.
    while notes.len() > 1 && NAME_MIN + notes_width(&notes) > width {
        notes.pop();
    }
    let name_room = width.saturating_sub(notes_width(&notes)).max(NAME_MIN);
    let name = tile.name_in(name_room.min(32));
    // Who is speaking stands out: the name in reverse video.
    let name_style = if tile.speaking() {
        Style::default().add_modifier(Modifier::BOLD | Modifier::REVERSED)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    let mut spans = vec![Span::styled(name, name_style)];
    for (text, style) in notes {
        spans.push(Span::raw("  "));
        spans.push(Span::styled(text, style));
    }
    Paragraph::new(Line::from(spans))
}

/// What we know of a member's identity key, as a mark: `✓✓` verified in
/// an earlier call or now, `new` never seen before, a loud `⚠` when its
/// name came with another key; nothing for a key seen before.
pub(super) fn identity_mark(known: Option<Known>) -> Option<(&'static str, Style)> {
    match known? {
        Known::Verified => Some(("✓✓", Style::default().fg(Color::Green))),
        Known::New => Some(("new", Style::default().fg(Color::Yellow))),
        Known::Changed => Some((
            "⚠ KEY CHANGED",
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        )),
        Known::Seen => None,
    }
}

/// Grey text in the middle of `area`.
fn centered_text(text: &str, area: Rect) -> Paragraph<'_> {
    let pad = area.height.saturating_sub(1) / 2;
    let mut lines = vec![Line::raw(""); pad as usize];
    lines.push(Line::raw(text));
    Paragraph::new(lines)
        .style(Style::default().fg(Color::DarkGray))
        .centered()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

    /// The banner and the overlays at every small size: no panic, and
    /// the banner over the video's bottom rows.
    #[test]
    fn banners_and_overlays_fit_any_size() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.hosting = true;
        app.feed_frame("p1", "Ada", vec![]);
        app.share = Some(crate::tui::app::Share {
            invite: "k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift".into(),
            relay: "ws://127.0.0.1:8787".into(),
        });
        app.quit_armed = Some(std::time::Instant::now() + std::time::Duration::from_secs(60));
        for (w, h) in [(1, 1), (2, 2), (5, 2), (20, 3), (40, 12), (80, 24)] {
            for overlay in 0..3 {
                app.show_help = overlay == 1;
                app.show_share = overlay == 2;
                app.overlay_scroll = usize::MAX / 2;
                let area = Rect::new(0, 0, w, h);
                let mut buf = Buffer::empty(area);
                draw_into(area, &mut buf, &mut app);
            }
        }
        app.show_help = false;
        app.show_share = false;
        let area = Rect::new(0, 0, 80, 24);
        let mut buf = Buffer::empty(area);
        draw_into(area, &mut buf, &mut app);
        let text: String = (0..24)
            .map(|y| (0..80).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
            .collect();
        assert!(text.contains("End the call for 1 other person?"), "{text}");
    }

    #[test]
    fn long_names_give_way_to_the_tile_state() {
        let mut t = Tile::new("p");
        t.name = Some("Bartholomew Featherstonehaugh-Smythe of the Long Name".into());
        t.camera = Camera::Absent;
        let label = tile_label(&t, false, None, 30);
        let area = Rect::new(0, 0, 30, 1);
        let mut buf = Buffer::empty(area);
        label.render(area, &mut buf);
        let row: String = (0..30).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert!(row.contains("verifying…"), "{row}");
        assert!(row.contains("Barth"), "{row}");
        // At 40 columns the rate note fits too.
        let label = tile_label(&t, false, None, 44);
        let area = Rect::new(0, 0, 44, 1);
        let mut buf = Buffer::empty(area);
        label.render(area, &mut buf);
        let row: String = (0..44).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        assert!(row.contains("view only"), "{row}");
    }
}
