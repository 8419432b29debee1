//! The browser client's page, served from assets embedded in this binary
//! (`streamflow web`, `streamflow host --web`). Who serves the page decides
//! what code a browser member runs, so it is never the relay: it is your own
//! binary, or the host's, who holds the invite anyway.
//!
//! A deliberately small HTTP/1.1 server: `GET`/`HEAD` of six fixed paths,
//! one request per connection, bounded in size, time and connections (in
//! all, and per address).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// The WebAssembly module (the Rust core), built by build.rs.
static WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/streamflow.wasm"));
static INDEX: &[u8] = include_bytes!("../../web/assets/index.html");
static APP: &[u8] = include_bytes!("../../web/assets/app.js");
static STYLE: &[u8] = include_bytes!("../../web/assets/style.css");
static VOICE: &[u8] = include_bytes!("../../web/assets/voice.js");
static MIXER: &[u8] = include_bytes!("../../web/assets/voice-worklet.js");

/// What the page may do: its own scripts and WebAssembly, its own styles,
/// pictures it decodes itself, WebSockets to the relay the invite names,
/// and nothing from anywhere else (no inline script, no frames, no forms
/// posted elsewhere).
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' blob:; media-src 'self' blob: mediastream:; \
connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Longest request head read.
const MAX_REQUEST: usize = 8 * 1024;
/// A client has this long to send its request (a browser needs far less).
const REQUEST_DEADLINE: Duration = Duration::from_secs(3);
/// Connections served at once.
const MAX_CONNECTIONS: usize = 64;
/// Connections served at once to one address: a browser opens about six;
/// one host can't hold all the slots (3 s each) and keep others out.
pub const MAX_PER_ADDRESS: usize = 8;

/// Whether this binary carries the browser client (build.rs needs the
/// WebAssembly target to build it).
pub fn available() -> bool {
    !WASM.is_empty()
}

/// The WebAssembly module this binary serves.
pub fn wasm() -> &'static [u8] {
    WASM
}

/// SHA-256 of the WebAssembly module, in hex: the page shows the same
/// (it hashes what it loaded), so a person can compare.
pub fn build_hash() -> String {
    Sha256::digest(WASM)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why this binary can't serve the page.
pub const UNAVAILABLE: &str = "this streamflow was built without the browser client: \
run `rustup target add wasm32-unknown-unknown` and build it again";

/// The page's address (`page` is its `host:port`) with the call in its
/// fragment (browsers never send the part after `#` to a server).
pub fn page_url(page: &str, invite: &str, relay: &str, name: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "http://{page}/#invite={}&relay={}&name={}",
        enc(invite),
        enc(relay),
        enc(name)
    )
}

/// Serves the page until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    loop {
        let Ok((stream, from)) = listener.accept().await else {
            // Out of descriptors and the like: try again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Some(held) = AddressSlot::take(&per_address, from.ip()) else {
            drop(stream);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        tokio::spawn(async move {
            // The head within the deadline, the answer (≤ 1 MiB) within 10 s.
            let _ =
                tokio::time::timeout(REQUEST_DEADLINE + Duration::from_secs(10), answer(stream))
                    .await;
            drop((slot, held));
        });
    }
}

/// One of an address's [`MAX_PER_ADDRESS`] connections, given back on drop.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, ip: IpAddr) -> Option<AddressSlot> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

async fn answer(mut stream: TcpStream) -> std::io::Result<()> {
    let head = match tokio::time::timeout(REQUEST_DEADLINE, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        _ => {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                b"bad request\n",
                true,
            )
            .await
        }
    };
    let mut parts = head.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let with_body = match method {
        "GET" => true,
        "HEAD" => false,
        _ => {
            return respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                b"GET only\n",
                true,
            )
            .await
        }
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    let (content_type, body): (&str, &[u8]) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX),
        "/app.js" => ("text/javascript; charset=utf-8", APP),
        "/style.css" => ("text/css; charset=utf-8", STYLE),
        "/voice.js" => ("text/javascript; charset=utf-8", VOICE),
        "/voice-worklet.js" => ("text/javascript; charset=utf-8", MIXER),
        "/streamflow.wasm" if available() => ("application/wasm", WASM),
        _ => {
            return respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                b"not found\n",
                with_body,
            )
            .await
        }
    };
    respond(&mut stream, "200 OK", content_type, body, with_body).await
}

/// The request line, once the whole head has arrived; `None` if too long
/// or cut short.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(None);
        }
        // Only the new bytes (and the three before them) can end the head.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if buf[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let line = buf.split(|&b| b == b'\r').next().unwrap_or_default();
    Ok(std::str::from_utf8(line).ok().map(str::to_string))
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\n\
         Content-Type: {content_type}\r\n\
         Content-Length: {}\r\n\
         Content-Security-Policy: {CONTENT_SECURITY_POLICY}\r\n\
         X-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: no-referrer\r\n\
         Cross-Origin-Opener-Policy: same-origin\r\n\
         Cross-Origin-Resource-Policy: same-origin\r\n\
         Permissions-Policy: camera=(self), microphone=(self), geolocation=()\r\n\
         Cache-Control: no-store\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if with_body {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fragment_is_escaped() {
        let url = page_url(
            "127.0.0.1:8080",
            "river-able-baker",
            "ws://127.0.0.1:8787",
            "a&b c",
        );
        assert_eq!(
            url,
            "http://127.0.0.1:8080/#invite=river-able-baker&relay=ws%3A%2F%2F127.0.0.1%3A8787&name=a%26b%20c"
        );
    }
}
