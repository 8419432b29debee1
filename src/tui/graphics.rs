//! Real pixels through the kitty graphics protocol
//! (<https://sw.kovidgoyal.net/kitty/graphics-protocol/>).
//!
//! - Detection: [`QUERY`] asks the terminal whether it takes an image; a
//!   terminal that speaks the protocol answers `ESC _ G i=31;OK ESC \`
//!   before it answers the device-attributes query that follows, and one
//!   that doesn't ignores the APC string (it is a complete control string
//!   to any ECMA-48 parser), so nothing shows.
//! - Drawing: one image id per tile, sent zlib-compressed RGB with one
//!   placement scaled to the tile's cells; a new picture re-sends the
//!   image under the same id, which replaces it in place. A tile that
//!   moves, resizes or goes away has its image deleted.
//! - The cells under an image are blank text cells, so the diffing screen
//!   and the closed-loop pacing work as in the cell modes.

use std::collections::HashMap;

use base64::Engine;
use image::RgbImage;
use ratatui::layout::Rect;

/// The query: a 1×1 RGB image, "query only" (`a=q`), id 31.
pub const QUERY: &[u8] = b"\x1b_Gi=31,s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\";
/// The id the query uses (its answer carries it).
pub const QUERY_ID: &str = "i=31";
/// Base64 bytes per escape (the protocol's limit).
const CHUNK: usize = 4096;
/// Deletes every image we placed (when leaving, or leaving the mode).
pub const DELETE_ALL: &[u8] = b"\x1b_Ga=d,d=A,q=2\x1b\\";

/// One tile's picture for this frame.
#[derive(Clone)]
pub struct TileImage {
    /// Stable per tile (the protocol's image id; never 0).
    pub id: u32,
    /// Changes whenever the picture does.
    pub generation: u64,
    /// The tile's video cells.
    pub rect: Rect,
    pub image: RgbImage,
}

/// The escape sequences that show `image` (w×h pixels) scaled into
/// `cols`×`rows` cells at the cursor, as image `id` (replacing whatever
/// had that id), without moving the cursor.
pub fn place(id: u32, image: &RgbImage, cols: u16, rows: u16) -> Vec<u8> {
    let (w, h) = image.dimensions();
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(image.as_raw(), 1);
    let data = base64::engine::general_purpose::STANDARD.encode(packed);
    let mut out = Vec::with_capacity(data.len() + 128 + data.len() / CHUNK * 16);
    let chunks: Vec<&[u8]> = data.as_bytes().chunks(CHUNK).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let more = u8::from(i + 1 < chunks.len());
        out.extend_from_slice(b"\x1b_G");
        if i == 0 {
            out.extend_from_slice(
                format!("a=T,f=24,o=z,s={w},v={h},i={id},p=1,c={cols},r={rows},C=1,q=2,")
                    .as_bytes(),
            );
        }
        out.extend_from_slice(format!("m={more};").as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\x1b\\");
    }
    out
}

/// Deletes image `id` and frees its data.
pub fn delete(id: u32) -> Vec<u8> {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\").into_bytes()
}

/// What the terminal shows, so only new pictures are sent.
#[derive(Default)]
pub struct Placements {
    shown: HashMap<u32, (u64, Rect)>,
    /// The screen was redrawn whole: delete whatever may be left first.
    clear: bool,
}

impl Placements {
    /// The terminal's screen is redrawn whole (resize, resume): every
    /// picture goes again, after deleting whatever was left.
    pub fn forget(&mut self) {
        self.clear = !self.shown.is_empty();
        self.shown.clear();
    }

    /// Nothing to send: no pictures shown and none to show.
    pub fn idle(&self, tiles: &[TileImage]) -> bool {
        tiles.is_empty() && self.shown.is_empty() && !self.clear
    }

    /// Deletes what no tile shows any more (or shows elsewhere), and places
    /// the tiles' new pictures while they fit in `budget` bytes (the rest
    /// wait for the next frame; with `idle`, little is in flight to the
    /// terminal and one picture goes even if larger, or a picture larger
    /// than the window would never go). Returns the bytes, and whether every new
    /// picture went.
    pub fn update(&mut self, tiles: &[TileImage], budget: usize, idle: bool) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        if std::mem::take(&mut self.clear) {
            out.extend_from_slice(DELETE_ALL);
        }
        let gone: Vec<u32> = self
            .shown
            .iter()
            .filter(|(id, (_, rect))| !tiles.iter().any(|t| t.id == **id && t.rect == *rect))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.shown.remove(&id);
            out.extend(delete(id));
        }
        let mut complete = true;
        for t in tiles {
            if self.shown.get(&t.id) == Some(&(t.generation, t.rect)) {
                continue;
            }
            let mut bytes = cursor_to(t.rect);
            bytes.extend(place(t.id, &t.image, t.rect.width, t.rect.height));
            let first = idle && budget > 0 && !out.windows(3).any(|w| w == b"a=T");
            if out.len() + bytes.len() > budget && !first {
                complete = false;
                continue;
            }
            out.extend(bytes);
            self.shown.insert(t.id, (t.generation, t.rect));
        }
        if !out.is_empty() {
            // Save and restore the cursor around our moves: the screen
            // diff keeps its own idea of where the cursor is.
            let mut wrapped = b"\x1b7".to_vec();
            wrapped.extend(out);
            wrapped.extend_from_slice(b"\x1b8");
            out = wrapped;
        }
        (out, complete)
    }
}

