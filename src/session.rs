//! One member's call: derives the room key, connects to the relay, runs the
//! capture thread, and drives the [`Room`] state machine with what the link,
//! the camera, the clock and the user produce. The TUI and headless mode
//! both consume its [`SessionEvent`]s and send it [`SessionCommand`]s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::crypto::frame::Stream;
use crate::crypto::kdf::{derive_psk, KdfParams};
use crate::crypto::sign::SigningIdentity;
use crate::invite::Invite;
use crate::media::adapt::{Adapter, Reason as AdaptReason, ReceiverReport, Signals};
use crate::media::capture::{self, CaptureControl, CaptureEvent, Preview};
use crate::media::source::{self, SourceSpec};
use crate::net::backoff;
use crate::net::link::{self, Link, LinkEvent, LinkStats};
use crate::room::chat::{ChatQueue, Recent, Typed};
use crate::room::{Event, Output, Room, Timings};

/// Exit codes (DESIGN.md §1).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const WRONG_PASSPHRASE: u8 = 3;
    pub const RELAY_UNREACHABLE: u8 = 4;
}

/// How the session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub code: u8,
    pub message: String,
}

/// The message of an ordinary leave (nothing more to say).
pub const LEFT: &str = "left the call";

pub struct SessionConfig {
    pub relays: Vec<String>,
    pub invite: Invite,
    pub name: String,
    pub source: SourceSpec,
    /// Tile size (pixels) we ask senders for until the UI reports its own.
    pub view: (u32, u32),
    pub fps: u32,
    pub kdf: KdfParams,
    /// The room key, when already derived (the demo's peers share one).
    pub psk: Option<crate::crypto::secret::Key32>,
    pub timings: Timings,
    pub link: link::LinkOptions,
    /// Adapt quality, frame rate and size to the network (on by default).
    pub adapt: bool,
    pub preview: Option<Preview>,
    /// The source, already opened by the caller (who reported its
    /// problems before anything else); else opened from `source`. (In a
    /// mutex only so the config can be shared across awaits; taken once.)
    pub opened_source: Option<std::sync::Mutex<Box<dyn source::FrameSource>>>,
}

impl SessionConfig {
    /// Defaults for everything but the essentials.
    pub fn new(invite: Invite, relays: Vec<String>, name: String, source: SourceSpec) -> Self {
        SessionConfig {
            relays,
            invite,
            name,
            source,
            view: (80, 48),
            fps: 30,
            kdf: KdfParams::V1,
            psk: None,
            timings: Timings::default(),
            link: link::LinkOptions::default(),
            adapt: true,
            preview: None,
            opened_source: None,
        }
    }
}

#[derive(Debug)]
pub enum SessionEvent {
    /// Progress before the call is up ("deriving the room key", ...).
    Status(String),
    Connected {
        relay: String,
        stats: std::sync::Arc<LinkStats>,
    },
    Room(Event),
    /// A decrypted video frame: the sender's frame number and its JPEG.
    Video {
        from: String,
        seq: u32,
        jpeg: Vec<u8>,
        timestamp_us: u64,
    },
    Rtt(Duration),
    /// The relay connection was lost (`reason`); the next attempt is in
    /// `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// The relay ended the call on purpose (its host quit).
    CallEnded(String),
    /// Back in the call (a new key, new handshakes).
    Reconnected {
        relay: String,
    },
    /// Chat lines typed offline, still owed to members who haven't come back.
    ChatPending(usize),
    /// A chat line reached nobody (and never will); the reason says why.
    ChatUndelivered {
        text: String,
        reason: &'static str,
    },
    /// Our sending level changed (adaptive quality).
    Quality {
        level: usize,
        jpeg_quality: u8,
        fps: u32,
        reason: &'static str,
    },
    /// Our key epoch and safety words changed (for the status line).
    Keys {
        epoch: u64,
        safety_words: String,
    },
    /// A peer's camera state (from its sealed state messages).
    PeerCamera {
        peer: String,
        state: state::Camera,
    },
    Warning(String),
    Ended(Ended),
}

