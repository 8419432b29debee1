//! A real browser for end-to-end tests: Debian's headless Chromium with its
//! fake camera, driven through the DevTools protocol on the WebSocket it
//! opens (no WebDriver server in between).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    profile: PathBuf,
    /// Every URL a page of this browser requested.
    pub requests: Vec<String>,
    /// Console lines and uncaught exceptions, for failure messages.
    pub console: Vec<String>,
}

/// A page (tab) of the browser: its DevTools session.
#[derive(Clone)]
pub struct Page(String);

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            .unwrap_or(false);
        if found {
            return name.to_string();
        }
    }
    panic!("no chromium on PATH: these tests need a real browser (scripts/debian-packages.txt lists `chromium`)")
}

impl Browser {
    /// A browser whose user allows the camera.
    pub async fn launch() -> Browser {
        Browser::start("--use-fake-ui-for-media-stream").await
    }

    /// A browser whose user refuses every page the camera ("Block").
    pub async fn launch_refusing_the_camera() -> Browser {
        Browser::start("--use-fake-ui-for-media-stream=deny").await
    }

    async fn start(camera_answer: &str) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "sf-chromium-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut child = Command::new(chromium())
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                "--use-fake-device-for-media-stream",
                camera_answer,
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium opens its DevTools socket within 30 s");
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .expect("DevTools socket");
        Browser {
            child,
            socket,
            next_id: 0,
            profile,
            requests: Vec::new(),
            console: Vec::new(),
        }
    }

    /// One DevTools command; events that arrive meanwhile are recorded.
    async fn call(&mut self, page: Option<&Page>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(p) = page {
            msg["sessionId"] = json!(p.0);
        }
        self.socket
            .send(Message::text(msg.to_string()))
            .await
            .expect("DevTools send");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("DevTools: no answer to {method} in 60 s"))
                .expect("DevTools socket open")
                .expect("DevTools message");
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(&text).expect("DevTools speaks JSON");
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("DevTools {method}: {e}");
                }
                return v["result"].clone();
            }
            self.record(&v);
        }
    }

    fn record(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Network.requestWillBeSent") => {
                if let Some(url) = v["params"]["request"]["url"].as_str() {
                    self.requests.push(url.to_string());
                }
            }
            Some("Runtime.consoleAPICalled") => {
                let args: Vec<String> = v["params"]["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| a["value"].to_string())
                    .collect();
                self.console.push(args.join(" "));
            }
            Some("Runtime.exceptionThrown") => {
                self.console
                    .push(format!("exception: {}", v["params"]["exceptionDetails"]));
            }
            _ => {}
        }
    }

    /// A new tab at `url`, watched from before it loads.
    pub async fn open(&mut self, url: &str) -> Page {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await["targetId"]
            .clone();
        let session = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await["sessionId"]
            .as_str()
            .expect("a session id")
            .to_string();
        let page = Page(session);
        self.call(Some(&page), "Network.enable", json!({})).await;
        self.call(Some(&page), "Runtime.enable", json!({})).await;
        self.call(Some(&page), "Page.navigate", json!({ "url": url }))
            .await;
        page
    }

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// value as JSON.
    pub async fn eval(&mut self, page: &Page, expr: &str) -> Value {
        let r = self
            .call(
                Some(page),
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Saves what the page shows as a PNG.
    pub async fn screenshot(&mut self, page: &Page, path: &str) {
        let r = self
            .call(
                Some(page),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("a screenshot"))
            .expect("base64");
        std::fs::write(path, png).expect("screenshot written");
    }

    /// `window.streamflow.state()`, once the page has it.
    pub async fn state(&mut self, page: &Page) -> Value {
        self.eval(page, "window.streamflow ? window.streamflow.state() : null")
            .await
    }

    /// Polls the page's state until `pred` holds; the last state if not.
    pub async fn wait_for(
        &mut self,
        page: &Page,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.state(page).await;
            if !s.is_null() && pred(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(json!({ "state": s, "console": self.console }));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
