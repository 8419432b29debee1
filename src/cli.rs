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
///
/// Defaults for your name, relays, colours and devices can live in
/// $XDG_CONFIG_HOME/streamflow/config.toml (flags > environment > file).
#[derive(Parser)]
#[command(name = "streamflow", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The keys, under `--help` of the commands that open the call.
const KEYS: &str = "Keys in the call: q leave (the host: q again while asked) · v camera · \
m mute · Tab chat · c colours · f one tile at a time (the others, then you) · \
s the invite · w w: we compared the safety words (marks everyone here verified for \
later calls) · Ctrl-Z suspend (fg resumes) · ? help (↑ ↓ PgUp PgDn scroll it; \
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
    /// Show your identity key's fingerprint (words, hex and a picture),
    /// creating the key on first use.
    ///
    /// The key lives in $XDG_CONFIG_HOME/streamflow/identity (mode 0600).
    /// Members of a call learn it only inside the call's encrypted
    /// channels; after you compare the safety words with them (w w in the
    /// call), later calls show them as verified (✓✓) and warn loudly if
    /// their key changes. What you know of others is in known_peers next
    /// to it: a text file you may read and edit.
    Id(IdArgs),
    /// Serve the browser client on this machine, from this binary.
    ///
    /// Someone without streamflow (or a terminal) joins in a browser: the
    /// page runs the same Rust core (as WebAssembly), so the call stays
    /// end-to-end encrypted and the safety words are the same. The call
    /// goes in the address after #, which browsers never send to a server:
    ///
    ///   http://127.0.0.1:8080/#invite=INVITE&relay=ws://HOST:8787&name=YOU
    ///
    /// A browser member trusts whoever served the page; here, that is you.
    /// To serve it to guests, use `streamflow host --web` instead.
    #[command(verbatim_doc_comment)]
    Web(WebArgs),
    /// List cameras, microphones and speakers by the names --source,
    /// --audio-source and --audio-sink take.
    Devices,
    /// Run the relay alone: forwards sealed blobs and presence per room, holds no key.
    Relay(RelayConfig),
    /// Measure the relay, the media pipeline, the renderer, the terminal path and the crypto.
    Bench(crate::bench::BenchArgs),
    /// Print shell completions: `streamflow completions bash > /etc/bash_completion.d/streamflow`
    /// (also zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (streamflow.1 and one per subcommand) into DIR.
    Man {
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
}

/// The default relay when neither a flag, STREAMFLOW_RELAY nor the config
/// file names one.
pub const DEFAULT_RELAY: &str = "ws://127.0.0.1:8787";

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
    /// Relay URL (ws:// or wss://); repeat to give fallbacks, tried in
    /// order. A path is sent with the upgrade; a user name or password is
    /// refused. Default: STREAMFLOW_RELAY (comma-separated), else `relay`
    /// in the config file, else ws://127.0.0.1:8787.
    #[arg(long = "relay", env = "STREAMFLOW_RELAY", value_delimiter = ',', value_parser = RelayUrlParser, value_name = "URL")]
    pub relays: Vec<String>,
    /// Trust this CA (PEM) for wss:// relays, besides the system's: for a
    /// relay whose certificate your own CA signed.
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
    /// Read the invite from this file (its first line that isn't blank).
    #[arg(long, value_name = "FILE")]
    pub invite_file: Option<PathBuf>,
    /// Join the room with this name; the invite argument is then only the secret.
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[arg(long, help = COLOUR_HELP)]
    pub colour: Option<ColourMode>,
    /// Video cells: auto (real pixels where the terminal answers the kitty
    /// graphics query or says it speaks sixel, and the link carries them;
    /// else sextants where the terminal is known to draw them: kitty,
    /// WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks
    /// elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell),
    /// quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where
    /// the terminal doesn't take them).
    /// `p` cycles them.
    #[arg(long, env = "STREAMFLOW_CELLS", value_enum, value_name = "MODE")]
    pub cells: Option<crate::tui::cells::CellsChoice>,
    /// Treat the relay as gone after this long without a word from it (not
    /// even a pong), then reconnect. Catches half-open connections. 500ms,
    /// 20s, 2m or plain seconds.
    #[arg(long, default_value = "20s", value_parser = streamflow_relay::config::parse_duration, value_name = "DURATION")]
    pub liveness_timeout: Duration,
}

