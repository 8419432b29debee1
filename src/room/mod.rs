//! The session state machine: peers, handshakes, sender keys, presence, chat.
//!
//! Sans-I/O: it consumes relay events and the time, and returns [`Output`]s
//! (messages to send, events to show). The network task and the UI drive it;
//! tests drive it with scripted events and a fake clock.

pub mod wire;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use streamflow_relay::protocol::{Kind, LeaveReason};

use crate::crypto::frame::{FramePlaintext, Stream};
use crate::crypto::kdf::put_lp;
use crate::crypto::pairwise::{Handshake, Hello, LocalIdentity, PairwiseChannel};
use crate::crypto::safety::safety_words;
use crate::crypto::secret::Key32;
use crate::crypto::sframe::{SenderKey, SenderKeyring, SframeError};
use wire::{SenderKeyMessage, WireMessage, MAX_NAME_BYTES, SEALED_SENDER_KEY};

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
        safety_words: String,
    },
    PeerJoined {
        peer: String,
    },
    PeerVerified {
        peer: String,
        name: String,
        safety_words: String,
    },
    PeerLeft {
        peer: String,
        reason: &'static str,
    },
    AuthMismatch {
        peer: String,
    },
    WrongPassphrase,
    KeyRotated {
        epoch: u64,
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
    DecryptFailed {
        from: String,
        reason: String,
    },
    /// A state message from a peer (view size, camera on/off): see
    /// [`crate::session::state`].
    PeerState {
        from: String,
        payload: Vec<u8>,
    },
}

enum PeerState {
    /// Known from presence; no hello yet.
    AwaitingHello,
    /// SPAKE2 started; waiting for their SPAKE2 message.
    Handshaking(Box<Handshake>),
    /// Keys derived; waiting for their confirmation.
    AwaitingConfirm(Box<PairwiseChannel>),
    Verified(Box<PairwiseChannel>),
    /// Their confirmation did not match: wrong passphrase, or an attacker.
    Mismatch,
}

struct Peer {
    hello: Option<Hello>,
    state: PeerState,
    name: Option<String>,
    keyring: SenderKeyring,
    last_auth: Instant,
    /// Our hello has reached this peer (broadcast after it joined, or directed).
    hello_sent: bool,
    /// Handshake messages that arrived before their hello.
    early: Vec<WireMessage>,
    /// Was in the room when we joined: its verdict decides WrongPassphrase.
    member_before_us: bool,
}

impl Peer {
    fn new(now: Instant, member_before_us: bool) -> Self {
        Peer {
            hello: None,
            state: PeerState::AwaitingHello,
            name: None,
            keyring: SenderKeyring::default(),
            last_auth: now,
            hello_sent: member_before_us,
            early: Vec::new(),
            member_before_us,
        }
    }

    fn is_verified(&self) -> bool {
        matches!(self.state, PeerState::Verified(_))
    }
}

/// Counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoomStats {
    pub decrypt_failures: u64,
}

/// How sure we are of the passphrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nobody has answered yet (e.g. first in the room).
    Unverified,
    Verified,
    Wrong,
}

const MAX_EARLY: usize = 8;

pub struct Room {
    room: String,
    psk: Key32,
    name: String,
    timings: Timings,
    rng: Box<dyn rand_core::CryptoRngCore + Send>,
    me: LocalIdentity,
    you: Option<String>,
    peers: HashMap<String, Peer>,
    /// Every X25519 key seen in this session: one handshake per key, ever.
    seen_keys: HashSet<[u8; 32]>,
    safety_words: String,
    key: SenderKey,
    key_since: Instant,
    fresh_since: Instant,
    last_sent: Instant,
    first_mismatch: Option<Instant>,
    wrong_reported: bool,
    pub stats: RoomStats,
}

