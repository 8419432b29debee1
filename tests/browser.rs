//! The browser client, in a real browser: headless Chromium with its fake
//! camera loads the page `streamflow web` serves and joins a call with two
//! terminal members (headless), through a relay on loopback.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{free_addr, fresh_invite, relay, relay_at, tap, Client, BIN};
use serde_json::Value;
use streamflow::bench::chromium::Browser;
use streamflow::bench::firefox::Firefox;
use streamflow::bench::page::Driver;

const WAIT: Duration = Duration::from_secs(60);

/// `streamflow web` on an ephemeral loopback port.
struct PageServer {
    child: Child,
    addr: String,
    build: String,
}

impl PageServer {
    fn start() -> PageServer {
        let mut child = Command::new(BIN)
            .args(["web", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("streamflow web starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first
            .rsplit("http://")
            .next()
            .unwrap()
            .trim_end_matches('/')
            .to_string();
        let build = lines
            .next()
            .unwrap()
            .unwrap()
            .strip_prefix("build ")
            .expect("the second line is the build hash")
            .to_string();
        std::thread::spawn(move || for _ in lines {});
        PageServer { child, addr, build }
    }

    fn url(&self, invite: &str, relay: &str, name: &str) -> String {
        streamflow::web::page_url(&self.addr, invite, relay, name)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn verified_peers(s: &Value) -> usize {
    s["peers"]
        .as_object()
        .map(|m| m.values().filter(|p| p["verified"] == true).count())
        .unwrap_or(0)
}

fn last_words(c: &Client) -> Option<String> {
    c.of_type("safety_words")
        .last()
        .and_then(|e| e["words"].as_str().map(str::to_string))
}

/// Carol in a browser, Alice and Bob in terminals: the same safety words,
/// video, voice and chat both ways, nothing readable at the relay, and a
/// page that asks nothing of any other origin. Then a view-only member and
/// a wrong invite, said in words.
#[test]
fn a_browser_member_and_two_terminal_members_share_one_call() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let (tapped, seen) = rt.block_on(tap(relay.url()));
    let invite = fresh_invite();
    // Alice speaks (a tone); Bob records what he hears.
    let heard = std::env::temp_dir().join(format!("sf-browser-heard-{}.wav", std::process::id()));
    let alice = Client::spawn(
        &invite,
        &tapped,
        "alice",
        &["--duration", "120", "--audio-source", "tone"],
    );
    let bob = Client::spawn(
        &invite,
        &tapped,
        "bob",
        &["--duration", "120", "--audio-sink", heard.to_str().unwrap()],
    );
    let server = PageServer::start();
    assert_eq!(server.build.len(), 64, "a SHA-256 in hex");

    rt.block_on(async {
        let mut browser = Browser::launch().await.expect("chromium");
        let page = browser
            .open(&server.url(&invite, &tapped, "carol"))
            .await
            .unwrap();
        browser.join(&page).await.unwrap();
        let state = browser
            .wait_for(&page, WAIT, |s| verified_peers(s) == 2)
            .await
            .unwrap_or_else(|s| panic!("the browser didn't verify both terminals: {s:#}"));
        assert_eq!(
            state["build"],
            server.build.as_str(),
            "the page shows its build"
        );
        let carol = state["you"]
            .as_str()
            .expect("the page knows its id")
            .to_string();

        // Everyone sees the same safety words (they settle as rounds end).
        let deadline = Instant::now() + WAIT;
        let words = loop {
            let s = browser.state(&page).await.unwrap();
            let mine = s["safety_words"].as_str().unwrap_or("").to_string();
            if !mine.is_empty()
                && last_words(&alice).as_deref() == Some(&mine)
                && last_words(&bob).as_deref() == Some(&mine)
            {
                break mine;
            }
            assert!(
                Instant::now() < deadline,
                "safety words differ: browser {mine:?}, alice {:?}, bob {:?}",
                last_words(&alice),
                last_words(&bob)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(words.split(' ').count(), 4, "{words}");

        // Terminals verified the browser member by the name it chose.
        for c in [&alice, &bob] {
            assert!(
                c.wait_for(WAIT, |e| e["type"] == "peer_verified"
                    && e["peer"] == carol.as_str()
                    && e["name"] == "carol")
                    .is_some(),
                "a terminal didn't verify carol"
            );
        }

        // Video both ways: the fake camera reaches the terminals, the
        // terminals' test pattern is drawn in the page.
        for c in [&alice, &bob] {
            assert!(
                c.wait_for(WAIT, |e| e["type"] == "frame"
                    && e["from"] == carol.as_str()
                    && e["bytes"].as_u64().unwrap_or(0) > 200)
                    .is_some(),
                "no frame from the browser reached a terminal"
            );
        }
        let s = browser
            .wait_for(&page, WAIT, |s| {
                s["peers"].as_object().is_some_and(|m| {
                    m.len() == 2 && m.values().all(|p| p["frames"].as_u64() > Some(10))
                })
            })
            .await
            .unwrap_or_else(|s| panic!("the page drew no video: {s:#}"));
        assert!(
            s["peers"]
                .as_object()
                .unwrap()
                .values()
                .all(|p| p["undecodable"].is_null()),
            "frames the browser couldn't decode: {s:#}"
        );

        // Voice both ways: the fake microphone's beeps reach Bob's
        // recording; Alice's tone is decoded and played in the page.
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "audio_stats"
                && e["from"] == carol.as_str()
                && e["packets"].as_u64() > Some(20))
                .is_some(),
            "no voice from the browser reached a terminal"
        );
        let alice_id = alice.my_id().unwrap();
        browser
            .wait_for(&page, WAIT, |s| {
                s["voice"]["decoded"][alice_id.as_str()].as_u64() > Some(50)
                    && s["voice"]["played"][alice_id.as_str()]["played_ms"].as_u64() > Some(500)
            })
            .await
            .unwrap_or_else(|s| panic!("the page didn't play the terminal's voice: {s:#}"));

        // `m` in the page mutes: the terminals are told (the packets go
        // on, silent, flagged).
        browser
            .eval(
                &page,
                "document.dispatchEvent(new KeyboardEvent('keydown', { key: 'm' }))",
            )
            .await
            .unwrap();
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "peer_muted"
                && e["peer"] == carol.as_str()
                && e["muted"] == true)
                .is_some(),
            "the browser's mute wasn't seen"
        );

        // Chat both ways.
        browser
            .eval(&page, "window.streamflow.chat('hello from the browser')")
            .await
            .unwrap();
        for c in [&alice, &bob] {
            assert!(
                c.wait_for(WAIT, |e| e["type"] == "chat"
                    && e["name"] == "carol"
                    && e["text"] == "hello from the browser")
                    .is_some(),
                "the browser's chat didn't arrive"
            );
        }
        let mut alice = alice;
        alice.command(r#"{"type":"chat","text":"hello from the terminal"}"#);
        browser
            .wait_for(&page, WAIT, |s| {
                s["chat"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|l| l["name"] == "alice" && l["text"] == "hello from the terminal")
                })
            })
            .await
            .unwrap_or_else(|s| panic!("the terminal's chat didn't reach the page: {s:#}"));

        // The page asked nothing of any other origin (its WebSocket goes
        // to the relay the fragment names, which isn't a page request).
        let origin = format!("http://{}/", server.addr);
        assert!(browser.requests.len() >= 3, "{:?}", browser.requests);
        for url in &browser.requests {
            assert!(url.starts_with(&origin), "the page loaded {url}");
        }

        // What the relay saw: no JPEG, no names, no chat.
        let forwarded = seen.lock().unwrap().clone();
        let mut blobs = 0;
        // JPEG's start-of-image signature, and how often three random
        // ciphertext bytes match it by chance: a picture in the clear
        // would put it in every video blob, chance in about one in 16 MB.
        let (mut signatures, mut windows) = (0u64, 0u64);
        for text in &forwarded {
            for needle in ["carol", "hello from", "alice"] {
                assert!(!text.contains(needle), "the relay saw {needle:?}: {text}");
            }
            let v: Value = serde_json::from_str(text).unwrap();
            if let Some(data) = v["data"].as_str() {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .unwrap();
                blobs += 1;
                windows += bytes.len().saturating_sub(2) as u64;
                if bytes.windows(3).any(|w| w == [0xff, 0xd8, 0xff]) {
                    signatures += 1;
                }
                for needle in [&b"carol"[..], b"hello from", b"JFIF"] {
                    assert!(!bytes.windows(needle.len()).any(|w| w == needle));
                }
            }
        }
        assert!(blobs > 50, "the tap saw the call ({blobs} blobs)");
        let by_chance = windows as f64 / f64::from(1u32 << 24);
        assert!(
            (signatures as f64) <= 3.0 + 4.0 * by_chance,
            "JPEG headers crossed the relay in the clear: in {signatures} of {blobs} blobs \
             ({by_chance:.2} expected by chance in {windows} bytes of ciphertext)"
        );

        // A member whose camera is refused joins view-only: in the call,
        // seeing the others, telling them it has no camera.
        let mut refusing = Browser::launch_refusing_the_camera()
            .await
            .expect("chromium");
        let viewer = refusing
            .open(&server.url(&invite, &tapped, "dave"))
            .await
            .unwrap();
        refusing.join(&viewer).await.unwrap();
        let s = refusing
            .wait_for(&viewer, WAIT, |s| {
                verified_peers(s) == 3
                    && s["peers"]
                        .as_object()
                        .unwrap()
                        .values()
                        .any(|p| p["frames"].as_u64() > Some(3))
            })
            .await
            .unwrap_or_else(|s| panic!("a view-only member didn't get in: {s:#}"));
        assert_eq!(s["camera"], "absent", "{s:#}");
        let said = refusing
            .eval(&viewer, "document.getElementById('chat').textContent")
            .await
            .unwrap();
        assert!(
            said.as_str()
                .unwrap_or("")
                .contains("camera permission denied: you joined view-only"),
            "{said}"
        );
        let dave = s["you"].as_str().unwrap().to_string();
        browser
            .wait_for(&page, WAIT, |s| {
                s["peers"][dave.as_str()]["camera"] == "absent"
            })
            .await
            .unwrap_or_else(|s| panic!("the others weren't told: {s:#}"));

        // A wrong invite (same room, other words): said in words.
        let room = invite.split('-').next().unwrap();
        let wrong = format!("{room}-able-baker-charlie-delta");
        let intruder = browser
            .open(&server.url(&wrong, &tapped, "mallory"))
            .await
            .unwrap();
        browser.join(&intruder).await.unwrap();
        browser
            .wait_for(&intruder, WAIT, |s| {
                s["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("wrong passphrase"))
            })
            .await
            .unwrap_or_else(|s| panic!("a wrong invite wasn't said: {s:#}"));
        // And an invite that isn't one.
        let garbled = browser.open(&server.url("!!", &tapped, "x")).await.unwrap();
        browser
            .wait_for(&garbled, WAIT, |s| {
                s["error"].as_str().is_some_and(|e| e.contains("invite"))
            })
            .await
            .unwrap_or_else(|s| panic!("a garbled invite wasn't said: {s:#}"));
        drop(browser);
    });
    // What Bob recorded holds the browser's beeps (the fake microphone
    // beeps once a second; the rest is near silence).
    let mut bob = bob;
    bob.command(r#"{"type":"leave"}"#);
    assert_eq!(bob.wait(WAIT), Some(0));
    let loudest = peak_of(&heard);
    let _ = std::fs::remove_file(&heard);
    assert!(
        loudest > 3000,
        "the recording is near silent (peak {loudest})"
    );
}

/// One host holding connections open can't keep the page from others: past
/// `MAX_PER_ADDRESS` its next connection is closed at once (not at the 3 s
/// request deadline), and another address is served meanwhile.
#[test]
fn one_address_cannot_hold_the_page_servers_slots() {
    use streamflow::web::MAX_PER_ADDRESS;
    let server = PageServer::start();
    let addr: std::net::SocketAddr = server.addr.parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let from_other_host = || async {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            socket.connect(addr).await.unwrap()
        };
        let mut held = Vec::new();
        for _ in 0..MAX_PER_ADDRESS {
            held.push(from_other_host().await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut one_more = from_other_host().await;
        let started = Instant::now();
        let mut buf = [0u8; 16];
        let closed = tokio::time::timeout(Duration::from_secs(5), async {
            use tokio::io::AsyncReadExt;
            one_more.read(&mut buf).await
        })
        .await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "the connection past the cap wasn't closed: {closed:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "closed only after {:?}: the deadline, not the cap",
            started.elapsed()
        );
        // Another address is served while those are held.
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200 OK"),
            "{:?}",
            String::from_utf8_lossy(&out[..out.len().min(100)])
        );
        drop(held);
    });
}

/// What `streamflow web` answers, as any HTTP client sees it: a strict
/// policy on every response, four paths, nothing else.
#[test]
fn the_page_is_served_with_a_strict_policy_and_nothing_else() {
    let server = PageServer::start();
    let get = |request: &str| -> String {
        let mut s = std::net::TcpStream::connect(&server.addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        String::from_utf8_lossy(&out).into_owned()
    };
    for (path, kind) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/voice.js", "text/javascript"),
        ("/voice-worklet.js", "text/javascript"),
        ("/streamflow.wasm", "application/wasm"),
    ] {
        let r = get(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(r.starts_with("HTTP/1.1 200 OK"), "{path}: {r:.200}");
        assert!(r.contains(&format!("Content-Type: {kind}")), "{path}");
        assert!(
            r.contains("Content-Security-Policy: default-src 'none'; script-src 'self' 'wasm-unsafe-eval';"),
            "{path}"
        );
        assert!(r.contains("X-Content-Type-Options: nosniff"));
    }
    let page = get("GET / HTTP/1.1\r\n\r\n");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page names no other origin"
    );
    assert!(!page.contains("<script>"), "no inline script");
    assert!(get("GET /../Cargo.toml HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
    assert!(get("POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
    let head = get("HEAD /streamflow.wasm HTTP/1.1\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 200") && head.ends_with("\r\n\r\n"));
    assert!(
        get(&format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000))).starts_with("HTTP/1.1 400")
    );
}

/// `streamflow host --web`: a guest without the binary opens the address
/// the host prints and is in the call, verified, sending video.
#[test]
fn a_guest_joins_from_the_page_the_host_serves() {
    let config = common::fresh_config_dir();
    let mut cmd = Command::new(BIN);
    cmd.args([
        "host",
        "--headless",
        "--listen",
        "127.0.0.1:0",
        "--web=127.0.0.1:0",
    ])
    .args([
        "--source",
        "test",
        "--audio-source",
        "none",
        "--audio-sink",
        "none",
    ])
    .args(["--name", "host", "--duration", "120"])
    .env("XDG_CONFIG_HOME", &config);
    let host = Client::run(cmd);
    let invite = host
        .wait_for(WAIT, |e| e["type"] == "invite")
        .expect("the host prints its invite");
    let url = invite["web"]
        .as_str()
        .expect("and the page's address")
        .to_string();
    let fragment = url
        .split_once('#')
        .expect("the call rides in the fragment")
        .1;
    assert!(
        fragment.contains(invite["invite"].as_str().unwrap()) && fragment.contains("name=guest"),
        "{url}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut browser = Browser::launch().await.expect("chromium");
        let page = browser.open(&url).await.unwrap();
        // A link alone joins nothing: the page asks first, and until then
        // the host sees nobody.
        browser
            .wait_for(&page, WAIT, |s| {
                s["status"].as_str().is_some_and(|t| t.starts_with("ready"))
            })
            .await
            .unwrap_or_else(|s| panic!("the page didn't ask: {s:#}"));
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            host.of_type("peer_joined").is_empty(),
            "joined without a click"
        );
        let asked = browser
            .eval(&page, "document.getElementById('confirm-what').textContent")
            .await
            .unwrap();
        assert!(
            asked
                .as_str()
                .is_some_and(|t| t.contains("as guest?") && t.contains("ws://127.0.0.1:")),
            "{asked}"
        );
        browser.join(&page).await.unwrap();
        browser
            .wait_for(&page, WAIT, |s| verified_peers(s) == 1)
            .await
            .unwrap_or_else(|s| panic!("the guest didn't get in: {s:#}"));
        let guest = browser.state(&page).await.unwrap()["you"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            host.wait_for(WAIT, |e| e["type"] == "frame"
                && e["from"] == guest.as_str())
                .is_some(),
            "no video from the guest"
        );
    });
}

