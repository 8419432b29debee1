//! Real pixels in real terminals: the demo with `--cells kitty` in kitty
//! 0.26 under Xvfb (Mesa's software OpenGL), and with `--cells sixel` in
//! xterm `-ti vt340`, looked at as a person would, through a screenshot of
//! the display.
//!
//! What tells pixels from cells: along one column of screen pixels through
//! a video tile, cells show two colours per cell (a 13-cell span: at most
//! about 27 colours, measured for half blocks and sextants alike), while a
//! picture the terminal scales shows a colour per pixel row (about 90).
//!
//! Needs `kitty`, `xterm`, `xvfb` and `x11-apps` (xwd) from Debian; in CI
//! a missing one fails the test, elsewhere it says so and skips.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::Proc;
use common::BIN;

fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new("sh")
                .args(["-c", &format!("command -v {t}")])
                .stdout(Stdio::null())
                .status()
                .map(|s| !s.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "{} missing (Debian packages kitty, xterm, xvfb, x11-apps; scripts/install-deps)",
        missing.join(", ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    false
}

/// Whether display `n` is taken: its lock names a live process. A lock a
/// killed Xvfb left behind is cleared (Xvfb would refuse it otherwise).
fn display_taken(n: u32) -> bool {
    let lock = format!("/tmp/.X{n}-lock");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists();
    };
    let alive = text
        .trim()
        .parse::<u32>()
        .is_ok_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
    if !alive {
        let _ = std::fs::remove_file(&lock);
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{n}"));
    }
    alive
}

/// An X display of our own: Xvfb on the first free number from 90.
fn xvfb() -> (Proc, String) {
    for n in 90..140 {
        if display_taken(n) {
            continue;
        }
        let display = format!(":{n}");
        let child = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1024x600x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let proc = Proc(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (proc, display);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("Xvfb {display} did not come up in 10 s");
    }
    panic!("no free X display number in 90..140");
}

fn kitty_demo(display: &str, cells: &str, trace: Option<&std::path::Path>) -> Proc {
    let mut command = Command::new("kitty");
    if let Some(trace) = trace {
        command.env("STREAMFLOW_TTY_TRACE", trace);
    }
    let child = command
        .args(["--config", "NONE", "-o", "font_size=9"])
        .args([
            "-o",
            "initial_window_width=800",
            "-o",
            "initial_window_height=480",
        ])
        .args(["-o", "remember_window_size=no"])
        .args([
            "-e",
            BIN,
            "demo",
            "--audio-source",
            "none",
            "--audio-sink",
            "none",
        ])
        .args(["--cells", cells])
        .env("DISPLAY", display)
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kitty starts");
    Proc(child)
}

/// The demo in xterm as a VT340 (sixel, 1,024 colour registers), 100×36
/// cells of the 6×13 "fixed" font.
fn xterm_demo(display: &str, cells: &str) -> Proc {
    let child = Command::new("xterm")
        // xterm drops COLORTERM from the environment it gives its
        // program; without it the demo would draw 16 colours.
        .args(["-ti", "vt340", "-geometry", "100x36", "-e", "env"])
        .args(["COLORTERM=truecolor", BIN, "demo"])
        .args(["--audio-source", "none", "--audio-sink", "none"])
        .args(["--cells", cells])
        .env("DISPLAY", display)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("xterm starts");
    Proc(child)
}

/// The display's pixels (RGB rows), from `xwd -root` (X Window Dump:
/// a big-endian header, a colour map, then 32-bit pixels).
struct Shot {
    width: usize,
    height: usize,
    bytes_per_line: usize,
    pixel_bytes: usize,
    lsb_first: bool,
    pixels: Vec<u8>,
}

impl Shot {
    fn take(display: &str) -> Shot {
        let out = Command::new("xwd")
            .args(["-root", "-silent", "-display", display])
            .output()
            .expect("xwd runs");
        assert!(out.status.success(), "xwd failed: {:?}", out);
        let d = out.stdout;
        let word = |i: usize| u32::from_be_bytes(d[i * 4..i * 4 + 4].try_into().unwrap()) as usize;
        let (header, width, height) = (word(0), word(4), word(5));
        let (byte_order, bytes_per_line, colours) = (word(7), word(12), word(19));
        // Xvfb's 24-bit depth dumps 4 bytes a pixel (the header says 24 bits).
        let pixel_bytes = bytes_per_line / width.max(1);
        assert!(
            (3..=4).contains(&pixel_bytes),
            "{pixel_bytes} bytes a pixel"
        );
        let start = header + colours * 12;
        Shot {
            width,
            height,
            bytes_per_line,
            pixel_bytes,
            lsb_first: byte_order == 0,
            pixels: d[start..].to_vec(),
        }
    }

    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let o = y * self.bytes_per_line + x * self.pixel_bytes;
        let p = &self.pixels[o..o + self.pixel_bytes];
        match (self.lsb_first, self.pixel_bytes) {
            (true, _) => [p[2], p[1], p[0]],
            (false, 4) => [p[1], p[2], p[3]],
            (false, _) => [p[0], p[1], p[2]],
        }
    }

    /// The median, over columns through the top row of tiles, of the
    /// distinct colours down each column.
    fn colours_per_column(&self) -> usize {
        let (x_end, y_end) = (590.min(self.width), 215.min(self.height));
        let mut counts: Vec<usize> = (10..x_end)
            .step_by(5)
            .map(|x| {
                (20..y_end)
                    .map(|y| self.rgb(x, y))
                    .collect::<HashSet<_>>()
                    .len()
            })
            .collect();
        counts.sort_unstable();
        counts[counts.len() / 2]
    }
}

