//! `bench tty`: the real TUI (`streamflow demo`) on the far side of a thin
//! terminal link, as a user over SSH sees it.
//!
//! The demo runs under a pty. What it writes crosses an emulated link (a
//! queue like sshd's window, then `--rate` and `--delay`) to a terminal
//! model (vt100) that answers its queries like a terminal would: after the
//! bytes before them have arrived, one `--delay` back. A typist presses
//! keys in the chat box and times each until its effect is on that screen;
//! frames shown and the age of the shown video are counted too (the age
//! from the renderer's trace: written when, how old then, arrived when).
//!
//! `--via ssh` does the same through real OpenSSH, with tmux as the
//! terminal ([`ssh`]).

pub mod observer;
pub mod ssh;

pub use crate::share::pty;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use super::stats::{quantile, Report};
use observer::Observer;

#[derive(Args)]
pub struct TtyArgs {
    /// Link rate toward the terminal, e.g. 1mbit, 256kbit, 4mbit (0 =
    /// unshaped).
    #[arg(long, default_value = "1mbit", value_parser = parse_rate)]
    rate: f64,
    /// One-way delay, each direction (e.g. 20ms).
    #[arg(long, default_value = "20ms", value_parser = streamflow_relay::config::parse_duration)]
    delay: Duration,
    /// Terminal size in cells.
    #[arg(long, default_value = "160x48", value_parser = parse_cells)]
    size: (u16, u16),
    /// Seconds measured, after the call is up and settled: 20, 20s or 1m.
    #[arg(long, default_value = "20", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// The terminal never answers queries (the open-loop fallback).
    #[arg(long)]
    no_replies: bool,
    /// Run the TUI without terminal feedback (STREAMFLOW_TTY_QUERIES=0):
    /// the open-loop renderer, for comparison.
    #[arg(long)]
    open_loop: bool,
    /// Through an emulated pty link, or real OpenSSH (sshd on loopback, a
    /// shaping proxy, tmux as the terminal).
    #[arg(long, value_enum, default_value = "pty")]
    via: Via,
    /// Ada shares a terminal printing the time every 200 ms: how old
    /// the shared screen is on the far screen (sharer's pty → relay →
    /// renderer → link → terminal).
    #[arg(long)]
    share: bool,
    /// Video cells in the TUI (as its `--cells`): half, quadrant, sextant.
    #[arg(long, value_enum, default_value = "half")]
    cells: crate::tui::cells::CellsChoice,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// What Ada's shared terminal runs in `--share` trials: the time in
/// nanoseconds, read back off the far screen.
const SHARE_CLOCK: &str = "while :; do date +%s%N; sleep 0.2; done";

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    Pty,
    Ssh,
}

