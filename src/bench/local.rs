//! In-process benchmarks: crypto, the media pipeline, and rendering.

use std::io::Write;
use std::time::Instant;

use base64::Engine;
use clap::Args;
use streamflow_relay::protocol::{ClientMessage, Kind, ServerMessage};

use super::stats::{median, time_us, Report};
use crate::crypto::frame::{FramePlaintext, Stream};
use crate::crypto::kdf::{derive_psk, KdfParams};
use crate::crypto::keyring::SenderKeyring;
use crate::crypto::pairwise::{Handshake, LocalIdentity};
use crate::crypto::secret::Key32;
use crate::crypto::sframe::SenderKey;
use crate::crypto::sign::{verify_frame, SigningIdentity};
use crate::media::pattern::TestPattern;
use crate::media::{jpeg, scale};
use crate::tui::render::ColourMode;
use crate::tui::screen::Screen;

#[derive(Args)]
pub struct LocalArgs {
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 300)]
    iterations: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub fn crypto(args: LocalArgs) -> anyhow::Result<()> {
    let mut report = Report::new("bench crypto (median per operation)");
    let metadata = b"room-id-and-sender-key-metadata-0123456789abcdef";
    for size in [2 * 1024, 8 * 1024, 64 * 1024] {
        let payload = vec![0x5au8; size];
        let mut tx = SenderKey::new(0, Key32::from_bytes([7; 32]));
        let seal = time_us(args.iterations, || {
            std::hint::black_box(tx.seal(metadata, &payload));
        });
        let frames: Vec<Vec<u8>> = (0..args.iterations + 1)
            .map(|_| tx.seal(metadata, &payload))
            .collect();
        let mut rx = SenderKeyring::default();
        let now = Instant::now();
        rx.deliver(0, Key32::from_bytes([7; 32]), now);
        let mut i = 0;
        let open = time_us(args.iterations, || {
            std::hint::black_box(rx.open(&frames[i], metadata, now, || true).ok());
            i += 1;
        });
        report.row(format!("seal_{}k_us", size / 1024), seal, "µs");
        report.row(format!("open_{}k_us", size / 1024), open, "µs");
    }
    // Per-sender signatures: what every sealed frame adds on each side.
    let signer = SigningIdentity::generate(&mut rand_core::OsRng);
    let e = [3u8; 32];
    let frame = SenderKey::new(0, Key32::from_bytes([7; 32])).seal(metadata, &[0x5a; 2048]);
    let sign = time_us(args.iterations, || {
        std::hint::black_box(signer.sign_frame("room", &e, &frame));
    });
    let signature = signer.sign_frame("room", &e, &frame);
    let public = signer.public();
    let verify = time_us(args.iterations, || {
        std::hint::black_box(verify_frame(&public, "room", &e, &frame, &signature).is_ok());
    });
    report.row("sign_frame_2k_us", sign, "µs (Ed25519, per frame sent)");
    report.row(
        "verify_frame_2k_us",
        verify,
        "µs (Ed25519 strict, per frame received)",
    );
    report.row(
        "verify_10x30fps_core_percent",
        verify * 300.0 / 1e4,
        "% of a core: 10 senders × 30 fps received",
    );
    let argon_runs = (args.iterations / 100).clamp(1, 5);
    let argon = time_us(argon_runs, || {
        std::hint::black_box(derive_psk("k7f3m2q9xw4hd8ta", "a-b-c-d-e", KdfParams::V1).ok());
    });
    report.row(
        "argon2id_join_ms",
        argon / 1000.0,
        "ms (m=64 MiB, t=3, p=1)",
    );
    let psk = Key32::from_bytes([1; 32]);
    let mut rng = rand_core::OsRng;
    let handshake = time_us(args.iterations.min(200), || {
        let a = LocalIdentity::generate(&mut rng, [1; 32]);
        let b = LocalIdentity::generate(&mut rng, [2; 32]);
        let (ha, ma) = Handshake::start(&a, &b.hello(), "room", &psk, &mut rng);
        let (hb, mb) = Handshake::start(&b, &a.hello(), "room", &psk, &mut rng);
        let (ca, confirm_a) = ha.finish(&a, &mb).expect("same psk");
        let (cb, confirm_b) = hb.finish(&b, &ma).expect("same psk");
        assert!(cb.verify_confirm(&confirm_a).is_ok() && ca.verify_confirm(&confirm_b).is_ok());
    });
    report.row(
        "handshake_pair_us",
        handshake,
        "µs (both sides of one pair)",
    );
    report.print(args.json);
    Ok(())
}

