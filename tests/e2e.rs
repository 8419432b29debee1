//! End-to-end: the real `streamflow` binary, headless, through a real relay
//! on loopback (the seed's 5-browser scenario, in terminals).

mod common;

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use common::*;

#[test]
fn five_clients_exchange_video_and_chat_and_the_relay_learns_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let (url, tapped) = rt.block_on(tap(relay.url()));
    let invite = fresh_invite();
    let names: Vec<String> = (0..5).map(|i| format!("Member{i}x")).collect();
    let mut clients: Vec<Client> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            // Member 4 leaves early so the others see it go.
            let duration = if i == 4 { "9" } else { "17" };
            let chat = format!("secret chat number {i}");
            Client::spawn(
                &invite,
                &url,
                name,
                &["--duration", duration, "--send-chat", &chat],
            )
        })
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(
            c.wait(Duration::from_secs(60)),
            Some(0),
            "client {i} failed: {}",
            c.stderr.lock().unwrap()
        );
    }
    let ids: Vec<String> = clients.iter().map(|c| c.my_id().expect("joined")).collect();
    let name_of: HashMap<&str, &str> = ids
        .iter()
        .map(String::as_str)
        .zip(names.iter().map(String::as_str))
        .collect();

    for (r, receiver) in clients.iter().enumerate() {
        // Everyone verified everyone else, under the right names.
        let verified: BTreeSet<String> = receiver
            .of_type("peer_verified")
            .iter()
            .map(|e| {
                let peer = e["peer"].as_str().unwrap();
                assert_eq!(e["name"], name_of[peer]);
                peer.to_string()
            })
            .collect();
        let others: BTreeSet<String> = ids.iter().filter(|id| **id != ids[r]).cloned().collect();
        assert_eq!(verified, others, "receiver {r} verified");

        // Video: ≥ 75% of what each sender sent while both were in the call,
        // over at least 10 s (300 frames at 30 fps) for the long-lived ones.
        // Not all: when a path is momentarily behind (here five debug-build
        // members decoding four videos each on two cores), the newest frame
        // wins over older ones waiting (README, flow control). Measured on
        // this 2-core machine: 78–100% per pair, the short-lived member
        // (whose window is all joins, handshakes and key changes) and busy
        // runs lowest; a floor of 85% failed by chance about one run in
        // four. A lost key or a broken path shows as far less.
        for (s, sender) in ids.iter().enumerate() {
            if s == r {
                continue;
            }
            let seqs: Vec<u64> = receiver
                .of_type("frame")
                .iter()
                .filter(|e| e["from"] == sender.as_str())
                .map(|e| e["seq"].as_u64().unwrap())
                .collect();
            let distinct: BTreeSet<u64> = seqs.iter().copied().collect();
            assert_eq!(distinct.len(), seqs.len(), "duplicate frames {r}<-{s}");
            let (lo, hi) = (
                *distinct.first().expect("some frames"),
                *distinct.last().unwrap(),
            );
            let sent = hi - lo + 1;
            let got = distinct.len() as u64;
            let min_window = if r == 4 || s == 4 { 120 } else { 300 };
            assert!(
                sent >= min_window,
                "{r}<-{s}: only {sent} frames in the window"
            );
            assert!(got * 100 >= sent * 75, "{r}<-{s}: got {got} of {sent}");
        }

        // Chat from every other member, with its name.
        let chats = receiver.of_type("chat");
        for (s, sender) in ids.iter().enumerate() {
            if s == r {
                continue;
            }
            assert!(
                chats.iter().any(|c| c["from"] == sender.as_str()
                    && c["name"] == names[s].as_str()
                    && c["text"] == format!("secret chat number {s}")),
                "{r} missed chat from {s}: {chats:?}"
            );
        }
    }

    // Member 4 left: the others saw it go and rotated keys after that.
    for receiver in &clients[..4] {
        let events = receiver.events();
        let left = events
            .iter()
            .position(|e| e["type"] == "peer_left" && e["peer"] == ids[4].as_str())
            .expect("peer_left for member 4");
        assert!(
            events[left..].iter().any(|e| e["type"] == "key_rotated"),
            "no key_rotated after member 4 left"
        );
        assert!(receiver.of_type("decrypt_failed").len() < 30);
    }

    // The relay's view: blobs of ciphertext only.
    let tapped = tapped.lock().unwrap().clone();
    assert!(
        tapped.len() > 1000,
        "tap saw only {} messages",
        tapped.len()
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let sample = streamflow::media::jpeg::encode(
        &streamflow::media::pattern::TestPattern::new("x").render(80, 48),
        45,
    );
    let jpeg_head = sample[..10].to_vec();
    assert_eq!(&jpeg_head[..4], &[0xff, 0xd8, 0xff, 0xe0]);
    let mut blobs = 0;
    for text in &tapped {
        for name in &names {
            assert!(!text.contains(name.as_str()), "relay saw a display name");
        }
        assert!(!text.contains("secret chat"), "relay saw chat text");
        let msg: serde_json::Value = serde_json::from_str(text).unwrap();
        if msg["type"] == "blob" {
            blobs += 1;
            let data = b64.decode(msg["data"].as_str().unwrap()).unwrap();
            // A JPEG's first bytes are fixed (SOI, then the JFIF APP0
            // segment); long enough that random ciphertext never matches.
            assert!(
                !data
                    .windows(jpeg_head.len())
                    .any(|w| w == jpeg_head.as_slice()),
                "relay saw a JPEG header"
            );
            assert!(
                !data.windows(6).any(|w| w == b"secret"),
                "relay saw chat text"
            );
            for name in &names {
                assert!(!data.windows(name.len()).any(|w| w == name.as_bytes()));
            }
        }
    }
    assert!(blobs > 1000);
    rt.block_on(relay.shutdown());
}

