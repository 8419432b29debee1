//! Command line: one binary, one subcommand per job (DESIGN.md §1). Parsing
//! and checking values only; [`crate::commands`] runs them.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use streamflow_relay::RelayConfig;

use crate::media::audio::sink::AudioSinkSpec;
use crate::media::audio::source::AudioSourceSpec;
use crate::media::source::SourceSpec;
use crate::tui::render::ColourMode;

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
    pub command: Command,
}

/// The keys, under `--help` of the commands that open the call.
const KEYS: &str = "Keys in the call: q leave (the host: q again while asked) · v camera · \
m mute · Tab chat · c colours · f one tile at a time (the others, then you) · \
s the invite · Ctrl-Z suspend (fg resumes) · ? help (↑ ↓ PgUp PgDn scroll it; \
other keys close it).";

#[derive(Subcommand)]
pub enum Command {
    /// A call with three synthetic peers on a built-in relay: the first thing to try.
    ///
    /// Ada, Grace and Linus send the test pattern and take turns speaking in
    /// tones; --audio-sink none keeps the demo silent.
    #[command(after_help = KEYS)]
    Demo(DemoArgs),
    /// Start a relay here, print an invite for the others, and join the call.
    #[command(after_help = KEYS)]
    Host(HostArgs),
    /// Join a call with an invite (ROOM-SECRET).
    #[command(after_help = KEYS)]
    Join(JoinArgs),
    /// Print a fresh invite (alone on stdout line 1).
    Invite(InviteArgs),
    /// List cameras, microphones and speakers by the names --source,
    /// --audio-source and --audio-sink take.
    Devices,
    /// Run the relay alone: forwards sealed blobs and presence per room, holds no key.
    Relay(RelayConfig),
    /// Measure the relay, the media pipeline, the renderer, the terminal path and the crypto.
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Clone)]
pub struct MediaArgs {
    /// Your name, shown to the others (sent end-to-end encrypted). Default:
    /// $USER, else "guest".
    #[arg(long, env = "STREAMFLOW_NAME")]
    pub name: Option<String>,
    /// Video source: `camera[:N]`, `test` (moving test pattern), `none`
    /// (view only), or a file (MJPEG stream or directory of JPEGs, looped).
    /// Default: the camera if there is one, else view only (said once).
    #[arg(long)]
    pub source: Option<SourceSpec>,
    /// Frames per second to send, 1 to 30 (the most; adaptation may send
    /// fewer).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=30))]
    pub fps: u32,
    /// Don't adapt quality, frame rate and size to the network.
    #[arg(long)]
    pub fixed_quality: bool,
    /// Your voice: `mic[:NAME]`, `tone[:HZ]` (a sine, 440 Hz by default),
    /// `none`, or a 16-bit PCM WAV file (looped). Default: the microphone
    /// if there is one, else none (said once). `streamflow devices` lists
    /// names.
    #[arg(long, value_name = "SOURCE")]
    pub audio_source: Option<AudioSourceSpec>,
    /// What you hear: `speaker[:NAME]`, `none`, or a WAV file that records
    /// exactly the mix you would hear, in real time. Default: the speaker
    /// if there is one, else none.
    #[arg(long, value_name = "SINK")]
    pub audio_sink: Option<AudioSinkSpec>,
    /// Turn off noise suppression and echo cancellation on the microphone.
    #[arg(long)]
    pub no_voice_processing: bool,
}

/// How colours are drawn (`c` cycles them in the call).
const COLOUR_HELP: &str =
    "Colour mode: truecolor, 256, 16 or mono (default: from COLORTERM, TERM and NO_COLOR)";

