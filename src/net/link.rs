//! A WebSocket link to the relay, speaking protocol v1.
//!
//! A reader task turns relay messages into [`LinkEvent`]s; a writer task sends
//! control messages in order (bounded queue) and media from a one-slot buffer
//! (a frame not yet sent is replaced by the next one, so a slow uplink drops
//! frames instead of building delay). The writer also pings for the RTT.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::pacer::Pacer;
use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use streamflow_relay::flow::Flow;
use streamflow_relay::protocol::{ClientMessage, Kind, LeaveReason, ServerMessage};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const PING_EVERY: Duration = Duration::from_secs(2);
/// Unsent bytes the kernel may hold for us: keeps the uplink backlog in the
/// media slot, where it is visible and replaceable.
const UNSENT_LIMIT: u32 = 4 * 1024;

/// How a link reaches and watches its relay.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Declare the relay dead after this long without hearing anything
    /// (pongs included); catches half-open TCP connections.
    pub liveness_timeout: Duration,
    /// TLS roots for `wss://` (with a `--ca-cert`); None: the system's.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            liveness_timeout: Duration::from_secs(20),
            tls: None,
        }
    }
}

#[derive(Debug)]
pub enum LinkEvent {
    Welcome {
        you: String,
        peers: Vec<String>,
        /// The relay's limit on peers per room.
        max_peers: usize,
        /// The relay takes `audio` messages (see [`Kind::Audio`]).
        audio: bool,
        /// The relay's limit on messages from us: (per second, burst).
        rate: (u32, u32),
    },
    PeerJoined(String),
    PeerLeft(String, LeaveReason),
    Blob {
        from: String,
        data: Vec<u8>,
    },
    RelayError {
        code: String,
        message: String,
    },
    Rtt(Duration),
    /// The relay says our downlink can't carry the video offered (paused),
    /// or can again.
    VideoPaused(bool),
    Closed(String),
    /// The relay ended the call on purpose (its host quit): don't reconnect.
    CallEnded(String),
}

/// Traffic counters, shared with the UI for the status line.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    /// Media frames replaced in the slot before they could be sent: the
    /// uplink is not keeping up.
    pub media_replaced: AtomicU64,
    pub media_sent: AtomicU64,
    /// Microseconds from queueing a media frame to the socket taking it,
    /// summed over `media_sent` (the send-time trend).
    pub media_send_us: AtomicU64,
    pub audio_sent: AtomicU64,
    /// Bytes of audio messages written (JSON and base64 included).
    pub audio_bytes_up: AtomicU64,
    /// Audio dropped before sending: the uplink fell that far behind.
    pub audio_dropped: AtomicU64,
    /// Our uplink can't carry the video we make (a frame would hold our
    /// voice up too long): it goes only now and then.
    pub uplink_video_paused: std::sync::atomic::AtomicBool,
    /// How long our last video frame took on the uplink, µs (0: not yet
    /// measured): frames that hold the link long hold our voice up too.
    pub frame_link_us: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach the relay at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the relay refused to join: {0}")]
    Refused(String),
    /// TLS failed in a way the user has to fix (trust, name, no TLS).
    #[error("{0}")]
    Tls(String),
}

struct MediaSlot {
    frame: Mutex<Option<(String, Instant)>>,
    ready: Notify,
}

/// Audio waiting for the socket: sent after control and before video, and
/// short, since voice that waits is voice the receiver can't use.
struct AudioQueue {
    messages: Mutex<VecDeque<String>>,
    ready: Notify,
}

/// Audio messages kept while the uplink is busy (160 ms of 20 ms packets).
const AUDIO_QUEUE: usize = 8;

/// Handle for sending; events arrive on the receiver from [`connect`].
#[derive(Clone)]
pub struct Link {
    control: mpsc::Sender<String>,
    media: Arc<MediaSlot>,
    audio: Arc<AudioQueue>,
    /// The relay takes `audio` messages; else audio goes out as `media`
    /// (still ahead of video here, but not at the relay).
    relay_has_audio: bool,
    pub stats: Arc<LinkStats>,
}

