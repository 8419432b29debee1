//! Wire protocol v1 between clients and the relay (DESIGN.md §2).
//!
//! JSON text frames, one message each, tagged by `type`. Binary payloads travel
//! as standard base64 in `data`, which the relay never decodes: it only checks
//! that `data` is a string within the size limit. Unknown fields are ignored so
//! either side can grow the protocol without breaking the other.
//!
//! Both crates use these types: the relay parses [`ClientMessage`] and emits
//! [`ServerMessage`]; the client does the opposite.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The only protocol version this relay speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest room id the relay accepts.
pub const MAX_ROOM_ID_LEN: usize = 128;

/// WebSocket close code (additive to protocol v1) for a relay that ends the
/// call on purpose, e.g. the relay embedded in `streamflow host` when its
/// host quits: clients say so and exit instead of reconnecting. A relay
/// shutting down for a restart closes with 1001 (going away): reconnect.
pub const CLOSE_CALL_ENDED: u16 = 4000;

/// Which of a receiver's queues a message goes through.
///
/// `audio` is an additive extension of v1 (a relay that offers it lists
/// `"audio"` in `welcome.features`): small messages that go out ahead of
/// `media` to each receiver, so a receiver whose downlink can't carry
/// everything loses video before voice. It tells the relay nothing it
/// couldn't infer already: audio is a steady stream of equal-sized
/// messages, recognisable by timing alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Droppable: when a receiver falls behind, its oldest media is dropped.
    Media,
    /// Never dropped: a receiver whose control backlog overflows is disconnected.
    Control,
    /// Droppable and short-lived, sent before media: a receiver's audio
    /// queue is small and what waits too long (or overflows it) is dropped.
    Audio,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Media => "media",
            Kind::Control => "control",
            Kind::Audio => "audio",
        }
    }

    /// Parses a kind name (as in `send.kind` and the bus); None if unknown.
    pub fn parse(name: &str) -> Option<Kind> {
        match name {
            "media" => Some(Kind::Media),
            "control" => Some(Kind::Control),
            "audio" => Some(Kind::Audio),
            _ => None,
        }
    }
}

/// What this relay offers beyond base v1, listed in `welcome.features`.
pub const FEATURES: &[&str] = &["audio"];

/// Why a peer left a room, as announced in `peer_left`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    /// The peer sent `leave` or closed its socket cleanly.
    Leave,
    /// The peer answered nothing (not even pings) within the idle timeout.
    Timeout,
    /// The connection failed or the relay closed it (limits, overflow).
    Error,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Leave => "leave",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Error => "error",
        }
    }
}

/// Error codes carried by the relay's `error` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadMessage,
    BadRoom,
    TooLarge,
    RoomFull,
    TooManyRooms,
    RateLimited,
    NotJoined,
    AlreadyJoined,
    UnknownPeer,
    BinaryUnsupported,
    UnsupportedVersion,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::BadMessage,
        ErrorCode::BadRoom,
        ErrorCode::TooLarge,
        ErrorCode::RoomFull,
        ErrorCode::TooManyRooms,
        ErrorCode::RateLimited,
        ErrorCode::NotJoined,
        ErrorCode::AlreadyJoined,
        ErrorCode::UnknownPeer,
        ErrorCode::BinaryUnsupported,
        ErrorCode::UnsupportedVersion,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::BadRoom => "bad_room",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotJoined => "not_joined",
            ErrorCode::AlreadyJoined => "already_joined",
            ErrorCode::UnknownPeer => "unknown_peer",
            ErrorCode::BinaryUnsupported => "binary_unsupported",
            ErrorCode::UnsupportedVersion => "unsupported_version",
        }
    }

    /// Position in [`ErrorCode::ALL`], for per-code counters.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Limits the relay enforces, announced in `welcome` so clients can stay inside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_peers_per_room: usize,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    pub ping_interval_ms: u64,
    pub idle_timeout_ms: u64,
}

/// A message from a client to the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage<'a> {
    Join {
        room: Cow<'a, str>,
        v: u32,
    },
    Send {
        kind: Kind,
        #[serde(skip_serializing_if = "Option::is_none")]
        to: Option<Cow<'a, str>>,
        data: Cow<'a, str>,
    },
    Leave,
}

/// A client message that could not be accepted, with the code to answer it with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProtocolError {
            code,
            message: message.into(),
        }
    }
}

