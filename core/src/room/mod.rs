//! The session state machine: peers, handshakes, sender keys, presence, chat.
//!
//! Sans-I/O: it consumes relay events and the time, and returns [`Output`]s
//! (messages to send, events to show). The network task and the UI drive it;
//! tests drive it with scripted events and a fake clock.
//!
//! - `round`: rounds of commit-then-reveal; the safety words.
//! - `handshake`: SPAKE2, confirmations, proofs of signing keys, the
//!   pairwise messages that follow (sender keys, private chat).
//! - `peer`: what we know of each peer; freshness; bounded sets.
//! - [`guard`]: the online-guessing throttle (outlives a connection).
//! - `notices`: the wrong-passphrase verdict and churn warnings.
//! - [`chat`]: who a chat line may reach, across reconnects.
//! - [`wire`]: the binary messages.

pub mod chat;
pub mod guard;
mod handshake;
mod known;
mod notices;
mod peer;
pub(crate) mod round;
pub mod wire;
pub use known::Known;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use crate::time::Instant;

use crate::protocol::{Kind, LeaveReason};

use crate::crypto::frame::{FramePlaintext, Stream};
use crate::crypto::identity::Fingerprint;
use crate::crypto::kdf::put_lp;
use crate::crypto::pairwise::LocalIdentity;
use crate::crypto::secret::Key32;
use crate::crypto::sframe::{kid, SenderKey, SframeError};
use crate::crypto::sign::{self, SigningIdentity};
use guard::Guard;
use notices::{Churn, Verdict};
use peer::{BoundedSet, Peer};
use round::Round;
use wire::{WireMessage, MAX_NAME_BYTES};

/// Protocol timers (DESIGN.md §3), overridable in tests.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// A joiner with only mismatches for this long has the wrong passphrase.
    pub wrong_passphrase_after: Duration,
    /// A verified peer silent this long is treated as gone.
    pub silence_timeout: Duration,
    /// Send a keep-alive when nothing else was sent for this long.
    pub keepalive_every: Duration,
    pub ratchet_every: Duration,
    pub fresh_key_every: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            wrong_passphrase_after: Duration::from_secs(5),
            silence_timeout: Duration::from_secs(15),
            keepalive_every: Duration::from_secs(1),
            ratchet_every: Duration::from_secs(60),
            fresh_key_every: Duration::from_secs(300),
        }
    }
}

/// The most peers we keep track of, whatever the relay announces.
pub const MAX_PEERS: usize = 256;
/// How long we wait for the confirmation of a peer announced after us
/// before sending ours first, once (see `Room::break_join_ties`).
pub const TIE_WAIT: Duration = Duration::from_secs(1);
/// How far a sender's capture times may be from our clock (a day).
const MAX_CLOCK_SKEW_US: u64 = 86_400_000_000;

/// Longest chat line accepted from a peer, in characters.
pub const MAX_CHAT_CHARS: usize = 2_000;
/// Keys typed into a member's shared terminal, in one message at most.
pub const MAX_SHARE_KEYS: usize = 1024;
/// `--only-known`: how often every member gets our presence (three beats
/// within the silence timeout).
const PRESENCE_EVERY: Duration = Duration::from_secs(5);

/// SFrame header bytes every audio message makes room for: a key id up to
/// 5 bytes (2^24 fresh keys, one per 5 minutes: centuries) and a counter up
/// to 3 (16 million messages under one key, which rotates every 5
/// minutes), plus the config byte. Longer headers never occur in practice;
/// if one did, that message would be that much longer.
const AUDIO_HEADER_ROOM: usize = 9;

/// Something the driver must do.
#[derive(Debug)]
pub enum Output {
    /// Send `data` (base64 it) through the relay, to one peer or the room.
    Send {
        to: Option<String>,
        kind: Kind,
        data: Vec<u8>,
    },
    Event(Event),
}