/// Running without the TUI, for scripts and tests (`join` and `host`).
#[derive(Args, Clone)]
pub struct ScriptArgs {
    /// No TUI: print events as JSON lines on stdout (for scripts and tests).
    #[arg(long)]
    pub headless: bool,
    /// Tile size in pixels to ask senders for (headless; the TUI uses its
    /// own). Default 80x48.
    #[arg(long, value_parser = parse_size, requires = "headless")]
    pub tile: Option<(u32, u32)>,
    /// Leave after this long and exit 0 (or 3 if the passphrase was refused
    /// and nobody confirmed it by then; 4 if the call never connected):
    /// 2s, 500ms, 1m, or plain seconds (2, 2.5). Headless.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_secs, requires = "headless")]
    pub duration: Option<f64>,
    /// Send this chat message once, at half of --duration. Headless.
    #[arg(long, value_name = "TEXT", requires = "headless")]
    pub send_chat: Option<String>,
    /// Which events to print: a list (`joined,chat,peer_left`) or what to
    /// leave out (`-frame,-audio_stats`); `error` always. Headless.
    #[arg(long, value_name = "TYPES", value_parser = crate::headless::EventFilter::parse, requires = "headless", allow_hyphen_values = true)]
    pub events: Option<crate::headless::EventFilter>,
}

/// Sharing a terminal in the call (`join` and `host`).
#[derive(Args, Clone, Default)]
pub struct ShareArgs {
    /// Share a terminal running CMD (through /bin/sh -c) as soon as the
    /// call is up: the others see its screen, sealed like video, and can't
    /// type unless you let them. In the TUI, `t` shares `$SHELL` instead.
    #[arg(long, value_name = "CMD")]
    pub share: Option<String>,
    /// The shared terminal's size in cells, e.g. 120x40 (default: your
    /// terminal's size; 80x24 headless).
    #[arg(long, value_name = "COLSxROWS", value_parser = parse_share_size)]
    pub share_size: Option<(u16, u16)>,
    /// Record what you see of the first terminal shared in the call to
    /// FILE.cast (asciinema v2: `asciinema play FILE.cast`). Local only.
    #[arg(long, value_name = "FILE.cast")]
    pub record_share: Option<PathBuf>,
}

/// `120x40`: a shared terminal's columns × rows.
pub fn parse_share_size(s: &str) -> Result<(u16, u16), String> {
    let (c, r) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not COLSxROWS, e.g. 120x40"))?;
    let c: u16 = c
        .trim()
        .parse()
        .map_err(|_| format!("bad columns in {s:?}"))?;
    let r: u16 = r.trim().parse().map_err(|_| format!("bad rows in {s:?}"))?;
    let (max_c, max_r) = (
        crate::share::screen::MAX_COLS,
        crate::share::screen::MAX_ROWS,
    );
    if !(10..=max_c).contains(&c) || !(3..=max_r).contains(&r) {
        return Err(format!(
            "shared terminals are 10..{max_c} columns and 3..{max_r} rows"
        ));
    }
    Ok((c, r))
}

