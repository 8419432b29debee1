//! The TUI's state. Session events and keys change it; [`super::ui`] draws it.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use image::RgbImage;

use super::ladder::{Picture, LEVELS};
use super::render::{ColourMode, TileMemory};
use crate::media::capture::{now_us, Preview};
use crate::media::{jpeg, scale};
use crate::net::link::LinkStats;
use crate::room::Event;
use crate::session::{SessionCommand, SessionEvent};

const MAX_CHAT_LINES: usize = 500;
const MAX_INPUT: usize = 500;

pub struct Tile {
    pub id: String,
    pub name: Option<String>,
    pub verified: bool,
    pub mismatch: bool,
    pub camera_on: bool,
    /// Latest frame not drawn yet; decoded only when drawn (stale ones are
    /// skipped).
    pending: Option<Pending>,
    pub image: Option<RgbImage>,
    /// Pixel size and column step `image` was scaled for.
    scaled_for: ((u32, u32), u32),
    source: Option<RgbImage>,
    arrivals: VecDeque<Instant>,
    pub latency_ms: f64,
    /// Capture time (µs since the epoch) of the pending and the shown picture.
    pending_ts: u64,
    shown_ts: u64,
    pub memory: TileMemory,
    pub decode_failures: u64,
}

/// A picture waiting to be drawn.
enum Pending {
    Jpeg(Vec<u8>),
    /// Our own preview, already decoded.
    Image(RgbImage),
}

impl Tile {
    fn new(id: &str) -> Self {
        Tile {
            id: id.to_string(),
            name: None,
            verified: false,
            mismatch: false,
            camera_on: true,
            pending: None,
            image: None,
            scaled_for: ((0, 0), 0),
            source: None,
            arrivals: VecDeque::new(),
            latency_ms: 0.0,
            pending_ts: 0,
            shown_ts: 0,
            memory: TileMemory::default(),
            decode_failures: 0,
        }
    }

    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => format!("{}…", &self.id[..self.id.len().min(6)]),
        }
    }

    pub fn fps(&self) -> usize {
        self.arrivals.len()
    }

    /// Decodes the newest frame (if any, and `take_new`) and scales the
    /// picture to fit `px`, each pixel shown `column_step` columns wide.
    pub fn prepare(&mut self, px: (u32, u32), column_step: u32, take_new: bool) {
        let newest = if take_new || self.source.is_none() {
            self.pending.take()
        } else {
            None
        };
        match newest {
            Some(Pending::Jpeg(jpg)) => match jpeg::decode(&jpg) {
                Ok(img) => {
                    self.source = Some(img);
                    self.scaled_for = ((0, 0), 0);
                    self.shown_ts = self.pending_ts;
                }
                Err(_) => self.decode_failures += 1,
            },
            Some(Pending::Image(img)) => {
                self.source = Some(img);
                self.scaled_for = ((0, 0), 0);
            }
            None => {}
        }
        if self.scaled_for != (px, column_step) {
            if let Some(src) = &self.source {
                self.image = Some(scale::scale_to_fit_wide(src, px, column_step));
                self.scaled_for = (px, column_step);
            }
        }
    }

    /// Our own preview: already an image, drawn with the next video frame.
    pub fn set_preview(&mut self, img: RgbImage) {
        self.pending = Some(Pending::Image(img));
    }

    /// A new picture waits to be drawn.
    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Grid,
    Chat,
}

pub struct ChatLine {
    pub who: String,
    pub text: String,
    /// System notices (joins, warnings) are styled differently.
    pub system: bool,
}

#[derive(Default)]
pub struct Status {
    pub connection: String,
    pub relay: String,
    pub rtt: Option<Duration>,
    pub epoch: u64,
    pub safety_words: String,
    pub verification: String,
    pub up_kbps: f64,
    pub down_kbps: f64,
    pub render_fps: f64,
    pub bytes_per_frame: f64,
    pub decrypt_failures: u64,
    /// Our adaptive sending level (0 ..= adapt::TOP).
    pub level: usize,
    /// The terminal path: round trip, drain rate and picture level.
    pub tty: String,
}

pub struct App {
    pub me: Tile,
    pub peers: Vec<Tile>,
    pub chat: VecDeque<ChatLine>,
    pub input: String,
    pub focus: Focus,
    pub colour: ColourMode,
    /// Index into the tile list (0 = us) shown alone, if any.
    pub focused_tile: Option<usize>,
    pub show_help: bool,
    pub camera_on: bool,
    pub quit: bool,
    pub status: Status,
    pub preview: Option<Preview>,
    link_stats: Option<Arc<LinkStats>>,
    last_rate: (Instant, u64, u64),
    pub dirty: bool,
    pub ended: Option<crate::session::Ended>,
    /// When the next reconnect attempt happens, while offline.
    pub reconnect_at: Option<Instant>,
    pub chat_pending: usize,
    /// How far behind the terminal is: 1 = keeping up; the open-loop
    /// renderer raises it as writes take longer than the frame interval.
    pub pressure: u32,
    /// How video is drawn (the terminal path's quality rung).
    pub picture: Picture,
    /// This draw takes the newest video frames; false for a draw that only
    /// carries text (a key press), which must not wait for pictures.
    pub video_refresh: bool,
}

