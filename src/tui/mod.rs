//! The terminal UI: draws the call and handles keys, for `join` without
//! `--headless`, `host` and `demo` (see [`crate::commands`]).

pub mod app;
pub mod cells;
pub mod encode;
pub mod flow;
pub mod graphics;
mod identity;
pub mod input;
pub mod keys;
pub mod ladder;
pub mod line_edit;
pub mod pixels;
pub mod render;
pub mod renderer;
pub mod screen;
pub mod sixel;
pub mod term;
pub mod terminals;
pub mod tile;
pub mod ui;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use tokio::sync::mpsc;

use crate::session::{self, exit, Ended, SessionCommand, SessionConfig, SessionEvent};
use app::App;
use input::Input;
use render::ColourMode;
use renderer::Renderer;

/// Housekeeping: own preview, rates, timers.
const TICK: Duration = Duration::from_millis(25);
/// How long quitting waits for the terminal's last answers.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// What the TUI shows besides the call.
#[derive(Default)]
pub struct UiOptions {
    /// Colour mode; detected from the environment if None.
    pub colour: Option<ColourMode>,
    /// Lines for the chat pane at the start.
    pub notices: Vec<String>,
    /// The invite to show on `s` (host).
    pub share: Option<app::Share>,
    /// We host the call: quitting ends it for everyone, so `q` asks first.
    pub hosting: bool,
    /// `--share CMD` (started once joined) and `--share-size`.
    pub terminal: crate::cli::ShareArgs,
    /// `--cells` (auto when not given).
    pub cells: Option<cells::CellsChoice>,
    /// `--record-share`: the first share seen, as asciinema v2.
    pub recorder: Option<crate::share::record::Recorder>,
}

/// Runs a call in the terminal until the user quits or the session ends.
/// The caller checked that stdout is a terminal.
pub async fn run(mut config: SessionConfig, options: UiOptions) -> Ended {
    let colour = options.colour.unwrap_or_else(ColourMode::detect);
    let preview = Arc::new(Mutex::new(None));
    config.preview = Some(preview.clone());
    let name = config.name.clone();
    let view_only = matches!(config.source, crate::media::source::SourceSpec::None);
    let (events_tx, mut events_rx) = mpsc::channel(4096);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let mut session = tokio::spawn(session::run(config, events_tx, commands_rx));

    let mut app = App::new(&name, colour, Some(preview));
    app.share = options.share;
    app.hosting = options.hosting;
    app.share_size = options.terminal.share_size;
    app.cells_choice = options.cells.unwrap_or(cells::CellsChoice::Auto);
    app.remote = std::env::var_os("SSH_CONNECTION").is_some();
    app.cells = app.cells_choice.resolve();
    let mut share_at_start = options.terminal.share;
    let mut recorder = options.recorder;
    if view_only {
        app.me.camera = crate::session::state::Camera::Absent;
        app.camera_on = false;
    }
    for n in options.notices {
        app.notice(n);
    }
    match run_ui(
        &mut app,
        &mut events_rx,
        &commands_tx,
        &mut session,
        &mut share_at_start,
        &mut recorder,
    )
    .await
    {
        Ok(e) => e,
        Err(e) => Ended {
            code: exit::ERROR,
            message: format!("terminal error: {e}"),
        },
    }
    // The terminal was restored when run_ui's guard dropped.
}

