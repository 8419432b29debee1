//! `--headless`: no TUI. stdout carries only events, one flat JSON object per
//! line (DESIGN.md §1); logs and notes go to stderr.

use crate::crypto::identity::Fingerprint;
use crate::identity::known::Known;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use crate::session::sharing::ShareCommand;
use crate::share::screen::ShareScreen;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::media::capture::now_us;
use crate::room::Event;
use crate::session::{self, exit, Ended, SessionCommand, SessionConfig, SessionEvent};

pub struct HeadlessOptions {
    /// Leave and exit 0 after this long.
    pub duration: Option<Duration>,
    /// Sent once, at half of the duration (or right after joining without one).
    pub send_chat: Option<String>,
    /// Which event types are printed (`--events`).
    pub events: EventFilter,
    /// Print `audio_clock` (only with something that plays or records).
    pub audio_clock: bool,
    /// Share a terminal running this command, at this size, once joined.
    pub share: Option<(String, u16, u16)>,
    /// `--record-share`: the first share seen, as asciinema v2.
    pub recorder: Option<crate::share::record::Recorder>,
}

impl HeadlessOptions {
    pub fn from_args(args: &crate::cli::ScriptArgs, audio_clock: bool) -> Self {
        HeadlessOptions {
            duration: args.duration.map(Duration::from_secs_f64),
            send_chat: args.send_chat.clone(),
            events: args.events.clone().unwrap_or_default(),
            audio_clock,
            share: None,
            recorder: None,
        }
    }

    pub fn with_recorder(mut self, recorder: Option<crate::share::record::Recorder>) -> Self {
        self.recorder = recorder;
        self
    }

    /// `--share CMD [--share-size COLSxROWS]` (80x24 by default).
    pub fn with_share(mut self, args: &crate::cli::ShareArgs) -> Self {
        self.share = args.share.clone().map(|command| {
            let (cols, rows) = args.share_size.unwrap_or((80, 24));
            (command, cols, rows)
        });
        self
    }
}

/// A line printed before the call starts (`host --headless` prints the
/// invite so), unless `--events` leaves it out.
pub fn print_before_call(events: &Option<EventFilter>, line: &Value) {
    let kind = line["type"].as_str().unwrap_or("");
    if events.as_ref().is_none_or(|f| f.shows(kind)) {
        print_line(line);
    }
}

/// The tile size asked of senders without `--tile`.
pub const DEFAULT_TILE: (u32, u32) = (80, 48);

/// Every event type headless prints, for `--events` (README lists them).
pub const EVENT_TYPES: &[&str] = &[
    "invite",
    "joined",
    "peer_joined",
    "peer_verified",
    "peer_renamed",
    "peer_left",
    "passphrase_disagrees",
    "unverified_churn",
    "auth_mismatch",
    "key_rotated",
    "safety_words",
    "chat",
    "chat_undelivered",
    "decrypt_failed",
    "guessing",
    "frame",
    "reconnecting",
    "reconnected",
    "call_ended",
    "video_paused",
    "peer_muted",
    "audio_clock",
    "audio_stats",
    "quality",
    "ack",
    "error",
];

/// `--events`: a comma-separated list of event types to print (`joined,chat`),
/// or of types to leave out, each with a `-` (`-frame,-audio_stats`).
/// `error` is always printed: a script must see why it failed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    only: Option<Vec<String>>,
    except: Vec<String>,
}

impl EventFilter {
    pub fn parse(s: &str) -> Result<EventFilter, String> {
        let mut filter = EventFilter::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (exclude, name) = match item.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, item),
            };
            if !EVENT_TYPES.contains(&name) {
                return Err(format!(
                    "no event type {name:?}; the types are: {}",
                    EVENT_TYPES.join(", ")
                ));
            }
            if exclude {
                filter.except.push(name.to_string());
            } else {
                filter
                    .only
                    .get_or_insert_with(Vec::new)
                    .push(name.to_string());
            }
        }
        if filter.only.is_some() && !filter.except.is_empty() {
            return Err("--events takes a list of types to print (joined,chat) or to leave out (-frame,-audio_stats), not both".into());
        }
        if filter == EventFilter::default() {
            return Err("--events needs event types, e.g. -frame or joined,chat".into());
        }
        Ok(filter)
    }

    fn shows(&self, kind: &str) -> bool {
        kind == "error"
            || (self
                .only
                .as_ref()
                .is_none_or(|o| o.iter().any(|t| t == kind))
                && !self.except.iter().any(|t| t == kind))
    }
}