#[derive(Args)]
pub struct HostArgs {
    /// Where the built-in relay listens. Use 0.0.0.0:8787 to accept others
    /// from the network (loopback suffices when everyone is on this machine,
    /// e.g. over SSH). Forms: IP:PORT, [IPv6]:PORT, HOST:PORT, :PORT or
    /// PORT (127.0.0.1 with that port), or an IP or host alone (port 8787).
    #[arg(long, default_value = "127.0.0.1:8787", env = "STREAMFLOW_LISTEN", value_parser = streamflow_relay::config::parse_listen, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Name the room instead of a random nameplate.
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    /// Also serve the browser client, for guests without streamflow: they
    /// open the printed address (the invite rides after #, which browsers
    /// never send to a server). ADDR as for --listen; default: the relay's
    /// address, port 8080. Guests trust you with the page's code, as they
    /// trust you with the invite. Browsers give pages a camera only over
    /// https or on localhost: a guest elsewhere joins view-only unless the
    /// page reaches them through an SSH tunnel (ssh -L 8080:localhost:8080).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, require_equals = true, value_parser = streamflow_relay::config::parse_listen)]
    pub web: Option<Option<std::net::SocketAddr>>,
    #[command(flatten)]
    pub media: MediaArgs,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub share: ShareArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    #[arg(long, help = COLOUR_HELP)]
    pub colour: Option<ColourMode>,
    /// Video cells: auto (real pixels where the terminal answers the kitty
    /// graphics query or says it speaks sixel, and the link carries them;
    /// else sextants where the terminal is known to draw them: kitty,
    /// WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks
    /// elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell),
    /// quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where
    /// the terminal doesn't take them).
    /// `p` cycles them.
    #[arg(long, env = "STREAMFLOW_CELLS", value_enum, value_name = "MODE")]
    pub cells: Option<crate::tui::cells::CellsChoice>,
}

#[derive(Args)]
pub struct WebArgs {
    /// Where to serve the page. Keep it on loopback unless you mean to
    /// serve others (they then trust you with the code their browser runs).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
}

#[derive(Args)]
pub struct IdArgs {
    /// Replace your identity key with a new one. Everyone who verified
    /// you will see a warning until they verify you again. Asks first.
    #[arg(long)]
    pub new: bool,
    /// Don't ask (with --new, for scripts).
    #[arg(long, requires = "new")]
    pub yes: bool,
}

/// Who you are across calls (`join` and `host`).
#[derive(Args, Clone, Default)]
pub struct IdentityArgs {
    /// A throwaway identity for this call: nobody can link it to your
    /// other calls, and nothing is read from or written to your identity
    /// file or known_peers.
    #[arg(long)]
    pub anonymous: bool,
    /// Give your video, voice and chat only to people you have verified
    /// (w w after comparing the safety words, in this call or an earlier
    /// one): others are shown but see nothing until you verify them.
    #[arg(long)]
    pub only_known: bool,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Your video: the test pattern by default; `camera` to see yourself.
    #[arg(long, default_value = "test")]
    pub source: SourceSpec,
    /// Your name in the demo call.
    #[arg(long, env = "STREAMFLOW_NAME", default_value = "you")]
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
    /// Video cells: auto (real pixels where the terminal answers the kitty
    /// graphics query or says it speaks sixel, and the link carries them;
    /// else sextants where the terminal is known to draw them: kitty,
    /// WezTerm, foot, Ghostty, VTE, Windows Terminal, xterm; half blocks
    /// elsewhere, e.g. inside tmux or over SSH), half (1×2 pixels a cell),
    /// quadrant (2×2), sextant (2×3), kitty or sixel (pixels; cells where
    /// the terminal doesn't take them).
    /// `p` cycles them.
    #[arg(long, env = "STREAMFLOW_CELLS", value_enum, value_name = "MODE")]
    pub cells: Option<crate::tui::cells::CellsChoice>,
    /// Ada shares a terminal running CMD (80x24), to see what a shared
    /// terminal looks like: e.g. `--peer-share top`.
    #[arg(long, value_name = "CMD")]
    pub peer_share: Option<String>,
}

