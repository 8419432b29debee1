//! The terminal UI: `join` without `--headless`, `host` and `demo`.

pub mod app;
pub mod encode;
pub mod flow;
pub mod input;
pub mod ladder;
pub mod render;
pub mod renderer;
pub mod screen;
pub mod term;
pub mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::cli::{DemoArgs, HostArgs};
use crate::invite::Invite;
use crate::session::{self, exit, Ended, SessionCommand, SessionConfig, SessionEvent};
use app::App;
use input::Input;
use render::ColourMode;
use renderer::Renderer;

/// Housekeeping: own preview, rates, timers.
const TICK: Duration = Duration::from_millis(25);
/// How long quitting waits for the terminal's last answers.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("streamflow: {message}");
    ExitCode::from(code)
}

/// Runs a call in the terminal until the user quits or the session ends.
pub async fn call(
    mut config: SessionConfig,
    colour: Option<ColourMode>,
    notices: Vec<String>,
    after: Option<String>,
) -> ExitCode {
    if !std::io::stdout().is_terminal() {
        return fail(
            exit::USAGE,
            "the video UI needs a terminal; for scripts use `streamflow join --headless`",
        );
    }
    let colour = colour.unwrap_or_else(ColourMode::detect);
    let preview = Arc::new(Mutex::new(None));
    config.preview = Some(preview.clone());
    let name = config.name.clone();
    let (events_tx, mut events_rx) = mpsc::channel(4096);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let mut session = tokio::spawn(session::run(config, events_tx, commands_rx));

    let mut app = App::new(&name, colour, Some(preview));
    for n in notices {
        app.notice(n);
    }
    let ended = match run_ui(&mut app, &mut events_rx, &commands_tx, &mut session).await {
        Ok(e) => e,
        Err(e) => Ended {
            code: exit::ERROR,
            message: format!("terminal error: {e}"),
        },
    };
    // The terminal is restored here (guard dropped inside run_ui).
    if let Some(text) = after {
        println!("{text}");
    }
    if ended.code == exit::OK {
        ExitCode::from(exit::OK)
    } else {
        fail(ended.code, ended.message)
    }
}