/// The JSON line for a session event, if it has one.
pub fn event_json(event: &SessionEvent) -> Option<Value> {
    Some(match event {
        SessionEvent::Room(e) => match e {
            Event::Joined { you, room, .. } => json!({"type":"joined","you":you,"room":room}),
            Event::PeerJoined { peer } => json!({"type":"peer_joined","peer":peer}),
            // Handled by the session (only a granted member's reach the pty).
            Event::ShareKeys { .. } => return None,
            Event::PeerVerified {
                peer,
                name,
                tag,
                safety_words,
                identity,
                known,
                known_as,
            } => {
                json!({"type":"peer_verified","peer":peer,"name":name,"tag":tag,"safety_words":safety_words,
                       "identity":Fingerprint::of(identity).hex(),
                       "known":known.unwrap_or(Known::New).as_str(),
                       "known_as":known_as})
            }
            Event::PeerRenamed { peer, old, new } => {
                json!({"type":"peer_renamed","peer":peer,"old":old,"new":new})
            }
            Event::PassphraseDisagrees { peer } => {
                json!({"type":"passphrase_disagrees","peer":peer})
            }
            Event::UnverifiedChurn { count } => {
                json!({"type":"unverified_churn","count":count})
            }
            Event::PeerLeft { peer, reason } => {
                json!({"type":"peer_left","peer":peer,"reason":reason})
            }
            Event::AuthMismatch { peer } => json!({"type":"auth_mismatch","peer":peer}),
            Event::KeyRotated { epoch } => json!({"type":"key_rotated","epoch":epoch}),
            Event::Chat { from, name, text } => {
                json!({"type":"chat","from":from,"name":name,"text":text})
            }
            // Aggregated per sender by `run` (see DecryptFailures).
            Event::DecryptFailed { from, reason } => {
                json!({"type":"decrypt_failed","from":from,"reason":reason,"count":1})
            }
            Event::Guessing { failed, wait } => {
                json!({"type":"guessing","failed":failed,"wait_ms":wait.as_millis() as u64})
            }
            Event::WrongPassphrase | Event::Frame { .. } | Event::PeerState { .. } => return None,
        },
        SessionEvent::Video {
            from,
            seq,
            jpeg,
            timestamp_us,
            ..
        } => {
            let latency_ms = now_us().saturating_sub(*timestamp_us) as f64 / 1000.0;
            json!({"type":"frame","from":from,"seq":seq,"bytes":jpeg.len(),
                   "latency_ms":(latency_ms * 10.0).round() / 10.0})
        }
        SessionEvent::Reconnecting {
            attempt,
            delay,
            reason,
        } => {
            json!({"type":"reconnecting","attempt":attempt,"delay_ms":delay.as_millis() as u64,"reason":reason})
        }
        SessionEvent::CallEnded(reason) => json!({"type":"call_ended","reason":reason}),
        SessionEvent::VideoPaused { incoming, paused } => {
            json!({"type":"video_paused","direction":if *incoming {"in"} else {"out"},"paused":paused})
        }
        SessionEvent::PeerMuted { peer, muted } => {
            json!({"type":"peer_muted","peer":peer,"muted":muted})
        }
        SessionEvent::Reconnected { .. } => json!({"type":"reconnected"}),
        SessionEvent::ChatUndelivered { text, reason } => {
            json!({"type":"chat_undelivered","text":text,"reason":reason})
        }
        SessionEvent::Quality {
            level,
            jpeg_quality,
            fps,
            reason,
        } => json!({"type":"quality","level":level,"max_level":crate::media::adapt::TOP,
                    "jpeg_quality":jpeg_quality,"fps":fps,"reason":reason}),
        SessionEvent::ShareStarted { from, cols, rows } => {
            json!({"type":"share_started","from":from,"cols":cols,"rows":rows})
        }
        SessionEvent::ShareStopped { from, reason } => {
            json!({"type":"share_stopped","from":from,"reason":reason})
        }
        SessionEvent::ShareControl { from, to } => {
            json!({"type":"share_control","from":from,"to":to})
        }
        SessionEvent::IdentityChanged {
            peer,
            name,
            identity,
            previous,
        } => json!({"type":"peer_identity_changed","peer":peer,"name":name,
                    "identity":identity.hex(),
                    "previous":previous.as_ref().map(|p| p.fingerprint.hex()),
                    "previous_verified":previous.as_ref().is_some_and(|p| p.verified),
                    "since":previous.as_ref().map(|p| p.since.clone()),
                    "message":crate::identity::changed_warning(name, previous.as_ref())}),
        SessionEvent::IdentitiesVerified(list) => json!({"type":"identities_verified",
            "peers":list.iter().map(|(peer, fp)| json!({"peer":peer,"identity":fp.hex()})).collect::<Vec<_>>()}),
        SessionEvent::Ended(e) if e.code != exit::OK => error_json(e),
        _ => return None,
    })
}

