//! One browser member's call: the core's room, driven by JSON commands from
//! the page (what the relay said, a captured frame, a chat line, a timer),
//! answering with what to send to the relay and what to show. The page does
//! only I/O; every byte that is sealed, opened, proven or signed is handled
//! here, by the same code as the terminal client's.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use streamflow_core::crypto::frame::Stream;
use streamflow_core::crypto::identity::Fingerprint;
use streamflow_core::crypto::kdf::{derive_psk, KdfParams};
use streamflow_core::crypto::secret::Key32;
use streamflow_core::crypto::sign::SigningIdentity;
use streamflow_core::invite::Invite;
use streamflow_core::payload::{audio, state, video};
use streamflow_core::protocol::{ClientMessage, Kind, ServerMessage, PROTOCOL_VERSION};
use streamflow_core::room::{Event, Output, Room, Timings};
use streamflow_core::time::Instant;

use crate::opus::{self, Opus};

/// Largest JPEG the page may hand us (the relay's message limit is lower
/// still; this only bounds what we copy).
const MAX_JPEG_BYTES: usize = 1 << 20;
/// Largest picture a peer may make the page decode, per side (senders
/// encode at the size receivers ask for: the page asks 320×240, pixel
/// terminals more): a tiny JPEG can claim 65535×65535.
const MAX_PICTURE_SIDE: u16 = 1920;

/// What the page asks.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Command {
    /// Parse the invite and derive the room key (Argon2id: the slow step).
    Open {
        invite: String,
        name: String,
    },
    /// Connected to the relay: a fresh room state (new keys, new
    /// handshakes), as on every connection; the reply carries the join.
    Join,
    /// A text message from the relay.
    Relay {
        text: String,
        now_us: u64,
    },
    /// Timers, about every 100 ms.
    Tick {
        now_us: u64,
    },
    /// A captured frame at the size receivers asked for: the JPEG is the
    /// command's binary part.
    Video {
        now_us: u64,
    },
    /// 20 ms of voice: the Opus packet is the command's binary part.
    Audio {
        seq: u16,
        #[serde(default)]
        muted: bool,
        now_us: u64,
    },
    /// 20 ms of voice as samples (48 kHz f32 LE, the binary part) from a
    /// page whose WebCodecs has no Opus: encoded here, then sent as `audio`.
    AudioPcm {
        seq: u16,
        #[serde(default)]
        muted: bool,
        now_us: u64,
    },
    /// A member's Opus packet (the binary part) to 20 ms of samples (the
    /// reply's bytes, f32 LE), for a page whose WebCodecs has no Opus.
    DecodeAudio {
        peer: String,
    },
    /// A member left: its voice decoder goes.
    ForgetAudio {
        peer: String,
    },
    Chat {
        text: String,
        now_us: u64,
    },
    /// The size our tiles draw at, for the senders to encode at.
    View {
        w: u32,
        h: u32,
        now_us: u64,
    },
    /// Camera on or off; `absent` when the page has none (or may not use
    /// it): the others then show "view only".
    Camera {
        on: bool,
        #[serde(default)]
        absent: bool,
        now_us: u64,
    },
    /// The relay connection closed: the room (and its keys) go; the next
    /// `join` starts afresh.
    Disconnected,
    /// Leaving: the message to send the relay.
    Leave,
}

/// What the page must do: send these texts to the relay, show these events.
/// Pictures travel apart from the JSON, in `bytes` (a `video` event says
/// where its JPEG is: `jpeg_at`, `jpeg_len`), so no JPEG is base64-coded
/// between the module and the page.
#[derive(Debug, Default)]
pub struct Reply {
    pub send: Vec<String>,
    pub events: Vec<Value>,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn to_json(&self) -> String {
        json!({ "send": self.send, "events": self.events }).to_string()
    }

    fn event(&mut self, v: Value) {
        self.events.push(v);
    }

    fn error(message: impl Into<String>) -> Reply {
        let mut r = Reply::default();
        r.event(json!({ "type": "error", "message": message.into() }));
        r
    }
}

pub struct Call {
    room_id: String,
    psk: Key32,
    name: String,
    room: Option<Room>,
    video_seq: u32,
    safety_words: String,
    epoch: u64,
    /// Voice for pages without WebCodecs Opus.
    opus: Opus,
}

