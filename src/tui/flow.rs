//! Closed-loop output to the terminal (DESIGN.md §4): a congestion window
//! between the renderer and whatever displays its bytes.
//!
//! A write to a pty returns as soon as the kernel has the bytes; behind it
//! sit sshd's channel window, socket buffers and the network, seconds of
//! output where nothing can drop a stale frame. So write time says nothing.
//! Instead each frame ends in a DA1 query (`CSI c`, big frames have more
//! between their cells), which a terminal answers only after processing
//! everything before it:
//!
//! - a bare query sent onto an idle path measures the path's round trip
//!   (bare, because SSH delivers a frame and a query inside it as one
//!   packet: only an empty one crosses in no time);
//! - while the path stays busy (the next bytes were already on their way
//!   when the last ones arrived), bytes acknowledged over time is its drain
//!   rate. Measured over spans of several packets, so SSH's packets (a
//!   frame can arrive as one burst) and sparse frames don't skew it.
//!
//! The renderer then keeps `rate × (min RTT + target)` bytes in flight:
//! about one frame of queue, whatever the link. A terminal that never
//! answers gets open-loop pacing.
//!
//! Sans-I/O: the caller passes the time in, so this is tested with a
//! scripted clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The query around every frame: DA1, "who are you?". Every terminal (and
/// tmux, screen, mosh) answers it, after the output before it.
pub const QUERY: &[u8] = b"\x1b[c";

#[derive(Debug, Clone, Copy)]
pub struct FlowConfig {
    /// Queueing delay the window allows on top of the round trip.
    pub target_delay: Duration,
    /// Bytes allowed in flight before the drain rate is known.
    pub initial_window: usize,
    /// The window never shrinks below this.
    pub min_window: usize,
    /// No answer at all within this long: the terminal doesn't answer.
    pub first_reply_timeout: Duration,
    /// An answer overdue this long (and at least 8 round trips) is
    /// presumed lost; what was in flight is written off.
    pub stall_timeout: Duration,
    /// How long drain-rate samples count.
    pub rate_window: Duration,
    /// How long round-trip samples count.
    pub rtt_window: Duration,
    /// Ask the terminal at all (off: open-loop pacing from the start).
    pub queries: bool,
}

impl Default for FlowConfig {
    fn default() -> Self {
        FlowConfig {
            target_delay: Duration::from_millis(40),
            initial_window: 24 * 1024,
            min_window: 2 * 1024,
            // The first window at 64 kbit/s takes 3 s to drain: be patient.
            first_reply_timeout: Duration::from_secs(6),
            stall_timeout: Duration::from_secs(4),
            rate_window: Duration::from_secs(3),
            rtt_window: Duration::from_secs(15),
            queries: true,
        }
    }
}

impl FlowConfig {
    /// Defaults, with `STREAMFLOW_TTY_QUERIES=0` turning queries off (for
    /// a terminal that mishandles them, and for comparisons).
    pub fn from_env() -> Self {
        FlowConfig {
            queries: std::env::var("STREAMFLOW_TTY_QUERIES").map_or(true, |v| v != "0"),
            ..FlowConfig::default()
        }
    }
}

/// A span must last this long (and half a round trip), and cover this many
/// bytes, to measure the drain rate: answers come back in bursts, one per
/// packet that reached the terminal (a TCP segment takes 45 ms at
/// 256 kbit/s), so a span must hold many packets to be accurate.
const MIN_SPAN: Duration = Duration::from_millis(60);
const MIN_SPAN_BYTES: u64 = 24 * 1024;
/// Queries inside big frames are at least this far apart.
const MIN_CHUNK: usize = 256;
/// Drain-rate samples kept at most.
const MAX_RATE_SAMPLES: usize = 16;
/// A busy path never shows its bare round trip; this often, the window
/// lets it drain once (about one round trip without new video) and a bare
/// query measures it (BBR's ProbeRTT).
const PROBE_RTT_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Queries sent, no answer yet.
    Probing,
    /// Answers arrive: the window is in force.
    Closed,
    /// The terminal doesn't answer: pace on write time instead.
    Open,
}