pub fn error_code(code: u8) -> &'static str {
    match code {
        exit::WRONG_PASSPHRASE => "wrong_passphrase",
        exit::RELAY_UNREACHABLE => "relay_unreachable",
        exit::USAGE => "usage",
        _ => "error",
    }
}

fn error_json(e: &Ended) -> Value {
    json!({"type":"error","code":error_code(e.code),"message":e.message})
}

fn print_line(line: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth crashing over.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Lines from stdin, on a thread of their own (a blocking read must not
/// hold up the runtime's shutdown).
fn read_commands() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    let _ = std::thread::Builder::new()
        .name("stdin-commands".into())
        .spawn(move || {
            use std::io::BufRead;
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
        });
    rx
}

/// Longest command line taken from stdin (a whole chat line of
/// `MAX_CHAT_CHARS` characters fits, escaped).
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A command on stdin, one JSON object per line: `{"type":"mute"}`,
/// `{"type":"unmute"}`, `{"type":"chat","text":"…"}`, `{"type":"leave"}`,
/// `{"type":"verify"}` (optionally with the `"words"` compared).
fn parse_command(line: &str) -> Result<SessionCommand, String> {
    if line.len() > MAX_COMMAND_BYTES {
        return Err(format!(
            "command longer than {MAX_COMMAND_BYTES} bytes ignored"
        ));
    }
    if line.trim().is_empty() {
        return Err("empty line: one JSON object per line, e.g. {\"type\":\"mute\"}".into());
    }
    let v: Value = serde_json::from_str(line.trim())
        .map_err(|_| "expected one JSON object per line, e.g. {\"type\":\"mute\"}".to_string())?;
    match v["type"].as_str() {
        Some("mute") => Ok(SessionCommand::Mute(true)),
        Some("unmute") => Ok(SessionCommand::Mute(false)),
        Some("leave") => Ok(SessionCommand::Leave),
        Some("verify") => Ok(SessionCommand::Verify {
            words: v["words"].as_str().map(str::to_string),
        }),
        Some("grant") => match v["peer"].as_str() {
            Some(peer) if !peer.is_empty() => {
                Ok(SessionCommand::Share(ShareCommand::Grant(peer.to_string())))
            }
            _ => Err("grant needs a \"peer\" (an id from peer_verified)".into()),
        },
        Some("revoke") => Ok(SessionCommand::Share(ShareCommand::Revoke)),
        Some("stop_share") => Ok(SessionCommand::Share(ShareCommand::Stop)),
        Some("resize_share") => match (v["cols"].as_u64(), v["rows"].as_u64()) {
            (Some(c), Some(r)) => {
                let (cols, rows) = crate::cli::parse_share_size(&format!("{c}x{r}"))?;
                Ok(SessionCommand::Share(ShareCommand::Resize { cols, rows }))
            }
            _ => Err("resize_share needs \"cols\" and \"rows\"".into()),
        },
        Some("keys") => match v["text"].as_str() {
            Some(t) if !t.is_empty() => Ok(SessionCommand::Share(ShareCommand::Keys {
                to: v["to"].as_str().map(str::to_string),
                keys: t.as_bytes().to_vec(),
            })),
            _ => Err(
                "keys needs a \"text\" (and \"to\": the sharer, to type in someone else's share)"
                    .into(),
            ),
        },
        Some("chat") => match v["text"].as_str() {
            Some(t) if t.chars().count() > crate::room::MAX_CHAT_CHARS => Err(format!(
                "chat lines are at most {} characters, this one has {}: not sent (split it)",
                crate::room::MAX_CHAT_CHARS,
                t.chars().count()
            )),
            Some(t) if !t.trim().is_empty() => Ok(SessionCommand::Chat(t.to_string())),
            _ => Err("chat needs a \"text\"".into()),
        },
        _ => Err(
            "unknown command: mute, unmute, chat, leave, verify, grant, revoke, keys, resize_share or stop_share".into(),
        ),
    }
}

/// `share_screen` lines: at most 10 a second per sharer, only when the
/// text or cursor changed, and the last screen always printed.
#[derive(Default)]
struct ShareScreens {
    by_sharer: HashMap<String, ShareLine>,
}

#[derive(Default)]
struct ShareLine {
    printed: Option<(tokio::time::Instant, Value)>,
    pending: Option<Value>,
}

const SHARE_SCREEN_EVERY: Duration = Duration::from_millis(100);

impl ShareScreens {
    fn add(
        &mut self,
        from: &str,
        screen: &ShareScreen,
        now: tokio::time::Instant,
    ) -> Option<Value> {
        let line = json!({"type":"share_screen","from":from,"cols":screen.cols,"rows":screen.rows,
            "cursor":[screen.cursor.0, screen.cursor.1],"text":screen.text()});
        let entry = self.by_sharer.entry(from.to_string()).or_default();
        if entry.printed.as_ref().is_some_and(|(_, l)| *l == line) {
            entry.pending = None;
            return None;
        }
        match &entry.printed {
            Some((at, _)) if now.duration_since(*at) < SHARE_SCREEN_EVERY => {
                entry.pending = Some(line);
                None
            }
            _ => {
                entry.printed = Some((now, line.clone()));
                entry.pending = None;
                Some(line)
            }
        }
    }

    fn due(&mut self, now: tokio::time::Instant) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in self.by_sharer.values_mut() {
            let ready = entry
                .printed
                .as_ref()
                .is_none_or(|(at, _)| now.duration_since(*at) >= SHARE_SCREEN_EVERY);
            if ready {
                if let Some(line) = entry.pending.take() {
                    entry.printed = Some((now, line.clone()));
                    out.push(line);
                }
            }
        }
        out
    }

    fn stopped(&mut self, from: &str) -> Vec<Value> {
        let last = self.by_sharer.remove(from).and_then(|e| e.pending);
        last.into_iter().collect()
    }
}

