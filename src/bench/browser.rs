//! `bench browser`: one browser member (headless Chromium, fake camera,
//! the page `streamflow web` serves) and N terminal members (sessions in
//! this process) through a loopback relay. Frame latency both ways, fps
//! delivered both ways, the page's main-thread CPU, the WebAssembly's size,
//! and the time from page load to verified (Argon2id in WebAssembly
//! included, measured on its own too).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use clap::Args;
use serde_json::Value;
use tokio::sync::mpsc;

use super::chromium::Browser;
use super::page::Driver;
use super::stats::{quantile, Report};
use crate::crypto::kdf::KdfParams;
use crate::invite::Invite;
use crate::media::capture::now_us;
use crate::media::jpeg;
use crate::media::source::SourceSpec;
use crate::session::{self, SessionCommand, SessionEvent};

#[derive(Args)]
pub struct BrowserBenchArgs {
    /// Terminal members besides the browser (3: a call of four).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=8))]
    terminals: u32,
    /// Seconds measured, after everyone is verified: 10, 10s or 1m.
    #[arg(long, default_value = "10", value_parser = streamflow_relay::config::parse_seconds)]
    seconds: u64,
    /// Take WebCodecs audio away from the page before it loads, so its
    /// voice is encoded by the module's own Opus (browsers without it).
    #[arg(long)]
    module_opus: bool,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Frames one terminal got: (sender, capture → decoded in ms, when).
type Arrivals = Vec<(String, f64, Instant)>;

pub async fn run(args: BrowserBenchArgs) -> anyhow::Result<()> {
    if !crate::web::available() {
        bail!(crate::web::UNAVAILABLE);
    }
    let relay = streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let page_addr = listener.local_addr()?.to_string();
    let server = tokio::spawn(crate::web::serve(listener));
    let invite = Invite::generate(&mut rand_core::OsRng);
    let psk = session::derive_psk_async(&invite, KdfParams::V1)
        .await
        .map_err(anyhow::Error::msg)?;
    let total = Duration::from_secs(args.seconds + 90);
    let mut terminals = Vec::new();
    for i in 0..args.terminals {
        let mut config = session::SessionConfig::new(
            invite.clone(),
            vec![relay.url()],
            format!("term{i}"),
            SourceSpec::Test,
        );
        config.psk = Some(psk.clone());
        let (tx, rx) = mpsc::channel(4096);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let session = tokio::spawn(session::run(config, tx, cmd_rx));
        terminals.push(tokio::spawn(receive(rx, cmd_tx, session, total)));
    }

    let mut browser = Browser::launch().await?;
    let url = crate::web::page_url(
        &page_addr,
        invite.to_shareable().as_str(),
        &relay.url(),
        "browser",
    );
    let without_webcodecs_audio = "delete window.AudioEncoder; delete window.AudioDecoder;";
    let page = browser
        .open_after(&url, args.module_opus.then_some(without_webcodecs_audio))
        .await?;
    browser.join(&page).await?;
    let everyone = args.terminals as usize;
    let verified = browser
        .wait_for(&page, Duration::from_secs(60), |s| {
            s["peers"]
                .as_object()
                .is_some_and(|m| m.values().filter(|p| p["verified"] == true).count() == everyone)
        })
        .await
        .map_err(|s| anyhow!("the browser didn't verify everyone in 60 s: {s}"))?;
    let me = verified["you"].as_str().unwrap_or_default().to_string();
    // Settle (rounds, first key rotations), then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s0, cpu0, t0) = (
        browser.state(&page).await?,
        browser.metric(&page, "TaskDuration").await?,
        Instant::now(),
    );
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    let (s1, cpu1, t1) = (
        browser.state(&page).await?,
        browser.metric(&page, "TaskDuration").await?,
        Instant::now(),
    );
    let secs = (t1 - t0).as_secs_f64();

