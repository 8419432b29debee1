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
//! - Shared memory (`t=s`): where the terminal reads a picture from a
//!   POSIX shared-memory object of ours (it runs on this machine; asked by
//!   [`shm_query`]), pictures go that way, raw, and only the object's name
//!   goes through the terminal path. The terminal unlinks each object once
//!   read; whatever it didn't read is removed when we leave.
//! - The cells under an image are blank text cells, so the diffing screen
//!   and the closed-loop pacing work as in the cell modes.
//! - [`Placements`] also places sixel pictures ([`super::sixel`]), which
//!   have no ids: the renderer clears the screen when one must go.

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

/// About the bytes of a shared-memory placement (a name, no pixels).
const SHARED_ESCAPE: usize = 160;
/// The id the shared-memory query uses.
pub const SHM_QUERY_ID: &str = "i=32";
/// Where POSIX shared-memory objects live on Linux (`shm_open("/x")` is
/// `/dev/shm/x`).
const SHM_DIR: &str = "/dev/shm";

/// Our objects' names: `/streamflow-PID-N`.
fn shm_prefix() -> String {
    format!("streamflow-{}-", std::process::id())
}

/// Writes `bytes` to a new shared-memory object (readable by us only) and
/// returns its name as `shm_open` takes it.
fn shm_write(bytes: &[u8]) -> std::io::Result<String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{}{n}", shm_prefix());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("{SHM_DIR}/{name}"))?;
    file.write_all(bytes)?;
    Ok(format!("/{name}"))
}

/// Removes the shared-memory objects the terminal didn't read (when
/// leaving; it unlinks those it read).
pub fn shm_sweep() {
    let prefix = shm_prefix();
    let Ok(dir) = std::fs::read_dir(SHM_DIR) else {
        return;
    };
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The shared-memory query: a 1×1 picture in an object of ours, "query
/// only", id 32. A terminal on this machine that speaks the protocol
/// answers OK; one elsewhere answers with an error; others ignore it.
pub fn shm_query() -> Option<Vec<u8>> {
    let name = shm_write(&[0, 0, 0]).ok()?;
    let data = base64::engine::general_purpose::STANDARD.encode(name);
    Some(format!("\x1b_Gi=32,s=1,v=1,a=q,t=s,f=24;{data}\x1b\\").into_bytes())
}

/// The escape that shows the picture in shared-memory object `name`
/// (`len` bytes of w×h RGB) like [`place`].
fn place_shared(
    id: u32,
    (w, h): (u32, u32),
    len: usize,
    name: &str,
    cols: u16,
    rows: u16,
) -> Vec<u8> {
    let data = base64::engine::general_purpose::STANDARD.encode(name);
    format!(
        "\x1b_Ga=T,f=24,t=s,s={w},v={h},S={len},i={id},p=1,c={cols},r={rows},C=1,q=2;{data}\x1b\\"
    )
    .into_bytes()
}

/// Shared-memory objects written lately, to find any the terminal left
/// unread (it unlinks what it reads).
#[derive(Default)]
struct SharedObjects {
    recent: std::collections::VecDeque<String>,
    unread: u32,
}

impl SharedObjects {
    /// More than a window's worth of pictures: an object this far back
    /// was read by now, or never will be.
    const KEEP: usize = 64;
    /// Unread objects before shared memory is given up for the call.
    const GIVE_UP: u32 = 3;

    fn usable(&self) -> bool {
        self.unread < Self::GIVE_UP
    }

    /// The escape for `tile` through a new object, or None if the object
    /// can't be written.
    fn place(&mut self, tile: &TileImage) -> Option<Vec<u8>> {
        let raw = tile.image.as_raw();
        let name = shm_write(raw).ok()?;
        let (cols, rows) = (tile.rect.width, tile.rect.height);
        let bytes = place_shared(
            tile.id,
            tile.image.dimensions(),
            raw.len(),
            &name,
            cols,
            rows,
        );
        self.recent.push_back(name);
        while self.recent.len() > Self::KEEP {
            let old = self.recent.pop_front().unwrap_or_default();
            // Still there: the terminal didn't take it.
            if std::fs::remove_file(format!("{SHM_DIR}{old}")).is_ok() {
                self.unread += 1;
            }
        }
        Some(bytes)
    }
}

/// Deletes image `id` and frees its data.
pub fn delete(id: u32) -> Vec<u8> {
    format!("\x1b_Ga=d,d=I,i={id},q=2\x1b\\").into_bytes()
}

/// How pictures reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Kitty,
    /// Kitty's, with pictures through shared memory.
    KittyShared,
    Sixel(super::sixel::SixelTerminal),
}

