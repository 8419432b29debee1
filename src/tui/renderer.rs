//! The renderer: decides when a frame goes out and how much video it may
//! carry, draws it, and hands it to the writer thread.
//!
//! - Text (keys, chat, roster, status) goes out as soon as it changes, in
//!   a frame of its own if need be: it never waits behind pictures.
//! - Video goes out at most 30 times a second and only as far as the flow
//!   control's window allows ([`super::flow`]); pictures that arrive
//!   meanwhile replace each other (the newest wins).
//! - The picture rung ([`super::ladder`]) follows the measured drain rate.
//! - A terminal that never answers queries gets open-loop pacing: frames as
//!   fast as writes complete, slower as they take longer.

use std::io::Write;
use std::time::{Duration, Instant};

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::app::App;
use super::cells::{CellMode, CellsChoice};
use super::flow::{FlowConfig, FlowControl, FlowNotice, Mode};
use super::graphics::{Placements, Protocol};
use super::ladder::{Ladder, Picture};
use super::screen::Screen;
use super::term::TtyWriter;
use super::ui;

/// Where frames go: the writer thread, or a simulated link in benchmarks.
pub trait FrameSink {
    /// Still writing the previous frame.
    fn is_busy(&self) -> bool;
    /// Takes a frame; false if busy.
    fn write(&mut self, frame: Vec<u8>) -> bool;
}

impl FrameSink for TtyWriter {
    fn is_busy(&self) -> bool {
        TtyWriter::is_busy(self)
    }

    fn write(&mut self, frame: Vec<u8>) -> bool {
        TtyWriter::write(self, frame)
    }
}

/// At most this many video frames a second.
const MIN_VIDEO_INTERVAL: Duration = Duration::from_millis(33);
/// A video frame needs at least this much window to be worth drawing.
const MIN_VIDEO_BUDGET: usize = 768;
/// Open-loop pacing bounds (the old renderer's).
const MAX_OPEN_LOOP_INTERVAL: Duration = Duration::from_millis(500);

/// What the renderer tells the loop after a draw or an answer.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The largest tile's pixel size changed: tell the senders.
    pub view: Option<(u32, u32)>,
    /// Say this to the user once.
    pub notice: Option<&'static str>,
}

pub struct Renderer<S: FrameSink = TtyWriter> {
    screen: Screen,
    back: Buffer,
    flow: FlowControl,
    ladder: Ladder,
    ladder_settled: bool,
    /// A picture rung fixed from outside (benchmarks), instead of the ladder.
    fixed_picture: Option<Picture>,
    pub sink: S,
    last_video: Instant,
    /// The last frame left video cells unsent.
    incomplete: bool,
    /// Share of recent video frames that the window cut short.
    pressure: f64,
    /// Open-loop: EWMA of a write's duration, and the resulting interval.
    write_cost: Duration,
    open_interval: Duration,
    video_cells: usize,
    view: (u32, u32),
    /// Per-second counters for the status line.
    frames: u32,
    bytes: u64,
    window_start: Instant,
    trace: Option<Trace>,
    /// Pixel mode: the pictures the terminal shows.
    placements: Placements,
    /// Pixel mode: bytes of a frame's pictures (moving average).
    picture_bytes: f64,
    /// The cell mode of the last frame (leaving sixel clears the screen).
    last_cells: CellMode,
    /// `auto` left pixels for a slow path: when to try them again.
    pixel_retry: Option<PixelRetry>,
}

/// Pixels left by `auto` for a slow path, tried again later: the drain
/// rate measured while drawing cells can't say whether pictures would fit
/// (cells never fill the path, so the window stays smaller than one
/// picture), so only pictures can. A trial draws pixels for
/// [`PIXEL_TRIAL`] and keeps them if the rate measured meanwhile carries
/// [`PIXEL_MIN_FPS`] of them;
/// on a path that is still slow it costs those seconds of slower keys,
/// at most once per backoff (10 s, doubling to 5 min).
#[derive(Debug, Clone, Copy)]
struct PixelRetry {
    mode: CellMode,
    /// The cell mode drawn meanwhile (a user who changes it ends this).
    cells: CellMode,
    at: Instant,
    backoff: Duration,
    /// A trial under way: until when.
    trial: Option<Instant>,
}

/// The first wait before pixels are tried again; it doubles after each
/// failed trial, up to [`PIXEL_RETRY_MAX`].
const PIXEL_RETRY_FIRST: Duration = Duration::from_secs(10);
const PIXEL_RETRY_MAX: Duration = Duration::from_secs(300);
/// Long enough for the window, small after cells, to grow to pictures'
/// size on a fast path.
const PIXEL_TRIAL: Duration = Duration::from_secs(6);

