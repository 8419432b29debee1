//! What other relays send: presence (joins, leaves, full lists), blobs
//! and refusals, turned into [`Remote`] deliveries for the hub.

use std::collections::HashSet;
use std::sync::atomic::Ordering::Relaxed;

use redis::RedisResult;

use super::link::{Conn, Heard};
use super::room_of_channel;
use super::task::Task;
use super::Remote;
use crate::peer::PeerId;
use crate::protocol::{Kind, LeaveReason};

/// Another relay asks the room's relays to list their members.
pub(super) fn is_sync_request(text: &str, me: &str) -> bool {
    let mut parts = text.splitn(4, '\n');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("v1"), Some(relay), Some("R")) if relay != me
    )
}

impl Task {
    pub(super) async fn on_heard(&mut self, conn: &mut Conn, heard: Heard) -> RedisResult<()> {
        match heard {
            Heard::Message { channel, payload } => {
                let room = room_of_channel(&channel).unwrap_or_default().to_string();
                if let Ok(text) = std::str::from_utf8(&payload) {
                    if is_sync_request(text, &self.id) && self.local.contains_key(&room) {
                        self.publish_sync(conn, &room).await?;
                    } else {
                        self.on_envelope(room, text).await;
                    }
                }
            }
            Heard::Dropped { channel } => {
                // Its slot moved (or our own unsubscribe, confirmed): a room
                // we still serve subscribes again, on the slot's new owner.
                if let Some(room) = room_of_channel(&channel) {
                    if self.local.contains_key(room) {
                        self.to_repair.insert(room.to_string(), true);
                    }
                }
            }
            Heard::NodeLost => {
                // The client re-subscribes on the node's new connection by
                // itself; repairing (without holding anything) also covers
                // a master that changed meanwhile.
                for room in self.local.keys() {
                    self.to_repair.entry(room.clone()).or_insert(false);
                }
            }
            Heard::Nothing => {}
        }
        Ok(())
    }

    /// Another relay (back from a Redis outage) lists its members of `room`.
    pub(super) async fn on_sync(&mut self, room: String, relay: &str, body: &str) {
        let listed: HashSet<PeerId> = body.split(',').filter_map(|p| p.parse().ok()).collect();
        let (joined, left) = {
            let mut remote = self.lock_remote();
            let members = remote.entry(room.clone()).or_default();
            let left: Vec<PeerId> = members
                .iter()
                .filter(|(p, r)| r.as_str() == relay && !listed.contains(p))
                .map(|(p, _)| *p)
                .collect();
            for p in &left {
                members.remove(p);
            }
            let joined: Vec<PeerId> = listed
                .into_iter()
                .filter(|p| members.insert(*p, relay.to_string()).is_none())
                .collect();
            (joined, left)
        };
        for peer in joined {
            let _ = self
                .deliver
                .send(Remote::Joined {
                    room: room.clone(),
                    peer,
                })
                .await;
        }
        for peer in left {
            let reason = LeaveReason::Timeout;
            let _ = self
                .deliver
                .send(Remote::Left {
                    room: room.clone(),
                    peer,
                    reason,
                })
                .await;
        }
    }

    pub(super) async fn on_envelope(&mut self, room: String, text: &str) {
        // A room we no longer serve (a subscription that outlived our
        // leaving): nobody here to tell, nothing to remember.
        if !self.local.contains_key(&room) {
            return;
        }
        let mut parts = text.splitn(7, '\n');
        let (Some("v1"), Some(relay), Some(event), Some(peer), Some(to), Some(kind), Some(body)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return;
        };
        if relay == self.id {
            return;
        }
        self.stats.received.fetch_add(1, Relaxed);
        if event == "S" {
            self.on_sync(room, relay, body).await;
            return;
        }
        let Ok(peer) = peer.parse::<PeerId>() else {
            return;
        };
        let remote = match event {
            "J" => {
                let mut r = self.lock_remote();
                let members = r.entry(room.clone()).or_default();
                if members.insert(peer, relay.to_string()).is_some() {
                    return;
                }
                Remote::Joined { room, peer }
            }
            "L" => {
                let mut r = self.lock_remote();
                if r.get_mut(&room).and_then(|m| m.remove(&peer)).is_none() {
                    return;
                }
                let reason = match body {
                    "timeout" => LeaveReason::Timeout,
                    "error" => LeaveReason::Error,
                    _ => LeaveReason::Leave,
                };
                Remote::Left { room, peer, reason }
            }
            "X" => Remote::Refused { room, peer },
            "B" => {
                let kind = Kind::parse(kind).unwrap_or(Kind::Control);
                let to = to.parse::<PeerId>().ok();
                Remote::Blob {
                    room,
                    from: peer,
                    to,
                    kind,
                    json: body.to_string(),
                }
            }
            _ => return,
        };
        // Media may be dropped under pressure; presence and control wait.
        match &remote {
            Remote::Blob {
                kind: Kind::Media | Kind::Audio,
                ..
            } => {
                if self.deliver.try_send(remote).is_err() {
                    self.stats.dropped.fetch_add(1, Relaxed);
                }
            }
            _ => {
                let _ = self.deliver.send(remote).await;
            }
        }
    }
}
