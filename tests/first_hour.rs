//! What a new user meets in the first hour, from outside: bad URLs, a wrong
//! invite with a short run, TLS with a private CA, the host ending the
//! call, signals, and the safety words in headless mode.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{fresh_invite, relay, Client, BIN};

fn run(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(args)
        .env_remove("STREAMFLOW_INVITE")
        .output()
        .expect("run streamflow");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn bad_relay_urls_are_usage_errors_before_anything_slow() {
    let invite = fresh_invite();
    for (url, hint) in [
        ("not a url", "ws://HOST:8787"),
        ("http://127.0.0.1:1", "use ws://127.0.0.1:1"),
        ("https://relay.example.org", "wss://relay.example.org"),
        ("ftp://x", "not a relay scheme"),
        ("127.0.0.1:8787", "write ws://127.0.0.1:8787"),
    ] {
        let (code, stderr, took) = run(&["join", &invite, "--headless", "--relay", url]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(hint), "{url}: {stderr}");
        assert!(!stderr.contains("deriving"), "{url}: key derived first");
        // No key derivation, no retries: well under the ~1 s Argon2id.
        assert!(took < Duration::from_secs(5), "{url}: took {took:?}");
    }
    // Nonsense numbers are refused the same way.
    for args in [["--fps", "0"], ["--fps", "1000000"], ["--duration", "0"]] {
        let (code, stderr, _) = run(&["join", &invite, "--headless", args[0], args[1]]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
    // A whole invite where only the words belong.
    let (code, stderr, _) = run(&["join", "--headless", "--room", "standup", &invite]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("only the secret words"), "{stderr}");
}

#[test]
fn wss_to_a_plain_relay_says_it_does_not_speak_tls() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = format!("wss://{}", relay.addr());
    let mut client = Client::spawn(&fresh_invite(), &url, "Tls", &["--duration", "20"]);
    let code = client.wait(Duration::from_secs(20));
    assert_ne!(code, Some(0));
    let stderr = client.stderr.lock().unwrap().clone();
    assert!(stderr.contains("doesn't speak TLS"), "{stderr}");
    assert!(stderr.contains("ws://"), "{stderr}");
    rt.block_on(relay.shutdown());
}

/// A wrong invite and a run shorter than the 5 s verdict: still exit 3,
/// since the others refused us and nobody confirmed. The undecryptable
/// traffic is summed per sender per second, not one line per message.
#[test]
fn a_wrong_invite_exits_3_even_with_a_short_duration() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let member = Client::spawn(&invite, &url, "Member", &["--duration", "40"]);
    let other = Client::spawn(&invite, &url, "Other", &["--duration", "40"]);
    for m in [&member, &other] {
        m.wait_for(Duration::from_secs(20), |e| e["type"] == "peer_verified")
            .expect("the members verified each other");
    }
    let (room, _) = invite.split_once('-').unwrap();
    let wrong = format!("{room}-these-are-not-the-right-words");
    let mut intruder = Client::spawn(&wrong, &url, "Intruder", &["--duration", "2.5"]);
    let code = intruder.wait(Duration::from_secs(30));
    let stderr = intruder.stderr.lock().unwrap().clone();
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert!(intruder.of_type("peer_verified").is_empty());
    // Aggregated failures: at most one line per sender per second (+1 for
    // the first of a burst and +1 for the final flush), each with a count.
    let failures = intruder.of_type("decrypt_failed");
    let senders: std::collections::HashSet<String> = failures
        .iter()
        .map(|f| f["from"].as_str().unwrap().to_string())
        .collect();
    assert!(failures.len() <= senders.len() * 5, "{failures:?}");
    assert!(failures.iter().all(|f| f["count"].as_u64().unwrap() >= 1));
    // The members are not fooled either: the intruder is never verified.
    for m in [&member, &other] {
        assert_eq!(m.of_type("peer_verified").len(), 1, "only each other");
    }
    rt.block_on(relay.shutdown());
}

/// Headless safety words: `joined` claims none; a `safety_words` event
/// comes whenever they change, and both members see the same words.
#[test]
fn headless_reports_safety_words_when_they_change() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let a = Client::spawn(&invite, &url, "Ada", &["--duration", "30"]);
    let b = Client::spawn(&invite, &url, "Bob", &["--duration", "30"]);
    let words = |c: &Client| {
        c.wait_for(Duration::from_secs(25), |e| {
            e["type"] == "safety_words" && e["words"].as_str().is_some_and(|w| !w.is_empty())
        })
        .map(|e| e["words"].as_str().unwrap().to_string())
    };
    let (wa, wb) = (
        words(&a).expect("Ada's words"),
        words(&b).expect("Bob's words"),
    );
    assert_eq!(wa, wb);
    assert_eq!(wa.split(' ').count(), 4);
    for c in [&a, &b] {
        let joined = c.of_type("joined");
        assert!(joined[0].get("safety_words").is_none(), "{joined:?}");
        let verified = c.of_type("peer_verified");
        assert_eq!(verified.last().unwrap()["safety_words"], wa.as_str());
    }
    rt.block_on(relay.shutdown());
}

