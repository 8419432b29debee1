//! One member's call: derives the room key, connects to the relay, runs the
//! capture thread, and drives the [`Room`] state machine with what the link,
//! the camera, the clock and the user produce. The TUI and headless mode
//! both consume its [`SessionEvent`]s and send it [`SessionCommand`]s.

use crate::crypto::identity::Fingerprint;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::crypto::kdf::{derive_psk, KdfParams};
use crate::crypto::sign::SigningIdentity;
use crate::invite::Invite;
use crate::media::audio::engine::{
    AudioEngine, AudioHandle, AudioSetup, Outgoing as AudioOutgoing, SenderStats,
};
use crate::media::capture::{self, CaptureControl, CaptureEvent, Preview};
use crate::media::source::{self, SourceSpec};
use crate::net::backoff;
use crate::net::link::{self, Link, LinkEvent, LinkStats};
use crate::room::chat::{ChatQueue, Recent, Typed};
use crate::room::guard::Guard;
use crate::room::{Event, Timings};

mod call;
mod driver;
mod identity;
mod payload;
pub mod sharing;

pub use payload::{feedback, state, video};

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
    /// Voice: the opened audio source and sink (None: no audio at all).
    pub audio: Option<std::sync::Mutex<AudioSetup>>,
    /// Our identity key (None: a throwaway one, as `--anonymous`).
    pub identity: Option<Arc<SigningIdentity>>,
    /// What we know of others' identity keys (None: nothing, and nothing
    /// is written).
    pub trust: Option<crate::identity::known::Trust>,
    /// `--only-known`: our sender key goes only to verified identities.
    pub only_known: bool,
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
            audio: None,
            identity: None,
            trust: None,
            only_known: false,
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
    /// Video paused for lack of bandwidth: `incoming`, the relay can't get
    /// the others' video to us; otherwise our uplink can't carry ours.
    VideoPaused {
        incoming: bool,
        paused: bool,
    },
    /// A peer's camera state (from its sealed state messages).
    PeerCamera {
        peer: String,
        state: state::Camera,
    },
    /// Voice is running: the UI reads levels and lip-sync clocks here.
    AudioReady(AudioHandle),
    /// Each sender's voice over the last second.
    AudioStats(Vec<SenderStats>),
    /// A peer muted or unmuted (from its sealed audio).
    PeerMuted {
        peer: String,
        muted: bool,
    },
    /// A member shares a terminal (`from` is us for our own share).
    ShareStarted {
        from: String,
        cols: u16,
        rows: u16,
    },
    /// A share's screen changed (at most a few dozen times a second).
    ShareScreen {
        from: String,
        screen: std::sync::Arc<crate::share::screen::ShareScreen>,
    },
    ShareStopped {
        from: String,
        reason: String,
    },
    /// Who may type in `from`'s share now (None: only its sharer).
    ShareControl {
        from: String,
        to: Option<String>,
    },
    Warning(String),
    /// A name we know arrived with another identity key (also said by
    /// `known: changed` on its `PeerVerified`).
    IdentityChanged {
        peer: String,
        name: String,
        identity: Fingerprint,
        previous: Option<crate::identity::known::Previous>,
    },
    /// "We compared the words": these members' identities are verified.
    IdentitiesVerified(Vec<(String, Fingerprint)>),
    Ended(Ended),
}

#[derive(Debug)]
pub enum SessionCommand {
    Chat(String),
    Camera(bool),
    /// Mute (true) or unmute our voice.
    Mute(bool),
    /// Our largest tile, in pixels: senders encode at (up to) this size.
    View(u32, u32),
    /// Shared terminals: ours, and typing in others'.
    Share(sharing::ShareCommand),
    /// "We compared the words": every member now is verified. With the
    /// words the user compared, refused if they have changed since.
    Verify {
        words: Option<String>,
    },
    Leave,
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
    let audio = match config.audio.take() {
        Some(setup) => {
            let setup = setup.into_inner().unwrap_or_else(|e| e.into_inner());
            match AudioEngine::start(setup) {
                Ok((engine, rx)) => {
                    let _ = events.send(SessionEvent::AudioReady(engine.handle())).await;
                    Some((engine, rx))
                }
                Err(e) => {
                    let _ = events
                        .send(SessionEvent::Warning(format!("no voice: {e}")))
                        .await;
                    None
                }
            }
        }
        None => None,
    };
    let (audio, audio_rx) = match audio {
        Some((engine, rx)) => (Some(engine), Some(rx)),
        None => (None, None),
    };
    let identity = config
        .identity
        .clone()
        .unwrap_or_else(|| Arc::new(SigningIdentity::generate(&mut rand_core::OsRng)));
    let trust = config
        .trust
        .take()
        .map(|t| Arc::new(std::sync::Mutex::new(t)));
    let mut session = Session {
        psk,
        control,
        events,
        commands,
        capture_rx,
        capturing: capture_thread.is_some(),
        has_source: capture_thread.is_some(),
        signing: Arc::new(SigningIdentity::generate(&mut rand_core::OsRng)),
        identity,
        trust,
        guard: Guard::default(),
        chat: ChatQueue::default(),
        recent: Recent::default(),
        lost_at: None,
        video_seq: 0,
        my_view: config.view,
        audio,
        audio_rx,
        share: None,
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

/// The next packet of our voice; never, without voice.
/// A closed channel (the voice engine stopped) counts as no voice: a
/// closed receiver is always ready, and would spin the call loop.
async fn next_audio(rx: &mut Option<mpsc::Receiver<AudioOutgoing>>) -> Option<AudioOutgoing> {
    let Some(receiver) = rx else {
        return std::future::pending().await;
    };
    match receiver.recv().await {
        Some(packet) => Some(packet),
        None => {
            *rx = None;
            std::future::pending().await
        }
    }
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
    /// Our identity key, and what we know of others'.
    identity: Arc<SigningIdentity>,
    trust: identity::SharedTrust,
    /// The online-guessing throttle, across connections.
    guard: Guard,
    /// Chat typed offline, owed to the members of before.
    chat: ChatQueue,
    /// Who was in the call lately, by signing key.
    recent: Recent,
    /// When the connection was lost (while offline).
    lost_at: Option<Instant>,
    video_seq: u32,
    my_view: (u32, u32),
    /// Voice, for the whole session (across reconnects).
    audio: Option<AudioEngine>,
    audio_rx: Option<mpsc::Receiver<AudioOutgoing>>,
    /// The terminal we share, across reconnects.
    share: Option<crate::share::live::LiveShare>,
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

    fn set_muted(&self, muted: bool) {
        if let Some(a) = &self.audio {
            a.handle().set_muted(muted);
        }
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
                _ = next_audio(&mut self.audio_rx) => {}
                cmd = self.commands.recv() => match cmd {
                    Some(SessionCommand::Chat(text)) => self.owe_chat(text).await,
                    Some(SessionCommand::Camera(on)) => self.control.enabled.store(on, std::sync::atomic::Ordering::Relaxed),
                    Some(SessionCommand::Mute(muted)) => self.set_muted(muted),
                    Some(SessionCommand::View(w, h)) => self.my_view = (w, h),
                    Some(SessionCommand::Share(_)) => {
                        self.emit(SessionEvent::Warning(
                            "offline: shared terminals wait until the call is back".into(),
                        ))
                        .await
                    }
                    Some(SessionCommand::Verify { .. }) => {
                        self.emit(SessionEvent::Warning(
                            "offline: verify once the call is back and the safety words show".into(),
                        ))
                        .await
                    }
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
}