/// Undecryptable messages, summed per sender: a peer with the wrong key
/// sends ~60 a second, which is one fact, not 60 lines. The first of a
/// burst is printed at once, the rest at most once a second per sender,
/// as `count`.
#[derive(Default)]
struct DecryptFailures {
    by_sender: HashMap<String, Pending>,
}

struct Pending {
    last_printed: tokio::time::Instant,
    count: u64,
    reason: String,
}

/// Senders tracked at once; more are printed as they come (the relay caps
/// a room's size well below this anyway).
const MAX_TRACKED_SENDERS: usize = 256;
const DECRYPT_REPORT_EVERY: Duration = Duration::from_secs(1);

impl DecryptFailures {
    /// One failure; the line to print now, if any.
    fn add(&mut self, from: &str, reason: &str, now: tokio::time::Instant) -> Option<Value> {
        match self.by_sender.get_mut(from) {
            Some(p) if now < p.last_printed + DECRYPT_REPORT_EVERY => {
                p.count += 1;
                p.reason = reason.to_string();
                None
            }
            Some(p) => {
                let count = p.count + 1;
                p.count = 0;
                p.last_printed = now;
                Some(decrypt_json(from, reason, count))
            }
            None => {
                if self.by_sender.len() < MAX_TRACKED_SENDERS {
                    self.by_sender.insert(
                        from.to_string(),
                        Pending {
                            last_printed: now,
                            count: 0,
                            reason: String::new(),
                        },
                    );
                }
                Some(decrypt_json(from, reason, 1))
            }
        }
    }

