//! More pixels per cell (DESIGN.md §4): besides the half block (1×2
//! pixels a cell), quadrants (2×2, U+2596–U+259F with the half and full
//! blocks) and sextants (2×3, U+1FB00–U+1FB3B, Unicode 13's "Symbols for
//! Legacy Computing", with the half and full blocks for the four patterns
//! it leaves out). Each cell shows two colours; for each cell the symbol
//! and the two colours are the exact least-squares fit of its pixels
//! (every split of the pixels into two groups is tried: 8 for quadrants,
//! 32 for sextants, each group drawn in its mean colour).

/// How video cells are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CellMode {
    #[default]
    Half,
    Quadrant,
    Sextant,
    /// Real pixels through the kitty graphics protocol ([`super::graphics`]).
    Kitty,
    /// Real pixels through sixel ([`super::sixel`]).
    Sixel,
}

/// `--cells`: a mode, or `auto` (sextant where the terminal is known to
/// draw it, half blocks elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CellsChoice {
    Auto,
    Half,
    Quadrant,
    Sextant,
    /// Pixels where the terminal answers the kitty graphics query (cells
    /// until it has, and if it doesn't).
    Kitty,
    /// Pixels where the terminal says it speaks sixel (cells until it has,
    /// and if it doesn't).
    Sixel,
}

impl CellsChoice {
    /// As `--cells` spells it.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    /// The mode to start with: pixel modes start as cells, and switch when
    /// the terminal answers the query.
    pub fn resolve(self) -> CellMode {
        match self {
            CellsChoice::Auto | CellsChoice::Kitty | CellsChoice::Sixel => CellMode::detect(),
            CellsChoice::Half => CellMode::Half,
            CellsChoice::Quadrant => CellMode::Quadrant,
            CellsChoice::Sextant => CellMode::Sextant,
        }
    }
}

impl CellMode {
    /// Pixels per cell: (columns, rows).
    pub fn pixels(self) -> (u32, u32) {
        match self {
            CellMode::Half => (1, 2),
            CellMode::Quadrant => (2, 2),
            CellMode::Sextant => (2, 3),
            // Square pixels at four a column: the picture is scaled to the
            // cells (by kitty; by us for sixel), so this sets what senders
            // send.
            CellMode::Kitty | CellMode::Sixel => (4, 8),
        }
    }

    /// Whether cells are drawn with symbols (else the terminal draws an
    /// image).
    pub fn is_text(self) -> bool {
        !matches!(self, CellMode::Kitty | CellMode::Sixel)
    }

    /// A pixel's width : height, a cell being twice as tall as wide.
    pub fn pixel_aspect(self) -> (u32, u32) {
        match self {
            CellMode::Half => (1, 1),
            CellMode::Quadrant => (1, 2),
            CellMode::Sextant => (3, 4),
            CellMode::Kitty | CellMode::Sixel => (1, 1),
        }
    }

    /// The next mode for `p`: `pixels`, the pixel mode the terminal takes,
    /// if any, after sextants.
    pub fn next(self, pixels: Option<CellMode>) -> Self {
        match (self, pixels) {
            (CellMode::Half, _) => CellMode::Quadrant,
            (CellMode::Quadrant, _) => CellMode::Sextant,
            (CellMode::Sextant, Some(p)) => p,
            _ => CellMode::Half,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CellMode::Half => "half blocks (1×2)",
            CellMode::Quadrant => "quadrants (2×2)",
            CellMode::Sextant => "sextants (2×3)",
            CellMode::Kitty => "pixels (kitty graphics)",
            CellMode::Sixel => "pixels (sixel)",
        }
    }

