//! The TUI drawn into ratatui's TestBackend (snapshots of the text layer),
//! and the real binary driven in tmux as a person would.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use streamflow::media::jpeg;
use streamflow::media::pattern::TestPattern;
use streamflow::tui::app::App;
use streamflow::tui::render::ColourMode;
use streamflow::tui::ui;

fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
    terminal
        .draw(|f| {
            ui::draw(f, app);
        })
        .unwrap();
    let buf = terminal.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        for x in 0..w {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Compares with `tests/snapshots/NAME.txt`; `UPDATE_SNAPSHOTS=1` rewrites it.
fn snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "missing snapshot {}; run with UPDATE_SNAPSHOTS=1",
            path.display()
        )
    });
    assert_eq!(actual, expected, "snapshot {name} differs");
}

fn app_with_peers(n: usize) -> App {
    let mut app = App::new("me", ColourMode::TrueColor, None);
    for i in 0..n {
        let name = format!("peer{i}");
        let img = TestPattern::new(&name).render_at(1.0, 80, 48);
        app.feed_frame(&format!("id{i}"), &name, jpeg::encode(&img, 80));
    }
    app
}

#[test]
fn grid_with_one_two_and_five_peers() {
    for n in [1, 2, 5] {
        let mut app = app_with_peers(n);
        let text = screen(&mut app, 120, 32);
        for i in 0..n {
            assert!(text.contains(&format!("peer{i}")), "peer{i} label");
        }
        assert!(text.contains('▀'), "video cells");
        assert!(text.contains(&format!("In the call ({})", n + 1)));
        snapshot(&format!("grid_{n}"), &text);
    }
}

#[test]
fn chat_pane_and_help_overlay() {
    let mut app = app_with_peers(2);
    app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    for c in "hello there".chars() {
        app.on_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
    let text = screen(&mut app, 120, 32);
    assert!(text.contains("> hello there"));
    assert!(text.contains("Enter sends"));
    snapshot("chat_typing", &text);
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
    app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
    let text = screen(&mut app, 120, 32);
    // The chat stays beside the help (its first letter may sit under the
    // help's border).
    assert!(text.contains("ou: hello there"), "{text}");
    assert!(text.contains("StreamFlow keys"));
    assert!(text.contains("cycle colours"));
    snapshot("help_overlay", &text);
    // Any key closes help; q then quits.
    app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
    assert!(!app.show_help);
    app.on_key(KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE));
    assert!(app.quit);
}

/// A call as it looks mid-way: three verified peers, safety words, chat.
fn app_in_a_call() -> App {
    let mut app = app_with_peers(3);
    app.status.connection = "in the call".into();
    app.status.safety_words = "abdominal unsworn gladness tapioca".into();
    app.status.tty = "tty 38 ms".into();
    app.notice("peer0 joined (verified)");
    app
}

/// The screen as one line (rows joined by a space), so words that wrap
/// across rows can still be found.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn small_terminals_keep_the_safety_words_whole() {
    let words = "safety: abdominal unsworn gladness tapioca";
    for (w, h) in [(80u16, 24u16), (60, 20), (40, 12)] {
        let mut app = app_in_a_call();
        let text = screen(&mut app, w, h);
        let flat = one_line(&text);
        assert!(flat.contains(words), "{w}x{h}: safety words cut:\n{text}");
        assert!(text.contains('▀'), "{w}x{h}: video shown:\n{text}");
        snapshot(&format!("call_{w}x{h}"), &text);
        // Chat opens as a strip, with who is in the call.
        app.on_key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
        let text = screen(&mut app, w, h);
        let flat = one_line(&text);
        assert!(
            flat.contains(words),
            "{w}x{h} chat: safety words cut:\n{text}"
        );
        assert!(text.contains("Chat"), "{w}x{h}: chat strip:\n{text}");
        snapshot(&format!("call_{w}x{h}_chat"), &text);
        // The help overlay names them too.
        app.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        app.on_key(KeyEvent::new(KeyCode::Char('?'), KeyModifiers::NONE));
        let text = screen(&mut app, w, h);
        assert!(text.contains("abdominal unsworn"), "{w}x{h} help:\n{text}");
    }
    // At 80 columns the words share the status line.
    let mut app = app_in_a_call();
    let text = screen(&mut app, 80, 24);
    let last = text.lines().last().unwrap();
    assert!(last.contains(words), "{last}");
    // At 80x24 the video takes the width: two tiles side by side span it.
    let top = text.lines().next().unwrap();
    assert!(top.contains("me (you)") && top.contains("peer0"), "{top}");
}

#[test]
fn small_terminal_and_focus() {
    let mut app = app_with_peers(3);
    // Too small for four tiles: one at a time, the first of the others.
    let text = screen(&mut app, 40, 12);
    assert!(!text.contains("In the call"));
    assert!(text.contains('▀'));
    assert!(text.starts_with("peer0"), "{text}");
    assert!(text.lines().next().unwrap().contains("2/4"), "{text}");
    app.on_key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE));
    assert!(screen(&mut app, 40, 12).starts_with("peer1"));
    app.focused_tile = None;
    // Tiny terminals don't panic.
    for (w, h) in [(1, 1), (5, 2), (20, 3)] {
        screen(&mut app, w, h);
    }
    screen(&mut app, 100, 30);
    app.on_key(KeyEvent::new(KeyCode::Char('f'), KeyModifiers::NONE));
    let text = screen(&mut app, 100, 30);
    assert!(text.lines().next().unwrap().starts_with("peer0"), "{text}");
    assert!(!text.lines().next().unwrap().contains("me (you)"));
}

