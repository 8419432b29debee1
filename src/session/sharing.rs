//! Shared terminals in the session: ours (a [`LiveShare`] that outlives
//! reconnects) and the copies we hold of others' ([`ShareView`], per
//! connection, in the driver).

use std::sync::Arc;
use std::time::Instant;

use super::driver::Driver;
use super::{Session, SessionEvent};
use crate::crypto::frame::Stream;
use crate::media::capture;
use crate::room::Room;
use crate::share::live::LiveShare;
use crate::share::screen::{ShareError, ShareScreen};
use crate::share::ShareMessage;

/// What a user asks of shares.
#[derive(Debug)]
pub enum ShareCommand {
    /// Share a new terminal running `command` at `cols`×`rows`.
    Start {
        command: String,
        cols: u16,
        rows: u16,
    },
    Stop,
    /// Let `peer` type in our share (one member at a time).
    Grant(String),
    Revoke,
    /// Keys for a share: ours (`to: None`) or the one whose sharer let us
    /// type (sent only if it did).
    Keys {
        to: Option<String>,
        keys: Vec<u8>,
    },
    Resize {
        cols: u16,
        rows: u16,
    },
}

/// Work for our own share that the driver found in the room's events.
#[derive(Debug)]
pub(super) enum ShareInbox {
    Keys { from: String, keys: Vec<u8> },
    SnapshotWanted,
    PeerLeft(String),
}

/// Who we are in events about our own share, before the relay named us.
const ME: &str = "me";

impl Driver {
    /// A `Stream::Share` frame from `from`.
    pub(super) async fn on_share_frame(&mut self, from: &str, payload: &[u8]) {
        let Ok(message) = ShareMessage::decode(payload) else {
            self.share_failures += 1;
            return;
        };
        match message {
            ShareMessage::Update(update) => {
                let view = self.shares.entry(from.to_string()).or_default();
                match view.apply(&update, Instant::now()) {
                    Ok(changed) => {
                        let first = !view.started;
                        view.started = true;
                        let (screen, _) = view.screen.as_ref().expect("just applied");
                        let screen = Arc::new(screen.clone());
                        if first || changed {
                            self.emit_share_screen(from, screen, first).await;
                        }
                    }
                    Err(ShareError::NeedSnapshot) => {
                        if !view.asked {
                            view.asked = true;
                            self.share_requests.push(from.to_string());
                        }
                    }
                    Err(ShareError::Malformed | ShareError::OverBudget) => self.share_failures += 1,
                }
            }
            ShareMessage::Control(to) => {
                // Only about a share we have seen: a member that shares
                // nothing has nobody to let type.
                let Some(view) = self.shares.get_mut(from).filter(|v| v.started) else {
                    return;
                };
                if view.controller != to {
                    view.controller = to.clone();
                    let _ = self
                        .events
                        .send(SessionEvent::ShareControl {
                            from: from.to_string(),
                            to,
                        })
                        .await;
                }
            }
            ShareMessage::Stopped(reason) => {
                if self.shares.remove(from).is_some() {
                    let _ = self
                        .events
                        .send(SessionEvent::ShareStopped {
                            from: from.to_string(),
                            reason,
                        })
                        .await;
                }
            }
            ShareMessage::NeedSnapshot(sharer) => {
                if self.me.as_deref() == Some(sharer.as_str()) {
                    self.share_inbox.push(ShareInbox::SnapshotWanted);
                }
            }
        }
    }

    async fn emit_share_screen(&self, from: &str, screen: Arc<ShareScreen>, first: bool) {
        if first {
            let _ = self
                .events
                .send(SessionEvent::ShareStarted {
                    from: from.to_string(),
                    cols: screen.cols,
                    rows: screen.rows,
                })
                .await;
        }
        let _ = self
            .events
            .send(SessionEvent::ShareScreen {
                from: from.to_string(),
                screen,
            })
            .await;
    }

