//! How much video may be on its way to one peer: an ack-clocked window.
//!
//! A write to a socket returns long before the bytes reach the peer: kernel
//! buffers, a router's queue in front of a thin link, and a proxy's buffers
//! hold seconds of data, and a voice packet written after them waits behind
//! all of it. So the writer asks the peer: a WebSocket ping carrying a
//! sequence number is answered (RFC 6455 §5.5.2, by any WebSocket client,
//! browsers included) only once the peer has read everything before it.
//! Its pong says which bytes have arrived; from the pongs come the path's
//! round trip and delivery rate, and from those a window:
//!
//! `window = delivery rate × smallest round trip + max(delivery rate ×
//! TARGET_QUEUE, one video message)` (the round trip taken as at least the
//! probe spacing),
//!
//! the bytes the path carries plus at most `TARGET_QUEUE` of queue (or one
//! message, when a message takes longer than that on the link). Video
//! is written only while what is in flight fits the window; voice and
//! control are never held (they are small and can't wait), so they find at
//! most `TARGET_QUEUE` of video ahead of them. A path that got faster is
//! found as BBR finds it: one rate sample's span (a round trip, at least
//! `SAMPLE_SPAN`) in eight the window is opened by a quarter, and if the
//! path carries more, the rate measured rises. (A
//! window opened further or for longer, tried here, filled thin links'
//! queues and cost voice more than it gained video.)
//!
//! A probe that follows video measures the round trip plus the time that
//! video takes to drain. So, as BBR does, the smallest round trip is
//! measured on an empty path: when it is ten seconds old, video is held
//! until little is in flight (about a round trip), and the next probe's
//! round trip becomes the new smallest.
//!
//! Sans-I/O: the writer calls [`Flow::on_write`], sends the pings
//! [`Flow::probe`] asks for, hands pongs to [`Flow::on_pong`], and asks
//! [`Flow::media_room`] before each video message.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Queueing allowed on the path on top of what it carries: what a voice
/// packet may find ahead of it.
pub const TARGET_QUEUE: Duration = Duration::from_millis(15);
/// The window before anything is measured (two or three video messages).
const INITIAL_WINDOW: u64 = 4 * 1024;
/// Never less than this (a handful of packets).
const MIN_WINDOW: u64 = 2 * 1024;
/// Pings answered out of order or lost are forgotten past this many.
const MAX_PROBES: usize = 32;
/// At most one probe this often.
const PROBE_EVERY: Duration = Duration::from_millis(15);
/// The round trip counts as at least this long: acks come no faster than
/// the peer reads, and a busy peer (decoding four videos on a loaded
/// machine) reads in bursts. On a fast path this costs voice nothing (the
/// bytes drain in a moment); on a thin one the round trip is longer anyway.
const MIN_ROUND: Duration = Duration::from_millis(50);
/// Delivery rates measured over the last this long count (the highest).
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// A rate sample spans at least this long (and a round trip).
const SAMPLE_SPAN: Duration = Duration::from_millis(100);
/// Answers remembered for spans (a second or more of probes).
const MAX_ANSWERS: usize = 128;
/// The smallest round trip is measured again after this long.
const RTT_WINDOW: Duration = Duration::from_secs(10);
/// In flight at most this much, the path counts as empty.
const DRAINED: u64 = 1500;

/// One sample span (a round trip, at least [`SAMPLE_SPAN`]) in this many,
/// the window is opened by [`PROBE_GAIN`]...
const PROBE_CYCLE: u64 = 8;
/// ...this much.
const PROBE_GAIN: f64 = 1.25;

/// A video message that would take longer than this on the path holds up
/// the voice behind it too long: video pauses for this peer...
const MAX_MESSAGE_TIME: Duration = Duration::from_millis(80);
/// ...but one still goes this often, to find out whether the path got
/// faster.
const PAUSED_PROBE_EVERY: Duration = Duration::from_secs(10);

/// Video pauses only while voice went this recently: without voice to
/// protect, a slow frame is better than none.
const VOICE_LATELY: Duration = Duration::from_secs(2);

/// A ping's payload: 8 bytes, the probe's number. (Other pings, e.g. for
/// liveness, carry none and mean nothing here.)
pub const PROBE_LEN: usize = 8;