/// Something to tell the user once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowNotice {
    /// No answer to the first queries: open-loop from now on.
    NoReplies,
    /// Answers arrive after all (a slow first paint): closed loop again.
    RepliesResumed,
}

/// One query in flight.
#[derive(Debug, Clone, Copy)]
struct Probe {
    /// Bytes written up to and including this query.
    end: u64,
    sent_at: Instant,
    kind: ProbeKind,
}

#[derive(Debug, Clone, Copy)]
enum ProbeKind {
    /// A query alone on an idle path: its answer is the round trip.
    Bare,
    /// Inside a big frame: acknowledges its first part early, so the
    /// window reopens before the whole frame has drained.
    Mid,
    /// Ends a frame.
    End,
}

/// What the status line and benchmarks show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowStatus {
    pub mode: Mode,
    /// Smoothed round trip of frames to the terminal (queue included):
    /// about what a key press waits.
    pub rtt: Option<Duration>,
    /// The path's round trip without queue.
    pub min_rtt: Option<Duration>,
    /// Measured drain rate, bytes per second (0 until measured).
    pub rate: f64,
    /// Bytes acknowledged per second lately (what was sent, not what fits).
    pub throughput: f64,
    pub in_flight: usize,
    pub window: usize,
}

pub struct FlowControl {
    config: FlowConfig,
    mode: Mode,
    written: u64,
    acked: u64,
    probes: VecDeque<Probe>,
    /// The current span: (answer time and bytes acknowledged at its
    /// start, busy so far).
    span: Option<(Instant, u64, bool)>,
    /// Bytes acknowledged in the last second, for the status line while
    /// the drain rate is unmeasured (a path that is never busy is fast).
    throughput: Throughput,
    rate_samples: VecDeque<(Instant, f64)>,
    rate: f64,
    rtt_samples: VecDeque<(Instant, Duration)>,
    min_rtt: Option<Duration>,
    srtt: Option<Duration>,
    first_probe_at: Option<Instant>,
    replies: u64,
    stalls_in_a_row: u32,
    /// When a frame last went out onto an idle path (a clean round trip).
    last_idle_send: Option<Instant>,
    /// Holding video until the path is idle, to measure the round trip.
    draining: bool,
}