/// What the terminal shows, so only new pictures are sent.
#[derive(Default)]
pub struct Placements {
    shown: HashMap<u32, (u64, Rect)>,
    /// When each tile's picture last went (a count of placements): the
    /// longest-waiting goes first, so a window that carries one picture a
    /// frame still shows every tile in turn.
    placed_at: HashMap<u32, u64>,
    placements: u64,
    /// The screen was redrawn whole: delete whatever may be left first.
    clear: bool,
    shared: SharedObjects,
}

impl Placements {
    /// The terminal's screen is redrawn whole (resize, resume): every
    /// picture goes again, after deleting whatever was left.
    pub fn forget(&mut self) {
        self.clear = !self.shown.is_empty();
        self.shown.clear();
    }

    /// The escape sequences that show `tile`'s picture at its cells.
    fn place(&mut self, tile: &TileImage, protocol: Protocol) -> Vec<u8> {
        let mut bytes = cursor_to(tile.rect);
        let (cols, rows) = (tile.rect.width, tile.rect.height);
        let shared = match protocol {
            Protocol::KittyShared if self.shared.usable() => self.shared.place(tile),
            _ => None,
        };
        match (shared, protocol) {
            (Some(shared), _) => bytes.extend(shared),
            (None, Protocol::Sixel(t)) => bytes.extend(t.place(&tile.image, cols, rows)),
            (None, _) => bytes.extend(place(tile.id, &tile.image, cols, rows)),
        }
        bytes
    }

    /// Nothing to send: no pictures shown and none to show.
    pub fn idle(&self, tiles: &[TileImage]) -> bool {
        tiles.is_empty() && self.shown.is_empty() && !self.clear
    }

    /// A picture shown is gone or elsewhere (sixel can't delete it: the
    /// screen must be drawn whole).
    pub fn moved(&self, tiles: &[TileImage]) -> bool {
        !self.gone(tiles).is_empty()
    }

