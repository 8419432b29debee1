//! `bench ladder`: which picture rung shows the most at a given link rate.
//!
//! A moving scene (4 peers, the test pattern) is replayed through the real
//! renderer and flow control over a simulated terminal link (rate, 20 ms
//! each way, answers to queries), once per candidate rung and rate, on a
//! simulated clock. Every 33 ms the screen the terminal shows is scored
//! against the scene drawn perfectly (each tile's picture at full detail,
//! as a pixel mode shows it): both rasterised on a 2×6 grid a cell, fine
//! enough for half blocks, quadrants and sextants alike, and compared as
//! the mean colour error per channel of the video cells. It
//! folds in everything a viewer loses: staleness (low frame rates, frames
//! cut short by the window), hysteresis, palette and resolution. The rung
//! order and the ladder's thresholds ([`crate::tui::ladder`]) come from
//! this table.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use clap::Args;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::picture::{cell_raster, glyph_masks, Shape};
use super::stats::Report;
use crate::media::jpeg;
use crate::media::pattern::TestPattern;
use crate::tui::app::App;
use crate::tui::cells::CellMode;
use crate::tui::flow::{FlowConfig, QUERY};
use crate::tui::ladder::Picture;
use crate::tui::render::ColourMode;
use crate::tui::renderer::{FrameSink, Renderer};

#[derive(Args)]
pub struct LadderArgs {
    /// Simulated seconds per run (the first third is not scored): 10, 10s
    /// or 1m.
    #[arg(long, default_value = "10", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Link rates to try, e.g. 4mbit,1mbit,256kbit.
    #[arg(long, value_delimiter = ',', default_value = "8mbit,4mbit,2mbit,1mbit,512kbit,256kbit", value_parser = super::tty::parse_rate)]
    rates: Vec<f64>,
    /// The terminal's size in cells, COLSxROWS.
    #[arg(long, default_value = "160x48", value_name = "COLSxROWS", value_parser = crate::cli::parse_share_size)]
    size: (u16, u16),
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Candidate rungs: the ladder's, and near neighbours to compare with, in
/// half blocks; the ladder's colour rungs in quadrants and sextants.
fn candidates() -> Vec<(&'static str, Picture, CellMode)> {
    // Each candidate draws its own cell mode (no cap from the rung).
    let p = |colour_cap, hysteresis, column_step| Picture {
        colour_cap,
        hysteresis,
        column_step,
        finest_cells: CellMode::Sextant,
    };
    let (half, quadrant, sextant) = (CellMode::Half, CellMode::Quadrant, CellMode::Sextant);
    vec![
        ("truecolor", p(ColourMode::TrueColor, 1, 1), half),
        ("truecolor_h2", p(ColourMode::TrueColor, 2, 1), half),
        ("truecolor_h4", p(ColourMode::TrueColor, 4, 1), half),
        ("256_h1", p(ColourMode::Ansi256, 1, 1), half),
        ("256_h2", p(ColourMode::Ansi256, 2, 1), half),
        ("256_h4", p(ColourMode::Ansi256, 4, 1), half),
        ("truecolor_h2_half", p(ColourMode::TrueColor, 2, 2), half),
        ("256_h2_half", p(ColourMode::Ansi256, 2, 2), half),
        ("16", p(ColourMode::Ansi16, 1, 1), half),
        ("16_half", p(ColourMode::Ansi16, 1, 2), half),
        ("mono", p(ColourMode::Mono, 1, 1), half),
        (
            "quadrant_truecolor",
            p(ColourMode::TrueColor, 1, 1),
            quadrant,
        ),
        ("sextant_truecolor", p(ColourMode::TrueColor, 1, 1), sextant),
        ("sextant_256_h2", p(ColourMode::Ansi256, 2, 1), sextant),
        ("sextant_256_h4", p(ColourMode::Ansi256, 4, 1), sextant),
    ]
}

const NAMES: [&str; 4] = ["Ada", "Grace", "Linus", "Edsger"];
const TICK: Duration = Duration::from_millis(33);
const DELAY: Duration = Duration::from_millis(20);
/// The first third of a run is not scored (the first paint, at low rates).
const WARM_UP_SHARE: f64 = 1.0 / 3.0;

/// The raster a cell is scored on: 2×6, the common refinement of half
/// blocks (1×2), quadrants (2×2) and sextants (2×3).
const SUB: (u32, u32) = (2, 6);

/// The raster of every video cell, cell by cell, each row by row.
type Pixels = Vec<[u8; 3]>;

/// The scene: each tick's four JPEGs, and the perfect picture of it.
struct Scene {
    area: Rect,
    frames: Vec<[Vec<u8>; 4]>,
    /// Per tick: every video cell's raster, perfect.
    ideal: Vec<Pixels>,
    /// Which cells are video.
    mask: Vec<bool>,
    glyphs: std::collections::HashMap<&'static str, Shape>,
}

fn fresh_app(mode: ColourMode) -> App {
    let mut app = App::new("bench", mode, None);
    app.me.camera = crate::session::state::Camera::Off;
    app
}

impl Scene {
    fn new(area: Rect, ticks: usize) -> Scene {
        let patterns: Vec<TestPattern> = NAMES.iter().map(|n| TestPattern::new(n)).collect();
        // Drawn as pixels: the tiles' places, and their pictures at full
        // detail (4×8 a cell), the size senders are asked for.
        let mut app = fresh_app(ColourMode::TrueColor);
        app.cells = CellMode::Kitty;
        let mut buf = Buffer::empty(area);
        for (i, n) in NAMES.iter().enumerate() {
            let img = patterns[i].render_at(0.0, 80, 48);
            app.feed_frame(
                &format!("peer{i}"),
                n,
                jpeg::encode(&img, jpeg::DEFAULT_QUALITY),
            );
        }
        let px = crate::tui::ui::draw_into(area, &mut buf, &mut app).largest;
        let mut frames = Vec::with_capacity(ticks);
        let mut ideal = Vec::with_capacity(ticks);
        let mut mask = Vec::new();
        let width = area.width as usize;
        let sub_width = width * SUB.0 as usize;
        for t in 0..ticks {
            let secs = t as f32 * TICK.as_secs_f32();
            let jpegs: [Vec<u8>; 4] = std::array::from_fn(|i| {
                jpeg::encode(
                    &patterns[i].render_at(secs, px.0, px.1),
                    jpeg::DEFAULT_QUALITY,
                )
            });
            for (i, n) in NAMES.iter().enumerate() {
                app.feed_frame(&format!("peer{i}"), n, jpegs[i].clone());
            }
            buf.reset();
            let drawn = crate::tui::ui::draw_into(area, &mut buf, &mut app);
            if mask.is_empty() {
                mask = vec![false; area.area() as usize];
                for r in &drawn.regions.video {
                    for y in r.top()..r.bottom() {
                        for x in r.left()..r.right() {
                            mask[y as usize * width + x as usize] = true;
                        }
                    }
                }
            }
            // The screen's raster: each tile's picture scaled into its
            // cells' 2×6 grid.
            let mut raster = vec![[0u8; 3]; sub_width * area.height as usize * SUB.1 as usize];
            for tile in &drawn.regions.images {
                let r = tile.rect;
                let (w, h) = (u32::from(r.width) * SUB.0, u32::from(r.height) * SUB.1);
                let scaled = image::imageops::resize(
                    &tile.image,
                    w,
                    h,
                    image::imageops::FilterType::Triangle,
                );
                for (x, y, p) in scaled.enumerate_pixels() {
                    let sx = r.x as usize * SUB.0 as usize + x as usize;
                    let sy = r.y as usize * SUB.1 as usize + y as usize;
                    raster[sy * sub_width + sx] = p.0;
                }
            }
            let mut cells = Vec::new();
            for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
                let (cx, cy) = (i % width, i / width);
                for y in 0..SUB.1 as usize {
                    let row = (cy * SUB.1 as usize + y) * sub_width + cx * SUB.0 as usize;
                    cells.extend_from_slice(&raster[row..row + SUB.0 as usize]);
                }
            }
            ideal.push(cells);
            frames.push(jpegs);
        }
        Scene {
            area,
            frames,
            ideal,
            mask,
            glyphs: glyph_masks(),
        }
    }

