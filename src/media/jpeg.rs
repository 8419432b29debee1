//! JPEG in and out, at the size receivers show.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, RgbImage};

/// Default quality: terminal tiles are small and blocky; 50 keeps a 30 fps
/// 80×48 stream far under 0.5 Mbit/s.
pub const DEFAULT_QUALITY: u8 = 45;

pub fn encode(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 * 1024);
    JpegEncoder::new_with_quality(&mut out, quality.clamp(1, 100))
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .expect("encoding an in-memory RGB image to a Vec cannot fail");
    out
}

pub use streamflow_core::jpeg::{restore_tables, strip_tables};

#[derive(Debug, thiserror::Error)]
#[error("undecodable JPEG: {0}")]
pub struct DecodeError(String);

/// Decodes a JPEG from an untrusted peer. Errors, never panics; refuses
/// absurd dimensions before allocating.
pub fn decode(bytes: &[u8]) -> Result<RgbImage, DecodeError> {
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(bytes), image::ImageFormat::Jpeg);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4096);
    limits.max_image_height = Some(4096);
    limits.max_alloc = Some(64 << 20);
    reader.limits(limits);
    reader
        .decode()
        .map(|img| img.to_rgb8())
        .map_err(|e| DecodeError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let img = super::super::pattern::TestPattern::new("x").render(80, 48);
        let jpg = encode(&img, 60);
        assert_eq!(&jpg[..2], &[0xff, 0xd8]);
        let back = decode(&jpg).unwrap();
        assert_eq!(back.dimensions(), (80, 48));
        assert!(decode(b"not a jpeg").is_err());
        for cut in [0, 1, 2, 10, jpg.len() / 2, jpg.len() - 1] {
            let _ = decode(&jpg[..cut]); // must not panic
            let _ = restore_tables(&jpg[..cut]);
            let _ = strip_tables(&jpg[..cut]);
        }
    }

    #[test]
    fn standard_tables_are_stripped_and_restored_exactly() {
        let img = super::super::pattern::TestPattern::new("y").render(80, 48);
        for q in [20, 50, 90] {
            let jpg = encode(&img, q);
            let small = strip_tables(&jpg).expect("our encoder uses the standard tables");
            assert!(
                jpg.len() - small.len() > 400,
                "saved {}",
                jpg.len() - small.len()
            );
            assert_eq!(restore_tables(&small).unwrap(), jpg);
            assert_eq!(
                decode(&restore_tables(&small).unwrap()).unwrap(),
                decode(&jpg).unwrap()
            );
        }
    }
}
