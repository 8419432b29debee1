//! `bench words`: what the rounds of commit-then-reveal cost. N members
//! in a room through an embedded relay (real WebSockets on loopback, the
//! real room state machine, no media); one more joins, and later leaves.
//! Measured: time from the join (or leave) until everyone shows the same
//! words again, SPAKE2 handshakes and control messages per change, and
//! CPU.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::sync::watch;

use super::stats::{process_cpu_seconds, quantile, Report};
use crate::crypto::secret::Key32;
use crate::crypto::sign::SigningIdentity;
use crate::net::link::{self, LinkEvent};
use crate::room::{Output, Room, Timings};

#[derive(Args)]
pub struct WordsArgs {
    /// Room sizes to measure (members after the join), comma-separated.
    #[arg(long, default_value = "2,8,16", value_delimiter = ',')]
    members: Vec<u32>,
    /// Joins (and leaves) measured per room size.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    changes: u32,
    /// Time between changes (a room at rest between them: the relay's rate
    /// limit refills): 2s, 500ms, plain seconds, or 0.
    #[arg(long, default_value = "2s", value_parser = gap_secs, value_name = "DURATION")]
    gap: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// `--gap`: the shared duration forms, or 0 for none.
fn gap_secs(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        _ => streamflow_relay::config::parse_duration(text).map(|d| d.as_secs_f64()),
    }
}

/// What a member shows, shared with the bench.
#[derive(Default, Clone)]
struct Shown {
    words: String,
    handshakes: u64,
    sent: u64,
}

struct Member {
    shown: Arc<Mutex<Shown>>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// One member: the room state machine driven by a real link.
async fn member(url: String, room_id: String, psk: Key32, name: String) -> anyhow::Result<Member> {
    let (link, mut events, welcome) =
        link::connect(&url, &room_id, link::LinkOptions::default()).await?;
    let shown = Arc::new(Mutex::new(Shown::default()));
    let (stop, mut stopped) = watch::channel(false);
    let now = Instant::now();
    let mut room = Room::new(
        &room_id,
        psk,
        &name,
        Timings::default(),
        Box::new(rand_core::OsRng),
        Arc::new(SigningIdentity::generate(&mut rand_core::OsRng)),
        now,
    );
    let shared = shown.clone();
    let task = tokio::spawn(async move {
        let mut sent = 0u64;
        let mut out = match welcome {
            LinkEvent::Welcome {
                you,
                peers,
                max_peers,
                ..
            } => room.on_welcome(&you, &peers, max_peers, now),
            _ => vec![],
        };
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            for o in out.drain(..) {
                if let Output::Send { to, kind, data } = o {
                    sent += 1;
                    link.send(to.as_deref(), kind, &data).await;
                }
            }
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = Shown {
                words: room.safety_words().to_string(),
                handshakes: room.stats.handshakes,
                sent,
            };
            let now = Instant::now();
            out = tokio::select! {
                ev = events.recv() => match ev {
                    Some(LinkEvent::PeerJoined(p)) => room.on_peer_joined(&p, now),
                    Some(LinkEvent::PeerLeft(p, why)) => room.on_peer_left(&p, why, now),
                    Some(LinkEvent::Blob { from, data }) => {
                        room.on_blob(&from, &data, now, crate::media::capture::now_us())
                    }
                    Some(LinkEvent::RelayError { code, message }) if code != "unknown_peer" => {
                        eprintln!("relay error: {code}: {message}");
                        vec![]
                    }
                    Some(_) => vec![],
                    None => break,
                },
                _ = tick.tick() => room.tick(now, crate::media::capture::now_us()),
                _ = stopped.changed() => {
                    link.leave().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    break;
                }
            };
        }
    });
    Ok(Member { shown, stop, task })
}