/// The real binary in tmux: `streamflow demo` shows coloured half-blocks and
/// the three demo peers, and `q` leaves a restored terminal.
#[test]
fn demo_in_tmux() {
    let tmux = |args: &[&str]| {
        Command::new("tmux")
            .args(["-L", &format!("sf-test-{}", std::process::id())])
            .args(args)
            .output()
            .expect("tmux must be installed (scripts/debian-packages.txt)")
    };
    let bin = env!("CARGO_BIN_EXE_streamflow");
    let started = tmux(&[
        "new-session",
        "-d",
        "-x",
        "160",
        "-y",
        "48",
        "-e",
        "COLORTERM=truecolor",
        &format!("{bin} demo --audio-source none --audio-sink none; echo EXITED $?; sleep 60"),
    ]);
    assert!(started.status.success(), "{started:?}");
    let capture =
        || String::from_utf8_lossy(&tmux(&["capture-pane", "-e", "-p"]).stdout).into_owned();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut screen = String::new();
    while Instant::now() < deadline {
        screen = capture();
        if ["Ada", "Grace", "Linus", "▀", "\x1b[38;2;"]
            .iter()
            .all(|s| screen.contains(s))
            && screen.contains("fps")
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let ok = ["Ada", "Grace", "Linus", "▀", "\x1b[38;2;", "\x1b[48;2;"]
        .iter()
        .all(|s| screen.contains(s));
    if !ok {
        tmux(&["kill-server"]);
        panic!("demo screen incomplete:\n{screen}");
    }
    tmux(&["send-keys", "q"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut exited = String::new();
    while Instant::now() < deadline {
        exited = capture();
        if exited.contains("EXITED") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let alternate = String::from_utf8_lossy(&tmux(&["display", "-p", "#{alternate_on}"]).stdout)
        .trim()
        .to_string();
    tmux(&["kill-server"]);
    assert!(
        exited.contains("EXITED 0"),
        "demo did not exit cleanly:\n{exited}"
    );
    assert_eq!(alternate, "0", "still in the alternate screen");
    assert!(!exited.contains('▀'), "video left on the restored screen");
}

/// Peers without video say why ("camera off", "view only") and show no rate.
#[test]
fn peers_without_video_say_why() {
    use streamflow::session::state::Camera;
    let mut app = app_with_peers(3);
    app.set_camera("id0", Camera::Off);
    app.set_camera("id1", Camera::Absent);
    let text = screen(&mut app, 120, 32);
    assert!(text.contains("camera off"), "{text}");
    assert!(text.contains("view only"), "{text}");
    for line in text
        .lines()
        .filter(|l| l.contains("peer0") || l.contains("peer1"))
    {
        assert!(!line.contains("fps"), "{line}");
    }
}

/// The host's `s` shows the invite and the whole join line, unwrapped.
#[test]
fn the_share_overlay_shows_the_invite_whole() {
    use streamflow::tui::app::Share;
    let mut app = app_with_peers(1);
    let invite = "k7f3m2q9xw4hd8ta-banjo-velvet-canyon-pellet-drift";
    app.share = Some(Share {
        invite: invite.into(),
        relay: "ws://203.0.113.7:8787".into(),
    });
    app.on_key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE));
    let text = screen(&mut app, 100, 30);
    assert!(
        text.contains(&format!(
            "streamflow join {invite} --relay ws://203.0.113.7:8787"
        )),
        "{text}"
    );
    assert!(text.contains(&format!("invite: {invite}")), "{text}");
    snapshot("share_overlay", &text);
    app.on_key(KeyEvent::new(KeyCode::Char('x'), KeyModifiers::NONE));
    assert!(!app.show_share);
}

/// `m` mutes (a command for the session) and the status line says so.
#[test]
fn m_mutes_and_the_status_line_shows_it() {
    use streamflow::media::audio::engine::{AudioEngine, AudioSetup};
    use streamflow::session::SessionCommand;
    let mut app = app_with_peers(1);
    // Without voice, `m` explains instead.
    assert!(app
        .on_key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE))
        .is_none());
    assert!(app.chat.back().unwrap().text.contains("no voice"));
    // The hint is whole in the one-line chat preview at 80 columns, and
    // cut between words (never inside one) where it can't be.
    use streamflow::tui::keys::NO_VOICE;
    let text = screen(&mut app, 80, 24);
    assert!(text.contains(NO_VOICE), "{text}");
    for width in [40u16, 50, 60] {
        let text = screen(&mut app, width, 24);
        let row = text.lines().find(|l| l.starts_with("no voice")).unwrap();
        let shown = row.split('…').next().unwrap();
        assert!(row.contains('…'), "{row}");
        let rest = &NO_VOICE[shown.len()..];
        assert!(rest.starts_with(' '), "cut inside a word at {width}: {row}");
    }
    let (engine, _packets) = AudioEngine::start(AudioSetup {
        source: None,
        sink: None,
        voice_processing: false,
        lip_sync: true,
    })
    .unwrap();
    app.audio = Some(engine.handle());
    let cmd = app.on_key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE));
    assert!(matches!(cmd, Some(SessionCommand::Mute(true))));
    let text = screen(&mut app, 120, 32);
    assert!(text.lines().last().unwrap().contains("muted (m)"), "{text}");
    let cmd = app.on_key(KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE));
    assert!(matches!(cmd, Some(SessionCommand::Mute(false))));
}
