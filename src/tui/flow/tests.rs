//! The window against scripted links: a rate, a delay, answers.
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
