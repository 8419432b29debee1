//! Per-receiver bounded queues.
//!
//! Every peer has one [`Outbox`] that the room fan-out pushes into and the
//! peer's writer task drains. Pushing never waits, so a slow or stalled
//! receiver can't slow the sender or the other receivers; what it costs is
//! bounded here instead:
//! - media: at most `media_frames` messages and `media_bytes` bytes; on
//!   overflow the oldest media from the *same sender* goes first (the latest
//!   frame wins and other senders keep their place);
//! - control: never dropped silently. The relay's own (presence) past
//!   `control_messages` or `control_bytes` marks the receiver for
//!   disconnection, since it can no longer be kept consistent. Control that
//!   members send each other is charged to the *sender*: past its share of
//!   a receiver's queue (bytes or messages), or when that queue is full up
//!   to the quarter kept for the relay's own presence messages, the
//!   sender's messages to that receiver are refused (and the sender told),
//!   so nobody, alone or together, can get another member disconnected by
//!   flooding it (members on other relays are charged the same way);
//! - audio: a small queue sent after control and before media, so a slow
//!   receiver loses video first; bounded like media (oldest of the same
//!   sender dropped first) and with a short maximum age, since late voice
//!   is useless to the receiver's jitter buffer.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::metrics::Metrics;
use crate::peer::PeerId;
use crate::protocol::Kind;

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub media_frames: usize,
    pub media_bytes: usize,
    pub control_messages: usize,
    pub control_bytes: usize,
    /// Media older than this when its turn comes is dropped, not sent.
    pub media_max_age: Duration,
    pub audio_messages: usize,
    pub audio_bytes: usize,
    /// Audio older than this when its turn comes is dropped.
    pub audio_max_age: Duration,
}

impl QueueLimits {
    /// Audio queue defaults: about a second of voice from 16 senders (20 ms
    /// packets of ~300 bytes), dropped after 200 ms of waiting.
    pub const AUDIO_MESSAGES: usize = 800;
    pub const AUDIO_BYTES: usize = 256 * 1024;
    pub const AUDIO_MAX_AGE: Duration = Duration::from_millis(200);
}

/// What happened to a pushed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Queued, and this many older media messages were dropped to make room.
    DroppedOldMedia(usize),
    /// The receiver's control backlog overflowed; it is being disconnected.
    Overflow,
    /// The receiver is already going away.
    Closed,
    /// A member's control to this receiver is over its share: refused (the
    /// sender is told; the receiver is not blamed).
    SenderOverShare,
}

struct MediaItem {
    from: PeerId,
    message: Utf8Bytes,
    queued_at: Instant,
}

/// A droppable queue: media or audio.
#[derive(Default)]
struct Lane {
    items: VecDeque<MediaItem>,
    bytes: usize,
    /// When each sender was last served (media: senders take turns).
    served: std::collections::HashMap<PeerId, Instant>,
}

impl Lane {
    /// Queues `message`; while over `max_items` or `max_bytes`, drops the
    /// oldest item from the same sender (or, if the new one is that
    /// sender's only item, the oldest of anyone). Returns (dropped
    /// messages, dropped bytes).
    fn push(
        &mut self,
        from: PeerId,
        message: Utf8Bytes,
        max_items: usize,
        max_bytes: usize,
    ) -> (usize, usize) {
        self.bytes += message.len();
        self.items.push_back(MediaItem {
            from,
            message,
            queued_at: Instant::now(),
        });
        let (mut dropped, mut dropped_bytes) = (0, 0);
        while self.items.len() > max_items || self.bytes > max_bytes {
            // The newest item is the one just pushed, from `from`, so this
            // finds an item unless the queue holds only it.
            let victim = self.items.iter().position(|m| m.from == from).unwrap_or(0);
            let old = if victim == self.items.len() - 1 && self.items.len() > 1 {
                self.items.pop_front().expect("len > 1")
            } else {
                self.items.remove(victim).expect("index in range")
            };
            self.bytes -= old.message.len();
            dropped += 1;
            dropped_bytes += old.message.len();
        }
        (dropped, dropped_bytes)
    }