    // Terminal → browser, as the page counted and drew them.
    let frames = |s: &Value, id: &str| s["peers"][id]["frames"].as_u64().unwrap_or(0);
    let ids: Vec<String> = s1["peers"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut to_browser_fps: Vec<f64> = ids
        .iter()
        .map(|id| (frames(&s1, id) - frames(&s0, id).min(frames(&s1, id))) as f64 / secs)
        .collect();
    let drawn: u64 = ids
        .iter()
        .map(|id| frames(&s1, id) - frames(&s0, id).min(frames(&s1, id)))
        .sum();
    let mut to_browser_ms: Vec<f64> = browser
        .eval(&page, &format!("window.streamflow.latencies({drawn})"))
        .await?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();

    // Browser → terminal, as each terminal decoded them.
    let _ = browser.eval(&page, "window.streamflow.leave()").await;
    drop(browser);
    let mut from_browser_ms = Vec::new();
    let mut from_browser_fps = Vec::new();
    for t in terminals {
        let arrivals = t.await?;
        let in_window: Vec<f64> = arrivals
            .iter()
            .filter(|(from, _, at)| *from == me && *at >= t0 && *at <= t1)
            .map(|(_, ms, _)| *ms)
            .collect();
        from_browser_fps.push(in_window.len() as f64 / secs);
        from_browser_ms.extend(in_window);
    }
    server.abort();
    relay.shutdown().await;

    let wasm = crate::web::wasm();
    let gzip = miniz_oxide::deflate::compress_to_vec(wasm, 9).len() + 18;
    let mut report = Report::new(format!(
        "bench browser: headless Chromium + {} terminal members, {} s, {} cores{}",
        args.terminals,
        args.seconds,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        if args.module_opus {
            ", voice through the module's Opus"
        } else {
            ""
        }
    ));
    report.row(
        "terminal_to_browser_p50_ms",
        quantile(&mut to_browser_ms, 0.5),
        "ms (capture → drawn on the page's canvas)",
    );
    report.row(
        "terminal_to_browser_p99_ms",
        quantile(&mut to_browser_ms, 0.99),
        "ms",
    );
    report.row(
        "browser_to_terminal_p50_ms",
        quantile(&mut from_browser_ms, 0.5),
        "ms (page capture → decoded at a terminal)",
    );
    report.row(
        "browser_to_terminal_p99_ms",
        quantile(&mut from_browser_ms, 0.99),
        "ms",
    );
    report.row(
        "fps_drawn_by_browser",
        quantile(&mut to_browser_fps, 0.5),
        "fps per stream (median over senders)",
    );
    report.row(
        "fps_from_browser",
        quantile(&mut from_browser_fps, 0.5),
        "fps (median over terminal receivers)",
    );
    report.row(
        "page_cpu_percent",
        (cpu1 - cpu0) / secs * 100.0,
        "% of one core (the page's main thread: DevTools TaskDuration)",
    );
    report.row(
        "load_to_verified_ms",
        verified["verified_ms"].as_f64().unwrap_or(f64::NAN),
        "ms (navigation start → first member verified)",
    );
    report.row(
        "argon2id_in_wasm_ms",
        verified["kdf_ms"].as_f64().unwrap_or(f64::NAN),
        "ms (m = 64 MiB, t = 3, p = 1)",
    );
    report.row("wasm_kib", wasm.len() as f64 / 1024.0, "KiB");
    report.row("wasm_gzip_kib", gzip as f64 / 1024.0, "KiB (gzip -9)");
    report.note(
        "The browser, the terminals and the relay share this machine's cores; \
         terminals send the test pattern at their default view size, the \
         browser its fake camera at the size the terminals ask for."
            .to_string(),
    );
    report.print(args.json);
    Ok(())
}

/// A terminal member: records every video frame's delay (decoded, as a
/// TUI would), and leaves at the end.
async fn receive(
    mut rx: mpsc::Receiver<SessionEvent>,
    cmd_tx: mpsc::Sender<SessionCommand>,
    session: tokio::task::JoinHandle<crate::session::Ended>,
    total: Duration,
) -> Arrivals {
    let mut arrivals = Vec::new();
    let deadline = tokio::time::Instant::now() + total;
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = tokio::time::sleep_until(deadline) => break,
        };
        match ev {
            Some(SessionEvent::Video {
                from,
                jpeg: payload,
                timestamp_us,
                ..
            }) => {
                if jpeg::decode(&payload).is_ok() {
                    let ms = now_us().saturating_sub(timestamp_us) as f64 / 1000.0;
                    arrivals.push((from, ms, Instant::now()));
                }
            }
            // The browser left: the measurement is over.
            Some(SessionEvent::Room(crate::room::Event::PeerLeft { .. })) => break,
            Some(_) => {}
            None => break,
        }
    }
    let _ = cmd_tx.send(SessionCommand::Leave).await;
    let _ = session.await;
    arrivals
}
