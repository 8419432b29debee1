//! `--headless`: no TUI. stdout carries only events, one flat JSON object per
//! line (DESIGN.md §1); logs and notes go to stderr.

use std::io::Write;
use std::time::Duration;

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
}

/// The JSON line for a session event, if it has one.
pub fn event_json(event: &SessionEvent) -> Option<Value> {
    Some(match event {
        SessionEvent::Room(e) => match e {
            Event::Joined {
                you,
                room,
                safety_words,
            } => json!({"type":"joined","you":you,"room":room,"safety_words":safety_words}),
            Event::PeerJoined { peer } => json!({"type":"peer_joined","peer":peer}),
            Event::PeerVerified {
                peer,
                name,
                safety_words,
            } => {
                json!({"type":"peer_verified","peer":peer,"name":name,"safety_words":safety_words})
            }
            Event::PeerLeft { peer, reason } => {
                json!({"type":"peer_left","peer":peer,"reason":reason})
            }
            Event::AuthMismatch { peer } => json!({"type":"auth_mismatch","peer":peer}),
            Event::KeyRotated { epoch } => json!({"type":"key_rotated","epoch":epoch}),
            Event::Chat { from, name, text } => {
                json!({"type":"chat","from":from,"name":name,"text":text})
            }
            Event::DecryptFailed { from, reason } => {
                json!({"type":"decrypt_failed","from":from,"reason":reason})
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
        SessionEvent::Reconnecting { attempt, delay } => {
            json!({"type":"reconnecting","attempt":attempt,"delay_ms":delay.as_millis() as u64})
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

fn print(line: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not worth crashing over.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

pub async fn run(config: SessionConfig, options: HeadlessOptions) -> u8 {
    let (events_tx, mut events_rx) = mpsc::channel(4096);
    let (commands_tx, commands_rx) = mpsc::channel(64);
    let mut session = tokio::spawn(session::run(config, events_tx, commands_rx));
    let start = tokio::time::Instant::now();
    let far = start + Duration::from_secs(100 * 365 * 86_400);
    let end_at = options.duration.map(|d| start + d).unwrap_or(far);
    let chat_at = options
        .duration
        .map(|d| start + d / 2)
        .unwrap_or(start + Duration::from_secs(2));
    let mut chat = options.send_chat;
    let mut left = false;
    let ended = loop {
        tokio::select! {
            ev = events_rx.recv() => match ev {
                Some(SessionEvent::Warning(w)) => eprintln!("streamflow: {w}"),
                Some(SessionEvent::Status(s)) => eprintln!("streamflow: {s}"),
                Some(ev) => {
                    if let Some(line) = event_json(&ev) {
                        print(&line);
                    }
                }
                None => {}
            },
            _ = tokio::time::sleep_until(chat_at), if chat.is_some() => {
                if let Some(text) = chat.take() {
                    let _ = commands_tx.send(SessionCommand::Chat(text)).await;
                }
            }
            _ = tokio::time::sleep_until(end_at), if !left => {
                left = true;
                let _ = commands_tx.send(SessionCommand::Leave).await;
            }
            _ = tokio::signal::ctrl_c(), if !left => {
                left = true;
                let _ = commands_tx.send(SessionCommand::Leave).await;
            }
            result = &mut session => {
                break result.unwrap_or_else(|e| Ended { code: exit::ERROR, message: format!("session crashed: {e}") });
            }
        }
    };
    // Events still queued (e.g. the last frames) are printed before exiting.
    while let Ok(ev) = events_rx.try_recv() {
        if let Some(line) = event_json(&ev) {
            print(&line);
        }
    }
    if ended.code != exit::OK {
        print(&error_json(&ended));
        eprintln!("streamflow: {}", ended.message);
    }
    ended.code
}