    /// Drops what is no longer worth sending from the front: items older
    /// than `max_age`, and with `latest_only` items with a newer one from
    /// the same sender behind them (each video frame stands alone: when the
    /// receiver is behind, only the newest of each sender is worth its
    /// link). Returns (dropped messages, dropped bytes).
    fn prune_front(&mut self, max_age: Duration, latest_only: bool) -> (usize, usize) {
        let now = Instant::now();
        let (mut dropped, mut dropped_bytes) = (0, 0);
        while let Some(item) = self.items.front() {
            let stale = now.duration_since(item.queued_at) > max_age;
            let superseded = latest_only && self.items.iter().skip(1).any(|m| m.from == item.from);
            if !stale && !superseded {
                break;
            }
            let item = self.items.pop_front().expect("front exists");
            self.bytes -= item.message.len();
            dropped += 1;
            dropped_bytes += item.message.len();
        }
        (dropped, dropped_bytes)
    }

    fn pop(&mut self) -> Option<Utf8Bytes> {
        let item = self.items.pop_front()?;
        self.bytes -= item.message.len();
        Some(item.message)
    }

    /// Video: the sender served longest ago goes next, with its newest
    /// frame (its older ones are dropped: each frame stands alone, and when
    /// the receiver is behind only the newest is worth its link). Senders
    /// take turns, so a slow link is shared, not won by whoever queued
    /// first. `ok` sees the frame's length first (the flow window); returns
    /// (the frame if it may go, dropped messages, dropped bytes).
    fn pop_turn(&mut self, ok: impl FnOnce(usize) -> bool) -> (Option<Utf8Bytes>, usize, usize) {
        let Some(sender) = self
            .items
            .iter()
            .map(|m| m.from)
            .min_by_key(|f| self.served.get(f).copied())
        else {
            return (None, 0, 0);
        };
        let newest = self
            .items
            .iter()
            .rposition(|m| m.from == sender)
            .expect("the sender has an item");
        if !ok(self.items[newest].message.len()) {
            return (None, 0, 0);
        }
        let (mut dropped, mut dropped_bytes) = (0, 0);
        let mut taken = None;
        let mut kept = VecDeque::with_capacity(self.items.len());
        for (i, item) in std::mem::take(&mut self.items).into_iter().enumerate() {
            if item.from != sender {
                kept.push_back(item);
                continue;
            }
            self.bytes -= item.message.len();
            if i == newest {
                taken = Some(item.message);
            } else {
                dropped += 1;
                dropped_bytes += item.message.len();
            }
        }
        self.items = kept;
        let now = Instant::now();
        self.served.insert(sender, now);
        if self.served.len() > 256 {
            let active: std::collections::HashSet<PeerId> =
                self.items.iter().map(|m| m.from).collect();
            self.served.retain(|f, _| active.contains(f));
        }
        (taken, dropped, dropped_bytes)
    }
}

#[derive(Default)]
struct State {
    /// Control messages, with the member who sent them (None: the relay's
    /// own, e.g. presence).
    control: VecDeque<(Option<PeerId>, Utf8Bytes)>,
    control_bytes: usize,
    /// Queued control (bytes, messages) per sending member.
    control_by_sender: std::collections::HashMap<PeerId, (usize, usize)>,
    media: Lane,
    audio: Lane,
    /// No more pushes; the writer sends the queued control, then the close frame.
    closed: bool,
    /// The control backlog overflowed: drop everything and close at once.
    overflowed: bool,
    close_reason: Option<CloseReason>,
    /// When voice last went to this receiver (see [`Outbox::last_voice`]).
    last_voice: Option<std::time::Instant>,
}

/// Why the relay closes a connection: a WebSocket close code and a reason
/// the client can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    pub code: u16,
    pub reason: String,
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Send(Utf8Bytes),
    Close(CloseReason),
}

pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    limits: QueueLimits,
    metrics: Arc<Metrics>,
}

impl Outbox {
    pub fn new(limits: QueueLimits, metrics: Arc<Metrics>) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            limits,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock would be a bug in this file; the
        // queue state stays consistent, so recover it rather than propagate.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Control a member sends another: charged to the sender, refused past
    /// `share` bytes or a quarter of the queue's messages queued here from
    /// that sender, or when the queue is full. A member's control never
    /// overflows the receiver's queue: only the relay's own (presence)
    /// can, so nobody can get another member disconnected by flooding it.
    pub fn push_member_control(&self, from: PeerId, message: Utf8Bytes, share: usize) -> Pushed {
        let len = message.len();
        let share_messages = (self.limits.control_messages / 4).max(1);
        let mut s = self.lock();
        if s.closed {
            return Pushed::Closed;
        }
        let (bytes, count) = s.control_by_sender.get(&from).copied().unwrap_or((0, 0));
        // Members together get three quarters of the queue: the rest is
        // kept for the relay's own presence messages.
        let (messages_for_members, bytes_for_members) = members_part(&self.limits);
        let queue_full =
            s.control.len() >= messages_for_members || s.control_bytes + len > bytes_for_members;
        if bytes + len > share || count >= share_messages || queue_full {
            return Pushed::SenderOverShare;
        }
        let charge = s.control_by_sender.entry(from).or_insert((0, 0));
        charge.0 += len;
        charge.1 += 1;
        drop(s);
        self.push_control(Some(from), message)
    }

