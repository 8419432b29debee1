//! `bench picture`: how much of the source picture each cell mode shows,
//! scored against the source at full resolution.
//!
//! The moving test pattern is drawn by the real renderer (scaling, the
//! per-cell fit, colour hysteresis) into a terminal of each size; what the
//! far screen then shows is rasterised (each cell's symbol on a fixed
//! 6×12-pixel glyph grid in its two colours) and compared with the source
//! scaled to the same raster: SSIM of the luma (8×8 windows) and the mean
//! absolute error per channel. Bytes per frame are what the screen encoder
//! writes for each next frame of the moving picture.

use std::collections::HashMap;
use std::time::Instant;

use clap::Args;
use image::RgbImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::stats::{quantile, Report};
use crate::media::pattern::TestPattern;
use crate::media::scale;
use crate::tui::cells::{self, CellMode};
use crate::tui::render::{draw_image_cells, ColourMode, TileMemory};
use crate::tui::screen::{Regions, Screen};
use crate::tui::sixel::SixelTerminal;

#[derive(Args)]
pub struct PictureArgs {
    /// Frames of the moving pattern per size and mode.
    #[arg(long, default_value_t = 20)]
    frames: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Raster pixels per cell (divisible by the 2×3 sextant grid and the 1×2
/// half block).
const GLYPH: (u32, u32) = (6, 12);
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (160, 48)];
const MODES: [CellMode; 5] = [
    CellMode::Half,
    CellMode::Quadrant,
    CellMode::Sextant,
    CellMode::Kitty,
    CellMode::Sixel,
];
/// Sixel as xterm `-ti vt340` has it: 1,024 registers (we use 256), and
/// the raster's cell size.
const SIXEL: SixelTerminal = SixelTerminal {
    cell: (GLYPH.0 as u16, GLYPH.1 as u16),
    registers: 256,
};

pub fn run(args: PictureArgs) -> anyhow::Result<()> {
    let mut report = Report::new(
        "bench picture: the test pattern in each cell mode against the source (truecolor, unshaped)",
    );
    let pattern = TestPattern::new("Ada");
    let glyphs = glyph_masks();
    for (cols, rows) in SIZES {
        let area = Rect::new(0, 0, cols, rows);
        let raster = (u32::from(cols) * GLYPH.0, u32::from(rows) * GLYPH.1);
        for mode in MODES {
            let mut memory = TileMemory::default();
            let mut screen = Screen::new(area);
            let (mut ssims, mut maes, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
            let mut times = Vec::new();
            for f in 0..args.frames.max(2) {
                // Twice the raster: the source at full resolution, shaped
                // like the terminal so no mode letterboxes.
                let source = pattern.render_at(f as f32 / 30.0, raster.0 * 2, raster.1 * 2);
                let (cw, ch) = mode.pixels();
                let grid = (u32::from(cols) * cw, u32::from(rows) * ch);
                let img = scale::scale_to_fit_pixels(&source, grid, mode.pixel_aspect());
                let reference = image::imageops::resize(
                    &source,
                    raster.0,
                    raster.1,
                    image::imageops::FilterType::Triangle,
                );
                if !mode.is_text() {
                    if f == 0 {
                        continue;
                    }
                    let started = Instant::now();
                    let placed = match mode {
                        CellMode::Kitty => crate::tui::graphics::place(1, &img, cols, rows),
                        _ => SIXEL.place(&img, cols, rows),
                    };
                    times.push(started.elapsed().as_secs_f64() * 1000.0);
                    let shown = match mode {
                        // Kitty scales the picture into the cells
                        // (linearly).
                        CellMode::Kitty => image::imageops::resize(
                            &img,
                            raster.0,
                            raster.1,
                            image::imageops::FilterType::Triangle,
                        ),
                        // Sixel: quantised, then scaled here to the cells'
                        // pixels (the raster is whole bands high).
                        _ => SIXEL.shown(&img, cols, rows),
                    };
                    let placed = placed.len();
                    bytes.push(placed as f64);
                    ssims.push(ssim(&shown, &reference));
                    maes.push(mae(&shown, &reference));
                    continue;
                }
                let started = Instant::now();
                let mut buf = Buffer::empty(area);
                let threshold = crate::tui::ui::hysteresis(ColourMode::TrueColor);
                draw_image_cells(
                    &mut buf,
                    area,
                    &img,
                    ColourMode::TrueColor,
                    &mut memory,
                    threshold,
                    1,
                    mode,
                );
                let regions = Regions {
                    video: vec![area],
                    ..Regions::default()
                };
                let written = screen.render(&buf, &regions, usize::MAX).bytes.len();
                if f == 0 {
                    continue; // the first paint
                }
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                bytes.push(written as f64);
                let shown = rasterise(&buf, &glyphs, raster);
                ssims.push(ssim(&shown, &reference));
                maes.push(mae(&shown, &reference));
            }
            let name = format!("{cols}x{rows}_{}", short(mode));
            report.row(
                format!("{name}_ssim"),
                quantile(&mut ssims, 0.5),
                "SSIM of luma (1 = the source)",
            );
            report.row(
                format!("{name}_mae"),
                quantile(&mut maes, 0.5),
                "mean error per channel (0–255)",
            );
            report.row(
                format!("{name}_bytes"),
                quantile(&mut bytes, 0.5),
                "bytes per frame (moving)",
            );
            report.row(
                format!("{name}_draw_ms"),
                quantile(&mut times, 0.5),
                "ms of one core to draw a frame (fit or encode, and the screen diff)",
            );
        }
    }
    report.print(args.json);
    Ok(())
}

fn short(mode: CellMode) -> &'static str {
    match mode {
        CellMode::Half => "half",
        CellMode::Quadrant => "quadrant",
        CellMode::Sextant => "sextant",
        CellMode::Kitty => "kitty",
        CellMode::Sixel => "sixel",
    }
}

/// Every symbol a mode draws, as which of the 2×3 sub-cells of a glyph it
/// fills (half blocks and quadrants in the same grid: a half is a column
/// of three, a quadrant row is one and a half).
pub(super) fn glyph_masks() -> HashMap<&'static str, Shape> {
    let mut map = HashMap::new();
    for mask in 0u8..4 {
        map.insert(cells::symbol(CellMode::Half, mask), Shape::Half(mask));
    }
    for mask in 0u8..16 {
        map.insert(
            cells::symbol(CellMode::Quadrant, mask),
            Shape::Quadrant(mask),
        );
    }
    for mask in 0u8..64 {
        map.entry(cells::symbol(CellMode::Sextant, mask))
            .or_insert(Shape::Sextant(mask));
    }
    map
}

