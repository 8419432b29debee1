//! Half-block video (DESIGN.md §4): each cell shows two pixels stacked, `▀`
//! with the foreground as the upper pixel and the background as the lower.
//! A tile of w×h cells shows a w×2h image, aspect-correct and letterboxed.
//!
//! Colour hysteresis keeps a cell's previous colour while the new one is
//! close, so ratatui's diff writes only cells that visibly changed: the main
//! lever on bytes per frame (and so on SSH links).

use image::RgbImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

use super::cells::CellMode;

pub const UPPER_HALF: &str = "▀";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColourMode {
    #[value(name = "truecolor")]
    TrueColor,
    #[value(name = "256")]
    Ansi256,
    #[value(name = "16")]
    Ansi16,
    #[value(name = "mono")]
    Mono,
}

impl ColourMode {
    /// `NO_COLOR` → mono; `COLORTERM=truecolor|24bit` → truecolor;
    /// a `*256color` TERM → 256; otherwise the 16 ANSI colours.
    pub fn detect() -> Self {
        Self::from_env(
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }

    pub fn from_env(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color {
            ColourMode::Mono
        } else if matches!(colorterm, Some("truecolor" | "24bit")) {
            ColourMode::TrueColor
        } else if term.is_some_and(|t| t.contains("256")) {
            ColourMode::Ansi256
        } else {
            ColourMode::Ansi16
        }
    }

    pub fn next(self) -> Self {
        match self {
            ColourMode::TrueColor => ColourMode::Ansi256,
            ColourMode::Ansi256 => ColourMode::Ansi16,
            ColourMode::Ansi16 => ColourMode::Mono,
            ColourMode::Mono => ColourMode::TrueColor,
        }
    }

    /// Colour depth, for comparing modes: truecolor 3 … mono 0.
    pub fn depth(self) -> u8 {
        match self {
            ColourMode::TrueColor => 3,
            ColourMode::Ansi256 => 2,
            ColourMode::Ansi16 => 1,
            ColourMode::Mono => 0,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ColourMode::TrueColor => "truecolor",
            ColourMode::Ansi256 => "256 colours",
            ColourMode::Ansi16 => "16 colours",
            ColourMode::Mono => "mono",
        }
    }

    pub fn colour(self, rgb: [u8; 3]) -> Color {
        match self {
            ColourMode::TrueColor => Color::Rgb(rgb[0], rgb[1], rgb[2]),
            ColourMode::Ansi256 => Color::Indexed(ansi256(rgb)),
            ColourMode::Ansi16 => ansi16(rgb),
            ColourMode::Mono => Color::Reset,
        }
    }
}

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn dist2(a: [u8; 3], b: [u8; 3]) -> u32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (i32::from(*x) - i32::from(y)).pow(2) as u32)
        .sum()
}

/// Nearest xterm-256 colour: the 6×6×6 cube or the 24-step grey ramp.
pub fn ansi256(rgb: [u8; 3]) -> u8 {
    let level = |v: u8| {
        CUBE.iter()
            .enumerate()
            .min_by_key(|(_, c)| (i32::from(**c) - i32::from(v)).abs())
            .map(|(i, _)| i)
            .unwrap_or(0)
    };
    let (r, g, b) = (level(rgb[0]), level(rgb[1]), level(rgb[2]));
    let cube_rgb = [CUBE[r], CUBE[g], CUBE[b]];
    let cube_index = 16 + 36 * r + 6 * g + b;
    let avg = (u32::from(rgb[0]) + u32::from(rgb[1]) + u32::from(rgb[2])) / 3;
    let grey_step = ((avg.saturating_sub(8)) / 10).min(23);
    let grey = (8 + 10 * grey_step) as u8;
    if dist2([grey; 3], rgb) < dist2(cube_rgb, rgb) {
        232 + grey_step as u8
    } else {
        cube_index as u8
    }
}