#[derive(Args)]
pub struct InviteArgs {
    /// Name the room instead of a random nameplate (a-z 0-9 _).
    #[arg(long, value_name = "NAME")]
    pub room: Option<String>,
    /// The relay the others will use, for the join command printed with
    /// the invite. Default: STREAMFLOW_RELAY, else the config file's, else
    /// ws://127.0.0.1:8787.
    #[arg(long, env = "STREAMFLOW_RELAY", value_delimiter = ',', value_parser = RelayUrlParser, value_name = "URL")]
    pub relay: Vec<String>,
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

/// `--duration`: the shared duration forms, as seconds.
fn parse_positive_secs(s: &str) -> Result<f64, String> {
    streamflow_relay::config::parse_duration(s).map(|d| d.as_secs_f64())
}

/// A relay URL: `ws://HOST[:PORT][/PATH]` or `wss://…`, the scheme in any
/// case (returned lowercased), the port 1 to 65535, a path sent with the
/// upgrade as given (the relay takes any). No user name or password: they
/// would end up in logs and on screen, and the relay takes none. Checked
/// before anything else happens, so a typo is a usage error at once.
pub fn parse_relay_url(s: &str) -> Result<String, String> {
    use tokio_tungstenite::tungstenite::http::Uri;
    let s = s.trim();
    // Before any message that quotes the URL: never echo a password.
    if has_credentials(s) {
        return Err(
            "relay URLs take no user name or password (USER:PASSWORD@): remove them, e.g. ws://HOST:8787"
                .into(),
        );
    }
    // Schemes are case-insensitive (RFC 3986); tungstenite wants lowercase.
    let s = match s.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("ws") || scheme.eq_ignore_ascii_case("wss") =>
        {
            format!("{}://{rest}", scheme.to_ascii_lowercase())
        }
        _ => s.to_string(),
    };
    let uri: Uri = s.parse().map_err(|_| {
        format!("{s:?} is not a relay URL; relays look like ws://HOST:8787 (or wss:// with TLS)")
    })?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
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
    let Some(authority) = uri.authority() else {
        return Err(format!(
            "{s:?} has no host: e.g. ws://relay.example.org:8787"
        ));
    };
    if uri.host().is_none_or(|h| h.is_empty() || h == "[]") {
        return Err(format!(
            "{s:?} has no host: e.g. ws://relay.example.org:8787"
        ));
    }
    // `Uri` keeps a port it can't read and would then quietly use 80 or 443.
    let after_host = match authority.as_str().rfind(']') {
        Some(i) => &authority.as_str()[i + 1..],
        None => authority.as_str(),
    };
    if let Some((_, port)) = after_host.rsplit_once(':') {
        match port.parse::<u16>() {
            Ok(1..) if port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => {
                return Err(format!(
                    "the port must be a number from 1 to 65535, e.g. ws://{}:8787",
                    uri.host().unwrap_or("HOST")
                ))
            }
        }
    }
    Ok(s)
}

