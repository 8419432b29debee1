//! One connected call: the event loop that feeds the room state machine
//! from the link, the capture thread, the clock and the user.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::driver::Driver;
use super::{exit, state, video, CallEnd, Ended, Session, SessionCommand, SessionEvent};
use super::{LEFT, VIEW_REFRESH, WRONG_PASSPHRASE};
use crate::crypto::frame::Stream;
use crate::media::adapt::Adapter;
use crate::media::capture::{self, CaptureEvent};
use crate::net::link::{Link, LinkEvent};
use crate::room::Room;

/// Alone in a room this long: the invite's room part may be mistyped.
const ALONE_NOTICE: Duration = Duration::from_secs(30);

impl Session {
    /// One connected call: a fresh room state (new X25519 key, new sender
    /// key, new handshakes) on every connection.
    pub(super) async fn call(
        &mut self,
        relay_url: String,
        link: Link,
        link_events: mpsc::Receiver<LinkEvent>,
        welcome: LinkEvent,
    ) -> CallEnd {
        self.lost_at = None;
        self.emit(SessionEvent::Connected {
            relay: relay_url,
            stats: link.stats.clone(),
        })
        .await;
        let now = Instant::now();
        let mut room = Room::new(
            self.config.invite.room(),
            self.psk.clone(),
            &self.config.name,
            self.config.timings,
            Box::new(rand_core::OsRng),
            self.signing.clone(),
            now,
        )
        .with_guard(std::mem::take(&mut self.guard))
        .with_identity(self.identity.clone())
        .with_allowed(self.allowed_identities());
        if let Some(live) = &mut self.share {
            // New connection, new peer ids: nobody may type until granted
            // again, and everyone gets the whole screen.
            live.controller = None;
            live.sender.want_snapshot();
        }
        let mut driver = Driver::new(
            link,
            self.events.clone(),
            self.control.clone(),
            self.config.view,
            Adapter::new(self.config.adapt, now),
            self.config.fps,
            self.audio.as_ref().map(|a| a.handle()),
        );
        driver.trust = self.trust.clone();
        // A new connection starts at the top level again.
        let top = driver.adapter.current();
        self.control
            .quality
            .store(u32::from(top.quality), std::sync::atomic::Ordering::Relaxed);
        self.control.fps.store(
            top.fps.min(self.config.fps),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let LinkEvent::Welcome {
            you,
            peers,
            max_peers,
            ..
        } = welcome
        {
            let out = room.on_welcome(&you, &peers, max_peers, now);
            driver.apply(&mut room, out).await;
        }
        let end = self.call_loop(&mut room, &mut driver, link_events).await;
        // The guessing throttle outlives the connection: a relay that drops
        // us gets no fresh allowance of guesses.
        self.guard = room.take_guard();
        end
    }

    /// The event loop of one connected call.
    async fn call_loop(
        &mut self,
        room: &mut Room,
        driver: &mut Driver,
        mut link_events: mpsc::Receiver<LinkEvent>,
    ) -> CallEnd {
        let lost = |reason: String| CallEnd::Lost(reason);
        let ended = |code: u8, message: String| CallEnd::Ended(Ended { code, message });
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_view_sent = Instant::now() - VIEW_REFRESH;
        let mut last_second = Instant::now();
        // Alone in the room since: after a while, say the room name may be
        // wrong (a mistyped first part of the invite is a room of its own).
        let mut alone_since = Some(Instant::now());
        loop {
            if let Some(e) = driver.ended.take() {
                return CallEnd::Ended(e);
            }
            self.settle_chat(room, driver).await;
            self.service_share(room, driver).await;
            let share_due = self.share_due();
            tokio::select! {
                bytes = super::sharing::next_output(&mut self.share) => {
                    self.on_share_output(bytes, room, driver).await;
                }
                _ = super::sharing::sleep_until(share_due) => {}
                ev = link_events.recv() => {
                    let now = Instant::now();
                    let Some(ev) = ev else { return lost("relay connection lost".into()) };
                    let out = match ev {
                        LinkEvent::Welcome { .. } => vec![],
                        LinkEvent::PeerJoined(p) => {
                            // Tell the newcomer our tile size soon.
                            last_view_sent = Instant::now() - VIEW_REFRESH + Duration::from_millis(500);
                            room.on_peer_joined(&p, now)
                        }
                        LinkEvent::PeerLeft(p, reason) => {
                            if reason == streamflow_relay::protocol::LeaveReason::Leave {
                                self.recent.left_by_choice(&p);
                            }
                            room.on_peer_left(&p, reason, now)
                        }
                        LinkEvent::Blob { from, data } => room.on_blob(&from, &data, now, capture::now_us()),
                        // A message to someone who just left: an expected
                        // race, not news.
                        LinkEvent::RelayError { code, .. } if code == "unknown_peer" => vec![],
                        LinkEvent::RelayError { code, message } => {
                            self.emit(SessionEvent::Warning(format!("relay: {code}: {message}"))).await;
                            vec![]
                        }
                        LinkEvent::Rtt(rtt) => {
                            self.emit(SessionEvent::Rtt(rtt)).await;
                            vec![]
                        }
                        LinkEvent::VideoPaused(paused) => {
                            self.emit(SessionEvent::VideoPaused { incoming: true, paused }).await;
                            vec![]
                        }
                        LinkEvent::Closed(reason) => return lost(reason),
                        LinkEvent::CallEnded(reason) => {
                            let message = if reason.is_empty() { "the call was ended".to_string() } else { reason };
                            self.emit(SessionEvent::CallEnded(message.clone())).await;
                            return ended(exit::OK, message);
                        }
                    };
                    driver.apply(room, out).await;
                }
                cap = self.capture_rx.recv(), if self.capturing => match cap {
                    Some(CaptureEvent::Frame(frame)) => {
                        let payload = video::encode(self.video_seq, &frame.jpeg);
                        let flags = if frame.tables_stripped { video::FLAG_STANDARD_TABLES } else { 0 };
                        if let Some(out) = room.seal(Stream::Video, flags, &payload, frame.timestamp_us, Instant::now()) {
                            self.video_seq = self.video_seq.wrapping_add(1);
                            driver.apply(room, vec![out]).await;
                        }
                    }
                    Some(CaptureEvent::Failed(msg)) => {
                        self.capturing = false;
                        self.emit(SessionEvent::Warning(format!("video stopped: {msg}"))).await;
                    }
                    None => self.capturing = false,
                },
                packet = super::next_audio(&mut self.audio_rx) => {
                    if let Some(p) = packet {
                        if let Some(out) = room.seal(Stream::Audio, p.flags, &p.payload, p.timestamp_us, Instant::now()) {
                            driver.apply(room, vec![out]).await;
                        }
                    }
                }
                cmd = self.commands.recv() => {
                    let now = Instant::now();
                    match cmd {
                        Some(SessionCommand::Chat(text)) => {
                            match room.send_chat(&text, capture::now_us(), now) {
                                Some(out) => driver.apply(room, vec![out]).await,
                                None => {
                                    self.emit(SessionEvent::ChatUndelivered {
                                        text,
                                        reason: "nobody else is in the call yet",
                                    })
                                    .await;
                                }
                            }
                        }
                        Some(SessionCommand::Camera(on)) => {
                            self.control.enabled.store(on, std::sync::atomic::Ordering::Relaxed);
                            if let Some(out) = room.seal(Stream::State, 0, &state::camera(self.camera_state()), capture::now_us(), now) {
                                driver.apply(room, vec![out]).await;
                            }
                        }
                        Some(SessionCommand::Mute(muted)) => self.set_muted(muted),
                        Some(SessionCommand::Verify { words }) => self.verify_members(words, room, driver).await,
                        Some(SessionCommand::Share(c)) => self.on_share_command(c, room, driver).await,
                        Some(SessionCommand::View(w, h)) => {
                            if (w, h) != self.my_view {
                                self.my_view = (w, h);
                                last_view_sent = Instant::now() - VIEW_REFRESH;
                            }
                        }
                        Some(SessionCommand::Leave) | None => {
                            driver.link.leave().await;
                            // Let the writer flush the leave.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            // Refused, and nobody confirmed by now: that is
                            // the verdict, however short the call was.
                            if room.refused_and_unconfirmed() {
                                return ended(exit::WRONG_PASSPHRASE, WRONG_PASSPHRASE.into());
                            }
                            return ended(exit::OK, LEFT.into());
                        }
                    }
                }
                _ = tick.tick() => {
                    let now = Instant::now();
                    let out = room.tick(now, capture::now_us());
                    driver.apply(room, out).await;
                    driver.audio_events().await;
                    if now.duration_since(last_second) >= Duration::from_secs(1) {
                        last_second = now;
                        driver.every_second(room, now).await;
                        match alone_since {
                            _ if room.has_peers() => alone_since = None,
                            Some(t) if now.duration_since(t) >= ALONE_NOTICE => {
                                alone_since = None;
                                let shown: String = self.config.invite.room().chars().take(6).collect();
                                self.emit(SessionEvent::Status(format!(
                                    "nobody else has joined room {shown}… yet: if they should be here, check the invite's first part (the room) with them"
                                )))
                                .await;
                            }
                            _ => {}
                        }
                    }
                    if now.duration_since(last_view_sent) >= VIEW_REFRESH {
                        last_view_sent = now;
                        let (w, h) = self.my_view;
                        // What size we show others at, and whether we send
                        // video at all (so a view-only member doesn't look
                        // broken to the others).
                        for message in [state::view(w, h), state::camera(self.camera_state())] {
                            if let Some(out) = room.seal(Stream::State, 0, &message, capture::now_us(), now) {
                                driver.apply(room, vec![out]).await;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Chat bookkeeping after each event: remembers who is verified (the
    /// members a line typed offline will be owed to), and hands the lines
    /// owed from before a reconnect to those members, once each, sealed
    /// pairwise.
    async fn settle_chat(&mut self, room: &mut Room, driver: &mut Driver) {
        let now = Instant::now();
        let verified = room.verified_signers();
        self.recent.saw(&verified, now);
        if self.chat.is_empty() {
            return;
        }
        let before = self.chat.len();
        for (signer, peer) in verified {
            for line in self.chat.take_for(&signer) {
                if let Some(out) = room.send_private_chat(&peer, &line, now) {
                    driver.apply(room, vec![out]).await;
                }
            }
        }
        let given_up = self.chat.expire(now);
        if given_up > 0 {
            self.emit(SessionEvent::Warning(format!(
                "chat typed offline was not delivered to {given_up} member(s) who didn't come back"
            )))
            .await;
        }
        if self.chat.len() != before {
            self.emit(SessionEvent::ChatPending(self.chat.len())).await;
        }
    }
}