/// Something to show the user (or print in headless mode).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Joined {
        you: String,
        room: String,
        /// How many were in the room before us.
        peers: usize,
    },
    PeerJoined {
        peer: String,
    },
    /// A peer proved the passphrase and its signing key (the first time on
    /// this connection). `tag` tells apart members with the same name.
    /// `identity` is their identity key's public half; `known` is what we
    /// knew of it before this call (filled in by the session, which keeps
    /// `known_peers`; the room leaves it `None`).
    PeerVerified {
        peer: String,
        name: String,
        tag: String,
        safety_words: String,
        identity: [u8; 32],
        known: Option<Known>,
        /// A verified key under another name: the name it was verified as
        /// (the session fills it in too).
        known_as: Option<String>,
    },
    /// A member's name changed (names are self-chosen).
    PeerRenamed {
        peer: String,
        old: String,
        new: String,
    },
    PeerLeft {
        peer: String,
        reason: &'static str,
    },
    AuthMismatch {
        peer: String,
    },
    /// At least two members who were here first refused our passphrase and
    /// nobody confirmed it.
    WrongPassphrase,
    /// The one member here refused our passphrase (and nobody confirmed
    /// it): one of us has another invite, and we can't tell who. Not a
    /// verdict: we keep waiting.
    PassphraseDisagrees {
        peer: String,
    },
    /// Peers keep joining and leaving (or failing) before they verify:
    /// each such departure may be a relay trying its luck at the safety
    /// words. `count` in the last minute.
    UnverifiedChurn {
        count: usize,
    },
    KeyRotated {
        epoch: u64,
    },
    /// Newcomers keep failing to prove the passphrase: someone may be
    /// guessing it. New handshakes now wait `wait`.
    Guessing {
        failed: u32,
        wait: Duration,
    },
    /// A decrypted media or feedback message.
    Frame {
        from: String,
        stream: Stream,
        timestamp_us: u64,
        flags: u8,
        payload: Vec<u8>,
    },
    Chat {
        from: String,
        name: String,
        text: String,
    },
    /// Keys a member typed into our shared terminal, sealed pairwise to
    /// us (whether they may type is the session's call).
    ShareKeys {
        from: String,
        keys: Vec<u8>,
    },
    DecryptFailed {
        from: String,
        reason: String,
    },
    /// A state message from a peer (view size, camera on/off): see
    /// the client's `session::state`.
    PeerState {
        from: String,
        payload: Vec<u8>,
    },
}

/// Counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoomStats {
    pub decrypt_failures: u64,
    /// Frames from a peer whose keys we don't have yet (its handshake is
    /// still going, as at every join): dropped and counted, but not a
    /// failure to show anyone.
    pub early_frames: u64,
    /// Peer ids the relay announced beyond what we keep.
    pub peers_ignored: u64,
    /// Rounds started (commit-then-reveal).
    pub rounds: u64,
    /// Of those, forced: a participant dropped out after our reveal.
    pub forced_rounds: u64,
    /// SPAKE2 handshakes started.
    pub handshakes: u64,
}

/// How sure we are of the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nobody has answered yet (e.g. first in the room).
    Unverified,
    Verified,
    Wrong,
}

pub struct Room {
    room: String,
    psk: Key32,
    name: String,
    timings: Timings,
    rng: Box<dyn rand_core::CryptoRngCore + Send>,
    signing: Arc<SigningIdentity>,
    /// Our identity key (signs each handshake inside the channel).
    identity: Arc<SigningIdentity>,
    /// `--only-known`: the identity fingerprints our sender key goes to
    /// (`None`: every member).
    allowed: Option<HashSet<Fingerprint>>,
    /// The capture clock (µs) at the latest input, and when we last sent
    /// every member our presence (`--only-known`).
    now_us: u64,
    last_presence: Instant,
    /// Our X25519 key for this connection, and this round's nonce.
    me: LocalIdentity,
    round: Round,
    you: Option<String>,
    peers: HashMap<String, Peer>,
    max_peers: usize,
    /// Our own commitments on this connection: one of them coming back as
    /// a peer's is a reflection, ignored. (Another peer's values under a
    /// new id are harmless: only their owner can finish a handshake with
    /// them, and the words count each value once.)
    own_commits: BoundedSet<[u8; 32]>,
    safety_words: String,
    /// Who the words cover, as they were when computed: peer id, name and
    /// identity (what "verify" marks; a rename after the words changes
    /// nothing the user compared).
    words_cover: Vec<(String, String, [u8; 32])>,
    /// Width of the safety words (tests narrow it to run attacks).
    safety_bits: u32,
    key: SenderKey,
    /// How many times our key changed (what the UI calls the epoch).
    rotations: u64,
    key_since: Instant,
    fresh_since: Instant,
    last_sent: Instant,
    verdict: Verdict,
    churn: Churn,
    guard: Guard,
    pub stats: RoomStats,
    /// Tests: the nonce our next round uses (an attacker choosing its
    /// values), and the old behaviour to attack (a revealed value kept for
    /// the next round).
    #[cfg(test)]
    forced_nonce: Option<[u8; crate::crypto::pairwise::NONCE_LEN]>,
    #[cfg(test)]
    reuse_revealed_values: bool,
    /// Tests: the identity key our proofs name (an attacker claiming
    /// someone else's, without its secret half).
    #[cfg(test)]
    claimed_identity: Option<[u8; 32]>,
    /// Tests: take hellos that name our own signing key (to check that the
    /// proofs alone refuse a reflection too).
    #[cfg(test)]
    accept_our_signing_key: bool,
}