    /// Control the relay says itself (presence, errors): may use the whole
    /// queue, the part kept from members included.
    pub fn push(&self, kind: Kind, from: PeerId, message: Utf8Bytes) -> Pushed {
        if kind == Kind::Control {
            return self.push_control(None, message);
        }
        self.push_droppable(kind, from, message)
    }

    fn push_control(&self, from: Option<PeerId>, message: Utf8Bytes) -> Pushed {
        let len = message.len();
        let mut s = self.lock();
        if s.closed {
            return Pushed::Closed;
        }
        if s.control.len() >= self.limits.control_messages
            || s.control_bytes + len > self.limits.control_bytes
        {
            s.closed = true;
            s.overflowed = true;
            s.close_reason = Some(CloseReason {
                code: 1008,
                reason: "receiver too slow: control backlog overflowed".into(),
            });
            drop(s);
            self.ready.notify_one();
            return Pushed::Overflow;
        }
        s.control_bytes += len;
        s.control.push_back((from, message));
        self.account(1, len as i64);
        self.metrics
            .note_backlog(s.control_bytes + s.media.bytes + s.audio.bytes);
        drop(s);
        self.ready.notify_one();
        Pushed::Queued
    }

    fn push_droppable(&self, kind: Kind, from: PeerId, message: Utf8Bytes) -> Pushed {
        let len = message.len();
        let mut s = self.lock();
        if s.closed {
            return Pushed::Closed;
        }
        let result = match kind {
            Kind::Control => {
                drop(s);
                return self.push_control(None, message);
            }
            Kind::Media | Kind::Audio => {
                let (lane, max_items, max_bytes, counter) = if kind == Kind::Media {
                    let l = &self.limits;
                    (
                        &mut s.media,
                        l.media_frames,
                        l.media_bytes,
                        &self.metrics.media_dropped,
                    )
                } else {
                    let l = &self.limits;
                    (
                        &mut s.audio,
                        l.audio_messages,
                        l.audio_bytes,
                        &self.metrics.audio_dropped,
                    )
                };
                let (dropped, dropped_bytes) = lane.push(from, message, max_items, max_bytes);
                if dropped > 0 {
                    self.account(-(dropped as i64), -(dropped_bytes as i64));
                    counter.fetch_add(dropped as u64, Relaxed);
                    Pushed::DroppedOldMedia(dropped)
                } else {
                    Pushed::Queued
                }
            }
        };
        self.account(1, len as i64);
        self.metrics
            .note_backlog(s.control_bytes + s.media.bytes + s.audio.bytes);
        drop(s);
        self.ready.notify_one();
        result
    }

    fn account(&self, messages: i64, bytes: i64) {
        self.metrics.queued_messages.fetch_add(messages, Relaxed);
        self.metrics.queued_bytes.fetch_add(bytes, Relaxed);
    }

    /// Next message for the writer: control, then audio, then media, oldest
    /// first; or the close frame to send once the outbox is closed.
    pub async fn next(&self) -> Next {
        self.next_gated(|_| true).await
    }

    /// Like [`Outbox::next`], but media only when `media_ok` allows a
    /// message of that many bytes now (the writer's flow window); when it
    /// doesn't, waits for control or audio (or a push) instead.
    pub async fn next_gated(&self, mut media_ok: impl FnMut(usize) -> bool) -> Next {
        loop {
            if let Some(next) = self.try_next_gated(&mut media_ok) {
                return next;
            }
            // A push between `try_next` and this await leaves a permit in
            // `ready`, so no wake-up is lost (there is a single consumer).
            self.ready.notified().await;
        }
    }