pub fn pipeline(args: LocalArgs) -> anyhow::Result<()> {
    let pattern = TestPattern::new("bench");
    let tile = (80u32, 48u32);
    let camera = pattern.render_at(1.0, 640, 384);
    let mut report = Report::new(format!(
        "bench pipeline (median µs per frame, {}x{} px tile)",
        tile.0, tile.1
    ));
    let mut t = 0.0f32;
    let capture_scale = time_us(args.iterations, || {
        t += 1.0 / 30.0;
        std::hint::black_box(scale::scale_to_fit(&camera, tile));
    });
    let frame = scale::scale_to_fit(&pattern.render_at(2.0, 640, 384), tile);
    let encode = time_us(args.iterations, || {
        std::hint::black_box(jpeg::encode(&frame, jpeg::DEFAULT_QUALITY));
    });
    let jpg = jpeg::encode(&frame, jpeg::DEFAULT_QUALITY);
    let strip = time_us(args.iterations, || {
        std::hint::black_box(jpeg::strip_tables(&jpg));
    });
    let stripped = jpeg::strip_tables(&jpg).unwrap_or_else(|| jpg.clone());
    let plaintext = FramePlaintext {
        timestamp_us: 1,
        stream: Stream::Video,
        flags: 1,
        payload: crate::session::video::encode(0, &stripped),
    };
    let metadata = [0u8; 56];
    let mut tx = SenderKey::new(0, Key32::from_bytes([3; 32]));
    let seal = time_us(args.iterations, || {
        std::hint::black_box(tx.seal(&metadata, &plaintext.encode()));
    });
    let sealed = tx.seal(&metadata, &plaintext.encode());
    let to_json = || {
        ClientMessage::Send {
            kind: Kind::Media,
            to: None,
            data: B64.encode(&sealed).into(),
        }
        .to_json()
    };
    let b64_json = time_us(args.iterations, || {
        std::hint::black_box(to_json());
    });
    let blob = ServerMessage::Blob {
        from: "0123456789abcdef".into(),
        kind: Kind::Media,
        data: B64.encode(&sealed).into(),
    }
    .to_json();
    let json_b64_back = time_us(args.iterations, || {
        if let Ok(ServerMessage::Blob { data, .. }) = ServerMessage::parse(&blob) {
            std::hint::black_box(B64.decode(data.as_bytes()).ok());
        }
    });
    let frames: Vec<Vec<u8>> = (0..args.iterations + 1)
        .map(|_| tx.seal(&metadata, &plaintext.encode()))
        .collect();
    let mut rx = SenderKeyring::default();
    let now = Instant::now();
    rx.deliver(0, Key32::from_bytes([3; 32]), now);
    let mut i = 0;
    let open = time_us(args.iterations, || {
        let opened = rx.open(&frames[i], &metadata, now, || true).ok();
        std::hint::black_box(opened.map(|o| FramePlaintext::decode(&o.plaintext)));
        i += 1;
    });
    let decode = time_us(args.iterations, || {
        let full = jpeg::restore_tables(&stripped).unwrap_or_default();
        std::hint::black_box(jpeg::decode(&full).ok());
    });
    let decoded = jpeg::decode(&jpg)?;
    let to_tile = time_us(args.iterations, || {
        std::hint::black_box(scale::scale_to_fit(&decoded, (120, 72)));
    });
    report.row("capture_scale_us", capture_scale, "µs (640x384 → tile)");
    report.row("jpeg_encode_us", encode, "µs");
    report.row("strip_tables_us", strip, "µs");
    report.row("seal_us", seal, "µs");
    report.row("base64_json_us", b64_json, "µs");
    report.row("json_base64_back_us", json_b64_back, "µs");
    report.row("open_us", open, "µs");
    report.row("jpeg_decode_us", decode, "µs (tables restored first)");
    report.row("scale_to_tile_us", to_tile, "µs");
    report.row(
        "total_us",
        capture_scale + encode + strip + seal + b64_json + json_b64_back + open + decode + to_tile,
        "µs",
    );
    let wire = to_json().len();
    report.row("jpeg_bytes", jpg.len() as f64, "B");
    report.row(
        "jpeg_bytes_on_wire",
        stripped.len() as f64,
        "B (standard Huffman tables stripped)",
    );
    report.row("wire_bytes", wire as f64, "B (sealed + base64 + JSON)");
    report.row(
        "wire_kbit_per_s_at_30fps",
        wire as f64 * 8.0 * 30.0 / 1000.0,
        "kbit/s",
    );
    report.print(args.json);
    Ok(())
}