impl App {
    pub fn new(my_name: &str, colour: ColourMode, preview: Option<Preview>) -> Self {
        let mut me = Tile::new("you");
        me.name = Some(format!("{my_name} (you)"));
        me.verified = true;
        App {
            me,
            peers: Vec::new(),
            chat: VecDeque::new(),
            input: String::new(),
            focus: Focus::Grid,
            colour,
            focused_tile: None,
            show_help: false,
            camera_on: true,
            quit: false,
            status: Status {
                level: crate::media::adapt::TOP,
                connection: "starting".into(),
                verification: "unverified".into(),
                ..Status::default()
            },
            preview,
            link_stats: None,
            last_rate: (Instant::now(), 0, 0),
            dirty: true,
            ended: None,
            reconnect_at: None,
            chat_pending: 0,
            pressure: 1,
            picture: LEVELS[0],
            video_refresh: true,
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.push_chat(ChatLine {
            who: String::new(),
            text: text.into(),
            system: true,
        });
    }

    fn push_chat(&mut self, line: ChatLine) {
        if self.chat.len() == MAX_CHAT_LINES {
            self.chat.pop_front();
        }
        self.chat.push_back(line);
        self.dirty = true;
    }

    fn tile(&mut self, id: &str) -> &mut Tile {
        if let Some(i) = self.peers.iter().position(|t| t.id == id) {
            return &mut self.peers[i];
        }
        self.peers.push(Tile::new(id));
        self.peers.last_mut().expect("just pushed")
    }

    fn name_of(&self, id: &str) -> String {
        self.peers
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.label())
            .unwrap_or_else(|| id.to_string())
    }

    pub fn on_session(&mut self, ev: SessionEvent) {
        // A video frame is drawn with the next picture, not as text.
        if !matches!(ev, SessionEvent::Video { .. }) {
            self.dirty = true;
        }
        match ev {
            SessionEvent::Status(s) => self.status.connection = s,
            SessionEvent::Connected { relay, stats } => {
                self.status.connection = "connected".into();
                self.reconnect_at = None;
                self.status.relay = relay;
                self.link_stats = Some(stats);
            }
            SessionEvent::Rtt(rtt) => self.status.rtt = Some(rtt),
            SessionEvent::Reconnecting { attempt, delay } => {
                if self.reconnect_at.is_none() {
                    self.notice(
                        "connection to the relay lost; reconnecting (chat you type is kept)",
                    );
                }
                self.reconnect_at = Some(Instant::now() + delay);
                self.status.connection = format!("offline (attempt {attempt})");
                // Everyone re-verifies after the reconnect.
                self.peers.clear();
                self.focused_tile = None;
                self.status.verification = "unverified".into();
            }
            SessionEvent::Reconnected { relay } => {
                self.reconnect_at = None;
                self.status.connection = "connected".into();
                self.notice(format!("reconnected to {relay}"));
            }
            SessionEvent::ChatPending(n) => self.chat_pending = n,
            SessionEvent::ChatUndelivered { reason, .. } => {
                self.notice(format!("↳ not delivered: {reason}"));
            }
            SessionEvent::Quality { level, .. } => self.status.level = level,
            SessionEvent::Keys {
                epoch,
                safety_words,
            } => {
                self.status.epoch = epoch;
                self.status.safety_words = safety_words;
            }
            SessionEvent::PeerCamera { peer, on } => self.tile(&peer).camera_on = on,
            SessionEvent::Warning(w) => self.notice(w),
            SessionEvent::Ended(e) => {
                self.status.connection = format!("ended: {}", e.message);
                self.ended = Some(e);
            }
            SessionEvent::Room(e) => self.on_room(e),
            SessionEvent::Video {
                from,
                jpeg,
                timestamp_us,
                ..
            } => self.on_video(&from, jpeg, timestamp_us),
        }
    }

    fn on_room(&mut self, e: Event) {
        match e {
            Event::Joined { .. } => {
                self.status.connection = "in the call".into();
                self.notice("joined; waiting for others to verify the passphrase");
            }
            Event::PeerJoined { peer } => {
                self.tile(&peer);
            }
            Event::PeerVerified { peer, name, .. } => {
                let t = self.tile(&peer);
                t.verified = true;
                t.name = Some(name.clone());
                self.status.verification = "verified".into();
                self.notice(format!("{name} joined (verified)"));
            }
            Event::PeerLeft { peer, .. } => {
                let name = self.name_of(&peer);
                self.peers.retain(|t| t.id != peer);
                self.focused_tile = None;
                self.notice(format!("{name} left"));
            }
            Event::AuthMismatch { peer } => {
                self.tile(&peer).mismatch = true;
                let name = self.name_of(&peer);
                self.notice(format!(
                    "{name} could not prove the passphrase (wrong invite, or an attacker); ignored"
                ));
            }
            Event::WrongPassphrase => self.status.verification = "WRONG PASSPHRASE".into(),
            Event::Guessing { failed, wait } => self.notice(format!(
                "someone may be guessing the passphrase: {failed} failed attempts; new members now wait {:.0} s",
                wait.as_secs_f64()
            )),
            Event::KeyRotated { epoch } => self.status.epoch = epoch,
            Event::Chat { name, text, .. } => {
                self.push_chat(ChatLine {
                    who: name,
                    text,
                    system: false,
                });
            }
            Event::DecryptFailed { .. } => self.status.decrypt_failures += 1,
            Event::Frame { .. } | Event::PeerState { .. } => {}
        }
    }