    /// Sextants where the terminal is known to draw them (its own font or
    /// built-in box drawing): kitty, WezTerm, foot, Ghostty, VTE ≥ 0.68
    /// (GNOME Terminal and friends), Windows Terminal, xterm ≥ 368. Half
    /// blocks elsewhere (tmux and SSH hide the terminal: choose with
    /// `--cells`).
    pub fn detect() -> Self {
        let var = |k: &str| std::env::var(k).ok();
        let term = var("TERM").unwrap_or_default();
        let program = var("TERM_PROGRAM").unwrap_or_default();
        let vte = var("VTE_VERSION").and_then(|v| v.parse::<u32>().ok());
        let xterm = var("XTERM_VERSION").and_then(|v| {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let known = term == "xterm-kitty"
            || var("KITTY_WINDOW_ID").is_some()
            || program == "WezTerm"
            || term.starts_with("foot")
            || program == "ghostty"
            || term == "xterm-ghostty"
            || vte.is_some_and(|v| v >= 6800)
            || var("WT_SESSION").is_some()
            || xterm.is_some_and(|v| v >= 368);
        if known && !term.starts_with("screen") && !term.starts_with("tmux") {
            CellMode::Sextant
        } else {
            CellMode::Half
        }
    }
}

/// The best two-colour fit of a cell's pixels: which pixels take the
/// foreground (bit i = pixel i, row by row), and the two colours.
pub fn fit(pixels: &[[u8; 3]]) -> (u8, [u8; 3], [u8; 3]) {
    fit_near(pixels, None, 0.0)
}

/// Like [`fit`], keeping the `previous` split (or its complement) while
/// its squared error is within `tolerance` of the best: a symbol that
/// flickers between near-equal fits costs bytes and shows nothing.
pub fn fit_near(
    pixels: &[[u8; 3]],
    previous: Option<u8>,
    tolerance: f64,
) -> (u8, [u8; 3], [u8; 3]) {
    let n = pixels.len();
    debug_assert!((1..=8).contains(&n));
    let total: [u32; 3] = sum(pixels.iter());
    // Minimising the squared error = maximising Σ S²/n over both groups.
    let score = |mask: u32| -> f64 {
        let fg_count = mask.count_ones();
        let bg_count = n as u32 - fg_count;
        let fg: [u32; 3] = sum(pixels
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, p)| p));
        let mut s = 0.0;
        for c in 0..3 {
            if fg_count > 0 {
                let f = f64::from(fg[c]);
                s += f * f / f64::from(fg_count);
            }
            if bg_count > 0 {
                let b = f64::from(total[c] - fg[c]);
                s += b * b / f64::from(bg_count);
            }
        }
        s
    };
    let mut best = (f64::MIN, 0u8);
    // Pixel 0 always in the foreground: each split once. Ties go to the
    // first tried, all foreground (a flat area is one symbol throughout).
    for mask in (1u32..(1 << n)).step_by(2).rev() {
        let s = score(mask);
        if s > best.0 {
            best = (s, mask as u8);
        }
    }
    let all = (1u32 << n) - 1;
    let mask = match previous.map(u32::from).filter(|p| *p <= all) {
        Some(p) if score(p) + tolerance >= best.0 => p as u8,
        _ => best.1,
    };
    let mean = |on: bool| -> [u8; 3] {
        let (mut s, mut n) = ([0u32; 3], 0u32);
        for (i, p) in pixels.iter().enumerate() {
            if (mask & (1 << i) != 0) == on {
                for c in 0..3 {
                    s[c] += u32::from(p[c]);
                }
                n += 1;
            }
        }
        if n == 0 {
            return [0; 3];
        }
        s.map(|v| ((v + n / 2) / n) as u8)
    };
    let fg = mean(true);
    let bg = if mask.count_ones() as usize == n {
        fg
    } else {
        mean(false)
    };
    (mask, fg, bg)
}

fn sum<'a>(pixels: impl Iterator<Item = &'a [u8; 3]>) -> [u32; 3] {
    pixels.fold([0; 3], |mut s, p| {
        for c in 0..3 {
            s[c] += u32::from(p[c]);
        }
        s
    })
}

/// Quadrants by mask (bit 0 upper left, 1 upper right, 2 lower left,
/// 3 lower right).
const QUADRANTS: [&str; 16] = [
    " ", "▘", "▝", "▀", "▖", "▌", "▞", "▛", "▗", "▚", "▐", "▜", "▄", "▙", "▟", "█",
];

/// The symbol drawing `mask`'s pixels in the foreground colour.
pub fn symbol(mode: CellMode, mask: u8) -> &'static str {
    match mode {
        CellMode::Half => match mask & 3 {
            0 => " ",
            1 => "▀",
            2 => "▄",
            _ => "█",
        },
        CellMode::Quadrant => QUADRANTS[usize::from(mask & 15)],
        CellMode::Sextant => SEXTANTS[usize::from(mask & 63)],
        // The terminal draws the picture; its cells are blank.
        CellMode::Kitty | CellMode::Sixel => " ",
    }
}