#[derive(Debug)]
pub enum SessionCommand {
    Chat(String),
    Camera(bool),
    /// Our largest tile, in pixels: senders encode at (up to) this size.
    View(u32, u32),
    Leave,
}

/// Video payloads: `frame number u32 | JPEG`. The number lets receivers
/// count what was lost on the way.
pub mod video {
    /// Frame flag: the JPEG's standard Huffman tables were stripped
    /// ([`crate::media::jpeg::strip_tables`]); put them back before decoding.
    pub const FLAG_STANDARD_TABLES: u8 = 1;

    pub fn encode(seq: u32, jpeg: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(4 + jpeg.len());
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(jpeg);
        v
    }

    pub fn decode(payload: &[u8]) -> Option<(u32, &[u8])> {
        let (seq, jpeg) = payload.split_at_checked(4)?;
        Some((u32::from_be_bytes(seq.try_into().ok()?), jpeg))
    }
}

/// Receiver feedback (stream `Feedback`, once a second): for each sender
/// heard from, `id_len u8 | id | delay_ms u16 | received u16 | lost u16`.
pub mod feedback {
    use crate::media::adapt::ReceiverReport;

    pub fn encode(entries: &[(String, ReceiverReport)]) -> Vec<u8> {
        let mut out = vec![entries.len().min(255) as u8];
        for (id, r) in entries.iter().take(255) {
            let id = &id.as_bytes()[..id.len().min(64)];
            out.push(id.len() as u8);
            out.extend_from_slice(id);
            out.extend_from_slice(&(r.delay_ms.clamp(0.0, 65535.0) as u16).to_be_bytes());
            out.extend_from_slice(&(r.received.min(65535) as u16).to_be_bytes());
            out.extend_from_slice(&(r.lost.min(65535) as u16).to_be_bytes());
        }
        out
    }

    /// The entry about `me`, if the report has one.
    pub fn find(payload: &[u8], me: &str) -> Option<ReceiverReport> {
        let (&count, mut rest) = payload.split_first()?;
        for _ in 0..count {
            let (&len, tail) = rest.split_first()?;
            let (id, tail) = tail.split_at_checked(len as usize)?;
            let (nums, tail) = tail.split_at_checked(6)?;
            rest = tail;
            if id == me.as_bytes() {
                let n = |i: usize| u16::from_be_bytes([nums[i], nums[i + 1]]);
                return Some(ReceiverReport {
                    delay_ms: f64::from(n(0)),
                    received: u32::from(n(2)),
                    lost: u32::from(n(4)),
                });
            }
        }
        None
    }
}

/// Sealed state messages (stream `State`): `kind u8 | fields`.
pub mod state {
    pub const VIEW: u8 = 1;
    pub const CAMERA: u8 = 2;

    /// A member's camera, as it tells the others.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Camera {
        On,
        /// Turned off for now (`v`).
        Off,
        /// No video source at all: view only.
        Absent,
    }

    pub fn view(w: u32, h: u32) -> Vec<u8> {
        let mut v = vec![VIEW];
        v.extend_from_slice(&(w.min(u16::MAX as u32) as u16).to_be_bytes());
        v.extend_from_slice(&(h.min(u16::MAX as u32) as u16).to_be_bytes());
        v
    }

    pub fn camera(state: Camera) -> Vec<u8> {
        let value = match state {
            Camera::Off => 0,
            Camera::On => 1,
            Camera::Absent => 2,
        };
        vec![CAMERA, value]
    }

    pub fn parse_camera(value: u8) -> Option<Camera> {
        Some(match value {
            0 => Camera::Off,
            1 => Camera::On,
            2 => Camera::Absent,
            _ => return None,
        })
    }
}