/// Pixel modes need the terminal path to carry this many pictures a second.
const PIXEL_MIN_FPS: f64 = 15.0;

impl<S: FrameSink> Renderer<S> {
    pub fn new(area: Rect, sink: S, flow: FlowConfig, now: Instant) -> Self {
        Renderer {
            screen: Screen::new(area),
            back: Buffer::empty(area),
            flow: FlowControl::new(flow),
            ladder: Ladder::default(),
            ladder_settled: false,
            fixed_picture: None,
            sink,
            last_video: now - MIN_VIDEO_INTERVAL,
            incomplete: false,
            pressure: 0.0,
            write_cost: Duration::ZERO,
            open_interval: MIN_VIDEO_INTERVAL,
            video_cells: 0,
            view: (0, 0),
            frames: 0,
            bytes: 0,
            window_start: now,
            trace: Trace::from_env(),
            placements: Placements::default(),
            picture_bytes: 0.0,
            last_cells: CellMode::Half,
            pixel_retry: None,
        }
    }

    /// Draws every frame at this rung (benchmarks compare rungs).
    pub fn fix_picture(&mut self, picture: Picture) {
        self.fixed_picture = Some(picture);
    }

    /// What the terminal shows once every frame written has arrived.
    pub fn shown(&self) -> &Buffer {
        self.screen.shown()
    }

    pub fn resize(&mut self, area: Rect) {
        self.screen.resize(area);
        self.back = Buffer::empty(area);
        self.placements.forget();
    }

    /// The terminal is ours again after a suspend: the screen is drawn
    /// whole, and queries in flight are forgotten.
    pub fn restart(&mut self, area: Rect) {
        self.resize(area);
        self.flow.reset();
    }

    /// The terminal answered a query.
    pub fn on_reply(&mut self, now: Instant) -> Outcome {
        let notice = self.flow.on_reply(now).map(notice_text);
        self.step_ladder(now);
        Outcome { view: None, notice }
    }

    /// A write finished (open-loop pacing learns from it).
    pub fn on_written(&mut self, took: Duration) {
        self.write_cost = (self.write_cost * 7 + took) / 8;
        self.open_interval =
            (self.write_cost * 2).clamp(MIN_VIDEO_INTERVAL, MAX_OPEN_LOOP_INTERVAL);
    }

    /// Timers: overdue answers, the status line's numbers.
    pub fn tick(&mut self, app: &mut App, now: Instant) -> Outcome {
        let notice = self.flow.tick(now).map(notice_text);
        self.step_ladder(now);
        let secs = now.duration_since(self.window_start).as_secs_f64();
        if secs >= 1.0 {
            app.status.render_fps = f64::from(self.frames) / secs;
            if self.frames > 0 {
                app.status.bytes_per_frame = self.bytes as f64 / f64::from(self.frames);
            }
            self.frames = 0;
            self.bytes = 0;
            self.window_start = now;
            let tty = self.tty_status();
            if tty != app.status.tty {
                app.status.tty = tty;
                app.dirty = true;
            }
        }
        app.pressure = match self.flow.mode() {
            Mode::Open => (self.open_interval.as_millis() / MIN_VIDEO_INTERVAL.as_millis()) as u32,
            _ => 1,
        };
        Outcome { view: None, notice }
    }

    fn step_ladder(&mut self, now: Instant) {
        let status = self.flow.status();
        if status.mode != Mode::Closed || status.rate <= 0.0 || self.video_cells == 0 {
            return;
        }
        if !self.ladder_settled {
            self.ladder.settle(status.rate, self.video_cells);
            self.ladder_settled = true;
        } else {
            self.ladder
                .update(status.rate, self.video_cells, self.pressure, now);
        }
    }

    /// `tty 42 ms 0.9 Mbit/s q0` (round trip, drain rate, picture rung).
    pub fn tty_status(&self) -> String {
        let s = self.flow.status();
        match s.mode {
            Mode::Open => "tty open-loop".into(),
            Mode::Probing => "tty measuring…".into(),
            Mode::Closed => {
                // Unmeasured drain rate: the path was never the limit; say
                // at least what went through.
                let (prefix, rate) = if s.rate > 0.0 {
                    ("", s.rate)
                } else {
                    ("≥", s.throughput)
                };
                format!(
                    "tty {:.0} ms {prefix}{:.1} Mbit/s p{}",
                    s.rtt.unwrap_or_default().as_secs_f64() * 1000.0,
                    rate * 8.0 / 1e6,
                    self.ladder.level()
                )
            }
        }
    }