/// A relay that isn't there yet is said in words; the page keeps trying,
/// gets in once it is up, and after a restart mid-call rejoins, verifies
/// again and draws video again.
#[test]
fn the_page_says_an_unreachable_relay_and_comes_back_after_a_restart() {
    let addr = free_addr();
    let url = format!("ws://{addr}");
    let invite = fresh_invite();
    let server = PageServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut browser = Browser::launch().await.expect("chromium");
        let page = browser
            .open(&server.url(&invite, &url, "carol"))
            .await
            .unwrap();
        browser.join(&page).await.unwrap();
        browser
            .wait_for(&page, WAIT, |s| {
                s["status"]
                    .as_str()
                    .is_some_and(|e| e.contains("relay unreachable at ws://"))
            })
            .await
            .unwrap_or_else(|s| panic!("an unreachable relay wasn't said: {s:#}"));

        let relay = relay_at(addr).await;
        let alice = Client::spawn(
            &invite,
            &url,
            "alice",
            &["--duration", "120", "--liveness-timeout", "5s"],
        );
        let drawing = |s: &Value| {
            verified_peers(s) == 1
                && s["peers"]
                    .as_object()
                    .is_some_and(|m| m.values().all(|p| p["frames"].as_u64() > Some(5)))
        };
        browser
            .wait_for(&page, WAIT, drawing)
            .await
            .unwrap_or_else(|s| panic!("the page didn't get in once the relay was up: {s:#}"));

        relay.shutdown().await;
        browser
            .wait_for(&page, WAIT, |s| {
                s["status"]
                    .as_str()
                    .is_some_and(|e| e.contains("reconnecting"))
                    && verified_peers(s) == 0
            })
            .await
            .unwrap_or_else(|s| panic!("a lost relay wasn't said: {s:#}"));
        let _relay = relay_at(addr).await;
        browser
            .wait_for(&page, WAIT, drawing)
            .await
            .unwrap_or_else(|s| panic!("the page didn't come back after the restart: {s:#}"));
        assert!(
            alice
                .wait_for(WAIT, |e| e["type"] == "reconnected")
                .is_some(),
            "alice came back too"
        );
    });
}