impl Call {
    /// The invite is parsed and the room key derived.
    pub fn open(invite: &str, name: &str) -> Result<Call, Reply> {
        let (invite, _weak_words) = Invite::parse(invite)
            .map_err(|e| Reply::error(format!("that invite doesn't parse: {e}")))?;
        let psk = derive_psk(invite.room(), invite.secret(), KdfParams::V1)
            .map_err(|e| Reply::error(e.to_string()))?;
        Ok(Call {
            room_id: invite.room().to_string(),
            psk,
            name: name.to_string(),
            room: None,
            video_seq: 0,
            safety_words: String::new(),
            epoch: 0,
            opus: Opus::default(),
        })
    }

    /// A fresh room for a new connection, and the relay's join message.
    fn join(&mut self) -> Reply {
        let mut rng = rand_core::OsRng;
        // A browser keeps no identity file: a throwaway identity, as
        // `--anonymous` in the terminal.
        let signing = Arc::new(SigningIdentity::generate(&mut rng));
        self.room = Some(Room::new(
            &self.room_id,
            self.psk.clone(),
            &self.name,
            Timings::default(),
            Box::new(rng),
            signing,
            Instant::now(),
        ));
        self.safety_words.clear();
        self.epoch = 0;
        let mut reply = Reply::default();
        reply.send.push(
            ClientMessage::Join {
                room: self.room_id.as_str().into(),
                v: PROTOCOL_VERSION,
            }
            .to_json(),
        );
        reply
    }

    /// Runs a command; `data` is its binary part (a video frame's JPEG).
    pub fn handle(&mut self, cmd: Command, data: &[u8]) -> Reply {
        let now = Instant::now();
        let mut reply = Reply::default();
        match cmd {
            Command::Join => return self.join(),
            Command::Disconnected => {
                self.room = None;
                self.opus.forget_everyone();
                return reply;
            }
            Command::AudioPcm { seq, muted, now_us } => {
                return match self.opus.encode(data) {
                    Ok(packet) => self.handle(Command::Audio { seq, muted, now_us }, &packet),
                    Err(message) => {
                        reply.event(json!({ "type": "voice_error", "message": message }));
                        reply
                    }
                };
            }
            Command::DecodeAudio { peer } => {
                match self.opus.decode(&peer, data) {
                    Ok(samples) => reply.bytes = samples,
                    Err(message) => reply
                        .event(json!({ "type": "voice_error", "from": peer, "message": message })),
                }
                return reply;
            }
            Command::ForgetAudio { peer } => {
                self.opus.forget(&peer);
                return reply;
            }
            _ => {}
        }
        let Some(room) = self.room.as_mut() else {
            // Between connections: timers and frames wait, chat says so.
            if let Command::Chat { text, .. } = cmd {
                reply.event(json!({
                    "type": "chat_undelivered",
                    "text": text,
                    "reason": "not connected to the relay",
                }));
            }
            return reply;
        };
        let outputs = match cmd {
            Command::Open { .. } => return Reply::error("already in a call"),
            Command::Join
            | Command::Disconnected
            | Command::AudioPcm { .. }
            | Command::DecodeAudio { .. }
            | Command::ForgetAudio { .. } => unreachable!("handled above"),
            Command::Relay { text, now_us } => on_relay(room, &text, now, now_us, &mut reply),
            Command::Tick { now_us } => room.tick(now, now_us),
            Command::Video { now_us } => {
                if data.is_empty() || data.len() > MAX_JPEG_BYTES {
                    return reply;
                }
                let payload = video::encode(self.video_seq, data);
                let sealed = room.seal(Stream::Video, 0, &payload, now_us, now);
                if sealed.is_some() {
                    self.video_seq = self.video_seq.wrapping_add(1);
                }
                sealed.into_iter().collect()
            }
            Command::Audio { seq, muted, now_us } => {
                if data.is_empty() || data.len() > 1275 {
                    return reply;
                }
                // Whatever the page's encoder made, one size leaves.
                let packet = opus::constant_size(data);
                let flags = if muted { audio::FLAG_MUTED } else { 0 };
                room.seal(
                    Stream::Audio,
                    flags,
                    &audio::encode(seq, &packet),
                    now_us,
                    now,
                )
                .into_iter()
                .collect()
            }
            Command::Chat { text, now_us } => match room.send_chat(&text, now_us, now) {
                Some(out) => vec![out],
                None => {
                    reply.event(json!({
                        "type": "chat_undelivered",
                        "text": text,
                        "reason": "nobody else is in the call yet",
                    }));
                    vec![]
                }
            },
            Command::View { w, h, now_us } => room
                .seal(Stream::State, 0, &state::view(w, h), now_us, now)
                .into_iter()
                .collect(),
            Command::Camera { on, absent, now_us } => {
                let camera = match (on, absent) {
                    (true, _) => state::Camera::On,
                    (false, false) => state::Camera::Off,
                    (false, true) => state::Camera::Absent,
                };
                room.seal(Stream::State, 0, &state::camera(camera), now_us, now)
                    .into_iter()
                    .collect()
            }
            Command::Leave => {
                reply.send.push(ClientMessage::Leave.to_json());
                return reply;
            }
        };
        self.apply(outputs, &mut reply);
        reply
    }
}