impl std::fmt::Debug for TileImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TileImage")
            .field("id", &self.id)
            .field("generation", &self.generation)
            .field("rect", &self.rect)
            .field("size", &self.image.dimensions())
            .finish()
    }
}

fn cursor_to(rect: Rect) -> Vec<u8> {
    format!("\x1b[{};{}H", rect.y + 1, rect.x + 1).into_bytes()
}

/// A stable image id for a tile's key (never 0, which the protocol
/// reserves).
pub fn tile_id(key: &str) -> u32 {
    // FNV-1a: stable across runs, which ids need not be, but it keeps
    // traces readable.
    let mut h: u32 = 0x811c_9dc5;
    for b in key.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_payload(bytes: &[u8]) -> (String, Vec<u8>) {
        // Split into APC strings; collect keys of the first and all data.
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let mut first_keys = String::new();
        let mut data = String::new();
        for (i, apc) in text.split("\x1b_G").skip(1).enumerate() {
            let body = apc.split("\x1b\\").next().unwrap();
            let (keys, payload) = body.split_once(';').unwrap();
            if i == 0 {
                first_keys = keys.to_string();
            }
            data.push_str(payload);
        }
        let packed = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&packed).unwrap();
        (first_keys, raw)
    }

    #[test]
    fn a_placed_image_is_the_tiles_pixels_in_chunks_the_protocol_takes() {
        // Noise, so it doesn't compress into one chunk.
        let mut n: u32 = 7;
        let img = RgbImage::from_fn(160, 90, |_, _| {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            image::Rgb([(n >> 8) as u8, (n >> 16) as u8, (n >> 24) as u8])
        });
        let bytes = place(42, &img, 40, 12);
        let (keys, raw) = decode_payload(&bytes);
        assert_eq!(raw, img.as_raw().as_slice());
        assert!(keys.contains("a=T") && keys.contains("i=42") && keys.contains("o=z"));
        assert!(keys.contains("s=160") && keys.contains("v=90"));
        assert!(keys.contains("c=40") && keys.contains("r=12") && keys.contains("C=1"));
        let text = String::from_utf8(bytes).unwrap();
        let escapes: Vec<&str> = text.split("\x1b_G").skip(1).collect();
        assert!(escapes.len() > 1, "one chunk only: the test tests nothing");
        for (i, e) in escapes.iter().enumerate() {
            let (_, payload) = e.split_once(';').unwrap();
            let payload = payload.trim_end_matches("\x1b\\");
            assert!(payload.len() <= CHUNK);
            let last = i + 1 == escapes.len();
            assert_eq!(e.contains("m=1;"), !last, "chunk {i}");
        }
    }

    fn tile(id: u32, generation: u64, x: u16) -> TileImage {
        TileImage {
            id,
            generation,
            rect: Rect::new(x, 1, 10, 5),
            image: RgbImage::new(4, 4),
        }
    }

    #[test]
    fn only_new_pictures_are_sent_and_moved_or_gone_tiles_are_deleted() {
        let mut p = Placements::default();
        let (bytes, complete) = p.update(&[tile(1, 1, 0), tile(2, 1, 20)], usize::MAX, false);
        assert!(complete);
        assert_eq!(String::from_utf8_lossy(&bytes).matches("a=T").count(), 2);
        // Nothing new: nothing sent.
        assert!(p
            .update(&[tile(1, 1, 0), tile(2, 1, 20)], usize::MAX, false)
            .0
            .is_empty());
        // One new picture: that one.
        let (bytes, _) = p.update(&[tile(1, 2, 0), tile(2, 1, 20)], usize::MAX, false);
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(text.contains("i=1,") && !text.contains("i=2,"), "{text:?}");
        assert!(text.starts_with("\x1b7") && text.ends_with("\x1b8"));
        // Tile 2 moved and tile 1 left: both deleted, 2 placed again.
        let (bytes, _) = p.update(&[tile(2, 1, 30)], usize::MAX, false);
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(text.contains("a=d,d=I,i=1,") && text.contains("a=d,d=I,i=2,"));
        assert!(text.contains("\x1b[2;31H"), "{text:?}");
        // Over budget: not sent, and sent later.
        let (bytes, complete) = p.update(&[tile(2, 2, 30)], 10, false);
        assert!(bytes.is_empty() && !complete);
        // Unless the path is idle: then one goes whatever its size.
        let (bytes, _) = p.update(&[tile(2, 3, 30), tile(1, 3, 0)], 10, true);
        assert_eq!(String::from_utf8_lossy(&bytes).matches("a=T").count(), 1);
        assert!(!p.update(&[tile(2, 2, 30)], usize::MAX, false).0.is_empty());
    }

    #[test]
    fn tile_ids_are_stable_and_never_zero() {
        assert_eq!(tile_id("abc"), tile_id("abc"));
        assert_ne!(tile_id("abc"), tile_id("abd"));
        assert_ne!(tile_id(""), 0);
    }
}
