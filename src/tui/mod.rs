//! The terminal UI: `join` without `--headless`, `host` and `demo`.

pub mod app;
pub mod render;
pub mod term;
pub mod ui;

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event as TermEvent};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::cli::{DemoArgs, HostArgs};
use crate::invite::Invite;
use crate::session::{self, exit, Ended, SessionCommand, SessionConfig, SessionEvent};
use app::App;
use render::ColourMode;

/// Fastest and slowest redraw rates; the renderer moves between them as the
/// terminal (or SSH link) keeps up or falls behind.
const MIN_FRAME_INTERVAL: Duration = Duration::from_millis(33);
const MAX_FRAME_INTERVAL: Duration = Duration::from_millis(500);

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
    let writer = term::FrameWriter::new(std::io::stdout(), true);
    let written = writer.written.clone();
    let mut terminal = Terminal::new(CrosstermBackend::new(writer))?;
    terminal.clear()?;

    // Keys come from a thread: crossterm's reader blocks.
    let (keys_tx, mut keys_rx) = mpsc::channel(64);
    let stop_keys = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop_keys.clone();
        std::thread::spawn(move || {
            while !stop.load(Relaxed) {
                match event::poll(Duration::from_millis(100)) {
                    Ok(true) => match event::read() {
                        Ok(ev) => {
                            if keys_tx.blocking_send(ev).is_err() {
                                return;
                            }
                        }
                        Err(_) => return,
                    },
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        });
    }

    let mut interval = MIN_FRAME_INTERVAL;
    let mut next_frame = tokio::time::Instant::now();
    let mut view_sent = (0, 0);
    let mut draw_cost = Duration::ZERO;
    let mut frames = 0u32;
    let mut fps_window = Instant::now();
    let mut last_written = 0u64;
    let result = loop {
        tokio::select! {
            ev = events_rx.recv() => {
                if let Some(ev) = ev {
                    app.on_session(ev);
                }
            }
            key = keys_rx.recv() => match key {
                Some(TermEvent::Key(k)) => {
                    if let Some(cmd) = app.on_key(k) {
                        let _ = commands.send(cmd).await;
                    }
                }
                Some(TermEvent::Resize(..)) => {
                    app.dirty = true;
                    terminal.autoresize()?;
                }
                _ => {}
            },
            _ = tokio::time::sleep_until(next_frame) => {
                app.update_preview();
                app.update_rates();
                if app.dirty || app.has_new_frames() {
                    let started = Instant::now();
                    let mut largest = (0, 0);
                    terminal.draw(|f| largest = ui::draw(f, app))?;
                    // Frame pacing: an EWMA of what a draw costs; when the
                    // terminal or link is slow, draw less often instead of
                    // queueing stale frames.
                    let cost = started.elapsed();
                    draw_cost = (draw_cost * 7 + cost) / 8;
                    interval = (draw_cost * 2).clamp(MIN_FRAME_INTERVAL, MAX_FRAME_INTERVAL);
                    app.pressure = (interval.as_millis() / MIN_FRAME_INTERVAL.as_millis()) as u32;
                    app.dirty = false;
                    frames += 1;
                    let total = written.load(Relaxed);
                    let bytes = (total - last_written) as f64;
                    last_written = total;
                    app.status.bytes_per_frame = app.status.bytes_per_frame * 0.9 + bytes * 0.1;
                    if largest != view_sent && largest.0 > 0 {
                        view_sent = largest;
                        let _ = commands.try_send(SessionCommand::View(largest.0, largest.1));
                    }
                }
                let secs = fps_window.elapsed().as_secs_f64();
                if secs >= 1.0 {
                    app.status.render_fps = f64::from(frames) / secs;
                    frames = 0;
                    fps_window = Instant::now();
                }
                next_frame = tokio::time::Instant::now() + interval;
            }
            result = &mut *session => {
                break result.unwrap_or_else(|e| Ended { code: exit::ERROR, message: format!("session crashed: {e}") });
            }
        }
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
    stop_keys.store(true, Relaxed);
    Ok(result)
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
