//! The TUI's state. Session events and keys ([`super::keys`]) change it;
//! [`super::ui`] draws it.

use crate::identity::known::Known;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ladder::{Picture, LEVELS};
use super::line_edit::LineEditor;
use super::render::ColourMode;
pub use super::tile::Tile;
use crate::media::audio::engine::AudioHandle;
use crate::media::capture::{now_us, Preview};
use crate::net::link::LinkStats;
use crate::room::Event;
use crate::session::state::Camera;
use crate::session::SessionEvent;

const MAX_CHAT_LINES: usize = 500;
/// How long a flashed message (`c`, `f`) stays.
const FLASH: Duration = Duration::from_millis(2500);

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

/// What the host hands out: shown on `s`, unwrapped, one thing per line.
#[derive(Debug, Clone)]
pub struct Share {
    pub invite: String,
    pub relay: String,
}

impl Share {
    pub fn join_line(&self) -> String {
        format!("streamflow join {} --relay {}", self.invite, self.relay)
    }
}

#[derive(Default)]
pub struct Status {
    pub connection: String,
    pub relay: String,
    pub rtt: Option<Duration>,
    pub epoch: u64,
    /// Empty until someone is verified (nothing to compare before).
    pub safety_words: String,
    pub up_kbps: f64,
    pub down_kbps: f64,
    pub render_fps: f64,
    pub bytes_per_frame: f64,
    pub decrypt_failures: u64,
    /// Our adaptive sending level (0 ..= adapt::TOP).
    pub level: usize,
    /// The terminal path: round trip, drain rate and picture level.
    pub tty: String,
    /// Voice: the largest playout delay among senders (ms), if any.
    pub voice_delay_ms: Option<f64>,
}

pub struct App {
    pub me: Tile,
    /// Our own name as we chose it (others with it get tags).
    my_name: String,
    pub peers: Vec<Tile>,
    pub chat: VecDeque<ChatLine>,
    /// The chat line being typed.
    pub editor: LineEditor,
    /// Chat history rows scrolled up from the newest (PgUp/PgDn).
    pub chat_scroll: usize,
    /// The user was told this line is at its longest.
    pub(super) chat_full_told: bool,
    pub focus: Focus,
    pub colour: ColourMode,
    /// How video cells are drawn (`--cells`, `p` cycles).
    pub cells: super::cells::CellMode,
    /// What `--cells` asked for (pixel modes wait for the terminal's answer).
    pub cells_choice: super::cells::CellsChoice,
    /// The terminal's answer to the kitty graphics query (None: not asked,
    /// or no answer yet).
    pub kitty: Option<bool>,
    /// The terminal read the shared-memory query's picture: it runs on
    /// this machine, and pictures go through shared memory.
    pub kitty_shared: bool,
    /// The terminal speaks sixel (its device attributes say so) and its
    /// cells' size in pixels is known.
    pub sixel: Option<super::sixel::SixelTerminal>,
    /// The terminal's answer to the colour-register query, if any.
    pub(super) registers: Option<u16>,
    /// A cell's size in screen pixels (from the pty), if the terminal says.
    pub(super) cell_pixels: Option<(u16, u16)>,
    /// The first device-attributes answer came: pixel modes are decided.
    pub(super) pixels_decided: bool,
    /// We run under SSH (`SSH_CONNECTION`): `auto` doesn't start in pixels,
    /// which cost megabytes a second (`p` or `--cells kitty` choose them).
    pub remote: bool,
    /// Index into the tile list (0 = us) shown alone, if any.
    pub focused_tile: Option<usize>,
    /// The last draw found the grid too small for everyone: one tile is
    /// shown at a time (`f` steps through them).
    pub one_at_a_time: bool,
    pub show_help: bool,
    /// The invite overlay (`s`, host only).
    pub show_share: bool,
    pub share: Option<Share>,
    /// We host: `q` with others in the call asks first.
    pub hosting: bool,
    /// `q` was pressed once (host): until this moment the prompt is on
    /// screen and `q` ends the call; then the prompt goes.
    pub quit_armed: Option<Instant>,
    /// `w` was pressed once: until this moment, `w` again marks the members
    /// verified under these safety words.
    pub verify_armed: Option<(Instant, String)>,
    /// A short message over the bottom of the video (the new colour mode,
    /// the tile `f` shows), until the moment given.
    pub flash: Option<(String, Instant)>,
    /// Rows the help or invite overlay is scrolled down, and the rows it
    /// showed at the last draw (a page for PgUp/PgDn).
    pub overlay_scroll: usize,
    pub overlay_page: usize,
    /// Ctrl-Z: the loop gives the terminal back and stops the process.
    pub suspend: bool,
    pub camera_on: bool,
    pub quit: bool,
    pub status: Status,
    /// The last safety words shown (to say when they change).
    words_shown: String,
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
    /// Voice, when the call has it.
    pub audio: Option<AudioHandle>,
    pub muted: bool,
    /// Terminals shared in the call.
    pub terminals: super::terminals::Terminals,
    /// The share shown full-screen (`f`), by its sharer's id.
    pub terminal_focus: Option<String>,
    /// Our peer id, once joined (to tell our own share from others').
    pub my_id: Option<String>,
    /// `--share-size` for `t`; else our terminal's size.
    pub share_size: Option<(u16, u16)>,
    pub term_size: (u16, u16),
}

