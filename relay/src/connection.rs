//! One client connection: a reader loop that parses, checks and routes what
//! the client sends, and a writer task that drains the client's [`Outbox`]
//! and pings it. The two only share the outbox, so a client that stops
//! reading never blocks the reader (or anyone else's delivery).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info};

use crate::flow::Flow;
use crate::hub::Member;
use crate::limits::{Strikes, TokenBucket};
use crate::memory::{Account, Shed};
use crate::outbox::{Next, Outbox};
use crate::peer::PeerId;
use crate::protocol::{ClientMessage, ErrorCode, Kind, LeaveReason, ProtocolError, ServerMessage};
use crate::server::Shared;

/// Messages bigger than this yield to other tasks once handled.
const YIELD_AFTER_BYTES: usize = 64 << 10;
/// How long a quiet connection must behave before its strikes are forgiven.
const STRIKE_WINDOW: Duration = Duration::from_secs(30);
/// Messages batched into one flush when the outbox has several ready. A
/// batch that the socket can't take at once waits in the WebSocket's write
/// buffer, where stale media can no longer be dropped: so batches stay small
/// (the kernel's unsent limit) while the socket is slow, and grow, doubling,
/// while every flush completes at once, which cuts write calls and packets
/// per message when the relay is busy and its receivers keep up.
const MIN_BATCH_BYTES: usize = 4 * 1024;
const MAX_BATCH_BYTES: usize = 64 * 1024;
/// A probe that wasn't due right after a write is tried again this soon
/// (the written bytes still need one).
const PROBE_RETRY: Duration = Duration::from_millis(20);

pub async fn serve<S>(
    ws: WebSocketStream<S>,
    shared: Arc<Shared>,
    remote: std::net::SocketAddr,
    account: Arc<Account>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = PeerId::random();
    let (sink, stream) = ws.split();
    let outbox = Arc::new(Outbox::new(shared.queue_limits, shared.metrics.clone()));
    account.set_outbox(&outbox);
    let flow = Arc::new(FlowLink::default());
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        flow.clone(),
        shared.config.ping_interval,
        shared.clone(),
    ));
    debug!(%peer, %remote, "connected");
    let mut conn = Connection {
        peer,
        remote,
        account,
        flow,
        outbox: outbox.clone(),
        shared: shared.clone(),
        member: None,
        bucket: TokenBucket::new(
            shared.config.rate_per_sec,
            shared.config.rate_burst,
            Instant::now(),
        ),
        byte_bucket: TokenBucket::new(
            u32::try_from(shared.config.max_bytes_per_sec).unwrap_or(u32::MAX),
            u32::try_from(shared.config.max_message_bytes.saturating_mul(2)).unwrap_or(u32::MAX),
            Instant::now(),
        ),
        strikes: Strikes::new(shared.config.max_strikes, STRIKE_WINDOW),
        rate_limited_since: None,
        unknown_peer_since: None,
    };
    let (reason, writer_done) = conn.read_loop(stream, &mut writer).await;
    if let Some(member) = conn.member.take() {
        info!(%peer, reason = reason.as_str(), "left");
        shared.hub.leave(member, reason);
    }
    // Give the writer a moment to flush what is queued and the close frame;
    // a stalled client gets no more than that. (A finished JoinHandle must
    // not be polled again.) The first close reason given wins.
    outbox.close(1000, "");
    // A shed connection's buffers are what the relay needs back: it gets
    // only a moment to take its close frame.
    let grace = match conn.account.shed_reason() {
        Some(_) => Duration::from_millis(250),
        None => Duration::from_secs(2),
    };
    if !writer_done && tokio::time::timeout(grace, &mut writer).await.is_err() {
        writer.abort();
    }
    debug!(%peer, "disconnected");
}

/// The writer's flow window, shared with the reader that hears the pongs.
#[derive(Default)]
struct FlowLink {
    flow: std::sync::Mutex<Flow>,
    /// A pong came: the window may have opened.
    acked: tokio::sync::Notify,
}