    /// Lines for senders whose second is up (all of them if `all`).
    fn due(&mut self, now: tokio::time::Instant, all: bool) -> Vec<Value> {
        let mut out = Vec::new();
        self.by_sender.retain(|from, p| {
            let up = now >= p.last_printed + DECRYPT_REPORT_EVERY;
            if p.count > 0 && (up || all) {
                out.push(decrypt_json(from, &p.reason, p.count));
                p.count = 0;
                p.last_printed = now;
            }
            // Quiet senders are forgotten.
            p.count > 0 || now < p.last_printed + 10 * DECRYPT_REPORT_EVERY
        });
        out
    }
}

fn decrypt_json(from: &str, reason: &str, count: u64) -> Value {
    json!({"type":"decrypt_failed","from":from,"reason":reason,"count":count})
}

/// What reaches stdout: the `--events` filter, nothing about a peer after
/// it left, and `joined` before anything else of the call.
struct Printer {
    filter: EventFilter,
    audio_clock: bool,
    joined: bool,
    /// Peers that left (until they join again), bounded.
    departed: std::collections::HashSet<String>,
    /// Lines held until `joined` is printed.
    held: Vec<Value>,
}

/// Departed peers remembered; past this the oldest knowledge is dropped
/// (a relay churning thousands of ids gets a few stray lines, not memory).
const MAX_DEPARTED: usize = 4096;

impl Printer {
    fn print(&mut self, line: Value) {
        let kind = line["type"].as_str().unwrap_or("").to_string();
        let about = line["peer"]
            .as_str()
            .or(line["from"].as_str())
            .map(String::from);
        match kind.as_str() {
            "joined" => self.joined = true,
            "peer_joined" => {
                if let Some(p) = &about {
                    self.departed.remove(p);
                }
            }
            "peer_left" => {
                if let Some(p) = about.clone() {
                    if self.departed.len() >= MAX_DEPARTED {
                        self.departed.clear();
                    }
                    if !self.departed.insert(p) {
                        return;
                    }
                }
            }
            "audio_clock" if !self.audio_clock => return,
            "audio_clock" if !self.joined => {
                self.held.push(line);
                return;
            }
            _ => {
                if about.is_some_and(|p| self.departed.contains(&p)) {
                    return;
                }
            }
        }
        if self.filter.shows(&kind) {
            print_line(&line);
        }
        if kind == "joined" {
            for line in std::mem::take(&mut self.held) {
                self.print(line);
            }
        }
    }
}