impl Room {
    pub fn new(
        room: &str,
        psk: Key32,
        name: &str,
        timings: Timings,
        mut rng: Box<dyn rand_core::CryptoRngCore + Send>,
        signing: Arc<SigningIdentity>,
        now: Instant,
    ) -> Self {
        let me = LocalIdentity::generate(&mut rng, signing.public());
        let round = Round::new(now);
        let key = SenderKey::new(kid(0, 0), Key32::random(&mut rng));
        // Throwaway unless the session gives ours (`with_identity`).
        let identity = Arc::new(SigningIdentity::generate(&mut rng));
        let name = crate::sanitize::clean_name(wire::truncate_utf8(name, MAX_NAME_BYTES));
        Room {
            room: room.to_string(),
            psk,
            name,
            timings,
            rng,
            signing,
            identity,
            allowed: None,
            now_us: 0,
            last_presence: now,
            me,
            round,
            you: None,
            peers: HashMap::new(),
            max_peers: MAX_PEERS,
            own_commits: BoundedSet::new(64),
            safety_words: String::new(),
            words_cover: Vec::new(),
            safety_bits: crate::crypto::safety::FULL_WIDTH,
            key,
            rotations: 0,
            key_since: now,
            fresh_since: now,
            last_sent: now,
            verdict: Verdict::default(),
            churn: Churn::default(),
            guard: Guard::default(),
            stats: RoomStats::default(),
            #[cfg(test)]
            forced_nonce: None,
            #[cfg(test)]
            reuse_revealed_values: false,
            #[cfg(test)]
            claimed_identity: None,
            #[cfg(test)]
            accept_our_signing_key: false,
        }
    }

    /// Our identity key, for the proofs we send.
    pub fn with_identity(mut self, identity: Arc<SigningIdentity>) -> Self {
        self.identity = identity;
        self
    }

    /// Our sender key goes only to members whose identity is in `allowed`
    /// (`--only-known`); the others are shown but see nothing.
    pub fn with_allowed(mut self, allowed: Option<HashSet<Fingerprint>>) -> Self {
        self.allowed = allowed;
        self
    }