impl Link {
    /// Queues a message for the relay. Control waits for room in its queue
    /// (it must not be lost); media replaces any frame still waiting.
    pub async fn send(&self, to: Option<&str>, kind: Kind, data: &[u8]) {
        let encoded = B64.encode(data);
        let wire_kind = match kind {
            Kind::Audio if !self.relay_has_audio => Kind::Media,
            k => k,
        };
        let json = ClientMessage::Send {
            kind: wire_kind,
            to: to.map(Into::into),
            data: encoded.into(),
        }
        .to_json();
        match kind {
            Kind::Control => {
                let _ = self.control.send(json).await;
            }
            Kind::Media => {
                let mut slot = self.media.frame.lock().unwrap_or_else(|e| e.into_inner());
                if slot.replace((json, Instant::now())).is_some() {
                    self.stats.media_replaced.fetch_add(1, Relaxed);
                }
                drop(slot);
                self.media.ready.notify_one();
            }
            Kind::Audio => {
                let mut queue = self
                    .audio
                    .messages
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                queue.push_back(json);
                while queue.len() > AUDIO_QUEUE {
                    queue.pop_front();
                    self.stats.audio_dropped.fetch_add(1, Relaxed);
                }
                drop(queue);
                self.audio.ready.notify_one();
            }
        }
    }

    /// Sends `leave` (best effort) so others see us go at once.
    pub async fn leave(&self) {
        let _ = self.control.send(ClientMessage::Leave.to_json()).await;
    }
}