    /// Like [`Outbox::next`], without waiting.
    pub fn try_next(&self) -> Option<Next> {
        self.try_next_gated(|_| true)
    }

    /// Like [`Outbox::next_gated`], without waiting.
    pub fn try_next_gated(&self, mut media_ok: impl FnMut(usize) -> bool) -> Option<Next> {
        let mut s = self.lock();
        if !s.overflowed {
            if let Some((from, m)) = s.control.pop_front() {
                s.control_bytes -= m.len();
                if let Some(from) = from {
                    if let Some(charge) = s.control_by_sender.get_mut(&from) {
                        charge.0 -= m.len();
                        charge.1 -= 1;
                        if charge.1 == 0 {
                            s.control_by_sender.remove(&from);
                        }
                    }
                }
                self.account(-1, -(m.len() as i64));
                return Some(Next::Send(m));
            }
        }
        if s.closed {
            let reason = s.close_reason.clone().unwrap_or(CloseReason {
                code: 1000,
                reason: String::new(),
            });
            return Some(Next::Close(reason));
        }
        let (expired, expired_bytes) = s.audio.prune_front(self.limits.audio_max_age, false);
        let audio = s.audio.pop();
        if expired > 0 {
            self.account(-(expired as i64), -(expired_bytes as i64));
            self.metrics
                .audio_dropped
                .fetch_add(expired as u64, Relaxed);
        }
        if let Some(m) = audio {
            self.account(-1, -(m.len() as i64));
            s.last_voice = Some(std::time::Instant::now());
            return Some(Next::Send(m));
        }
        // Media waits while the path to the receiver is full; senders take
        // turns, each with its newest frame.
        let (stale, stale_bytes) = s.media.prune_front(self.limits.media_max_age, false);
        let (media, superseded, superseded_bytes) = s.media.pop_turn(&mut media_ok);
        let (expired, expired_bytes) = (stale + superseded, stale_bytes + superseded_bytes);
        if expired > 0 {
            self.account(-(expired as i64), -(expired_bytes as i64));
            self.metrics
                .media_dropped
                .fetch_add(expired as u64, Relaxed);
            self.metrics
                .media_expired
                .fetch_add(expired as u64, Relaxed);
        }
        let m = media?;
        self.account(-1, -(m.len() as i64));
        Some(Next::Send(m))
    }

    /// No more pushes: what is left is sent, then the close frame.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// When voice last went to this receiver: the flow window pauses video
    /// for it only while there is voice to protect.
    pub fn last_voice(&self) -> Option<std::time::Instant> {
        self.lock().last_voice
    }

    /// Stops delivery: the writer sends what control is queued (errors that
    /// explain the close), then this close frame, and stops; queued media is
    /// discarded. The first reason given wins.
    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let mut s = self.lock();
        s.closed = true;
        if s.close_reason.is_none() {
            s.close_reason = Some(CloseReason {
                code,
                reason: reason.into(),
            });
        }
        drop(s);
        self.ready.notify_one();
    }

    /// Drops everything queued (its memory is freed now, not after a slow
    /// receiver has read it) and closes: for a connection shed to keep the
    /// relay within its memory budget.
    pub fn discard_and_close(&self, code: u16, reason: impl Into<String>) {
        let mut s = self.lock();
        let messages = s.control.len() + s.media.items.len() + s.audio.items.len();
        let bytes = s.control_bytes + s.media.bytes + s.audio.bytes;
        s.control.clear();
        s.control_bytes = 0;
        s.control_by_sender.clear();
        s.media = Lane::default();
        s.audio = Lane::default();
        drop(s);
        self.account(-(messages as i64), -(bytes as i64));
        self.close(code, reason);
    }

    /// True when the receiver was closed because its control backlog overflowed.
    pub fn overflowed(&self) -> bool {
        self.lock().overflowed
    }

    /// (messages, bytes) currently queued.
    pub fn backlog(&self) -> (usize, usize) {
        let s = self.lock();
        (
            s.control.len() + s.media.items.len() + s.audio.items.len(),
            s.control_bytes + s.media.bytes + s.audio.bytes,
        )
    }
}

