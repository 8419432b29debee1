//! Command line: one binary, one subcommand per job (DESIGN.md §1).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use streamflow_relay::RelayConfig;

use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::source::SourceSpec;
use crate::room::Timings;
use crate::session::{exit, SessionConfig};

/// End-to-end encrypted video calls in your terminal.
///
/// Everything you send is sealed with keys only the people holding the invite
/// can derive; the relay in the middle forwards blobs it cannot read.
///
/// Try it:      streamflow demo
/// Host a call: streamflow host          (prints an invite for the others)
/// Join one:    streamflow join INVITE --relay ws://HOST:8787
#[derive(Parser)]
#[command(name = "streamflow", version, about, long_about, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// A call with three synthetic peers on a built-in relay: the first thing to try.
    Demo(DemoArgs),
    /// Start a relay here, print an invite for the others, and join the call.
    Host(HostArgs),
    /// Join a call with an invite (ROOM-SECRET).
    Join(JoinArgs),
    /// Print a fresh invite (alone on stdout line 1).
    Invite(InviteArgs),
    /// Run the relay alone (same program and flags as `streamflow-relay`).
    Relay(RelayConfig),
    /// Measure the relay, the media pipeline, the renderer and the crypto.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Clone)]
pub struct MediaArgs {
    /// Your name, shown to the others (sent end-to-end encrypted).
    #[arg(long, env = "STREAMFLOW_NAME")]
    pub name: Option<String>,
    /// Video source: `camera[:N]`, `test` (moving test pattern), `none`
    /// (view only), or a file (MJPEG stream or directory of JPEGs, looped).
    #[arg(long, default_value = "camera")]
    pub source: SourceSpec,
    /// Frames per second to send (the most; adaptation may send fewer).
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Don't adapt quality, frame rate and size to the network.
    #[arg(long)]
    pub fixed_quality: bool,
}

#[derive(Args)]
pub struct JoinArgs {
    /// The invite, ROOM-SECRET (e.g. k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift).
    /// Also read from STREAMFLOW_INVITE or --invite-file; asked for (hidden) if absent.
    /// With --room, just the secret words.
    pub invite: Option<String>,
    /// Relay URL (ws:// or wss://); repeat to give fallbacks, tried in order.
    #[arg(long = "relay", default_value = "ws://127.0.0.1:8787")]
    pub relays: Vec<String>,
    /// Read the invite from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub invite_file: Option<PathBuf>,
    /// Join the room with this name; the invite argument is then only the secret.
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    #[command(flatten)]
    pub media: MediaArgs,
    /// No TUI: print events as JSON lines on stdout (for scripts and tests).
    #[arg(long)]
    pub headless: bool,
    /// Tile size in pixels to ask senders for (headless; the TUI uses its own).
    #[arg(long, default_value = "80x48", value_parser = parse_size)]
    pub tile: (u32, u32),
    /// Leave after this many seconds and exit 0.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Send this chat message once, at half of --duration.
    #[arg(long, value_name = "TEXT")]
    pub send_chat: Option<String>,
    /// Colour mode: truecolor, 256, 16 or mono (default: from COLORTERM/NO_COLOR).
    #[arg(long)]
    pub colour: Option<crate::tui::render::ColourMode>,
    /// Treat the relay as gone after this long without a word from it (not
    /// even a pong), then reconnect. Catches half-open connections.
    #[arg(long, default_value = "20s", value_parser = streamflow_relay::config::parse_duration, value_name = "DURATION")]
    pub liveness_timeout: Duration,
}

#[derive(Args)]
pub struct HostArgs {
    /// Where the built-in relay listens. Use 0.0.0.0:8787 to accept others
    /// from the network (loopback suffices when everyone is on this machine,
    /// e.g. over SSH).
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: std::net::SocketAddr,
    /// Name the room instead of a random nameplate.
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    #[command(flatten)]
    pub media: MediaArgs,
    #[arg(long)]
    pub colour: Option<crate::tui::render::ColourMode>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Your video: the test pattern by default; `camera` to see yourself.
    #[arg(long, default_value = "test")]
    pub source: SourceSpec,
    #[arg(long, default_value = "you")]
    pub name: String,
    #[arg(long)]
    pub colour: Option<crate::tui::render::ColourMode>,
}

#[derive(Args)]
pub struct InviteArgs {
    /// Name the room instead of a random nameplate (a-z 0-9 _).
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
}

pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT, e.g. 80x48"))?;
    let w: u32 = w
        .trim()
        .parse()
        .map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h
        .trim()
        .parse()
        .map_err(|_| format!("bad height in {s:?}"))?;
    if !(8..=4096).contains(&w) || !(8..=4096).contains(&h) {
        return Err("tile sizes are 8..4096 pixels each way".into());
    }
    Ok((w, h))
}

pub fn default_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "guest".into())
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("streamflow: {message}");
    ExitCode::from(code)
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::ERROR, format!("cannot start the async runtime: {e}")),
    };
    match cli.command {
        Command::Relay(config) => {
            streamflow_relay::init_logging();
            match runtime.block_on(streamflow_relay::run(config)) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => fail(exit::ERROR, format!("{e:#}")),
            }
        }
        Command::Invite(args) => invite(args),
        Command::Join(args) => runtime.block_on(join(args)),
        Command::Host(args) => runtime.block_on(crate::tui::host(args)),
        Command::Demo(args) => runtime.block_on(crate::tui::demo(args)),
        Command::Bench(args) => runtime.block_on(crate::bench::run(args)),
    }
}

fn invite(args: InviteArgs) -> ExitCode {
    let mut rng = rand_core::OsRng;
    let invite = match args.room {
        Some(room) => match crate::invite::validate_room_name(&room) {
            Ok(room) => Invite::generate_in_room(room, &mut rng),
            Err(e) => return fail(exit::USAGE, e),
        },
        None => Invite::generate(&mut rng),
    };
    println!("{}", invite.to_shareable().as_str());
    eprintln!(
        "Share it privately; anyone holding it can join. Join with: streamflow join {}",
        invite.to_shareable().as_str()
    );
    ExitCode::from(exit::OK)
}

/// Where the invite comes from: argument, environment, file, or a prompt.
fn read_invite(args: &JoinArgs) -> Result<(Invite, Vec<String>), (u8, String)> {
    let usage = |m: String| (exit::USAGE, m);
    let text = if let Some(i) = &args.invite {
        zeroize::Zeroizing::new(i.clone())
    } else if let Ok(i) = std::env::var("STREAMFLOW_INVITE") {
        zeroize::Zeroizing::new(i)
    } else if let Some(path) = &args.invite_file {
        let content = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --invite-file {}: {e}", path.display())))?;
        zeroize::Zeroizing::new(content.lines().next().unwrap_or("").to_string())
    } else if args.headless {
        return Err(usage(
            "no invite: pass it as an argument, in STREAMFLOW_INVITE, or with --invite-file (headless mode never prompts)".into(),
        ));
    } else {
        let prompt = if args.room.is_some() {
            "Secret words: "
        } else {
            "Invite (ROOM-SECRET): "
        };
        zeroize::Zeroizing::new(
            rpassword::prompt_password(prompt)
                .map_err(|e| usage(format!("cannot read the invite: {e}")))?,
        )
    };
    let parsed = match &args.room {
        Some(room) => Invite::with_room(room, &text),
        None => Invite::parse(&text),
    };
    parsed.map_err(|e| usage(e.to_string()))
}

pub fn session_config(
    invite: Invite,
    relays: Vec<String>,
    media: &MediaArgs,
    view: (u32, u32),
) -> SessionConfig {
    SessionConfig {
        relays,
        invite,
        name: media.name.clone().unwrap_or_else(default_name),
        source: media.source.clone(),
        view,
        fps: media.fps,
        kdf: KdfParams::V1,
        psk: None,
        timings: Timings::default(),
        link: crate::net::link::LinkOptions::default(),
        adapt: !media.fixed_quality,
        preview: None,
    }
}

async fn join(args: JoinArgs) -> ExitCode {
    let (invite, warnings) = match read_invite(&args) {
        Ok(i) => i,
        Err((code, message)) => return fail(code, message),
    };
    for w in warnings {
        eprintln!("streamflow: warning: {w}");
    }
    let mut config = session_config(invite, args.relays.clone(), &args.media, args.tile);
    config.link.liveness_timeout = args.liveness_timeout;
    if args.headless {
        streamflow_relay::init_logging();
        let options = crate::headless::HeadlessOptions {
            duration: args.duration.map(Duration::from_secs_f64),
            send_chat: args.send_chat.clone(),
        };
        ExitCode::from(crate::headless::run(config, options).await)
    } else {
        crate::tui::call(config, args.colour, Vec::new(), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("80x48"), Ok((80, 48)));
        assert!(parse_size("80").is_err());
        assert!(parse_size("0x48").is_err());
    }
}