impl FlowControl {
    pub fn new(config: FlowConfig) -> Self {
        FlowControl {
            mode: if config.queries {
                Mode::Probing
            } else {
                Mode::Open
            },
            config,
            written: 0,
            acked: 0,
            probes: VecDeque::new(),
            span: None,
            throughput: Throughput::default(),
            rate_samples: VecDeque::new(),
            rate: 0.0,
            rtt_samples: VecDeque::new(),
            min_rtt: None,
            srtt: None,
            first_probe_at: None,
            replies: 0,
            stalls_in_a_row: 0,
            last_idle_send: None,
            draining: false,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Bytes handed to the terminal so far.
    pub fn sent_total(&self) -> u64 {
        self.written
    }

    pub fn in_flight(&self) -> usize {
        (self.written - self.acked) as usize
    }

    /// `rate × (min RTT + target)`: a round trip's worth of bytes to keep
    /// the path busy, plus `target` of queue.
    pub fn window(&self) -> usize {
        if self.rate <= 0.0 {
            return self.config.initial_window;
        }
        let rtt = self.min_rtt.unwrap_or(Duration::ZERO);
        let bdp = self.rate * (rtt + self.config.target_delay).as_secs_f64();
        (bdp as usize).max(self.config.min_window)
    }

    /// Bytes the next frame may add. Unlimited in open-loop mode (pacing is
    /// then the renderer's job); none while draining to measure the RTT.
    pub fn budget(&self) -> usize {
        match self.mode {
            Mode::Open => usize::MAX,
            _ if self.draining && self.in_flight() > 0 => 0,
            _ => self.window().saturating_sub(self.in_flight()),
        }
    }

    /// A round trip should be measured now: none yet, or a probe is due,
    /// and nothing is in flight.
    pub fn wants_bare_probe(&self) -> bool {
        self.mode != Mode::Open
            && self.in_flight() == 0
            && (self.min_rtt.is_none() || self.draining)
            && self.probes.is_empty()
    }

    /// A query alone, to write now (the path is idle): measures the round
    /// trip.
    pub fn bare_probe(&mut self, now: Instant) -> Vec<u8> {
        self.first_probe_at.get_or_insert(now);
        self.written += QUERY.len() as u64;
        self.probes.push_back(Probe {
            end: self.written,
            sent_at: now,
            kind: ProbeKind::Bare,
        });
        self.last_idle_send = Some(now);
        self.draining = false;
        QUERY.to_vec()
    }

    /// Ends a frame with a query (unless the terminal doesn't answer) and
    /// counts it as sent: the caller writes exactly the returned bytes.
    /// `splits` are offsets in `body` where more queries may go (between
    /// cells); big frames get one every quarter window or so.
    pub fn frame(&mut self, body: Vec<u8>, splits: &[usize], now: Instant) -> Vec<u8> {
        if self.mode == Mode::Open {
            self.written += body.len() as u64;
            self.acked = self.written;
            return body;
        }
        self.first_probe_at.get_or_insert(now);
        let mut out = Vec::with_capacity(body.len() + 2 * QUERY.len());
        let chunk = (self.window() / 4).max(MIN_CHUNK);
        let mut copied = 0;
        for &split in splits {
            if split <= copied || split >= body.len() || split - copied < chunk {
                continue;
            }
            out.extend_from_slice(&body[copied..split]);
            out.extend_from_slice(QUERY);
            self.written += (split - copied + QUERY.len()) as u64;
            copied = split;
            self.probes.push_back(Probe {
                end: self.written,
                sent_at: now,
                kind: ProbeKind::Mid,
            });
        }
        out.extend_from_slice(&body[copied..]);
        out.extend_from_slice(QUERY);
        self.written += (body.len() - copied + QUERY.len()) as u64;
        self.probes.push_back(Probe {
            end: self.written,
            sent_at: now,
            kind: ProbeKind::End,
        });
        // Bounded whatever happens: the oldest queries are written off.
        while self.probes.len() > 1024 {
            if let Some(old) = self.probes.pop_front() {
                self.acked = self.acked.max(old.end);
            }
        }
        out
    }

    /// The terminal answered the oldest query still in flight.
    pub fn on_reply(&mut self, now: Instant) -> Option<FlowNotice> {
        let probe = self.probes.pop_front()?;
        self.replies += 1;
        self.stalls_in_a_row = 0;
        self.acked = self.acked.max(probe.end);
        let notice = (self.mode == Mode::Open).then_some(FlowNotice::RepliesResumed);
        self.mode = Mode::Closed;
        let rtt = now.saturating_duration_since(probe.sent_at);
        match probe.kind {
            ProbeKind::Bare => {
                push_sample(&mut self.rtt_samples, now, rtt, self.config.rtt_window, 64);
                self.min_rtt = self.rtt_samples.iter().map(|(_, r)| *r).min();
                self.srtt.get_or_insert(rtt);
            }
            ProbeKind::Mid => {}
            ProbeKind::End => {
                // What a key press waits, roughly: queue, frame, path.
                self.srtt = Some(match self.srtt {
                    Some(s) => (s * 7 + rtt) / 8,
                    None => rtt,
                });
                self.measure_rate(now);
            }
        }
        self.throughput.add(probe.end, now);
        notice
    }

    /// Spans from one frame's end to a later one's (whole frames, since a
    /// frame may arrive as one burst with all its answers). Over a busy
    /// span, where the next frame was already on its way whenever a frame
    /// had drained (sent a round trip before its answer came back:
    /// wherever the bottleneck is, the frame drained no earlier than
    /// that), bytes answered over time is the drain rate. A span with idle
    /// time only gives a lower bound, used when it beats the estimate: so
    /// a window that starts small, or a link that got faster, is found out
    /// (each round trip the window grows by (RTT + target) / RTT).
    fn measure_rate(&mut self, now: Instant) {
        let rtt = self.min_rtt.or(self.srtt).unwrap_or(Duration::ZERO);
        let still_busy = self
            .probes
            .front()
            .is_some_and(|next| next.sent_at + rtt <= now);
        let min_span = MIN_SPAN.max(rtt / 2);
        let Some((since, acked, busy)) = self.span else {
            self.span = Some((now, self.acked, still_busy));
            return;
        };
        let elapsed = now.saturating_duration_since(since);
        if elapsed < min_span || self.acked - acked < MIN_SPAN_BYTES {
            self.span = Some((since, acked, busy && still_busy));
            return;
        }
        let sample = (self.acked - acked) as f64 / elapsed.as_secs_f64();
        if busy || sample > self.rate {
            self.on_rate_sample(sample, now);
        }
        self.span = Some((now, self.acked, still_busy));
    }

    fn on_rate_sample(&mut self, sample: f64, now: Instant) {
        // A standing queue well past the target means the link got slower
        // than the older samples say: keep only the new one.
        let queue = match (self.srtt, self.min_rtt) {
            (Some(s), Some(m)) => s.saturating_sub(m),
            _ => Duration::ZERO,
        };
        if queue > self.config.target_delay * 4 && sample < self.rate {
            self.rate_samples.clear();
        }
        push_sample(
            &mut self.rate_samples,
            now,
            sample,
            self.config.rate_window,
            MAX_RATE_SAMPLES,
        );
        if let Some(max) = self.rate_samples.iter().map(|(_, r)| *r).reduce(f64::max) {
            self.rate = max;
        }
    }

    /// Timers: the first-answer deadline, round-trip probing and overdue
    /// answers.
    pub fn tick(&mut self, now: Instant) -> Option<FlowNotice> {
        if self.mode == Mode::Closed
            && self
                .last_idle_send
                .is_some_and(|t| now.saturating_duration_since(t) >= PROBE_RTT_EVERY)
        {
            self.draining = true;
        }
        if self.mode == Mode::Probing && self.replies == 0 {
            if let Some(first) = self.first_probe_at {
                if now.saturating_duration_since(first) >= self.config.first_reply_timeout {
                    self.fall_back();
                    return Some(FlowNotice::NoReplies);
                }
            }
            return None;
        }
        if self.mode != Mode::Closed {
            return None;
        }
        let overdue = self
            .config
            .stall_timeout
            .max(self.srtt.unwrap_or(Duration::ZERO) * 8);
        let stalled = self
            .probes
            .front()
            .is_some_and(|p| now.saturating_duration_since(p.sent_at) >= overdue);
        if stalled {
            // Written off: assume delivered, and slow down by half.
            self.probes.clear();
            self.span = None;
            self.acked = self.written;
            self.rate /= 2.0;
            self.rate_samples.clear();
            self.stalls_in_a_row += 1;
            if self.stalls_in_a_row >= 3 {
                self.fall_back();
                return Some(FlowNotice::NoReplies);
            }
        }
        None
    }

    /// Open loop: nothing counts as in flight. The queries already sent
    /// stay listed, so a late answer to one brings the closed loop back.
    fn fall_back(&mut self) {
        self.mode = Mode::Open;
        self.acked = self.written;
    }

    pub fn status(&self) -> FlowStatus {
        FlowStatus {
            mode: self.mode,
            rtt: self.srtt,
            min_rtt: self.min_rtt,
            rate: self.rate,
            throughput: self.throughput.rate,
            in_flight: self.in_flight(),
            window: self.window(),
        }
    }
}

/// Bytes acknowledged per second, over whole seconds.
#[derive(Default)]
struct Throughput {
    since: Option<(Instant, u64)>,
    rate: f64,
}

impl Throughput {
    fn add(&mut self, acked: u64, now: Instant) {
        match self.since {
            Some((t, a)) if now.saturating_duration_since(t) >= Duration::from_secs(1) => {
                self.rate = (acked - a) as f64 / now.saturating_duration_since(t).as_secs_f64();
                self.since = Some((now, acked));
            }
            Some(_) => {}
            None => self.since = Some((now, acked)),
        }
    }
}

fn push_sample<T>(
    samples: &mut VecDeque<(Instant, T)>,
    now: Instant,
    value: T,
    window: Duration,
    max: usize,
) {
    while samples
        .front()
        .is_some_and(|(t, _)| now.saturating_duration_since(*t) > window)
    {
        samples.pop_front();
    }
    samples.push_back((now, value));
    while samples.len() > max {
        samples.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted path: `rate` bytes/s, `delay` each way, FIFO; a query is
    /// answered when the bytes up to it have drained and crossed the link,
    /// and the answer reaches us `delay` later.
    struct Link {
        rate: f64,
        delay: Duration,
        /// When the path finishes draining what is queued so far.
        free_at: Instant,
        replies: VecDeque<Instant>,
    }

    impl Link {
        fn new(rate: f64, delay_ms: u64, now: Instant) -> Self {
            Link {
                rate,
                delay: Duration::from_millis(delay_ms),
                free_at: now,
                replies: VecDeque::new(),
            }
        }

        fn send(&mut self, bytes: &[u8], now: Instant) {
            let mut at = self.free_at.max(now);
            let mut i = 0;
            while i < bytes.len() {
                let query = bytes[i..].starts_with(QUERY);
                let n = if query { QUERY.len() } else { 1 };
                at += Duration::from_secs_f64(n as f64 / self.rate);
                if query {
                    self.replies.push_back(at + self.delay * 2);
                }
                i += n;
            }
            self.free_at = at;
        }

        /// Answers due by `now`, handed to `flow` at their arrival time.
        fn deliver(&mut self, flow: &mut FlowControl, now: Instant) {
            while let Some(at) = self.replies.front().copied().filter(|t| *t <= now) {
                self.replies.pop_front();
                flow.on_reply(at);
            }
        }

        fn queue(&self, now: Instant) -> Duration {
            self.free_at.saturating_duration_since(now)
        }
    }

    /// A split point every 500 bytes, as cells would give.
    fn splits(len: usize) -> Vec<usize> {
        (500..len).step_by(500).collect()
    }

    /// A sender with `frame` bytes of picture changes whenever it may send,
    /// at most 30 frames a second, for `secs`; returns the flow and the
    /// queue each frame found ahead of it.
    fn run(rate: f64, delay_ms: u64, frame: usize, secs: u64) -> (FlowControl, Vec<Duration>) {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        let mut link = Link::new(rate, delay_ms, t0);
        let mut now = t0;
        let mut next_frame = t0;
        let mut queueing = Vec::new();
        while now < t0 + Duration::from_secs(secs) {
            link.deliver(&mut flow, now);
            flow.tick(now);
            if flow.wants_bare_probe() {
                let probe = flow.bare_probe(now);
                link.send(&probe, now);
            }
            if now >= next_frame {
                let bytes = frame.min(flow.budget());
                if bytes >= 256 {
                    queueing.push(link.queue(now));
                    let wire = flow.frame(vec![b'x'; bytes], &splits(bytes), now);
                    link.send(&wire, now);
                    next_frame = now + Duration::from_millis(33);
                }
            }
            now += Duration::from_millis(1);
        }
        (flow, queueing)
    }

    #[test]
    fn finds_each_rate_from_a_standing_start_and_fills_it() {
        // As the renderer sends: a bare probe when idle, otherwise at most a
        // frame every 33 ms, as big as the window lets it be.
        for rate in [32_000.0, 125_000.0, 500_000.0, 2_000_000.0] {
            let t0 = Instant::now();
            let mut flow = FlowControl::new(FlowConfig::default());
            let mut link = Link::new(rate, 20, t0);
            let mut now = t0;
            let mut next_frame = t0;
            let mut sent = 0usize;
            while now < t0 + Duration::from_secs(15) {
                link.deliver(&mut flow, now);
                flow.tick(now);
                if flow.wants_bare_probe() {
                    let probe = flow.bare_probe(now);
                    link.send(&probe, now);
                } else if now >= next_frame && flow.budget() >= 768 {
                    let n = flow.budget().min(100_000);
                    let wire = flow.frame(vec![b'x'; n], &splits(n), now);
                    if now >= t0 + Duration::from_secs(5) {
                        sent += wire.len();
                    }
                    link.send(&wire, now);
                    next_frame = now + Duration::from_millis(33);
                }
                now += Duration::from_millis(1);
            }
            let estimate = flow.status().rate;
            assert!(
                (estimate - rate).abs() <= rate * 0.1,
                "{rate}: estimated {estimate:.0}"
            );
            let used = sent as f64 / (rate * 10.0);
            assert!(used >= 0.85, "{rate}: used {:.0}%", used * 100.0);
        }
    }

    #[test]
    fn learns_the_drain_rate_and_round_trip() {
        // 1 Mbit/s, 20 ms each way, more to send than the link takes.
        let (flow, _) = run(125_000.0, 20, 40_000, 10);
        let s = flow.status();
        assert_eq!(s.mode, Mode::Closed);
        assert!(
            (110_000.0..=140_000.0).contains(&s.rate),
            "rate {:.0} B/s",
            s.rate
        );
        let rtt = s.min_rtt.unwrap();
        assert!(
            rtt >= Duration::from_millis(38) && rtt <= Duration::from_millis(50),
            "{rtt:?}"
        );
    }

    #[test]
    fn sparse_frames_are_never_held_back() {
        // 4 Mbit/s, frames of 6 KB at 30 fps: the link idles between
        // frames. What went through is only a lower bound on the rate; the
        // window must still always fit a whole frame, and never claim more
        // than the link.
        let t0 = Instant::now();
        let rate = 500_000.0;
        let mut flow = FlowControl::new(FlowConfig::default());
        let mut link = Link::new(rate, 20, t0);
        let mut now = t0;
        let mut next_frame = t0;
        let mut cut = 0;
        while now < t0 + Duration::from_secs(8) {
            link.deliver(&mut flow, now);
            flow.tick(now);
            if flow.wants_bare_probe() {
                let probe = flow.bare_probe(now);
                link.send(&probe, now);
            } else if now >= next_frame {
                // (While the path drains for a round-trip probe, video
                // waits a round trip: at most one frame each 5 s.)
                let n = 6_000.min(flow.budget());
                if n < 6_000 && now > t0 + Duration::from_secs(1) {
                    cut += 1;
                }
                if n > 0 {
                    let wire = flow.frame(vec![b'x'; n], &splits(n), now);
                    link.send(&wire, now);
                }
                next_frame = now + Duration::from_millis(33);
            }
            now += Duration::from_millis(1);
        }
        assert!(cut <= 3, "{cut} frames cut short");
        assert!(flow.status().rate <= rate * 1.1);
        assert!(link.queue(now) < Duration::from_millis(20));
    }

    #[test]
    fn whole_frame_bursts_still_measure_the_rate() {
        // SSH delivers a frame as one packet: every answer in it arrives at
        // once, when the packet has crossed the link.
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        let rate = 125_000.0;
        let delay = Duration::from_millis(20);
        let mut free_at = t0;
        let mut replies: VecDeque<(Instant, usize)> = VecDeque::new();
        let mut now = t0;
        while now < t0 + Duration::from_secs(8) {
            while let Some((at, n)) = replies.front().copied().filter(|(t, _)| *t <= now) {
                replies.pop_front();
                for _ in 0..n {
                    flow.on_reply(at);
                }
            }
            let budget = flow.budget();
            if budget >= 1024 {
                let n = budget.min(6_000);
                let wire = if flow.wants_bare_probe() {
                    flow.bare_probe(now)
                } else {
                    flow.frame(vec![b'x'; n], &splits(n), now)
                };
                let queries = (0..wire.len())
                    .filter(|&i| wire[i..].starts_with(QUERY))
                    .count();
                free_at = free_at.max(now) + Duration::from_secs_f64(wire.len() as f64 / rate);
                replies.push_back((free_at + delay * 2, queries));
            }
            now += Duration::from_millis(1);
        }
        let r = flow.status().rate;
        assert!((110_000.0..=135_000.0).contains(&r), "rate {r:.0}");
    }

    #[test]
    fn queueing_stays_near_the_target_on_thin_and_thick_links() {
        for (rate, delay) in [(32_000.0, 20), (125_000.0, 20), (500_000.0, 20), (5e6, 1)] {
            let (_, queueing) = run(rate, delay, 60_000, 12);
            // After the first seconds (the initial window may overshoot).
            let settled = &queueing[queueing.len() / 2..];
            let worst = settled.iter().max().copied().unwrap_or_default();
            assert!(
                worst <= Duration::from_millis(100),
                "rate {rate}: queue up to {worst:?}"
            );
        }
    }

    #[test]
    fn uses_most_of_the_link() {
        let t0 = Instant::now();
        let rate = 125_000.0;
        let mut flow = FlowControl::new(FlowConfig::default());
        let mut link = Link::new(rate, 20, t0);
        let mut sent = 0usize;
        let mut now = t0;
        let end = t0 + Duration::from_secs(10);
        while now < end {
            link.deliver(&mut flow, now);
            if flow.wants_bare_probe() {
                let probe = flow.bare_probe(now);
                link.send(&probe, now);
            }
            let budget = flow.budget();
            if budget >= 1024 {
                let n = budget.min(8 * 1024);
                let wire = flow.frame(vec![b'x'; n], &splits(n), now);
                link.send(&wire, now);
                if now > t0 + Duration::from_secs(2) {
                    sent += wire.len();
                }
            }
            now += Duration::from_millis(2);
        }
        let utilisation = sent as f64 / (rate * 8.0);
        assert!(utilisation >= 0.85, "used {:.0}%", utilisation * 100.0);
    }

    #[test]
    fn follows_a_link_that_gets_slower() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        let mut link = Link::new(500_000.0, 20, t0);
        let mut now = t0;
        let mut worst_late = Duration::ZERO;
        while now < t0 + Duration::from_secs(20) {
            if now == t0 + Duration::from_secs(8) {
                link.rate = 60_000.0;
            }
            link.deliver(&mut flow, now);
            flow.tick(now);
            if flow.wants_bare_probe() {
                let probe = flow.bare_probe(now);
                link.send(&probe, now);
            }
            let budget = flow.budget();
            if budget >= 512 {
                let n = budget.min(16 * 1024);
                let wire = flow.frame(vec![b'x'; n], &splits(n), now);
                link.send(&wire, now);
            }
            if now > t0 + Duration::from_secs(12) {
                worst_late = worst_late.max(link.queue(now));
            }
            now += Duration::from_millis(5);
        }
        let rate = flow.status().rate;
        assert!((50_000.0..=70_000.0).contains(&rate), "rate {rate:.0}");
        assert!(
            worst_late <= Duration::from_millis(100),
            "queue {worst_late:?}"
        );
    }

    #[test]
    fn a_terminal_that_never_answers_means_open_loop_once() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        assert_eq!(flow.budget(), FlowConfig::default().initial_window);
        assert!(flow.wants_bare_probe());
        assert_eq!(flow.bare_probe(t0), QUERY);
        assert!(!flow.wants_bare_probe(), "one at a time");
        let wire = flow.frame(vec![b'x'; 20_000], &[], t0);
        assert_eq!(wire.len(), 20_003);
        assert!(wire.ends_with(QUERY));
        assert!(flow.budget() < 5_000, "window in force while probing");
        assert_eq!(flow.tick(t0 + Duration::from_secs(5)), None);
        assert_eq!(
            flow.tick(t0 + Duration::from_secs(6)),
            Some(FlowNotice::NoReplies)
        );
        assert_eq!(flow.mode(), Mode::Open);
        assert_eq!(flow.budget(), usize::MAX);
        assert_eq!(flow.tick(t0 + Duration::from_secs(60)), None, "said once");
        let wire = flow.frame(vec![b'x'; 1_000], &[], t0 + Duration::from_secs(61));
        assert_eq!(wire.len(), 1_000, "no more queries");
        assert_eq!(flow.in_flight(), 0);
    }

    #[test]
    fn a_slow_first_answer_restores_the_closed_loop() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        flow.frame(vec![b'x'; 20_000], &[], t0);
        assert_eq!(
            flow.tick(t0 + Duration::from_secs(7)),
            Some(FlowNotice::NoReplies)
        );
        assert_eq!(
            flow.on_reply(t0 + Duration::from_secs(8)),
            Some(FlowNotice::RepliesResumed)
        );
        assert_eq!(flow.mode(), Mode::Closed);
        assert_eq!(flow.frame(vec![b'x'; 10], &[], t0).len(), 13);
    }