/// Argon2id off the async threads (it takes 64 MiB and most of a second).
pub async fn derive_psk_async(
    invite: &Invite,
    kdf: KdfParams,
) -> Result<crate::crypto::secret::Key32, String> {
    let room_id = invite.room().to_string();
    let secret = zeroize::Zeroizing::new(invite.secret().to_string());
    match tokio::task::spawn_blocking(move || derive_psk(&room_id, &secret, kdf)).await {
        Ok(Ok(psk)) => Ok(psk),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("key derivation crashed: {e}")),
    }
}

const VIEW_REFRESH: Duration = Duration::from_secs(3);
const WRONG_PASSPHRASE: &str = "wrong passphrase: the members of this room could not verify your invite; check the words and try again";
/// Attempts before the first connection gives up with exit code 4.
const CONNECT_ATTEMPTS: u32 = 3;

pub async fn run(
    config: SessionConfig,
    events: mpsc::Sender<SessionEvent>,
    commands: mpsc::Receiver<SessionCommand>,
) -> Ended {
    // Open the source first (if the caller hasn't): a missing camera is the
    // most common problem and should be said before anything else happens.
    let mut config = config;
    let source = match config.opened_source.take() {
        Some(s) => Some(s.into_inner().unwrap_or_else(|e| e.into_inner())),
        None => match source::open(&config.source, &config.name) {
            Ok(s) => s,
            Err(e) => {
                return Ended {
                    code: exit::USAGE,
                    message: e.to_string(),
                }
            }
        },
    };
    let psk = match config.psk.clone() {
        Some(psk) => psk,
        None => {
            let _ = events
                .send(SessionEvent::Status(
                    "deriving the room key (Argon2id, about a second)…".into(),
                ))
                .await;
            match derive_psk_async(&config.invite, config.kdf).await {
                Ok(psk) => psk,
                Err(message) => {
                    return Ended {
                        code: exit::ERROR,
                        message,
                    }
                }
            }
        }
    };
    let control = CaptureControl::new(config.fps);
    control.set_size(config.view.0, config.view.1);
    let (capture_tx, capture_rx) = mpsc::channel::<CaptureEvent>(1);
    let capture_thread = source.map(|s| {
        capture::spawn(
            s,
            control.clone(),
            capture_tx.clone(),
            config.preview.clone(),
        )
    });
    drop(capture_tx);
    let mut session = Session {
        psk,
        control,
        events,
        commands,
        capture_rx,
        capturing: capture_thread.is_some(),
        has_source: capture_thread.is_some(),
        signing: Arc::new(SigningIdentity::generate(&mut rand_core::OsRng)),
        chat: ChatQueue::default(),
        recent: Recent::default(),
        lost_at: None,
        video_seq: 0,
        my_view: config.view,
        config,
    };
    let ended = session.run().await;
    session.control.stop();
    drop(session.capture_rx);
    if let Some(t) = capture_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    ended
}

/// Why a connected call stopped.
enum CallEnd {
    /// The connection was lost: reconnect.
    Lost(String),
    Ended(Ended),
}

/// State that outlives a single connection.
struct Session {
    config: SessionConfig,
    psk: crate::crypto::secret::Key32,
    control: std::sync::Arc<CaptureControl>,
    events: mpsc::Sender<SessionEvent>,
    commands: mpsc::Receiver<SessionCommand>,
    capture_rx: mpsc::Receiver<CaptureEvent>,
    capturing: bool,
    /// We have a video source at all (else we are view only).
    has_source: bool,
    /// Our signing key, for the whole session: members recognise us by it
    /// after a reconnect.
    signing: Arc<SigningIdentity>,
    /// Chat typed offline, owed to the members of before.
    chat: ChatQueue,
    /// Who was in the call lately, by signing key.
    recent: Recent,
    /// When the connection was lost (while offline).
    lost_at: Option<Instant>,
    video_seq: u32,
    my_view: (u32, u32),
}

impl Session {
    async fn emit(&self, e: SessionEvent) {
        let _ = self.events.send(e).await;
    }

