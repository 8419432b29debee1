//! The built-in test source: a textured gradient, a moving block covering a
//! quarter of the frame, the sender's name and a running clock. Something a
//! codec and a renderer really have to work on, unlike a flat colour.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use image::{Rgb, RgbImage};

use super::font::draw_text;

pub struct TestPattern {
    name: String,
    start: Instant,
    /// Per-sender variation (hue and path), from the name.
    seed: u32,
}

impl TestPattern {
    pub fn new(name: &str) -> Self {
        let seed = name.bytes().fold(2166136261u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(16777619)
        });
        TestPattern {
            name: name.to_string(),
            start: Instant::now(),
            seed,
        }
    }

    /// Renders the frame for this instant at `width`×`height`.
    pub fn render(&self, width: u32, height: u32) -> RgbImage {
        self.render_at(self.start.elapsed().as_secs_f32(), width, height)
    }

    /// Renders the frame `t` seconds into the pattern (benchmarks step time
    /// without waiting for it).
    pub fn render_at(&self, t: f32, width: u32, height: u32) -> RgbImage {
        let (w, h) = (width.max(8), height.max(8));
        let hue = (self.seed % 360) as f32;
        let base = hsv(hue, 0.55, 0.9);
        let mut img = RgbImage::new(w, h);
        // Textured gradient: smooth ramps plus a drifting fine checker.
        let drift = (t * 8.0) as u32;
        for y in 0..h {
            for x in 0..w {
                let gx = x * 255 / w;
                let gy = y * 255 / h;
                let texture = if ((x + drift) / 2 + y / 2) % 2 == 0 {
                    18
                } else {
                    0
                };
                let r = ((gx * u32::from(base[0])) / 255 + texture) as u8;
                let g = ((gy * u32::from(base[1])) / 255 + texture) as u8;
                let b = (((255 - gx) * u32::from(base[2])) / 255 + texture) as u8;
                img.put_pixel(x, y, Rgb([r, g, b]));
            }
        }
        // A block of w/2 × h/2 (25% of the frame) on a Lissajous path.
        let phase = (self.seed % 100) as f32 / 16.0;
        let (bw, bh) = (w / 2, h / 2);
        let cx = ((t * 0.9 + phase).sin() * 0.5 + 0.5) * (w - bw) as f32;
        let cy = ((t * 1.3 + phase).cos() * 0.5 + 0.5) * (h - bh) as f32;
        let block = hsv((hue + 180.0) % 360.0, 0.8, 1.0);
        for y in cy as u32..(cy as u32 + bh).min(h) {
            for x in cx as u32..(cx as u32 + bw).min(w) {
                let stripe = if (x + y + (t * 30.0) as u32) % 12 < 6 {
                    0
                } else {
                    40
                };
                img.put_pixel(
                    x,
                    y,
                    Rgb([
                        block[0].saturating_sub(stripe),
                        block[1].saturating_sub(stripe),
                        block[2].saturating_sub(stripe),
                    ]),
                );
            }
        }
        let scale = (h / 40).max(1);
        draw_text(&mut img, 2 * scale, 2 * scale, scale, &self.name);
        draw_text(
            &mut img,
            2 * scale,
            h.saturating_sub(9 * scale),
            scale,
            &clock(),
        );
        img
    }
}

/// Wall-clock time of day, `HH:MM:SS.t` (UTC).
fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis() / 100
    )
}

fn hsv(h: f32, s: f32, v: f32) -> [u8; 3] {
    let c = v * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = v - c;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    [
        ((r + m) * 255.0) as u8,
        ((g + m) * 255.0) as u8,
        ((b + m) * 255.0) as u8,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_moves_and_differs_per_sender() {
        let a = TestPattern::new("ada");
        let b = TestPattern::new("grace");
        let fa = a.render(80, 48);
        assert_eq!(fa.dimensions(), (80, 48));
        assert_ne!(fa, b.render(80, 48));
        std::thread::sleep(std::time::Duration::from_millis(120));
        let fa2 = a.render(80, 48);
        let changed = fa
            .pixels()
            .zip(fa2.pixels())
            .filter(|(p, q)| p != q)
            .count();
        assert!(changed * 100 >= 80 * 48 * 5, "only {changed} pixels moved");
        // Textured: many distinct colours, not a flat fill.
        let distinct: std::collections::HashSet<_> = fa.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 200);
    }
}