    /// A member left: its share goes, and it may no longer type in ours.
    pub(super) async fn share_peer_left(&mut self, peer: &str) {
        self.share_inbox
            .push(ShareInbox::PeerLeft(peer.to_string()));
        if self.shares.remove(peer).is_some() {
            let _ = self
                .events
                .send(SessionEvent::ShareStopped {
                    from: peer.to_string(),
                    reason: "left the call".into(),
                })
                .await;
        }
    }

    /// Asks sharers we are out of step with for a snapshot.
    pub(super) async fn send_share_requests(&mut self, room: &mut Room) {
        for sharer in std::mem::take(&mut self.share_requests) {
            broadcast(ShareMessage::NeedSnapshot(sharer), room, self).await;
        }
    }

    /// May we type in `sharer`'s share? Only when it said so.
    pub(super) fn may_type_in(&self, sharer: &str) -> bool {
        let me = self.me.as_deref();
        me.is_some()
            && self
                .shares
                .get(sharer)
                .and_then(|v| v.controller.as_deref())
                == me
    }

    fn me_or_placeholder(&self) -> String {
        self.me.clone().unwrap_or_else(|| ME.into())
    }
}

impl Session {
    /// A share command while connected.
    pub(super) async fn on_share_command(
        &mut self,
        command: ShareCommand,
        room: &mut Room,
        driver: &mut Driver,
    ) {
        match command {
            ShareCommand::Start {
                command,
                cols,
                rows,
            } => {
                if self.share.is_some() {
                    self.emit(SessionEvent::Warning(
                        "you are sharing a terminal already (one share per member)".into(),
                    ))
                    .await;
                    return;
                }
                match LiveShare::start(&command, cols, rows) {
                    Ok(live) => {
                        let (cols, rows) = live.sender.size();
                        self.share = Some(live);
                        self.emit(SessionEvent::ShareStarted {
                            from: driver.me_or_placeholder(),
                            cols,
                            rows,
                        })
                        .await;
                    }
                    Err(e) => {
                        self.emit(SessionEvent::Warning(format!(
                            "could not share a terminal running {command:?}: {e}"
                        )))
                        .await;
                    }
                }
            }
            ShareCommand::Stop => {
                if self.share.take().is_some() {
                    self.share_stopped("stopped by its sharer", room, driver)
                        .await;
                }
            }
            ShareCommand::Grant(peer) => {
                let Some(live) = &mut self.share else {
                    self.emit(SessionEvent::Warning(
                        "nothing to grant: you are not sharing a terminal".into(),
                    ))
                    .await;
                    return;
                };
                if !room.verified_peers().contains(&peer) {
                    self.emit(SessionEvent::Warning(format!(
                        "{peer} is not a verified member of this call"
                    )))
                    .await;
                    return;
                }
                live.controller = Some(peer.clone());
                self.send_control(Some(peer), room, driver).await;
            }
            ShareCommand::Revoke => {
                if let Some(live) = &mut self.share {
                    live.controller = None;
                    self.send_control(None, room, driver).await;
                }
            }
            ShareCommand::Keys { to, keys } => match to {
                None => match &self.share {
                    Some(live) => live.type_keys(&keys),
                    None => {
                        self.emit(SessionEvent::Warning(
                            "no share to type in: you are not sharing, and nobody let you type"
                                .into(),
                        ))
                        .await
                    }
                },
                Some(sharer) => {
                    // Keys leave this machine only for a sharer that let
                    // us type.
                    if driver.may_type_in(&sharer) {
                        for chunk in keys.chunks(crate::share::live::MAX_KEYS) {
                            match room.send_share_keys(&sharer, chunk, Instant::now()) {
                                Some(out) => driver.apply(room, vec![out]).await,
                                None => {
                                    self.emit(SessionEvent::Warning(format!(
                                        "your keys didn't go: {sharer} has left, or isn't \
                                         verified and you joined with --only-known"
                                    )))
                                    .await;
                                    break;
                                }
                            }
                        }
                    } else {
                        self.emit(SessionEvent::Warning(format!(
                            "{sharer} has not let you type in its terminal"
                        )))
                        .await;
                    }
                }
            },
            ShareCommand::Resize { cols, rows } => {
                if let Some(live) = &mut self.share {
                    live.resize(cols, rows);
                }
            }
        }
    }