/// The loudest sample of a recording.
fn peak_of(wav: &std::path::Path) -> u16 {
    hound::WavReader::open(wav)
        .expect("a recording")
        .into_samples::<i16>()
        .map_while(Result::ok)
        .map(|s| s.unsigned_abs())
        .max()
        .unwrap_or(0)
}

/// A terminal member that speaks a tone and records what it hears.
fn recording_member(
    invite: &str,
    url: &str,
    name: &str,
    wav: &std::path::Path,
) -> (Client, String) {
    let member = Client::spawn(
        invite,
        url,
        name,
        &[
            "--duration",
            "120",
            "--audio-source",
            "tone",
            "--audio-sink",
            wav.to_str().unwrap(),
        ],
    );
    let id = member
        .wait_for(WAIT, |e| e["type"] == "joined")
        .and_then(|e| e["you"].as_str().map(str::to_string))
        .expect("the terminal member joined");
    (member, id)
}

/// Ends a recording member and returns the loudest sample it recorded.
fn loudest_heard(mut member: Client, wav: &std::path::Path) -> u16 {
    member.command(r#"{"type":"leave"}"#);
    assert_eq!(member.wait(WAIT), Some(0));
    let loudest = peak_of(wav);
    let _ = std::fs::remove_file(wav);
    loudest
}

/// Voice by feature, not by browser. Without MediaStreamTrackProcessor
/// (Firefox, Safari) the microphone goes through a capture worklet; without
/// WebCodecs audio at all, the module's own Opus encodes and decodes, and a
/// terminal (libopus) still records the page's beeps while the page plays
/// the terminal's tone. The first page joins through the form (no link),
/// and no page keeps the invite in its address.
#[test]
fn voice_works_without_a_track_reader_and_without_webcodecs_audio() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let server = PageServer::start();
    let wav = |n: &str| std::env::temp_dir().join(format!("sf-{n}-{}.wav", std::process::id()));
    rt.block_on(async {
        let mut browser = Browser::launch().await.expect("chromium");

        // 1. No track reader; typed into the form at the bare address.
        let invite = fresh_invite();
        let (bob, _) = recording_member(&invite, &url, "bob", &wav("worklet"));
        let page = browser
            .open_after(
                &format!("http://{}/", server.addr),
                Some("delete window.MediaStreamTrackProcessor;"),
            )
            .await
            .unwrap();
        browser
            .wait_for(&page, WAIT, |s| {
                s["status"]
                    .as_str()
                    .is_some_and(|t| t.contains("paste an invite"))
            })
            .await
            .unwrap_or_else(|s| panic!("no form: {s:#}"));
        let typed = format!(
            "(() => {{ document.getElementById('join-invite').value = {invite:?}; \
             document.getElementById('join-relay').value = {url:?}; \
             document.getElementById('join-name').value = 'carol'; \
             document.getElementById('join').requestSubmit(); }})()"
        );
        browser.eval(&page, &typed).await.unwrap();
        let s = browser
            .wait_for(&page, WAIT, |s| verified_peers(s) == 1)
            .await
            .unwrap_or_else(|s| panic!("the typed call didn't verify: {s:#}"));
        let carol = s["you"].as_str().unwrap().to_string();
        let heard_carol = bob.wait_for(WAIT, |e| {
            e["type"] == "audio_stats"
                && e["from"] == carol.as_str()
                && e["packets"].as_u64() > Some(20)
        });
        let s = browser.state(&page).await.unwrap();
        assert!(
            heard_carol.is_some(),
            "no voice from the worklet reached a terminal: {s:#} {:?}",
            browser.console
        );
        assert_eq!(s["voice"]["reader"], "worklet", "{s:#}");
        assert_eq!(s["voice"]["encoder"], "webcodecs", "{s:#}");
        let address = browser.eval(&page, "location.href").await.unwrap();
        assert!(
            address.as_str().is_some_and(|a| !a.contains('#')),
            "{address}"
        );
        let loudest = loudest_heard(bob, &wav("worklet"));
        assert!(
            loudest > 3000,
            "the worklet's beeps aren't in the recording (peak {loudest})"
        );
        browser
            .eval(&page, "window.streamflow.leave()")
            .await
            .unwrap();

        // 2. No WebCodecs audio at all: the module's Opus, both ways.
        let invite = fresh_invite();
        let (bob, bob_id) = recording_member(&invite, &url, "bob", &wav("wasm-opus"));
        let page = browser
            .open_after(
                &server.url(&invite, &url, "dave"),
                Some(
                    "delete window.AudioEncoder; delete window.AudioDecoder; \
                     delete window.MediaStreamTrackProcessor;",
                ),
            )
            .await
            .unwrap();
        browser.join(&page).await.unwrap();
        let s = browser
            .wait_for(&page, WAIT, |s| {
                s["voice"]["decoded"][bob_id.as_str()].as_u64() > Some(50)
                    && s["voice"]["played"][bob_id.as_str()]["played_ms"].as_u64() > Some(500)
                    && s["voice"]["played"][bob_id.as_str()]["peak"].as_f64() > Some(0.05)
            })
            .await
            .unwrap_or_else(|s| panic!("the module's Opus didn't play bob's tone: {s:#}"));
        assert_eq!(s["voice"]["encoder"], "wasm", "{s:#}");
        assert_eq!(s["voice"]["decoder"], "wasm", "{s:#}");
        let dave = s["you"].as_str().unwrap().to_string();
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "audio_stats"
                && e["from"] == dave.as_str()
                && e["packets"].as_u64() > Some(20))
                .is_some(),
            "no voice from the module's encoder reached a terminal"
        );
        let address = browser.eval(&page, "location.href").await.unwrap();
        assert!(
            address
                .as_str()
                .is_some_and(|a| !a.contains('#') && !a.contains(invite.as_str())),
            "the invite stayed in the address: {address}"
        );
        let loudest = loudest_heard(bob, &wav("wasm-opus"));
        assert!(
            loudest > 3000,
            "the module's Opus beeps aren't in the recording (peak {loudest})"
        );
    });
}