    /// What `buf` shows in the video cells, on the scoring raster.
    fn pixels(&self, buf: &Buffer) -> Pixels {
        let mut out = Vec::with_capacity(self.ideal.first().map_or(0, Vec::len));
        for (cell, _) in buf.content.iter().zip(&self.mask).filter(|(_, m)| **m) {
            cell_raster(cell, &self.glyphs, SUB, &mut out);
        }
        out
    }
}

fn error(a: &[[u8; 3]], b: &[[u8; 3]]) -> f64 {
    let sum: u64 = a
        .iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| u64::from(p.abs_diff(*q))))
        .sum();
    sum as f64 / (a.len().max(1) * 3) as f64
}

/// The simulated link: frames queue for the rate, cross in `DELAY`, and
/// each query is answered `DELAY` after it arrives.
struct SimLink {
    rate: f64,
    free_at: Instant,
    /// When answers reach the renderer.
    replies: VecDeque<Instant>,
    /// When the last frame written fully arrives.
    last_arrival: Instant,
    frames_written: u64,
    bytes: u64,
}

impl FrameSink for SimLink {
    fn is_busy(&self) -> bool {
        false
    }

    fn write(&mut self, frame: Vec<u8>) -> bool {
        // `now` is where the clock is: the renderer writes at sim time,
        // recorded by the caller in `free_at` before drawing.
        let mut at = self.free_at;
        let mut i = 0;
        let per_byte = if self.rate > 0.0 {
            1.0 / self.rate
        } else {
            0.0
        };
        while i < frame.len() {
            let query = frame[i..].starts_with(QUERY);
            let n = if query { QUERY.len() } else { 1 };
            at += Duration::from_secs_f64(n as f64 * per_byte);
            if query {
                self.replies.push_back(at + DELAY * 2);
            }
            i += n;
        }
        self.free_at = at;
        self.last_arrival = at + DELAY;
        self.frames_written += 1;
        self.bytes += frame.len() as u64;
        true
    }
}