impl Member {
    fn shown(&self) -> Shown {
        self.shown.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn leave(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Waits until every member shows the same, non-empty words that differ
/// from `before`; returns how long that took.
async fn settled(members: &[Member], before: &str, since: Instant) -> anyhow::Result<Duration> {
    let deadline = since + Duration::from_secs(60);
    loop {
        let words: Vec<String> = members.iter().map(|m| m.shown().words).collect();
        if !words[0].is_empty() && words[0] != before && words.iter().all(|w| *w == words[0]) {
            return Ok(since.elapsed());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "no common words after 60 s: {words:?}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn totals(members: &[Member]) -> (u64, u64) {
    members.iter().fold((0, 0), |(h, s), m| {
        let x = m.shown();
        (h + x.handshakes, s + x.sent)
    })
}

pub async fn run(args: WordsArgs) -> anyhow::Result<()> {
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let psk = Key32::random(&mut rand_core::OsRng);
    let mut report = Report::new(format!(
        "bench words: rounds of commit-then-reveal, {} joins and leaves per size, loopback relay",
        args.changes
    ));
    for &n in &args.members {
        anyhow::ensure!(n >= 2, "--members: a room of at least 2");
        let room_id = format!("words{n}");
        let mut members = Vec::new();
        for i in 0..n - 1 {
            members.push(member(relay.url(), room_id.clone(), psk.clone(), format!("m{i}")).await?);
        }
        if members.len() > 1 {
            settled(&members, "", Instant::now()).await?;
        }
        let (mut join_ms, mut leave_ms) = (Vec::new(), Vec::new());
        let (mut handshakes, mut messages) = (Vec::new(), Vec::new());
        let cpu0 = process_cpu_seconds(std::process::id()).unwrap_or(0.0);
        let gap = Duration::from_secs_f64(args.gap.max(0.0));
        for c in 0..args.changes {
            tokio::time::sleep(gap).await;
            let before = members[0].shown().words;
            let (h0, s0) = totals(&members);
            let t0 = Instant::now();
            members.push(member(relay.url(), room_id.clone(), psk.clone(), format!("j{c}")).await?);
            join_ms.push(settled(&members, &before, t0).await?.as_secs_f64() * 1000.0);
            let (h1, s1) = totals(&members);
            handshakes.push((h1 - h0) as f64);
            messages.push((s1 - s0) as f64);
            tokio::time::sleep(gap).await;
            let before = members[0].shown().words;
            let t0 = Instant::now();
            if let Some(joiner) = members.pop() {
                joiner.leave().await;
            }
            if members.len() > 1 {
                leave_ms.push(settled(&members, &before, t0).await?.as_secs_f64() * 1000.0);
            }
        }
        let cpu = process_cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu0;
        // (Idle keep-alives during the gaps are included: small.)
        let per_change_ms = cpu * 1000.0 / (2 * args.changes) as f64 / n as f64;
        report.row(
            format!("n{n}_words_after_join_p50_ms"),
            quantile(&mut join_ms, 0.5),
            "ms, join → everyone shows the same new words",
        );
        report.row(
            format!("n{n}_words_after_join_max_ms"),
            quantile(&mut join_ms, 1.0),
            "ms",
        );
        if !leave_ms.is_empty() {
            report.row(
                format!("n{n}_words_after_leave_p50_ms"),
                quantile(&mut leave_ms, 0.5),
                "ms, leave → everyone shows the same new words",
            );
        }
        report.row(
            format!("n{n}_handshakes_per_join"),
            quantile(&mut handshakes, 0.5),
            "SPAKE2 runs, all members together (n(n-1) = each pair, both sides)",
        );
        report.row(
            format!("n{n}_messages_per_join"),
            quantile(&mut messages, 0.5),
            "messages sent, all members together",
        );
        report.row(
            format!("n{n}_cpu_ms_per_member_per_change"),
            per_change_ms,
            "ms of CPU (process, relay included)",
        );
        for m in members {
            m.leave().await;
        }
    }
    relay.shutdown().await;
    report.print(args.json);
    Ok(())
}
