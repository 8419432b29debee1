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
    /// Starts over (the terminal was given away and is back: answers to
    /// queries in flight were discarded with the input).
    pub fn reset(&mut self) {
        *self = FlowControl::new(self.config);
    }

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
mod tests;
