//! Applies the room's outputs to the world (the link, the UI's events) and
//! runs the once-a-second work: receiver feedback and adaptation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::{exit, feedback, state, video, Ended, SessionEvent, WRONG_PASSPHRASE};
use crate::crypto::frame::Stream;
use crate::media::adapt::{Adapter, Reason as AdaptReason, ReceiverReport, Signals};
use crate::media::audio::engine::AudioHandle;
use crate::media::capture::{self, CaptureControl};
use crate::net::link::Link;
use crate::room::{Event, Output, Room};

/// Applies the room's outputs: sends, events, and the bookkeeping that
/// follows from some events (encode size, wrong passphrase).
pub(super) struct Driver {
    pub(super) link: Link,
    pub(super) events: mpsc::Sender<SessionEvent>,
    pub(super) control: std::sync::Arc<CaptureControl>,
    pub(super) peer_views: HashMap<String, (u32, u32)>,
    pub(super) default_view: (u32, u32),
    pub(super) epoch: u64,
    pub(super) safety_words: String,
    pub(super) ended: Option<Ended>,
    pub(super) adapter: Adapter,
    /// What each sender's stream looked like to us this second.
    pub(super) heard: HashMap<String, Heard>,
    /// Receivers' reports on our stream: (report, when).
    pub(super) reports: HashMap<String, (ReceiverReport, Instant)>,
    /// Link counters at the last adaptation step.
    pub(super) last_link: (u64, u64, u64),
    pub(super) me: Option<String>,
    /// The user's frame-rate ceiling (`--fps`).
    pub(super) max_fps: u32,
    /// Voice: opened audio goes here.
    audio: Option<AudioHandle>,
    /// Our uplink's video is paused (said when it changes).
    uplink_paused: bool,
    /// Our copies of others' shared terminals.
    pub(super) shares: HashMap<String, crate::share::ShareView>,
    /// For our own share: keys and requests from the room.
    pub(super) share_inbox: Vec<super::sharing::ShareInbox>,
    /// Sharers to ask for a snapshot.
    pub(super) share_requests: Vec<String>,
    /// Share messages refused (malformed, or keys from a member not
    /// allowed to type).
    pub(super) share_failures: u64,
    /// Known peers, for the whole session (the session sets it).
    pub(super) trust: super::identity::SharedTrust,
    /// Members' identity keys on this connection (a rename is checked
    /// against known_peers again).
    pub(super) identities: HashMap<String, [u8; 32]>,
}

/// Per-sender reception statistics for feedback.
#[derive(Default)]
pub(super) struct Heard {
    last_seq: Option<u32>,
    received: u32,
    lost: u32,
    delays: Vec<f64>,
}

/// Reports older than this no longer steer the sender.
const REPORT_MAX_AGE: Duration = Duration::from_secs(3);

impl Driver {
    pub(super) fn new(
        link: Link,
        events: mpsc::Sender<SessionEvent>,
        control: std::sync::Arc<CaptureControl>,
        default_view: (u32, u32),
        adapter: Adapter,
        max_fps: u32,
        audio: Option<AudioHandle>,
    ) -> Self {
        Driver {
            link,
            events,
            control,
            peer_views: HashMap::new(),
            default_view,
            epoch: u64::MAX,
            safety_words: String::new(),
            ended: None,
            adapter,
            heard: HashMap::new(),
            reports: HashMap::new(),
            last_link: (0, 0, 0),
            me: None,
            max_fps,
            audio,
            uplink_paused: false,
            shares: HashMap::new(),
            share_inbox: Vec::new(),
            share_requests: Vec::new(),
            share_failures: 0,
            trust: None,
            identities: HashMap::new(),
        }
    }

    /// Voice news for the UI: who muted, what went wrong (every tick).
    pub(super) async fn audio_events(&mut self) {
        let Some(a) = &self.audio else { return };
        let (changes, warnings) = (a.take_mute_changes(), a.take_warnings());
        for (peer, muted) in changes {
            let _ = self
                .events
                .send(SessionEvent::PeerMuted { peer, muted })
                .await;
        }
        for w in warnings {
            let _ = self.events.send(SessionEvent::Warning(w)).await;
        }
    }

    /// Once a second: tell senders how their streams arrive, and adapt our
    /// own level to what the uplink and our receivers say.
    pub(super) async fn every_second(&mut self, room: &mut Room, now: Instant) {
        if let Some(a) = &self.audio {
            let stats = a.take_stats();
            if !stats.is_empty() {
                let _ = self.events.send(SessionEvent::AudioStats(stats)).await;
            }
        }
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
        let paused = self
            .link
            .stats
            .uplink_video_paused
            .load(std::sync::atomic::Ordering::Relaxed);
        if paused != self.uplink_paused {
            self.uplink_paused = paused;
            let _ = self
                .events
                .send(SessionEvent::VideoPaused {
                    incoming: false,
                    paused,
                })
                .await;
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
            frame_link_ms: stats
                .frame_link_us
                .load(std::sync::atomic::Ordering::Relaxed) as f64
                / 1000.0,
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

    pub(super) async fn apply(&mut self, room: &mut Room, outputs: Vec<Output>) {
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
        let e = self.with_known(e).await;
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
                self.share_peer_left(peer).await;
                self.peer_views.remove(peer);
                self.update_encode_size();
                if let Some(a) = &self.audio {
                    a.peer_left(peer);
                }
            }
            Event::Frame {
                from,
                stream: Stream::Audio,
                payload,
                timestamp_us,
                flags,
            } => {
                if let Some(a) = &self.audio {
                    a.receive(from, *timestamp_us, *flags, payload.clone());
                }
                return;
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
                if let (Some(_), Some(a)) = (&frame, &self.audio) {
                    let delay = capture::now_us() as i64 - *timestamp_us as i64;
                    a.note_video_delay(from, delay);
                }
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
                stream: Stream::Share,
                payload,
                ..
            } => {
                self.on_share_frame(from, payload).await;
                return;
            }
            Event::ShareKeys { from, keys } => {
                self.share_inbox.push(super::sharing::ShareInbox::Keys {
                    from: from.clone(),
                    keys: keys.clone(),
                });
                return;
            }
            Event::PeerVerified { .. } => {
                // A new member needs our share's whole screen.
                self.share_inbox
                    .push(super::sharing::ShareInbox::SnapshotWanted);
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
    pub(super) fn update_encode_size(&self) {
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