#[test]
fn wrong_passphrase_exits_3_and_a_lone_joiner_waits() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();

    // Alone in a room: unverified, not wrong; leaves cleanly at the end.
    let mut lone = Client::spawn(&fresh_invite(), &url, "Lone", &["--duration", "7"]);
    assert_eq!(
        lone.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        lone.stderr.lock().unwrap()
    );
    assert_eq!(lone.of_type("joined").len(), 1);
    assert!(lone.of_type("error").is_empty());

    // Two members who agree; an intruder with other words is refused by
    // both: that is the verdict.
    let invite = fresh_invite();
    let mut member = Client::spawn(&invite, &url, "Member", &["--duration", "40"]);
    let other = Client::spawn(&invite, &url, "Other", &["--duration", "40"]);
    for m in [&member, &other] {
        m.wait_for(Duration::from_secs(20), |e| e["type"] == "peer_verified")
            .expect("the members verified each other");
    }
    let (room, _) = invite.split_once('-').unwrap();
    let wrong = format!("{room}-these-are-not-the-right-words");
    let started = std::time::Instant::now();
    let mut intruder = Client::spawn(&wrong, &url, "Intruder", &[]);
    let code = intruder.wait(Duration::from_secs(20));
    assert_eq!(code, Some(3), "stderr: {}", intruder.stderr.lock().unwrap());
    // 10 s deadline for the verdict, not counting the key derivation on a
    // loaded machine (it is reported before connecting).
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(intruder.stderr.lock().unwrap().contains("wrong passphrase"));
    let errors = intruder.of_type("error");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["code"], "wrong_passphrase");
    // The members flagged the intruder and carried on.
    for m in [&member, &other] {
        m.wait_for(Duration::from_secs(5), |e| e["type"] == "auth_mismatch")
            .expect("member flags auth_mismatch");
    }
    assert!(
        member.child.try_wait().unwrap().is_none(),
        "member still in the call"
    );
    rt.block_on(relay.shutdown());
}

/// A lone member with other words can't tell who is wrong, nor can the
/// joiner: no "wrong passphrase" (exit 3) from one refusal. The joiner is
/// told the member here disagrees, keeps waiting, and its `--duration`
/// ends with exit 0.
#[test]
fn one_member_with_other_words_is_not_a_verdict() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let (room, _) = invite.split_once('-').unwrap();
    let squatter = Client::spawn(
        &format!("{room}-these-are-other-words"),
        &url,
        "Squatter",
        &["--duration", "40"],
    );
    squatter
        .wait_for(Duration::from_secs(20), |e| e["type"] == "joined")
        .expect("joined");
    let mut joiner = Client::spawn(&invite, &url, "Joiner", &["--duration", "9"]);
    let told = joiner.wait_for(Duration::from_secs(25), |e| {
        e["type"] == "passphrase_disagrees"
    });
    assert!(told.is_some(), "{}", joiner.stderr.lock().unwrap());
    assert_eq!(
        joiner.wait(Duration::from_secs(25)),
        Some(0),
        "{}",
        joiner.stderr.lock().unwrap()
    );
    assert!(joiner.of_type("error").is_empty());
    rt.block_on(relay.shutdown());
}