impl FlowLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Flow> {
        self.flow.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Flow::media_room`] for the writer. The first video offered starts
    /// the probing: the writer, waiting inside the outbox for video to fit,
    /// is woken to send the first probe (nothing else would wake it).
    fn media_room(&self, len: usize) -> bool {
        let mut flow = self.lock();
        let room = flow.media_room(len, Instant::now());
        if flow.take_first_offer() {
            self.acked.notify_one();
        }
        room
    }
}

struct Connection {
    peer: PeerId,
    remote: std::net::SocketAddr,
    /// Our share of the relay's memory budget.
    account: Arc<Account>,
    flow: Arc<FlowLink>,
    outbox: Arc<Outbox>,
    shared: Arc<Shared>,
    member: Option<Member>,
    bucket: TokenBucket,
    /// Bytes read: past `--max-bytes-per-sec` reading pauses.
    byte_bucket: TokenBucket,
    strikes: Strikes,
    /// Start of the current one-second rate-limit episode, if any.
    rate_limited_since: Option<Instant>,
    unknown_peer_since: Option<Instant>,
}

impl Connection {
    async fn read_loop<R>(
        &mut self,
        stream: R,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> (LeaveReason, bool)
    where
        R: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    {
        let mut writer_done = false;
        let reason = self.read_frames(stream, writer, &mut writer_done).await;
        (reason, writer_done)
    }

    async fn read_frames<R>(
        &mut self,
        mut stream: R,
        writer: &mut tokio::task::JoinHandle<()>,
        writer_done: &mut bool,
    ) -> LeaveReason
    where
        R: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
    {
        let idle_timeout = self.shared.config.idle_timeout;
        let mut last_seen = tokio::time::Instant::now();
        let shutdown = self.shared.shutdown.clone();
        let account = self.account.clone();
        // Until when reading pauses, for a connection over its byte rate.
        let mut resume = tokio::time::Instant::now();
        loop {
            let paused = tokio::time::Instant::now() < resume;
            let frame = tokio::select! {
                frame = stream.next(), if !paused => frame,
                _ = tokio::time::sleep_until(resume), if paused => continue,
                _ = account.shed_notify.notified() => {
                    let (counter, code, why) = match account.shed_reason() {
                        Some(Shed::Deadline) => (
                            &self.shared.metrics.message_deadline,
                            1008,
                            "message not finished within the deadline",
                        ),
                        _ => (
                            &self.shared.metrics.memory_shed,
                            1013,
                            "relay over its memory budget: this connection held the most; try again later",
                        ),
                    };
                    counter.fetch_add(1, Relaxed);
                    debug!(peer = %self.peer, "shed: {why}");
                    self.outbox.discard_and_close(code, why);
                    return LeaveReason::Error;
                }
                _ = tokio::time::sleep_until(last_seen + idle_timeout) => {
                    self.shared.metrics.timeouts.fetch_add(1, Relaxed);
                    self.outbox.close(1001, "idle timeout: no pong or message received");
                    return LeaveReason::Timeout;
                }
                _ = &mut *writer => {
                    // The writer stops on a write error or a closed outbox
                    // (slow receiver): either way this peer is gone.
                    *writer_done = true;
                    return LeaveReason::Error;
                }
                _ = shutdown.cancelled() => {
                    let (code, reason) = self.shared.farewell.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    self.outbox.close(code, reason);
                    return LeaveReason::Error;
                }
            };
            last_seen = tokio::time::Instant::now();
            if let Some(Ok(Message::Text(text))) = &frame {
                resume = last_seen + self.byte_bucket.spend(text.len() as f64, Instant::now());
            }
            let outcome = match frame {
                None => return LeaveReason::Error,
                Some(Ok(Message::Text(text))) => {
                    let large = text.len() > YIELD_AFTER_BYTES;
                    let outcome = self.on_text(text).await;
                    // A big message is a millisecond of work: let the other
                    // connections' tasks run before reading the next one,
                    // so a few bulk senders can't delay everyone's calls.
                    if large {
                        tokio::task::yield_now().await;
                    }
                    outcome
                }
                Some(Ok(Message::Binary(_))) => self.reject(ProtocolError::new(
                    ErrorCode::BinaryUnsupported,
                    "binary frames are not part of protocol v1: send JSON text",
                )),
                Some(Ok(Message::Close(frame))) => {
                    // RFC 6455 §5.5.1: answer with the same code; an
                    // invalid one is a protocol error (1002).
                    let code = frame.map_or(1000, |f| u16::from(f.code));
                    let reply = if valid_close_code(code) { code } else { 1002 };
                    self.outbox.close(reply, "");
                    return LeaveReason::Leave;
                }
                Some(Ok(Message::Pong(payload))) => {
                    // The answer to a probe of the writer's: what arrived.
                    if self.flow.lock().on_pong(&payload, Instant::now()) {
                        self.flow.acked.notify_one();
                    }
                    Ok(())
                }
                Some(Ok(_)) => Ok(()), // ping: liveness only
                Some(Err(tungstenite::Error::Capacity(e))) => {
                    debug!(peer = %self.peer, "oversize frame: {e}");
                    self.send_error(ProtocolError::new(
                        ErrorCode::TooLarge,
                        format!(
                            "message over {} bytes; closing",
                            self.shared.config.max_message_bytes
                        ),
                    ));
                    self.outbox.close(1009, "message too large");
                    return LeaveReason::Error;
                }
                Some(Err(tungstenite::Error::Utf8(_))) => {
                    // §7.4.1: 1007 for text that isn't UTF-8.
                    self.send_error(ProtocolError::new(
                        ErrorCode::BadMessage,
                        "text frame is not valid UTF-8; closing",
                    ));
                    self.outbox.close(1007, "invalid UTF-8");
                    return LeaveReason::Error;
                }
                Some(Err(tungstenite::Error::Protocol(e))) => {
                    debug!(peer = %self.peer, "protocol error: {e}");
                    self.send_error(ProtocolError::new(
                        ErrorCode::BadMessage,
                        format!("WebSocket protocol error: {e}; closing"),
                    ));
                    self.outbox.close(1002, "protocol error");
                    return LeaveReason::Error;
                }
                Some(Err(e)) => {
                    debug!(peer = %self.peer, "read error: {e}");
                    return LeaveReason::Error;
                }
            };
            if let Err(reason) = outcome {
                return reason;
            }
        }
    }

    async fn on_text(&mut self, text: Utf8Bytes) -> Result<(), LeaveReason> {
        let metrics = &self.shared.metrics;
        metrics.messages_in.fetch_add(1, Relaxed);
        metrics.bytes_in.fetch_add(text.len() as u64, Relaxed);

        let now = Instant::now();
        if !self.bucket.try_take(now) {
            return self.on_rate_limited(now);
        }
        if text.len() > self.shared.config.max_message_bytes {
            return self.reject(ProtocolError::new(
                ErrorCode::TooLarge,
                format!(
                    "message of {} bytes is over the {}-byte limit",
                    text.len(),
                    self.shared.config.max_message_bytes
                ),
            ));
        }
        match ClientMessage::parse(text.as_str()) {
            Ok(message) => match self.handle(message).await {
                Ok(()) => Ok(()),
                // Flow control, not abuse: said (and struck) once a second.
                Err(e) if e.code == ErrorCode::RateLimited => self.on_throttled(now, e),
                // A message to someone who left a moment ago: a race every
                // client hits when members come and go, not abuse. Said
                // once a second, never struck.
                Err(e) if e.code == ErrorCode::UnknownPeer => {
                    self.on_unknown_peer(now, e);
                    Ok(())
                }
                Err(e) => self.reject(e),
            },
            Err(e) => self.reject(e),
        }
    }

    async fn handle(&mut self, message: ClientMessage<'_>) -> Result<(), ProtocolError> {
        match message {
            ClientMessage::Join { room, .. } => {
                if let Some(member) = &self.member {
                    return Err(ProtocolError::new(
                        ErrorCode::AlreadyJoined,
                        format!("already in a room as {}; send leave first", member.peer()),
                    ));
                }
                let refusal = |code| ProtocolError::new(code, join_refusal(code, &self.shared));
                self.shared.hub.prepare_join(&room).await.map_err(refusal)?;
                let member = match self.shared.hub.join(&room, self.peer, self.outbox.clone()) {
                    Ok(m) => m,
                    Err(code) => {
                        self.shared.hub.abandon_join(&room);
                        return Err(refusal(code));
                    }
                };
                info!(peer = %self.peer, "joined");
                self.member = Some(member);
                Ok(())
            }
            ClientMessage::Send { kind, to, data } => {
                let member = self.member.as_ref().ok_or_else(|| {
                    ProtocolError::new(ErrorCode::NotJoined, "join a room before sending")
                })?;
                let control_max = self.shared.config.max_control_bytes;
                if kind == Kind::Control && data.len() > control_max {
                    return Err(ProtocolError::new(
                        ErrorCode::TooLarge,
                        format!("control messages are at most {control_max} bytes (this one: {}); media may be larger", data.len()),
                    ));
                }
                let target = match to {
                    Some(to) => Some(to.parse::<PeerId>().map_err(|_| {
                        ProtocolError::new(ErrorCode::UnknownPeer, "no such peer in this room")
                    })?),
                    None => None,
                };
                // Serialized once; every receiver shares these bytes.
                let blob = Utf8Bytes::from(ServerMessage::blob_json(
                    &self.peer.to_string(),
                    kind,
                    &data,
                ));
                let behind = || {
                    ProtocolError::new(
                        ErrorCode::RateLimited,
                        "a receiver is behind on your control messages: they are being dropped; slow down",
                    )
                };
                match target {
                    None => match self.shared.hub.broadcast(member, kind, blob) {
                        0 => Ok(()),
                        _ => Err(behind()),
                    },
                    Some(to) => self
                        .shared
                        .hub
                        .send_to(member, to, kind, blob)
                        .map_err(|code| match code {
                            ErrorCode::RateLimited => behind(),
                            code => ProtocolError::new(code, "no such peer in this room"),
                        }),
                }
            }
            ClientMessage::Leave => {
                let member = self.member.take().ok_or_else(|| {
                    ProtocolError::new(ErrorCode::NotJoined, "not in a room; nothing to leave")
                })?;
                self.shared.hub.leave(member, LeaveReason::Leave);
                Ok(())
            }
        }
    }

    /// Over the rate limit: the message is dropped.
    fn on_rate_limited(&mut self, now: Instant) -> Result<(), LeaveReason> {
        let error = ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "over {} messages/s (burst {}); messages are being dropped",
                self.shared.config.rate_per_sec, self.shared.config.rate_burst
            ),
        );
        self.on_throttled(now, error)
    }

    /// A message dropped for flow control (over the rate limit, or a
    /// receiver behind on this sender's control): one `rate_limited` error
    /// (and one strike) per second of it, not one per message.
    fn on_throttled(&mut self, now: Instant, error: ProtocolError) -> Result<(), LeaveReason> {
        let new_episode = self
            .rate_limited_since
            .is_none_or(|since| now.duration_since(since) >= Duration::from_secs(1));
        if !new_episode {
            return Ok(());
        }
        self.rate_limited_since = Some(now);
        self.reject(error)
    }

    /// A directed send to a peer not in the room: told at most once a
    /// second.
    fn on_unknown_peer(&mut self, now: Instant, error: ProtocolError) {
        let due = self
            .unknown_peer_since
            .is_none_or(|since| now.duration_since(since) >= Duration::from_secs(1));
        if due {
            self.unknown_peer_since = Some(now);
            self.send_error(error);
        }
    }

    /// Answers a violation with an `error` and counts a strike; closes the
    /// connection when there have been too many.
    fn reject(&mut self, error: ProtocolError) -> Result<(), LeaveReason> {
        debug!(peer = %self.peer, code = %error.code, "rejected: {}", error.message);
        self.send_error(error);
        if self.strikes.strike(Instant::now()) {
            self.shared.metrics.disconnects_abuse.fetch_add(1, Relaxed);
            // Reconnecting at once would start the abuse over: the address
            // waits a little (longer each time).
            self.shared.penalize(self.remote.ip());
            self.outbox.close(1008, "too many protocol violations");
            return Err(LeaveReason::Error);
        }
        Ok(())
    }

    fn send_error(&self, error: ProtocolError) {
        self.shared.metrics.error(error.code);
        let json = ServerMessage::error(error.code, error.message).to_json();
        self.outbox.push(Kind::Control, self.peer, json.into());
    }
}

/// Close codes a peer may send (RFC 6455 §7.4.1-2): 1000–1003, 1007–1011,
/// and 3000–4999 for libraries and applications.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

fn join_refusal(code: ErrorCode, shared: &Shared) -> String {
    match code {
        ErrorCode::RoomFull => format!("room is full ({} peers)", shared.config.max_peers_per_room),
        ErrorCode::TooManyRooms => "the relay is at its room limit; try again later".into(),
        _ => code.as_str().into(),
    }
}

/// Drains the outbox into the socket: control, then voice, then video as
/// the flow window allows (see [`crate::flow`]): what is in flight to this
/// receiver stays near what its path carries, so voice never waits behind
/// seconds of video, and video that waits is thinned to the newest frames.
async fn write_loop<W>(
    mut sink: W,
    outbox: Arc<Outbox>,
    flow: Arc<FlowLink>,
    ping_every: Duration,
    shared: Arc<Shared>,
) where
    W: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let metrics = &shared.metrics;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    let mut batch_limit = MIN_BATCH_BYTES;
    // An empty-path probe is due at once (the flow measures the round trip
    // before the first video).
    let mut probe_at = tokio::time::Instant::now();
    let mut paused = false;
    loop {
        // Tell the client when its link stops (or starts again) carrying
        // video, rather than let its tiles freeze unexplained.
        let now_paused = {
            let mut flow = flow.lock();
            if let Some(at) = outbox.last_voice() {
                flow.on_voice(at);
            }
            flow.video_paused()
        };
        if now_paused != paused {
            paused = now_paused;
            let notice = ServerMessage::VideoPaused { paused }.to_json();
            if sink.send(Message::Text(notice.into())).await.is_err() {
                return;
            }
        }
        let next = tokio::select! {
            next = outbox.next_gated(|len| flow.media_room(len)) => next,
            // A pong may have opened the window for waiting video.
            _ = flow.acked.notified() => continue,
            _ = tokio::time::sleep_until(probe_at), if flow.lock().wants_probe() => {
                probe_at = tokio::time::Instant::now() + PROBE_RETRY;
                let probe = flow.lock().probe(Instant::now());
                if let Some(p) = probe {
                    if sink.send(Message::Ping(p.to_vec().into())).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            _ = ping.tick() => {
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
                continue;
            }
        };
        let mut next = Some(next);
        let mut batch = 0;
        while let Some(item) = next.take() {
            match item {
                Next::Send(message) => {
                    batch += message.len();
                    flow.lock().on_write(message.len());
                    metrics.messages_out.fetch_add(1, Relaxed);
                    metrics.bytes_out.fetch_add(message.len() as u64, Relaxed);
                    if sink.feed(Message::Text(message)).await.is_err() {
                        return;
                    }
                }
                Next::Close(reason) => {
                    let frame = CloseFrame {
                        code: CloseCode::from(reason.code),
                        reason: reason.reason.into(),
                    };
                    // After the client's own close, the WebSocket layer has
                    // already queued the echo (RFC 6455 §5.5.1) and refuses
                    // a second close: flushing sends it.
                    if sink.send(Message::Close(Some(frame))).await.is_err() {
                        let _ = sink.flush().await;
                    }
                    return;
                }
            }
            if batch < batch_limit {
                next = outbox.try_next_gated(|len| flow.media_room(len));
            }
        }
        // A probe right behind what was written: its pong says when it
        // arrived. (One at most every few ms; else soon after. None once
        // closing: the close frame goes straight after the last words.)
        let probe = match outbox.is_closed() {
            true => None,
            false => flow.lock().probe(Instant::now()),
        };
        if let Some(p) = probe {
            if sink.feed(Message::Ping(p.to_vec().into())).await.is_err() {
                return;
            }
        } else {
            probe_at = tokio::time::Instant::now() + PROBE_RETRY;
        }
        let flush = sink.flush();
        futures_util::pin_mut!(flush);
        let flushed = match futures_util::poll!(flush.as_mut()) {
            Poll::Ready(result) => result.map(|()| true),
            Poll::Pending => flush.await.map(|()| false),
        };
        match flushed {
            Ok(true) => batch_limit = (batch_limit * 2).min(MAX_BATCH_BYTES),
            Ok(false) => batch_limit = (batch_limit / 2).max(MIN_BATCH_BYTES),
            Err(_) => return,
        }
    }
}