#[derive(Debug, Clone, Copy)]
struct Probe {
    id: u64,
    /// Bytes written before it.
    written: u64,
    sent: Instant,
    /// Video was waiting for room when it went: the path was full, so the
    /// rate measured up to it is the path's, not ours.
    full: bool,
    /// Sent on an empty path: its round trip is the path's own.
    clean: bool,
    /// Right behind a lone message of this many bytes written into an
    /// empty path: its round trip minus the path's is the time the path
    /// took to carry it.
    lone: Option<u64>,
}

#[derive(Debug)]
pub struct Flow {
    written: u64,
    acked: u64,
    /// Recent answers: (when the pong came, bytes acked, when its probe
    /// was sent), for rate samples over a span long enough to smooth out
    /// how the path bunches deliveries.
    answered: VecDeque<(Instant, u64, Instant)>,
    probes: VecDeque<Probe>,
    next_id: u64,
    last_probe: Option<Instant>,
    /// (when, bytes/s) delivery samples.
    rates: VecDeque<(Instant, f64)>,
    /// The smallest round trip, and when it was measured.
    min_rtt: Option<(Duration, Instant)>,
    /// Holding video until the path is empty, to measure it.
    draining: bool,
    /// Video waited for room since the last probe.
    blocked: bool,
    /// When video last waited for room: the path, not the sender, limits.
    last_blocked: Option<Instant>,
    /// The window's factor now: [`PROBE_GAIN`] while probing for room.
    gain: f64,
    /// When the probing cycle started.
    cycle_start: Option<Instant>,
    /// Video paused (messages too long for the path): when the last one
    /// went anyway, and its size until the probe behind it goes.
    paused_probe: Option<Instant>,
    lone: Option<u64>,
    /// Video was offered for the first time: probing starts (see
    /// [`Flow::take_first_offer`]).
    first_offer: bool,
    /// When voice last went, and the latest time the flow was asked
    /// about (for [`VOICE_LATELY`]).
    voice_at: Option<Instant>,
    now: Option<Instant>,
    /// The largest video message lately (decaying): the window always
    /// holds a round trip's worth plus one, or the path idles between
    /// messages and the rate measured falls with it.
    message: f64,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            written: 0,
            acked: 0,
            answered: VecDeque::new(),
            probes: VecDeque::new(),
            next_id: 1,
            last_probe: None,
            rates: VecDeque::new(),
            min_rtt: None,
            // The path is measured empty before the first video.
            draining: true,
            blocked: false,
            last_blocked: None,
            gain: 1.0,
            cycle_start: None,
            paused_probe: None,
            lone: None,
            first_offer: false,
            voice_at: None,
            now: None,
            message: 0.0,
        }
    }
}

/// A snapshot, for metrics and status lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowState {
    pub in_flight: u64,
    pub window: u64,
    /// Bytes per second, once measured.
    pub rate: Option<f64>,
    pub min_rtt: Option<Duration>,
}

impl Flow {
    /// Bytes written and not known to have arrived.
    pub fn in_flight(&self) -> u64 {
        self.written - self.acked
    }

    /// The highest delivery rate measured lately, bytes/s.
    fn rate(&self) -> Option<f64> {
        self.rates.iter().map(|(_, r)| *r).reduce(f64::max)
    }

    fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(r, _)| r)
    }

    /// What may be in flight now.
    pub fn window(&self) -> u64 {
        let (Some(rate), Some(rtt)) = (self.rate(), self.min_rtt()) else {
            return INITIAL_WINDOW;
        };
        // Acks come no more often than probes go, nor faster than the peer
        // reads: on a path faster than that, a window of one round trip
        // would starve itself.
        let round_trip = rate * rtt.max(MIN_ROUND).as_secs_f64();
        let queue = (rate * TARGET_QUEUE.as_secs_f64()).max(self.message);
        (((round_trip + queue) * self.gain) as u64).max(MIN_WINDOW)
    }

    /// May a video message of `len` bytes be written now? (Always when
    /// nothing is in flight: a message bigger than the window goes alone.)
    /// Never while one would take over [`MAX_MESSAGE_TIME`] on the path,
    /// but for one every [`PAUSED_PROBE_EVERY`].
    pub fn media_room(&mut self, len: usize, now: Instant) -> bool {
        self.now = Some(now);
        self.first_offer |= self.message == 0.0;
        self.message = (self.message * 0.99).max(len as f64);
        if self.draining {
            return false;
        }
        if self.too_long(len) {
            let due = self
                .paused_probe
                .is_none_or(|t| now.duration_since(t) >= PAUSED_PROBE_EVERY);
            if !due || self.in_flight() > DRAINED {
                return false;
            }
            self.paused_probe = Some(now);
            self.lone = Some(len as u64);
            return true;
        }
        let ok = self.in_flight() == 0 || self.in_flight() + len as u64 <= self.window();
        if !ok {
            self.blocked = true;
            self.last_blocked = Some(now);
        }
        ok
    }

    /// How long a message of `len` bytes takes on the path, once the rate
    /// is measured.
    pub fn message_time(&self, len: usize) -> Option<Duration> {
        self.rate()
            .map(|rate| Duration::from_secs_f64(len as f64 / rate.max(1.0)))
    }

    /// Like [`Flow::message_time`], but only while the path is what limits
    /// video (it waited for room in the last second). A sender sending
    /// little measures only what it sends, not what the path could carry:
    /// its rate says nothing about the path then.
    pub fn message_time_if_limited(&self, len: usize, now: Instant) -> Option<Duration> {
        let limited = self
            .last_blocked
            .is_some_and(|t| now.saturating_duration_since(t) <= Duration::from_secs(1));
        limited.then(|| self.message_time(len)).flatten()
    }

    /// True once, after video is first offered: a writer that waits for
    /// video to fit should look again at whether a probe is wanted (none
    /// was before).
    pub fn take_first_offer(&mut self) -> bool {
        std::mem::take(&mut self.first_offer)
    }

    /// Voice went at `at` (the latest such moment is kept).
    pub fn on_voice(&mut self, at: Instant) {
        self.voice_at = self.voice_at.max(Some(at));
    }

    fn voice_lately(&self) -> bool {
        match (self.voice_at, self.now) {
            (Some(voice), Some(now)) => now.saturating_duration_since(voice) <= VOICE_LATELY,
            _ => false,
        }
    }

    /// A message of `len` bytes would hold the path too long (for the
    /// voice going with it: with none lately, nothing is too long).
    fn too_long(&self, len: usize) -> bool {
        self.voice_lately()
            && self
                .rate()
                .is_some_and(|rate| len as f64 > rate * MAX_MESSAGE_TIME.as_secs_f64())
    }

    /// Video is paused: messages of the size lately offered take too long
    /// on the path (the peer should say so rather than freeze).
    pub fn video_paused(&self) -> bool {
        self.message > 0.0 && self.too_long(self.message as usize)
    }

    pub fn on_write(&mut self, bytes: usize) {
        self.written += bytes as u64;
    }

    /// Something written isn't covered by a probe yet (or the empty path
    /// is to be measured): a probe is wanted, now or soon.
    pub fn wants_probe(&self) -> bool {
        // Nothing to pace before video is offered: a connection that only
        // talks (joins, control, voice) is never probed.
        if self.message == 0.0 {
            return false;
        }
        let covered = self.probes.back().map_or(self.acked, |p| p.written);
        // The empty path is probed even with nothing new written.
        let measure_empty =
            self.draining && self.in_flight() <= DRAINED && !self.probes.iter().any(|p| p.clean);
        self.written != covered || measure_empty
    }

    /// The payload of a ping to send now, if one is due: bytes were written
    /// since the last probe, and the last went a little while ago.
    pub fn probe(&mut self, now: Instant) -> Option<[u8; PROBE_LEN]> {
        if !self.wants_probe()
            || self
                .last_probe
                .is_some_and(|t| now.duration_since(t) < PROBE_EVERY)
        {
            return None;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.probes.push_back(Probe {
            id,
            written: self.written,
            sent: now,
            full: std::mem::take(&mut self.blocked),
            clean: self.in_flight() <= DRAINED,
            lone: self.lone.take(),
        });
        while self.probes.len() > MAX_PROBES {
            // Never answered: what it covered counts as arrived when a
            // later probe is answered.
            self.probes.pop_front();
        }
        self.last_probe = Some(now);
        Some(id.to_be_bytes())
    }

    /// A pong: true when it was one of our probes (the window may have
    /// opened).
    pub fn on_pong(&mut self, payload: &[u8], now: Instant) -> bool {
        let Ok(bytes) = <[u8; PROBE_LEN]>::try_from(payload) else {
            return false;
        };
        let id = u64::from_be_bytes(bytes);
        let Some(at) = self.probes.iter().position(|p| p.id == id) else {
            return false;
        };
        let probe = self.probes[at];
        self.probes.drain(..=at);
        let rtt = now.saturating_duration_since(probe.sent);
        match self.min_rtt {
            _ if probe.clean && self.draining => {
                self.min_rtt = Some((rtt, now));
                self.draining = false;
            }
            None => self.min_rtt = Some((rtt, now)),
            Some((min, _)) if rtt <= min => self.min_rtt = Some((rtt, now)),
            Some((_, at)) if now.duration_since(at) > RTT_WINDOW => self.draining = true,
            Some(_) => {}
        }
        // Over at least a round trip (and SAMPLE_SPAN), and over the longer
        // of the send and the ack interval: paths deliver in bunches (a
        // peer answers the pings it read in one go, links aggregate), and a
        // rate over a short gap measures the bunching.
        let span = self.min_rtt().unwrap_or(SAMPLE_SPAN).max(SAMPLE_SPAN);
        let base = self
            .answered
            .iter()
            .rev()
            .find(|(at, ..)| now.duration_since(*at) >= span)
            .copied();
        let sample = base.and_then(|(acked_at, acked_then, sent_then)| {
            let delivered = probe.written.saturating_sub(acked_then);
            let interval = now
                .saturating_duration_since(acked_at)
                .max(probe.sent.saturating_duration_since(sent_then))
                .as_secs_f64();
            (interval > 0.0 && delivered > 0).then(|| delivered as f64 / interval)
        });
        // A lone message into an empty path measures the path itself.
        let lone = probe.lone.zip(self.min_rtt()).and_then(|(len, min)| {
            let carried = rtt.saturating_sub(min).as_secs_f64();
            (carried > 0.0).then(|| len as f64 / carried)
        });
        if let Some(sample) = lone {
            self.rates.push_back((now, sample));
        }
        if let Some(sample) = sample.filter(|_| lone.is_none()) {
            // A path that wasn't full measures what we sent, not what it
            // carries: such a sample may only raise the estimate.
            if probe.full || self.rate().is_none_or(|r| sample > r) {
                self.rates.push_back((now, sample));
            }
            // A longer queue than the window explains (the path got
            // slower): believe the latest sample rather than the best of
            // the last two seconds.
            if let (Some(min), Some(rate)) = (self.min_rtt(), self.rate()) {
                let explained = Duration::from_secs_f64(self.window() as f64 / rate);
                if probe.full && rtt > min + explained + TARGET_QUEUE {
                    self.rates.clear();
                    self.rates.push_back((now, sample.min(rate)));
                }
            }
        }
        // Old samples go, but the newest stays: with nothing better (video
        // paused, only voice going) it is still the best guess.
        while self.rates.len() > 1
            && self
                .rates
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW)
        {
            self.rates.pop_front();
        }
        self.gain = self.gain_at(now);
        self.acked = self.acked.max(probe.written);
        self.answered.push_back((now, self.acked, probe.sent));
        while self.answered.len() > MAX_ANSWERS {
            self.answered.pop_front();
        }
        true
    }

    /// The probing cycle: one sample span in [`PROBE_CYCLE`] at
    /// [`PROBE_GAIN`].
    fn gain_at(&mut self, now: Instant) -> f64 {
        let round = self.min_rtt().unwrap_or(SAMPLE_SPAN).max(SAMPLE_SPAN);
        let start = *self.cycle_start.get_or_insert(now);
        let rounds = now.duration_since(start).as_secs_f64() / round.as_secs_f64();
        if rounds as u64 % PROBE_CYCLE == 0 {
            PROBE_GAIN
        } else {
            1.0
        }
    }

    pub fn state(&self) -> FlowState {
        FlowState {
            in_flight: self.in_flight(),
            window: self.window(),
            rate: self.rate(),
            min_rtt: self.min_rtt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives `flow` over `path` for `seconds`, offering `frame`-byte video
    /// as fast as the window allows; returns the longest a voice packet
    /// written after the first 3 s would have waited behind video.
    fn drive(
        flow: &mut Flow,
        path: &mut Path,
        t0: Instant,
        seconds: u64,
        frame: usize,
    ) -> Duration {
        let mut now = t0;
        let mut worst = Duration::ZERO;
        if flow.written == 0 {
            // The welcome.
            flow.on_write(100);
            path.write(now, 100);
        }
        while now < t0 + Duration::from_secs(seconds) {
            now += Duration::from_millis(5);
            if path.voice {
                flow.on_voice(now);
            }
            for (at, p) in std::mem::take(&mut path.pongs) {
                if at <= now {
                    flow.on_pong(&p, at);
                } else {
                    path.pongs.push((at, p));
                }
            }
            if flow.media_room(frame, now) {
                flow.on_write(frame);
                path.write(now, frame);
            }
            if let Some(p) = flow.probe(now) {
                path.ping(now, p);
            }
            if now > t0 + Duration::from_secs(3) {
                let wait = path
                    .drained_at
                    .saturating_duration_since(now + path.rtt / 2);
                worst = worst.max(wait);
            }
        }
        worst
    }

    /// A path of `rate` bytes/s and `rtt`: the peer reads bytes as the rate
    /// lets them through, and answers a probe once its bytes are read.
    struct Path {
        rate: f64,
        rtt: Duration,
        /// When the bytes written so far will have been read.
        drained_at: Instant,
        pongs: Vec<(Instant, [u8; PROBE_LEN])>,
        /// Voice goes too (it is what a paused video protects).
        voice: bool,
    }

    impl Path {
        fn write(&mut self, now: Instant, bytes: usize) {
            let start = self.drained_at.max(now + self.rtt / 2);
            self.drained_at = start + Duration::from_secs_f64(bytes as f64 / self.rate);
        }

        fn ping(&mut self, now: Instant, p: [u8; PROBE_LEN]) {
            let read = self.drained_at.max(now + self.rtt / 2);
            self.pongs.push((read + self.rtt / 2, p));
        }
    }

    /// Video offered as fast as the window allows, over a thin path: the
    /// window settles near rate × (rtt + TARGET_QUEUE), so a voice packet
    /// written at any moment waits behind little more than TARGET_QUEUE.
    #[test]
    fn the_window_settles_at_the_path_and_keeps_the_queue_short() {
        let t0 = Instant::now();
        let rate = 50_000.0; // 400 kbit/s
        let rtt = Duration::from_millis(80);
        let mut path = Path {
            rate,
            rtt,
            drained_at: t0,
            pongs: Vec::new(),
            voice: true,
        };
        let mut flow = Flow::default();
        // Long enough to measure the empty path again (10 s).
        let worst = drive(&mut flow, &mut path, t0, 25, 2_700);
        let s = flow.state();
        let r = s.rate.expect("measured");
        assert!((0.8 * rate..=1.3 * rate).contains(&r), "rate {r}");
        // A frame takes 54 ms on this link: voice waits behind the rest of
        // the one being sent and at most one more (the window holds a
        // round trip plus one message), never a queue of them.
        assert!(
            worst <= Duration::from_millis(2 * 54 + 10),
            "voice would wait {worst:?}"
        );
        let min = s.min_rtt.expect("measured");
        assert!(
            min >= rtt && min <= rtt + Duration::from_millis(15),
            "smallest round trip {min:?}"
        );
    }

    /// The path gets faster: the window follows it up (it probes); slower:
    /// the queue is drained within a few seconds.
    #[test]
    fn the_window_follows_the_path_up_and_down() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(40);
        let mut path = Path {
            rate: 50_000.0,
            rtt,
            drained_at: t0,
            pongs: Vec::new(),
            voice: true,
        };
        let mut flow = Flow::default();
        drive(&mut flow, &mut path, t0, 5, 2_000);
        path.rate = 250_000.0;
        let t1 = t0 + Duration::from_secs(5);
        drive(&mut flow, &mut path, t1, 8, 2_000);
        let up = flow.state().rate.expect("measured");
        assert!(up > 200_000.0, "found {up} of 250000");
        path.rate = 25_000.0;
        let t2 = t1 + Duration::from_secs(8);
        let worst = drive(&mut flow, &mut path, t2, 10, 2_000);
        let down = flow.state().rate.expect("measured");
        assert!(down < 40_000.0, "still {down}");
        assert!(worst < Duration::from_millis(400), "{worst:?}");
    }

    /// A path too thin for the video offered (each frame 135 ms on it):
    /// video pauses, but for one frame every ten seconds that looks for
    /// room, so voice never waits long behind video.
    #[test]
    fn video_pauses_on_a_path_too_thin_for_it() {
        let t0 = Instant::now();
        let mut path = Path {
            rate: 20_000.0, // 160 kbit/s
            rtt: Duration::from_millis(160),
            drained_at: t0,
            pongs: Vec::new(),
            voice: true,
        };
        let mut flow = Flow::default();
        drive(&mut flow, &mut path, t0, 5, 2_700);
        assert!(flow.video_paused());
        let sent_before = flow.written;
        let t1 = t0 + Duration::from_secs(5);
        let worst = drive(&mut flow, &mut path, t1, 25, 2_700);
        let frames = (flow.written - sent_before) / 2_700;
        assert!((2..=4).contains(&frames), "{frames} frames in 25 s");
        // Behind at most the one probing frame (135 ms), now and then.
        assert!(worst <= Duration::from_millis(150), "{worst:?}");
    }

    /// The same thin path without voice: nothing to protect, so video
    /// goes on, slowly, rather than pausing.
    #[test]
    fn without_voice_a_thin_path_still_carries_video() {
        let t0 = Instant::now();
        let mut path = Path {
            rate: 20_000.0,
            rtt: Duration::from_millis(160),
            drained_at: t0,
            pongs: Vec::new(),
            voice: false,
        };
        let mut flow = Flow::default();
        drive(&mut flow, &mut path, t0, 5, 2_700);
        assert!(!flow.video_paused());
        let sent_before = flow.written;
        drive(&mut flow, &mut path, t0 + Duration::from_secs(5), 10, 2_700);
        let fps = (flow.written - sent_before) as f64 / 2_700.0 / 10.0;
        // The path carries 7.4 frames a second; ack-clocked over a 160 ms
        // round trip, about half of that (paused, it would be 0.1).
        assert!(fps >= 2.5, "{fps:.1} fps");
        // Then voice starts: video pauses for it.
        path.voice = true;
        drive(&mut flow, &mut path, t0 + Duration::from_secs(15), 1, 2_700);
        assert!(flow.video_paused());
    }

    #[test]
    fn a_big_message_goes_alone_and_pongs_of_others_are_ignored() {
        let t0 = Instant::now();
        let mut flow = Flow::default();
        // Nothing is probed before video is offered...
        flow.on_write(100);
        assert!(flow.probe(t0).is_none(), "only the welcome so far");
        // ...then first the empty path is measured.
        assert!(!flow.media_room(100, t0));
        let p = flow.probe(t0).expect("an empty-path probe");
        assert!(flow.on_pong(&p, t0 + Duration::from_millis(20)));
        assert!(flow.media_room(1 << 20, t0), "nothing in flight");
        flow.on_write(1 << 20);
        assert!(!flow.media_room(10, t0));
        assert!(!flow.on_pong(&[], t0), "a liveness pong");
        assert!(!flow.on_pong(&[0; 8], t0), "no such probe");
        let t1 = t0 + Duration::from_millis(100);
        let p = flow.probe(t1).expect("due");
        assert!(flow.probe(t1).is_none(), "nothing new written");
        assert!(flow.on_pong(&p, t1 + Duration::from_millis(30)));
        assert_eq!(flow.in_flight(), 0);
        assert!(flow.media_room(10, t1));
    }
}