#[derive(Args)]
pub struct JoinArgs {
    /// The invite, ROOM-SECRET (e.g. k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift).
    /// Also read from STREAMFLOW_INVITE or --invite-file; asked for (hidden) if absent.
    /// With --room, just the secret words.
    pub invite: Option<String>,
    /// Relay URL (ws:// or wss://); repeat to give fallbacks, tried in order.
    #[arg(long = "relay", default_value = "ws://127.0.0.1:8787", value_parser = parse_relay_url)]
    pub relays: Vec<String>,
    /// Trust this CA (PEM) for wss:// relays, besides the system's: for a
    /// relay whose certificate your own CA signed.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
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
    /// Leave after this many seconds and exit 0 (or 3 if the passphrase
    /// was refused and nobody confirmed it by then).
    #[arg(long, value_name = "SECS", value_parser = parse_positive_secs)]
    pub duration: Option<f64>,
    /// Send this chat message once, at half of --duration.
    #[arg(long, value_name = "TEXT")]
    pub send_chat: Option<String>,
    #[arg(long, help = COLOUR_HELP)]
    pub colour: Option<ColourMode>,
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
    #[arg(long, help = COLOUR_HELP)]
    pub colour: Option<ColourMode>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Your video: the test pattern by default; `camera` to see yourself.
    #[arg(long, default_value = "test")]
    pub source: SourceSpec,
    /// Your name in the demo call.
    #[arg(long, default_value = "you")]
    pub name: String,
    /// Your voice, as in `join`: `mic[:NAME]`, `tone[:HZ]`, `none` or a
    /// WAV file. Default: the microphone if there is one, else none.
    #[arg(long, value_name = "SOURCE")]
    pub audio_source: Option<AudioSourceSpec>,
    /// Where the peers' voices (they take turns speaking in tones) play:
    /// `speaker[:NAME]`, `none`, or a WAV file. Default: the speaker if
    /// there is one, else none.
    #[arg(long, value_name = "SINK")]
    pub audio_sink: Option<AudioSinkSpec>,
    #[arg(long, help = COLOUR_HELP)]
    pub colour: Option<ColourMode>,
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

fn parse_positive_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds above 0")),
    }
}

/// A relay URL: `ws://HOST[:PORT][/PATH]` or `wss://…`. Checked before
/// anything else happens, so a typo is a usage error at once.
pub fn parse_relay_url(s: &str) -> Result<String, String> {
    use tokio_tungstenite::tungstenite::http::Uri;
    let s = s.trim();
    let uri: Uri = s.parse().map_err(|_| {
        format!("{s:?} is not a relay URL; relays look like ws://HOST:8787 (or wss:// with TLS)")
    })?;
    match uri.scheme_str() {
        Some("ws" | "wss") => {}
        Some(scheme @ ("http" | "https")) => {
            let ws = if scheme == "https" { "wss" } else { "ws" };
            return Err(format!(
                "relays speak WebSocket: use {ws}://{} instead of {scheme}://",
                uri.authority().map(|a| a.as_str()).unwrap_or("HOST:8787")
            ));
        }
        Some(other) => {
            return Err(format!(
                "{other}:// is not a relay scheme: use ws://HOST:8787 (or wss:// with TLS)"
            ))
        }
        None => {
            return Err(format!(
                "{s:?} has no scheme: write ws://{s} (or wss:// with TLS)"
            ))
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!(
            "{s:?} has no host: e.g. ws://relay.example.org:8787"
        ));
    }
    Ok(s.to_string())
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

    #[test]
    fn relay_urls_are_checked_up_front() {
        assert!(parse_relay_url("ws://127.0.0.1:8787").is_ok());
        assert!(parse_relay_url("wss://relay.example.org").is_ok());
        assert!(parse_relay_url("not a url").unwrap_err().contains("ws://"));
        assert!(parse_relay_url("http://h:1")
            .unwrap_err()
            .contains("use ws://h:1"));
        assert!(parse_relay_url("https://h")
            .unwrap_err()
            .contains("wss://h"));
        assert!(parse_relay_url("ftp://x")
            .unwrap_err()
            .contains("not a relay scheme"));
        assert!(parse_relay_url("relay.example.org:8787").is_err());
    }

    #[test]
    fn nonsense_values_are_refused() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ()).map_err(|e| e.kind());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "0"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "1000000"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "12"]).is_ok());
        assert!(parse(&["streamflow", "join", "x-a-b", "--duration", "-3"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--relay", "ftp://x"]).is_err());
        // The demo takes the voice flags its hints suggest.
        assert!(parse(&["streamflow", "demo", "--audio-source", "tone"]).is_ok());
        assert!(parse(&["streamflow", "demo", "--audio-sink", "none"]).is_ok());
    }
}
