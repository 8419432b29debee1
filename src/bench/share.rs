//! `bench share`: a shared terminal through an embedded relay, in this
//! process: a sharer running real programs in a real pty, a viewer, and
//! (for the last scenario) a member sending video.
//!
//! - `keys`: the sharer types into `cat` (the pty echoes); each key is
//!   timed until the viewer's copy of the screen shows it.
//! - `vi`, `top`: a person typing in `vi` on a 200-line file, `top`
//!   refreshing each second: what reaches the viewer per second.
//! - `cat`: 10 MB through `cat`: what reaches the viewer, and how long after
//!   the output stopped the viewer shows the last screen.
//! - `video`: the viewer's video frame rate from a third member while the
//!   share scrolls as fast as the shell can print.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use tokio::sync::mpsc;

use super::stats::{quantile, Report};
use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::source::SourceSpec;
use crate::net::link::LinkStats;
use crate::session::sharing::ShareCommand;
use crate::session::{self, SessionCommand, SessionEvent};
use crate::share::screen::ShareScreen;

#[derive(Args)]
pub struct ShareBenchArgs {
    /// Which scenario (default: all of them).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// Seconds each of `vi`, `top` and `video` runs: 10, 10s or 1m.
    #[arg(long, default_value = "10", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Keystrokes timed in `keys`.
    #[arg(long, default_value_t = 200)]
    keys: u32,
    /// Megabytes `cat` prints in `cat`.
    #[arg(long, default_value_t = 10)]
    megabytes: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    Keys,
    Vi,
    Top,
    Cat,
    Video,
}

/// One member of the benchmark's call.
struct Member {
    commands: mpsc::Sender<SessionCommand>,
    events: mpsc::Receiver<SessionEvent>,
    stats: Option<Arc<LinkStats>>,
    id: Option<String>,
    task: tokio::task::JoinHandle<session::Ended>,
}

impl Member {
    fn start(
        url: &str,
        invite: &Invite,
        psk: &crate::crypto::secret::Key32,
        name: &str,
        video: bool,
    ) -> Member {
        let source = if video {
            SourceSpec::Test
        } else {
            SourceSpec::None
        };
        let mut config =
            session::SessionConfig::new(invite.clone(), vec![url.to_string()], name.into(), source);
        config.psk = Some(psk.clone());
        config.view = (80, 48);
        let (tx, events) = mpsc::channel(4096);
        let (commands, rx) = mpsc::channel(64);
        let task = tokio::spawn(session::run(config, tx, rx));
        Member {
            commands,
            events,
            stats: None,
            id: None,
            task,
        }
    }

    /// The next event, noting what the member learns about itself.
    async fn next(&mut self, until: tokio::time::Instant) -> Option<SessionEvent> {
        let ev = tokio::time::timeout_at(until, self.events.recv())
            .await
            .ok()??;
        match &ev {
            SessionEvent::Connected { stats, .. } => self.stats = Some(stats.clone()),
            SessionEvent::Room(crate::room::Event::Joined { you, .. }) => {
                self.id = Some(you.clone())
            }
            _ => {}
        }
        Some(ev)
    }

    /// Waits until `pred` holds for an event (up to `limit`).
    async fn wait(
        &mut self,
        limit: Duration,
        pred: impl Fn(&SessionEvent) -> bool,
    ) -> anyhow::Result<SessionEvent> {
        let until = tokio::time::Instant::now() + limit;
        loop {
            match self.next(until).await {
                Some(ev) if pred(&ev) => return Ok(ev),
                Some(_) => {}
                None => anyhow::bail!("gave up waiting after {limit:?}"),
            }
        }
    }

    /// The next screen of `from`'s share (the latest one queued).
    async fn screen(&mut self, from: &str, limit: Duration) -> anyhow::Result<Arc<ShareScreen>> {
        match self
            .wait(
                limit,
                |e| matches!(e, SessionEvent::ShareScreen { from: f, .. } if f == from),
            )
            .await?
        {
            SessionEvent::ShareScreen { screen, .. } => Ok(screen),
            _ => unreachable!("matched above"),
        }
    }

    fn bytes_down(&self) -> u64 {
        self.stats
            .as_ref()
            .map_or(0, |s| s.bytes_down.load(Relaxed))
    }

    async fn command(&self, c: SessionCommand) {
        let _ = self.commands.send(c).await;
    }

    async fn share(&self, command: &str) {
        self.command(SessionCommand::Share(ShareCommand::Start {
            command: command.into(),
            cols: 80,
            rows: 24,
        }))
        .await;
    }

    async fn stop_share(&self) {
        self.command(SessionCommand::Share(ShareCommand::Stop))
            .await;
    }

