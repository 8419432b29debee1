//! One client connection: a reader loop that parses, checks and routes what
//! the client sends, and a writer task that drains the client's [`Outbox`]
//! and pings it. The two only share the outbox, so a client that stops
//! reading never blocks the reader (or anyone else's delivery).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, info};

use crate::hub::Member;
use crate::limits::{Strikes, TokenBucket};
use crate::outbox::{Next, Outbox};
use crate::peer::PeerId;
use crate::protocol::{ClientMessage, ErrorCode, Kind, LeaveReason, ProtocolError, ServerMessage};
use crate::server::Shared;

/// How long a quiet connection must behave before its strikes are forgiven.
const STRIKE_WINDOW: Duration = Duration::from_secs(30);
/// Messages batched into one flush when the outbox has several ready, up to
/// this many bytes: bigger batches would move media out of the queue (where
/// stale frames are dropped) into buffers where they can only wait.
const MAX_BATCH_BYTES: usize = 4 * 1024;

pub async fn serve<S>(ws: WebSocketStream<S>, shared: Arc<Shared>, remote: std::net::SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = PeerId::random();
    let (sink, stream) = ws.split();
    let outbox = Arc::new(Outbox::new(shared.queue_limits, shared.metrics.clone()));
    let mut writer = tokio::spawn(write_loop(
        sink,
        outbox.clone(),
        shared.config.ping_interval,
        shared.clone(),
    ));
    debug!(%peer, %remote, "connected");
    let mut conn = Connection {
        peer,
        outbox: outbox.clone(),
        shared: shared.clone(),
        member: None,
        bucket: TokenBucket::new(
            shared.config.rate_per_sec,
            shared.config.rate_burst,
            Instant::now(),
        ),
        strikes: Strikes::new(shared.config.max_strikes, STRIKE_WINDOW),
        rate_limited_since: None,
    };
    let (reason, writer_done) = conn.read_loop(stream, &mut writer).await;
    if let Some(member) = conn.member.take() {
        info!(%peer, reason = reason.as_str(), "left");
        shared.hub.leave(member, reason);
    }
    // Give the writer a moment to flush what is queued and the close frame;
    // a stalled client gets no more than that. (A finished JoinHandle must
    // not be polled again.)
    outbox.close(1000, "");
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
    debug!(%peer, "disconnected");
}

struct Connection {
    peer: PeerId,
    outbox: Arc<Outbox>,
    shared: Arc<Shared>,
    member: Option<Member>,
    bucket: TokenBucket,
    strikes: Strikes,
    /// Start of the current one-second rate-limit episode, if any.
    rate_limited_since: Option<Instant>,
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
        loop {
            let frame = tokio::select! {
                frame = stream.next() => frame,
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
            let outcome = match frame {
                None => return LeaveReason::Error,
                Some(Ok(Message::Text(text))) => self.on_text(text).await,
                Some(Ok(Message::Binary(_))) => self.reject(ProtocolError::new(
                    ErrorCode::BinaryUnsupported,
                    "binary frames are not part of protocol v1: send JSON text",
                )),
                Some(Ok(Message::Close(_))) => return LeaveReason::Leave,
                Some(Ok(_)) => Ok(()), // ping, pong: liveness only
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
                self.shared.hub.prepare_join(&room).await;
                let member = self
                    .shared
                    .hub
                    .join(&room, self.peer, self.outbox.clone())
                    .map_err(|code| ProtocolError::new(code, join_refusal(code, &self.shared)))?;
                info!(peer = %self.peer, "joined");
                self.member = Some(member);
                Ok(())
            }
            ClientMessage::Send { kind, to, data } => {
                let member = self.member.as_ref().ok_or_else(|| {
                    ProtocolError::new(ErrorCode::NotJoined, "join a room before sending")
                })?;
                let target = match to {
                    Some(to) => Some(to.parse::<PeerId>().map_err(|_| {
                        ProtocolError::new(ErrorCode::UnknownPeer, "no such peer in this room")
                    })?),
                    None => None,
                };
                // Serialized once; every receiver shares these bytes.
                let blob = Utf8Bytes::from(
                    ServerMessage::Blob {
                        from: self.peer.to_string().into(),
                        kind,
                        data,
                    }
                    .to_json(),
                );
                match target {
                    None => {
                        self.shared.hub.broadcast(member, kind, blob);
                        Ok(())
                    }
                    Some(to) => self
                        .shared
                        .hub
                        .send_to(member, to, kind, blob)
                        .map_err(|code| ProtocolError::new(code, "no such peer in this room")),
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

    /// Over the rate limit: the message is dropped. One `rate_limited` error
    /// (and one strike) per second of flooding, not one per message.
    fn on_rate_limited(&mut self, now: Instant) -> Result<(), LeaveReason> {
        let new_episode = self
            .rate_limited_since
            .is_none_or(|since| now.duration_since(since) >= Duration::from_secs(1));
        if !new_episode {
            return Ok(());
        }
        self.rate_limited_since = Some(now);
        self.reject(ProtocolError::new(
            ErrorCode::RateLimited,
            format!(
                "over {} messages/s (burst {}); messages are being dropped",
                self.shared.config.rate_per_sec, self.shared.config.rate_burst
            ),
        ))
    }

    /// Answers a violation with an `error` and counts a strike; closes the
    /// connection when there have been too many.
    fn reject(&mut self, error: ProtocolError) -> Result<(), LeaveReason> {
        debug!(peer = %self.peer, code = %error.code, "rejected: {}", error.message);
        self.send_error(error);
        if self.strikes.strike(Instant::now()) {
            self.shared.metrics.disconnects_abuse.fetch_add(1, Relaxed);
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

fn join_refusal(code: ErrorCode, shared: &Shared) -> String {
    match code {
        ErrorCode::RoomFull => format!("room is full ({} peers)", shared.config.max_peers_per_room),
        ErrorCode::TooManyRooms => "the relay is at its room limit; try again later".into(),
        _ => code.as_str().into(),
    }
}

async fn write_loop<W>(mut sink: W, outbox: Arc<Outbox>, ping_every: Duration, shared: Arc<Shared>)
where
    W: futures_util::Sink<Message, Error = tungstenite::Error> + Unpin,
{
    let metrics = &shared.metrics;
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    loop {
        let next = tokio::select! {
            next = outbox.next() => next,
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
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            }
            if batch < MAX_BATCH_BYTES {
                next = outbox.try_next();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