/// Every field any client message may carry; parsed flat so that a missing or
/// mistyped field gets a precise error and `data` can be borrowed, not copied.
#[derive(Deserialize)]
struct RawClientMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind_tag: Cow<'a, str>,
    #[serde(default, borrow)]
    room: Option<Cow<'a, str>>,
    #[serde(default)]
    v: Option<u32>,
    #[serde(default)]
    kind: Option<Kind>,
    #[serde(default, borrow)]
    to: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    data: Option<Text<'a>>,
}

/// Serde borrows a `Cow<str>` only when it is a field's whole type, not inside
/// an `Option`; this newtype keeps `data` zero-copy whenever it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'a> ClientMessage<'a> {
    /// Parses and validates one text frame from a client.
    pub fn parse(text: &'a str) -> Result<Self, ProtocolError> {
        let raw: RawClientMessage<'a> = serde_json::from_str(text).map_err(|e| {
            ProtocolError::new(
                ErrorCode::BadMessage,
                format!("not a protocol message: {e}"),
            )
        })?;
        match raw.kind_tag.as_ref() {
            "join" => {
                let room = raw
                    .room
                    .ok_or_else(|| ProtocolError::new(ErrorCode::BadRoom, "join needs a room"))?;
                validate_room_id(&room)?;
                let v = raw.v.unwrap_or(PROTOCOL_VERSION);
                if v != PROTOCOL_VERSION {
                    return Err(ProtocolError::new(
                        ErrorCode::UnsupportedVersion,
                        format!("this relay speaks protocol v{PROTOCOL_VERSION}, not v{v}"),
                    ));
                }
                Ok(ClientMessage::Join { room, v })
            }
            "send" => {
                let kind = raw.kind.ok_or_else(|| {
                    ProtocolError::new(ErrorCode::BadMessage, "send needs kind media|control|audio")
                })?;
                let data = raw.data.ok_or_else(|| {
                    ProtocolError::new(ErrorCode::BadMessage, "send needs a base64 data string")
                })?;
                Ok(ClientMessage::Send {
                    kind,
                    to: raw.to,
                    data: data.0,
                })
            }
            "leave" => Ok(ClientMessage::Leave),
            other => Err(ProtocolError::new(
                ErrorCode::BadMessage,
                format!("unknown message type {other:?}"),
            )),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialize")
    }
}

/// Room ids are opaque to the relay: 1–128 characters of `[A-Za-z0-9_-]`.
pub fn validate_room_id(room: &str) -> Result<(), ProtocolError> {
    let ok = !room.is_empty()
        && room.len() <= MAX_ROOM_ID_LEN
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ProtocolError::new(
            ErrorCode::BadRoom,
            format!("room ids are 1-{MAX_ROOM_ID_LEN} characters of A-Z a-z 0-9 _ -"),
        ))
    }
}

/// A message from the relay to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage<'a> {
    Welcome {
        you: Cow<'a, str>,
        peers: Vec<Cow<'a, str>>,
        limits: Limits,
        /// Extensions this relay offers (see [`FEATURES`]); absent on older
        /// relays, so clients must treat a missing list as empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        features: Vec<Cow<'a, str>>,
    },
    PeerJoined {
        peer: Cow<'a, str>,
    },
    PeerLeft {
        peer: Cow<'a, str>,
        reason: LeaveReason,
    },
    Blob {
        from: Cow<'a, str>,
        kind: Kind,
        data: Cow<'a, str>,
    },
    Error {
        code: ErrorCode,
        message: Cow<'a, str>,
    },
    /// Additive to protocol v1: this client's link can't carry the video
    /// offered (a single frame would hold its voice up too long), so the
    /// relay sends it voice and control only, and a frame now and then to
    /// look for room; `false` when video flows again. Clients that don't
    /// know it ignore it.
    VideoPaused {
        paused: bool,
    },
}

