//! `streamflow bench …`: repeatable measurements, printed as a table or JSON.
//! Benchmarks are not tests: CI runs each once with tiny settings.

mod abuse;
mod audio;
mod browser;
pub mod chromium;
mod e2e;
pub mod firefox;
mod ladder;
mod local;
pub mod page;
mod picture;
mod relay;
pub mod shaper;
mod share;
pub mod speech;
pub mod stats;
mod thin;
pub mod throttle;
pub mod tty;
pub mod voice;
mod words;

use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(Subcommand)]
enum Which {
    /// Load a relay with R rooms × P peers sending F fps of B-byte frames.
    Relay(relay::RelayBenchArgs),
    /// The memory attacks together against a relay with a budget, while a
    /// canary room keeps a call going: peak RSS against the budget, and the
    /// canary's delivery and latency.
    Abuse(abuse::AbuseArgs),
    /// Per-stage cost of the media pipeline, per frame, both directions.
    Pipeline(local::LocalArgs),
    /// Half-block rendering: µs and bytes written per frame, per colour mode.
    Render(local::LocalArgs),
    /// Seal/open per frame size, Argon2id and handshake cost per join.
    Crypto(local::LocalArgs),
    /// N headless members through an embedded relay: glass-to-glass latency.
    E2e(e2e::E2eArgs),
    /// A ~200 kbit/s link on the sender's uplink, then on one receiver:
    /// delay and fps with adaptation on and off.
    Thin(thin::ThinArgs),
    /// The TUI behind a thin terminal link (emulated, or real SSH):
    /// keystroke → screen latency, frames shown, age of the shown video.
    Tty(tty::TtyArgs),
    /// Picture rungs replayed over simulated terminal links: which shows
    /// the most at each rate (the quality ladder's order and thresholds).
    Ladder(ladder::LadderArgs),
    /// Voice: mouth-to-ear latency (loopback and a jittery link), wire
    /// bitrate per stream, CPU per member with video and voice.
    Audio(audio::AudioArgs),
    /// What the safety words' rounds cost: time until everyone shows the
    /// same words after a join or leave, handshakes and messages per change.
    Words(words::WordsArgs),
    /// Each cell mode (half blocks, quadrants, sextants) against the source
    /// picture at full resolution: SSIM, mean error, bytes per frame.
    Picture(picture::PictureArgs),
    /// A browser member (headless Chromium, fake camera) and N terminal
    /// members: frame latency and fps both ways, the page's CPU, the
    /// WebAssembly's size, page load → verified.
    Browser(browser::BrowserBenchArgs),
    /// A shared terminal through a loopback relay: sharer key → viewer's
    /// screen, bytes per viewer for vi, top and a 10 MB cat, and video's
    /// frame rate while a share scrolls.
    Share(share::ShareBenchArgs),
}

pub async fn run(args: BenchArgs) -> ExitCode {
    let result = match args.which {
        Which::Relay(a) => relay::run(a).await,
        Which::Abuse(a) => abuse::run(a).await,
        Which::Pipeline(a) => local::pipeline(a),
        Which::Render(a) => local::render(a),
        Which::Crypto(a) => local::crypto(a),
        Which::E2e(a) => e2e::run(a).await,
        Which::Thin(a) => thin::run(a).await,
        Which::Tty(a) => tty::run(a).await,
        Which::Ladder(a) => ladder::run(a),
        Which::Audio(a) => audio::run(a).await,
        Which::Words(a) => words::run(a).await,
        Which::Share(a) => share::run(a).await,
        Which::Picture(a) => picture::run(a),
        Which::Browser(a) => browser::run(a).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamflow bench: {e:#}");
            let code = if e.is::<Usage>() {
                crate::session::exit::USAGE
            } else {
                crate::session::exit::ERROR
            };
            ExitCode::from(code)
        }
    }
}

/// A combination of flags that can't work (exit 2, like clap's own errors).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}
