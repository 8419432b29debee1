//! Sharing a terminal in the call, with the real binary: a real pty running
//! a real shell on the sharer's machine, viewers who see only its screen,
//! and typing only by the member the sharer lets type.

mod common;

use std::time::{Duration, Instant};

use common::{fresh_invite, relay, Client};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A member that shares `sh` with a known prompt.
fn sharer(invite: &str, url: &str, extra: &[&str]) -> Client {
    let mut args = vec![
        "--source",
        "none",
        "--share",
        "PS1='share$ ' exec sh -i",
        "--share-size",
        "60x12",
    ];
    args.extend_from_slice(extra);
    Client::spawn(invite, url, "Ada", &args)
}

fn viewer(invite: &str, url: &str, name: &str) -> Client {
    Client::spawn(invite, url, name, &["--source", "none"])
}

/// The newest `share_screen` from `from` whose text contains `needle`.
fn screen_with(c: &Client, from: &str, needle: &str) -> Option<Value> {
    let needle = needle.to_string();
    let from = from.to_string();
    c.wait_for(WAIT, move |e| {
        e["type"] == "share_screen"
            && e["from"] == from.as_str()
            && e["text"].as_str().is_some_and(|t| t.contains(&needle))
    })
}

fn id(c: &Client) -> String {
    c.wait_for(WAIT, |e| e["type"] == "joined")
        .and_then(|e| e["you"].as_str().map(str::to_string))
        .expect("joined")
}