async fn run_ui(
    app: &mut App,
    events_rx: &mut mpsc::Receiver<SessionEvent>,
    commands: &mpsc::Sender<SessionCommand>,
    session: &mut tokio::task::JoinHandle<Ended>,
) -> std::io::Result<Ended> {
    let _guard = term::TerminalGuard::enter()?;
    let (cols, rows) = crossterm::terminal::size()?;
    let writer = term::TtyWriter::spawn(std::io::stdout())?;
    let mut renderer = Renderer::new(
        Rect::new(0, 0, cols, rows),
        writer,
        flow::FlowConfig::from_env(),
        Instant::now(),
    );
    let (input_tx, mut input_rx) = mpsc::channel(256);
    let stop_input = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let input_thread = input::spawn_reader(input_tx, stop_input.clone())?;
    let mut resized =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())?;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result = loop {
        let outcome = tokio::select! {
            ev = events_rx.recv() => {
                if let Some(ev) = ev {
                    app.on_session(ev);
                }
                None
            }
            input = input_rx.recv() => match input.map(|t| (t.input, t.at)) {
                Some((Input::Key(k), _)) => {
                    if let Some(cmd) = app.on_key(k) {
                        let _ = commands.send(cmd).await;
                    }
                    None
                }
                Some((Input::DeviceAttributes, at)) => Some(renderer.on_reply(at)),
                None => {
                    // stdin is gone (the terminal hung up): leave.
                    app.quit = true;
                    None
                }
            },
            _ = resized.recv() => {
                let (cols, rows) = crossterm::terminal::size()?;
                renderer.resize(Rect::new(0, 0, cols, rows));
                app.dirty = true;
                None
            }
            took = renderer.sink.done.recv() => {
                if let Some(took) = took {
                    renderer.on_written(took);
                }
                None
            }
            _ = ticker.tick() => {
                app.update_preview();
                app.update_rates();
                Some(renderer.tick(app, Instant::now()))
            }
            result = &mut *session => {
                break result.unwrap_or_else(|e| Ended { code: exit::ERROR, message: format!("session crashed: {e}") });
            }
        };
        if let Some(o) = outcome {
            apply(app, commands, o);
        }
        let o = renderer.draw_if_due(app, Instant::now())?;
        apply(app, commands, o);
        if app.quit {
            let _ = commands.send(SessionCommand::Leave).await;
            app.status.connection = "leaving…".into();
            // If the session is stuck (e.g. still connecting), don't wait long.
            match tokio::time::timeout(Duration::from_secs(2), &mut *session).await {
                Ok(r) => {
                    break r.unwrap_or_else(|e| Ended {
                        code: exit::ERROR,
                        message: format!("session crashed: {e}"),
                    })
                }
                Err(_) => {
                    session.abort();
                    break Ended {
                        code: exit::OK,
                        message: "left".into(),
                    };
                }
            }
        }
    };
    // Let the terminal answer what is in flight, so its answers don't reach
    // the shell after we are gone.
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while !renderer.quiesce() {
        match tokio::time::timeout_at(deadline, input_rx.recv()).await {
            Ok(Some(input::Timed {
                input: Input::DeviceAttributes,
                at,
            })) => {
                renderer.on_reply(at);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    renderer.sink.finish(Duration::from_millis(500));
    stop_input.store(true, Relaxed);
    drop(input_rx);
    let _ = tokio::task::spawn_blocking(move || input_thread.join()).await;
    Ok(result)
}

/// Acts on what the renderer reports: a new tile size for the senders, a
/// notice for the user.
fn apply(app: &mut App, commands: &mpsc::Sender<SessionCommand>, o: renderer::Outcome) {
    if let Some((w, h)) = o.view {
        let _ = commands.try_send(SessionCommand::View(w, h));
    }
    if let Some(text) = o.notice {
        app.notice(text);
    }
}

/// `streamflow host`: a relay here, an invite for the others, and the call.
pub async fn host(args: HostArgs) -> ExitCode {
    let mut rng = rand_core::OsRng;
    let invite = match &args.room {
        Some(r) => match crate::invite::validate_room_name(r) {
            Ok(r) => Invite::generate_in_room(r, &mut rng),
            Err(e) => return fail(exit::USAGE, e),
        },
        None => Invite::generate(&mut rng),
    };
    let relay_config = streamflow_relay::RelayConfig {
        listen: args.listen,
        ..Default::default()
    };
    let relay = match streamflow_relay::start(relay_config).await {
        Ok(r) => r,
        Err(e) => return fail(exit::ERROR, format!("{e:#}")),
    };
    let shareable = invite.to_shareable();
    let host = if args.listen.ip().is_unspecified() {
        "THIS-HOST".to_string()
    } else {
        args.listen.ip().to_string()
    };
    let join_line = format!(
        "streamflow join {} --relay ws://{host}:{}",
        shareable.as_str(),
        relay.addr().port()
    );
    println!("Invite: {}", shareable.as_str());
    println!("Others join with:\n  {join_line}");
    let config = crate::cli::session_config(invite, vec![relay.url()], &args.media, (80, 48));
    let code = call(
        config,
        args.colour,
        vec![
            "You are hosting. Give the others this line (privately):".into(),
            join_line.clone(),
        ],
        Some(format!("Others could join with: {join_line}")),
    )
    .await;
    relay.shutdown().await;
    code
}

/// `streamflow demo`: a built-in relay, three synthetic peers and you.
pub async fn demo(args: DemoArgs) -> ExitCode {
    let relay_config = streamflow_relay::RelayConfig::loopback();
    let relay = match streamflow_relay::start(relay_config).await {
        Ok(r) => r,
        Err(e) => return fail(exit::ERROR, format!("{e:#}")),
    };
    let invite = Invite::generate(&mut rand_core::OsRng);
    eprintln!("streamflow demo: deriving the room key…");
    let psk = match session::derive_psk_async(&invite, crate::crypto::kdf::KdfParams::V1).await {
        Ok(p) => p,
        Err(e) => return fail(exit::ERROR, e),
    };
    let mut peers = Vec::new();
    for name in ["Ada", "Grace", "Linus"] {
        let media = crate::cli::MediaArgs {
            name: Some(name.into()),
            source: crate::media::source::SourceSpec::Test,
            fps: 30,
            fixed_quality: false,
        };
        let mut config =
            crate::cli::session_config(invite.clone(), vec![relay.url()], &media, (80, 48));
        config.psk = Some(psk.clone());
        let (tx, mut rx) = mpsc::channel(256);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        // Synthetic peers watch nothing: drain their events.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        peers.push((cmd_tx, tokio::spawn(session::run(config, tx, cmd_rx))));
    }
    let media = crate::cli::MediaArgs {
        name: Some(args.name.clone()),
        source: args.source.clone(),
        fps: 30,
        fixed_quality: false,
    };
    let mut config = crate::cli::session_config(invite, vec![relay.url()], &media, (80, 48));
    config.psk = Some(psk);
    let code = call(
        config,
        args.colour,
        vec![
            "Demo: a built-in relay and three synthetic peers (Ada, Grace, Linus).".into(),
            "Press ? for keys, Tab to chat, q to quit.".into(),
        ],
        None,
    )
    .await;
    for (cmd, task) in peers {
        let _ = cmd.send(SessionCommand::Leave).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    relay.shutdown().await;
    code
}