    #[test]
    fn overdue_answers_are_written_off_and_slow_the_sender() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        let mut link = Link::new(100_000.0, 10, t0);
        let mut now = t0;
        while now < t0 + Duration::from_secs(2) {
            link.deliver(&mut flow, now);
            if flow.wants_bare_probe() {
                let probe = flow.bare_probe(now);
                link.send(&probe, now);
            }
            let budget = flow.budget();
            if budget > 1024 {
                let wire = flow.frame(vec![b'x'; budget], &splits(budget), now);
                link.send(&wire, now);
            }
            now += Duration::from_millis(2);
        }
        let before = flow.status().rate;
        assert!(before > 50_000.0, "{before}");
        // No more answers: the terminal is stuck (or they were lost).
        flow.tick(now + Duration::from_secs(5));
        assert_eq!(flow.in_flight(), 0);
        assert!(flow.status().rate <= before / 2.0 + 1.0);
        assert_eq!(flow.mode(), Mode::Closed);
    }

    #[test]
    fn big_frames_get_queries_between_cells() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        // Window 24 KiB: a query every 6 KiB, only at the split points.
        let wire = flow.frame(vec![b'x'; 20_000], &splits(20_000), t0);
        let queries: Vec<usize> = (0..wire.len())
            .filter(|&i| wire[i..].starts_with(QUERY))
            .collect();
        assert_eq!(queries.len(), 4, "{queries:?}");
        assert_eq!(queries[0], 6_500);
        assert_eq!(queries[1], 3 + 13_000);
        assert_eq!(wire.len(), 20_000 + 4 * QUERY.len());
        assert_eq!(flow.in_flight(), wire.len());
    }

    #[test]
    fn stray_replies_are_harmless() {
        let t0 = Instant::now();
        let mut flow = FlowControl::new(FlowConfig::default());
        assert_eq!(flow.on_reply(t0), None);
        assert_eq!(flow.in_flight(), 0);
        assert_eq!(flow.mode(), Mode::Probing);
    }
}