    async fn send_control(&self, to: Option<String>, room: &mut Room, driver: &mut Driver) {
        broadcast(ShareMessage::Control(to.clone()), room, driver).await;
        self.emit(SessionEvent::ShareControl {
            from: driver.me_or_placeholder(),
            to,
        })
        .await;
    }

    async fn share_stopped(&self, reason: &str, room: &mut Room, driver: &mut Driver) {
        broadcast(ShareMessage::Stopped(reason.into()), room, driver).await;
        self.emit(SessionEvent::ShareStopped {
            from: driver.me_or_placeholder(),
            reason: reason.into(),
        })
        .await;
    }

    /// The program wrote `bytes` (None: it exited).
    pub(super) async fn on_share_output(
        &mut self,
        bytes: Option<Vec<u8>>,
        room: &mut Room,
        driver: &mut Driver,
    ) {
        match bytes {
            Some(b) => {
                if let Some(live) = &mut self.share {
                    live.sender.feed(&b);
                }
            }
            None => {
                if self.share.take().is_some() {
                    self.share_stopped("the program exited", room, driver).await;
                }
            }
        }
    }

    /// After every event: keys and requests for our share, and the next
    /// screen update if one is due.
    pub(super) async fn service_share(&mut self, room: &mut Room, driver: &mut Driver) {
        driver.send_share_requests(room).await;
        let inbox = std::mem::take(&mut driver.share_inbox);
        let Some(live) = &mut self.share else {
            return;
        };
        let mut revoked = false;
        for item in inbox {
            match item {
                ShareInbox::Keys { from, keys } => {
                    if live.may_type(&from) {
                        live.type_keys(&keys);
                    } else {
                        // Not granted (or no longer): refused, and counted.
                        driver.share_failures += 1;
                    }
                }
                ShareInbox::SnapshotWanted => live.sender.want_snapshot(),
                ShareInbox::PeerLeft(peer) => {
                    if live.may_type(&peer) {
                        live.controller = None;
                        revoked = true;
                    }
                }
            }
        }
        let now = Instant::now();
        if let Some(update) = live.poll(now) {
            let screen = Arc::new(live.sender.screen());
            let snapshot = ShareScreen::peek(&update).is_ok_and(|h| h.snapshot);
            let controller = live.controller.clone();
            broadcast(ShareMessage::Update(update), room, driver).await;
            // Whoever takes a snapshot (a joiner) learns who may type too.
            if snapshot && controller.is_some() {
                broadcast(ShareMessage::Control(controller), room, driver).await;
            }
            self.emit(SessionEvent::ShareScreen {
                from: driver.me_or_placeholder(),
                screen,
            })
            .await;
        }
        if revoked {
            self.send_control(None, room, driver).await;
        }
    }

    /// When our share next wants servicing (a tokio instant), if we share.
    pub(super) fn share_due(&self) -> Option<tokio::time::Instant> {
        let live = self.share.as_ref()?;
        let now = Instant::now();
        let at = live.sender.next_poll(now);
        Some(tokio::time::Instant::now() + at.saturating_duration_since(now))
    }
}

/// Seals `message` in our share stream for every member and sends it.
async fn broadcast(message: ShareMessage, room: &mut Room, driver: &mut Driver) {
    let sealed = room.seal(
        Stream::Share,
        0,
        &message.encode(),
        capture::now_us(),
        Instant::now(),
    );
    if let Some(out) = sealed {
        driver.apply(room, vec![out]).await;
    }
}

/// The next output of our shared program; never, without a share.
pub(super) async fn next_output(share: &mut Option<LiveShare>) -> Option<Vec<u8>> {
    match share {
        Some(live) => live.output.recv().await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`; never, without one.
pub(super) async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