    /// Connect, run the call, and on a lost connection reconnect with
    /// backoff over the relay list, until the user leaves.
    async fn run(&mut self) -> Ended {
        let mut attempt = 0u32;
        let mut ever_connected = false;
        let mut last_error: String;
        loop {
            match self.connect_any().await {
                Ok((url, link, link_events, welcome)) => {
                    if ever_connected {
                        self.emit(SessionEvent::Reconnected { relay: url.clone() })
                            .await;
                    }
                    ever_connected = true;
                    attempt = 0;
                    match self.call(url, link, link_events, welcome).await {
                        CallEnd::Ended(e) => return e,
                        CallEnd::Lost(reason) => {
                            self.lost_at = Some(Instant::now());
                            last_error = reason;
                        }
                    }
                }
                Err(e @ (link::LinkError::Refused(_) | link::LinkError::Tls(_))) => {
                    return Ended {
                        code: exit::ERROR,
                        message: e.to_string(),
                    };
                }
                Err(e) => {
                    last_error = e.to_string();
                    if !ever_connected && attempt + 1 >= CONNECT_ATTEMPTS {
                        return Ended {
                            code: exit::RELAY_UNREACHABLE,
                            message: format!(
                                "{last_error}; is a relay running there? (`streamflow relay`, or use `streamflow host`)"
                            ),
                        };
                    }
                }
            }
            attempt += 1;
            let delay = backoff::delay(attempt, backoff::random_unit());
            if ever_connected {
                self.emit(SessionEvent::Reconnecting {
                    attempt,
                    delay,
                    reason: last_error.clone(),
                })
                .await;
            } else {
                self.emit(SessionEvent::Status(format!(
                    "{last_error}; retrying in {:.1} s",
                    delay.as_secs_f64()
                )))
                .await;
            }
            if let Some(ended) = self.wait_offline(delay).await {
                return ended;
            }
        }
    }

    /// Tries every relay in order once.
    async fn connect_any(
        &self,
    ) -> Result<(String, Link, mpsc::Receiver<LinkEvent>, LinkEvent), link::LinkError> {
        let mut last = None;
        for url in &self.config.relays {
            self.emit(SessionEvent::Status(format!("connecting to {url}…")))
                .await;
            match link::connect(url, self.config.invite.room(), self.config.link.clone()).await {
                Ok((link, events, welcome)) => return Ok((url.clone(), link, events, welcome)),
                Err(e @ (link::LinkError::Refused(_) | link::LinkError::Tls(_))) => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or(link::LinkError::Unreachable {
            url: String::new(),
            reason: "no relay given".into(),
        }))
    }

    /// What we tell the others about our camera.
    fn camera_state(&self) -> state::Camera {
        if !self.has_source {
            state::Camera::Absent
        } else if self
            .control
            .enabled
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            state::Camera::On
        } else {
            state::Camera::Off
        }
    }