/// SIGTERM (and SIGHUP) make a headless member leave politely: the others
/// see it leave ("leave"), not time out, and it exits 0.
#[test]
fn headless_leaves_the_room_on_sigterm_and_sighup() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let stayer = Client::spawn(&invite, &url, "Stayer", &["--duration", "60"]);
    for signal in ["TERM", "HUP", "INT"] {
        let mut leaver = Client::spawn(&invite, &url, "Leaver", &[]);
        let id = leaver
            .wait_for(Duration::from_secs(20), |e| e["type"] == "joined")
            .and_then(|e| e["you"].as_str().map(str::to_string))
            .expect("leaver joined");
        stayer
            .wait_for(Duration::from_secs(20), |e| {
                e["type"] == "peer_verified" && e["peer"] == id.as_str()
            })
            .expect("stayer verified the leaver");
        let killed = Command::new("kill")
            .args([&format!("-{signal}"), &leaver.child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        assert_eq!(leaver.wait(Duration::from_secs(10)), Some(0), "SIG{signal}");
        let left = stayer
            .wait_for(Duration::from_secs(10), |e| {
                e["type"] == "peer_left" && e["peer"] == id.as_str()
            })
            .expect("stayer saw the leaver go");
        assert_eq!(left["reason"], "leave", "SIG{signal}: {left}");
    }
    rt.block_on(relay.shutdown());
}

/// The host (an embedded relay) ending the call ends it for everyone, with
/// the reason; a standalone relay going down means "reconnect" instead.
#[test]
fn the_host_ending_the_call_ends_it_for_everyone() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let invite = fresh_invite();
    let mut guests: Vec<Client> = ["Ada", "Bob"]
        .iter()
        .map(|n| Client::spawn(&invite, &url, n, &[]))
        .collect();
    for g in &guests {
        g.wait_for(Duration::from_secs(25), |e| e["type"] == "peer_verified")
            .expect("guests verified each other");
    }
    rt.block_on(relay.end_call("the host ended the call"));
    for g in &mut guests {
        assert_eq!(
            g.wait(Duration::from_secs(10)),
            Some(0),
            "{}",
            g.stderr.lock().unwrap()
        );
        let ended = g.of_type("call_ended");
        assert_eq!(ended.len(), 1, "{:?}", g.events());
        assert_eq!(ended[0]["reason"], "the host ended the call");
        assert!(g.of_type("reconnecting").is_empty());
    }

    let relay = rt.block_on(common::relay());
    let mut guest = Client::spawn(&fresh_invite(), &relay.url(), "Ada", &[]);
    guest
        .wait_for(Duration::from_secs(20), |e| e["type"] == "joined")
        .expect("joined");
    rt.block_on(relay.shutdown());
    guest
        .wait_for(Duration::from_secs(10), |e| e["type"] == "reconnecting")
        .expect("a relay restart means reconnect");
    assert!(guest.child.try_wait().unwrap().is_none(), "still trying");
    let _ = guest.child.kill();
}

