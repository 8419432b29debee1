//! `--record-share FILE.cast`: what you see of a share, in asciinema's v2
//! format (a JSON header line, then `[seconds, "o", text]` lines), so it
//! plays with the tools people already have (`asciinema play`).
//!
//! Each screen is written whole (home, clear, every row with its colours):
//! the recording holds the screens as they were shown, never the shared
//! program's own bytes.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use super::screen::{Colour, ShareScreen, BOLD, INVERSE, ITALIC, UNDERLINE, WIDE_TAIL};

pub struct Recorder {
    file: std::io::BufWriter<std::fs::File>,
    /// The share recorded (the first seen), and when it started.
    from: Option<(String, Instant)>,
}

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        Ok(Recorder {
            file: std::io::BufWriter::new(std::fs::File::create(path)?),
            from: None,
        })
    }

    /// A screen of `from`'s share: recorded if it is the share this
    /// recording follows (the first one seen).
    pub fn screen(&mut self, from: &str, screen: &ShareScreen) -> std::io::Result<()> {
        let start = match &self.from {
            Some((f, start)) if f == from => *start,
            Some(_) => return Ok(()),
            None => {
                let now = Instant::now();
                let header = serde_json::json!({
                    "version": 2,
                    "width": screen.cols,
                    "height": screen.rows,
                    "timestamp": std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0),
                    "title": "StreamFlow shared terminal",
                });
                writeln!(self.file, "{header}")?;
                self.from = Some((from.to_string(), now));
                now
            }
        };
        let t = start.elapsed().as_secs_f64();
        let event = serde_json::json!([(t * 1e6).round() / 1e6, "o", redraw(screen)]);
        writeln!(self.file, "{event}")?;
        self.file.flush()
    }
}

/// The screen as a terminal would redraw it: from home, each row with its
/// colours and attributes, the cursor put back.
fn redraw(screen: &ShareScreen) -> String {
    let mut out = String::from("\x1b[H\x1b[2J");
    for row in 0..screen.rows {
        let _ = write!(out, "\x1b[{};1H", row + 1);
        let mut last = None;
        for col in 0..screen.cols {
            let Some(cell) = screen.cell(row, col) else {
                break;
            };
            if cell.attrs & WIDE_TAIL != 0 {
                continue;
            }
            let style = (cell.fg, cell.bg, cell.attrs);
            if last != Some(style) {
                out.push_str(&sgr(cell.fg, cell.bg, cell.attrs));
                last = Some(style);
            }
            out.push_str(if cell.text.is_empty() {
                " "
            } else {
                &cell.text
            });
        }
        out.push_str("\x1b[0m");
    }
    let (r, c) = screen.cursor;
    let _ = write!(out, "\x1b[{};{}H", r + 1, c + 1);
    out
}

fn sgr(fg: Colour, bg: Colour, attrs: u8) -> String {
    let mut codes = vec!["0".to_string()];
    for (bit, code) in [(BOLD, "1"), (ITALIC, "3"), (UNDERLINE, "4"), (INVERSE, "7")] {
        if attrs & bit != 0 {
            codes.push(code.into());
        }
    }
    for (c, base) in [(fg, 38), (bg, 48)] {
        match c {
            Colour::Default => {}
            Colour::Index(i) => codes.push(format!("{base};5;{i}")),
            Colour::Rgb(r, g, b) => codes.push(format!("{base};2;{r};{g};{b}")),
        }
    }
    format!("\x1b[{}m", codes.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_asciicast_v2_of_the_screens_seen() {
        let dir = std::env::temp_dir().join(format!("sf-cast-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("share.cast");
        let mut parser = vt100::Parser::new(4.try_into().unwrap(), 20.try_into().unwrap(), 0);
        parser.process(b"hello \x1b[31mred\x1b[0m\x1b]52;c;eA==\x07");
        let screen = ShareScreen::from_vt100(parser.screen());
        let mut r = Recorder::create(&path).unwrap();
        r.screen("p1", &screen).unwrap();
        r.screen("p2", &screen).unwrap(); // another share: not this recording's
        r.screen("p1", &screen).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(
            (lines[0]["width"].as_u64(), lines[0]["height"].as_u64()),
            (Some(20), Some(4))
        );
        let data = lines[1][2].as_str().unwrap();
        assert_eq!(lines[1][1], "o");
        assert!(
            data.contains("hello") && data.contains("\x1b[0;38;5;1mr"),
            "{data:?}"
        );
        assert!(
            !data.contains("\x1b]52") && !data.contains('\x07'),
            "{data:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
