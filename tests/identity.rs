//! Identity across calls, through the real binary: `streamflow id`, the
//! key file's permissions, known peers going new → seen → verified, a
//! replaced key warned as changed, two members with one name told apart,
//! the relay never seeing an identity, `--only-known`, and the TUI's marks
//! and warning in tmux at 80×24.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{fresh_config_dir, fresh_invite, relay, tap, Client, BIN};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

/// `streamflow id` for the person whose config is `dir`: its fingerprint
/// (64 hex), and the whole output.
fn id(dir: &Path, extra: &[&str]) -> (Option<String>, String, i32) {
    let out = Command::new(BIN)
        .arg("id")
        .args(extra)
        .env("XDG_CONFIG_HOME", dir)
        .output()
        .expect("run streamflow id");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let fp = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("fingerprint"))
        .map(|f| f.split_whitespace().collect::<String>());
    (fp, text, out.status.code().unwrap_or(-1))
}

/// The identity public key in `dir`'s key file.
fn identity_public(dir: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(dir.join("streamflow/identity")).unwrap();
    let seed = base64::engine::general_purpose::STANDARD
        .decode(text.lines().nth(1).unwrap().trim())
        .unwrap();
    streamflow::crypto::sign::SigningIdentity::from_seed(&seed.try_into().unwrap()).public()
}

/// The `peer_verified` `who` saw for the member named `name`.
fn verified_as(who: &Client, name: &str) -> Option<Value> {
    who.wait_for(WAIT, |e| e["type"] == "peer_verified" && e["name"] == name)
}

/// Alice and Bob in one call; Alice says "we compared the words" if
/// `verify`. Returns what Alice printed.
fn call(url: &str, alice: &Path, bob: &Path, verify: bool, alice_extra: &[&str]) -> Vec<Value> {
    let invite = fresh_invite();
    let mut args = vec!["--duration", "60"];
    args.extend(alice_extra);
    let mut a = Client::spawn_as(alice, &invite, url, "alice", &args);
    let mut b = Client::spawn_as(bob, &invite, url, "bob", &["--duration", "60"]);
    assert!(
        verified_as(&a, "bob").is_some(),
        "{}",
        a.stderr.lock().unwrap()
    );
    assert!(
        verified_as(&b, "alice").is_some(),
        "{}",
        b.stderr.lock().unwrap()
    );
    if verify {
        a.wait_for(WAIT, |e| {
            e["type"] == "safety_words" && !e["words"].as_str().unwrap_or("").is_empty()
        })
        .expect("safety words");
        a.command(r#"{"type":"verify"}"#);
        a.wait_for(WAIT, |e| e["type"] == "identities_verified")
            .expect("verified");
    }
    for c in [&mut a, &mut b] {
        c.command(r#"{"type":"leave"}"#);
        assert_eq!(c.wait(WAIT), Some(0), "{}", c.stderr.lock().unwrap());
    }
    a.events()
}

fn bob_in(events: &[Value]) -> Value {
    events
        .iter()
        .find(|e| e["type"] == "peer_verified" && e["name"] == "bob")
        .cloned()
        .expect("bob verified")
}

#[test]
fn known_peers_go_new_seen_verified_and_a_replaced_key_is_changed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let (alice, bob) = (fresh_config_dir(), fresh_config_dir());
    let (bob_fp, shown, code) = id(&bob, &[]);
    assert_eq!(code, 0, "{shown}");
    let bob_fp = bob_fp.expect("a fingerprint line");
    assert!(
        shown.contains("words") && shown.contains("+---[identity]"),
        "{shown}"
    );
    let url = relay.url();

    let first = bob_in(&call(&url, &alice, &bob, false, &[]));
    assert_eq!(first["known"], "new");
    assert_eq!(first["identity"], bob_fp.as_str());
    let second = call(&url, &alice, &bob, true, &[]);
    assert_eq!(bob_in(&second)["known"], "seen");
    let marked = second
        .iter()
        .find(|e| e["type"] == "identities_verified")
        .unwrap();
    assert_eq!(marked["peers"][0]["identity"], bob_fp.as_str());
    let third = bob_in(&call(&url, &alice, &bob, false, &[]));
    assert_eq!(third["known"], "verified");
    let file = std::fs::read_to_string(alice.join("streamflow/known_peers")).unwrap();
    let line = file.lines().find(|l| l.starts_with(&bob_fp)).unwrap();
    assert!(
        line.contains(" verified ") && line.ends_with("bob"),
        "{file}"
    );

    // Bob makes a new key: Alice is warned, loudly, with the date she
    // verified the old one.
    let (new_fp, shown, code) = id(&bob, &["--new", "--yes"]);
    assert_eq!(code, 0, "{shown}");
    assert_ne!(new_fp.as_deref(), Some(bob_fp.as_str()));
    let fourth = call(&url, &alice, &bob, false, &[]);
    assert_eq!(bob_in(&fourth)["known"], "changed");
    let warned = fourth
        .iter()
        .find(|e| e["type"] == "peer_identity_changed")
        .expect("a peer_identity_changed event");
    assert_eq!(warned["previous"], bob_fp.as_str());
    assert_eq!(warned["previous_verified"], true);
    let today = streamflow::identity::dates::today();
    assert!(
        warned["message"]
            .as_str()
            .unwrap()
            .contains(&format!("not the one you verified on {today}")),
        "{warned}"
    );
    // Still changed in the next call, until Alice verifies it.
    let fifth = call(&url, &alice, &bob, true, &[]);
    assert_eq!(bob_in(&fifth)["known"], "changed");
    let sixth = bob_in(&call(&url, &alice, &bob, false, &[]));
    assert_eq!(sixth["known"], "verified");

    // --anonymous: a throwaway identity, nothing written.
    let stranger = fresh_config_dir();
    let events = call(&url, &stranger, &bob, false, &["--anonymous"]);
    assert_eq!(bob_in(&events)["known"], "new");
    assert!(!stranger.join("streamflow/identity").exists());
    assert!(!stranger.join("streamflow/known_peers").exists());
}

#[test]
fn the_key_file_must_be_private() {
    let dir = fresh_config_dir();
    let (_, shown, code) = id(&dir, &[]);
    assert_eq!(code, 0, "{shown}");
    let path = dir.join("streamflow/identity");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_, shown, code) = id(&dir, &[]);
    assert_eq!(code, 2, "{shown}");
    assert!(
        shown.contains("too open") && shown.contains("chmod 600"),
        "{shown}"
    );
    // A call refuses it too, before anything else.
    let out = Command::new(BIN)
        .args([
            "join",
            &fresh_invite(),
            "--headless",
            "--relay",
            "ws://127.0.0.1:9",
        ])
        .args([
            "--source",
            "none",
            "--audio-source",
            "none",
            "--audio-sink",
            "none",
        ])
        .env("XDG_CONFIG_HOME", &dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chmod 600"));
    // --new without a terminal needs --yes.
    let (_, shown, code) = id(&dir, &["--new"]);
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("--yes"), "{shown}");
}