    fn on_video(&mut self, from: &str, jpeg: Vec<u8>, timestamp_us: u64) {
        let now = Instant::now();
        let t = self.tile(from);
        t.pending = Some(Pending::Jpeg(jpeg));
        t.pending_ts = timestamp_us;
        t.latency_ms = now_us().saturating_sub(timestamp_us) as f64 / 1000.0;
        t.arrivals.push_back(now);
        while t
            .arrivals
            .front()
            .is_some_and(|a| now.duration_since(*a) > Duration::from_secs(1))
        {
            t.arrivals.pop_front();
        }
    }

    /// Translates a key into state changes and maybe a command for the session.
    pub fn on_key(&mut self, key: KeyEvent) -> Option<SessionCommand> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        // Nothing is bound to Alt: Alt+key is Esc then the key, typed
        // faster than the terminal could tell them apart.
        if key.modifiers.contains(KeyModifiers::ALT) {
            if let KeyCode::Char(_) = key.code {
                self.on_key(KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
                let mut plain = key;
                plain.modifiers.remove(KeyModifiers::ALT);
                return self.on_key(plain);
            }
        }
        self.dirty = true;
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return None;
        }
        if self.show_help {
            self.show_help = false;
            return None;
        }
        match self.focus {
            Focus::Chat => match key.code {
                KeyCode::Esc => self.focus = Focus::Grid,
                KeyCode::Enter => {
                    let text = std::mem::take(&mut self.input);
                    let text = text.trim().to_string();
                    if !text.is_empty() {
                        self.push_chat(ChatLine {
                            who: "you".into(),
                            text: text.clone(),
                            system: false,
                        });
                        return Some(SessionCommand::Chat(text));
                    }
                }
                KeyCode::Backspace => {
                    self.input.pop();
                }
                KeyCode::Char(c) if self.input.len() < MAX_INPUT => self.input.push(c),
                _ => {}
            },
            Focus::Grid => match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('v') => {
                    self.camera_on = !self.camera_on;
                    self.me.camera_on = self.camera_on;
                    return Some(SessionCommand::Camera(self.camera_on));
                }
                KeyCode::Tab | KeyCode::Char('i') => self.focus = Focus::Chat,
                KeyCode::Char('c') => self.colour = self.colour.next(),
                KeyCode::Char('f') => {
                    let tiles = self.peers.len() + 1;
                    self.focused_tile = match self.focused_tile {
                        None => Some(if tiles > 1 { 1 } else { 0 }),
                        Some(i) if i + 1 < tiles => Some(i + 1),
                        Some(_) => None,
                    };
                }
                KeyCode::Char('?') => self.show_help = true,
                _ => {}
            },
        }
        None
    }

    /// Once a second: traffic rates from the link counters.
    pub fn update_rates(&mut self) {
        let Some(stats) = &self.link_stats else {
            return;
        };
        let now = Instant::now();
        let (at, up0, down0) = self.last_rate;
        let secs = now.duration_since(at).as_secs_f64();
        if secs < 1.0 {
            return;
        }
        let up = stats.bytes_up.load(Relaxed);
        let down = stats.bytes_down.load(Relaxed);
        self.status.up_kbps = (up - up0) as f64 * 8.0 / 1000.0 / secs;
        self.status.down_kbps = (down - down0) as f64 * 8.0 / 1000.0 / secs;
        self.last_rate = (now, up, down);
        self.dirty = true;
    }

    /// Pulls our own latest preview frame.
    pub fn update_preview(&mut self) {
        let img = self
            .preview
            .as_ref()
            .and_then(|p| p.lock().ok().and_then(|mut slot| slot.take()));
        if let Some(img) = img {
            self.me.set_preview(img);
        }
    }

    /// Shows `jpeg` as a verified peer's newest frame (benchmarks, tests).
    pub fn feed_frame(&mut self, id: &str, name: &str, jpeg: Vec<u8>) {
        let t = self.tile(id);
        if t.name.as_deref() != Some(name) {
            t.name = Some(name.to_string());
            self.dirty = true;
        }
        let t = self.tile(id);
        t.verified = true;
        t.pending = Some(Pending::Jpeg(jpeg));
    }

    /// How old the oldest peer picture on screen is (µs), if any is shown.
    pub fn shown_age_us(&self) -> Option<u64> {
        let now = now_us();
        self.peers
            .iter()
            .filter(|t| t.shown_ts > 0)
            .map(|t| now.saturating_sub(t.shown_ts))
            .max()
    }

    /// A new picture (a peer's or our own) waits to be drawn.
    pub fn has_new_frames(&self) -> bool {
        self.me.has_pending() || self.peers.iter().any(Tile::has_pending)
    }
}