fn on_relay(
    room: &mut Room,
    text: &str,
    now: Instant,
    now_us: u64,
    reply: &mut Reply,
) -> Vec<Output> {
    let Ok(msg) = serde_json::from_str::<ServerMessage>(text) else {
        reply.event(json!({ "type": "relay_error", "code": "bad_message", "message": "the relay sent something that isn't protocol v1" }));
        return vec![];
    };
    match msg {
        ServerMessage::Welcome {
            you, peers, limits, ..
        } => {
            let peers: Vec<String> = peers.into_iter().map(|p| p.into_owned()).collect();
            room.on_welcome(&you, &peers, limits.max_peers_per_room, now)
        }
        ServerMessage::PeerJoined { peer } => room.on_peer_joined(&peer, now),
        ServerMessage::PeerLeft { peer, reason } => room.on_peer_left(&peer, reason, now),
        ServerMessage::Blob { from, data, .. } => match B64.decode(data.as_bytes()) {
            Ok(bytes) => room.on_blob(&from, &bytes, now, now_us),
            Err(_) => vec![],
        },
        ServerMessage::Error { code, message } => {
            // A message to someone who just left: expected, not news.
            if code.as_str() != "unknown_peer" {
                reply.event(
                    json!({ "type": "relay_error", "code": code.as_str(), "message": message }),
                );
            }
            vec![]
        }
        ServerMessage::VideoPaused { paused } => {
            reply.event(json!({ "type": "video_paused", "paused": paused }));
            vec![]
        }
    }
}

impl Call {
    fn apply(&mut self, outputs: Vec<Output>, reply: &mut Reply) {
        let Some(room) = self.room.as_ref() else {
            return;
        };
        for o in outputs {
            match o {
                Output::Send { to, kind, data } => reply.send.push(send_message(to, kind, &data)),
                Output::Event(e) => {
                    if let Some(v) = event_json(e, &mut reply.bytes) {
                        reply.event(v);
                    }
                }
            }
        }
        if room.epoch() != self.epoch || room.safety_words() != self.safety_words {
            self.epoch = room.epoch();
            self.safety_words = room.safety_words().to_string();
            reply.event(json!({
                "type": "keys",
                "epoch": self.epoch,
                "safety_words": self.safety_words,
            }));
        }
    }
}

fn send_message(to: Option<String>, kind: Kind, data: &[u8]) -> String {
    ClientMessage::Send {
        kind,
        to: to.map(Into::into),
        data: B64.encode(data).into(),
    }
    .to_json()
}