impl<'a> ServerMessage<'a> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }

    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// A `blob` as JSON: the same bytes as `to_json`, without re-escaping
    /// `data` when it was borrowed from the client's message. A borrowed
    /// string had no escapes, and the parser refuses raw quotes and control
    /// characters, so it can be copied as is (the relay's hottest path:
    /// once per message, kilobytes each).
    #[allow(clippy::ptr_arg)] // whether `data` is borrowed is the point
    pub fn blob_json(from: &str, kind: Kind, data: &Cow<'_, str>) -> String {
        match data {
            Cow::Borrowed(verbatim) if from.bytes().all(|b| b.is_ascii_alphanumeric()) => {
                let kind = kind.as_str();
                let mut json = String::with_capacity(48 + from.len() + kind.len() + verbatim.len());
                json.push_str(r#"{"type":"blob","from":""#);
                json.push_str(from);
                json.push_str(r#"","kind":""#);
                json.push_str(kind);
                json.push_str(r#"","data":""#);
                json.push_str(verbatim);
                json.push_str(r#""}"#);
                json
            }
            _ => ServerMessage::Blob {
                from: from.into(),
                kind,
                data: data.clone(),
            }
            .to_json(),
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<Cow<'a, str>>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_client_message() {
        assert_eq!(
            ClientMessage::parse(r#"{"type":"join","room":"abc-_9","v":1}"#).unwrap(),
            ClientMessage::Join {
                room: "abc-_9".into(),
                v: 1
            }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"send","kind":"media","data":"AAE=","extra":[1]}"#)
                .unwrap(),
            ClientMessage::Send {
                kind: Kind::Media,
                to: None,
                data: "AAE=".into()
            }
        );
        assert_eq!(
            ClientMessage::parse(r#"{"type":"leave"}"#).unwrap(),
            ClientMessage::Leave
        );
    }

    #[test]
    fn data_is_borrowed_not_copied() {
        let text = r#"{"type":"send","kind":"control","to":"p1","data":"QUJD"}"#;
        match ClientMessage::parse(text).unwrap() {
            ClientMessage::Send { data, .. } => assert!(matches!(data, Cow::Borrowed(_))),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_bad_input_with_codes() {
        let code = |t: &str| ClientMessage::parse(t).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::BadMessage);
        assert_eq!(code(r#"{"type":"send","data":"x"}"#), ErrorCode::BadMessage);
        assert_eq!(
            code(r#"{"type":"send","kind":"media"}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(
            code(r#"{"type":"send","kind":"media","data":5}"#),
            ErrorCode::BadMessage
        );
        assert_eq!(code(r#"{"type":"join","room":""}"#), ErrorCode::BadRoom);
        assert_eq!(code(r#"{"type":"join","room":"a b"}"#), ErrorCode::BadRoom);
        assert_eq!(code(r#"{"type":"join","room":"é"}"#), ErrorCode::BadRoom);
        let long = format!(r#"{{"type":"join","room":"{}"}}"#, "a".repeat(129));
        assert_eq!(code(&long), ErrorCode::BadRoom);
        let max = format!(r#"{{"type":"join","room":"{}"}}"#, "a".repeat(128));
        assert!(ClientMessage::parse(&max).is_ok());
        assert_eq!(
            code(r#"{"type":"join","room":"a","v":2}"#),
            ErrorCode::UnsupportedVersion
        );
    }

    #[test]
    fn blob_fast_path_matches_serde() {
        for text in [
            r#"{"type":"send","kind":"media","data":"AAE+/w=="}"#,
            r#"{"type":"send","kind":"audio","data":"h\u00e9\"llo"}"#,
            r#"{"type":"send","kind":"control","data":"é ü </script> ∑"}"#,
            r#"{"type":"send","kind":"control","data":""}"#,
        ] {
            let ClientMessage::Send { kind, data, .. } = ClientMessage::parse(text).unwrap() else {
                panic!("not a send");
            };
            let fast = ServerMessage::blob_json("0123abcd", kind, &data);
            let serde = ServerMessage::Blob {
                from: "0123abcd".into(),
                kind,
                data: data.clone(),
            }
            .to_json();
            assert_eq!(fast, serde, "for {text}");
            assert!(ServerMessage::parse(&fast).is_ok());
        }
        // Raw control characters never get as far as a borrowed string.
        assert!(ClientMessage::parse(
            "{\"type\":\"send\",\"kind\":\"media\",\"data\":\"a\u{1}b\"}"
        )
        .is_err());
    }

    #[test]
    fn server_messages_round_trip() {
        let msgs = [
            ServerMessage::PeerJoined { peer: "a".into() },
            ServerMessage::PeerLeft {
                peer: "a".into(),
                reason: LeaveReason::Timeout,
            },
            ServerMessage::Blob {
                from: "a".into(),
                kind: Kind::Media,
                data: "AAAA".into(),
            },
            ServerMessage::error(ErrorCode::RoomFull, "full"),
        ];
        for m in msgs {
            let json = m.to_json();
            assert_eq!(ServerMessage::parse(&json).unwrap(), m);
        }
        assert_eq!(
            ServerMessage::PeerLeft {
                peer: "x".into(),
                reason: LeaveReason::Leave
            }
            .to_json(),
            r#"{"type":"peer_left","peer":"x","reason":"leave"}"#
        );
    }
}
