//! Real pixels through sixel (DEC's bitmap protocol, spoken by xterm
//! `-ti vt340`, foot, WezTerm, mlterm, contour, Windows Terminal).
//!
//! - Detection: the device-attributes answer lists attribute 4 (sixel),
//!   and [`REGISTERS_QUERY`] (xterm's XTSMGRAPHICS) asks how many colour
//!   registers a picture may use (a VT340 had 16; xterm has 1024).
//! - Sixel pixels are the screen's own: no scaling by the terminal. The
//!   tile's picture is scaled here to the cells' size in screen pixels
//!   (from the pty's window size), cut to whole six-pixel bands so the
//!   last band never reaches the row below, quantised to at most 256
//!   colours (median cut) and written band by band with run lengths.
//! - Unlike kitty's, sixel pictures have no ids: one is replaced by
//!   drawing the next over it, and one that must go (a tile moved or left,
//!   another cell mode) goes when the screen is cleared and drawn whole.

use image::RgbImage;

/// XTSMGRAPHICS: "how many colour registers?" (answer `CSI ? 1 ; 0 ; N S`).
pub const REGISTERS_QUERY: &[u8] = b"\x1b[?1;1;0S";
/// The registers a VT340 has, for a terminal that says sixel but not how
/// many.
pub const VT340_REGISTERS: u16 = 16;
/// We index colours with a byte.
const MAX_COLOURS: usize = 256;

/// How a sixel terminal draws: its cells' size in screen pixels and the
/// colours a picture may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SixelTerminal {
    pub cell: (u16, u16),
    pub registers: u16,
}

impl SixelTerminal {
    /// The escape sequence that shows `image` over `cols`×`rows` cells at
    /// the cursor (the cursor then moves; callers save and restore it).
    pub fn place(&self, image: &RgbImage, cols: u16, rows: u16) -> Vec<u8> {
        let (q, w, h) = self.fit(image, cols, rows);
        encode(&q, w, h)
    }

    /// What the terminal shows for `image` over `cols`×`rows` cells.
    pub fn shown(&self, image: &RgbImage, cols: u16, rows: u16) -> RgbImage {
        let (q, w, h) = self.fit(image, cols, rows);
        q.to_image(w as u32, h as u32)
    }

    /// `image` quantised, then scaled (nearest pixel) to the screen pixels
    /// of `cols`×`rows` cells in whole bands: quantising the smaller
    /// picture and scaling indices costs a fraction of the other order.
    fn fit(&self, image: &RgbImage, cols: u16, rows: u16) -> (Quantised, usize, usize) {
        let w = (usize::from(cols) * usize::from(self.cell.0)).max(1);
        let h = (usize::from(rows) * usize::from(self.cell.1) / 6 * 6).max(6);
        let mut q = quantise(image, usize::from(self.registers));
        let (iw, ih) = (image.width() as usize, image.height() as usize);
        let columns: Vec<usize> = (0..w).map(|x| x * iw / w).collect();
        let mut indices = Vec::with_capacity(w * h);
        for y in 0..h {
            let row = &q.indices[y * ih / h * iw..][..iw];
            indices.extend(columns.iter().map(|&x| row[x]));
        }
        q.indices = indices;
        (q, w, h)
    }
}

/// A palette of at most `colours` entries and each pixel's index in it.
pub struct Quantised {
    pub palette: Vec<[u8; 3]>,
    pub indices: Vec<u8>,
}

impl Quantised {
    /// The picture as the terminal shows it.
    pub fn to_image(&self, width: u32, height: u32) -> RgbImage {
        debug_assert_eq!(self.indices.len(), (width * height) as usize);
        RgbImage::from_fn(width, height, |x, y| {
            image::Rgb(self.palette[usize::from(self.indices[(y * width + x) as usize])])
        })
    }
}

