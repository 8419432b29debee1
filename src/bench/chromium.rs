//! A real browser for `bench browser` and the browser tests: Debian's
//! headless Chromium with its fake camera, driven through the DevTools
//! protocol on the WebSocket it opens (no WebDriver server in between).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::page::{Driver, Socket};

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

fn chromium() -> anyhow::Result<String> {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            .unwrap_or(false);
        if found {
            return Ok(name.to_string());
        }
    }
    bail!("no chromium on PATH: install it (Debian: apt-get install chromium)")
}

impl Browser {
    /// A browser whose user allows the camera.
    pub async fn launch() -> anyhow::Result<Browser> {
        Browser::start("--use-fake-ui-for-media-stream").await
    }

    /// A browser whose user refuses every page the camera ("Block").
    pub async fn launch_refusing_the_camera() -> anyhow::Result<Browser> {
        Browser::start("--use-fake-ui-for-media-stream=deny").await
    }

    async fn start(camera_answer: &str) -> anyhow::Result<Browser> {
        let profile = std::env::temp_dir().join(format!(
            "sf-chromium-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let mut child = Command::new(chromium()?)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--mute-audio",
                // A person who clicked the page: sound may play.
                "--autoplay-policy=no-user-gesture-required",
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
            .context("starting chromium")?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                bail!("chromium didn't open its DevTools socket within 30 s");
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(&url)
            .await
            .context("connecting to chromium's DevTools socket")?;
        Ok(Browser {
            child,
            socket,
            next_id: 0,
            profile,
            requests: Vec::new(),
            console: Vec::new(),
        })
    }

    /// One DevTools command; events that arrive meanwhile are recorded.
    pub async fn call(
        &mut self,
        page: Option<&Page>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(p) = page {
            msg["sessionId"] = json!(p.0);
        }
        self.socket.send(Message::text(msg.to_string())).await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .map_err(|_| anyhow!("DevTools: no answer to {method} in 60 s"))?
                .ok_or_else(|| anyhow!("chromium closed its DevTools socket"))??;
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(&text)?;
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    bail!("DevTools {method}: {e}");
                }
                return Ok(v["result"].clone());
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
    pub async fn open(&mut self, url: &str) -> anyhow::Result<Page> {
        self.open_after(url, None).await
    }

    /// A new tab at `url` where `script` runs before the page's own (tests
    /// take a feature away to see the page do without it).
    pub async fn open_after(&mut self, url: &str, script: Option<&str>) -> anyhow::Result<Page> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await?["targetId"]
            .clone();
        let session = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await?["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("DevTools gave no session id"))?
            .to_string();
        let page = Page(session);
        self.call(Some(&page), "Network.enable", json!({})).await?;
        self.call(Some(&page), "Runtime.enable", json!({})).await?;
        self.call(Some(&page), "Performance.enable", json!({}))
            .await?;
        if let Some(source) = script {
            self.call(Some(&page), "Page.enable", json!({})).await?;
            self.call(
                Some(&page),
                "Page.addScriptToEvaluateOnNewDocument",
                json!({ "source": source }),
            )
            .await?;
        }
        self.call(Some(&page), "Page.navigate", json!({ "url": url }))
            .await?;
        Ok(page)
    }

    /// A page metric (DevTools `Performance.getMetrics`), e.g.
    /// `TaskDuration`: seconds the page's main thread was busy.
    pub async fn metric(&mut self, page: &Page, name: &str) -> anyhow::Result<f64> {
        let r = self
            .call(Some(page), "Performance.getMetrics", json!({}))
            .await?;
        r["metrics"]
            .as_array()
            .and_then(|m| m.iter().find(|m| m["name"] == name))
            .and_then(|m| m["value"].as_f64())
            .ok_or_else(|| anyhow!("no metric {name}"))
    }

    /// Saves what the page shows as a PNG.
    pub async fn screenshot(&mut self, page: &Page, path: &str) -> anyhow::Result<()> {
        let r = self
            .call(
                Some(page),
                "Page.captureScreenshot",
                json!({ "format": "png" }),
            )
            .await?;
        use base64::Engine as _;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap_or_default())?;
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Driver for Browser {
    type Page = Page;

    /// Evaluates `expr` in the page (awaiting a promise) and returns its
    /// value as JSON.
    async fn eval(&mut self, page: &Page, expr: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                Some(page),
                "Runtime.evaluate",
                json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
            )
            .await?;
        Ok(r["result"]["value"].clone())
    }

    fn console(&self) -> &[String] {
        &self.console
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