async fn run_ui(
    app: &mut App,
    events_rx: &mut mpsc::Receiver<SessionEvent>,
    commands: &mpsc::Sender<SessionCommand>,
    session: &mut tokio::task::JoinHandle<Ended>,
    share_at_start: &mut Option<String>,
    recorder: &mut Option<crate::share::record::Recorder>,
) -> std::io::Result<Ended> {
    let _guard = term::TerminalGuard::enter()?;
    let (cols, rows) = crossterm::terminal::size()?;
    app.term_size = (cols, rows);
    note_window_pixels(app);
    if app.wants_pixels() {
        // Answered (by terminals that take kitty images, and by those that
        // count sixel colour registers) before the first device-attributes
        // query the renderer sends.
        use std::io::Write;
        let mut out = std::io::stdout();
        out.write_all(graphics::QUERY)?;
        if let Some(query) = graphics::shm_query() {
            out.write_all(&query)?;
        }
        out.write_all(sixel::REGISTERS_QUERY)?;
        out.flush()?;
    }
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
    use tokio::signal::unix::{signal, SignalKind};
    let mut resized = signal(SignalKind::window_change())?;
    // Signals that end the process end the call instead, through the path
    // that restores the terminal.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    // SIGTSTP (kill -TSTP; Ctrl-Z itself is a key in raw mode) suspends
    // through the path that gives the terminal back first.
    let mut stop = signal(SignalKind::from_raw(libc::SIGTSTP))?;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let result = loop {
        let outcome = tokio::select! {
            ev = events_rx.recv() => {
                if let Some(ev) = ev {
                    if let (Some(r), SessionEvent::ShareScreen { from, screen }) = (recorder.as_mut(), &ev) {
                        if let Err(e) = r.screen(from, screen) {
                            app.notice(format!("--record-share: {e}; recording stopped"));
                            *recorder = None;
                        }
                    }
                    app.on_session(ev);
                }
                if app.my_id.is_some() {
                    if let Some(command) = share_at_start.take() {
                        let (cols, rows) = app.share_size.unwrap_or(app.term_size);
                        let start = session::sharing::ShareCommand::Start { command, cols, rows };
                        let _ = commands.send(SessionCommand::Share(start)).await;
                    }
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
                Some((Input::DeviceAttributes { sixel }, at)) => {
                    app.on_device_attributes(sixel);
                    Some(renderer.on_reply(at))
                }
                Some((Input::ColourRegisters(n), _)) => {
                    app.on_colour_registers(n);
                    None
                }
                Some((Input::Graphics { ok, shared }, _)) => {
                    app.on_graphics_answer(ok, shared);
                    if ok {
                        term::note_pixels_used();
                    }
                    None
                }
                None => {
                    // stdin is gone (the terminal hung up): leave.
                    app.quit = true;
                    None
                }
            },
            _ = terminate.recv() => {
                app.quit = true;
                None
            }
            _ = hangup.recv() => {
                app.quit = true;
                None
            }
            _ = interrupt.recv() => {
                app.quit = true;
                None
            }
            _ = stop.recv() => {
                app.suspend = true;
                None
            }
            _ = resized.recv() => {
                let (cols, rows) = crossterm::terminal::size()?;
                app.term_size = (cols, rows);
                note_window_pixels(app);
                renderer.resize(Rect::new(0, 0, cols, rows));
                // A share sized by this terminal follows it.
                if let Some(cmd) = app.resize_share() {
                    let _ = commands.send(cmd).await;
                }
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
                app.expire(Instant::now());
                app.update_preview();
                app.update_audio();
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
        if std::mem::take(&mut app.suspend) {
            wait_for_sink(&renderer);
            // Answers still on their way would be echoed by the shell's
            // cooked terminal and read as a command line.
            drain_replies(&mut renderer, &mut input_rx).await;
            suspend(&mut renderer)?;
            app.dirty = true;
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
    drain_replies(&mut renderer, &mut input_rx).await;
    renderer.sink.finish(Duration::from_millis(500));
    stop_input.store(true, Relaxed);
    drop(input_rx);
    let _ = tokio::task::spawn_blocking(move || input_thread.join()).await;
    Ok(result)
}

/// Ctrl-Z: gives the terminal back as it was (main screen, cooked mode,
/// cursor), stops until the shell continues us (`fg`), then takes the
/// terminal again and draws the whole screen.
fn suspend(renderer: &mut Renderer) -> std::io::Result<()> {
    wait_for_sink(renderer);
    term::restore();
    // SIGSTOP, not SIGTSTP: our own SIGTSTP handler would only bring us
    // back here. Execution goes on from here on SIGCONT.
    // SAFETY: raise has no memory-safety preconditions.
    unsafe {
        libc::raise(libc::SIGSTOP);
    }
    term::reenter()?;
    let (cols, rows) = crossterm::terminal::size()?;
    renderer.restart(Rect::new(0, 0, cols, rows));
    Ok(())
}

/// A frame half written would land on the shell's screen.
fn wait_for_sink(renderer: &Renderer) {
    let deadline = Instant::now() + Duration::from_millis(500);
    while renderer.sink.is_busy() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The pty's pixel size, for sixel pictures (0s where the terminal
/// doesn't fill them in).
fn note_window_pixels(app: &mut App) {
    if let Ok(w) = crossterm::terminal::window_size() {
        app.on_window_pixels(w.columns, w.rows, w.width, w.height);
    }
}

/// Reads the terminal's answers to the queries in flight (up to
/// `DRAIN_LIMIT`), dropping keys typed meanwhile, so no answer is left for
/// whoever reads the terminal next.
async fn drain_replies(renderer: &mut Renderer, input_rx: &mut mpsc::Receiver<input::Timed>) {
    let deadline = tokio::time::Instant::now() + DRAIN_LIMIT;
    while !renderer.quiesce() {
        match tokio::time::timeout_at(deadline, input_rx.recv()).await {
            Ok(Some(input::Timed {
                input: Input::DeviceAttributes { .. },
                at,
            })) => {
                renderer.on_reply(at);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
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