pub async fn run(config: SessionConfig, options: HeadlessOptions) -> u8 {
    use tokio::signal::unix::{signal, SignalKind};
    let (events_tx, mut events_rx) = mpsc::channel(4096);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    // Signals that would end the process leave the room first (the others
    // see a goodbye, not a timeout).
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::interrupt()),
    );
    let (mut terminate, mut hangup, mut interrupt) = match signals {
        (Ok(t), Ok(h), Ok(i)) => (t, h, i),
        _ => {
            eprintln!("streamflow: cannot install signal handlers");
            return exit::ERROR;
        }
    };
    let relays = config.relays.join(", ");
    let mut session = tokio::spawn(session::run(config, events_tx, commands_rx));
    let mut stdin_commands = read_commands();
    let mut stdin_open = true;
    let start = tokio::time::Instant::now();
    let far = start + Duration::from_secs(100 * 365 * 86_400);
    let end_at = options.duration.map(|d| start + d).unwrap_or(far);
    let chat_at = options
        .duration
        .map(|d| start + d / 2)
        .unwrap_or(start + Duration::from_secs(2));
    let mut chat = options.send_chat;
    let mut left = false;
    let mut failures = DecryptFailures::default();
    let mut safety_words = String::new();
    let mut report = tokio::time::interval(DECRYPT_REPORT_EVERY);
    let mut out = Printer {
        filter: options.events,
        audio_clock: options.audio_clock,
        joined: false,
        departed: Default::default(),
        held: Vec::new(),
    };
    // Why the relay couldn't be reached, for a call that never connected.
    let mut trouble: Option<String> = None;
    let mut screens = ShareScreens::default();
    let mut share_tick = tokio::time::interval(SHARE_SCREEN_EVERY);
    let mut share = options.share;
    let mut recorder = options.recorder;
    let mut on_event = |ev: SessionEvent,
                        failures: &mut DecryptFailures,
                        out: &mut Printer,
                        screens: &mut ShareScreens| match ev {
        SessionEvent::Warning(w) => eprintln!("streamflow: {w}"),
        SessionEvent::ShareScreen { from, screen } => {
            if let Some(r) = &mut recorder {
                if let Err(e) = r.screen(&from, &screen) {
                    eprintln!("streamflow: --record-share: {e}; recording stopped");
                    recorder = None;
                }
            }
            if let Some(line) = screens.add(&from, &screen, tokio::time::Instant::now()) {
                out.print(line);
            }
        }
        SessionEvent::Status(s) => eprintln!("streamflow: {s}"),
        SessionEvent::Room(Event::DecryptFailed { from, reason }) => {
            if let Some(line) = failures.add(&from, &reason, tokio::time::Instant::now()) {
                out.print(line);
            }
        }
        SessionEvent::AudioReady(handle) => {
            out.print(json!({"type":"audio_clock","started_us":handle.started_us()}));
        }
        SessionEvent::AudioStats(stats) => {
            for st in stats {
                out.print(
                    json!({"type":"audio_stats","from":st.from,"packets":st.packets,
                    "lost":st.lost,"concealed":st.concealed,
                    "jitter_ms":(st.jitter_ms * 10.0).round() / 10.0,
                    "playout_ms":(st.playout_ms * 10.0).round() / 10.0}),
                );
            }
        }
        SessionEvent::Keys {
            safety_words: words,
            epoch,
        } => {
            if words != safety_words {
                out.print(json!({"type":"safety_words","words":words,"epoch":epoch}));
                safety_words = words;
            }
        }
        ev => {
            if let SessionEvent::Reconnecting { reason, .. } = &ev {
                trouble = Some(reason.clone());
            }
            if let SessionEvent::ShareStopped { from, .. } = &ev {
                for line in screens.stopped(from) {
                    out.print(line);
                }
            }
            if let Some(line) = event_json(&ev) {
                out.print(line);
            }
        }
    };
    let ended = loop {
        let leave = tokio::select! {
            ev = events_rx.recv() => {
                if let Some(ev) = ev {
                    on_event(ev, &mut failures, &mut out, &mut screens);
                }
                if out.joined {
                    if let Some((command, cols, rows)) = share.take() {
                        let _ = commands_tx.send(SessionCommand::Share(ShareCommand::Start { command, cols, rows })).await;
                    }
                }
                false
            }
            _ = share_tick.tick() => {
                for line in screens.due(tokio::time::Instant::now()) {
                    out.print(line);
                }
                false
            }
            _ = report.tick() => {
                for line in failures.due(tokio::time::Instant::now(), false) {
                    out.print(line);
                }
                false
            }
            _ = tokio::time::sleep_until(chat_at), if chat.is_some() => {
                if let Some(text) = chat.take() {
                    let _ = commands_tx.send(SessionCommand::Chat(text)).await;
                }
                false
            }
            line = stdin_commands.recv(), if stdin_open => {
                match line.map(|l| parse_command(&l)) {
                    Some(Ok(cmd)) => {
                        out.print(json!({"type":"ack","command":command_name(&cmd)}));
                        if matches!(cmd, SessionCommand::Leave) {
                            true
                        } else {
                            let _ = commands_tx.send(cmd).await;
                            false
                        }
                    }
                    Some(Err(e)) => {
                        // Not fatal: the call goes on.
                        out.print(json!({"type":"error","code":"bad_command","message":e}));
                        eprintln!("streamflow: stdin: {e}");
                        false
                    }
                    None => {
                        // stdin closed: no more commands (not a reason to leave).
                        stdin_open = false;
                        false
                    }
                }
            }
            _ = tokio::time::sleep_until(end_at), if !left => true,
            _ = terminate.recv(), if !left => true,
            _ = hangup.recv(), if !left => true,
            _ = interrupt.recv(), if !left => true,
            result = &mut session => {
                break result.unwrap_or_else(|e| Ended { code: exit::ERROR, message: format!("session crashed: {e}") });
            }
        };
        if leave {
            left = true;
            let _ = commands_tx.send(SessionCommand::Leave).await;
        }
    };
    // Events still queued (e.g. the last frames) are printed before exiting.
    while let Ok(ev) = events_rx.try_recv() {
        on_event(ev, &mut failures, &mut out, &mut screens);
    }
    for line in screens.due(tokio::time::Instant::now() + SHARE_SCREEN_EVERY) {
        out.print(line);
    }
    for line in failures.due(tokio::time::Instant::now(), true) {
        out.print(line);
    }
    let mut ended = ended;
    if ended.code == exit::OK && !out.joined {
        // Leaving (--duration, a signal, `leave`) before the call ever
        // connected is not a success a script should take for one.
        ended = Ended {
            code: exit::RELAY_UNREACHABLE,
            message: format!(
                "never joined the call: the relay ({relays}) wasn't reached{}",
                trouble.map(|t| format!(" ({t})")).unwrap_or_default()
            ),
        };
    }
    if ended.code != exit::OK {
        out.print(error_json(&ended));
        eprintln!("streamflow: {}", ended.message);
    }
    ended.code
}

