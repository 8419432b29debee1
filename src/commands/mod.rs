//! The subcommands, from parsed arguments to a running call: check what the
//! user asked for first (terminal, source, invite, URLs: their problems are
//! said before anything slow happens), then run the session in the TUI or
//! headless.

mod demo;
mod devices;
mod host;
mod join;

use std::process::ExitCode;

use crate::cli::{Cli, Command, InviteArgs, MediaArgs};
use crate::invite::Invite;
use crate::media::audio::engine::AudioSetup;
use crate::media::source::{self, FrameSource, SourceSpec};
use crate::session::{exit, Ended};

/// `streamflow web`: the browser page, until Ctrl-C.
async fn web(args: crate::cli::WebArgs) -> ExitCode {
    if !crate::web::available() {
        return fail(exit::ERROR, crate::web::UNAVAILABLE);
    }
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            return fail(
                exit::USAGE,
                format!(
                    "cannot serve the page on {}: {e} (choose another with --listen ADDR)",
                    args.listen
                ),
            )
        }
    };
    let addr = listener.local_addr().unwrap_or(args.listen);
    println!("StreamFlow for browsers at http://{addr}/");
    println!("build {}", crate::web::build_hash());
    println!(
        "Open it with the call after #: http://{addr}/#invite=INVITE&relay=ws://HOST:8787&name=YOU (or fill in its form). Ctrl-C stops."
    );
    tokio::select! {
        _ = crate::web::serve(listener) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    ExitCode::from(exit::OK)
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(exit::ERROR, format!("cannot start the async runtime: {e}")),
    };
    // The config file matters only to the commands that make calls.
    let file = || match crate::config_file::load() {
        Ok(f) => Ok(f),
        Err(e) => Err(fail(exit::USAGE, format!("config file {e}"))),
    };
    match cli.command {
        Command::Relay(config) => {
            streamflow_relay::init_logging();
            match runtime.block_on(streamflow_relay::run(config)) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => fail(exit::ERROR, format!("{e:#}")),
            }
        }
        Command::Invite(mut args) => {
            if args.relay.is_empty() {
                args.relay = match file() {
                    Ok(f) => f.relays,
                    Err(code) => return code,
                };
            }
            invite(args)
        }
        Command::Devices => devices::run(),
        Command::Web(args) => runtime.block_on(web(args)),
        Command::Id(args) => id(args),
        Command::Join(mut args) => {
            let file = match file() {
                Ok(f) => f,
                Err(code) => return code,
            };
            file.fill_media(&mut args.media);
            args.colour = args.colour.or(file.colour);
            args.cells = args.cells.or(file.cells);
            if args.relays.is_empty() {
                args.relays = file.relays.clone();
            }
            if args.relays.is_empty() {
                args.relays = vec![crate::cli::DEFAULT_RELAY.to_string()];
            }
            runtime.block_on(join::join(args))
        }
        Command::Host(mut args) => {
            let file = match file() {
                Ok(f) => f,
                Err(code) => return code,
            };
            file.fill_media(&mut args.media);
            args.colour = args.colour.or(file.colour);
            args.cells = args.cells.or(file.cells);
            runtime.block_on(host::host(args))
        }
        Command::Demo(mut args) => {
            let file = match file() {
                Ok(f) => f,
                Err(code) => return code,
            };
            args.colour = args.colour.or(file.colour);
            args.cells = args.cells.or(file.cells);
            runtime.block_on(demo::demo(args))
        }
        Command::Bench(args) => runtime.block_on(crate::bench::run(args)),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "streamflow", &mut std::io::stdout());
            ExitCode::from(exit::OK)
        }
        Command::Man { dir } => match write_man_pages(&dir) {
            Ok(written) => {
                for path in written {
                    println!("{}", path.display());
                }
                ExitCode::from(exit::OK)
            }
            Err(e) => fail(
                exit::ERROR,
                format!("cannot write man pages into {}: {e}", dir.display()),
            ),
        },
    }
}

/// streamflow.1 and streamflow-SUBCOMMAND.1 for each subcommand, from the
/// same definitions as `--help`.
pub fn write_man_pages(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let cmd = <Cli as clap::CommandFactory>::command();
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut page = |cmd: clap::Command, name: String| -> std::io::Result<()> {
        let mut out = Vec::new();
        clap_mangen::Man::new(cmd.name(name.clone())).render(&mut out)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, out)?;
        written.push(path);
        Ok(())
    };
    page(cmd.clone(), "streamflow".into())?;
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("streamflow-{}", sub.get_name());
        page(sub.clone(), name)?;
    }
    Ok(written)
}

pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    if code == exit::USAGE {
        // Usage errors look like clap's own, whichever check found them.
        eprintln!("error: {message}\n\nFor more information, try '--help'.");
    } else {
        eprintln!("streamflow: {message}");
    }
    ExitCode::from(code)
}

