//! Adaptive quality under thin links: a throttling proxy (~200 kbit/s)
//! between one client and the relay.

mod common;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use common::*;
use streamflow::bench::throttle::{throttle, Direction};

const THIN: u64 = 25_000; // bytes/s ≈ 200 kbit/s

fn wait_verified(clients: &[&Client], peers: usize) {
    for (i, c) in clients.iter().enumerate() {
        if c.wait_for(Duration::from_secs(30), |_| {
            c.of_type("peer_verified").len() >= peers
        })
        .is_none()
        {
            panic!(
                "client {i} not verified: {:?}\nstderr: {}",
                c.events()
                    .iter()
                    .filter(|e| e["type"] != "frame")
                    .collect::<Vec<_>>(),
                c.stderr.lock().unwrap()
            );
        }
    }
}

fn latencies(frames: &[serde_json::Value]) -> Vec<f64> {
    let mut l: Vec<f64> = frames
        .iter()
        .map(|f| f["latency_ms"].as_f64().unwrap())
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

fn p95(sorted: &[f64]) -> f64 {
    sorted[(sorted.len() - 1) * 95 / 100]
}

#[test]
fn throttled_uplink_lowers_the_senders_level_and_recovers() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let proxy = rt.block_on(throttle(relay.addr(), Direction::Up));
    let invite = fresh_invite();
    let sender = Client::spawn(&invite, &proxy.url, "Sender", &["--duration", "90"]);
    let viewer = Client::spawn(
        &invite,
        &relay.url(),
        "Viewer",
        &["--duration", "90", "--source", "none"],
    );
    wait_verified(&[&sender, &viewer], 1);
    std::thread::sleep(Duration::from_secs(2));

    let throttled_at = Instant::now();
    proxy.rate.store(THIN, Relaxed);
    let dropped = sender
        .wait_for(Duration::from_secs(10), |e| {
            e["type"] == "quality" && e["reason"] == "uplink"
        })
        .expect("the sender's level drops under a thin uplink");
    let reaction = throttled_at.elapsed();
    assert!(dropped["level"].as_u64().unwrap() < 4);
    // Give adaptation a few seconds, then look at what the viewer sees.
    std::thread::sleep(Duration::from_secs(8));
    let window = Instant::now();
    std::thread::sleep(Duration::from_secs(6));
    let frames = viewer.between("frame", window, Instant::now());
    assert!(frames.len() > 10, "frames still flow: {}", frames.len());
    let l = latencies(&frames);
    assert!(
        p95(&l) < 1000.0,
        "viewer delay p95 {} ms under a thin uplink",
        p95(&l)
    );
    eprintln!("viewer delay p95 {:.0} ms under a thin uplink", p95(&l));

    let lifted_at = Instant::now();
    proxy.rate.store(0, Relaxed);
    // Back to the top level: one step per 5 quiet seconds, 4 steps at most.
    let deadline = lifted_at + Duration::from_secs(40);
    loop {
        let top = sender
            .between("quality", lifted_at, Instant::now())
            .iter()
            .any(|e| e["reason"] == "recovered" && e["level"] == 4);
        if top {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not back at the top level 40 s after lifting the throttle"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "level dropped {:.1} s after throttling; back at the top {:.1} s after lifting",
        reaction.as_secs_f64(),
        lifted_at.elapsed().as_secs_f64()
    );
    drop((sender, viewer));
    rt.block_on(relay.shutdown());
}

#[test]
fn one_throttled_receiver_does_not_drag_the_room_down() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let proxy = rt.block_on(throttle(relay.addr(), Direction::Down));
    let invite = fresh_invite();
    let sender = Client::spawn(&invite, &relay.url(), "Sender", &["--duration", "30"]);
    let fast = Client::spawn(
        &invite,
        &relay.url(),
        "Fast",
        &["--duration", "30", "--source", "none"],
    );
    let slow = Client::spawn(
        &invite,
        &proxy.url,
        "Slow",
        &["--duration", "30", "--source", "none"],
    );
    wait_verified(&[&sender, &fast, &slow], 2);
    proxy.rate.store(THIN, Relaxed);
    // Let the slow link's queues reach their steady state, then measure.
    std::thread::sleep(Duration::from_secs(4));
    let from = Instant::now();
    std::thread::sleep(Duration::from_secs(10));
    let to = Instant::now();

    let slow_frames = slow.between("frame", from, to);
    assert!(slow_frames.len() > 20, "the slow receiver still gets video");
    let l = latencies(&slow_frames);
    assert!(p95(&l) < 1000.0, "slow receiver delay p95 {} ms", p95(&l));

    eprintln!(
        "slow receiver delay p95 {:.0} ms over {} frames",
        p95(&l),
        l.len()
    );
    let fast_frames = fast.between("frame", from, to);
    let fps = fast_frames.len() as f64 / to.duration_since(from).as_secs_f64();
    assert!(fps >= 27.0, "the fast receiver dropped to {fps:.1} fps");
    assert!(
        sender.of_type("quality").is_empty(),
        "the sender's level changed: {:?}",
        sender.of_type("quality")
    );
    drop((sender, fast, slow));
    rt.block_on(relay.shutdown());
}