/// The page's view of a room event; `None` for what a browser doesn't use
/// (voice, terminal shares, receiver feedback). A picture goes to `bytes`.
fn event_json(e: Event, bytes: &mut Vec<u8>) -> Option<Value> {
    Some(match e {
        Event::Joined { you, peers, .. } => json!({ "type": "joined", "you": you, "peers": peers }),
        Event::PeerJoined { peer } => json!({ "type": "peer_joined", "peer": peer }),
        Event::PeerVerified {
            peer,
            name,
            tag,
            safety_words,
            identity,
            ..
        } => json!({
            "type": "peer_verified",
            "peer": peer,
            "name": name,
            "tag": tag,
            "safety_words": safety_words,
            "identity": Fingerprint::of(&identity).hex(),
        }),
        Event::PeerRenamed { peer, old, new } => {
            json!({ "type": "peer_renamed", "peer": peer, "old": old, "new": new })
        }
        Event::PeerLeft { peer, reason } => {
            json!({ "type": "peer_left", "peer": peer, "reason": reason })
        }
        Event::AuthMismatch { peer } => json!({ "type": "auth_mismatch", "peer": peer }),
        Event::WrongPassphrase => json!({ "type": "wrong_passphrase" }),
        Event::PassphraseDisagrees { peer } => {
            json!({ "type": "passphrase_disagrees", "peer": peer })
        }
        Event::UnverifiedChurn { count } => json!({ "type": "unverified_churn", "count": count }),
        Event::KeyRotated { .. } => return None,
        Event::Guessing { failed, wait } => {
            json!({ "type": "guessing", "failed": failed, "wait_ms": wait.as_millis() as u64 })
        }
        Event::Frame {
            from,
            stream: Stream::Video,
            timestamp_us,
            flags,
            payload,
        } => {
            let (seq, jpeg) = video::decode(&payload)?;
            let (w, h) = streamflow_core::jpeg::dimensions(jpeg)?;
            if w == 0 || h == 0 || w > MAX_PICTURE_SIDE || h > MAX_PICTURE_SIDE {
                return None;
            }
            let at = bytes.len();
            if flags & video::FLAG_STANDARD_TABLES != 0 {
                bytes.extend(streamflow_core::jpeg::restore_tables(jpeg)?);
            } else {
                bytes.extend_from_slice(jpeg);
            }
            json!({
                "type": "video",
                "from": from,
                "seq": seq,
                "timestamp_us": timestamp_us,
                "jpeg_at": at,
                "jpeg_len": bytes.len() - at,
                "w": w,
                "h": h,
            })
        }
        Event::Frame {
            from,
            stream: Stream::Audio,
            timestamp_us,
            flags,
            payload,
        } => {
            let (seq, opus) = audio::decode(&payload)?;
            let at = bytes.len();
            bytes.extend_from_slice(opus);
            json!({
                "type": "audio",
                "from": from,
                "seq": seq,
                "timestamp_us": timestamp_us,
                "muted": flags & audio::FLAG_MUTED != 0,
                "opus_at": at,
                "opus_len": opus.len(),
            })
        }
        Event::Frame { .. } | Event::ShareKeys { .. } => return None,
        Event::Chat { from, name, text } => {
            json!({ "type": "chat", "from": from, "name": name, "text": text })
        }
        Event::DecryptFailed { from, reason } => {
            json!({ "type": "decrypt_failed", "from": from, "reason": reason })
        }
        Event::PeerState { from, payload } => match payload.split_first() {
            Some((&state::VIEW, [a, b, c, d])) => json!({
                "type": "peer_view",
                "peer": from,
                "w": u16::from_be_bytes([*a, *b]),
                "h": u16::from_be_bytes([*c, *d]),
            }),
            Some((&state::CAMERA, [value])) => {
                let camera = match state::parse_camera(*value)? {
                    state::Camera::On => "on",
                    state::Camera::Off => "off",
                    state::Camera::Absent => "absent",
                };
                json!({ "type": "peer_camera", "peer": from, "camera": camera })
            }
            _ => return None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "testroom-able-baker-charlie-delta-echo";

    fn cmd(json: Value) -> Command {
        serde_json::from_value(json).expect("a command")
    }

    #[test]
    fn a_garbled_invite_is_said_in_words() {
        let Err(reply) = Call::open("!!", "x") else {
            panic!("opened a garbled invite")
        };
        assert_eq!(reply.events[0]["type"], "error");
        assert!(reply.events[0]["message"]
            .as_str()
            .unwrap()
            .contains("invite"));
    }

    #[test]
    fn before_a_connection_timers_wait_and_chat_says_so() {
        let mut call = Call::open(INVITE, "carol").unwrap();
        let r = call.handle(cmd(json!({"op": "tick", "now_us": 1})), &[]);
        assert!(r.send.is_empty() && r.events.is_empty());
        let r = call.handle(cmd(json!({"op": "chat", "text": "hi", "now_us": 1})), &[]);
        assert_eq!(r.events[0]["type"], "chat_undelivered");
        let r = call.handle(Command::Join, &[]);
        let join: Value = serde_json::from_str(&r.send[0]).unwrap();
        assert_eq!(join["type"], "join");
        assert_eq!(join["room"], "testroom");
    }

    /// Two browser members through a relay that is a test loop: they
    /// verify each other, agree on the words, and a frame and a chat line
    /// cross, opened only by the other.
    #[test]
    fn two_members_verify_each_other_and_exchange_a_frame_and_a_line() {
        let now_us = 1_700_000_000_000_000u64;
        let mut members = [
            Call::open(INVITE, "ann").unwrap(),
            Call::open(INVITE, "ben").unwrap(),
        ];
        let ids = ["aaaa", "bbbb"];
        let mut events: [Vec<Value>; 2] = Default::default();
        let mut inbox: Vec<(usize, String)> = Vec::new();
        let welcome = |you: &str, peers: &[&str]| {
            json!({"type": "welcome", "you": you, "peers": peers, "limits": {
                "max_message_bytes": 1 << 20, "max_peers_per_room": 16, "rate_per_sec": 1000,
                "rate_burst": 1000, "ping_interval_ms": 10000, "idle_timeout_ms": 30000}})
            .to_string()
        };
        for m in &mut members {
            m.handle(Command::Join, &[]);
        }
        inbox.push((0, welcome("aaaa", &[])));
        inbox.push((1, welcome("bbbb", &["aaaa"])));
        inbox.push((
            0,
            json!({"type": "peer_joined", "peer": "bbbb"}).to_string(),
        ));
        // What `who` said goes to the other as a blob; what it showed is kept.
        let step = |inbox: &mut Vec<(usize, String)>,
                    events: &mut [Vec<Value>; 2],
                    who: usize,
                    r: Reply| {
            events[who].extend(r.events);
            for text in r.send {
                let v: Value = serde_json::from_str(&text).unwrap();
                let blob =
                    json!({"type": "blob", "from": ids[who], "kind": v["kind"], "data": v["data"]});
                inbox.push((1 - who, blob.to_string()));
            }
        };
        for round in 0..200 {
            let batch = std::mem::take(&mut inbox);
            for (to, text) in batch {
                let r = members[to].handle(
                    cmd(json!({"op": "relay", "text": text, "now_us": now_us})),
                    &[],
                );
                step(&mut inbox, &mut events, to, r);
            }
            for (who, member) in members.iter_mut().enumerate() {
                let r = member.handle(cmd(json!({"op": "tick", "now_us": now_us + round})), &[]);
                step(&mut inbox, &mut events, who, r);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let words = |e: &[Value]| {
            e.iter()
                .rev()
                .find(|e| e["type"] == "keys")
                .map(|e| e["safety_words"].clone())
        };
        assert!(events[0]
            .iter()
            .any(|e| e["type"] == "peer_verified" && e["name"] == "ben"));
        assert!(events[1]
            .iter()
            .any(|e| e["type"] == "peer_verified" && e["name"] == "ann"));
        assert_eq!(words(&events[0]), words(&events[1]));
        assert!(words(&events[0]).is_some_and(|w| w.as_str().is_some_and(|w| !w.is_empty())));

        // A JPEG's headers (80×48), then one claiming 5000×48: the page
        // gets the first, never the second (no decoder sees absurd sizes).
        let jpeg = [
            0xff, 0xd8, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x30, 0x00, 0x50, 0x01, 0x01, 0x11,
            0x00, 0xff, 0xda, 1, 2, 3,
        ];
        let mut huge = jpeg;
        huge[9..11].copy_from_slice(&5000u16.to_be_bytes());
        for picture in [&jpeg, &huge] {
            let r = members[0].handle(cmd(json!({"op": "video", "now_us": now_us})), picture);
            step(&mut inbox, &mut events, 0, r);
        }
        let chat = json!({"op": "chat", "text": "hello ben", "now_us": now_us});
        let r = members[0].handle(cmd(chat), &[]);
        step(&mut inbox, &mut events, 0, r);
        let mut pictures = Vec::new();
        for (to, text) in std::mem::take(&mut inbox) {
            assert!(!text.contains("hello ben"), "sealed on the wire");
            let r = members[to].handle(
                cmd(json!({"op": "relay", "text": text, "now_us": now_us})),
                &[],
            );
            for e in r.events.iter().filter(|e| e["type"] == "video") {
                let at = e["jpeg_at"].as_u64().unwrap() as usize;
                let len = e["jpeg_len"].as_u64().unwrap() as usize;
                pictures.push((e["from"].clone(), r.bytes[at..at + len].to_vec()));
            }
            events[to].extend(r.events);
        }
        assert_eq!(pictures, vec![(json!("aaaa"), jpeg.to_vec())]);
        assert!(events[1]
            .iter()
            .any(|e| e["type"] == "chat" && e["name"] == "ann" && e["text"] == "hello ben"));
    }
}