impl App {
    pub fn new(my_name: &str, colour: ColourMode, preview: Option<Preview>) -> Self {
        let mut me = Tile::new("you");
        let my_name_raw = my_name.to_string();
        me.name = Some(if my_name == "you" {
            my_name.to_string()
        } else {
            format!("{my_name} (you)")
        });
        me.verified = true;
        App {
            me,
            my_name: my_name_raw,
            peers: Vec::new(),
            chat: VecDeque::new(),
            editor: LineEditor::default(),
            chat_scroll: 0,
            chat_full_told: false,
            focus: Focus::Grid,
            colour,
            cells: super::cells::CellMode::Half,
            cells_choice: super::cells::CellsChoice::Half,
            kitty: None,
            kitty_shared: false,
            sixel: None,
            registers: None,
            cell_pixels: None,
            pixels_decided: false,
            remote: false,
            focused_tile: None,
            one_at_a_time: false,
            show_help: false,
            show_share: false,
            share: None,
            hosting: false,
            quit_armed: None,
            verify_armed: None,
            flash: None,
            overlay_scroll: 0,
            overlay_page: 1,
            suspend: false,
            camera_on: true,
            quit: false,
            status: Status {
                level: crate::media::adapt::TOP,
                connection: "starting".into(),
                ..Status::default()
            },
            words_shown: String::new(),
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
            audio: None,
            muted: false,
            terminals: Default::default(),
            terminal_focus: None,
            my_id: None,
            share_size: None,
            term_size: (80, 24),
        }
    }

    pub fn notice(&mut self, text: impl Into<String>) {
        self.push_chat(ChatLine {
            who: String::new(),
            text: text.into(),
            system: true,
        });
    }

    /// Shows `text` over the bottom of the video for a moment.
    pub fn flash(&mut self, text: impl Into<String>) {
        self.flash = Some((text.into(), Instant::now() + FLASH));
        self.dirty = true;
    }

    /// The host's quit prompt, while it holds.
    pub fn quit_prompt(&self, now: Instant) -> Option<String> {
        self.quit_armed.filter(|until| now < *until)?;
        let others = self.peers.len();
        if others == 0 {
            // Everyone left meanwhile: q leaves at once, nothing to ask.
            return None;
        }
        let people = if others == 1 { "person" } else { "people" };
        Some(format!(
            "End the call for {others} other {people}? Press q again to end it, any other key to stay."
        ))
    }