/// Median cut over a 5-bit-a-channel histogram: the box with the widest
/// spread (weighted by pixels) is split at its median until there are
/// `colours` boxes; each box's colour is its pixels' mean.
pub fn quantise(image: &RgbImage, colours: usize) -> Quantised {
    let colours = colours.clamp(2, MAX_COLOURS);
    let bin = |p: &image::Rgb<u8>| {
        (usize::from(p[0] >> 3) << 10) | (usize::from(p[1] >> 3) << 5) | usize::from(p[2] >> 3)
    };
    let mut counts = vec![0u32; 1 << 15];
    for p in image.pixels() {
        counts[bin(p)] += 1;
    }
    // Each box: its bins, the channel to split and how much it is worth
    // splitting (widest channel range × pixels).
    let scored = |members: Vec<usize>| {
        let (channel, range) = widest_channel(&members);
        let pixels: u64 = members.iter().map(|&c| u64::from(counts[c])).sum();
        let worth = if members.len() > 1 {
            u64::from(range) * pixels
        } else {
            0
        };
        (members, channel, worth)
    };
    let mut boxes = vec![scored(
        (0..counts.len()).filter(|&b| counts[b] > 0).collect(),
    )];
    while boxes.len() < colours {
        let Some((i, _)) = boxes
            .iter()
            .enumerate()
            .filter(|(_, b)| b.2 > 0)
            .max_by_key(|(_, b)| b.2)
        else {
            break;
        };
        let (mut members, channel, _) = std::mem::take(&mut boxes[i]);
        members.sort_unstable_by_key(|&c| channel_of(c, channel));
        let total: u64 = members.iter().map(|&c| u64::from(counts[c])).sum();
        let mut seen = 0;
        let mut cut = members.len() / 2;
        for (k, &c) in members.iter().enumerate() {
            seen += u64::from(counts[c]);
            if seen * 2 >= total {
                cut = (k + 1).clamp(1, members.len() - 1);
                break;
            }
        }
        let upper = members.split_off(cut);
        boxes[i] = scored(members);
        boxes.push(scored(upper));
    }
    let mut lookup = vec![0u8; 1 << 15];
    let mut palette = Vec::with_capacity(boxes.len());
    for (index, (b, _, _)) in boxes.iter().enumerate() {
        let mut sum = [0u64; 3];
        let mut n = 0u64;
        for &c in b {
            let k = u64::from(counts[c]);
            for (ch, s) in sum.iter_mut().enumerate() {
                *s += u64::from(channel_of(c, ch)) * 8 * k + 4 * k;
            }
            n += k;
            lookup[c] = index as u8;
        }
        palette.push(sum.map(|s| (s / n.max(1)).min(255) as u8));
    }
    let indices = image.pixels().map(|p| lookup[bin(p)]).collect();
    Quantised { palette, indices }
}

fn channel_of(bin: usize, channel: usize) -> u8 {
    ((bin >> (10 - 5 * channel)) & 31) as u8
}

fn widest_channel(members: &[usize]) -> (usize, u8) {
    (0..3)
        .map(|ch| {
            let (lo, hi) = members.iter().fold((31u8, 0u8), |(lo, hi), &c| {
                let v = channel_of(c, ch);
                (lo.min(v), hi.max(v))
            });
            (ch, hi.saturating_sub(lo))
        })
        .max_by_key(|&(_, range)| range)
        .unwrap_or((0, 0))
}

/// The DCS string for a quantised `w`×`h` picture: palette, then each
/// six-row band as one line of sixels per colour used in it, from the
/// colour's first column to its last, run-length encoded.
pub fn encode(q: &Quantised, w: usize, h: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(w * h / 2 + 64);
    // P2 = 1: pixels we don't set keep what is there (we set them all).
    out.extend_from_slice(format!("\x1bP0;1;0q\"1;1;{w};{h}").as_bytes());
    for (i, c) in q.palette.iter().enumerate() {
        let pct = |v: u8| (u32::from(v) * 100 + 127) / 255;
        out.extend_from_slice(
            format!("#{i};2;{};{};{}", pct(c[0]), pct(c[1]), pct(c[2])).as_bytes(),
        );
    }
    // Per band: each colour's six-bit column patterns and its span.
    let colours = q.palette.len();
    let mut bits = vec![0u8; colours * w];
    let mut span = vec![(usize::MAX, 0usize); colours];
    for band in (0..h).step_by(6) {
        for (r, y) in (band..(band + 6).min(h)).enumerate() {
            for (x, &c) in q.indices[y * w..(y + 1) * w].iter().enumerate() {
                let c = usize::from(c);
                bits[c * w + x] |= 1 << r;
                let s = &mut span[c];
                s.0 = s.0.min(x);
                s.1 = s.1.max(x + 1);
            }
        }
        let mut first = true;
        for (c, s) in span.iter_mut().enumerate() {
            let (start, end) = std::mem::replace(s, (usize::MAX, 0));
            if start >= end {
                continue;
            }
            if !first {
                out.push(b'$');
            }
            first = false;
            out.extend_from_slice(format!("#{c}").as_bytes());
            let row = &mut bits[c * w..(c + 1) * w];
            write_runs(&mut out, &row[..end]);
            row[start..end].fill(0);
        }
        out.push(b'-');
    }
    out.extend_from_slice(b"\x1b\\");
    out
}

