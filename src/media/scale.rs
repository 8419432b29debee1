//! Aspect-correct scaling.

use image::imageops::FilterType;
use image::RgbImage;

/// The largest size with `src`'s aspect ratio that fits in `max`.
pub fn fit(src: (u32, u32), max: (u32, u32)) -> (u32, u32) {
    let (sw, sh) = (src.0.max(1) as u64, src.1.max(1) as u64);
    let (mw, mh) = (max.0.max(1) as u64, max.1.max(1) as u64);
    if sw * mh <= sh * mw {
        (((sw * mh) / sh).max(1) as u32, mh as u32)
    } else {
        (mw as u32, ((sh * mw) / sw).max(1) as u32)
    }
}

/// Scales `img` to fit in `max`, keeping its aspect ratio.
pub fn scale_to_fit(img: &RgbImage, max: (u32, u32)) -> RgbImage {
    scale_to_fit_wide(img, max, 1)
}

/// Like [`scale_to_fit`], for pixels shown `column_step` times wider than
/// tall: the result is that many times narrower.
pub fn scale_to_fit_wide(img: &RgbImage, max: (u32, u32), column_step: u32) -> RgbImage {
    scale_to_fit_pixels(img, max, (column_step.max(1), 1))
}

/// Like [`scale_to_fit`], for pixels shown `aspect.0 : aspect.1` (width
/// to height) instead of square: at most `max` of them, the picture's
/// shape kept as it is shown.
pub fn scale_to_fit_pixels(img: &RgbImage, max: (u32, u32), aspect: (u32, u32)) -> RgbImage {
    let (sw, sh) = img.dimensions();
    let (aw, ah) = (u64::from(aspect.0.max(1)), u64::from(aspect.1.max(1)));
    // The picture measured in pixels of this shape.
    let (w, h) = fit(
        (
            (u64::from(sw) * ah).min(u64::from(u32::MAX)) as u32,
            (u64::from(sh) * aw).min(u64::from(u32::MAX)) as u32,
        ),
        max,
    );
    if (w, h) == img.dimensions() {
        return img.clone();
    }
    // Triangle (bilinear) is enough at terminal sizes and several times
    // cheaper than Lanczos.
    image::imageops::resize(img, w, h, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_aspect() {
        assert_eq!(fit((640, 480), (80, 48)), (64, 48));
        assert_eq!(fit((640, 480), (80, 100)), (80, 60));
        assert_eq!(fit((1, 1), (0, 0)), (1, 1));
        assert_eq!(fit((100, 50), (100, 50)), (100, 50));
    }

    #[test]
    fn wide_pixels_keep_the_shown_aspect() {
        let img = RgbImage::new(160, 96);
        let half = scale_to_fit_wide(&img, (40, 48), 2);
        // 40 pixels shown 2 columns wide each = 80 columns for 48 rows:
        // the same 5:3 as the source.
        assert_eq!(half.dimensions(), (40, 48));
        assert_eq!(scale_to_fit(&img, (80, 48)).dimensions(), (80, 48));
    }
}