const ANSI16: [([u8; 3], Color); 16] = [
    ([0, 0, 0], Color::Black),
    ([128, 0, 0], Color::Red),
    ([0, 128, 0], Color::Green),
    ([128, 128, 0], Color::Yellow),
    ([0, 0, 128], Color::Blue),
    ([128, 0, 128], Color::Magenta),
    ([0, 128, 128], Color::Cyan),
    ([192, 192, 192], Color::Gray),
    ([128, 128, 128], Color::DarkGray),
    ([255, 0, 0], Color::LightRed),
    ([0, 255, 0], Color::LightGreen),
    ([255, 255, 0], Color::LightYellow),
    ([0, 0, 255], Color::LightBlue),
    ([255, 0, 255], Color::LightMagenta),
    ([0, 255, 255], Color::LightCyan),
    ([255, 255, 255], Color::White),
];

pub fn ansi16(rgb: [u8; 3]) -> Color {
    ANSI16
        .iter()
        .min_by_key(|(c, _)| dist2(*c, rgb))
        .map(|(_, c)| *c)
        .unwrap_or(Color::Reset)
}

/// Mono (NO_COLOR): a cell from its two pixels' brightness. Where they
/// differ clearly, the brighter half (an edge keeps its shape); where they
/// are alike, a shade from a five-step ramp (a name on its dark box, the
/// clock, the gradient keep their shapes instead of all turning white or
/// black at one threshold).
fn mono_symbol(top: u32, bottom: u32) -> &'static str {
    const RAMP: [&str; 5] = [" ", "░", "▒", "▓", "█"];
    const EDGE: u32 = 64;
    if top.abs_diff(bottom) > EDGE {
        return if top > bottom { UPPER_HALF } else { "▄" };
    }
    let mean = (top + bottom) / 2;
    RAMP[((mean * 5) / 256).min(4) as usize]
}

fn luma(p: [u8; 3]) -> u32 {
    (299 * u32::from(p[0]) + 587 * u32::from(p[1]) + 114 * u32::from(p[2])) / 1000
}

/// What each cell of a tile showed last frame, for colour hysteresis.
#[derive(Default)]
pub struct TileMemory {
    size: (u16, u16),
    cells: Vec<([u8; 3], [u8; 3])>,
    /// Quadrant and sextant cells: which pixels the foreground covered.
    masks: Vec<u8>,
}

impl TileMemory {
    fn fit(&mut self, cols: u16, rows: u16) {
        if self.size != (cols, rows) {
            self.size = (cols, rows);
            let n = cols as usize * rows as usize;
            self.cells = vec![([0; 3], [0; 3]); n];
            self.masks = vec![u8::MAX; n];
        }
    }
}

/// How much worse (squared error, in units of the colour threshold squared
/// per pixel) a cell's previous symbol may fit before it changes.
const MASK_TOLERANCE: f64 = 0.1;

