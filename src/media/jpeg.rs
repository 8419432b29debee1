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

/// The Huffman tables the encoder always writes (the standard ones of
/// ITU T.81 Annex K): ~420 bytes, a third of a small frame. Senders strip
/// them, receivers put them back, so they never cross the wire.
fn standard_tables() -> &'static [u8] {
    static TABLES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let probe = encode(&RgbImage::new(8, 8), DEFAULT_QUALITY);
        segments(&probe)
            .expect("our own JPEG parses")
            .iter()
            .filter(|(_, _, m)| *m == DHT)
            .flat_map(|(s, e, _)| probe[*s..*e].to_vec())
            .collect()
    })
}

const DHT: u8 = 0xc4;
const SOS: u8 = 0xda;

/// Header segments (start, end, marker) before the scan, or `None` if the
/// JPEG is malformed.
fn segments(jpeg: &[u8]) -> Option<Vec<(usize, usize, u8)>> {
    if jpeg.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 2;
    loop {
        let (&ff, &marker) = (jpeg.get(pos)?, jpeg.get(pos + 1)?);
        if ff != 0xff {
            return None;
        }
        if marker == SOS {
            out.push((pos, pos, SOS));
            return Some(out);
        }
        let len = u16::from_be_bytes([*jpeg.get(pos + 2)?, *jpeg.get(pos + 3)?]) as usize;
        let end = pos + 2 + len;
        if len < 2 || end > jpeg.len() {
            return None;
        }
        out.push((pos, end, marker));
        pos = end;
    }
}

/// Removes the standard Huffman tables; `None` if this JPEG has others
/// (then it must travel whole).
pub fn strip_tables(jpeg: &[u8]) -> Option<Vec<u8>> {
    let segs = segments(jpeg)?;
    let tables: Vec<u8> = segs
        .iter()
        .filter(|(_, _, m)| *m == DHT)
        .flat_map(|(s, e, _)| jpeg[*s..*e].iter().copied())
        .collect();
    if tables != standard_tables() {
        return None;
    }
    let mut out = Vec::with_capacity(jpeg.len() - tables.len());
    let mut pos = 0;
    for (s, e, m) in segs {
        if m == DHT {
            out.extend_from_slice(&jpeg[pos..s]);
            pos = e;
        }
    }
    out.extend_from_slice(&jpeg[pos..]);
    Some(out)
}

/// Puts the standard Huffman tables back, just before the scan.
pub fn restore_tables(stripped: &[u8]) -> Option<Vec<u8>> {
    let sos = segments(stripped)?.last()?.0;
    let tables = standard_tables();
    let mut out = Vec::with_capacity(stripped.len() + tables.len());
    out.extend_from_slice(&stripped[..sos]);
    out.extend_from_slice(tables);
    out.extend_from_slice(&stripped[sos..]);
    Some(out)
}

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