/// A relay whose certificate a private CA signed: `--ca-cert` trusts it;
/// without it the error says what to do. A CA certificate given as the
/// relay's own is refused at start, with the reason.
#[test]
fn tls_with_a_private_ca() {
    let dir = std::env::temp_dir().join(format!("streamflow-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "StreamFlow test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let ca_pem = write("ca.pem", ca.pem());
    let chain = write("chain.pem", format!("{}{}", leaf.pem(), ca.pem()));
    let leaf_key_pem = write("leaf.key", leaf_key.serialize_pem());
    let ca_key_pem = write("ca.key", ca_key.serialize_pem());

    let rt = tokio::runtime::Runtime::new().unwrap();
    // The CA's own certificate as the relay's: refused, with the fix.
    let mut bad = streamflow_relay::RelayConfig::loopback();
    bad.tls_cert = Some(ca_pem.clone());
    bad.tls_key = Some(ca_key_pem);
    let err = match rt.block_on(streamflow_relay::start(bad)) {
        Ok(_) => panic!("a CA certificate was accepted as the relay's"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("CA:TRUE") && err.contains("leaf"), "{err}");

    let mut config = streamflow_relay::RelayConfig::loopback();
    config.tls_cert = Some(chain);
    config.tls_key = Some(leaf_key_pem);
    let relay = rt
        .block_on(streamflow_relay::start(config))
        .expect("TLS relay");
    assert!(
        relay.health_url().starts_with("https://"),
        "{}",
        relay.health_url()
    );
    let url = format!("wss://localhost:{}", relay.addr().port());
    let invite = fresh_invite();

    let mut untrusted = Client::spawn(&invite, &url, "Ada", &["--duration", "20"]);
    assert_ne!(untrusted.wait(Duration::from_secs(20)), Some(0));
    let stderr = untrusted.stderr.lock().unwrap().clone();
    assert!(stderr.contains("--ca-cert"), "{stderr}");

    let ca_arg = ca_pem.to_str().unwrap();
    let mut trusted = Client::spawn(
        &invite,
        &url,
        "Ada",
        &["--duration", "4", "--ca-cert", ca_arg],
    );
    assert_eq!(
        trusted.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        trusted.stderr.lock().unwrap()
    );
    assert_eq!(trusted.of_type("joined").len(), 1);

    // A missing or empty CA file is a usage error, said at once.
    let (code, stderr, _) = run(&[
        "join",
        &invite,
        "--headless",
        "--relay",
        &url,
        "--ca-cert",
        "/nonexistent.pem",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("/nonexistent.pem"), "{stderr}");
    rt.block_on(relay.shutdown());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Relay URLs from outside: a port out of range is a usage error at once,
/// a password is refused without being printed, and a path and an
/// upper-case scheme reach the relay (which takes any path).
#[test]
fn relay_urls_check_ports_hide_passwords_and_keep_paths() {
    for (url, hint) in [
        ("ws://127.0.0.1:99999", "1 to 65535"),
        ("ws://127.0.0.1:0", "1 to 65535"),
        ("ws://me:hunter2@127.0.0.1:8787", "no user name or password"),
    ] {
        let (code, stderr, took) = run(&["join", "x-a-b-c-d-e", "--relay", url]);
        assert_eq!(code, Some(2), "{url}: {stderr}");
        assert!(stderr.contains(hint), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
        assert!(took < Duration::from_secs(5), "{url}: took {took:?}");
    }
    // Durations and sizes in the shared forms; nonsense says the forms.
    let (code, stderr, _) = run(&["join", "x-a-b-c-d-e", "--duration", "2h"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("500ms"), "{stderr}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = format!("WS://{}/any/path?x=1", relay.addr());
    let mut client = Client::spawn(&fresh_invite(), &url, "Ada", &["--duration", "2s"]);
    assert_eq!(
        client.wait(Duration::from_secs(30)),
        Some(0),
        "{}",
        client.stderr.lock().unwrap()
    );
    assert_eq!(client.of_type("joined").len(), 1);
    rt.block_on(relay.shutdown());
}

/// `relay --listen PORT` listens on 127.0.0.1:PORT, takes sizes in every
/// form, and at the default --max-connections doesn't warn about the
/// open-file limit (it sizes the default to it).
#[test]
fn relay_listens_on_a_bare_port_without_warnings() {
    /// Kills the relay however the test ends.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut relay = Killed(
        Command::new(BIN)
            .args(["relay", "--listen", &port.to_string()])
            .args(["--max-message-bytes", "1MiB", "--media-queue-bytes", "4MiB"])
            .args(["--metrics-listen", ":0", "--ping-interval", "20s"])
            .env("RUST_LOG", "info")
            .env_remove("STREAMFLOW_LISTEN")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run streamflow relay"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        let exited = relay.0.try_wait().expect("relay status");
        assert!(exited.is_none(), "the relay exited: {exited:?}");
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = relay.0.kill();
    let _ = relay.0.wait();
    let mut stderr = String::new();
    if let Some(mut pipe) = relay.0.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("relay listening"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("open-file limit"), "{stderr}");
}