/// One run: mean error over the scored part, frames shown per second, and
/// bytes per second sent.
fn replay(
    scene: &Scene,
    (picture, cells): (Picture, CellMode),
    rate: f64,
    seconds: u64,
) -> (f64, f64, f64) {
    let t0 = Instant::now();
    let link = SimLink {
        rate,
        free_at: t0,
        replies: VecDeque::new(),
        last_arrival: t0,
        frames_written: 0,
        bytes: 0,
    };
    let mut renderer = Renderer::new(scene.area, link, FlowConfig::default(), t0);
    renderer.fix_picture(picture);
    let mut app = fresh_app(ColourMode::TrueColor);
    app.cells = cells;
    // Frames written but not yet arrived: (arrival, what they show).
    let mut arriving: VecDeque<(Instant, Pixels)> = VecDeque::new();
    let mut shown = scene.pixels(&Buffer::empty(scene.area));
    let mut last_shown = shown.clone();
    let (mut errors, mut frames_shown) = (Vec::new(), 0u32);
    let warm_up = Duration::from_secs_f64(seconds as f64 * WARM_UP_SHARE);
    let score_from = t0 + warm_up;
    let end = t0 + Duration::from_secs(seconds);
    let mut bytes_from = 0;
    let mut now = t0;
    let mut next_tick = t0;
    let mut tick = 0;
    let mut next_housekeeping = t0;
    while now < end {
        while renderer.sink.replies.front().is_some_and(|t| *t <= now) {
            let at = renderer.sink.replies.pop_front().expect("front exists");
            renderer.on_reply(at);
        }
        while arriving.front().is_some_and(|(t, _)| *t <= now) {
            shown = arriving.pop_front().expect("front exists").1;
            if now >= score_from && shown != last_shown {
                frames_shown += 1;
            }
            last_shown.clone_from(&shown);
        }
        if now >= next_tick {
            let jpegs = &scene.frames[tick % scene.frames.len()];
            for (i, n) in NAMES.iter().enumerate() {
                app.feed_frame(&format!("peer{i}"), n, jpegs[i].clone());
            }
            if now >= score_from {
                errors.push(error(&shown, &scene.ideal[tick % scene.ideal.len()]));
            }
            tick += 1;
            next_tick += TICK;
        }
        if now >= next_housekeeping {
            renderer.tick(&mut app, now);
            next_housekeeping += Duration::from_millis(25);
        }
        renderer.sink.free_at = renderer.sink.free_at.max(now);
        let before = renderer.sink.frames_written;
        let _ = renderer.draw_if_due(&mut app, now);
        if renderer.sink.frames_written != before {
            arriving.push_back((renderer.sink.last_arrival, scene.pixels(renderer.shown())));
        }
        if now < score_from {
            bytes_from = renderer.sink.bytes;
        }
        now += Duration::from_millis(1);
    }
    let scored = (seconds as f64 - warm_up.as_secs_f64()).max(1e-9);
    let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
    (
        mean,
        f64::from(frames_shown) / scored,
        (renderer.sink.bytes - bytes_from) as f64 / scored,
    )
}

pub fn run(args: LadderArgs) -> anyhow::Result<()> {
    let seconds = args.seconds.max(4);
    let ticks = (seconds as f64 / TICK.as_secs_f64()) as usize + 2;
    eprintln!("bench ladder: rendering the scene ({ticks} ticks)…");
    let (cols, rows) = args.size;
    let scene = Scene::new(Rect::new(0, 0, cols, rows), ticks);
    let cells = scene.mask.iter().filter(|m| **m).count();
    let mut report = Report::new(format!(
        "bench ladder ({cols}x{rows}, 4 moving peers, {cells} video cells, 20 ms each way; error = mean colour error per channel vs the perfect picture, 0–255)"
    ));
    // Unlimited link: what each rung costs and loses by itself.
    for (name, picture, cells) in candidates() {
        let (err, _, bytes) = replay(&scene, (picture, cells), 0.0, seconds);
        eprintln!("  unlimited {name}: error {err:.1}");
        report.row(format!("{name}_error_unlimited"), err, "error");
        report.row(
            format!("{name}_kbit_unlimited"),
            bytes * 8.0 / 1000.0,
            "kbit/s at 30 fps",
        );
    }
    for rate in &args.rates {
        let mut best = (f64::INFINITY, "");
        for (name, picture, cells) in candidates() {
            let (err, fps, _) = replay(&scene, (picture, cells), *rate, seconds);
            let label = format!("{:.0}k", rate * 8.0 / 1000.0);
            eprintln!("  {label} {name}: error {err:.1}, {fps:.0} fps shown");
            report.row(format!("{name}_error_{label}"), err, "error");
            report.row(format!("{name}_fps_{label}"), fps, "fps shown");
            if err < best.0 {
                best = (err, name);
            }
        }
        report.note(format!(
            "{:.0} kbit/s ({:.1} B/s per video cell): best {} (error {:.1})",
            rate * 8.0 / 1000.0,
            rate / cells as f64,
            best.1,
            best.0
        ));
    }
    report.print(args.json);
    Ok(())
}