/// Like [`draw_image`], in quadrant or sextant cells (half blocks, and mono,
/// go to [`draw_image`]): `img` was scaled to fit the tile's pixels
/// ([`CellMode::pixels`] a cell, of [`CellMode::pixel_aspect`]); each
/// cell gets the symbol and two colours that fit its pixels best. A cell
/// keeps its colours while its symbol stays and the colours move less than
/// `threshold`.
#[allow(clippy::too_many_arguments)]
pub fn draw_image_cells(
    buf: &mut Buffer,
    area: Rect,
    img: &RgbImage,
    mode: ColourMode,
    memory: &mut TileMemory,
    threshold: u32,
    column_step: u32,
    cells: CellMode,
) {
    if cells == CellMode::Half || mode == ColourMode::Mono {
        draw_image(buf, area, img, mode, memory, threshold, column_step);
        return;
    }
    let (w, h) = img.dimensions();
    let (cols, rows) = (area.width, area.height);
    let (cw, ch) = cells.pixels();
    memory.fit(cols, rows);
    let x0 = ((u32::from(cols) * cw).saturating_sub(w) / 2) as i64;
    let y0 = ((u32::from(rows) * ch).saturating_sub(h) / 2) as i64;
    let pixel = |x: i64, y: i64| -> [u8; 3] {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            [0, 0, 0]
        } else {
            img.get_pixel(x as u32, y as u32).0
        }
    };
    let mut px = [[0u8; 3]; 6];
    let n = (cw * ch) as usize;
    // A symbol is kept while its fit's squared error is within this of the
    // best (`bench picture`: 0.1 of the colour threshold squared per pixel
    // halved sextants' bytes per frame and cost no SSIM).
    let tolerance = MASK_TOLERANCE * n as f64 * f64::from(threshold).powi(2);
    for row in 0..rows {
        for col in 0..cols {
            for dy in 0..ch {
                for dx in 0..cw {
                    let x = i64::from(col) * i64::from(cw) + i64::from(dx) - x0;
                    let y = i64::from(row) * i64::from(ch) + i64::from(dy) - y0;
                    px[(dy * cw + dx) as usize] = pixel(x, y);
                }
            }
            let i = row as usize * cols as usize + col as usize;
            let previous = Some(memory.masks[i]).filter(|m| *m != u8::MAX);
            let (mask, fg, bg) = super::cells::fit_near(&px[..n], previous, tolerance);
            let slot = &mut memory.cells[i];
            let (fg, bg) = if memory.masks[i] == mask {
                (
                    settle(&mut slot.0, fg, threshold),
                    settle(&mut slot.1, bg, threshold),
                )
            } else {
                memory.masks[i] = mask;
                *slot = (fg, bg);
                (fg, bg)
            };
            let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) else {
                continue;
            };
            cell.set_symbol(super::cells::symbol(cells, mask))
                .set_fg(mode.colour(fg))
                .set_bg(mode.colour(bg));
        }
    }
}

/// Keeps `old` unless `new` differs by more than `threshold` (sum of
/// absolute channel differences).
fn settle(old: &mut [u8; 3], new: [u8; 3], threshold: u32) -> [u8; 3] {
    let diff: u32 = old
        .iter()
        .zip(new)
        .map(|(a, b)| u32::from(a.abs_diff(b)))
        .sum();
    if diff > threshold {
        *old = new;
    }
    *old
}

