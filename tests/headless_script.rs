//! Headless mode as a script author meets it: exit codes that say whether
//! the call happened, events in a usable order, bad commands answered on
//! stdout, and flags that only make sense headless refused elsewhere.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{fresh_invite, relay, Client, BIN};

/// A free loopback port with nothing listening on it.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn a_call_that_never_connected_exits_4_whatever_the_duration() {
    let url = format!("ws://127.0.0.1:{}", dead_port());
    let mut client = Client::spawn(&fresh_invite(), &url, "Alone", &["--duration", "2"]);
    let code = client.wait(Duration::from_secs(30));
    assert_eq!(code, Some(4), "stderr: {}", client.stderr.lock().unwrap());
    let events = client.events();
    assert!(events.iter().all(|e| e["type"] != "joined"), "{events:?}");
    let error = events
        .iter()
        .find(|e| e["type"] == "error")
        .expect("an error event");
    assert_eq!(error["code"], "relay_unreachable", "{error}");
    assert!(error["message"].as_str().unwrap().contains(&url), "{error}");
    // No sink: no audio clock either.
    assert!(
        events.iter().all(|e| e["type"] != "audio_clock"),
        "{events:?}"
    );
}

#[test]
fn headless_flags_without_headless_are_refused() {
    for args in [
        &["--duration", "4"][..],
        &["--send-chat", "hi"][..],
        &["--tile", "8x8"][..],
        &["--events", "-frame"][..],
    ] {
        let out = Command::new(BIN)
            .args(["join", &fresh_invite()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("required") && stderr.contains("--headless"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn script_events_come_in_order_filtered_and_bad_commands_are_answered() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let invite = fresh_invite();
    let dir = std::env::temp_dir().join(format!("sf-script-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("heard.wav");
    let mut a = Client::spawn(
        &invite,
        &relay.url(),
        "A",
        &[
            "--events",
            "-frame",
            "--audio-sink",
            wav.to_str().unwrap(),
            "--duration",
            "60",
        ],
    );
    let mut b = Client::spawn(&invite, &relay.url(), "B", &["--duration", "60"]);
    let b_id = b
        .wait_for(Duration::from_secs(30), |e| e["type"] == "joined")
        .and_then(|e| e["you"].as_str().map(String::from))
        .expect("B joined");
    a.wait_for(Duration::from_secs(30), |e| {
        e["type"] == "peer_verified" && e["peer"] == b_id.as_str()
    })
    .expect("A verified B");

    // Bad lines get an error event each, and the call goes on.
    a.command("not json");
    a.command("");
    a.command(r#"{"type":"dance"}"#);
    let long = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(5_000));
    a.command(&long);
    a.command(r#"{"type":"mute"}"#);
    a.wait_for(Duration::from_secs(10), |e| {
        e["type"] == "ack" && e["command"] == "mute"
    })
    .expect("mute acknowledged");
    let bad: Vec<_> = a
        .of_type("error")
        .into_iter()
        .filter(|e| e["code"] == "bad_command")
        .collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert!(
        bad[3]["message"].as_str().unwrap().contains("at most 2000"),
        "{bad:?}"
    );

    // B leaves: nothing about B after its peer_left.
    b.command(r#"{"type":"leave"}"#);
    assert_eq!(b.wait(Duration::from_secs(20)), Some(0));
    a.wait_for(Duration::from_secs(20), |e| {
        e["type"] == "peer_left" && e["peer"] == b_id.as_str()
    })
    .expect("A saw B leave");
    std::thread::sleep(Duration::from_secs(3));
    a.command(r#"{"type":"leave"}"#);
    assert_eq!(a.wait(Duration::from_secs(20)), Some(0));

    let events = a.events();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "joined", "joined comes first: {kinds:?}");
    assert!(
        kinds.contains(&"audio_clock"),
        "a sink has a clock: {kinds:?}"
    );
    assert!(!kinds.contains(&"frame"), "--events -frame: {kinds:?}");
    let left_at = events
        .iter()
        .position(|e| e["type"] == "peer_left" && e["peer"] == b_id.as_str())
        .unwrap();
    let after: Vec<_> = events[left_at + 1..]
        .iter()
        .filter(|e| e["peer"] == b_id.as_str() || e["from"] == b_id.as_str())
        .collect();
    assert!(after.is_empty(), "about B after it left: {after:?}");
    let _ = std::fs::remove_dir_all(&dir);
    rt.block_on(relay.shutdown());
}

#[test]
fn a_missing_default_microphone_does_not_stop_the_call() {
    if streamflow::media::audio::device::has_microphone() {
        eprintln!("this machine has a microphone: nothing to check");
        return;
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let mut c = Client::spawn(
        &fresh_invite(),
        &relay.url(),
        "NoMic",
        &["--audio-source", "mic", "--duration", "3"],
    );
    assert_eq!(c.wait(Duration::from_secs(30)), Some(0));
    let stderr = c.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("no microphone found") && stderr.contains("continuing without voice"),
        "{stderr}"
    );
    // Named explicitly: its absence is an error naming it.
    let out = Command::new(BIN)
        .args([
            "join",
            &fresh_invite(),
            "--headless",
            "--relay",
            &relay.url(),
        ])
        .args(["--audio-source", "mic:NoSuchMic", "--audio-sink", "none"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("NoSuchMic"), "{stderr}");
    rt.block_on(relay.shutdown());
}

/// `host --headless`: the invite as the first event, a call others join,
/// and the host's `leave` ending it for everyone.
#[test]
fn a_headless_host_prints_the_invite_and_ends_the_call() {
    use std::io::{BufRead, BufReader, Write};
    let mut host = Command::new(BIN)
        .args(["host", "--headless", "--listen", "127.0.0.1:0"])
        .args([
            "--source",
            "test",
            "--audio-source",
            "none",
            "--audio-sink",
            "none",
        ])
        .args(["--name", "Host", "--events", "-frame"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(host.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["type"], "invite", "{first}");
    let (invite, url) = (
        first["invite"].as_str().unwrap().to_string(),
        first["relay"].as_str().unwrap().to_string(),
    );
    assert!(first["join"].as_str().unwrap().contains(&url), "{first}");
    let mut guest = Client::spawn(&invite, &url, "Guest", &["--duration", "60"]);
    guest
        .wait_for(Duration::from_secs(30), |e| {
            e["type"] == "peer_verified" && e["name"] == "Host"
        })
        .expect("the guest verified the host");
    // The host's own events: joined first, then the guest verified.
    let mut saw_verified = false;
    for line in lines.by_ref() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["type"] == "peer_verified" && v["name"] == "Guest" {
            saw_verified = true;
            break;
        }
    }
    assert!(saw_verified);
    writeln!(host.stdin.as_mut().unwrap(), r#"{{"type":"leave"}}"#).unwrap();
    assert_eq!(guest.wait(Duration::from_secs(20)), Some(0));
    assert!(
        guest.of_type("call_ended").len() == 1,
        "{:?}",
        guest.events()
    );
    let status = host.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// An invite file whose first lines are blank (an editor's leading
/// newline) is read from its first real line.
#[test]
fn an_invite_file_skips_blank_lines() {
    let dir = std::env::temp_dir().join(format!("sf-invfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("invite.txt");
    std::fs::write(&file, format!("\n  \n{}\n", fresh_invite())).unwrap();
    let url = format!("ws://127.0.0.1:{}", dead_port());
    let out = Command::new(BIN)
        .args(["join", "--headless", "--duration", "1", "--relay", &url])
        .args(["--invite-file", file.to_str().unwrap()])
        .args([
            "--source",
            "none",
            "--audio-source",
            "none",
            "--audio-sink",
            "none",
        ])
        .env_remove("STREAMFLOW_INVITE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 4: the invite was fine, the relay wasn't there (2 would be the invite).
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