/// How much of a control queue members may fill together (messages,
/// bytes): three quarters; the relay's own presence keeps the rest.
fn members_part(limits: &QueueLimits) -> (usize, usize) {
    (
        limits.control_messages - limits.control_messages / 4,
        limits.control_bytes - limits.control_bytes / 4,
    )
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let (messages, bytes) = self.backlog();
        self.account(-(messages as i64), -(bytes as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(media_frames: usize, media_bytes: usize) -> Outbox {
        Outbox::new(
            QueueLimits {
                media_frames,
                media_bytes,
                control_messages: 4,
                control_bytes: 1000,
                media_max_age: Duration::from_secs(60),
                audio_messages: 4,
                audio_bytes: 100,
                audio_max_age: Duration::from_secs(60),
            },
            Arc::new(Metrics::default()),
        )
    }

    fn msg(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_string())
    }

    async fn text(o: &Outbox) -> String {
        match o.next().await {
            Next::Send(m) => m.to_string(),
            Next::Close(r) => panic!("closed: {r:?}"),
        }
    }

    #[tokio::test]
    async fn control_goes_before_media() {
        let o = outbox(8, 1000);
        o.push(Kind::Media, PeerId(1), msg("m1"));
        o.push(Kind::Control, PeerId(1), msg("c1"));
        assert_eq!(text(&o).await, "c1");
        assert_eq!(text(&o).await, "m1");
        assert_eq!(o.try_next(), None);
    }

    #[tokio::test]
    async fn media_overflow_drops_oldest_of_same_sender() {
        let o = outbox(3, 1000);
        o.push(Kind::Media, PeerId(1), msg("a1"));
        o.push(Kind::Media, PeerId(2), msg("b1"));
        o.push(Kind::Media, PeerId(1), msg("a2"));
        assert_eq!(
            o.push(Kind::Media, PeerId(2), msg("b2")),
            Pushed::DroppedOldMedia(1)
        );
        // b1 made room for b2; then each sender's newest, in turn.
        assert_eq!(text(&o).await, "a2");
        assert_eq!(text(&o).await, "b2");
        assert_eq!(o.try_next(), None);
        assert_eq!(o.metrics.media_dropped.load(Relaxed), 2, "b1, then a1");
        assert_eq!(o.metrics.queued_bytes.load(Relaxed), 0);
    }

    /// A receiver behind: senders take turns, each with its newest frame,
    /// so neither starves however their frames interleave in the queue.
    #[test]
    fn senders_take_turns_with_their_newest_frames() {
        let o = outbox(64, 100_000);
        let mut sent = std::collections::HashMap::<u64, usize>::new();
        for round in 0..50 {
            for sender in [1, 2] {
                o.push(
                    Kind::Media,
                    PeerId(sender),
                    msg(&format!("{sender}-{round}")),
                );
            }
            // The link takes one frame per two offered.
            if let Some(Next::Send(m)) = o.try_next() {
                let sender: u64 = m.as_str()[..1].parse().unwrap();
                let newest = format!("{sender}-{round}");
                assert_eq!(m.as_str(), newest, "the sender's newest");
                *sent.entry(sender).or_default() += 1;
            }
        }
        assert_eq!(sent[&1], 25);
        assert_eq!(sent[&2], 25);
    }

    #[tokio::test]
    async fn audio_goes_after_control_and_before_media() {
        let o = outbox(8, 1000);
        o.push(Kind::Media, PeerId(1), msg("m1"));
        o.push(Kind::Audio, PeerId(2), msg("a1"));
        o.push(Kind::Control, PeerId(3), msg("c1"));
        o.push(Kind::Audio, PeerId(2), msg("a2"));
        let mut got = vec![];
        for _ in 0..4 {
            got.push(text(&o).await);
        }
        assert_eq!(got, ["c1", "a1", "a2", "m1"]);
        // Bounded: the oldest of the same sender goes first.
        for i in 0..10 {
            o.push(Kind::Audio, PeerId(2), msg(&format!("x{i}")));
        }
        assert_eq!(o.backlog().0, 4);
        assert_eq!(text(&o).await, "x6");
        assert_eq!(o.metrics.audio_dropped.load(Relaxed), 6);
    }

    #[test]
    fn media_is_bounded_in_bytes() {
        let o = outbox(100, 10);
        for _ in 0..50 {
            o.push(Kind::Media, PeerId(1), msg("xxxx"));
        }
        let (n, bytes) = o.backlog();
        assert!(bytes <= 10 && n == 2, "{n} messages, {bytes} bytes");
    }

    #[tokio::test]
    async fn a_members_control_flood_is_charged_to_it_not_to_the_receiver() {
        let o = Outbox::new(
            QueueLimits {
                control_messages: 16,
                ..outbox(8, 1000).limits
            },
            Arc::new(Metrics::default()),
        );
        // Share 300 bytes: the flooder's fourth message is refused...
        for _ in 0..3 {
            assert_eq!(
                o.push_member_control(PeerId(7), msg(&"x".repeat(100)), 300),
                Pushed::Queued
            );
        }
        assert_eq!(
            o.push_member_control(PeerId(7), msg(&"x".repeat(100)), 300),
            Pushed::SenderOverShare
        );
        // ...as is the fifth small one (a quarter of 16 messages)...
        for _ in 0..4 {
            assert_eq!(
                o.push_member_control(PeerId(9), msg("m"), 300),
                Pushed::Queued
            );
        }
        assert_eq!(
            o.push_member_control(PeerId(9), msg("m"), 300),
            Pushed::SenderOverShare
        );
        // ...while others still get through and the receiver stays, even
        // when many senders together fill its queue.
        assert_eq!(
            o.push_member_control(PeerId(8), msg("hi"), 300),
            Pushed::Queued
        );
        for sender in 10..18 {
            o.push_member_control(PeerId(sender), msg("s"), 300);
        }
        assert_eq!(
            o.push_member_control(PeerId(20), msg("s"), 300),
            Pushed::SenderOverShare
        );
        assert!(!o.overflowed());
        // The members' part is full; presence still fits, a quarter of it.
        for _ in 0..4 {
            assert_eq!(o.push(Kind::Control, PeerId(0), msg("p")), Pushed::Queued);
        }
        // Once the receiver reads, the sender has room again.
        for _ in 0..5 {
            text(&o).await;
        }
        assert_eq!(
            o.push_member_control(PeerId(7), msg("ok"), 300),
            Pushed::Queued
        );
    }

    #[tokio::test]
    async fn control_overflow_closes() {
        let o = outbox(8, 1000);
        for _ in 0..4 {
            assert_eq!(o.push(Kind::Control, PeerId(1), msg("c")), Pushed::Queued);
        }
        assert_eq!(o.push(Kind::Control, PeerId(1), msg("c")), Pushed::Overflow);
        assert!(o.overflowed());
        assert!(matches!(o.next().await, Next::Close(r) if r.code == 1008));
        assert_eq!(o.push(Kind::Media, PeerId(1), msg("m")), Pushed::Closed);
    }

    #[test]
    fn stale_media_is_dropped_not_sent() {
        let o = Outbox::new(
            QueueLimits {
                media_frames: 8,
                media_bytes: 1000,
                control_messages: 4,
                control_bytes: 1000,
                media_max_age: Duration::from_millis(30),
                audio_messages: 4,
                audio_bytes: 100,
                audio_max_age: Duration::from_millis(30),
            },
            Arc::new(Metrics::default()),
        );
        o.push(Kind::Media, PeerId(1), msg("old"));
        o.push(Kind::Control, PeerId(1), msg("ctl"));
        std::thread::sleep(Duration::from_millis(60));
        o.push(Kind::Media, PeerId(1), msg("new"));
        assert_eq!(o.try_next(), Some(Next::Send(msg("ctl"))));
        assert_eq!(o.try_next(), Some(Next::Send(msg("new"))));
        assert_eq!(o.try_next(), None);
        assert_eq!(o.metrics.media_expired.load(Relaxed), 1);
        assert_eq!(o.metrics.queued_bytes.load(Relaxed), 0);
    }

    #[test]
    fn gauges_return_to_zero_on_drop() {
        let metrics = Arc::new(Metrics::default());
        {
            let o = Outbox::new(
                QueueLimits {
                    media_frames: 4,
                    media_bytes: 100,
                    control_messages: 4,
                    control_bytes: 100,
                    media_max_age: Duration::from_secs(60),
                    audio_messages: 4,
                    audio_bytes: 100,
                    audio_max_age: Duration::from_secs(60),
                },
                metrics.clone(),
            );
            o.push(Kind::Media, PeerId(1), msg("abc"));
            o.push(Kind::Control, PeerId(1), msg("de"));
            assert_eq!(metrics.queued_bytes.load(Relaxed), 5);
        }
        assert_eq!(metrics.queued_bytes.load(Relaxed), 0);
        assert_eq!(metrics.queued_messages.load(Relaxed), 0);
    }
}