/// How a call ended, as an exit code (with its reason on stderr unless it
/// was an ordinary leave).
fn finish(ended: Ended) -> ExitCode {
    if ended.code != exit::OK {
        return fail(ended.code, ended.message);
    }
    if ended.message != crate::session::LEFT {
        eprintln!("streamflow: {}", ended.message);
    }
    ExitCode::from(exit::OK)
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
    let relays: String = match args.relay.as_slice() {
        [] => format!(" --relay {}", crate::cli::DEFAULT_RELAY),
        rs => rs.iter().map(|r| format!(" --relay {r}")).collect(),
    };
    eprintln!(
        "Share it privately; anyone holding it can join. Join with:\n  streamflow join {}{relays}",
        invite.to_shareable().as_str()
    );
    ExitCode::from(exit::OK)
}

/// Our name: as given (cleaned, trimmed), else $USER, else "guest".
pub(crate) fn resolve_name(given: Option<&str>) -> String {
    let clean = |s: &str| crate::sanitize::clean_name(s).trim().to_string();
    given
        .map(clean)
        .filter(|n| !n.is_empty())
        .or_else(|| {
            std::env::var("USER")
                .ok()
                .map(|u| clean(&u))
                .filter(|u| !u.is_empty())
        })
        .unwrap_or_else(|| "guest".into())
}

/// The video source, opened now so its problems come first. Without
/// `--source`: the camera if there is one, else view only, said once.
pub(crate) struct OpenedSource {
    pub spec: SourceSpec,
    pub source: Option<Box<dyn FrameSource>>,
    pub notice: Option<String>,
}

pub(crate) fn open_source(media: &MediaArgs, name: &str) -> Result<OpenedSource, ExitCode> {
    match &media.source {
        Some(spec) => match source::open(spec, name) {
            Ok(source) => Ok(OpenedSource {
                spec: spec.clone(),
                source,
                notice: None,
            }),
            Err(e) => Err(fail(exit::USAGE, e)),
        },
        None => match source::open(&SourceSpec::Camera(0), name) {
            Ok(source) => Ok(OpenedSource {
                spec: SourceSpec::Camera(0),
                source,
                notice: None,
            }),
            Err(_) => Ok(OpenedSource {
                spec: SourceSpec::None,
                source: None,
                notice: Some(
                    "no camera found: joining view-only (`--source test` sends a test pattern)"
                        .into(),
                ),
            }),
        },
    }
}

/// Voice from the flags, opened now so problems come first. Without
/// flags: the microphone and speaker if there are any, else none, said
/// once. `None` when neither direction has anything (no engine at all).
/// `--record-share FILE`: created now, so a path that can't be written is
/// said before the call.
pub(crate) fn open_recorder(
    args: &crate::cli::ShareArgs,
) -> Result<Option<crate::share::record::Recorder>, ExitCode> {
    let Some(path) = &args.record_share else {
        return Ok(None);
    };
    crate::share::record::Recorder::create(path)
        .map(Some)
        .map_err(|e| {
            fail(
                exit::USAGE,
                format!("--record-share {}: {e}", path.display()),
            )
        })
}

pub(crate) fn open_audio(
    media: &MediaArgs,
    lip_sync: bool,
) -> Result<(Option<AudioSetup>, Vec<String>), ExitCode> {
    use crate::media::audio::{sink, source};
    let mut notices = Vec::new();
    let source_spec = match &media.audio_source {
        Some(spec) => spec.clone(),
        None if has_microphone() => source::AudioSourceSpec::Mic(None),
        None => {
            notices.push("no microphone found: the others won't hear you (`--audio-source tone` sends a test tone)".into());
            source::AudioSourceSpec::None
        }
    };
    let sink_spec = match &media.audio_sink {
        Some(spec) => spec.clone(),
        None if has_speaker() => sink::AudioSinkSpec::Speaker(None),
        None => {
            notices.push("no speaker found: you won't hear the others (`--audio-sink FILE.wav` records them)".into());
            sink::AudioSinkSpec::None
        }
    };
    // The default device asked for (`mic`, `speaker`) but missing: the call
    // goes on without that direction, as when nothing was asked for. A
    // device named explicitly is what the user meant: its absence stops us.
    let source = match (source::open(&source_spec), &source_spec) {
        (Ok(s), _) => s,
        (Err(_), source::AudioSourceSpec::Mic(None)) => {
            notices.push(
                "no microphone found (streamflow devices lists them); continuing without voice"
                    .into(),
            );
            None
        }
        (Err(e), source::AudioSourceSpec::Mic(Some(name))) => {
            return Err(fail(
                exit::USAGE,
                format!("--audio-source mic:{name}: no such microphone ({e}); streamflow devices lists them"),
            ))
        }
        (Err(e), _) => return Err(fail(exit::USAGE, format!("--audio-source: {e}"))),
    };
    let sink = match (sink::open(&sink_spec), &sink_spec) {
        (Ok(s), _) => s,
        (Err(_), sink::AudioSinkSpec::Speaker(None)) => {
            notices.push(
                "no speaker found (streamflow devices lists them); continuing without sound".into(),
            );
            None
        }
        (Err(e), sink::AudioSinkSpec::Speaker(Some(name))) => {
            return Err(fail(
                exit::USAGE,
                format!(
                "--audio-sink speaker:{name}: no such speaker ({e}); streamflow devices lists them"
            ),
            ))
        }
        (Err(e), _) => return Err(fail(exit::USAGE, format!("--audio-sink: {e}"))),
    };
    let setup = AudioSetup {
        source,
        sink,
        voice_processing: !media.no_voice_processing,
        lip_sync,
    };
    Ok((Some(setup), notices))
}