impl Room {
    pub fn new(
        room: &str,
        psk: Key32,
        name: &str,
        timings: Timings,
        mut rng: Box<dyn rand_core::CryptoRngCore + Send>,
        now: Instant,
    ) -> Self {
        let me = LocalIdentity::generate(&mut rng);
        let key = SenderKey::new(0, Key32::random(&mut rng));
        let name = truncate_utf8(name, MAX_NAME_BYTES).to_string();
        let mut room = Room {
            room: room.to_string(),
            psk,
            name,
            timings,
            rng,
            me,
            you: None,
            peers: HashMap::new(),
            seen_keys: HashSet::new(),
            safety_words: String::new(),
            key,
            key_since: now,
            fresh_since: now,
            last_sent: now,
            first_mismatch: None,
            wrong_reported: false,
            stats: RoomStats::default(),
        };
        room.refresh_safety_words();
        room
    }

    pub fn you(&self) -> Option<&str> {
        self.you.as_deref()
    }

    pub fn epoch(&self) -> u64 {
        self.key.epoch()
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

    pub fn is_mismatched(&self, peer: &str) -> bool {
        matches!(
            self.peers.get(peer).map(|p| &p.state),
            Some(PeerState::Mismatch)
        )
    }

    pub fn verification(&self) -> Verification {
        if self.peers.values().any(|p| p.is_verified()) {
            Verification::Verified
        } else if self.wrong_reported {
            Verification::Wrong
        } else {
            Verification::Unverified
        }
    }

    /// Safety words over all verified members and us.
    pub fn safety_words(&self) -> &str {
        &self.safety_words
    }

    /// Recomputes the safety words; called whenever the set of verified
    /// members changes (and only then: they are read after every event).
    fn refresh_safety_words(&mut self) {
        let mut members: Vec<Hello> = self
            .peers
            .values()
            .filter(|p| p.is_verified())
            .filter_map(|p| p.hello)
            .collect();
        members.push(self.me.hello());
        self.safety_words = safety_words(&self.room, &members).join(" ");
    }

    fn metadata(&self, sender_e: &[u8; 32]) -> Vec<u8> {
        let mut m = Vec::with_capacity(self.room.len() + 40);
        put_lp(&mut m, self.room.as_bytes());
        put_lp(&mut m, sender_e);
        m
    }

    /// The relay's `welcome`: we are in, these peers were here first.
    pub fn on_welcome(&mut self, you: &str, peers: &[String], now: Instant) -> Vec<Output> {
        self.you = Some(you.to_string());
        for p in peers {
            self.peers.insert(p.clone(), Peer::new(now, true));
        }
        let mut out = vec![Output::Event(Event::Joined {
            you: you.to_string(),
            room: self.room.clone(),
            safety_words: self.safety_words.clone(),
        })];
        out.push(self.send(
            None,
            Kind::Control,
            WireMessage::Hello(self.me.hello()),
            now,
        ));
        out
    }

    pub fn on_peer_joined(&mut self, peer: &str, now: Instant) -> Vec<Output> {
        self.peers
            .entry(peer.to_string())
            .or_insert_with(|| Peer::new(now, false));
        vec![Output::Event(Event::PeerJoined {
            peer: peer.to_string(),
        })]
    }

    pub fn on_peer_left(&mut self, peer: &str, reason: LeaveReason, now: Instant) -> Vec<Output> {
        self.remove_peer(peer, reason.as_str(), now)
    }

    fn remove_peer(&mut self, peer: &str, reason: &'static str, now: Instant) -> Vec<Output> {
        let Some(gone) = self.peers.remove(peer) else {
            return vec![];
        };
        let mut out = vec![Output::Event(Event::PeerLeft {
            peer: peer.to_string(),
            reason,
        })];
        // It held our key: replace it with a fresh one the rest get pairwise.
        if gone.is_verified() {
            self.refresh_safety_words();
            out.extend(self.rotate_fresh(now));
        }
        out
    }

    /// A `blob` from the relay, base64 already decoded.
    pub fn on_blob(&mut self, from: &str, data: &[u8], now: Instant) -> Vec<Output> {
        let msg = match WireMessage::decode(data) {
            Ok(m) => m,
            Err(e) => return vec![self.failed(from, e.to_string())],
        };
        if !self.peers.contains_key(from) {
            // Presence comes before blobs; a blob from an unknown id is stale.
            return vec![];
        }
        match msg {
            WireMessage::Hello(h) => self.on_hello(from, h, now),
            WireMessage::Frame(bytes) => self.on_frame(from, &bytes, now),
            other => self.on_directed(from, other, now),
        }
    }

    fn failed(&mut self, from: &str, reason: String) -> Output {
        self.stats.decrypt_failures += 1;
        Output::Event(Event::DecryptFailed {
            from: from.to_string(),
            reason,
        })
    }

    fn on_hello(&mut self, from: &str, hello: Hello, now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if hello.v != crate::crypto::pairwise::PROTOCOL_VERSION
            || peer.hello.is_some()
            || hello.e == self.me.public()
            || !self.seen_keys.insert(hello.e)
        {
            return vec![]; // one handshake per key, one key per peer id
        }
        peer.hello = Some(hello);
        let mut out = Vec::new();
        let reply_hello = !peer.hello_sent;
        peer.hello_sent = true;
        let (handshake, pake) =
            Handshake::start(&self.me, &hello, &self.room, &self.psk, &mut self.rng);
        peer.state = PeerState::Handshaking(Box::new(handshake));
        let early = std::mem::take(&mut peer.early);
        if reply_hello {
            out.push(self.send(
                Some(from),
                Kind::Control,
                WireMessage::Hello(self.me.hello()),
                now,
            ));
        }
        let msg = WireMessage::Pake {
            from_e: self.me.public(),
            to_e: hello.e,
            msg: pake.try_into().expect("SPAKE2 messages are 33 bytes"),
        };
        out.push(self.send(Some(from), Kind::Control, msg, now));
        for m in early {
            out.extend(self.on_directed(from, m, now));
        }
        out
    }

    /// PAKE, confirm and sealed messages, all addressed by (their E, our E).
    fn on_directed(&mut self, from: &str, msg: WireMessage, now: Instant) -> Vec<Output> {
        let me = self.me.public();
        let (from_e, to_e) = match &msg {
            WireMessage::Pake { from_e, to_e, .. }
            | WireMessage::Confirm { from_e, to_e, .. }
            | WireMessage::Sealed { from_e, to_e, .. } => (*from_e, *to_e),
            _ => return vec![],
        };
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if to_e != me {
            return vec![]; // for an earlier session of ours
        }
        match peer.hello {
            None => {
                if peer.early.len() < MAX_EARLY {
                    peer.early.push(msg);
                }
                return vec![];
            }
            Some(h) if h.e != from_e => return vec![],
            Some(_) => {}
        }
        match msg {
            WireMessage::Pake { msg, .. } => self.on_pake(from, &msg, now),
            WireMessage::Confirm { mac, .. } => self.on_confirm(from, &mac, now),
            WireMessage::Sealed {
                ctr, ciphertext, ..
            } => self.on_sealed(from, ctr, &ciphertext, now),
            _ => vec![],
        }
    }

    fn on_pake(&mut self, from: &str, msg: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        // Only a handshake in progress accepts a SPAKE2 message: a replayed
        // one can never create a second channel or reset counters.
        let PeerState::Handshaking(_) = peer.state else {
            return vec![];
        };
        let PeerState::Handshaking(handshake) =
            std::mem::replace(&mut peer.state, PeerState::Mismatch)
        else {
            unreachable!()
        };
        match handshake.finish(&self.me, msg) {
            Ok((channel, confirm)) => {
                let their_e = channel.their_public();
                peer.state = PeerState::AwaitingConfirm(Box::new(channel));
                let msg = WireMessage::Confirm {
                    from_e: self.me.public(),
                    to_e: their_e,
                    mac: confirm,
                };
                vec![self.send(Some(from), Kind::Control, msg, now)]
            }
            Err(_) => self.mismatch(from, now),
        }
    }

    fn mismatch(&mut self, from: &str, now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        peer.state = PeerState::Mismatch;
        if peer.member_before_us {
            self.first_mismatch.get_or_insert(now);
        }
        vec![Output::Event(Event::AuthMismatch {
            peer: from.to_string(),
        })]
    }

    fn on_confirm(&mut self, from: &str, mac: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        let PeerState::AwaitingConfirm(channel) = &peer.state else {
            return vec![];
        };
        if channel.verify_confirm(mac).is_err() {
            return self.mismatch(from, now);
        }
        let PeerState::AwaitingConfirm(channel) =
            std::mem::replace(&mut peer.state, PeerState::Mismatch)
        else {
            unreachable!()
        };
        peer.state = PeerState::Verified(channel);
        peer.last_auth = now;
        self.refresh_safety_words();
        // A newcomer must not read what we sealed before it joined: move our
        // key one ratchet step on (the others follow by themselves) if it has
        // been used, then hand the newcomer the current key only.
        let mut out = Vec::new();
        if self.key.has_sealed() {
            self.key = self.key.ratcheted();
            self.key_since = now;
            out.push(Output::Event(Event::KeyRotated {
                epoch: self.key.epoch(),
            }));
        }
        out.extend(self.deliver_key(from, now));
        out
    }

    fn deliver_key(&mut self, to: &str, now: Instant) -> Option<Output> {
        let me = self.me.public();
        let plaintext = SenderKeyMessage {
            epoch: self.key.epoch(),
            base: self.key.base().clone(),
            name: self.name.clone(),
        }
        .encode();
        let peer = self.peers.get_mut(to)?;
        let PeerState::Verified(channel) = &mut peer.state else {
            return None;
        };
        let (ctr, ciphertext) = channel.seal(SEALED_SENDER_KEY, &plaintext);
        let msg = WireMessage::Sealed {
            from_e: me,
            to_e: channel.their_public(),
            ctr,
            ciphertext,
        };
        Some(self.send(Some(to), Kind::Control, msg, now))
    }

    fn on_sealed(&mut self, from: &str, ctr: u64, ct: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        let PeerState::Verified(channel) = &mut peer.state else {
            return vec![];
        };
        let plaintext = match channel.open(SEALED_SENDER_KEY, ctr, ct) {
            Ok(p) => zeroize::Zeroizing::new(p),
            Err(e) => return vec![self.failed(from, e.to_string())],
        };
        let Ok(key) = SenderKeyMessage::decode(&plaintext) else {
            return vec![self.failed(from, "malformed key message".into())];
        };
        peer.keyring.install(key.epoch, key.base, now);
        peer.last_auth = now;
        let first = peer.name.is_none();
        peer.name = Some(key.name.clone());
        if first {
            vec![Output::Event(Event::PeerVerified {
                peer: from.to_string(),
                name: key.name,
                safety_words: self.safety_words.clone(),
            })]
        } else {
            vec![]
        }
    }

    fn on_frame(&mut self, from: &str, bytes: &[u8], now: Instant) -> Vec<Output> {
        let Some(their_e) = self.peers[from].hello.map(|h| h.e) else {
            return vec![self.failed(from, "no key yet".into())];
        };
        let metadata = self.metadata(&their_e);
        let peer = self.peers.get_mut(from).expect("checked");
        let opened = match peer.keyring.open(bytes, &metadata, now) {
            Ok(o) => o,
            Err(SframeError::UnknownKey) if peer.keyring.is_empty() => {
                return vec![self.failed(from, "no key yet".into())]
            }
            Err(e) => return vec![self.failed(from, e.to_string())],
        };
        peer.last_auth = now;
        let Ok(frame) = FramePlaintext::decode(&opened.plaintext) else {
            return vec![self.failed(from, "malformed frame".into())];
        };
        match frame.stream {
            Stream::State if frame.payload.is_empty() => vec![], // keep-alive
            Stream::State => vec![Output::Event(Event::PeerState {
                from: from.to_string(),
                payload: frame.payload,
            })],
            Stream::Chat => {
                let name = peer.name.clone().unwrap_or_else(|| from.to_string());
                vec![Output::Event(Event::Chat {
                    from: from.to_string(),
                    name,
                    text: String::from_utf8_lossy(&frame.payload).into_owned(),
                })]
            }
            stream @ (Stream::Video | Stream::Feedback) => vec![Output::Event(Event::Frame {
                from: from.to_string(),
                stream,
                timestamp_us: frame.timestamp_us,
                flags: frame.flags,
                payload: frame.payload,
            })],
        }
    }

    /// Seals a message for everyone under our sender key. `None` while no
    /// member is verified (nobody could open it).
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
        let plaintext = FramePlaintext {
            timestamp_us,
            stream,
            flags,
            payload: payload.to_vec(),
        }
        .encode();
        let metadata = self.metadata(&self.me.public());
        let sealed = self.key.seal(&metadata, &plaintext);
        let kind = if stream == Stream::Video {
            Kind::Media
        } else {
            Kind::Control
        };
        Some(self.send(None, kind, WireMessage::Frame(sealed), now))
    }