#[derive(Clone, Copy)]
pub(super) enum Shape {
    Half(u8),
    Quadrant(u8),
    Sextant(u8),
}

impl Shape {
    /// Is raster pixel (x, y) of a `glyph`-sized cell in the foreground?
    fn covers(self, x: u32, y: u32, (gw, gh): (u32, u32)) -> bool {
        match self {
            Shape::Half(m) => m & (1 << (y * 2 / gh)) != 0,
            Shape::Quadrant(m) => m & (1 << ((y * 2 / gh) * 2 + x * 2 / gw)) != 0,
            Shape::Sextant(m) => m & (1 << ((y * 3 / gh) * 2 + x * 2 / gw)) != 0,
        }
    }
}

/// The pixels a cell shows on a `glyph`-sized grid, row by row.
pub(super) fn cell_raster(
    cell: &ratatui::buffer::Cell,
    glyphs: &HashMap<&'static str, Shape>,
    glyph: (u32, u32),
    out: &mut Vec<[u8; 3]>,
) {
    let shape = glyphs.get(cell.symbol()).copied().unwrap_or(Shape::Half(0));
    let fg = match cell.fg {
        Color::Reset => [229, 229, 229],
        c => crate::tui::screen::rgb(c),
    };
    let bg = crate::tui::screen::rgb(cell.bg);
    for y in 0..glyph.1 {
        for x in 0..glyph.0 {
            out.push(if shape.covers(x, y, glyph) { fg } else { bg });
        }
    }
}

/// What the far screen shows, pixel for pixel on the glyph grid.
fn rasterise(buf: &Buffer, glyphs: &HashMap<&'static str, Shape>, size: (u32, u32)) -> RgbImage {
    let mut out = RgbImage::new(size.0, size.1);
    let mut cell = Vec::with_capacity((GLYPH.0 * GLYPH.1) as usize);
    for row in 0..buf.area.height {
        for col in 0..buf.area.width {
            cell.clear();
            cell_raster(&buf[(col, row)], glyphs, GLYPH, &mut cell);
            for (i, c) in cell.iter().enumerate() {
                let (x, y) = (i as u32 % GLYPH.0, i as u32 / GLYPH.0);
                out.put_pixel(
                    u32::from(col) * GLYPH.0 + x,
                    u32::from(row) * GLYPH.1 + y,
                    image::Rgb(*c),
                );
            }
        }
    }
    out
}

fn luma(img: &RgbImage) -> Vec<f64> {
    img.pixels()
        .map(|p| 0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2]))
        .collect()
}

/// Mean SSIM over 8×8 windows (stride 4) of the luma.
pub fn ssim(a: &RgbImage, b: &RgbImage) -> f64 {
    let (w, h) = a.dimensions();
    let (la, lb) = (luma(a), luma(b));
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let mut total = 0.0;
    let mut windows = 0u32;
    let mut y = 0;
    while y + 8 <= h {
        let mut x = 0;
        while x + 8 <= w {
            let (mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for dy in 0..8 {
                for dx in 0..8 {
                    let i = ((y + dy) * w + x + dx) as usize;
                    let (p, q) = (la[i], lb[i]);
                    sa += p;
                    sb += q;
                    saa += p * p;
                    sbb += q * q;
                    sab += p * q;
                }
            }
            let n = 64.0;
            let (ma, mb) = (sa / n, sb / n);
            let (va, vb) = (saa / n - ma * ma, sbb / n - mb * mb);
            let cov = sab / n - ma * mb;
            total += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            windows += 1;
            x += 4;
        }
        y += 4;
    }
    total / f64::from(windows.max(1))
}

fn mae(a: &RgbImage, b: &RgbImage) -> f64 {
    let sum: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    sum as f64 / a.as_raw().len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssim_is_one_for_the_same_picture_and_lower_for_noise() {
        let a = TestPattern::new("x").render(96, 48);
        assert!((ssim(&a, &a) - 1.0).abs() < 1e-9);
        let mut b = a.clone();
        for (i, p) in b.pixels_mut().enumerate() {
            if i % 3 == 0 {
                p.0 = [255 - p.0[0], 255 - p.0[1], 255 - p.0[2]];
            }
        }
        assert!(ssim(&a, &b) < 0.9);
        assert_eq!(mae(&a, &a), 0.0);
    }
}