#[cfg(target_os = "linux")]
fn has_microphone() -> bool {
    crate::media::audio::device::has_microphone()
}

#[cfg(target_os = "linux")]
fn has_speaker() -> bool {
    crate::media::audio::device::has_speaker()
}

#[cfg(not(target_os = "linux"))]
fn has_microphone() -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn has_speaker() -> bool {
    false
}

/// Who we are in the call, read before anything else happens.
pub(crate) struct Identity {
    key: Option<std::sync::Arc<crate::crypto::sign::SigningIdentity>>,
    trust: crate::identity::known::Trust,
    only_known: bool,
    pub notices: Vec<String>,
}

impl Identity {
    /// The identity key (created on first use) and known peers; a
    /// throwaway key and nothing written with `--anonymous`. A key file
    /// others can read is an error; a known_peers file we can't read is a
    /// notice (the call goes on, knowing nobody).
    pub(crate) fn load(args: &crate::cli::IdentityArgs) -> Result<Self, ExitCode> {
        use crate::identity::known::Trust;
        let mut notices = Vec::new();
        let key = if args.anonymous {
            None
        } else {
            let loaded = crate::identity::load_or_create().map_err(|e| fail(exit::USAGE, e))?;
            if loaded.created {
                notices.push(format!(
                    "created your identity key in {} (`streamflow id` shows its fingerprint)",
                    loaded.path.display()
                ));
            }
            Some(std::sync::Arc::new(loaded.key))
        };
        let trust = match crate::identity::known_peers_path() {
            Some(path) => Trust::load(path, !args.anonymous).unwrap_or_else(|e| {
                notices.push(format!("known peers not read: {e}"));
                Trust::in_memory()
            }),
            None => Trust::in_memory(),
        };
        Ok(Identity {
            key,
            trust,
            only_known: args.only_known,
            notices,
        })
    }

    pub(crate) fn apply(self, config: &mut crate::session::SessionConfig) {
        config.identity = self.key;
        config.trust = Some(self.trust);
        config.only_known = self.only_known;
    }
}

/// `streamflow id`: the fingerprint, and `--new` to replace the key.
pub(crate) fn id(args: crate::cli::IdArgs) -> ExitCode {
    use std::io::{BufRead, IsTerminal, Write};
    if args.new {
        if !args.yes {
            if !std::io::stdin().is_terminal() {
                return fail(
                    exit::USAGE,
                    "--new replaces your identity key: confirm with --yes when not at a terminal",
                );
            }
            print!("Replace your identity key? Everyone who verified you will see a warning until they verify you again. Type yes: ");
            let _ = std::io::stdout().flush();
            let mut answer = String::new();
            let _ = std::io::stdin().lock().read_line(&mut answer);
            if answer.trim() != "yes" {
                eprintln!("streamflow: kept your identity key");
                return ExitCode::from(exit::ERROR);
            }
        }
        return match crate::identity::replace() {
            Ok(l) => {
                println!("New identity key made.\n");
                print!("{}", crate::identity::describe(&l.key, &l.path));
                ExitCode::from(exit::OK)
            }
            Err(e) => fail(exit::ERROR, e),
        };
    }
    match crate::identity::load_or_create() {
        Ok(l) => {
            if l.created {
                println!("New identity key made (first use).\n");
            }
            print!("{}", crate::identity::describe(&l.key, &l.path));
            ExitCode::from(exit::OK)
        }
        Err(e) => fail(exit::USAGE, e),
    }
}

/// A session config from the media flags and an opened source.
pub(crate) fn session_config(
    invite: Invite,
    relays: Vec<String>,
    media: &MediaArgs,
    name: String,
    opened: OpenedSource,
    view: (u32, u32),
) -> crate::session::SessionConfig {
    let mut config = crate::session::SessionConfig::new(invite, relays, name, opened.spec);
    config.opened_source = opened.source.map(std::sync::Mutex::new);
    config.view = view;
    config.fps = media.fps;
    config.adapt = !media.fixed_quality;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_default_and_are_cleaned() {
        assert_eq!(resolve_name(Some("  Ada \x1b[31m")), "Ada \u{FFFD}[31m");
        let fallback = resolve_name(Some("   "));
        assert!(!fallback.trim().is_empty());
        assert_eq!(resolve_name(Some("Grace")), "Grace");
    }
}