    async fn keys(&self, keys: &str) {
        self.command(SessionCommand::Share(ShareCommand::Keys {
            to: None,
            keys: keys.as_bytes().to_vec(),
        }))
        .await;
    }
}

const LIMIT: Duration = Duration::from_secs(30);

pub async fn run(args: ShareBenchArgs) -> anyhow::Result<()> {
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let invite = Invite::generate(&mut rand_core::OsRng);
    let psk = session::derive_psk_async(&invite, KdfParams::V1)
        .await
        .map_err(anyhow::Error::msg)?;
    let url = relay.url();
    let mut sharer = Member::start(&url, &invite, &psk, "sharer", false);
    let mut viewer = Member::start(&url, &invite, &psk, "viewer", false);
    for m in [&mut sharer, &mut viewer] {
        m.wait(LIMIT, |e| {
            matches!(
                e,
                SessionEvent::Room(crate::room::Event::PeerVerified { .. })
            )
        })
        .await?;
    }
    let from = sharer
        .id
        .clone()
        .ok_or_else(|| anyhow::anyhow!("sharer never joined"))?;
    let dir = super::tty::ssh::TempDir::new("share-bench")?;
    let mut report = Report::new("bench share: a shared 80×24 terminal through a loopback relay");
    let all = args.scenario.is_none();
    let wants = |s: Scenario| all || args.scenario == Some(s);
    // What the call costs the viewer without a share (keep-alives, state,
    // the relay's pings): the scenarios' figures are with it.
    let (idle, _) = measure_while(
        &mut viewer,
        3.min(args.seconds),
        |_| None,
        &sharer,
        Duration::from_secs(1),
    )
    .await?;
    report.row(
        "idle_kbit_s",
        idle,
        "kbit/s to the viewer with no share (included below)",
    );

    if wants(Scenario::Keys) {
        sharer.share("exec cat").await;
        viewer.screen(&from, LIMIT).await?;
        let mut latencies = Vec::new();
        for k in 1..=args.keys as usize {
            // A fast typist: 40–80 ms between keys.
            tokio::time::sleep(Duration::from_millis(40 + (k as u64 * 7919) % 40)).await;
            let t0 = Instant::now();
            sharer.keys("x").await;
            loop {
                let s = viewer.screen(&from, LIMIT).await?;
                // Wrapped lines keep every x; 200 keys fit the screen.
                if s.text().matches('x').count() >= k {
                    break;
                }
            }
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        report.row(
            "key_p50_ms",
            quantile(&mut latencies, 0.5),
            "ms sharer key → viewer's screen",
        );
        report.row("key_p99_ms", quantile(&mut latencies, 0.99), "ms");
        sharer.stop_share().await;
    }

    if wants(Scenario::Vi) {
        let file = dir.path().join("two-hundred-lines.txt");
        let text: String = (1..=200)
            .map(|i| format!("line {i}: the quick brown fox jumps over the lazy dog\n"))
            .collect();
        std::fs::write(&file, text)?;
        sharer
            .share(&format!("exec vi -u NONE -n {}", file.display()))
            .await;
        viewer.screen(&from, LIMIT).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        sharer.keys("Go").await;
        // A person typing: 4 keys a second (about 40 words a minute), a
        // new line now and then.
        let typed = |i: usize| {
            let text = "typing into a shared vi ";
            Some(if i % 40 == 39 {
                "\r".to_string()
            } else {
                text[i % text.len()..][..1].to_string()
            })
        };
        let (kbit, updates) = measure_while(
            &mut viewer,
            args.seconds,
            typed,
            &sharer,
            Duration::from_millis(250),
        )
        .await?;
        report.row(
            "vi_typing_kbit_s",
            kbit,
            "kbit/s to the viewer (4 keys/s in vi)",
        );
        report.row(
            "vi_share_kbit_s",
            kbit - idle,
            "kbit/s of it the share's (less idle)",
        );
        report.row("vi_updates_per_s", updates, "screen updates/s");
        sharer.keys("\x1b:q!\r").await;
        viewer
            .wait(LIMIT, |e| matches!(e, SessionEvent::ShareStopped { .. }))
            .await?;
    }

    if wants(Scenario::Top) {
        sharer.share("exec top -d 1").await;
        viewer.screen(&from, LIMIT).await?;
        let (kbit, updates) = measure_while(
            &mut viewer,
            args.seconds,
            |_| None,
            &sharer,
            Duration::from_secs(1),
        )
        .await?;
        report.row(
            "top_kbit_s",
            kbit,
            "kbit/s to the viewer (top, 1 s refresh)",
        );
        report.row(
            "top_share_kbit_s",
            kbit - idle,
            "kbit/s of it the share's (less idle)",
        );
        report.row("top_updates_per_s", updates, "screen updates/s");
        sharer.stop_share().await;
        viewer
            .wait(LIMIT, |e| matches!(e, SessionEvent::ShareStopped { .. }))
            .await?;
    }

    if wants(Scenario::Cat) {
        let file = dir.path().join("big.txt");
        let line = "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ!\n";
        let n = (args.megabytes as usize * 1_000_000) / line.len();
        std::fs::write(&file, line.repeat(n))?;
        let done = dir.path().join("done");
        sharer
            .share(&format!(
                "sleep 1; cat {f}; date +%s%N > {d}; echo CAT-DONE; exec sleep 600",
                f = file.display(),
                d = done.display()
            ))
            .await;
        viewer.screen(&from, LIMIT).await?;
        let down0 = viewer.bytes_down();
        let t0 = Instant::now();
        loop {
            let s = viewer.screen(&from, Duration::from_secs(120)).await?;
            if s.text().contains("CAT-DONE") {
                break;
            }
        }
        let shown_us = crate::media::capture::now_us();
        let secs = t0.elapsed().as_secs_f64();
        let bytes = viewer.bytes_down() - down0;
        let ended_ns: u64 = std::fs::read_to_string(&done)?.trim().parse()?;
        let after_ms = (shown_us as f64 - ended_ns as f64 / 1000.0) / 1000.0;
        report.row(
            "cat_kbyte_s",
            bytes as f64 / secs / 1000.0,
            "kB/s to the viewer while cat ran",
        );
        report.row("cat_seconds", secs, "s until the viewer showed the end");
        report.row(
            "cat_final_screen_ms",
            after_ms,
            "ms from the output's end to the viewer's last screen",
        );
        sharer.stop_share().await;
        viewer
            .wait(LIMIT, |e| matches!(e, SessionEvent::ShareStopped { .. }))
            .await?;
    }

    if wants(Scenario::Video) {
        let mut camera = Member::start(&url, &invite, &psk, "camera", true);
        camera
            .wait(LIMIT, |e| {
                matches!(
                    e,
                    SessionEvent::Room(crate::room::Event::PeerVerified { .. })
                )
            })
            .await?;
        sharer.share("while :; do ls -la /usr/bin; done").await;
        viewer.screen(&from, LIMIT).await?;
        let camera_id = camera.id.clone().unwrap_or_default();
        let until = tokio::time::Instant::now() + Duration::from_secs(args.seconds);
        let (mut frames, mut screens) = (0u64, 0u64);
        let drain = tokio::spawn(async move {
            // The camera's own events, drained.
            while camera.events.recv().await.is_some() {}
        });
        while let Some(ev) = viewer.next(until).await {
            match ev {
                SessionEvent::Video { from: f, .. } if f == camera_id => frames += 1,
                SessionEvent::ShareScreen { .. } => screens += 1,
                _ => {}
            }
        }
        drain.abort();
        let secs = args.seconds as f64;
        report.row(
            "video_fps_while_scrolling",
            frames as f64 / secs,
            "fps from the camera at the viewer",
        );
        report.row(
            "share_screens_per_s",
            screens as f64 / secs,
            "share updates/s at the viewer",
        );
        sharer.stop_share().await;
    }

    for m in [&sharer, &viewer] {
        m.command(SessionCommand::Leave).await;
    }
    let _ = (sharer.task.await, viewer.task.await);
    relay.shutdown().await;
    report.print(args.json);
    Ok(())
}

/// Runs for `seconds`, pressing `key(i)` every `every` (if it gives one),
/// draining the viewer's events: the viewer's download rate in kbit/s,
/// and share updates a second.
async fn measure_while(
    viewer: &mut Member,
    seconds: u64,
    key: impl Fn(usize) -> Option<String>,
    sharer: &Member,
    every: Duration,
) -> anyhow::Result<(f64, f64)> {
    let down0 = viewer.bytes_down();
    let t0 = Instant::now();
    let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let mut next = tokio::time::Instant::now();
    let mut i = 0;
    let mut screens = 0u32;
    while tokio::time::Instant::now() < end {
        if tokio::time::Instant::now() >= next {
            if let Some(k) = key(i) {
                sharer.keys(&k).await;
            }
            i += 1;
            next += every;
        }
        if let Some(SessionEvent::ShareScreen { .. }) = viewer.next(next.min(end)).await {
            screens += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let bytes = viewer.bytes_down() - down0;
    Ok((
        bytes as f64 * 8.0 / secs / 1000.0,
        f64::from(screens) / secs,
    ))
}