/// Firefox (Debian's ESR, headless, its fake camera) with a terminal
/// member: verified with the same safety words, video and chat both ways.
/// The page picks Firefox's voice path by feature (no track reader: the
/// capture worklet, with WebCodecs Opus); its sound itself can't run here
/// (no sound card: Firefox never starts the AudioContext), so voice is
/// tested in Chromium on that same path.
#[test]
fn firefox_joins_verifies_and_sends_video_and_chat_both_ways() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let relay = rt.block_on(relay());
    let url = relay.url();
    let server = PageServer::start();
    let invite = fresh_invite();
    let mut bob = Client::spawn(&invite, &url, "bob", &["--duration", "120"]);
    let bob_id = bob
        .wait_for(WAIT, |e| e["type"] == "joined")
        .and_then(|e| e["you"].as_str().map(str::to_string))
        .expect("bob joined");
    rt.block_on(async {
        let mut ff = Firefox::launch().await.expect("firefox");
        let tab = ff.open(&server.url(&invite, &url, "erin")).await.unwrap();
        ff.join(&tab).await.unwrap();
        let s = ff
            .wait_for(&tab, WAIT, |s| verified_peers(s) == 1)
            .await
            .unwrap_or_else(|s| panic!("firefox didn't verify: {s:#}"));
        let erin = s["you"].as_str().unwrap().to_string();
        let same_words = ff
            .wait_for(&tab, WAIT, |s| {
                s["safety_words"]
                    .as_str()
                    .is_some_and(|w| !w.is_empty() && last_words(&bob).as_deref() == Some(w))
            })
            .await;
        assert!(
            same_words.is_ok(),
            "safety words differ: {same_words:?} vs {:?}",
            last_words(&bob)
        );
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "peer_verified"
                && e["peer"] == erin.as_str()
                && e["name"] == "erin")
                .is_some(),
            "the terminal didn't verify erin"
        );
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "frame"
                && e["from"] == erin.as_str()
                && e["bytes"].as_u64().unwrap_or(0) > 200)
                .is_some(),
            "no frame from firefox reached the terminal"
        );
        ff.wait_for(&tab, WAIT, |s| {
            s["peers"][bob_id.as_str()]["frames"].as_u64() > Some(10)
        })
        .await
        .unwrap_or_else(|s| panic!("firefox drew no video: {s:#}"));
        ff.eval(&tab, "window.streamflow.chat('hello from firefox')")
            .await
            .unwrap();
        assert!(
            bob.wait_for(WAIT, |e| e["type"] == "chat"
                && e["text"] == "hello from firefox")
                .is_some(),
            "firefox's chat didn't reach the terminal"
        );
        bob.command(r#"{"type":"chat","text":"hello from a terminal"}"#);
        let s = ff
            .wait_for(&tab, WAIT, |s| {
                s["chat"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|l| l["text"] == "hello from a terminal"))
            })
            .await
            .unwrap_or_else(|s| panic!("the terminal's chat didn't reach firefox: {s:#}"));
        assert_eq!(s["voice"]["reader"], "worklet", "{s:#}");
        assert_eq!(s["voice"]["encoder"], "webcodecs", "{s:#}");
    });
}
