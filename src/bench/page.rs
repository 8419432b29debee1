//! What the browser tests and `bench browser` do with a page, whichever
//! browser drives it ([`super::chromium`] over the DevTools protocol,
//! [`super::firefox`] over WebDriver BiDi): evaluate script in it, and on
//! top of that read its state, wait for it, and click "join".

use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{json, Value};

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

// The futures are awaited in place, never spawned: no Send bound needed.
#[allow(async_fn_in_trait)]
pub trait Driver {
    type Page;

    /// Evaluates `expr` in the page (awaiting a promise), its value as JSON.
    async fn eval(&mut self, page: &Self::Page, expr: &str) -> anyhow::Result<Value>;

    /// What the page logged, for failure messages.
    fn console(&self) -> &[String];

    /// `window.streamflow.state()`, once the page has it.
    async fn state(&mut self, page: &Self::Page) -> anyhow::Result<Value> {
        self.eval(page, "window.streamflow ? window.streamflow.state() : null")
            .await
    }

    /// Polls the page's state until `pred` holds; the last state (and the
    /// console) if it doesn't in time.
    async fn wait_for(
        &mut self,
        page: &Self::Page,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value, Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let s = match self.state(page).await {
                Ok(s) => s,
                Err(e) => return Err(json!({ "error": e.to_string(), "console": self.console() })),
            };
            if !s.is_null() && pred(&s) {
                return Ok(s);
            }
            if Instant::now() > deadline {
                return Err(json!({ "state": s, "console": self.console() }));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Clicks "join the call" once the page asks (it asks before any
    /// camera, microphone or relay: a link alone joins nothing).
    async fn join(&mut self, page: &Self::Page) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let asked = self
                .eval(
                    page,
                    "(() => { const c = document.getElementById('confirm'); \
                     if (!c || c.hidden) return false; \
                     document.getElementById('confirm-join').click(); return true; })()",
                )
                .await?;
            if asked == Value::Bool(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the page never asked to join: {:?}",
                    self.state(page).await?
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