    /// The pictures shown that no tile shows any more, or shows elsewhere.
    fn gone(&self, tiles: &[TileImage]) -> Vec<u32> {
        self.shown
            .iter()
            .filter(|(id, (_, rect))| !tiles.iter().any(|t| t.id == **id && t.rect == *rect))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Deletes what no tile shows any more (or shows elsewhere), and places
    /// the tiles' new pictures while they fit in `budget` bytes (the rest
    /// wait for the next frame; with `idle`, little is in flight to the
    /// terminal and one picture goes even if larger, or a picture larger
    /// than the window would never go). Returns the bytes, and whether every new
    /// picture went.
    pub fn update(
        &mut self,
        tiles: &[TileImage],
        budget: usize,
        idle: bool,
        protocol: Protocol,
    ) -> (Vec<u8>, bool) {
        let kitty = matches!(protocol, Protocol::Kitty | Protocol::KittyShared);
        let mut out = Vec::new();
        if std::mem::take(&mut self.clear) && kitty {
            out.extend_from_slice(DELETE_ALL);
        }
        for id in self.gone(tiles) {
            self.shown.remove(&id);
            self.placed_at.remove(&id);
            if kitty {
                out.extend(delete(id));
            }
        }
        let mut complete = true;
        let mut placed = false;
        let mut waiting: Vec<&TileImage> = tiles
            .iter()
            .filter(|t| self.shown.get(&t.id) != Some(&(t.generation, t.rect)))
            .collect();
        waiting.sort_by_key(|t| self.placed_at.get(&t.id).copied().unwrap_or(0));
        for t in waiting {
            let first = idle && budget > 0 && !placed;
            if protocol == Protocol::KittyShared && out.len() + SHARED_ESCAPE > budget && !first {
                // Not even the name fits: no object written.
                complete = false;
                continue;
            }
            let bytes = self.place(t, protocol);
            if out.len() + bytes.len() > budget && !first {
                complete = false;
                continue;
            }
            placed = true;
            out.extend(bytes);
            self.shown.insert(t.id, (t.generation, t.rect));
            self.placements += 1;
            self.placed_at.insert(t.id, self.placements);
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
        let (bytes, complete) = p.update(
            &[tile(1, 1, 0), tile(2, 1, 20)],
            usize::MAX,
            false,
            Protocol::Kitty,
        );
        assert!(complete);
        assert_eq!(String::from_utf8_lossy(&bytes).matches("a=T").count(), 2);
        // Nothing new: nothing sent.
        assert!(p
            .update(
                &[tile(1, 1, 0), tile(2, 1, 20)],
                usize::MAX,
                false,
                Protocol::Kitty
            )
            .0
            .is_empty());
        // One new picture: that one.
        let (bytes, _) = p.update(
            &[tile(1, 2, 0), tile(2, 1, 20)],
            usize::MAX,
            false,
            Protocol::Kitty,
        );
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(text.contains("i=1,") && !text.contains("i=2,"), "{text:?}");
        assert!(text.starts_with("\x1b7") && text.ends_with("\x1b8"));
        // Tile 2 moved and tile 1 left: both deleted, 2 placed again.
        let (bytes, _) = p.update(&[tile(2, 1, 30)], usize::MAX, false, Protocol::Kitty);
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(text.contains("a=d,d=I,i=1,") && text.contains("a=d,d=I,i=2,"));
        assert!(text.contains("\x1b[2;31H"), "{text:?}");
        // Over budget: not sent, and sent later.
        let (bytes, complete) = p.update(&[tile(2, 2, 30)], 10, false, Protocol::Kitty);
        assert!(bytes.is_empty() && !complete);
        // Unless the path is idle: then one goes whatever its size.
        let (bytes, _) = p.update(&[tile(2, 3, 30), tile(1, 3, 0)], 10, true, Protocol::Kitty);
        assert_eq!(String::from_utf8_lossy(&bytes).matches("a=T").count(), 1);
        assert!(!p
            .update(&[tile(2, 2, 30)], usize::MAX, false, Protocol::Kitty)
            .0
            .is_empty());
    }

    /// A window that carries one picture a frame shows every tile in turn,
    /// not the first one over and over.
    #[test]
    fn the_longest_waiting_picture_goes_first() {
        let mut p = Placements::default();
        let mut seen = Vec::new();
        for generation in 1..=6 {
            let tiles: Vec<TileImage> = (1..=3)
                .map(|id| tile(id, generation, id as u16 * 12))
                .collect();
            let (bytes, _) = p.update(&tiles, 1, true, Protocol::Kitty);
            let text = String::from_utf8_lossy(&bytes).to_string();
            let id = (1..=3)
                .find(|id| text.contains(&format!("i={id},")))
                .unwrap();
            seen.push(id);
        }
        assert_eq!(seen, [1, 2, 3, 1, 2, 3]);
    }

    /// Sixel pictures go at the tile's cell, as DCS strings; a moved tile
    /// is reported (the renderer redraws the screen whole).
    #[test]
    fn sixel_pictures_are_placed_and_moves_reported() {
        let sixel = Protocol::Sixel(crate::tui::sixel::SixelTerminal {
            cell: (6, 12),
            registers: 16,
        });
        let mut p = Placements::default();
        let (bytes, complete) = p.update(&[tile(1, 1, 0)], usize::MAX, false, sixel);
        let text = String::from_utf8_lossy(&bytes).to_string();
        assert!(
            complete && text.contains("\x1b[2;1H\x1bP0;1;0q\"1;1;60;60"),
            "{text:?}"
        );
        assert!(!p.moved(&[tile(1, 2, 0)]));
        assert!(p.moved(&[tile(1, 2, 5)]) && p.moved(&[]));
    }

    /// Pictures through shared memory: the escape names an object holding
    /// the raw picture; objects nobody reads are removed, and after a few
    /// shared memory is given up (a terminal elsewhere would never read
    /// them, and they are memory).
    #[test]
    fn shared_memory_pictures_name_their_object_and_unread_ones_are_given_up() {
        let mut p = Placements::default();
        let mut t = tile(9, 1, 0);
        t.image = RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]));
        let (bytes, _) = p.update(&[t.clone()], usize::MAX, false, Protocol::KittyShared);
        let text = String::from_utf8(bytes).unwrap();
        let payload = text
            .split(';')
            .next_back()
            .unwrap()
            .trim_end_matches("\x1b\\\x1b8");
        assert!(text.contains("t=s,s=4,v=4,S=48,i=9,"), "{text:?}");
        let name = base64::engine::general_purpose::STANDARD
            .decode(payload)
            .unwrap();
        let path = format!("{SHM_DIR}{}", String::from_utf8(name).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), [1, 2, 3].repeat(16));
        // Nobody reads them: after KEEP more, they are removed and counted.
        let mut generation = 1;
        while p.shared.usable() {
            generation += 1;
            t.generation = generation;
            let (bytes, _) = p.update(&[t.clone()], usize::MAX, false, Protocol::KittyShared);
            assert!(String::from_utf8_lossy(&bytes).contains("t=s"));
            assert!(generation < 100, "never given up");
        }
        assert!(!std::path::Path::new(&path).exists());
        // Then pictures go through the terminal path.
        t.generation += 1;
        let (bytes, _) = p.update(&[t], usize::MAX, false, Protocol::KittyShared);
        assert!(String::from_utf8_lossy(&bytes).contains("o=z"));
        shm_sweep();
    }

    #[test]
    fn tile_ids_are_stable_and_never_zero() {
        assert_eq!(tile_id("abc"), tile_id("abc"));
        assert_ne!(tile_id("abc"), tile_id("abd"));
        assert_ne!(tile_id(""), 0);
    }
}
