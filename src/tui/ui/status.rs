//! The status line: the call's state and the safety words first, then the
//! numbers, least important dropped first when the line is narrow, and
//! `? help` always last (everything else gives way to it). The safety
//! words are never cut: when they don't fit beside the call's state they
//! get a line (or two) of their own. Nothing is cut inside a word.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget};
use unicode_width::UnicodeWidthStr;

use super::super::app::App;

const SEPARATOR: &str = " │ ";

/// Always on the status line, whatever else gives way.
pub const HELP_HINT: &str = "? help";
/// Narrower than this, the line is the call's state alone.
const HINT_MIN_WIDTH: usize = 20;

/// The status text, one string per row (usually one).
pub(super) fn lines(app: &App, width: u16) -> Vec<String> {
    let width = width as usize;
    let s = &app.status;
    let safety = if app.reconnect_at.is_some() && !app.words_were_shown() {
        String::new()
    } else if app.reconnect_at.is_some() {
        // The old words mean nothing now: new keys come after reconnecting.
        "safety: (compare again after reconnecting)".to_string()
    } else if s.safety_words.is_empty() {
        String::new()
    } else {
        format!("safety: {}", s.safety_words)
    };
    let hint = if width >= HINT_MIN_WIDTH {
        HELP_HINT
    } else {
        ""
    };
    let room = if hint.is_empty() {
        width
    } else {
        width - SEPARATOR.width() - hint.width()
    };
    let with_hint = |line: String| {
        if hint.is_empty() {
            line
        } else if line.is_empty() {
            hint.to_string()
        } else {
            format!("{line}{SEPARATOR}{hint}")
        }
    };
    let mut parts = numbers(app);
    let connection = parts[0].1.clone();
    let together = connection.width() + SEPARATOR.width() + safety.width() <= room;
    if safety.is_empty() || together {
        parts.insert(1, (1, safety));
        return vec![with_hint(fit_parts(parts, room))];
    }
    let mut rows = wrap_words(&safety, width);
    rows.push(with_hint(fit_parts(parts, room)));
    rows
}

pub(super) fn draw(buf: &mut Buffer, area: Rect, rows: Vec<String>) {
    let style = Style::default().bg(Color::DarkGray).fg(Color::White);
    let lines: Vec<Line> = rows.into_iter().map(Line::raw).collect();
    Paragraph::new(lines).style(style).render(area, buf);
}