impl Shot {
    /// Share of character cells (`cell` pixels, over the top row of
    /// tiles) showing more than two colours, at the grid alignment where
    /// that is least: text and block cells show two at most, pictures
    /// more.
    fn cells_beyond_two_colours(&self, cell: (usize, usize)) -> f64 {
        let (x_end, y_end) = (590.min(self.width), 215.min(self.height));
        let mut least = f64::MAX;
        for oy in 0..cell.1 {
            for ox in 0..cell.0 {
                let (mut many, mut all) = (0, 0);
                for y0 in (20 + oy..y_end - cell.1).step_by(cell.1) {
                    for x0 in (10 + ox..x_end - cell.0).step_by(cell.0) {
                        let colours: HashSet<[u8; 3]> = (y0..y0 + cell.1)
                            .flat_map(|y| (x0..x0 + cell.0).map(move |x| (x, y)))
                            .map(|(x, y)| self.rgb(x, y))
                            .collect();
                        all += 1;
                        many += usize::from(colours.len() > 2);
                    }
                }
                least = least.min(many as f64 / all.max(1) as f64);
            }
        }
        least
    }
}

/// Waits (up to 60 s) for the demo's tiles to show, and returns the last
/// measure.
fn settle(display: &str, done: impl Fn(usize) -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = 0;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        last = Shot::take(display).colours_per_column();
        if done(last) {
            return last;
        }
    }
    last
}

#[test]
fn kitty_shows_real_pixels_where_cells_show_two_colours_a_cell() {
    if !tools_present(&["Xvfb", "kitty", "xwd"]) {
        return;
    }
    let (_x, display) = xvfb();
    // Cells first: the measure's baseline in this very terminal.
    let baseline = {
        let _kitty = kitty_demo(&display, "sextant", None);
        // Tiles up: more than the blank screen's handful of colours.
        settle(&display, |n| n >= 12)
    };
    assert!(
        (12..=40).contains(&baseline),
        "sextant tiles should show two colours a cell: {baseline} colours a column"
    );
    std::thread::sleep(Duration::from_millis(500));
    let trace = std::env::temp_dir().join(format!("pixels-trace-{}", std::process::id()));
    let _ = std::fs::remove_file(&trace);
    let kitty = kitty_demo(&display, "kitty", Some(&trace));
    let pixels = settle(&display, |n| n >= 2 * baseline);
    assert!(
        pixels >= 2 * baseline,
        "no real pixels: {pixels} colours a column in kitty mode, {baseline} with sextants"
    );
    eprintln!("colours down a column: sextants {baseline}, kitty graphics {pixels}");
    // Kitty runs on this machine: pictures went through shared memory, so
    // a video frame is a few hundred bytes on the terminal path, not the
    // tens of kilobytes of a zlib picture.
    let frames = || -> Vec<u64> {
        std::fs::read_to_string(&trace)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["end"].as_u64()
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ends = frames();
    while ends.len() < 60 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        ends = frames();
    }
    assert!(ends.len() > 20, "only {} video frames traced", ends.len());
    let recent = &ends[ends.len() - 20..];
    let per_frame = (recent[19] - recent[0]) / 19;
    eprintln!("bytes per video frame to kitty: {per_frame}");
    assert!(
        per_frame < 5_000,
        "{per_frame} bytes a video frame: pictures didn't go through shared memory"
    );
    drop(kitty);
    let _ = std::fs::remove_file(&trace);
    // Leaving removes any object kitty didn't read.
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = || {
        std::fs::read_dir("/dev/shm")
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("streamflow-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while left() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(left(), 0, "shared-memory objects left in /dev/shm");
}

/// xterm as a VT340 says it speaks sixel (device attribute 4) and has
/// colour registers; `--cells sixel` then draws the tiles as sixel
/// pictures. Cells (half blocks here, in the same terminal) show at most
/// two colours each; a picture shows more in most cells.
#[test]
fn xterm_shows_sixel_pixels_where_cells_show_two_colours_a_cell() {
    if !tools_present(&["Xvfb", "xterm", "xwd"]) {
        return;
    }
    // The "fixed" font's cell.
    const CELL: (usize, usize) = (6, 13);
    let (_x, display) = xvfb();
    let half = {
        let _xterm = xterm_demo(&display, "half");
        // Tiles up: more than the blank screen's handful of colours.
        settle(&display, |n| n >= 12);
        Shot::take(&display).cells_beyond_two_colours(CELL)
    };
    assert!(
        half <= 0.05,
        "half blocks should show two colours a cell: {:.0}% of cells show more",
        half * 100.0
    );
    std::thread::sleep(Duration::from_millis(500));
    let xterm = xterm_demo(&display, "sixel");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sixel = 0.0;
    while Instant::now() < deadline && sixel < 0.3 {
        std::thread::sleep(Duration::from_secs(1));
        sixel = Shot::take(&display).cells_beyond_two_colours(CELL);
    }
    assert!(
        sixel >= 0.3,
        "no sixel pixels: {:.0}% of cells show more than two colours ({:.0}% with half blocks)",
        sixel * 100.0,
        half * 100.0
    );
    eprintln!(
        "cells with more than two colours: half blocks {:.0}%, sixel {:.0}%",
        half * 100.0,
        sixel * 100.0
    );
    drop(xterm);
}