    /// Members whose identities are now allowed get our sender key, after
    /// a ratchet step if it has sealed anything: they must not read what
    /// they were kept from while they waited.
    pub fn allow(&mut self, identities: &[Fingerprint], now: Instant) -> Vec<Output> {
        let Some(allowed) = &mut self.allowed else {
            return vec![];
        };
        allowed.extend(identities.iter().copied());
        let released: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.withheld && self.may_have_key(p))
            .map(|(id, _)| id.clone())
            .collect();
        if released.is_empty() {
            return vec![];
        }
        let mut out = Vec::new();
        if self.key.has_sealed() {
            out.extend(self.ratchet(now));
        }
        for peer in released {
            out.extend(self.deliver_key(&peer, now));
        }
        out
    }

    /// Whether our sender key may go to this peer.
    fn may_have_key(&self, peer: &Peer) -> bool {
        match (&self.allowed, peer.identity) {
            (None, _) => true,
            (Some(allowed), Some(identity)) => allowed.contains(&Fingerprint::of(&identity)),
            (Some(_), None) => false,
        }
    }

    /// The members the safety words now cover: peer id, name and identity
    /// key (what "we compared the words" marks verified). Only this
    /// round's participants who proved themselves in it: a member left out
    /// of the round (lapsed) is in the call but not in the words.
    pub fn member_identities(&self) -> Vec<(String, String, [u8; 32])> {
        if self.safety_words.is_empty() {
            return vec![];
        }
        self.words_cover
            .iter()
            .filter(|(id, _, identity)| {
                self.peers.get(id).is_some_and(|p| {
                    p.is_verified()
                        && matches!(p.hs, peer::Hs::Done)
                        && p.identity == Some(*identity)
                })
            })
            .cloned()
            .collect()
    }

    /// Keeps the guessing throttle of an earlier connection: a relay that
    /// drops us must not get a fresh allowance of guesses.
    pub fn with_guard(mut self, guard: Guard) -> Self {
        self.guard = guard;
        self
    }

    /// The throttle, to carry over to the next connection. What is still
    /// unanswered ends with this connection and is counted first: a relay
    /// that drops us can't make the guesses it got disappear.
    pub fn take_guard(&mut self) -> Guard {
        let now = Instant::now();
        let ids: Vec<String> = self.peers.keys().cloned().collect();
        for id in ids {
            if let Some(gone) = self.peers.remove(&id) {
                let _ = self.count_unanswered(&gone, now);
            }
        }
        std::mem::take(&mut self.guard)
    }

    /// Counts what a peer that is going away left unanswered: an earlier
    /// round's handshake that had our confirmation, and this round's
    /// charged one (a guess if it had our confirmation, else a stall).
    fn count_unanswered(&mut self, gone: &Peer, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let report = |f: Option<(u32, Duration)>| {
            f.map(|(failed, wait)| Output::Event(Event::Guessing { failed, wait }))
        };
        if gone.settling.is_some() {
            out.extend(report(
                self.guard
                    .failed(now, guard::Failure::Guess { reported: true }),
            ));
        }
        if gone.charged {
            let how = if gone.oracle {
                guard::Failure::Guess { reported: true }
            } else {
                guard::Failure::Stall
            };
            out.extend(report(self.guard.failed(now, how)));
        }
        out
    }

    /// Anyone else in the room (verified or not).
    pub fn has_peers(&self) -> bool {
        !self.peers.is_empty()
    }

    pub fn you(&self) -> Option<&str> {
        self.you.as_deref()
    }

    /// How many times our sender key changed.
    pub fn epoch(&self) -> u64 {
        self.rotations
    }

    pub fn verified_peers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_verified())
            .map(|(id, _)| id.clone())
            .collect();
        v.sort();
        v
    }

    /// The signing keys of the verified members: who they are across
    /// reconnects (peer ids and X25519 keys change, these don't).
    pub fn verified_signers(&self) -> Vec<([u8; 32], String)> {
        self.peers
            .iter()
            .filter(|(_, p)| p.is_verified())
            .filter_map(|(id, p)| Some((p.proven_s?, id.clone())))
            .collect()
    }

    pub fn is_mismatched(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(|p| p.excluded())
    }

    fn anyone_verified(&self) -> bool {
        self.peers.values().any(|p| p.is_verified())
    }

    pub fn verification(&self) -> Verification {
        if self.anyone_verified() {
            Verification::Verified
        } else if self.verdict.wrong_reported() {
            Verification::Wrong
        } else {
            Verification::Unverified
        }
    }

    /// Members who were here before us refused our passphrase, and nobody
    /// has confirmed it: at the end of a short call, that is the verdict
    /// even before [`Timings::wrong_passphrase_after`].
    pub fn refused_and_unconfirmed(&self) -> bool {
        self.verdict.refused_by_several() && !self.anyone_verified()
    }

    /// Safety words over this round's values: ours and every participant's,
    /// once all of them proved themselves in it. Empty until then (there
    /// is nothing to compare yet).
    pub fn safety_words(&self) -> &str {
        &self.safety_words
    }

    /// Narrows the words to `bits` (tests, to run attacks at a width
    /// where searches finish).
    #[cfg(test)]
    pub fn set_safety_bits(&mut self, bits: u32) {
        self.safety_bits = bits;
    }

    fn metadata(&self, sender_e: &[u8; 32]) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.room.len() + 40);
        put_lp(&mut m, self.room.as_bytes());
        put_lp(&mut m, sender_e);
        m
    }

    /// The relay's `welcome`: we are in, these peers were here first, the
    /// room holds at most `max_peers` (as the relay announced).
    pub fn on_welcome(
        &mut self,
        you: &str,
        peers: &[String],
        max_peers: usize,
        now: Instant,
    ) -> Vec<Output> {
        self.you = Some(you.to_string());
        self.max_peers = max_peers.clamp(1, MAX_PEERS);
        for p in peers {
            self.add_peer(p, true, now);
        }
        let mut out = vec![Output::Event(Event::Joined {
            you: you.to_string(),
            room: self.room.clone(),
            peers: self.peers.len(),
        })];
        out.extend(self.start_round(now));
        out
    }

    /// Tracks a peer, within the room's limit: a relay announcing thousands
    /// of fake peers gets no more state than a full room.
    fn add_peer(&mut self, peer: &str, member_before_us: bool, now: Instant) -> bool {
        if self.peers.contains_key(peer) {
            return true;
        }
        if self.peers.len() >= self.max_peers {
            self.stats.peers_ignored += 1;
            return false;
        }
        self.peers
            .insert(peer.to_string(), Peer::new(now, member_before_us));
        true
    }

    pub fn on_peer_joined(&mut self, peer: &str, now: Instant) -> Vec<Output> {
        if !self.add_peer(peer, false, now) {
            return vec![];
        }
        vec![Output::Event(Event::PeerJoined {
            peer: peer.to_string(),
        })]
    }

    pub fn on_peer_left(&mut self, peer: &str, reason: LeaveReason, now: Instant) -> Vec<Output> {
        self.remove_peer(peer, reason.as_str(), now)
    }

    fn remove_peer(&mut self, peer: &str, reason: &'static str, now: Instant) -> Vec<Output> {
        let mut out: Vec<Output> = self
            .note_unverified_departure(peer, now)
            .into_iter()
            .collect();
        let Some(gone) = self.peers.remove(peer) else {
            return vec![];
        };
        // Whatever it left unanswered counts: an earlier round's handshake
        // that had our confirmation, and this round's.
        out.extend(self.count_unanswered(&gone, now));
        out.push(Output::Event(Event::PeerLeft {
            peer: peer.to_string(),
            reason,
        }));
        out.extend(self.participant_lost(peer, now));
        // It held our key: replace it with a fresh one the rest get pairwise.
        if gone.is_verified() {
            out.extend(self.rotate_fresh(now));
        }
        out
    }

    /// A `blob` from the relay, base64 already decoded. `now_us` is the
    /// wall clock (µs since the epoch), for the freshness of frames.
    pub fn on_blob(&mut self, from: &str, data: &[u8], now: Instant, now_us: u64) -> Vec<Output> {
        self.now_us = self.now_us.max(now_us);
        let msg = match WireMessage::decode(data) {
            Ok(m) => m,
            Err(e) => return vec![self.failed(from, e.to_string())],
        };
        if !self.peers.contains_key(from) {
            // Presence comes before blobs; a blob from an unknown id is stale
            // (or from a peer beyond the limit).
            return vec![];
        }
        let mut out = match msg {
            WireMessage::Commit {
                round,
                commit,
                seen,
            } => self.on_commit(from, round, commit, seen, now),
            WireMessage::Hello(h) => self.on_hello(from, h, now),
            WireMessage::Frame { signature, sealed } => {
                self.on_frame(from, &sealed, &signature, now, now_us)
            }
            other => self.on_directed(from, other, now),
        };
        out.extend(self.start_handshakes(now));
        out
    }

    fn failed(&mut self, from: &str, reason: String) -> Output {
        self.stats.decrypt_failures += 1;
        Output::Event(Event::DecryptFailed {
            from: from.to_string(),
            reason,
        })
    }

    fn on_frame(
        &mut self,
        from: &str,
        sealed: &[u8],
        signature: &[u8; sign::SIGNATURE_LEN],
        now: Instant,
        now_us: u64,
    ) -> Vec<Output> {
        let peer = &self.peers[from];
        let (Some(their_e), Some(their_s), true) = (peer.e, peer.proven_s, peer.member) else {
            self.stats.early_frames += 1;
            return vec![];
        };
        let metadata = self.metadata(&their_e);
        let room = self.room.clone();
        let peer = self.peers.get_mut(from).expect("checked by caller");
        // The tag first (cheap, and rejects non-members), then the
        // signature (rejects members posing as this one), then the replay
        // window moves.
        let verified = || sign::verify_frame(&their_s, &room, &their_e, sealed, signature).is_ok();
        let opened = match peer.keyring.open(sealed, &metadata, now, verified) {
            Ok(o) => o,
            Err(SframeError::UnknownKey) if peer.keyring.is_empty() => {
                self.stats.early_frames += 1;
                return vec![];
            }
            Err(e) => return vec![self.failed(from, e.to_string())],
        };
        let Ok(frame) = FramePlaintext::decode(&opened.plaintext) else {
            return vec![self.failed(from, "malformed frame".into())];
        };
        // Clocks differ between machines, but not by a day: a capture time
        // that far off is a broken (or hostile) sender, and everything
        // downstream (freshness, lip sync, jitter buffers) may count on it.
        if frame.timestamp_us.abs_diff(now_us) > MAX_CLOCK_SKEW_US {
            return vec![self.failed(from, "capture time out of range".into())];
        }
        if peer.freshness.fresh(frame.timestamp_us, now_us) {
            peer.last_auth = now;
        }
        match frame.stream {
            Stream::State if frame.payload.is_empty() => vec![], // keep-alive
            Stream::State => vec![Output::Event(Event::PeerState {
                from: from.to_string(),
                payload: frame.payload,
            })],
            Stream::Chat => {
                let name = peer.name.clone().unwrap_or_else(|| from.to_string());
                vec![chat_event(from, name, &frame.payload)]
            }
            stream @ (Stream::Video | Stream::Feedback | Stream::Audio | Stream::Share) => {
                vec![Output::Event(Event::Frame {
                    from: from.to_string(),
                    stream,
                    timestamp_us: frame.timestamp_us,
                    flags: frame.flags,
                    payload: frame.payload,
                })]
            }
        }
    }

    /// Seals a message for everyone under our sender key, signed. `None`
    /// while no member is verified (nobody could open it).
    pub fn seal(
        &mut self,
        stream: Stream,
        flags: u8,
        payload: &[u8],
        timestamp_us: u64,
        now: Instant,
    ) -> Option<Output> {
        if !self.peers.values().any(|p| p.is_verified()) {
            return None;
        }
        let frame = FramePlaintext {
            timestamp_us,
            stream,
            flags,
            payload: payload.to_vec(),
        };
        let plaintext = if stream == Stream::Audio {
            // Every voice message the same size on the wire: no bucket
            // rounding (the payload is constant already), and padding that
            // absorbs the SFrame header's growth with the counter and key id.
            let exact = crate::crypto::frame::HEADER_LEN + payload.len();
            let room = AUDIO_HEADER_ROOM.saturating_sub(self.key.next_header_len());
            frame.encode_exact(exact + room)
        } else {
            frame.encode()
        };
        let my_e = self.me.public();
        let metadata = self.metadata(&my_e);
        let sealed = self.key.seal(&metadata, &plaintext);
        let signature = self.signing.sign_frame(&self.room, &my_e, &sealed);
        let kind = match stream {
            Stream::Video => Kind::Media,
            Stream::Audio => Kind::Audio,
            _ => Kind::Control,
        };
        Some(self.send(None, kind, WireMessage::Frame { signature, sealed }, now))
    }

    /// A chat line for the room: readable by exactly the members verified
    /// now (they hold the current key; a joiner gets a newer one). `None`
    /// when nobody is verified: the line reaches nobody, now or later.
    pub fn send_chat(&mut self, text: &str, timestamp_us: u64, now: Instant) -> Option<Output> {
        self.seal(Stream::Chat, 0, text.as_bytes(), timestamp_us, now)
    }

    fn send(&mut self, to: Option<&str>, kind: Kind, msg: WireMessage, now: Instant) -> Output {
        self.last_sent = now;
        Output::Send {
            to: to.map(str::to_string),
            kind,
            data: msg.encode(),
        }
    }

    /// Our key moved on: a fresh random key (a new generation) delivered
    /// pairwise to every verified member.
    fn rotate_fresh(&mut self, now: Instant) -> Vec<Output> {
        self.key = self.key.fresh(&mut self.rng);
        self.key_since = now;
        self.fresh_since = now;
        self.rotations += 1;
        let mut out = vec![Output::Event(Event::KeyRotated {
            epoch: self.rotations,
        })];
        for peer in self.verified_peers() {
            out.extend(self.deliver_key(&peer, now));
        }
        out
    }

    /// One ratchet step (members follow by themselves); a fresh key when
    /// the generation has no steps left.
    fn ratchet(&mut self, now: Instant) -> Vec<Output> {
        match self.key.ratcheted() {
            Some(next) => {
                self.key = next;
                self.key_since = now;
                self.rotations += 1;
                vec![Output::Event(Event::KeyRotated {
                    epoch: self.rotations,
                })]
            }
            None => self.rotate_fresh(now),
        }
    }

    /// Timers: wrong-passphrase verdict, silent peers, key rotation,
    /// keep-alive, throttled handshakes, expiry of superseded keys. Call
    /// about every 100 ms.
    pub fn tick(&mut self, now: Instant, timestamp_us: u64) -> Vec<Output> {
        self.now_us = self.now_us.max(timestamp_us);
        let mut out = Vec::new();
        let verified = self.anyone_verified();
        out.extend(
            self.verdict
                .tick(now, self.timings.wrong_passphrase_after, verified)
                .map(Output::Event),
        );
        let silent: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.is_verified() && now.duration_since(p.last_auth) >= self.timings.silence_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            out.extend(self.remove_peer(&id, "timeout", now));
        }
        if now.duration_since(self.fresh_since) >= self.timings.fresh_key_every {
            out.extend(self.rotate_fresh(now));
        } else if now.duration_since(self.key_since) >= self.timings.ratchet_every {
            out.extend(self.ratchet(now));
        }
        if now.duration_since(self.last_sent) >= self.timings.keepalive_every {
            if let Some(o) = self.seal(Stream::State, 0, &[], timestamp_us, now) {
                out.push(o);
            }
        }
        // Under --only-known, some members can't open our frames: a beat
        // to every member (all alike, so the relay can't tell which) keeps
        // us alive to them.
        if self.allowed.is_some() && now.duration_since(self.last_presence) >= PRESENCE_EVERY {
            self.last_presence = now;
            for peer in self.verified_peers() {
                out.extend(self.send_presence(&peer, now));
            }
        }
        out.extend(self.round_timers(now));
        out.extend(self.start_handshakes(now));
        // Held confirmations go when earlier ones were answered or counted,
        // and no wait is imposed.
        out.extend(self.release_confirms(now));
        for peer in self.peers.values_mut() {
            peer.keyring.purge(now);
        }
        out
    }
}