/// Draws `img` into `buf`, centred, with black letterbox bars. The image
/// was scaled to fit `area.width / column_step × 2·area.height`; each of
/// its pixels covers `column_step` columns (a repeated cell costs the
/// terminal one symbol and no colour codes).
pub fn draw_image(
    buf: &mut Buffer,
    area: Rect,
    img: &RgbImage,
    mode: ColourMode,
    memory: &mut TileMemory,
    threshold: u32,
    column_step: u32,
) {
    let (w, h) = img.dimensions();
    let (cols, rows) = (area.width, area.height);
    let step = column_step.max(1);
    memory.fit(cols, rows);
    let x0 = (u32::from(cols).saturating_sub(w * step) / 2) as i64;
    let y0 = ((u32::from(rows) * 2).saturating_sub(h) / 2) as i64;
    let pixel = |x: i64, y: i64| -> [u8; 3] {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            [0, 0, 0]
        } else {
            img.get_pixel(x as u32, y as u32).0
        }
    };
    for row in 0..rows {
        for col in 0..cols {
            let x = (i64::from(col) - x0).div_euclid(i64::from(step));
            let top = pixel(x, i64::from(row) * 2 - y0);
            let bottom = pixel(x, i64::from(row) * 2 + 1 - y0);
            let slot = &mut memory.cells[row as usize * cols as usize + col as usize];
            let top = settle(&mut slot.0, top, threshold);
            let bottom = settle(&mut slot.1, bottom, threshold);
            let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) else {
                continue;
            };
            if mode == ColourMode::Mono {
                cell.set_symbol(mono_symbol(luma(top), luma(bottom)))
                    .set_fg(Color::Reset)
                    .set_bg(Color::Reset);
            } else {
                cell.set_symbol(UPPER_HALF)
                    .set_fg(mode.colour(top))
                    .set_bg(mode.colour(bottom));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2×4 image: red over green, blue over white / black over grey...
    fn known() -> RgbImage {
        let mut img = RgbImage::new(2, 4);
        let px = [
            [[255, 0, 0], [0, 0, 255]],
            [[0, 255, 0], [255, 255, 255]],
            [[0, 0, 0], [128, 128, 128]],
            [[250, 250, 250], [10, 10, 10]],
        ];
        for (y, row) in px.iter().enumerate() {
            for (x, p) in row.iter().enumerate() {
                img.put_pixel(x as u32, y as u32, image::Rgb(*p));
            }
        }
        img
    }

    fn render(mode: ColourMode) -> Buffer {
        let area = Rect::new(0, 0, 2, 2);
        let mut buf = Buffer::empty(area);
        draw_image(
            &mut buf,
            area,
            &known(),
            mode,
            &mut TileMemory::default(),
            0,
            1,
        );
        buf
    }

    fn cell(buf: &Buffer, x: u16, y: u16) -> (String, Color, Color) {
        let c = &buf[(x, y)];
        (c.symbol().to_string(), c.fg, c.bg)
    }

    #[test]
    fn quadrant_and_sextant_cells_fit_their_pixels() {
        let (w, k) = ([250, 250, 250], [0, 0, 0]);
        // One cell of each: a 2×2 diagonal, a 2×3 left column with the
        // lower right corner.
        let mut quad = RgbImage::new(2, 2);
        for (x, y, p) in [(0, 0, w), (1, 0, k), (0, 1, k), (1, 1, w)] {
            quad.put_pixel(x, y, image::Rgb(p));
        }
        let mut sext = RgbImage::new(2, 3);
        for y in 0..3 {
            sext.put_pixel(0, y, image::Rgb(w));
            sext.put_pixel(1, y, image::Rgb(if y == 2 { w } else { k }));
        }
        for (img, cells, expected) in [
            (quad, CellMode::Quadrant, "▚"),
            // Left column and lower right: mask 1 + 4 + 16 + 32 = 53.
            (sext, CellMode::Sextant, "\u{1FB32}"),
        ] {
            let area = Rect::new(0, 0, 1, 1);
            let mut buf = Buffer::empty(area);
            let mut memory = TileMemory::default();
            draw_image_cells(
                &mut buf,
                area,
                &img,
                ColourMode::TrueColor,
                &mut memory,
                0,
                1,
                cells,
            );
            let (symbol, fg, bg) = cell(&buf, 0, 0);
            assert_eq!(symbol, expected, "{cells:?}");
            assert_eq!((fg, bg), (Color::Rgb(250, 250, 250), Color::Rgb(0, 0, 0)));
        }
    }

    #[test]
    fn truecolor_cells_are_upper_over_lower() {
        let b = render(ColourMode::TrueColor);
        assert_eq!(
            cell(&b, 0, 0),
            (
                UPPER_HALF.into(),
                Color::Rgb(255, 0, 0),
                Color::Rgb(0, 255, 0)
            )
        );
        assert_eq!(
            cell(&b, 1, 0),
            (
                UPPER_HALF.into(),
                Color::Rgb(0, 0, 255),
                Color::Rgb(255, 255, 255)
            )
        );
        assert_eq!(
            cell(&b, 1, 1),
            (
                UPPER_HALF.into(),
                Color::Rgb(128, 128, 128),
                Color::Rgb(10, 10, 10)
            )
        );
    }

    #[test]
    fn palette_modes() {
        let b = render(ColourMode::Ansi256);
        assert_eq!(
            cell(&b, 0, 0),
            (UPPER_HALF.into(), Color::Indexed(196), Color::Indexed(46))
        );
        assert_eq!(cell(&b, 1, 0).1, Color::Indexed(21));
        assert_eq!(cell(&b, 1, 1).1, Color::Indexed(244)); // grey ramp
        let b = render(ColourMode::Ansi16);
        assert_eq!(
            cell(&b, 0, 0),
            (UPPER_HALF.into(), Color::LightRed, Color::LightGreen)
        );
        assert_eq!(
            cell(&b, 1, 0),
            (UPPER_HALF.into(), Color::LightBlue, Color::White)
        );
        let b = render(ColourMode::Mono);
        assert_eq!(cell(&b, 0, 0).0, "▄"); // red is dark, green is bright
        assert_eq!(cell(&b, 1, 0).0, "▄");
        assert_eq!(cell(&b, 0, 1).0, "▄");
        assert_eq!(cell(&b, 1, 1).0, "▀");
    }

    #[test]
    fn mono_keeps_shapes_with_a_ramp() {
        assert_eq!(mono_symbol(0, 10), " ");
        assert_eq!(mono_symbol(60, 70), "░");
        assert_eq!(mono_symbol(128, 128), "▒");
        assert_eq!(mono_symbol(180, 170), "▓");
        assert_eq!(mono_symbol(250, 255), "█");
        assert_eq!(mono_symbol(250, 20), UPPER_HALF);
        assert_eq!(mono_symbol(20, 250), "▄");
        // A scaled-down white-on-dark name (greys around the middle) is
        // not lost into the field around it: more than one symbol shows.
        let kinds: std::collections::HashSet<&str> = [(20, 30), (110, 140), (200, 190)]
            .iter()
            .map(|(t, b)| mono_symbol(*t, *b))
            .collect();
        assert_eq!(kinds.len(), 3);
    }

    #[test]
    fn letterboxes_and_centres() {
        let area = Rect::new(0, 0, 4, 2);
        let mut buf = Buffer::empty(area);
        draw_image(
            &mut buf,
            area,
            &known(),
            ColourMode::TrueColor,
            &mut TileMemory::default(),
            0,
            1,
        );
        assert_eq!(cell(&buf, 0, 0).1, Color::Rgb(0, 0, 0));
        assert_eq!(cell(&buf, 1, 0).1, Color::Rgb(255, 0, 0));
        assert_eq!(cell(&buf, 3, 1).1, Color::Rgb(0, 0, 0));
    }

    #[test]
    fn hysteresis_keeps_close_colours() {
        let area = Rect::new(0, 0, 2, 2);
        let mut memory = TileMemory::default();
        let mut buf = Buffer::empty(area);
        draw_image(
            &mut buf,
            area,
            &known(),
            ColourMode::TrueColor,
            &mut memory,
            24,
            1,
        );
        let mut nudged = known();
        nudged.put_pixel(0, 0, image::Rgb([250, 5, 5])); // close to red
        nudged.put_pixel(0, 1, image::Rgb([0, 120, 0])); // far from green
        draw_image(
            &mut buf,
            area,
            &nudged,
            ColourMode::TrueColor,
            &mut memory,
            24,
            1,
        );
        assert_eq!(cell(&buf, 0, 0).1, Color::Rgb(255, 0, 0));
        assert_eq!(cell(&buf, 0, 0).2, Color::Rgb(0, 120, 0));
    }

    #[test]
    fn column_step_repeats_each_pixel() {
        // The 2-pixel-wide image over 4 columns: each pixel twice.
        let area = Rect::new(0, 0, 4, 2);
        let mut buf = Buffer::empty(area);
        draw_image(
            &mut buf,
            area,
            &known(),
            ColourMode::TrueColor,
            &mut TileMemory::default(),
            0,
            2,
        );
        assert_eq!(cell(&buf, 0, 0).1, Color::Rgb(255, 0, 0));
        assert_eq!(cell(&buf, 1, 0).1, Color::Rgb(255, 0, 0));
        assert_eq!(cell(&buf, 2, 0).1, Color::Rgb(0, 0, 255));
        assert_eq!(cell(&buf, 3, 1).2, Color::Rgb(10, 10, 10));
    }

    #[test]
    fn mode_detection() {
        use ColourMode::*;
        assert_eq!(ColourMode::from_env(true, Some("truecolor"), None), Mono);
        assert_eq!(
            ColourMode::from_env(false, Some("truecolor"), None),
            TrueColor
        );
        assert_eq!(ColourMode::from_env(false, Some("24bit"), None), TrueColor);
        assert_eq!(
            ColourMode::from_env(false, None, Some("xterm-256color")),
            Ansi256
        );
        assert_eq!(ColourMode::from_env(false, None, Some("vt100")), Ansi16);
        assert_eq!(TrueColor.next().next().next().next(), TrueColor);
    }
}