/// Everything but the safety words, as (priority, text): 0 is kept longest.
fn numbers(app: &App) -> Vec<(u8, String)> {
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
    let mut parts: Vec<(u8, String)> = vec![
        (0, connection),
        (3, rtt),
        (4, format!("↑{:.0} ↓{:.0} kbit/s", s.up_kbps, s.down_kbps)),
        (6, format!("key #{}", s.epoch)),
        (5, format!("send q{}/{}", s.level, crate::media::adapt::TOP)),
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
    if app.audio.is_some() {
        if app.muted {
            parts.push((1, "muted (m)".into()));
        } else if app.me.voice {
            parts.push((
                4,
                format!("mic {}", crate::tui::tile::meter(app.me.level_dbfs)),
            ));
        }
        if let Some(ms) = s.voice_delay_ms {
            parts.push((5, format!("voice {ms:.0} ms")));
        }
    }
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
    parts
}

/// Joins the parts that fit in `width` columns, keeping the order: the
/// most important (lowest number) are taken first, and a less important
/// part that still fits after a longer one didn't is taken too. The first
/// part is always there (cut between words if it must be).
fn fit_parts(mut parts: Vec<(u8, String)>, width: usize) -> String {
    parts.retain(|(_, p)| !p.is_empty());
    let mut by_importance: Vec<usize> = (0..parts.len()).collect();
    by_importance.sort_by_key(|&i| (i > 0, parts[i].0, i));
    let mut taken = vec![false; parts.len()];
    let mut used = 0;
    for i in by_importance {
        let extra = parts[i].1.width() + if used > 0 { SEPARATOR.width() } else { 0 };
        if used == 0 || used + extra <= width {
            taken[i] = true;
            used += extra;
        }
    }
    let line = parts
        .into_iter()
        .zip(taken)
        .filter(|(_, t)| *t)
        .map(|((_, p), _)| p)
        .collect::<Vec<_>>()
        .join(SEPARATOR);
    super::text::cut_words(&line, width)
}

/// Breaks `text` at spaces into rows of at most `width` columns (a word
/// longer than a row gets a row of its own and is cut by the terminal).
pub(super) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    let mut row = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        if !row.is_empty() && row.width() + 1 + word.width() > width {
            rows.push(std::mem::take(&mut row));
        }
        if !row.is_empty() {
            row.push(' ');
        }
        row.push_str(word);
    }
    if !row.is_empty() || rows.is_empty() {
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::render::ColourMode;

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
        assert_eq!(fit_parts(parts, 5), "in…");
    }

    #[test]
    fn safety_words_are_never_cut() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.status.connection = "verifying the passphrase…".into();
        // The longest words the list has (9 letters each).
        app.status.safety_words = "abdominal abdominal abdominal abdominal".into();
        let whole = "safety: abdominal abdominal abdominal abdominal";
        for width in [200u16, 80, 60, 47] {
            let rows = lines(&app, width);
            assert!(rows.iter().any(|r| r.contains(whole)), "{width}: {rows:?}");
            assert!(rows.iter().all(|r| r.width() <= width as usize));
        }
        for width in [40u16, 30, 20] {
            let rows = lines(&app, width);
            let joined = rows.join(" ");
            assert!(joined.contains(whole), "{width}: {rows:?}");
            assert!(rows.iter().all(|r| r.width() <= width as usize), "{rows:?}");
            assert!(rows.last().unwrap().starts_with("verifying"));
        }
        // Nothing to compare yet: no safety part at all.
        app.status.safety_words.clear();
        assert_eq!(lines(&app, 40).len(), 1);
    }

    #[test]
    fn help_stays_on_the_status_line_and_nothing_is_cut_mid_word() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.status.connection = "in the call".into();
        app.status.safety_words = "abdominal unsworn gladness tapioca".into();
        app.status.tty = "tty 38 ms".into();
        app.status.rtt = Some(std::time::Duration::from_millis(12));
        for width in [200u16, 120, 80, 60, 40, 30, 20] {
            let rows = lines(&app, width);
            let last = rows.last().unwrap();
            assert!(last.ends_with(HELP_HINT), "{width}: {rows:?}");
            assert!(rows.iter().all(|r| r.width() <= width as usize), "{rows:?}");
            assert!(!last.contains("│ …"), "{width}: {rows:?}");
        }
        // At 80 columns the words still share the line.
        let rows = lines(&app, 80);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert!(rows[0].contains("safety: abdominal unsworn gladness tapioca"));
        // A long state gives way to the hint, between words.
        app.status.connection = "verifying the passphrase with everyone who is here now".into();
        app.status.safety_words.clear();
        let rows = lines(&app, 40);
        assert!(rows[0].ends_with(HELP_HINT), "{rows:?}");
        assert!(
            rows[0].starts_with("verifying the passphrase with… │"),
            "{rows:?}"
        );
    }

    #[test]
    fn old_words_are_not_shown_while_reconnecting() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(crate::session::SessionEvent::Keys {
            epoch: 1,
            safety_words: "abdominal unsworn gladness tapioca".into(),
        });
        app.on_session(crate::session::SessionEvent::Reconnecting {
            attempt: 1,
            delay: std::time::Duration::from_secs(2),
            reason: "closed".into(),
        });
        let text = lines(&app, 120).join(" ");
        assert!(!text.contains("abdominal"), "{text}");
        assert!(text.contains("compare again after reconnecting"), "{text}");
        assert!(text.starts_with("offline"), "{text}");
    }

    #[test]
    fn words_wrap_at_spaces() {
        assert_eq!(wrap_words("safety: a b", 9), vec!["safety: a", "b"]);
        assert_eq!(wrap_words("", 9), vec![""]);
    }
}