/// One colour's sixels across a band: `!n` repeats runs longer than three.
fn write_runs(out: &mut Vec<u8>, row: &[u8]) {
    let mut x = 0;
    while x < row.len() {
        let v = row[x];
        let run = row[x..].iter().take_while(|&&b| b == v).count();
        let ch = 0x3f + v;
        if run > 3 {
            out.extend_from_slice(format!("!{run}").as_bytes());
            out.push(ch);
        } else {
            out.extend(std::iter::repeat_n(ch, run));
        }
        x += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder of what [`encode`] writes (palette, `#`, `!`, `$`, `-`).
    fn decode(bytes: &[u8]) -> RgbImage {
        let text = std::str::from_utf8(bytes).unwrap();
        let body = text
            .strip_prefix("\x1bP0;1;0q\"1;1;")
            .unwrap()
            .strip_suffix("\x1b\\")
            .unwrap();
        let mut nums = body.splitn(3, |c: char| !c.is_ascii_digit());
        let w: u32 = nums.next().unwrap().parse().unwrap();
        let h: u32 = nums.next().unwrap().parse().unwrap();
        let body = &body[format!("{w};{h}").len()..];
        let mut img = RgbImage::new(w, h);
        let mut palette = vec![[0u8; 3]; 256];
        let (mut x, mut band, mut colour) = (0u32, 0u32, 0usize);
        let b = body.as_bytes();
        let mut i = 0;
        let number = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && b[*i].is_ascii_digit() {
                *i += 1;
            }
            body[start..*i].parse::<u32>().unwrap()
        };
        while i < b.len() {
            match b[i] {
                b'#' => {
                    i += 1;
                    colour = number(&mut i) as usize;
                    if i < b.len() && b[i] == b';' {
                        let mut v = [0u32; 4];
                        for slot in &mut v {
                            i += 1;
                            *slot = number(&mut i);
                        }
                        palette[colour] = [v[1], v[2], v[3]].map(|p| (p * 255 / 100) as u8);
                    }
                }
                b'$' => {
                    x = 0;
                    i += 1;
                }
                b'-' => {
                    x = 0;
                    band += 1;
                    i += 1;
                }
                _ => {
                    let mut run = 1;
                    if b[i] == b'!' {
                        i += 1;
                        run = number(&mut i);
                    }
                    let six = b[i] - 0x3f;
                    for _ in 0..run {
                        for r in 0..6 {
                            let y = band * 6 + r;
                            if six & (1 << r) != 0 && y < h {
                                img.put_pixel(x, y, image::Rgb(palette[colour]));
                            }
                        }
                        x += 1;
                    }
                    i += 1;
                }
            }
        }
        img
    }

    fn gradient(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x + y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn a_picture_with_few_colours_comes_back_exactly() {
        let colours = [[0, 0, 0], [255, 0, 0], [0, 128, 255], [250, 250, 250]];
        let img = RgbImage::from_fn(37, 20, |x, y| {
            image::Rgb(colours[((x / 5 + y / 3) % 4) as usize])
        });
        let shown = decode(&encode(&quantise(&img, 16), 37, 20));
        for (a, b) in img.pixels().zip(shown.pixels()) {
            for ch in 0..3 {
                // Eight-bit levels through five-bit bins and percent.
                assert!(a[ch].abs_diff(b[ch]) <= 6, "{a:?} shown as {b:?}");
            }
        }
    }

    #[test]
    fn many_colours_are_cut_to_the_registers_and_stay_close() {
        let img = gradient(96, 60);
        for registers in [16usize, 256] {
            let q = quantise(&img, registers);
            assert!(q.palette.len() <= registers);
            let shown = decode(&encode(&q, 96, 60));
            let err: f64 = img
                .pixels()
                .zip(shown.pixels())
                .map(|(a, b)| (0..3).map(|c| f64::from(a[c].abs_diff(b[c]))).sum::<f64>())
                .sum::<f64>()
                / (img.len() as f64);
            let bound = if registers == 16 { 60.0 } else { 16.0 };
            assert!(err < bound, "{registers} registers: mean error {err:.1}");
        }
    }

    #[test]
    fn a_fitted_picture_is_whole_bands_inside_its_cells() {
        let t = SixelTerminal {
            cell: (6, 13),
            registers: 256,
        };
        let shown = t.shown(&gradient(40, 40), 10, 5);
        assert_eq!(shown.dimensions(), (60, 60));
        let bytes = t.place(&gradient(40, 40), 10, 5);
        let decoded = decode(&bytes);
        assert_eq!(decoded.dimensions(), shown.dimensions());
        // The same picture, but for the palette's percent steps.
        let worst = decoded
            .pixels()
            .zip(shown.pixels())
            .flat_map(|(a, b)| (0..3).map(move |c| a[c].abs_diff(b[c])))
            .max();
        assert!(worst <= Some(3), "off by {worst:?}");
        assert!(bytes.starts_with(b"\x1bP") && bytes.ends_with(b"\x1b\\"));
    }

    #[test]
    fn runs_are_counted() {
        let mut out = Vec::new();
        write_runs(&mut out, &[1, 1, 1, 1, 1, 2, 2, 0]);
        assert_eq!(out, b"!5@AA?");
    }
}