#[test]
fn two_alices_are_told_apart_and_the_relay_never_sees_an_identity() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let (url, tapped) = rt.block_on(tap(relay.url()));
    let dirs: Vec<_> = (0..3).map(|_| fresh_config_dir()).collect();
    // Two calls with the same three people (no video or voice: what is
    // left is handshakes, state and chat, where an identity could leak).
    let mut transcripts: Vec<Vec<Vec<u8>>> = Vec::new();
    for _ in 0..2 {
        let invite = fresh_invite();
        let quiet = ["--source", "none", "--duration", "60", "--send-chat", "hi"];
        let mut clients = vec![
            Client::spawn_as(&dirs[0], &invite, &url, "alice", &quiet),
            Client::spawn_as(&dirs[1], &invite, &url, "alice", &quiet),
            Client::spawn_as(&dirs[2], &invite, &url, "carol", &quiet),
        ];
        let carol = &clients[2];
        let alices = || {
            carol
                .of_type("peer_verified")
                .into_iter()
                .filter(|v| v["name"] == "alice")
                .collect::<Vec<_>>()
        };
        carol.wait_for(WAIT, |_| alices().len() == 2);
        let tags: HashSet<String> = alices()
            .iter()
            .map(|v| v["tag"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(tags.len(), 2, "the two alices share a tag: {tags:?}");
        std::thread::sleep(Duration::from_secs(2));
        for c in &mut clients {
            c.command(r#"{"type":"leave"}"#);
            assert_eq!(c.wait(WAIT), Some(0), "{}", c.stderr.lock().unwrap());
        }
        let mut blobs = Vec::new();
        for text in tapped.lock().unwrap().drain(..) {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert!(!text.contains("alice") && !text.contains("carol"));
            if let Some(d) = v["data"].as_str() {
                blobs.push(base64::engine::general_purpose::STANDARD.decode(d).unwrap());
            }
            blobs.push(text.into_bytes());
        }
        transcripts.push(blobs);
    }
    // No identity key, no fingerprint, in any form.
    for dir in &dirs {
        let public = identity_public(dir);
        let fp = streamflow::crypto::identity::Fingerprint::of(&public);
        let b64 = base64::engine::general_purpose::STANDARD;
        let needles: Vec<Vec<u8>> = vec![
            public.to_vec(),
            fp.0[..8].to_vec(),
            fp.hex().as_bytes()[..16].to_vec(),
            b64.encode(public).as_bytes()[..20].to_vec(),
        ];
        for blob in transcripts.iter().flatten() {
            for n in &needles {
                assert!(
                    !blob.windows(n.len()).any(|w| w == n.as_slice()),
                    "the relay saw an identity"
                );
            }
        }
    }
    // Nothing of substance repeats from one call to the next: every
    // 16-byte run of high entropy in the second call's blobs is new.
    let rich = |w: &[u8]| w.iter().collect::<HashSet<_>>().len() >= 12;
    let first: HashSet<&[u8]> = transcripts[0]
        .iter()
        .filter(|b| !b.starts_with(b"{"))
        .flat_map(|b| b.windows(16))
        .filter(|w| rich(w))
        .collect();
    assert!(first.len() > 1000, "too little to compare: {}", first.len());
    let repeated = transcripts[1]
        .iter()
        .filter(|b| !b.starts_with(b"{"))
        .flat_map(|b| b.windows(16))
        .filter(|w| rich(w) && first.contains(w))
        .count();
    assert_eq!(repeated, 0, "bytes repeat across calls: linkable");
}

#[test]
fn only_known_gives_nothing_to_strangers_until_verified() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let mut alice = Client::spawn(
        &invite,
        &url,
        "alice",
        &["--duration", "60", "--only-known"],
    );
    let mut bob = Client::spawn(&invite, &url, "bob", &["--duration", "60"]);
    assert!(verified_as(&alice, "bob").is_some());
    let alice_id = alice.my_id().unwrap();
    let bob_id = bob.my_id().unwrap();
    // Alice sees Bob's video; Bob, a stranger to her, sees nothing of hers.
    assert!(alice
        .wait_for(WAIT, |e| e["type"] == "frame"
            && e["from"] == bob_id.as_str())
        .is_some());
    std::thread::sleep(Duration::from_secs(3));
    let from_alice = |c: &Client| {
        c.of_type("frame")
            .iter()
            .filter(|e| e["from"] == alice_id.as_str())
            .count()
    };
    assert_eq!(from_alice(&bob), 0, "a stranger got our video");
    alice
        .wait_for(WAIT, |e| {
            e["type"] == "safety_words" && !e["words"].as_str().unwrap_or("").is_empty()
        })
        .unwrap();
    alice.command(r#"{"type":"verify"}"#);
    assert!(
        bob.wait_for(WAIT, |e| e["type"] == "frame"
            && e["from"] == alice_id.as_str())
            .is_some(),
        "verified, and still nothing"
    );
    for c in [&mut alice, &mut bob] {
        c.command(r#"{"type":"leave"}"#);
        assert_eq!(c.wait(WAIT), Some(0));
    }
}

/// Alice's TUI at 80×24: a verified member ✓✓, a new one marked new, and
/// a member whose name came with another key than the verified one,
/// warned in the chat and on the tile.
#[test]
fn the_tui_shows_the_marks_and_the_warning() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let (alice, carol) = (fresh_config_dir(), fresh_config_dir());
    let (carol_fp, ..) = id(&carol, &[]);
    // Alice verified Carol, and a "bob" whose key is not the one coming.
    std::fs::create_dir_all(alice.join("streamflow")).unwrap();
    std::fs::write(
        alice.join("streamflow/known_peers"),
        format!(
            "{}  verified  2026-12-01  2026-11-20  2026-12-01  carol\n{}  verified  2026-12-01  2026-11-20  2026-12-01  bob\n",
            carol_fp.unwrap(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let invite = fresh_invite();
    // Bob is in the room before Alice (she gets no "joined" for him, and
    // hears of his changed key before she has drawn him); the others come
    // after her.
    let bob_dir = fresh_config_dir();
    let bob = Client::spawn_as(&bob_dir, &invite, &url, "bob", &["--duration", "60"]);
    assert!(bob.wait_for(WAIT, |e| e["type"] == "joined").is_some());
    let tmux = common::tmux::Tmux::start_with(
        "identity",
        80,
        24,
        &[
            "COLORTERM=truecolor",
            &format!("XDG_CONFIG_HOME={}", alice.display()),
        ],
        &format!(
            "{BIN} join {invite} --relay {url} --name alice --source test --audio-source none --audio-sink none"
        ),
    );
    let others: Vec<Client> = [("carol", Some(&carol)), ("dave", None)]
        .into_iter()
        .map(|(name, dir)| {
            let dir = dir.cloned().unwrap_or_else(fresh_config_dir);
            Client::spawn_as(&dir, &invite, &url, name, &["--duration", "60"])
        })
        .collect();
    let screen = tmux
        .wait_for(WAIT, |s| {
            s.contains("carol  ✓✓") && s.contains("bob  ⚠ KEY CHANGED") && s.contains("dave  new")
        })
        .unwrap_or_else(|s| panic!("marks not shown:\n{s}"));
    // The tile's warning, over two rows of a 39-column tile.
    assert!(
        screen.contains("⚠ not the key you verified on")
            && screen.contains("2026-12-01 — compare the words"),
        "{screen}"
    );
    tmux.keys(&["?"]);
    tmux.wait_for(Duration::from_secs(10), |s| {
        s.contains("compared the safety words")
    })
    .unwrap_or_else(|s| panic!("help doesn't teach w w:\n{s}"));
    drop((bob, others));
}