    /// A chat message for the room (end-to-end encrypted like everything
    /// else), or for one verified member only when `to` is given.
    pub fn send_chat(
        &mut self,
        to: Option<&str>,
        text: &str,
        timestamp_us: u64,
        now: Instant,
    ) -> Option<Output> {
        if to.is_some_and(|p| !self.peers.get(p).is_some_and(Peer::is_verified)) {
            return None;
        }
        match self.seal(Stream::Chat, 0, text.as_bytes(), timestamp_us, now)? {
            Output::Send { kind, data, .. } => Some(Output::Send {
                to: to.map(str::to_string),
                kind,
                data,
            }),
            other => Some(other),
        }
    }

    fn send(&mut self, to: Option<&str>, kind: Kind, msg: WireMessage, now: Instant) -> Output {
        self.last_sent = now;
        Output::Send {
            to: to.map(str::to_string),
            kind,
            data: msg.encode(),
        }
    }

    /// A fresh random key, delivered pairwise to every verified member.
    fn rotate_fresh(&mut self, now: Instant) -> Vec<Output> {
        let epoch = self.key.epoch() + 1;
        self.key = SenderKey::new(epoch, Key32::random(&mut self.rng));
        self.key_since = now;
        self.fresh_since = now;
        let mut out = vec![Output::Event(Event::KeyRotated { epoch })];
        for peer in self.verified_peers() {
            out.extend(self.deliver_key(&peer, now));
        }
        out
    }

    /// Timers: wrong-passphrase verdict, silent peers, key rotation,
    /// keep-alive, expiry of superseded keys. Call about every 100 ms.
    pub fn tick(&mut self, now: Instant, timestamp_us: u64) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(first) = self.first_mismatch {
            if !self.wrong_reported
                && now.duration_since(first) >= self.timings.wrong_passphrase_after
                && !self.peers.values().any(|p| p.is_verified())
            {
                self.wrong_reported = true;
                out.push(Output::Event(Event::WrongPassphrase));
            }
        }
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
            self.key = self.key.ratcheted();
            self.key_since = now;
            out.push(Output::Event(Event::KeyRotated {
                epoch: self.key.epoch(),
            }));
        }
        if now.duration_since(self.last_sent) >= self.timings.keepalive_every {
            if let Some(o) = self.seal(Stream::State, 0, &[], timestamp_us, now) {
                out.push(o);
            }
        }
        for peer in self.peers.values_mut() {
            peer.keyring.purge(now);
        }
        out
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