    pub fn flow(&self) -> &FlowControl {
        &self.flow
    }

    /// Draws and writes a frame if one is due: text changed, or a new
    /// picture (or an unfinished one) and room in the window for it.
    pub fn draw_if_due(&mut self, app: &mut App, now: Instant) -> std::io::Result<Outcome> {
        let mut outcome = Outcome::default();
        if self.sink.is_busy() {
            return Ok(outcome);
        }
        if self.flow.wants_bare_probe() {
            // The path is idle: measure its round trip first (a few bytes).
            self.sink.write(self.flow.bare_probe(now));
            return Ok(outcome);
        }
        let budget = self.flow.budget();
        let interval = match self.flow.mode() {
            Mode::Open => self.open_interval,
            _ => MIN_VIDEO_INTERVAL,
        };
        let pictures = app.has_new_frames() || self.incomplete;
        let video_due = pictures
            && now.duration_since(self.last_video) >= interval
            && budget >= MIN_VIDEO_BUDGET;
        if !app.dirty && !video_due {
            return Ok(outcome);
        }
        app.video_refresh = video_due;
        app.picture = self.fixed_picture.unwrap_or_else(|| self.ladder.picture());
        self.back.reset();
        let area = self.back.area;
        let drawn = ui::draw_into(area, &mut self.back, app);
        self.video_cells = drawn.regions.video.iter().map(|r| r.area() as usize).sum();
        let protocol = match (app.cells, app.sixel) {
            (CellMode::Sixel, Some(t)) => Protocol::Sixel(t),
            _ if app.kitty_shared => Protocol::KittyShared,
            _ => Protocol::Kitty,
        };
        // A sixel picture can't be deleted: one that must go (its tile
        // moved or left, or the mode changed) goes with a whole redraw.
        let sixel_was = self.last_cells == CellMode::Sixel;
        let sixel_now = matches!(protocol, Protocol::Sixel(_));
        if (sixel_was && app.cells != CellMode::Sixel)
            || (sixel_now && self.placements.moved(&drawn.regions.images))
        {
            self.screen.invalidate();
            self.placements.forget();
        }
        self.last_cells = app.cells;
        let video_budget = if video_due { budget } else { 0 };
        let frame = self.screen.render(&self.back, &drawn.regions, video_budget);
        let mut complete = frame.complete();
        let mut out = frame.bytes;
        if !self.placements.idle(&drawn.regions.images) {
            let room = video_budget.saturating_sub(out.len());
            // Little in flight: a picture larger than the whole window may
            // go, one a frame (else it never would).
            let idle = self.flow.budget() * 4 >= self.flow.window() * 3;
            let (pictures, all) =
                self.placements
                    .update(&drawn.regions.images, room, idle, protocol);
            if video_due {
                complete &= all;
                if !pictures.is_empty() {
                    self.picture_bytes = self.picture_bytes * 0.8 + pictures.len() as f64 * 0.2;
                }
            }
            out.extend(pictures);
        }
        if let Some(text) = self
            .retry_pixels(app, now)
            .or_else(|| self.leave_pixels_if_slow(app, now))
        {
            outcome.notice = Some(text);
        }
        let bytes = self.flow.frame(out, &frame.splits, now);
        let len = bytes.len();
        // Not busy (checked above), so the sink takes it.
        self.sink.write(bytes);
        app.dirty = false;
        self.frames += 1;
        self.bytes += len as u64;
        if video_due {
            self.last_video = now;
            self.incomplete = !complete;
            let cut = if complete { 0.0 } else { 1.0 };
            self.pressure = self.pressure * 0.9 + cut * 0.1;
            if let Some(trace) = &mut self.trace {
                trace.frame(self.flow.sent_total(), app.shown_age_us());
            }
        }
        if drawn.largest != self.view && drawn.largest.0 > 0 {
            self.view = drawn.largest;
            outcome.view = Some(drawn.largest);
        }
        Ok(outcome)
    }