/// `1mbit`, `256kbit`, `4000000` (bit/s); `0` for unshaped. In bytes/s.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let t = text.trim().to_ascii_lowercase();
    let (num, mult) = if let Some(n) = t.strip_suffix("mbit") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix("kbit") {
        (n, 1e3)
    } else if let Some(n) = t.strip_suffix("bit") {
        (n, 1.0)
    } else {
        (t.as_str(), 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a rate like 1mbit, 256kbit or 0"))?;
    if !v.is_finite() || v < 0.0 {
        return Err("a rate is a positive number (0 = unshaped)".into());
    }
    Ok(v * mult / 8.0)
}

/// `160x48`: columns × rows.
pub fn parse_cells(text: &str) -> Result<(u16, u16), String> {
    let (c, r) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{text:?} is not COLSxROWS, e.g. 160x48"))?;
    let c: u16 = c
        .trim()
        .parse()
        .map_err(|_| format!("bad columns in {text:?}"))?;
    let r: u16 = r
        .trim()
        .parse()
        .map_err(|_| format!("bad rows in {text:?}"))?;
    if !(20..=1000).contains(&c) || !(8..=500).contains(&r) {
        return Err("terminal sizes are 20..1000 columns and 8..500 rows".into());
    }
    Ok((c, r))
}

/// One run of the demo behind a link.
#[derive(Clone)]
pub struct Trial {
    pub binary: PathBuf,
    /// Bytes per second toward the terminal (0 = unshaped).
    pub rate: f64,
    pub delay: Duration,
    pub cols: u16,
    pub rows: u16,
    pub settle: Duration,
    pub measure: Duration,
    pub answer_queries: bool,
    /// Extra environment for the TUI (e.g. `STREAMFLOW_TTY_QUERIES=0`).
    pub env: Vec<(String, String)>,
    /// Ada shares a terminal printing the time ([`SHARE_CLOCK`]).
    pub share: bool,
}

impl Trial {
    pub fn new(binary: PathBuf) -> Self {
        Trial {
            binary,
            rate: 125_000.0,
            delay: Duration::from_millis(20),
            cols: 160,
            rows: 48,
            settle: Duration::from_secs(3),
            measure: Duration::from_secs(20),
            answer_queries: true,
            env: Vec::new(),
            share: false,
        }
    }

    /// `demo` and its flags, as the trial runs it.
    pub fn demo_args(&self) -> Vec<String> {
        let mut args: Vec<String> = ["demo", "--audio-source", "none", "--audio-sink", "none"]
            .map(String::from)
            .to_vec();
        if self.share {
            args.extend(["--peer-share".to_string(), SHARE_CLOCK.to_string()]);
        }
        args
    }
}

/// What a trial measured.
#[derive(Debug, Default)]
pub struct TrialResult {
    pub key_ms: Vec<f64>,
    /// Age of the shared terminal's clock when it reached the far screen.
    pub share_ms: Vec<f64>,
    pub key_timeouts: u32,
    pub frames_shown: u32,
    pub ages_ms: Vec<f64>,
    /// Bytes per second delivered to the terminal while measuring.
    pub delivered_per_s: f64,
    /// The status line's `tty …` part at the end.
    pub tty_status: Option<String>,
    /// The TUI quit on `q` with exit code 0 and left the alternate screen.
    pub clean_exit: bool,
    /// The screen at the end of the measured window (for failures).
    pub screen: String,
    pub measured_secs: f64,
}

impl TrialResult {
    pub fn fps(&self) -> f64 {
        f64::from(self.frames_shown) / self.measured_secs.max(1e-9)
    }
}

/// The answer a terminal gives to DA1 (xterm's).
const DA1_REPLY: &[u8] = b"\x1b[?62;22c";
/// Output the path holds before the app's writes block (sshd's window).
const PATH_BUFFER: usize = 2 << 20;
/// Time allowed for the demo to come up.
const START_LIMIT: Duration = Duration::from_secs(60);

#[derive(PartialEq, Eq, Clone, Copy, Debug)]
enum Phase {
    Starting,
    Focusing,
    Settling,
    Measuring,
    Quitting,
}

/// The far side as the trial sees it: bytes arriving at the terminal, keys
/// going to the app.
pub trait FarEnd {
    /// Moves time on: bytes that reached the terminal now, handed to the
    /// observer (which answers queries where the far end is emulated).
    fn step(&mut self, obs: &mut Observer, now: Instant, measuring: bool) -> anyhow::Result<()>;
    /// The user presses `key` (bytes as a terminal sends them).
    fn press(&mut self, key: &[u8], now: Instant) -> anyhow::Result<()>;
    /// The app's exit status, once it has exited.
    fn exited(&mut self) -> anyhow::Result<Option<bool>>;
    /// Everything the app wrote has reached the terminal.
    fn drained(&self) -> bool;
}

/// Runs the demo behind an emulated link and measures it.
pub fn run_trial(t: &Trial) -> anyhow::Result<TrialResult> {
    let trace_path = std::env::temp_dir().join(format!(
        "streamflow-tty-trace-{}-{}",
        std::process::id(),
        crate::media::capture::now_us()
    ));
    let mut command = std::process::Command::new(&t.binary);
    command
        .args(t.demo_args())
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .env_remove("NO_COLOR")
        .env("STREAMFLOW_TTY_TRACE", &trace_path);
    for (k, v) in &t.env {
        command.env(k, v);
    }
    let pty = pty::Pty::spawn(command, t.cols, t.rows)?;
    let mut link = PtyLink::new(pty, t)?;
    let result = drive(t, &mut link, &trace_path);
    let _ = std::fs::remove_file(&trace_path);
    result
}

/// The emulated path: the pty's output queued (up to sshd's window), sent
/// at the link rate, delayed, and shown by the observer, which answers
/// queries one delay later.
struct PtyLink {
    pty: pty::Pty,
    queue: Arc<Mutex<(VecDeque<u8>, bool)>>,
    transit: VecDeque<(Instant, Vec<u8>)>,
    upstream: VecDeque<(Instant, Vec<u8>)>,
    link_free: Instant,
    rate: f64,
    delay: Duration,
    answer: bool,
}

impl PtyLink {
    fn new(pty: pty::Pty, t: &Trial) -> anyhow::Result<Self> {
        // Reader: the path's input side, eager up to PATH_BUFFER (then the
        // app's writes block, as on a full sshd window).
        let queue: Arc<Mutex<(VecDeque<u8>, bool)>> = Arc::default();
        let mut reader = pty.master.try_clone()?;
        let q = queue.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                while q.lock().map(|g| g.0.len() >= PATH_BUFFER).unwrap_or(false) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => match q.lock() {
                        Ok(mut g) => g.0.extend(&buf[..n]),
                        Err(_) => break,
                    },
                }
            }
            if let Ok(mut g) = q.lock() {
                g.1 = true; // closed
            }
        });
        Ok(PtyLink {
            pty,
            queue,
            transit: VecDeque::new(),
            upstream: VecDeque::new(),
            link_free: Instant::now(),
            rate: t.rate,
            delay: t.delay,
            answer: t.answer_queries,
        })
    }
}