/// Sextants by mask (bit 0 upper left, 1 upper right, 2 middle left,
/// 3 middle right, 4 lower left, 5 lower right): U+1FB00 onwards in mask
/// order, the half and full blocks for the four it leaves out.
static SEXTANTS: [&str; 64] = [
    " ", "🬀", "🬁", "🬂", "🬃", "🬄", "🬅", "🬆", "🬇", "🬈", "🬉", "🬊", "🬋", "🬌", "🬍", "🬎", "🬏", "🬐", "🬑",
    "🬒", "🬓", "▌", "🬔", "🬕", "🬖", "🬗", "🬘", "🬙", "🬚", "🬛", "🬜", "🬝", "🬞", "🬟", "🬠", "🬡", "🬢", "🬣",
    "🬤", "🬥", "🬦", "🬧", "▐", "🬨", "🬩", "🬪", "🬫", "🬬", "🬭", "🬮", "🬯", "🬰", "🬱", "🬲", "🬳", "🬴", "🬵",
    "🬶", "🬷", "🬸", "🬹", "🬺", "🬻", "█",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sextants_follow_unicode_order() {
        for mask in 1u32..63 {
            if mask == 21 || mask == 42 {
                continue;
            }
            let index = mask - 1 - u32::from(mask > 21) - u32::from(mask > 42);
            let expected = char::from_u32(0x1FB00 + index).unwrap().to_string();
            assert_eq!(SEXTANTS[mask as usize], expected, "mask {mask}");
        }
        assert_eq!(symbol(CellMode::Sextant, 21), "▌");
        assert_eq!(symbol(CellMode::Sextant, 42), "▐");
        assert_eq!(symbol(CellMode::Sextant, 63), "█");
        assert_eq!(symbol(CellMode::Quadrant, 0b0110), "▞");
    }

    #[test]
    fn the_fit_is_exact_least_squares() {
        let (w, k) = ([250, 250, 250], [5, 5, 5]);
        // A diagonal in a quadrant cell: ▚ (upper left and lower right).
        let (mask, fg, bg) = fit(&[w, k, k, w]);
        assert_eq!((mask, fg, bg), (0b1001, w, k));
        assert_eq!(symbol(CellMode::Quadrant, mask), "▚");
        // One colour: all foreground.
        let (mask, fg, _) = fit(&[k; 6]);
        assert_eq!((mask, fg), (63, k));
        // Against brute force over every split, on a varied cell.
        let px = [
            [10, 200, 30],
            [12, 190, 40],
            [200, 10, 10],
            [180, 30, 20],
            [90, 90, 90],
            [15, 210, 35],
        ];
        let (mask, fg, bg) = fit(&px);
        let err = |m: u8, f: [u8; 3], b: [u8; 3]| -> u32 {
            px.iter()
                .enumerate()
                .map(|(i, p)| {
                    let c = if m & (1 << i) != 0 { f } else { b };
                    (0..3)
                        .map(|j| (i32::from(p[j]) - i32::from(c[j])).pow(2) as u32)
                        .sum::<u32>()
                })
                .sum()
        };
        let best = err(mask, fg, bg);
        for m in 0u8..64 {
            let on: Vec<[u8; 3]> = (0..6)
                .filter(|i| m & (1 << i) != 0)
                .map(|i| px[i])
                .collect();
            let off: Vec<[u8; 3]> = (0..6)
                .filter(|i| m & (1 << i) == 0)
                .map(|i| px[i])
                .collect();
            let mean = |g: &[[u8; 3]]| -> [u8; 3] {
                if g.is_empty() {
                    return [0; 3];
                }
                let s = sum(g.iter());
                let n = g.len() as u32;
                [(s[0] / n) as u8, (s[1] / n) as u8, (s[2] / n) as u8]
            };
            // Integer means are within rounding of the real ones.
            assert!(best <= err(m, mean(&on), mean(&off)) + 6 * 3, "mask {m}");
        }
    }
}