#[test]
fn join_without_invite_in_headless_is_a_usage_error() {
    let out = std::process::Command::new(BIN)
        .args(["join", "--headless", "--relay", "ws://127.0.0.1:9"])
        .env_remove("STREAMFLOW_INVITE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("never prompts"));
    let out = std::process::Command::new(BIN)
        .args(["join", "room-single", "--headless"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_relay_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Client::spawn(&fresh_invite(), &format!("ws://127.0.0.1:{port}"), "x", &[]);
    assert_eq!(c.wait(Duration::from_secs(40)), Some(4));
    assert_eq!(c.of_type("error")[0]["code"], "relay_unreachable");
}

#[test]
fn invite_prints_one_line_and_parses() {
    let out = std::process::Command::new(BIN)
        .arg("invite")
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let (invite, warnings) = streamflow::invite::Invite::parse(stdout.trim()).unwrap();
    assert!(warnings.is_empty());
    assert_eq!(invite.room().len(), 16);
}

#[test]
fn relay_help_is_the_same_in_both_binaries() {
    let a = std::process::Command::new(BIN)
        .args(["relay", "--help"])
        .output()
        .unwrap();
    // The relay crate's own binary sits beside ours in a workspace build.
    let b =
        std::process::Command::new(std::path::Path::new(BIN).with_file_name("streamflow-relay"))
            .arg("--help")
            .output();
    let a = String::from_utf8(a.stdout).unwrap();
    let flat = a.split_whitespace().collect::<Vec<_>>().join(" ");
    for flag in [
        "--listen",
        "--metrics-listen",
        "--tls-cert",
        "--max-message-bytes",
        "--max-peers-per-room",
        "--max-rooms",
        "--rate-per-sec",
        "--rate-burst",
        "--ping-interval",
        "--idle-timeout",
        "[default: 127.0.0.1:8787]",
        "[default: 1MiB]",
    ] {
        assert!(flat.contains(flag), "streamflow relay --help lacks {flag}");
    }
    if let Ok(b) = b {
        let b = String::from_utf8(b.stdout).unwrap();
        let opts = |s: &str| s[s.find("Options:").unwrap()..].replace("-V, --version", "");
        assert_eq!(
            opts(&a)
                .lines()
                .filter(|l| !l.contains("--version") && !l.contains("Print version"))
                .collect::<Vec<_>>(),
            opts(&b)
                .lines()
                .filter(|l| !l.contains("--version") && !l.contains("Print version"))
                .collect::<Vec<_>>()
        );
    }
}

/// A line typed while alone reaches nobody, now or later: the member is
/// told, and someone joining afterwards never sees it (DESIGN.md §3 "Chat
/// delivery").
#[test]
fn chat_typed_alone_never_reaches_a_later_joiner() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let mut alone = Client::spawn(
        &invite,
        &url,
        "Early",
        &["--duration", "10", "--send-chat", "before anyone came"],
    );
    alone
        .wait_for(Duration::from_secs(20), |e| e["type"] == "chat_undelivered")
        .expect("told the line went nowhere");
    let mut late = Client::spawn(&invite, &url, "Late", &["--duration", "6"]);
    late.wait_for(Duration::from_secs(20), |e| e["type"] == "peer_verified")
        .expect("late joiner verified");
    assert_eq!(late.wait(Duration::from_secs(30)), Some(0));
    assert_eq!(alone.wait(Duration::from_secs(30)), Some(0));
    assert!(
        late.of_type("chat").is_empty(),
        "the late joiner got {:?}",
        late.of_type("chat")
    );
    let told = alone.of_type("chat_undelivered");
    assert_eq!(told[0]["text"], "before anyone came");
    rt.block_on(relay.shutdown());
}