fn verified(c: &Client, peer: &str) {
    let peer = peer.to_string();
    assert!(
        c.wait_for(WAIT, move |e| e["type"] == "peer_verified"
            && e["peer"] == peer.as_str())
            .is_some(),
        "never verified: {}",
        c.stderr.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_see_the_screen_and_only_the_granted_member_types() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    let mut ada = sharer(&invite, &url, &[]);
    let mut bob = viewer(&invite, &url, "Bob");
    let (ada_id, bob_id) = (id(&ada), id(&bob));
    verified(&ada, &bob_id);

    // Bob sees the shell's prompt: the screen, not the bytes.
    let started = bob
        .wait_for(WAIT, |e| e["type"] == "share_started")
        .expect("share_started");
    assert_eq!(started["from"], ada_id.as_str());
    assert_eq!(
        (started["cols"].as_u64(), started["rows"].as_u64()),
        (Some(60), Some(12))
    );
    screen_with(&bob, &ada_id, "share$").expect("the prompt reaches Bob");

    // Not granted: Bob's keys never leave his machine.
    bob.command(&format!(
        r#"{{"type":"keys","to":"{ada_id}","text":"echo not-allowed\r"}}"#
    ));
    // Ada types in her own share.
    ada.command(r#"{"type":"keys","text":"echo ada-$((6*7))\r"}"#);
    screen_with(&bob, &ada_id, "ada-42").expect("Ada's own typing shows");

    // Granted: Bob's keys reach the program.
    ada.command(&format!(r#"{{"type":"grant","peer":"{bob_id}"}}"#));
    let ada2 = ada_id.clone();
    let b2 = bob_id.clone();
    bob.wait_for(WAIT, move |e| {
        e["type"] == "share_control" && e["from"] == ada2.as_str() && e["to"] == b2.as_str()
    })
    .expect("Bob is told he may type");
    bob.command(&format!(
        r#"{{"type":"keys","to":"{ada_id}","text":"echo bob-$((5+5))\r"}}"#
    ));
    screen_with(&ada, &ada_id, "bob-10").expect("Bob's keys reach Ada's shell");

    // A late joiner gets the current screen at once.
    let carol = viewer(&invite, &url, "Carol");
    let carol_id = id(&carol);
    screen_with(&carol, &ada_id, "bob-10").expect("Carol sees the screen as it is");
    verified(&ada, &carol_id);

    // Revoked: Bob may no longer type.
    ada.command(r#"{"type":"revoke"}"#);
    let ada3 = ada_id.clone();
    bob.wait_for(WAIT, move |e| {
        e["type"] == "share_control" && e["from"] == ada3.as_str() && e["to"].is_null()
    })
    .expect("Bob is told the grant is gone");
    bob.command(&format!(
        r#"{{"type":"keys","to":"{ada_id}","text":"echo after-revoke\r"}}"#
    ));
    ada.command(r#"{"type":"keys","text":"echo marker-$((1+1))\r"}"#);
    screen_with(&carol, &ada_id, "marker-2").expect("the share goes on");
    let all_text: String = [&ada, &bob, &carol]
        .iter()
        .flat_map(|c| c.of_type("share_screen"))
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .collect();
    for refused in ["not-allowed", "after-revoke"] {
        assert!(!all_text.contains(refused), "{refused} was typed");
    }
    let stderr = bob.stderr.lock().unwrap().clone();
    assert!(stderr.contains("has not let you type"), "{stderr}");

    // Resized: the program and every viewer see the new size.
    ada.command(r#"{"type":"resize_share","cols":70,"rows":10}"#);
    ada.command(r#"{"type":"keys","text":"clear; stty size\r"}"#);
    let resized = screen_with(&carol, &ada_id, "10 70").expect("stty sees the new size");
    assert_eq!(
        (resized["cols"].as_u64(), resized["rows"].as_u64()),
        (Some(70), Some(10))
    );

    // The program exits: the share is gone for everyone.
    ada.command(r#"{"type":"keys","text":"exit\r"}"#);
    for c in [&bob, &carol] {
        let ada4 = ada_id.clone();
        let stopped = c
            .wait_for(WAIT, move |e| {
                e["type"] == "share_stopped" && e["from"] == ada4.as_str()
            })
            .expect("share_stopped");
        assert_eq!(stopped["reason"], "the program exited");
    }
    bob.command(r#"{"type":"leave"}"#);
    ada.command(r#"{"type":"leave"}"#);
}

/// Whatever the shared program prints, viewers get cells: no escape
/// sequence (clipboard writes, title changes, mouse modes, DCS, bells)
/// survives into `share_screen`, and the sharer leaving removes the share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_output_reaches_viewers_as_plain_cells() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    let hostile = r"printf 'A\033]52;c;aGVsbG8=\007B\033]0;owned\007C\033[?1000hD\033Pq#0;2;0;0;0\033\\E\007\007\007F\n'; sleep 60";
    let mut ada = Client::spawn(
        &invite,
        &url,
        "Ada",
        &["--source", "none", "--share", hostile],
    );
    let bob = viewer(&invite, &url, "Bob");
    let ada_id = id(&ada);
    let screen = screen_with(&bob, &ada_id, "ABCDEF").expect("the text arrives");
    let text = screen["text"].as_str().unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(
        !text.contains("owned") && !text.contains("aGVsbG8"),
        "{text:?}"
    );
    // Ada leaves: Bob's copy of the share goes with her.
    ada.command(r#"{"type":"leave"}"#);
    let since = Instant::now();
    let ada2 = ada_id.clone();
    let stopped = bob
        .wait_for(WAIT, move |e| {
            e["type"] == "share_stopped" && e["from"] == ada2.as_str()
        })
        .expect("share_stopped when the sharer leaves");
    assert!(since.elapsed() < WAIT);
    assert!(stopped["reason"].is_string());
}

/// A real editor in a share: the member the sharer lets type edits a file
/// on the sharer's machine with `vi`, and every viewer sees it happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_member_edits_a_file_in_vi() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    let dir = std::env::temp_dir().join(format!("sf-share-vi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("notes.txt");
    std::fs::write(&file, "first line\n").unwrap();
    let vi = format!("exec vi -u NONE -n {}", file.display());
    let mut ada = Client::spawn(
        &invite,
        &url,
        "Ada",
        &["--source", "none", "--share", &vi, "--share-size", "60x12"],
    );
    let mut bob = viewer(&invite, &url, "Bob");
    let (ada_id, bob_id) = (id(&ada), id(&bob));
    verified(&ada, &bob_id);
    screen_with(&bob, &ada_id, "first line").expect("vi shows the file");
    ada.command(&format!(r#"{{"type":"grant","peer":"{bob_id}"}}"#));
    let a = ada_id.clone();
    bob.wait_for(WAIT, move |e| {
        e["type"] == "share_control" && e["from"] == a.as_str()
    })
    .expect("granted");
    bob.command(&format!(
        r#"{{"type":"keys","to":"{ada_id}","text":"Goadded by bob\u001b:wq\r"}}"#
    ));
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if text == "first line\nadded by bob\n" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "file: {text:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let a = ada_id.clone();
    bob.wait_for(WAIT, move |e| {
        e["type"] == "share_stopped" && e["from"] == a.as_str()
    })
    .expect("vi exited: the share stopped");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--record-share FILE.cast`: what a viewer saw, as asciinema v2; a path
/// that can't be written is a usage error before the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_records_the_share_as_asciicast() {
    let relay = relay().await;
    let url = relay.url();
    let invite = fresh_invite();
    let dir = std::env::temp_dir().join(format!("sf-share-cast-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cast = dir.join("share.cast");
    let ada = sharer(&invite, &url, &[]);
    let mut bob = Client::spawn(
        &invite,
        &url,
        "Bob",
        &["--source", "none", "--record-share", cast.to_str().unwrap()],
    );
    let ada_id = id(&ada);
    screen_with(&bob, &ada_id, "share$").expect("the prompt reaches Bob");
    bob.command(r#"{"type":"leave"}"#);
    assert_eq!(bob.wait(WAIT), Some(0));
    let text = std::fs::read_to_string(&cast).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["version"], 2, "{text}");
    assert_eq!(lines[0]["width"], 60);
    assert!(
        lines[1..]
            .iter()
            .any(|l| l[1] == "o" && l[2].as_str().is_some_and(|d| d.contains("share$"))),
        "{text}"
    );
    let bad = Client::spawn(
        &invite,
        &url,
        "Carol",
        &["--record-share", "/nonexistent/dir/x.cast"],
    );
    let mut bad = bad;
    assert_eq!(bad.wait(WAIT), Some(2), "{}", bad.stderr.lock().unwrap());
    assert!(bad.stderr.lock().unwrap().contains("--record-share"));
    let _ = std::fs::remove_dir_all(&dir);
}