    /// Pixels chosen by `auto` where the measured drain rate can't carry
    /// [`PIXEL_MIN_FPS`] pictures a second: back to the best cell mode, and
    /// pixels tried again later.
    fn leave_pixels_if_slow(&mut self, app: &mut App, now: Instant) -> Option<&'static str> {
        let status = self.flow.status();
        // `--cells kitty` or `sixel` is the user's choice; `auto` adapts.
        let slow = !app.cells.is_text()
            && app.cells_choice == CellsChoice::Auto
            && self.pixel_retry.is_none_or(|r| r.trial.is_none())
            && status.mode == Mode::Closed
            && status.rate > 0.0
            && self.picture_bytes > 0.0
            && status.rate < self.picture_bytes * PIXEL_MIN_FPS;
        if !slow {
            return None;
        }
        self.pixel_retry = Some(PixelRetry {
            mode: app.cells,
            cells: CellMode::Sextant,
            at: now + PIXEL_RETRY_FIRST,
            backoff: PIXEL_RETRY_FIRST,
            trial: None,
        });
        app.cells = CellMode::Sextant;
        app.dirty = true;
        Some("the link to this terminal can't carry pixels at 15 pictures a second: drawing sextants (p cycles; pixels are tried again later)")
    }

    /// Starts and ends trials of pixels left for a slow path: kept if, at
    /// the end, the rule that left them would keep them (the drain rate
    /// measured while pictures filled the path carries them).
    fn retry_pixels(&mut self, app: &mut App, now: Instant) -> Option<&'static str> {
        let mut retry = self.pixel_retry?;
        match retry.trial {
            // The user changed the mode meanwhile: theirs stands.
            None if app.cells != retry.cells => {
                self.pixel_retry = None;
                return None;
            }
            None if now >= retry.at => {
                retry.trial = Some(now + PIXEL_TRIAL);
                app.cells = retry.mode;
                app.dirty = true;
            }
            Some(until) if now >= until => {
                if app.cells != retry.mode {
                    self.pixel_retry = None;
                    return None;
                }
                if self.flow.status().rate >= self.picture_bytes * PIXEL_MIN_FPS {
                    self.pixel_retry = None;
                    return Some("the link to this terminal carries pixels now: drawing them");
                }
                retry.backoff = (retry.backoff * 2).min(PIXEL_RETRY_MAX);
                retry.at = now + retry.backoff;
                retry.trial = None;
                app.cells = retry.cells;
                app.dirty = true;
            }
            _ => {}
        }
        self.pixel_retry = Some(retry);
        None
    }

    /// At the end: no more frames; waits for the terminal to answer what is
    /// in flight (up to `limit`), so late answers don't reach the shell.
    pub fn quiesce(&self) -> bool {
        self.flow.mode() != Mode::Closed || self.flow.in_flight() == 0
    }
}

fn notice_text(n: FlowNotice) -> &'static str {
    match n {
        FlowNotice::NoReplies => {
            "this terminal doesn't answer status queries: drawing without feedback (over a slow link the picture may lag)"
        }
        FlowNotice::RepliesResumed => "the terminal answers status queries again: pacing to it",
    }
}

/// `STREAMFLOW_TTY_TRACE=FILE`: one JSON line per video frame (where it
/// ends in the output stream, when, and how old its newest picture was),
/// for `bench tty` to pair with what the far end displayed and when.
struct Trace {
    file: std::io::BufWriter<std::fs::File>,
}

impl Trace {
    fn from_env() -> Option<Self> {
        let path = std::env::var_os("STREAMFLOW_TTY_TRACE")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()?;
        Some(Trace {
            file: std::io::BufWriter::new(file),
        })
    }

