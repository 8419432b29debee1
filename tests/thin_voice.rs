//! Voice first, for real: a listener (or a speaker) behind a thin link,
//! with two members sending video, judged by what the listener hears.
//!
//! The link is the bench's emulator on real TCP: a token bucket at the
//! rate, a fixed one-way delay, a 200 ms router queue and a 16 KiB receive
//! buffer towards the relay, so the bottleneck pushes back on the relay as
//! a real one does. Speech (espeak-ng) goes through Opus, sealing, the real
//! relay, the jitter buffer and the mix into a recording, scored with STOI.
//! The bounds leave at least twice the margin over what this machine
//! measures (`streamflow bench audio --thin`, BENCHMARKS.md); before the
//! relay's flow control the same 400 kbit/s link gave 3.8 s of playout
//! delay, 91 % concealed and frames 3.2 s old.

use std::path::PathBuf;
use std::time::Duration;

use streamflow::bench::voice::{listen, Heard, Thin, SPEECH};

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sf-thin-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The call through `thin`, or None outside CI when espeak-ng is missing.
fn heard(tag: &str, thin: Thin) -> Option<Heard> {
    let dir = scratch(tag);
    let wav = dir.join("speech.wav");
    if let Err(e) = streamflow::bench::speech::espeak(&wav, SPEECH) {
        let problem = format!("could not make speech ({e}); scripts/install-deps installs it");
        assert!(std::env::var_os("CI").is_none(), "{problem}");
        eprintln!("skipped: {problem}");
        return None;
    }
    let speech = streamflow::media::audio::wav::read(&wav).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let heard = rt
        .block_on(listen(thin, Duration::from_secs(4), 10, &speech, &dir))
        .expect("the call");
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "{tag}: STOI {:.2}, playout p50 {:.0} max {:.0} ms, concealed {:.2} %, fps {:?}, \
         frame p95 {:.0} ms, paused in {} out {}",
        heard.stoi,
        heard.playout_p50(),
        heard.playout_max(),
        heard.concealed_percent,
        heard.fps,
        heard.frame_latency_p95(),
        heard.video_paused_in,
        heard.speaker_video_paused_out,
    );
    Some(heard)
}

/// What a person needs of the voice: understood (STOI; 0.99 unshaped),
/// little of it concealed, and not late.
fn assert_voice_holds(h: &Heard, max_playout_ms: f64) {
    assert!(
        h.stoi >= 0.85,
        "speech no longer intelligible: STOI {:.2}",
        h.stoi
    );
    assert!(
        h.concealed_percent <= 5.0,
        "{:.1} % of the voice concealed",
        h.concealed_percent
    );
    assert!(
        h.playout_max() <= max_playout_ms,
        "voice played {:.0} ms after capture (p50 {:.0})",
        h.playout_max(),
        h.playout_p50()
    );
}

/// The case: 400 kbit/s, 40 ms each way. Measured here: STOI
/// 0.94–0.98, playout 140–170 ms, under 1 % concealed, 6.5 fps from each
/// sender, frames ~150 ms old.
#[test]
fn voice_stays_first_and_video_fresh_behind_a_400k_downlink() {
    let Some(h) = heard("400k", Thin::Down(400e3, Duration::from_millis(40))) else {
        return;
    };
    assert_voice_holds(&h, 400.0);
    // Video gives way, but stays fresh and keeps moving.
    let p95 = h.frame_latency_p95();
    assert!(
        p95 <= 400.0,
        "frames arrive {p95:.0} ms after capture (p95)"
    );
    assert!(
        h.fps[0] >= 2.0,
        "video from a sender stalled: {:?} fps",
        h.fps
    );
}

/// Too thin for any video at these sizes (160 kbit/s, 80 ms each way): the
/// voice holds, and the listener is told its video is paused rather than
/// left looking at a frozen picture.
#[test]
fn a_downlink_too_thin_for_video_pauses_it_and_keeps_the_voice() {
    let Some(h) = heard("160k", Thin::Down(160e3, Duration::from_millis(80))) else {
        return;
    };
    assert_voice_holds(&h, 500.0);
    assert!(
        h.video_paused_in,
        "the listener wasn't told video is paused"
    );
    assert!(h.fps[1] <= 1.0, "video still sent: {:?} fps", h.fps);
}

/// The speaker's own uplink is the thin one (300 kbit/s, 40 ms): its
/// video gives way to its voice in the client, before the relay.
#[test]
fn a_thin_uplink_sends_voice_first() {
    let Some(h) = heard("up300k", Thin::Up(300e3, Duration::from_millis(40))) else {
        return;
    };
    assert_voice_holds(&h, 400.0);
    assert!(h.fps[0] >= 2.0, "a sender's video stalled: {:?} fps", h.fps);
}