    /// What the banner over the bottom of the video says now, if anything:
    /// the quit prompt first. True when it asks for an answer.
    pub fn banner(&self, now: Instant) -> Option<(String, bool)> {
        if let Some(prompt) = self.quit_prompt(now) {
            return Some((prompt, true));
        }
        self.flash
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(text, _)| (text.clone(), false))
    }

    /// Every tick: messages whose time is up leave the screen.
    pub fn expire(&mut self, now: Instant) {
        if self.quit_armed.is_some_and(|until| now >= until) {
            self.quit_armed = None;
            self.dirty = true;
        }
        if self.flash.as_ref().is_some_and(|(_, until)| now >= *until) {
            self.flash = None;
            self.dirty = true;
        }
    }

    pub(super) fn push_chat(&mut self, line: ChatLine) {
        if self.chat.len() == MAX_CHAT_LINES {
            self.chat.pop_front();
        }
        self.chat.push_back(line);
        self.dirty = true;
    }

    pub(super) fn tile(&mut self, id: &str) -> &mut Tile {
        if let Some(i) = self.peers.iter().position(|t| t.id == id) {
            return &mut self.peers[i];
        }
        self.peers.push(Tile::new(id));
        self.peers.last_mut().expect("just pushed")
    }

    /// Names are self-chosen: whenever two members (or a member and we)
    /// show the same one, each of them gets its signing key's tag
    /// (`alice·3f2a`) in the roster, the tiles and the chat.
    fn refresh_names(&mut self) {
        let mine = self.my_name.clone();
        let own: Vec<(Option<String>, Option<[u8; 32]>)> = self
            .peers
            .iter()
            .map(|t| (t.own_name.clone(), t.identity))
            .collect();
        for t in &mut self.peers {
            let Some(name) = &t.own_name else { continue };
            let twins: Vec<[u8; 32]> = own
                .iter()
                .filter(|(n, _)| n.as_ref() == Some(name))
                .filter_map(|(_, i)| *i)
                .collect();
            t.tagged = twins.len() > 1 || *name == mine;
            // As many digits as tell this one from its namesakes (a key
            // ground to match another's first four digits gets more).
            if let Some(identity) = t.identity {
                let fp = crate::crypto::identity::Fingerprint::of(&identity);
                let digits = twins
                    .iter()
                    .filter(|i| **i != identity)
                    .map(|i| fp.common_hex_digits(&crate::crypto::identity::Fingerprint::of(i)) + 1)
                    .max()
                    .unwrap_or(0);
                if digits > t.tag.split('/').next().unwrap_or("").len() {
                    t.tag = fp.prefix(digits);
                }
            }
            t.name = Some(if t.tagged {
                format!("{name}·{}", t.tag)
            } else {
                name.clone()
            });
        }
    }

    pub(super) fn name_of(&self, id: &str) -> String {
        self.peers
            .iter()
            .find(|t| t.id == id)
            .map(|t| t.label())
            .unwrap_or_else(|| id.to_string())
    }

    /// Safety words were on screen in this call (so a reconnect means
    /// comparing them again).
    pub fn words_were_shown(&self) -> bool {
        !self.words_shown.is_empty()
    }

    /// Others verified in the call now.
    pub fn verified_count(&self) -> usize {
        self.peers.iter().filter(|t| t.verified).count()
    }

    /// The call's state in words, from who is here and verified.
    fn refresh_connection(&mut self) {
        if self.reconnect_at.is_some() || self.status.connection == "wrong passphrase" {
            return;
        }
        self.status.connection = if self.verified_count() > 0 {
            "in the call".into()
        } else if self.peers.iter().any(|t| !t.mismatch) {
            "verifying the passphrase…".into()
        } else {
            "waiting for others".into()
        };
    }

    pub fn on_session(&mut self, ev: SessionEvent) {
        // A video frame is drawn with the next picture, not as text.
        if !matches!(ev, SessionEvent::Video { .. }) {
            self.dirty = true;
        }
        match ev {
            SessionEvent::IdentityChanged { .. } | SessionEvent::IdentitiesVerified(_) => {
                self.on_identity(ev)
            }
            SessionEvent::Status(s) => self.status.connection = s,
            SessionEvent::Connected { relay, stats } => {
                self.status.connection = "connected".into();
                self.reconnect_at = None;
                self.status.relay = relay;
                // A new link counts from its own start (after a reconnect
                // its counters are below the old link's).
                self.last_rate = (
                    Instant::now(),
                    stats.bytes_up.load(Relaxed),
                    stats.bytes_down.load(Relaxed),
                );
                self.link_stats = Some(stats);
            }
            SessionEvent::Rtt(rtt) => self.status.rtt = Some(rtt),
            ev @ (SessionEvent::ShareStarted { .. }
            | SessionEvent::ShareScreen { .. }
            | SessionEvent::ShareStopped { .. }
            | SessionEvent::ShareControl { .. }) => self.on_share(ev),
            SessionEvent::Reconnecting {
                attempt,
                delay,
                reason,
            } => {
                if self.reconnect_at.is_none() {
                    self.notice(format!(
                        "connection to the relay lost ({reason}); reconnecting, chat you type is kept"
                    ));
                }
                self.reconnect_at = Some(Instant::now() + delay);
                self.status.connection = format!("offline (attempt {attempt})");
                // The old words mean nothing now: the keys are new after
                // the reconnect (the status line says to compare again).
                self.status.safety_words.clear();
                // Everyone re-verifies after the reconnect.
                self.peers.clear();
                self.focused_tile = None;
                // Shares come back under the members' new ids (ours too).
                self.terminals.list.clear();
                self.terminal_focus = None;
            }
            SessionEvent::Reconnected { relay } => {
                self.reconnect_at = None;
                self.notice(format!("reconnected to {relay}"));
                self.refresh_connection();
            }
            SessionEvent::CallEnded(reason) => {
                self.status.connection = "call ended".into();
                self.notice(reason);
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
                // Compared with the last words shown, not the last value:
                // across a reconnect they go empty, then come back new.
                let now = self.status.safety_words.clone();
                if !now.is_empty() && now != self.words_shown {
                    if !self.words_shown.is_empty() {
                        self.notice(format!(
                            "safety words changed — compare again: {now} (someone joined, left or reconnected)"
                        ));
                    }
                    self.words_shown = now;
                }
            }
            SessionEvent::PeerCamera { peer, state } => self.tile(&peer).camera = state,
            SessionEvent::AudioReady(handle) => self.audio = Some(handle),
            SessionEvent::AudioStats(stats) => {
                self.status.voice_delay_ms = stats.iter().map(|s| s.playout_ms).reduce(f64::max);
            }
            SessionEvent::PeerMuted { peer, muted } => self.tile(&peer).muted = muted,
            SessionEvent::VideoPaused { incoming, paused } => {
                if incoming {
                    for t in &mut self.peers {
                        t.bandwidth_paused = paused;
                    }
                    self.notice(if paused {
                        "your link can't carry the video: voice keeps going, video pauses until there is room"
                    } else {
                        "video is back: your link has room for it again"
                    });
                } else {
                    self.me.bandwidth_paused = paused;
                    self.notice(if paused {
                        "your uplink can't carry your video: your voice keeps going, your video pauses"
                    } else {
                        "your video goes out again"
                    });
                }
            }
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
            } => {
                let latency_ms = now_us().saturating_sub(timestamp_us) as f64 / 1000.0;
                let voice_at = self.voice_at(&from);
                let tile = self.tile(&from);
                tile.on_frame(jpeg, timestamp_us, latency_ms);
                tile.release(voice_at, Instant::now());
            }
        }
    }

    fn on_room(&mut self, e: Event) {
        match e {
            Event::Joined { peers, you, .. } => {
                self.my_id = Some(you);
                self.notice(if peers > 0 {
                    "joined; verifying the passphrase with the others…"
                } else {
                    "joined; waiting for others (the passphrase is checked when someone comes)"
                });
            }
            Event::PeerJoined { peer } => {
                self.tile(&peer);
            }
            Event::PeerVerified {
                peer,
                name,
                tag,
                known,
                known_as,
                identity,
                ..
            } => {
                let t = self.tile(&peer);
                t.verified = true;
                t.own_name = Some(name);
                t.tag = tag;
                t.known = known;
                t.known_as = known_as.clone();
                t.identity = Some(identity);
                self.refresh_names();
                let label = self.name_of(&peer);
                self.notice(match known {
                    Some(Known::Verified) => match &known_as {
                        Some(was) => format!(
                            "{label} joined: the key you verified as \"{}\", under a new name",
                            super::tile::display_name(was, 24)
                        ),
                        None => format!("{label} joined (✓✓ verified in an earlier call)"),
                    },
                    Some(Known::New) => format!("{label} joined (passphrase proven; new: never in a call with you before)"),
                    _ => format!("{label} joined (passphrase proven)"),
                });
            }
            Event::PeerRenamed { peer, .. } if !self.peers.iter().any(|t| t.id == peer) => {}
            Event::PeerRenamed { peer, old, new } => {
                let before = self.name_of(&peer);
                self.tile(&peer).own_name = Some(new);
                self.refresh_names();
                let after = self.name_of(&peer);
                let old = super::tile::display_name(&old, 24);
                self.notice(format!("{before} is now {after} (was {old})"));
            }
            Event::PassphraseDisagrees { peer } => {
                let name = self.name_of(&peer);
                self.notice(format!(
                    "the member here ({name}) uses a different passphrase: one of you has another invite; check yours (still waiting for others)"
                ));
            }
            Event::UnverifiedChurn { count } => self.notice(format!(
                "someone keeps joining and leaving before verifying ({count} times in the last minute): the relay may be trying to fake the safety words; compare them again once it settles"
            )),
            Event::PeerLeft { peer, .. } => {
                let name = self.name_of(&peer);
                let was_verified = self.peers.iter().any(|t| t.id == peer && t.verified);
                self.peers.retain(|t| t.id != peer);
                self.refresh_names();
                self.focused_tile = None;
                if was_verified {
                    self.notice(format!("{name} left"));
                }
            }
            Event::AuthMismatch { peer } => {
                self.tile(&peer).mismatch = true;
                let name = self.name_of(&peer);
                self.notice(format!(
                    "{name} could not prove the passphrase (wrong invite, or an attacker); ignored"
                ));
            }
            Event::WrongPassphrase => self.status.connection = "wrong passphrase".into(),
            Event::Guessing { failed, wait } => self.notice(format!(
                "someone may be guessing the passphrase: {failed} failed attempts; new members now wait {:.0} s",
                wait.as_secs_f64()
            )),
            Event::KeyRotated { epoch } => self.status.epoch = epoch,
            Event::Chat { from, name, text } => {
                let who = match self.peers.iter().find(|t| t.id == from) {
                    Some(t) if t.name.is_some() => t.label(),
                    _ => super::tile::display_name(&name, 24),
                };
                self.push_chat(ChatLine {
                    who,
                    text,
                    system: false,
                });
            }
            Event::DecryptFailed { .. } => self.status.decrypt_failures += 1,
            Event::ShareKeys { .. } => {}
            Event::Frame { .. } | Event::PeerState { .. } => {}
        }
        self.refresh_connection();
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
        self.status.up_kbps = up.saturating_sub(up0) as f64 * 8.0 / 1000.0 / secs;
        self.status.down_kbps = down.saturating_sub(down0) as f64 * 8.0 / 1000.0 / secs;
        self.last_rate = (now, up, down);
        self.dirty = true;
    }

    /// Capture time of `peer`'s voice playing now, if we hear it.
    fn voice_at(&self, peer: &str) -> Option<i64> {
        let view = self.audio.as_ref()?.view();
        view.peers.get(peer)?.playing_ts_us
    }

    /// Every tick: voice levels and mutes onto the tiles, and video frames
    /// released as the voice reaches them (lip sync).
    pub fn update_audio(&mut self) {
        let Some(handle) = &self.audio else { return };
        let view = handle.view();
        let now = Instant::now();
        self.me.level_dbfs = view.mic_level_dbfs;
        self.me.muted = view.muted;
        self.me.voice = view.sending;
        for tile in &mut self.peers {
            let peer = view.peers.get(&tile.id);
            let (level, voice_at) =
                peer.map_or((-100.0, None), |p| (p.level_dbfs, p.playing_ts_us));
            if (tile.level_dbfs > crate::tui::tile::SPEAKING_DBFS)
                != (level > crate::tui::tile::SPEAKING_DBFS)
            {
                self.dirty = true;
            }
            tile.level_dbfs = level;
            tile.voice = peer.is_some();
            if let Some(p) = peer {
                tile.muted = p.muted;
            }
            tile.release(voice_at, now);
        }
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
        t.set_pending_jpeg(jpeg);
    }

    /// Marks a peer's camera state (tests).
    pub fn set_camera(&mut self, id: &str, state: Camera) {
        self.tile(id).camera = state;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn room(e: Event) -> SessionEvent {
        SessionEvent::Room(e)
    }

    fn keys(words: &str) -> SessionEvent {
        SessionEvent::Keys {
            epoch: 1,
            safety_words: words.into(),
        }
    }

    #[test]
    fn nobody_confirmed_means_verifying_not_in_the_call() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(room(Event::Joined {
            you: "me".into(),
            room: "r".into(),
            peers: 1,
        }));
        app.on_session(room(Event::PeerJoined { peer: "p1".into() }));
        assert_eq!(app.status.connection, "verifying the passphrase…");
        app.on_session(room(Event::AuthMismatch { peer: "p1".into() }));
        assert_eq!(app.status.connection, "waiting for others");
        app.on_session(room(Event::PeerJoined { peer: "p2".into() }));
        app.on_session(room(Event::PeerVerified {
            peer: "p2".into(),
            name: "Ada".into(),
            tag: "3f2a".into(),
            safety_words: "a b c d".into(),
            identity: [2; 32],
            known: None,
            known_as: None,
        }));
        assert_eq!(app.status.connection, "in the call");
    }

    #[test]
    fn changed_safety_words_are_announced_even_across_a_reconnect() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(keys("able baker charlie delta"));
        let said = |app: &App| {
            app.chat
                .iter()
                .filter(|l| l.text.contains("compare again"))
                .count()
        };
        assert_eq!(said(&app), 0, "the first words are not a change");
        app.on_session(SessionEvent::Reconnecting {
            attempt: 1,
            delay: Duration::from_secs(1),
            reason: "closed".into(),
        });
        app.on_session(keys(""));
        app.on_session(keys("echo foxtrot golf hotel"));
        assert_eq!(said(&app), 1);
        assert!(app
            .chat
            .back()
            .unwrap()
            .text
            .contains("echo foxtrot golf hotel"));
        app.on_session(keys("echo foxtrot golf hotel"));
        assert_eq!(said(&app), 1, "said once per change");
    }

    fn verified(app: &mut App, peer: &str, name: &str, tag: &str) {
        app.on_session(room(Event::PeerVerified {
            peer: peer.into(),
            name: name.into(),
            tag: tag.into(),
            safety_words: String::new(),
            identity: [1; 32],
            known: None,
            known_as: None,
        }));
    }

    fn chat_text(app: &App) -> String {
        app.chat
            .iter()
            .map(|l| format!("{}: {}", l.who, l.text))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Names are self-chosen: two members named alice (or one named like
    /// us) are told apart by their signing keys' tags in the tiles, the
    /// roster and the chat; a name change is announced.
    #[test]
    fn colliding_names_get_tags_and_renames_are_announced() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        verified(&mut app, "p1", "alice", "3f2a");
        assert_eq!(app.name_of("p1"), "alice", "no collision yet");
        verified(&mut app, "p2", "alice", "91c0");
        verified(&mut app, "p3", "bob", "aaaa");
        verified(&mut app, "p4", "me", "bbbb");
        assert_eq!(app.name_of("p1"), "alice·3f2a");
        assert_eq!(app.name_of("p2"), "alice·91c0");
        assert_eq!(app.name_of("p3"), "bob");
        assert_eq!(app.name_of("p4"), "me·bbbb", "someone named like us");
        // A long name loses letters, never its tag.
        verified(&mut app, "p6", "Bartholomew Featherstonehaugh", "dddd");
        verified(&mut app, "p7", "Bartholomew Featherstonehaugh", "eeee");
        let t = app.peers.iter().find(|t| t.id == "p7").unwrap();
        assert!(t.name_in(12).ends_with("·eeee"), "{}", t.name_in(12));
        assert!(t.label().ends_with("·eeee"));
        app.on_session(room(Event::Chat {
            from: "p2".into(),
            name: "alice".into(),
            text: "pay the invoice".into(),
        }));
        assert!(chat_text(&app).contains("alice·91c0: pay the invoice"));
        // p2 renames itself: announced, and p1 needs no tag any more.
        app.on_session(room(Event::PeerRenamed {
            peer: "p2".into(),
            old: "alice".into(),
            new: "carol".into(),
        }));
        assert!(
            chat_text(&app).contains("alice·91c0 is now carol"),
            "{}",
            chat_text(&app)
        );
        assert_eq!(app.name_of("p1"), "alice");
        // One leaving settles the other's name too.
        verified(&mut app, "p5", "bob", "cccc");
        assert_eq!(app.name_of("p3"), "bob·aaaa");
        app.on_session(room(Event::PeerLeft {
            peer: "p5".into(),
            reason: "leave",
        }));
        assert_eq!(app.name_of("p3"), "bob");
    }

    /// A reconnect brings a new link whose counters start below the old
    /// one's: the rates restart, nothing overflows.
    #[test]
    fn rates_restart_with_a_new_link() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        let old = Arc::new(LinkStats::default());
        app.on_session(SessionEvent::Connected {
            relay: "ws://r".into(),
            stats: old.clone(),
        });
        old.bytes_up.store(1_000_000, Relaxed);
        app.last_rate.0 -= Duration::from_secs(2);
        app.update_rates();
        assert!(app.status.up_kbps > 0.0);
        let new = Arc::new(LinkStats::default());
        new.bytes_up.store(500, Relaxed);
        app.on_session(SessionEvent::Connected {
            relay: "ws://r".into(),
            stats: new.clone(),
        });
        new.bytes_up.store(1_500, Relaxed);
        app.last_rate.0 -= Duration::from_secs(2);
        app.update_rates();
        assert!(
            (app.status.up_kbps - 4.0).abs() < 0.5,
            "{}",
            app.status.up_kbps
        );
        // Even a link handed over without a Connected: no overflow.
        app.link_stats = Some(Arc::new(LinkStats::default()));
        app.last_rate.0 -= Duration::from_secs(2);
        app.update_rates();
        assert_eq!(app.status.up_kbps, 0.0);
    }

    #[test]
    fn churn_and_a_disagreeing_member_are_said_in_words() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(room(Event::UnverifiedChurn { count: 4 }));
        assert!(chat_text(&app).contains("someone keeps joining and leaving before verifying"));
        app.on_session(room(Event::PassphraseDisagrees { peer: "p1".into() }));
        assert!(chat_text(&app).contains("uses a different passphrase"));
    }
}