/// Connects, joins `room`, and waits for `welcome` (the first event returned).
pub async fn connect(
    url: &str,
    room: &str,
    options: LinkOptions,
) -> Result<(Link, mpsc::Receiver<LinkEvent>, LinkEvent), LinkError> {
    let unreachable = |reason: String| LinkError::Unreachable {
        url: url.to_string(),
        reason: crate::sanitize::clean_truncated(&reason, 300),
    };
    let ws = tokio::time::timeout(
        Duration::from_secs(10),
        open_websocket(url, options.tls.clone()),
    )
    .await
    .map_err(|_| unreachable("timed out".into()))?
    .map_err(|e| match super::tls::explain(&e, url) {
        Some(why) => LinkError::Tls(why),
        None => unreachable(e),
    })?;
    let (mut sink, mut stream) = ws.split();
    let join = ClientMessage::Join {
        room: room.into(),
        v: streamflow_relay::protocol::PROTOCOL_VERSION,
    }
    .to_json();
    sink.send(Message::Text(join.into()))
        .await
        .map_err(|e| unreachable(e.to_string()))?;

    let stats = Arc::new(LinkStats::default());
    let (events_tx, events_rx) = mpsc::channel(1024);
    // Wait for welcome (or a refusal) before handing the link out.
    let welcome = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .map_err(|_| unreachable("no welcome from the relay".into()))?;
        match msg {
            Some(Ok(Message::Text(t))) => match parse(&t, &stats) {
                Some(LinkEvent::RelayError { code, message }) => {
                    return Err(LinkError::Refused(format!("{code}: {message}")))
                }
                Some(w @ LinkEvent::Welcome { .. }) => break w,
                _ => continue,
            },
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(unreachable(e.to_string())),
            None => return Err(unreachable("closed before welcome".into())),
        }
    };

    let (control_tx, mut control_rx) = mpsc::channel::<String>(1024);
    let media = Arc::new(MediaSlot {
        frame: Mutex::new(None),
        ready: Notify::new(),
    });
    let audio = Arc::new(AudioQueue {
        messages: Mutex::new(VecDeque::new()),
        ready: Notify::new(),
    });
    let relay_has_audio = matches!(welcome, LinkEvent::Welcome { audio: true, .. });
    let mut pacer = match &welcome {
        LinkEvent::Welcome { rate, .. } => Pacer::new(rate.0, rate.1, Instant::now()),
        _ => Pacer::new(0, 0, Instant::now()),
    };
    let ping_sent: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));

    // Writer: control first, then audio, then the latest video frame as the
    // flow window allows (see `streamflow_relay::flow`: what is in flight
    // on our uplink stays near what it carries, so our voice never waits
    // behind seconds of our own video); ping for RTT.
    let flow = Arc::new(FlowLink::default());
    {
        let media = media.clone();
        let audio = audio.clone();
        let stats = stats.clone();
        let ping_sent = ping_sent.clone();
        let events = events_tx.clone();
        let flow = flow.clone();
        tokio::spawn(async move {
            let mut ping = tokio::time::interval(PING_EVERY);
            let mut probe_at = tokio::time::Instant::now();
            loop {
                let text = tokio::select! {
                    biased;
                    msg = control_rx.recv() => match msg {
                        Some(m) => m,
                        None => break,
                    },
                    _ = audio.ready.notified() => {
                        loop {
                            let next = audio.messages.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                            let Some(text) = next else { break };
                            pace(&mut pacer).await;
                            let len = text.len() as u64;
                            {
                                let mut flow = flow.lock();
                                flow.on_write(text.len());
                                flow.on_voice(Instant::now());
                            }
                            stats.bytes_up.fetch_add(len, Relaxed);
                            stats.audio_bytes_up.fetch_add(len, Relaxed);
                            if let Err(e) = sink.send(Message::Text(text.into())).await {
                                let _ = events.send(LinkEvent::Closed(e.to_string())).await;
                                return;
                            }
                            stats.audio_sent.fetch_add(1, Relaxed);
                        }
                        continue;
                    }
                    // Video: the newest frame, when the window has room; a
                    // pong may have made some.
                    _ = media.ready.notified() => {
                        let frame = take_frame(&media, &flow, &stats);
                        let Some((text, queued)) = frame else { continue };
                        pace(&mut pacer).await;
                        stats.bytes_up.fetch_add(text.len() as u64, Relaxed);
                        flow.lock().on_write(text.len());
                        if let Err(e) = sink.send(Message::Text(text.into())).await {
                            let _ = events.send(LinkEvent::Closed(e.to_string())).await;
                            break;
                        }
                        stats.media_sent.fetch_add(1, Relaxed);
                        stats.media_send_us.fetch_add(queued.elapsed().as_micros() as u64, Relaxed);
                        continue;
                    }
                    _ = flow.acked.notified() => {
                        media.ready.notify_one();
                        continue;
                    }
                    _ = tokio::time::sleep_until(probe_at), if flow.lock().wants_probe() => {
                        probe_at = tokio::time::Instant::now() + PROBE_RETRY;
                        let probe = flow.lock().probe(Instant::now());
                        if let Some(p) = probe {
                            if sink.send(Message::Ping(p.to_vec().into())).await.is_err() {
                                break;
                            }
                        }
                        continue;
                    }
                    _ = ping.tick() => {
                        *ping_sent.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                        if sink.send(Message::Ping(Default::default())).await.is_err() {
                            break;
                        }
                        continue;
                    }
                };
                pace(&mut pacer).await;
                stats.bytes_up.fetch_add(text.len() as u64, Relaxed);
                flow.lock().on_write(text.len());
                if let Err(e) = sink.send(Message::Text(text.into())).await {
                    let _ = events.send(LinkEvent::Closed(e.to_string())).await;
                    break;
                }
            }
            let _ = sink.close().await;
        });
    }

    // Reader, with the liveness watchdog: any frame from the relay (pongs
    // come every PING_EVERY) proves it alive.
    {
        let stats = stats.clone();
        tokio::spawn(async move {
            let reason = loop {
                let next = tokio::time::timeout(options.liveness_timeout, stream.next()).await;
                let Ok(next) = next else {
                    break format!(
                        "the relay went silent for {} s",
                        options.liveness_timeout.as_secs_f64()
                    );
                };
                match next {
                    Some(Ok(Message::Text(t))) => {
                        if let Some(ev) = parse(&t, &stats) {
                            if events_tx.send(ev).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(Message::Pong(payload)))
                        if flow.lock().on_pong(&payload, Instant::now()) =>
                    {
                        // The answer to a flow probe: the window may have opened.
                        flow.acked.notify_one();
                    }
                    Some(Ok(Message::Pong(_))) => {
                        let sent = ping_sent.lock().unwrap_or_else(|e| e.into_inner()).take();
                        if let Some(sent) = sent {
                            let _ = events_tx.try_send(LinkEvent::Rtt(sent.elapsed()));
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        if let Some(f) = &frame {
                            if u16::from(f.code) == streamflow_relay::protocol::CLOSE_CALL_ENDED {
                                let why = crate::sanitize::clean_truncated(&f.reason, 200);
                                let _ = events_tx.send(LinkEvent::CallEnded(why)).await;
                                return;
                            }
                        }
                        break frame
                            .map(|f| {
                                format!(
                                    "relay closed the connection: {}",
                                    crate::sanitize::clean_truncated(&f.reason, 200)
                                )
                            })
                            .unwrap_or_else(|| "relay closed the connection".into());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("connection lost: {e}"),
                    None => break "connection lost".into(),
                }
            };
            let _ = events_tx.send(LinkEvent::Closed(reason)).await;
        });
    }

    Ok((
        Link {
            control: control_tx,
            media,
            audio,
            relay_has_audio,
            stats,
        },
        events_rx,
        welcome,
    ))
}

/// TCP (with the unsent-bytes cap), then TLS for `wss://`, then the
/// WebSocket handshake.
async fn open_websocket(
    url: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = url.into_client_request().map_err(|e| e.to_string())?;
    let uri = request.uri();
    let host = uri.host().ok_or("the relay URL has no host")?.to_string();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    super::socket::limit_unsent(&tcp, UNSENT_LIMIT);
    let connector = tls.map(tokio_tungstenite::Connector::Rustls);
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(request, tcp, None, connector)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The writer's flow window, shared with the reader that hears the pongs.
#[derive(Default)]
struct FlowLink {
    flow: Mutex<Flow>,
    /// A pong came: the window may have opened.
    acked: Notify,
}

impl FlowLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A probe not due right after a write is tried again this soon.
const PROBE_RETRY: Duration = Duration::from_millis(20);

/// The newest video frame, if the flow window has room for it now (else it
/// stays in the slot, where a newer one may replace it).
fn take_frame(media: &MediaSlot, flow: &FlowLink, stats: &LinkStats) -> Option<(String, Instant)> {
    let mut slot = media.frame.lock().unwrap_or_else(|e| e.into_inner());
    let len = slot.as_ref()?.0.len();
    let mut flow = flow.lock();
    let now = Instant::now();
    let room = flow.media_room(len, now);
    stats
        .uplink_video_paused
        .store(flow.video_paused(), Relaxed);
    let on_link = flow
        .message_time_if_limited(len, now)
        .map_or(0, |d| d.as_micros() as u64);
    stats.frame_link_us.store(on_link, Relaxed);
    if !room {
        return None;
    }
    slot.take()
}

/// Waits for the relay's rate limit to allow one more message.
async fn pace(pacer: &mut Pacer) {
    let wait = pacer.take(Instant::now());
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
}

/// Longest peer id taken from a relay.
const MAX_PEER_ID: usize = 64;

/// Peer ids come from the relay and reach the screen, the logs and the
/// headless output: 1–64 characters of `[A-Za-z0-9_-]`, or the message is
/// dropped. (Ours are 16 hex digits.)
fn valid_peer_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PEER_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn parse(text: &str, stats: &LinkStats) -> Option<LinkEvent> {
    stats.bytes_down.fetch_add(text.len() as u64, Relaxed);
    let msg = match ServerMessage::parse(text) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!("unparseable relay message: {e}");
            return None;
        }
    };
    let checked = |id: &str| {
        let ok = valid_peer_id(id);
        if !ok {
            tracing::debug!("relay message with an invalid peer id dropped");
        }
        ok
    };
    Some(match msg {
        ServerMessage::Welcome {
            you,
            peers,
            limits,
            features,
        } => {
            if !checked(&you) {
                return None;
            }
            LinkEvent::Welcome {
                you: you.into_owned(),
                peers: peers
                    .into_iter()
                    .filter(|p| checked(p))
                    .map(|p| p.into_owned())
                    .collect(),
                max_peers: limits.max_peers_per_room,
                audio: features.iter().any(|f| f == "audio"),
                rate: (limits.rate_per_sec, limits.rate_burst),
            }
        }
        ServerMessage::PeerJoined { peer } if checked(&peer) => {
            LinkEvent::PeerJoined(peer.into_owned())
        }
        ServerMessage::PeerLeft { peer, reason } if checked(&peer) => {
            LinkEvent::PeerLeft(peer.into_owned(), reason)
        }
        ServerMessage::PeerJoined { .. } | ServerMessage::PeerLeft { .. } => return None,
        ServerMessage::Blob { from, .. } if !checked(&from) => return None,
        ServerMessage::Blob { from, data, .. } => match B64.decode(data.as_bytes()) {
            Ok(data) => LinkEvent::Blob {
                from: from.into_owned(),
                data,
            },
            Err(_) => LinkEvent::Blob {
                from: from.into_owned(),
                data: Vec::new(), // counted as a decrypt failure by the room
            },
        },
        ServerMessage::VideoPaused { paused } => LinkEvent::VideoPaused(paused),
        ServerMessage::Error { code, message } => LinkEvent::RelayError {
            code: code.as_str().to_string(),
            // The relay's words reach the screen and stderr: no escapes.
            message: crate::sanitize::clean_truncated(&message, 200),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Peer ids are the relay's choice and reach the screen: anything but
    /// a short `[A-Za-z0-9_-]` id is dropped where it enters (an id like
    /// `aéééé` used to crash the TUI, which sliced it by bytes).
    #[test]
    fn peer_ids_are_validated_where_they_enter() {
        let stats = LinkStats::default();
        for bad in ["aéééé", "", "a b", r"\u001b[2J", &"x".repeat(65)] {
            let joined = format!(r#"{{"type":"peer_joined","peer":"{bad}"}}"#);
            assert!(parse(&joined, &stats).is_none(), "{bad:?} taken");
            let blob = format!(r#"{{"type":"blob","from":"{bad}","kind":"control","data":""}}"#);
            assert!(parse(&blob, &stats).is_none(), "{bad:?} taken");
        }
        let welcome = r#"{"type":"welcome","you":"me1","peers":["ok-1","aéééé","ok_2"],"limits":{"max_message_bytes":1,"max_peers_per_room":4,"rate_per_sec":1,"rate_burst":1,"ping_interval_ms":1,"idle_timeout_ms":1}}"#;
        match parse(welcome, &stats) {
            Some(LinkEvent::Welcome { you, peers, .. }) => {
                assert_eq!(you, "me1");
                assert_eq!(peers, ["ok-1", "ok_2"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"{"type":"peer_joined","peer":"c4c0693b49460cdc"}"#, &stats),
            Some(LinkEvent::PeerJoined(p)) if p == "c4c0693b49460cdc"
        ));
    }

    /// A hostile relay's words reach the screen and stderr: no escapes.
    #[test]
    fn relay_text_is_cleaned() {
        let stats = LinkStats::default();
        let evil = r#"{"type":"error","code":"bad_message","message":"\u001b]2;pwned\u0007\u001b[2J gone"}"#;
        match parse(evil, &stats) {
            Some(LinkEvent::RelayError { message, .. }) => {
                assert!(!message.chars().any(char::is_control), "{message:?}");
                assert!(message.contains("gone"));
            }
            other => panic!("{other:?}"),
        }
    }
}