#[cfg(test)]
impl Room {
    /// The hellos our current words are over (ours and the participants'),
    /// if the round is complete.
    fn round_hellos(&self) -> Option<Vec<crate::crypto::pairwise::Hello>> {
        if self.safety_words.is_empty() {
            return None;
        }
        let mut v: Vec<_> = self
            .round
            .participants
            .keys()
            .filter_map(|id| self.peers.get(id)?.hello)
            .collect();
        v.push(self.me.hello());
        Some(v)
    }

    /// The established channel with the participant whose hello is `h`.
    fn channel_to(
        &mut self,
        h: &crate::crypto::pairwise::Hello,
    ) -> Option<&mut crate::crypto::pairwise::PairwiseChannel> {
        let id = self
            .round
            .participants
            .keys()
            .find(|id| self.peers.get(*id).and_then(|p| p.hello) == Some(*h))?
            .clone();
        self.peers.get_mut(&id)?.channel.as_deref_mut()
    }

    /// A well-formed SPAKE2 message from this room to `peer` (for tests).
    fn spake_message_for_tests(&mut self, peer: &crate::crypto::pairwise::Hello) -> [u8; 33] {
        let (_, msg) = crate::crypto::pairwise::Handshake::start(
            &self.me,
            peer,
            &self.room,
            &self.psk,
            &mut self.rng,
        );
        msg.try_into().expect("33 bytes")
    }
}

/// A chat event from untrusted text: cleaned of control characters, capped.
fn chat_event(from: &str, name: String, payload: &[u8]) -> Output {
    Output::Event(Event::Chat {
        from: from.to_string(),
        name,
        text: crate::sanitize::clean_truncated(&String::from_utf8_lossy(payload), MAX_CHAT_CHARS),
    })
}

#[cfg(test)]
mod tests;