/// A 160×48 terminal showing 4 peers with the moving test pattern, drawn
/// and encoded exactly as the TUI does (no window: every change is sent).
pub fn render(args: LocalArgs) -> anyhow::Result<()> {
    use crate::tui::app::App;
    let mut report = Report::new("bench render (160x48 grid, 4 moving peers, median per frame)");
    let names = ["Ada", "Grace", "Linus", "Edsger"];
    let patterns: Vec<TestPattern> = names.iter().map(|n| TestPattern::new(n)).collect();
    let area = ratatui::layout::Rect::new(0, 0, 160, 48);
    for mode in [
        ColourMode::TrueColor,
        ColourMode::Ansi256,
        ColourMode::Ansi16,
        ColourMode::Mono,
    ] {
        let mut screen = Screen::new(area);
        let mut back = ratatui::buffer::Buffer::empty(area);
        let mut app = App::new("bench", mode, None);
        app.me.camera = crate::session::state::Camera::Off;
        let mut tile_px = (80u32, 48u32);
        let mut micros = Vec::new();
        let mut bytes = Vec::new();
        let frames = args.iterations.max(40);
        for f in 0..frames {
            let t = f as f32 / 30.0;
            for (i, p) in patterns.iter().enumerate() {
                let img = p.render_at(t, tile_px.0, tile_px.1);
                app.feed_frame(
                    &format!("peer{i}"),
                    names[i],
                    jpeg::encode(&img, jpeg::DEFAULT_QUALITY),
                );
            }
            let started = Instant::now();
            back.reset();
            let drawn = crate::tui::ui::draw_into(area, &mut back, &mut app);
            let frame = screen.render(&back, &drawn.regions, usize::MAX);
            let mut sink = std::io::sink();
            sink.write_all(&frame.bytes)?;
            // Skip the first frames: steady state only.
            if f >= 10 {
                micros.push(started.elapsed().as_secs_f64() * 1e6);
                bytes.push(frame.bytes.len() as f64);
            }
            if drawn.largest.0 > 0 {
                tile_px = drawn.largest;
            }
        }
        let label = match mode {
            ColourMode::TrueColor => "truecolor",
            ColourMode::Ansi256 => "256",
            ColourMode::Ansi16 => "16",
            ColourMode::Mono => "mono",
        };
        report.row(
            format!("{label}_us_per_frame"),
            median(&mut micros),
            "µs (decode + scale + draw + diff + encode)",
        );
        report.row(format!("{label}_bytes_per_frame"), median(&mut bytes), "B");
    }
    report.note("bytes are what the terminal receives: the changed cells after colour hysteresis, with DEC 2026 markers");
    report.print(args.json);
    Ok(())
}