    /// Offline: wait out the backoff while still taking commands (chat is
    /// queued) and discarding captured frames.
    async fn wait_offline(&mut self, delay: Duration) -> Option<Ended> {
        let until = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => return None,
                _ = self.capture_rx.recv(), if self.capturing => {}
                cmd = self.commands.recv() => match cmd {
                    Some(SessionCommand::Chat(text)) => self.owe_chat(text).await,
                    Some(SessionCommand::Camera(on)) => self.control.enabled.store(on, std::sync::atomic::Ordering::Relaxed),
                    Some(SessionCommand::View(w, h)) => self.my_view = (w, h),
                    Some(SessionCommand::Leave) | None => {
                        return Some(Ended { code: exit::OK, message: LEFT.into() });
                    }
                },
            }
        }
    }

    /// A line typed while offline: owed to the members of before, or to
    /// nobody if we were alone.
    async fn owe_chat(&mut self, text: String) {
        let now = Instant::now();
        let members = self.recent.around(self.lost_at.unwrap_or(now));
        let (typed, dropped) = self.chat.owe(text.clone(), &members, now);
        if dropped {
            self.emit(SessionEvent::Warning(
                "too many chat lines typed offline: the oldest was dropped".into(),
            ))
            .await;
        }
        match typed {
            Typed::Owed(_) => {
                self.emit(SessionEvent::ChatPending(self.chat.len())).await;
            }
            Typed::Undelivered => {
                self.emit(SessionEvent::ChatUndelivered {
                    text,
                    reason: "nobody else was in the call when the connection dropped",
                })
                .await;
            }
        }
    }

    /// One connected call: a fresh room state (new X25519 key, new sender
    /// key, new handshakes) on every connection.
    async fn call(
        &mut self,
        relay_url: String,
        link: Link,
        mut link_events: mpsc::Receiver<LinkEvent>,
        welcome: LinkEvent,
    ) -> CallEnd {
        self.lost_at = None;
        let lost = |reason: String| CallEnd::Lost(reason);
        let ended = |code: u8, message: String| CallEnd::Ended(Ended { code, message });
        self.emit(SessionEvent::Connected {
            relay: relay_url,
            stats: link.stats.clone(),
        })
        .await;
        let now = Instant::now();
        let mut room = Room::new(
            self.config.invite.room(),
            self.psk.clone(),
            &self.config.name,
            self.config.timings,
            Box::new(rand_core::OsRng),
            self.signing.clone(),
            now,
        );
        let mut driver = Driver {
            link,
            events: self.events.clone(),
            control: self.control.clone(),
            peer_views: HashMap::new(),
            default_view: self.config.view,
            epoch: u64::MAX,
            safety_words: String::new(),
            ended: None,
            adapter: Adapter::new(self.config.adapt, now),
            heard: HashMap::new(),
            reports: HashMap::new(),
            last_link: (0, 0, 0),
            me: None,
            max_fps: self.config.fps,
        };
        // A new connection starts at the top level again.
        let top = driver.adapter.current();
        self.control
            .quality
            .store(u32::from(top.quality), std::sync::atomic::Ordering::Relaxed);
        self.control.fps.store(
            top.fps.min(self.config.fps),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let LinkEvent::Welcome {
            you,
            peers,
            max_peers,
        } = welcome
        {
            let out = room.on_welcome(&you, &peers, max_peers, now);
            driver.apply(&mut room, out).await;
        }
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_view_sent = Instant::now() - VIEW_REFRESH;
        let mut last_second = Instant::now();
        loop {
            if let Some(e) = driver.ended.take() {
                return CallEnd::Ended(e);
            }
            self.settle_chat(&mut room, &mut driver).await;
            tokio::select! {
                ev = link_events.recv() => {
                    let now = Instant::now();
                    let Some(ev) = ev else { return lost("relay connection lost".into()) };
                    let out = match ev {
                        LinkEvent::Welcome { .. } => vec![],
                        LinkEvent::PeerJoined(p) => {
                            // Tell the newcomer our tile size soon.
                            last_view_sent = Instant::now() - VIEW_REFRESH + Duration::from_millis(500);
                            room.on_peer_joined(&p, now)
                        }
                        LinkEvent::PeerLeft(p, reason) => {
                            if reason == streamflow_relay::protocol::LeaveReason::Leave {
                                self.recent.left_by_choice(&p);
                            }
                            room.on_peer_left(&p, reason, now)
                        }
                        LinkEvent::Blob { from, data } => room.on_blob(&from, &data, now, capture::now_us()),
                        LinkEvent::RelayError { code, message } => {
                            self.emit(SessionEvent::Warning(format!("relay: {code}: {message}"))).await;
                            vec![]
                        }
                        LinkEvent::Rtt(rtt) => {
                            self.emit(SessionEvent::Rtt(rtt)).await;
                            vec![]
                        }
                        LinkEvent::Closed(reason) => return lost(reason),
                        LinkEvent::CallEnded(reason) => {
                            let message = if reason.is_empty() { "the call was ended".to_string() } else { reason };
                            self.emit(SessionEvent::CallEnded(message.clone())).await;
                            return ended(exit::OK, message);
                        }
                    };
                    driver.apply(&mut room, out).await;
                }
                cap = self.capture_rx.recv(), if self.capturing => match cap {
                    Some(CaptureEvent::Frame(frame)) => {
                        let payload = video::encode(self.video_seq, &frame.jpeg);
                        let flags = if frame.tables_stripped { video::FLAG_STANDARD_TABLES } else { 0 };
                        if let Some(out) = room.seal(Stream::Video, flags, &payload, frame.timestamp_us, Instant::now()) {
                            self.video_seq = self.video_seq.wrapping_add(1);
                            driver.apply(&mut room, vec![out]).await;
                        }
                    }
                    Some(CaptureEvent::Failed(msg)) => {
                        self.capturing = false;
                        self.emit(SessionEvent::Warning(format!("video stopped: {msg}"))).await;
                    }
                    None => self.capturing = false,
                },
                cmd = self.commands.recv() => {
                    let now = Instant::now();
                    match cmd {
                        Some(SessionCommand::Chat(text)) => {
                            match room.send_chat(&text, capture::now_us(), now) {
                                Some(out) => driver.apply(&mut room, vec![out]).await,
                                None => {
                                    self.emit(SessionEvent::ChatUndelivered {
                                        text,
                                        reason: "nobody else is in the call yet",
                                    })
                                    .await;
                                }
                            }
                        }
                        Some(SessionCommand::Camera(on)) => {
                            self.control.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
                            if let Some(out) = room.seal(Stream::State, 0, &state::camera(self.camera_state()), capture::now_us(), now) {
                                driver.apply(&mut room, vec![out]).await;
                            }
                        }
                        Some(SessionCommand::View(w, h)) => {
                            if (w, h) != self.my_view {
                                self.my_view = (w, h);
                                last_view_sent = Instant::now() - VIEW_REFRESH;
                            }
                        }
                        Some(SessionCommand::Leave) | None => {
                            driver.link.leave().await;
                            // Let the writer flush the leave.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            // Refused, and nobody confirmed by now: that is
                            // the verdict, however short the call was.
                            if room.refused_and_unconfirmed() {
                                return ended(exit::WRONG_PASSPHRASE, WRONG_PASSPHRASE.into());
                            }
                            return ended(exit::OK, LEFT.into());
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let out = room.tick(now, capture::now_us());
                    driver.apply(&mut room, out).await;
                    if now.duration_since(last_second) >= Duration::from_secs(1) {
                        last_second = now;
                        driver.every_second(&mut room, now).await;
                    }
                    if now.duration_since(last_view_sent) >= VIEW_REFRESH {
                        last_view_sent = now;
                        let (w, h) = self.my_view;
                        // What size we show others at, and whether we send
                        // video at all (so a view-only member doesn't look
                        // broken to the others).
                        for message in [state::view(w, h), state::camera(self.camera_state())] {
                            if let Some(out) = room.seal(Stream::State, 0, &message, capture::now_us(), now) {
                                driver.apply(&mut room, vec![out]).await;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Chat bookkeeping after each event: remembers who is verified (the
    /// members a line typed offline will be owed to), and hands the lines
    /// owed from before a reconnect to those members, once each, sealed
    /// pairwise.
    async fn settle_chat(&mut self, room: &mut Room, driver: &mut Driver) {
        let now = Instant::now();
        let verified = room.verified_signers();
        self.recent.saw(&verified, now);
        if self.chat.is_empty() {
            return;
        }
        let before = self.chat.len();
        for (signer, peer) in verified {
            for line in self.chat.take_for(&signer) {
                if let Some(out) = room.send_private_chat(&peer, &line, now) {
                    driver.apply(room, vec![out]).await;
                }
            }
        }
        let given_up = self.chat.expire(now);
        if given_up > 0 {
            self.emit(SessionEvent::Warning(format!(
                "chat typed offline was not delivered to {given_up} member(s) who didn't come back"
            )))
            .await;
        }
        if self.chat.len() != before {
            self.emit(SessionEvent::ChatPending(self.chat.len())).await;
        }
    }
}

/// Applies the room's outputs: sends, events, and the bookkeeping that
/// follows from some events (encode size, wrong passphrase).
struct Driver {
    link: Link,
    events: mpsc::Sender<SessionEvent>,
    control: std::sync::Arc<CaptureControl>,
    peer_views: HashMap<String, (u32, u32)>,
    default_view: (u32, u32),
    epoch: u64,
    safety_words: String,
    ended: Option<Ended>,
    adapter: Adapter,
    /// What each sender's stream looked like to us this second.
    heard: HashMap<String, Heard>,
    /// Receivers' reports on our stream: (report, when).
    reports: HashMap<String, (ReceiverReport, Instant)>,
    /// Link counters at the last adaptation step.
    last_link: (u64, u64, u64),
    me: Option<String>,
    /// The user's frame-rate ceiling (`--fps`).
    max_fps: u32,
}

/// Per-sender reception statistics for feedback.
#[derive(Default)]
struct Heard {
    last_seq: Option<u32>,
    received: u32,
    lost: u32,
    delays: Vec<f64>,
}

/// Reports older than this no longer steer the sender.
const REPORT_MAX_AGE: Duration = Duration::from_secs(3);

impl Driver {
    /// Once a second: tell senders how their streams arrive, and adapt our
    /// own level to what the uplink and our receivers say.
    async fn every_second(&mut self, room: &mut Room, now: Instant) {
        let entries: Vec<(String, ReceiverReport)> = self
            .heard
            .drain()
            .filter(|(_, h)| h.received + h.lost > 0)
            .map(|(id, mut h)| {
                let delay_ms = crate::bench::stats::median(&mut h.delays);
                let delay_ms = if delay_ms.is_finite() { delay_ms } else { 0.0 };
                (
                    id,
                    ReceiverReport {
                        delay_ms,
                        received: h.received,
                        lost: h.lost,
                    },
                )
            })
            .collect();
        if !entries.is_empty() {
            let payload = feedback::encode(&entries);
            if let Some(out) = room.seal(Stream::Feedback, 0, &payload, capture::now_us(), now) {
                self.apply(room, vec![out]).await;
            }
        }
        let stats = &self.link.stats;
        let link_now = (
            stats.media_sent.load(std::sync::atomic::Ordering::Relaxed),
            stats
                .media_replaced
                .load(std::sync::atomic::Ordering::Relaxed),
            stats
                .media_send_us
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let (sent0, replaced0, us0) = std::mem::replace(&mut self.last_link, link_now);
        let sent = link_now.0 - sent0;
        self.reports
            .retain(|_, (_, at)| now.duration_since(*at) <= REPORT_MAX_AGE);
        let signals = Signals {
            sent,
            replaced: link_now.1 - replaced0,
            send_ms: if sent > 0 {
                (link_now.2 - us0) as f64 / sent as f64 / 1000.0
            } else {
                0.0
            },
            reports: self.reports.values().map(|(r, _)| *r).collect(),
        };
        if let Some((level, reason)) = self.adapter.update(&signals, now) {
            let l = self.adapter.current();
            self.control
                .quality
                .store(u32::from(l.quality), std::sync::atomic::Ordering::Relaxed);
            self.control.fps.store(
                l.fps.min(self.max_fps),
                std::sync::atomic::Ordering::Relaxed,
            );
            self.update_encode_size();
            let reason = match reason {
                AdaptReason::Uplink => "uplink",
                AdaptReason::Receivers => "receivers",
                AdaptReason::Recovered => "recovered",
            };
            let _ = self
                .events
                .send(SessionEvent::Quality {
                    level,
                    jpeg_quality: l.quality,
                    fps: l.fps,
                    reason,
                })
                .await;
        }
    }

    async fn apply(&mut self, room: &mut Room, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send { to, kind, data } => self.link.send(to.as_deref(), kind, &data).await,
                Output::Event(e) => self.on_event(e).await,
            }
        }
        if room.epoch() != self.epoch || room.safety_words() != self.safety_words {
            self.epoch = room.epoch();
            self.safety_words = room.safety_words().to_string();
            let _ = self
                .events
                .send(SessionEvent::Keys {
                    epoch: self.epoch,
                    safety_words: self.safety_words.clone(),
                })
                .await;
        }
    }

    async fn on_event(&mut self, e: Event) {
        match &e {
            Event::PeerState { from, payload } => {
                match payload.split_first() {
                    Some((&state::VIEW, rest)) if rest.len() == 4 => {
                        let w = u16::from_be_bytes([rest[0], rest[1]]) as u32;
                        let h = u16::from_be_bytes([rest[2], rest[3]]) as u32;
                        self.peer_views.insert(from.clone(), (w, h));
                        self.update_encode_size();
                    }
                    Some((&state::CAMERA, [value])) => {
                        if let Some(camera) = state::parse_camera(*value) {
                            let _ = self
                                .events
                                .send(SessionEvent::PeerCamera {
                                    peer: from.clone(),
                                    state: camera,
                                })
                                .await;
                        }
                    }
                    _ => {}
                }
                return;
            }
            Event::PeerLeft { peer, .. } => {
                self.peer_views.remove(peer);
                self.update_encode_size();
            }
            Event::Frame {
                from,
                stream: Stream::Video,
                payload,
                timestamp_us,
                flags,
            } => {
                let frame = video::decode(payload).and_then(|(seq, jpeg)| {
                    if flags & video::FLAG_STANDARD_TABLES != 0 {
                        Some((seq, crate::media::jpeg::restore_tables(jpeg)?))
                    } else {
                        Some((seq, jpeg.to_vec()))
                    }
                });
                if let Some((seq, _)) = &frame {
                    let h = self.heard.entry(from.clone()).or_default();
                    if let Some(last) = h.last_seq {
                        let gap = seq.wrapping_sub(last);
                        if (2..1000).contains(&gap) {
                            h.lost += gap - 1;
                        }
                    }
                    h.last_seq = Some(*seq);
                    h.received += 1;
                    h.delays
                        .push(capture::now_us().saturating_sub(*timestamp_us) as f64 / 1000.0);
                }
                let ev = match frame {
                    Some((seq, jpeg)) => SessionEvent::Video {
                        from: from.clone(),
                        seq,
                        jpeg,
                        timestamp_us: *timestamp_us,
                    },
                    None => SessionEvent::Room(Event::DecryptFailed {
                        from: from.clone(),
                        reason: "malformed video frame".into(),
                    }),
                };
                let _ = self.events.send(ev).await;
                return;
            }
            Event::Frame {
                from,
                stream: Stream::Feedback,
                payload,
                ..
            } => {
                if let Some(me) = &self.me {
                    if let Some(report) = feedback::find(payload, me) {
                        self.reports.insert(from.clone(), (report, Instant::now()));
                    }
                }
                return;
            }
            Event::Joined { you, .. } => self.me = Some(you.clone()),
            Event::WrongPassphrase => {
                self.ended = Some(Ended {
                    code: exit::WRONG_PASSPHRASE,
                    message: WRONG_PASSPHRASE.into(),
                });
            }
            _ => {}
        }
        let _ = self.events.send(SessionEvent::Room(e)).await;
    }

    /// Encode at the largest tile any receiver shows (capped, and scaled by
    /// the adaptive level), never larger.
    fn update_encode_size(&self) {
        let (w, h) = self
            .peer_views
            .values()
            .fold(None, |acc: Option<(u32, u32)>, &(w, h)| {
                Some(acc.map_or((w, h), |(aw, ah)| (aw.max(w), ah.max(h))))
            })
            .unwrap_or(self.default_view);
        let scale = self.adapter.current().scale;
        self.control.set_size(
            ((w as f32 * scale) as u32).max(8),
            ((h as f32 * scale) as u32).max(8),
        );
    }
}