    fn frame(&mut self, end: u64, age_us: Option<u64>) {
        let at = crate::media::capture::now_us();
        let age = age_us.map(|a| a.to_string()).unwrap_or("null".into());
        let _ = writeln!(
            self.file,
            "{{\"end\":{end},\"at_us\":{at},\"age_us\":{age}}}"
        );
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::media::{jpeg, pattern::TestPattern};
    use crate::tui::flow::QUERY;
    use crate::tui::render::ColourMode;

    /// A link of `rate` bytes a second with 20 ms each way; the terminal
    /// answers each query when it arrives.
    struct Link {
        rate: f64,
        free_at: Instant,
        replies: VecDeque<Instant>,
    }

    impl FrameSink for Link {
        fn is_busy(&self) -> bool {
            false
        }

        fn write(&mut self, frame: Vec<u8>) -> bool {
            let per_byte = Duration::from_secs_f64(1.0 / self.rate);
            let mut at = self.free_at;
            let mut i = 0;
            while i < frame.len() {
                let n = if frame[i..].starts_with(QUERY) {
                    QUERY.len()
                } else {
                    1
                };
                at += per_byte * n as u32;
                if n > 1 {
                    self.replies.push_back(at + Duration::from_millis(40));
                }
                i += n;
            }
            self.free_at = at;
            true
        }
    }

    /// Four peers' moving pictures in kitty mode through a link of `rate`
    /// bytes a second for `seconds`: the mode it ends in, and what it said.
    fn pixels_through(rate: f64, seconds: u64) -> (CellMode, Vec<&'static str>) {
        pixels_through_links(Rect::new(0, 0, 160, 48), &[(0, rate)], seconds)
    }

    /// The same on a terminal of `area`, the link's rate changing at the
    /// given seconds.
    fn pixels_through_links(
        area: Rect,
        rates: &[(u64, f64)],
        seconds: u64,
    ) -> (CellMode, Vec<&'static str>) {
        let t0 = Instant::now();
        let rate_at = |now: Instant| {
            let secs = now.duration_since(t0).as_secs();
            rates
                .iter()
                .rev()
                .find(|(from, _)| secs >= *from)
                .map_or(rates[0].1, |r| r.1)
        };
        let link = Link {
            rate: rate_at(t0),
            free_at: t0,
            replies: VecDeque::new(),
        };
        let mut renderer = Renderer::new(area, link, FlowConfig::default(), t0);
        let mut app = App::new("test", ColourMode::TrueColor, None);
        app.me.camera = crate::session::state::Camera::Off;
        app.cells_choice = CellsChoice::Auto;
        app.cells = CellMode::Kitty;
        // A few pictures per peer, encoded once and shown in turn (the
        // encoder is not what this measures).
        let clips: Vec<Vec<Vec<u8>>> = ["Ada", "Grace", "Linus"]
            .iter()
            .map(|n| {
                let p = TestPattern::new(n);
                (0..4)
                    .map(|f| jpeg::encode(&p.render_at(f as f32 / 10.0, 240, 136), 70))
                    .collect()
            })
            .collect();
        let mut said = Vec::new();
        let mut now = t0;
        let mut tick = 0u32;
        while now < t0 + Duration::from_secs(seconds) {
            while renderer.sink.replies.front().is_some_and(|t| *t <= now) {
                let at = renderer.sink.replies.pop_front().expect("front exists");
                said.extend(renderer.on_reply(at).notice);
            }
            if tick % 33 == 0 {
                let f = (tick / 33) as usize;
                for (i, clip) in clips.iter().enumerate() {
                    let jpeg = clip[f % clip.len()].clone();
                    app.feed_frame(&format!("peer{i}"), p_name(i), jpeg);
                }
            }
            if tick % 25 == 0 {
                said.extend(renderer.tick(&mut app, now).notice);
            }
            renderer.sink.free_at = renderer.sink.free_at.max(now);
            renderer.sink.rate = rate_at(now);
            said.extend(renderer.draw_if_due(&mut app, now).unwrap().notice);
            now += Duration::from_millis(1);
            tick += 1;
        }
        (app.cells, said)
    }

    fn p_name(i: usize) -> &'static str {
        ["Ada", "Grace", "Linus"][i]
    }

    /// Over a thin link (2 Mbit/s: far from 15 pictures a second of four
    /// tiles) the call leaves pixels for sextants and says so; over a fast
    /// one (80 Mbit/s) it keeps them.
    #[test]
    fn pixels_are_left_when_the_link_cannot_carry_them() {
        let (mode, said) = pixels_through(250_000.0, 4);
        assert_eq!(mode, CellMode::Sextant, "{said:?}");
        assert!(
            said.iter().any(|s| s.contains("can't carry pixels")),
            "{said:?}"
        );
        let (mode, said) = pixels_through(10_000_000.0, 2);
        assert_eq!(mode, CellMode::Kitty, "{said:?}");
    }

    /// Pixels left for a slow link are tried again: kept once the link
    /// carries them (it got faster), not while it stays slow.
    #[test]
    fn pixels_come_back_when_the_link_carries_them_again() {
        let area = Rect::new(0, 0, 80, 24);
        let (mode, said) = pixels_through_links(area, &[(0, 40_000.0), (5, 10_000_000.0)], 20);
        assert_eq!(mode, CellMode::Kitty, "{said:?}");
        assert!(
            said.iter().any(|s| s.contains("can't carry pixels")),
            "{said:?}"
        );
        assert!(
            said.iter().any(|s| s.contains("carries pixels now")),
            "{said:?}"
        );
        let (mode, said) = pixels_through_links(area, &[(0, 40_000.0)], 20);
        assert_eq!(mode, CellMode::Sextant, "{said:?}");
        assert!(
            !said.iter().any(|s| s.contains("carries pixels now")),
            "{said:?}"
        );
    }
}