/// The `command` of an `ack`.
fn command_name(cmd: &SessionCommand) -> &'static str {
    match cmd {
        SessionCommand::Mute(true) => "mute",
        SessionCommand::Mute(false) => "unmute",
        SessionCommand::Chat(_) => "chat",
        SessionCommand::Leave => "leave",
        SessionCommand::Verify { .. } => "verify",
        SessionCommand::Share(ShareCommand::Grant(_)) => "grant",
        SessionCommand::Share(ShareCommand::Revoke) => "revoke",
        SessionCommand::Share(ShareCommand::Keys { .. }) => "keys",
        SessionCommand::Share(ShareCommand::Stop) => "stop_share",
        SessionCommand::Share(ShareCommand::Resize { .. }) => "resize_share",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_commands() {
        assert!(matches!(
            parse_command(r#"{"type":"mute"}"#),
            Ok(SessionCommand::Mute(true))
        ));
        assert!(matches!(
            parse_command(r#"{"type":"unmute"}"#),
            Ok(SessionCommand::Mute(false))
        ));
        assert!(
            matches!(parse_command(r#"{"type":"chat","text":"hi"}"#), Ok(SessionCommand::Chat(t)) if t == "hi")
        );
        assert!(parse_command("mute").is_err());
        assert!(parse_command(r#"{"type":"chat"}"#).is_err());
        assert!(parse_command(&"x".repeat(100_000)).is_err());
        assert!(parse_command("").is_err());
        assert!(parse_command(r#"{"type":"dance"}"#).is_err());
        let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(5_000));
        assert!(parse_command(&long).unwrap_err().contains("at most 2000"));
    }

    #[test]
    fn event_filters() {
        let f = EventFilter::parse("-frame,-audio_stats").unwrap();
        assert!(!f.shows("frame") && f.shows("joined") && f.shows("error"));
        let f = EventFilter::parse("joined,chat").unwrap();
        assert!(f.shows("chat") && !f.shows("frame") && f.shows("error"));
        assert!(EventFilter::parse("frames")
            .unwrap_err()
            .contains("no event type"));
        assert!(EventFilter::parse("joined,-frame").is_err());
        assert!(EventFilter::parse(",").is_err());
    }

    #[test]
    fn decrypt_failures_are_summed_per_sender_per_second() {
        let t0 = tokio::time::Instant::now();
        let mut f = DecryptFailures::default();
        assert!(
            f.add("a", "bad tag", t0).is_some(),
            "the first is said at once"
        );
        for i in 1..60 {
            let at = t0 + Duration::from_millis(i * 15);
            assert!(f.add("a", "bad tag", at).is_none());
        }
        assert!(f.add("b", "bad tag", t0).is_some(), "per sender");
        assert!(f.due(t0 + Duration::from_millis(900), false).is_empty());
        let lines = f.due(t0 + Duration::from_millis(1000), false);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["count"], 59);
        assert_eq!(lines[0]["from"], "a");
        // Quiet senders are dropped after a while.
        f.due(t0 + Duration::from_secs(30), false);
        assert!(f.by_sender.is_empty());
    }
}