impl FarEnd for PtyLink {
    fn step(&mut self, obs: &mut Observer, now: Instant, measuring: bool) -> anyhow::Result<()> {
        {
            let mut g = self
                .queue
                .lock()
                .map_err(|_| anyhow::anyhow!("reader died"))?;
            while !g.0.is_empty() && self.link_free <= now + Duration::from_millis(1) {
                let n = g.0.len().min(1024);
                let chunk: Vec<u8> = g.0.drain(..n).collect();
                let depart = self.link_free.max(now);
                self.link_free = if self.rate > 0.0 {
                    depart + Duration::from_secs_f64(n as f64 / self.rate)
                } else {
                    depart
                };
                self.transit.push_back((self.link_free + self.delay, chunk));
            }
        }
        while self.transit.front().is_some_and(|(at, _)| *at <= now) {
            let (_, bytes) = self.transit.pop_front().expect("front exists");
            let queries = obs.deliver(&bytes, now, measuring);
            if self.answer && queries > 0 {
                self.upstream
                    .push_back((now + self.delay, DA1_REPLY.repeat(queries as usize)));
            }
        }
        while self.upstream.front().is_some_and(|(at, _)| *at <= now) {
            let (_, bytes) = self.upstream.pop_front().expect("front exists");
            let _ = self.pty.master.write_all(&bytes);
        }
        Ok(())
    }

    fn press(&mut self, key: &[u8], now: Instant) -> anyhow::Result<()> {
        self.upstream.push_back((now + self.delay, key.to_vec()));
        Ok(())
    }

    fn exited(&mut self) -> anyhow::Result<Option<bool>> {
        Ok(self.pty.child.try_wait()?.map(|s| s.success()))
    }

    fn drained(&self) -> bool {
        self.transit.is_empty()
            && self
                .queue
                .lock()
                .map(|g| g.0.is_empty() && g.1)
                .unwrap_or(true)
    }
}