/// Whether a URL-ish text carries `USER[:PASSWORD]@` before its host.
fn has_credentials(s: &str) -> bool {
    let rest = s.split_once("://").map_or(s, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// `--relay`: [`parse_relay_url`], with clap's usual error except that the
/// value quoted back never shows a password.
#[derive(Clone)]
pub struct RelayUrlParser;

impl clap::builder::TypedValueParser for RelayUrlParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let text = value.to_string_lossy();
        parse_relay_url(&text).map_err(|why| {
            let shown = if has_credentials(&text) {
                "…"
            } else {
                text.as_ref()
            };
            let arg = arg.map_or("--relay".to_string(), |a| a.to_string());
            // Worded as clap words its own (clap can't quote a value other
            // than the one given).
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid value '{shown}' for '{arg}': {why}\n\nFor more information, try '--help'.\n"
                ),
            )
            .with_cmd(cmd)
        })
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
    fn relay_url_ports_case_paths_and_credentials() {
        // Ports outside 1..=65535 are refused here, not later.
        for bad in [
            "ws://127.0.0.1:99999",
            "ws://127.0.0.1:0",
            "ws://h:",
            "wss://[::1]:70000",
            "ws://h:+80",
        ] {
            let e = parse_relay_url(bad).expect_err(bad);
            assert!(
                e.contains("port must be a number from 1 to 65535"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            parse_relay_url("ws://h:65535").as_deref(),
            Ok("ws://h:65535")
        );
        assert_eq!(
            parse_relay_url("ws://[::1]:8787").as_deref(),
            Ok("ws://[::1]:8787")
        );
        // Any case for the scheme, normalised to lowercase.
        assert_eq!(
            parse_relay_url("WS://127.0.0.1:8787").as_deref(),
            Ok("ws://127.0.0.1:8787")
        );
        assert_eq!(parse_relay_url("Wss://h").as_deref(), Ok("wss://h"));
        assert!(parse_relay_url("HTTP://h:1")
            .unwrap_err()
            .contains("use ws://h:1"));
        // A path is kept (sent with the upgrade; the relay takes any).
        assert_eq!(parse_relay_url("ws://h/x").as_deref(), Ok("ws://h/x"));
        assert_eq!(
            parse_relay_url("wss://h:443/relay/a?b=1").as_deref(),
            Ok("wss://h:443/relay/a?b=1")
        );
        // Credentials are refused, and the message doesn't repeat them.
        for bad in [
            "ws://user:pw@host",
            "ws://user:pw@host:8787/x",
            "wss://user@host",
            "user:pw@host:8787",
            "http://user:pw@host",
            "ws://user:pw@host:99999",
        ] {
            let e = parse_relay_url(bad).expect_err(bad);
            assert!(e.contains("no user name or password"), "{bad}: {e}");
            assert!(!e.contains("pw") && !e.contains("user@"), "{bad}: {e}");
        }
        // An @ in the path is not a credential.
        assert!(parse_relay_url("ws://h/a@b").is_ok());
    }

    #[test]
    fn usage_errors_never_echo_a_password() {
        let e = Cli::try_parse_from([
            "streamflow",
            "join",
            "x-a-b",
            "--relay",
            "ws://me:hunter2@h:8787",
        ])
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation);
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("no user name or password"), "{text}");
        assert!(text.contains("--relay"), "{text}");
        // Other mistakes quote the value as clap does.
        let e = Cli::try_parse_from([
            "streamflow",
            "join",
            "x-a-b",
            "--relay",
            "ws://127.0.0.1:99999",
        ])
        .map(|_| ())
        .expect_err("refused");
        assert_eq!(e.exit_code(), 2);
        let text = e.to_string();
        assert!(
            text.contains("invalid value 'ws://127.0.0.1:99999' for '--relay <URL>'"),
            "{text}"
        );
        assert!(text.contains("1 to 65535"), "{text}");
        // The accepted form reaches the command lowercased.
        let cli = Cli::try_parse_from(["streamflow", "join", "x-a-b", "--relay", "WS://h:1/p"]);
        match cli.map(|c| c.command) {
            Ok(Command::Join(join)) => assert_eq!(join.relays, ["ws://h:1/p"]),
            _ => panic!("join with a relay"),
        }
    }

    #[test]
    fn bench_sizes_and_durations_take_the_shared_forms() {
        let bench = |args: &[&str]| {
            Cli::try_parse_from(["streamflow", "bench"].iter().chain(args))
                .map_err(|e| e.to_string())
        };
        for ok in [
            &["relay", "--seconds", "1m", "--frame-bytes", "4KiB"][..],
            &["relay", "--seconds", "10", "--frame-bytes", "4096"],
            &["relay", "--relay", "WS://127.0.0.1:8787"],
            &["abuse", "--max-memory", "1gib", "--seconds", "30s"],
            &["thin", "--rate", "64KiB", "--seconds", "15"],
            &["e2e", "--seconds", "3s"],
            &["ladder", "--seconds", "4"],
            &["tty", "--seconds", "20s", "--delay", "20ms"],
            &[
                "audio",
                "--seconds",
                "2",
                "--delay",
                "30ms",
                "--jitter",
                "0.03",
            ],
            &["words", "--gap", "500ms"],
            &["words", "--gap", "0"],
        ] {
            assert!(bench(ok).is_ok(), "{ok:?}: {:?}", bench(ok).err());
        }
        for bad in [
            &["relay", "--seconds", "1.5"][..],
            &["relay", "--frame-bytes", "2MiB"],
            &["relay", "--relay", "ws://h:99999"],
            &["abuse", "--max-memory", "lots"],
            &["thin", "--rate", "999"],
            &["e2e", "--seconds", "0"],
            &["words", "--gap", "soon"],
        ] {
            assert!(bench(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations_and_listen_forms() {
        let duration = |d: &str| match Cli::try_parse_from([
            "streamflow",
            "join",
            "x-a-b",
            "--headless",
            &format!("--duration={d}"),
        ]) {
            Ok(Cli {
                command: Command::Join(join),
            }) => Ok(join.script.duration),
            Ok(_) => Err("not join".to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(duration("2s"), Ok(Some(2.0)));
        assert_eq!(duration("500ms"), Ok(Some(0.5)));
        assert_eq!(duration("1m"), Ok(Some(60.0)));
        assert_eq!(duration("2"), Ok(Some(2.0)));
        assert_eq!(duration("2.5"), Ok(Some(2.5)));
        for bad in ["0", "-3", "-1s", "soon", "2h"] {
            let e = duration(bad).expect_err(bad);
            assert!(e.contains("500ms") || e.contains("above 0"), "{bad}: {e}");
        }
        let listen = |l: &str| match Cli::try_parse_from(["streamflow", "host", "--listen", l]) {
            Ok(Cli {
                command: Command::Host(host),
            }) => Ok(host.listen.to_string()),
            Ok(_) => Err("not host".to_string()),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(listen("8787").as_deref(), Ok("127.0.0.1:8787"));
        assert_eq!(listen(":9000").as_deref(), Ok("127.0.0.1:9000"));
        assert_eq!(listen("0.0.0.0:8787").as_deref(), Ok("0.0.0.0:8787"));
        assert!(listen("localhost:8787").is_ok());
        assert!(listen("127.0.0.1:99999").is_err());
        // The relay subcommand takes the same sizes and listen forms.
        let relay = |args: &[&str]| {
            Cli::try_parse_from(["streamflow", "relay"].iter().chain(args)).map(|_| ())
        };
        assert!(relay(&[
            "--listen",
            "8787",
            "--max-message-bytes",
            "1MiB",
            "--media-queue-bytes",
            "4MiB"
        ])
        .is_ok());
        assert!(relay(&["--listen", "localhost:8787"]).is_ok());
    }

    #[test]
    fn nonsense_values_are_refused() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|_| ()).map_err(|e| e.kind());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "0"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "1000000"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--fps", "12"]).is_ok());
        let headless =
            |d: &str| parse(&["streamflow", "join", "x-a-b", "--headless", "--duration", d]);
        assert!(headless("-3").is_err());
        assert!(headless("0").is_err());
        assert!(headless("2s").is_ok());
        // Only headless: the TUI would ignore it.
        assert!(parse(&["streamflow", "join", "x-a-b", "--duration", "2s"]).is_err());
        assert!(parse(&["streamflow", "join", "x-a-b", "--relay", "ftp://x"]).is_err());
        // The demo takes the voice flags its hints suggest.
        assert!(parse(&["streamflow", "demo", "--audio-source", "tone"]).is_ok());
        assert!(parse(&["streamflow", "demo", "--audio-sink", "none"]).is_ok());
    }
}
