//! Firefox for the browser tests: Debian's Firefox ESR, headless, with its
//! fake camera and microphone (preferences in a fresh profile), driven
//! through WebDriver BiDi on the WebSocket it opens itself (Firefox no
//! longer speaks the DevTools protocol; no geckodriver in between).
//!
//! It matters beside Chromium as a second engine running the module and
//! the page. Its sound can't be tested on a machine without a sound card:
//! with no output device Firefox never starts an AudioContext, and with
//! ALSA's null device (unpaced) its content process is killed.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::page::{Driver, Socket};

pub struct Firefox {
    child: Child,
    socket: Socket,
    next_id: u64,
    profile: PathBuf,
    /// Console lines and uncaught errors, for failure messages.
    pub console: Vec<String>,
}

/// A tab: its browsing context.
#[derive(Clone)]
pub struct Tab(String);

/// A person who allows camera and microphone, on a machine with neither:
/// Firefox's fake devices (a tone and a coloured picture), sound allowed
/// to play as after a click.
const PREFS: &str = r#"user_pref("media.navigator.streams.fake", true);
user_pref("media.navigator.permission.disabled", true);
user_pref("media.autoplay.default", 0);
user_pref("media.autoplay.blocking_policy", 0);
user_pref("media.autoplay.block-webaudio", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
"#;

fn firefox() -> anyhow::Result<&'static str> {
    for name in ["firefox-esr", "firefox"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
            .unwrap_or(false);
        if found {
            return Ok(name);
        }
    }
    bail!("no firefox on PATH: install it (Debian: apt-get install firefox-esr)")
}

impl Firefox {
    pub async fn launch() -> anyhow::Result<Firefox> {
        let profile = std::env::temp_dir().join(format!(
            "sf-firefox-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&profile)?;
        std::fs::write(profile.join("user.js"), PREFS)?;
        let mut child = Command::new(firefox()?)
            .args(["--headless", "--no-remote", "--remote-debugging-port", "0"])
            .arg("--profile")
            .arg(&profile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting firefox")?;
        let stderr = child.stderr.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("SF_FIREFOX_STDERR").is_some() {
                    eprintln!("firefox: {line}");
                }
                if let Some(at) = line.find("WebDriver BiDi listening on ") {
                    let url = line[at + "WebDriver BiDi listening on ".len()..].trim();
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("firefox didn't open its WebDriver BiDi socket within 60 s");
            }
        };
        let (socket, _) = tokio_tungstenite::connect_async(format!("{url}/session"))
            .await
            .context("connecting to firefox's WebDriver BiDi socket")?;
        let mut ff = Firefox {
            child,
            socket,
            next_id: 0,
            profile,
            console: Vec::new(),
        };
        ff.call("session.new", json!({ "capabilities": {} }))
            .await?;
        ff.call("session.subscribe", json!({ "events": ["log.entryAdded"] }))
            .await?;
        Ok(ff)
    }

    /// One BiDi command; events that arrive meanwhile are recorded.
    async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({ "id": id, "method": method, "params": params });
        self.socket.send(Message::text(msg.to_string())).await?;
        loop {
            let m = tokio::time::timeout(Duration::from_secs(60), self.socket.next())
                .await
                .map_err(|_| anyhow!("BiDi: no answer to {method} in 60 s"))?
                .ok_or_else(|| anyhow!("firefox closed its BiDi socket"))??;
            let Message::Text(text) = m else { continue };
            let v: Value = serde_json::from_str(&text)?;
            if v["id"] == id {
                if v["type"] == "error" {
                    bail!("BiDi {method}: {}: {}", v["error"], v["message"]);
                }
                return Ok(v["result"].clone());
            }
            if v["method"] == "log.entryAdded" {
                let e = &v["params"];
                self.console.push(format!(
                    "{}: {}",
                    e["level"],
                    e["text"].as_str().unwrap_or("")
                ));
            }
        }
    }

    /// A new tab at `url`, where `script` runs before the page's own.
    pub async fn open_after(&mut self, url: &str, script: Option<&str>) -> anyhow::Result<Tab> {
        let r = self
            .call("browsingContext.create", json!({ "type": "tab" }))
            .await?;
        let tab = Tab(r["context"]
            .as_str()
            .ok_or_else(|| anyhow!("BiDi gave no context"))?
            .to_string());
        if let Some(source) = script {
            self.call(
                "script.addPreloadScript",
                json!({ "functionDeclaration": format!("() => {{ {source} }}"), "contexts": [tab.0] }),
            )
            .await?;
        }
        self.call(
            "browsingContext.navigate",
            json!({ "context": tab.0, "url": url, "wait": "none" }),
        )
        .await?;
        Ok(tab)
    }

    pub async fn open(&mut self, url: &str) -> anyhow::Result<Tab> {
        self.open_after(url, None).await
    }
}

impl Driver for Firefox {
    type Page = Tab;

    /// Evaluates `expr` in the page (awaiting a promise); its value comes
    /// back through `JSON.stringify`, as plain JSON.
    async fn eval(&mut self, tab: &Tab, expr: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                "script.evaluate",
                json!({
                    "expression": format!("(async () => JSON.stringify(await ({expr})))()"),
                    "target": { "context": tab.0 },
                    "awaitPromise": true,
                }),
            )
            .await?;
        if r["type"] == "exception" {
            bail!("the page threw: {}", r["exceptionDetails"]["text"]);
        }
        match r["result"]["value"].as_str() {
            Some(text) => Ok(serde_json::from_str(text)?),
            None => Ok(Value::Null),
        }
    }

    fn console(&self) -> &[String] {
        &self.console
    }
}

impl Drop for Firefox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