/// The trial itself: wait for the call, focus the chat box, settle, type
/// and measure, then quit with `q`.
pub fn drive(
    t: &Trial,
    far: &mut dyn FarEnd,
    trace_path: &std::path::Path,
) -> anyhow::Result<TrialResult> {
    let start = Instant::now();
    let mut obs = Observer::new(t.cols, t.rows, start);
    obs.trace = Some(observer::TraceReader::open(trace_path));
    let mut phase = Phase::Starting;
    let mut phase_at = start;
    let mut result = TrialResult::default();
    let mut exited: Option<bool> = None;
    let mut quit_sent = false;
    let mut share_clock = ShareClock::default();
    loop {
        let now = Instant::now();
        far.step(&mut obs, now, phase == Phase::Measuring)?;
        let screen = obs.contents();
        if t.share && phase == Phase::Measuring {
            share_clock.read(&screen, &mut result.share_ms);
        }
        match phase {
            Phase::Starting => {
                let video = screen.chars().any(observer::is_video_char);
                if video && ["Ada", "Grace", "Linus"].iter().all(|s| screen.contains(s)) {
                    far.press(b"\t", now)?;
                    phase = Phase::Focusing;
                    phase_at = now;
                } else if now.duration_since(start) > START_LIMIT {
                    anyhow::bail!("the demo did not come up within {START_LIMIT:?}:\n{screen}");
                }
            }
            Phase::Focusing => {
                if screen.contains("Enter sends") {
                    phase = Phase::Settling;
                    phase_at = now;
                } else if now.duration_since(phase_at) > Duration::from_secs(20) {
                    anyhow::bail!("Tab did not open the chat box:\n{screen}");
                }
            }
            Phase::Settling if now.duration_since(phase_at) >= t.settle => {
                phase = Phase::Measuring;
                phase_at = now;
                obs.typist.latencies.clear();
                obs.typist.timeouts = 0;
            }
            Phase::Measuring if now.duration_since(phase_at) >= t.measure => {
                result.measured_secs = now.duration_since(phase_at).as_secs_f64();
                result.screen = screen.clone();
                result.tty_status = obs.tty_status();
                phase = Phase::Quitting;
                phase_at = now;
                far.press(b"\x1b", now)?;
            }
            Phase::Quitting => {
                // q a moment after Esc, as a person types them.
                if !quit_sent && now.duration_since(phase_at) >= Duration::from_millis(150) {
                    far.press(b"q", now)?;
                    quit_sent = true;
                }
                if exited.is_none() {
                    exited = far.exited()?;
                }
                if (exited.is_some() && far.drained())
                    || now.duration_since(phase_at) > Duration::from_secs(15)
                {
                    break;
                }
            }
            _ => {}
        }
        if matches!(phase, Phase::Settling | Phase::Measuring) {
            if let Some(key) = obs.typist.next_key(now, phase == Phase::Measuring) {
                far.press(&key, now)?;
            }
        }
        if phase != Phase::Quitting {
            if let Some(ok) = far.exited()? {
                anyhow::bail!("the demo exited early (success: {ok}):\n{}", obs.contents());
            }
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    result.key_ms = obs
        .typist
        .latencies
        .iter()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    result.key_timeouts = obs.typist.timeouts;
    result.frames_shown = obs.frames_shown;
    result.ages_ms = std::mem::take(&mut obs.ages_ms);
    result.delivered_per_s = obs.delivered_measured as f64 / result.measured_secs.max(1e-9);
    result.clean_exit = exited == Some(true) && !obs.parser.screen().alternate_screen();

    Ok(result)
}

/// Reads the shared clock off the far screen: each newer time seen is a
/// sample of how old the shared screen is there.
#[derive(Default)]
struct ShareClock {
    newest: u64,
}

impl ShareClock {
    fn read(&mut self, screen: &str, ages: &mut Vec<f64>) {
        let now_ns = crate::media::capture::now_us() * 1000;
        let stamps = screen
            .split(|c: char| !c.is_ascii_digit())
            .filter(|w| w.len() == 19)
            .filter_map(|w| w.parse::<u64>().ok());
        if let Some(newest) = stamps.max().filter(|s| *s > self.newest) {
            if self.newest > 0 {
                ages.push(now_ns.saturating_sub(newest) as f64 / 1e6);
            }
            self.newest = newest;
        }
    }
}

pub async fn run(args: TtyArgs) -> anyhow::Result<()> {
    let binary = std::env::current_exe()?;
    let mut trial = Trial::new(binary);
    trial.rate = args.rate;
    trial.delay = args.delay;
    trial.cols = args.size.0;
    trial.rows = args.size.1;
    trial.measure = Duration::from_secs(args.seconds);
    trial.answer_queries = !args.no_replies;
    trial.share = args.share;
    let cells = <crate::tui::cells::CellsChoice as ValueEnum>::to_possible_value(&args.cells)
        .map(|v| v.get_name().to_string())
        .unwrap_or_default();
    trial.env.push(("STREAMFLOW_CELLS".into(), cells));
    if args.open_loop {
        trial
            .env
            .push(("STREAMFLOW_TTY_QUERIES".into(), "0".into()));
    }
    let via = args.via;
    let label = if trial.rate > 0.0 {
        format!("{:.2} Mbit/s", trial.rate * 8.0 / 1e6)
    } else {
        "unshaped".into()
    };
    eprintln!(
        "bench tty: demo at {}x{} behind {label}, {} ms each way, {} s measured…",
        trial.cols,
        trial.rows,
        trial.delay.as_millis(),
        args.seconds
    );
    let mut r = tokio::task::spawn_blocking(move || match via {
        Via::Pty => run_trial(&trial),
        Via::Ssh => ssh::run_trial(&trial),
    })
    .await??;
    let mut report = Report::new(format!(
        "bench tty via {} ({}x{}, {label}, {} ms each way)",
        if via == Via::Pty {
            "an emulated pty link"
        } else {
            "OpenSSH"
        },
        args.size.0,
        args.size.1,
        args.delay.as_millis()
    ));
    report.row("keys_measured", r.key_ms.len() as f64, "keystrokes");
    report.row(
        "key_p50_ms",
        quantile(&mut r.key_ms, 0.5),
        "ms keystroke → on screen",
    );
    report.row("key_p99_ms", quantile(&mut r.key_ms, 0.99), "ms");
    report.row("key_max_ms", quantile(&mut r.key_ms, 1.0), "ms");
    report.row(
        "key_timeouts",
        f64::from(r.key_timeouts),
        "keys not shown within 5 s",
    );
    if args.share {
        report.row(
            "share_age_p50_ms",
            quantile(&mut r.share_ms, 0.5),
            "ms Ada's shared terminal → far screen",
        );
        report.row("share_age_p99_ms", quantile(&mut r.share_ms, 0.99), "ms");
    }
    report.row(
        "fps_shown",
        r.fps(),
        "frames that changed the picture, per second",
    );
    report.row(
        "video_age_p50_ms",
        quantile(&mut r.ages_ms, 0.5),
        "ms capture → on screen",
    );
    report.row("video_age_p99_ms", quantile(&mut r.ages_ms, 0.99), "ms");
    report.row("video_age_max_ms", quantile(&mut r.ages_ms, 1.0), "ms");
    report.row(
        "delivered_mbit_s",
        r.delivered_per_s * 8.0 / 1e6,
        "Mbit/s to the terminal",
    );
    if args.rate > 0.0 {
        report.row("link_used_pct", r.delivered_per_s / args.rate * 100.0, "%");
    }
    report.row(
        "clean_exit",
        if r.clean_exit { 1.0 } else { 0.0 },
        "q quit and restored the terminal",
    );
    if let Some(s) = &r.tty_status {
        report.note(format!("status line: {s}"));
    }
    report.print(args.json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_sizes() {
        assert_eq!(parse_rate("1mbit"), Ok(125_000.0));
        assert_eq!(parse_rate("256kbit"), Ok(32_000.0));
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("-1mbit").is_err());
        assert_eq!(parse_cells("160x48"), Ok((160, 48)));
        assert!(parse_cells("10x2").is_err());
    }
}
