//! Rooms and fan-out: the one seam between connections and delivery.
//!
//! Connection tasks only call [`Hub::join`], [`Hub::leave`], [`Hub::broadcast`]
//! and [`Hub::send_to`]; how a message reaches the other members (today local
//! outboxes, later also a Redis pub/sub bus for other relays) stays behind it.
//!
//! Every outgoing message is serialized once by the caller and shared by all
//! receivers as a reference-counted [`Utf8Bytes`].

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::bus::{Bus, Remote};
use crate::memory::Budget;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Pushed};
use crate::peer::PeerId;
use crate::protocol::{ErrorCode, Kind, LeaveReason, Limits, ServerMessage};

pub struct Hub {
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    max_rooms: usize,
    limits: Limits,
    /// Control bytes one member may have queued at another.
    control_share: usize,
    metrics: Arc<Metrics>,
    /// Other relays, when running with Redis.
    bus: Option<Bus>,
    /// Told when queues grow, so it can shed at once when over its limit.
    budget: Arc<Budget>,
    /// When each remote sender's control was last refused here.
    last_refusal: Mutex<HashMap<PeerId, std::time::Instant>>,
}

struct Room {
    id: Arc<str>,
    peers: RwLock<HashMap<PeerId, Arc<Outbox>>>,
}

/// Proof of membership, returned by [`Hub::join`] and given back to [`Hub::leave`].
pub struct Member {
    room: Arc<Room>,
    peer: PeerId,
}

impl Member {
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    pub fn room_id(&self) -> &str {
        &self.room.id
    }
}

impl Room {
    fn peers(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PeerId, Arc<Outbox>>> {
        self.peers.read().unwrap_or_else(|e| e.into_inner())
    }

    fn peers_mut(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PeerId, Arc<Outbox>>> {
        self.peers.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Hub {
    pub fn new(
        max_rooms: usize,
        limits: Limits,
        control_share: usize,
        metrics: Arc<Metrics>,
        bus: Option<Bus>,
        budget: Arc<Budget>,
    ) -> Self {
        Hub {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            limits,
            control_share,
            metrics,
            bus,
            budget,
            last_refusal: Mutex::new(HashMap::new()),
        }
    }

    /// Before [`Hub::join`]: refuses at once what can't succeed (a new room
    /// past `--max-rooms`), then, with a bus, subscribes to the room and
    /// learns its members on other relays (bounded wait). A join refused
    /// after this must call [`Hub::abandon_join`].
    pub async fn prepare_join(&self, room_id: &str) -> Result<(), ErrorCode> {
        {
            let rooms = self.rooms();
            if !rooms.contains_key(room_id) && rooms.len() >= self.max_rooms {
                return Err(ErrorCode::TooManyRooms);
            }
        }
        if let Some(bus) = &self.bus {
            bus.ensure_room(room_id).await;
        }
        Ok(())
    }

    /// A join refused after [`Hub::prepare_join`]: leaves nothing behind.
    pub fn abandon_join(&self, room_id: &str) {
        if let Some(bus) = &self.bus {
            if !self.rooms().contains_key(room_id) {
                bus.release_room(room_id);
            }
        }
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<Arc<str>, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `peer` to `room_id`: queues `welcome` (with the current members) to
    /// the joiner and `peer_joined` to the others, atomically with respect to
    /// other joins and leaves so every member sees one consistent order.
    pub fn join(
        &self,
        room_id: &str,
        peer: PeerId,
        outbox: Arc<Outbox>,
    ) -> Result<Member, ErrorCode> {
        let mut rooms = self.rooms();
        let remote = self
            .bus
            .as_ref()
            .map(|b| b.remote_peers(room_id))
            .unwrap_or_default();
        // Capacity first: a refused join creates nothing.
        let room = match rooms.get(room_id) {
            Some(room) => room.clone(),
            None => {
                if rooms.len() >= self.max_rooms {
                    return Err(ErrorCode::TooManyRooms);
                }
                if remote.len() >= self.limits.max_peers_per_room {
                    return Err(ErrorCode::RoomFull);
                }
                let id: Arc<str> = Arc::from(room_id);
                let room = Arc::new(Room {
                    id: id.clone(),
                    peers: RwLock::new(HashMap::new()),
                });
                rooms.insert(id, room.clone());
                self.metrics.rooms.fetch_add(1, Relaxed);
                room
            }
        };
        let mut peers = room.peers_mut();
        if peers.len() + remote.len() >= self.limits.max_peers_per_room {
            return Err(ErrorCode::RoomFull);
        }
        let others: Vec<String> = peers
            .keys()
            .chain(remote.iter())
            .map(|p| p.to_string())
            .collect();
        let welcome = ServerMessage::Welcome {
            you: peer.to_string().into(),
            peers: others.into_iter().map(Into::into).collect(),
            limits: self.limits,
            features: crate::protocol::FEATURES
                .iter()
                .map(|f| (*f).into())
                .collect(),
        };
        outbox.push(Kind::Control, peer, welcome.to_json().into());
        let joined = Utf8Bytes::from(
            ServerMessage::PeerJoined {
                peer: peer.to_string().into(),
            }
            .to_json(),
        );
        for other in peers.values() {
            self.deliver(other, Kind::Control, peer, joined.clone());
        }
        peers.insert(peer, outbox);
        self.metrics.peers.fetch_add(1, Relaxed);
        drop(peers);
        if let Some(bus) = &self.bus {
            bus.joined(room_id, peer);
        }
        Ok(Member { room, peer })
    }

    /// Removes the member and announces `peer_left` to the rest of the room.
    pub fn leave(&self, member: Member, reason: LeaveReason) {
        let mut rooms = self.rooms();
        let mut peers = member.room.peers_mut();
        if peers.remove(&member.peer).is_none() {
            return;
        }
        self.metrics.peers.fetch_sub(1, Relaxed);
        if let Some(bus) = &self.bus {
            bus.left(&member.room.id, member.peer, reason);
        }
        if peers.is_empty() {
            rooms.remove(&member.room.id);
            self.metrics.rooms.fetch_sub(1, Relaxed);
            return;
        }
        drop(rooms);
        let left = Utf8Bytes::from(
            ServerMessage::PeerLeft {
                peer: member.peer.to_string().into(),
                reason,
            }
            .to_json(),
        );
        for other in peers.values() {
            self.deliver(other, Kind::Control, member.peer, left.clone());
        }
    }

    /// Queues `message` to every other member; returns how many receivers
    /// refused it for being behind on this sender's control messages.
    pub fn broadcast(&self, from: &Member, kind: Kind, message: Utf8Bytes) -> usize {
        if let Some(bus) = &self.bus {
            bus.publish_blob(&from.room.id, from.peer, None, kind, message.as_str());
        }
        let peers = from.room.peers();
        let mut refused = 0;
        for (id, outbox) in peers.iter() {
            if *id != from.peer
                && !self.deliver_from_member(outbox, kind, from.peer, message.clone())
            {
                refused += 1;
            }
        }
        refused
    }

    /// A member's message to a local receiver: control is charged to the
    /// sender. False when refused for that.
    fn deliver_from_member(
        &self,
        outbox: &Outbox,
        kind: Kind,
        from: PeerId,
        message: Utf8Bytes,
    ) -> bool {
        if kind != Kind::Control {
            self.deliver(outbox, kind, from, message);
            return true;
        }
        let pushed = outbox.push_member_control(from, message, self.control_share);
        self.budget.note_growth();
        match pushed {
            Pushed::SenderOverShare => {
                self.metrics.control_refused.fetch_add(1, Relaxed);
                false
            }
            Pushed::Overflow => {
                self.metrics.disconnects_slow.fetch_add(1, Relaxed);
                true
            }
            _ => true,
        }
    }

    /// Queues `message` to one member of the sender's room. `RateLimited`
    /// when that member is behind on this sender's control messages.
    pub fn send_to(
        &self,
        from: &Member,
        to: PeerId,
        kind: Kind,
        message: Utf8Bytes,
    ) -> Result<(), ErrorCode> {
        let peers = from.room.peers();
        match peers.get(&to) {
            Some(outbox) if to != from.peer => {
                if self.deliver_from_member(outbox, kind, from.peer, message) {
                    Ok(())
                } else {
                    Err(ErrorCode::RateLimited)
                }
            }
            Some(_) => Err(ErrorCode::UnknownPeer),
            None => match &self.bus {
                Some(bus) if bus.has_remote(&from.room.id, to) => {
                    bus.publish_blob(&from.room.id, from.peer, Some(to), kind, message.as_str());
                    Ok(())
                }
                _ => Err(ErrorCode::UnknownPeer),
            },
        }
    }

    /// Delivers what another relay sent to this relay's members of the room.
    pub fn deliver_remote(&self, event: Remote) {
        let room_id = match &event {
            Remote::Joined { room, .. }
            | Remote::Left { room, .. }
            | Remote::Blob { room, .. }
            | Remote::Refused { room, .. } => room.clone(),
        };
        let Some(room) = self.rooms().get(room_id.as_str()).cloned() else {
            return;
        };
        let peers = room.peers();
        if let Remote::Refused { peer, .. } = &event {
            if let Some(outbox) = peers.get(peer) {
                self.tell_behind(*peer, outbox);
            }
            return;
        }
        let (from, kind, message, to) = match event {
            Remote::Joined { peer, .. } => (
                peer,
                Kind::Control,
                ServerMessage::PeerJoined {
                    peer: peer.to_string().into(),
                }
                .to_json(),
                None,
            ),
            Remote::Left { peer, reason, .. } => (
                peer,
                Kind::Control,
                ServerMessage::PeerLeft {
                    peer: peer.to_string().into(),
                    reason,
                }
                .to_json(),
                None,
            ),
            Remote::Blob {
                from,
                to,
                kind,
                json,
                ..
            } => {
                // A member's blob: control is charged to its sender, on
                // whichever relay it is.
                let message = Utf8Bytes::from(json);
                let targets: Vec<&Arc<Outbox>> = match to {
                    Some(to) => peers.get(&to).into_iter().collect(),
                    None => peers.values().collect(),
                };
                let mut refused = false;
                for outbox in targets {
                    refused |= !self.deliver_from_member(outbox, kind, from, message.clone());
                }
                if refused {
                    if let Some(bus) = &self.bus {
                        if self.refusal_due(from) {
                            bus.publish_refusal(&room_id, from);
                        }
                    }
                }
                return;
            }
            Remote::Refused { .. } => return,
        };
        let message = Utf8Bytes::from(message);
        match to {
            Some(to) => {
                if let Some(outbox) = peers.get(&to) {
                    self.deliver(outbox, kind, from, message);
                }
            }
            None => {
                for outbox in peers.values() {
                    self.deliver(outbox, kind, from, message.clone());
                }
            }
        }
    }

    /// Refusals of a remote sender's control are reported to its relay at
    /// most once a second (a flood of them is one fact).
    fn refusal_due(&self, from: PeerId) -> bool {
        let now = std::time::Instant::now();
        let mut last = self.last_refusal.lock().unwrap_or_else(|e| e.into_inner());
        if last.len() > 4096 {
            last.retain(|_, at| now.duration_since(*at) < std::time::Duration::from_secs(1));
        }
        match last.get(&from) {
            Some(at) if now.duration_since(*at) < std::time::Duration::from_secs(1) => false,
            _ => {
                last.insert(from, now);
                true
            }
        }
    }

    /// Our member's control was refused at another relay (a receiver there
    /// is behind on it): the same `rate_limited` a local refusal gets.
    fn tell_behind(&self, peer: PeerId, outbox: &Outbox) {
        self.metrics.error(ErrorCode::RateLimited);
        let json = ServerMessage::error(
            ErrorCode::RateLimited,
            "a receiver is behind on your control messages: they are being dropped; slow down",
        )
        .to_json();
        self.deliver(outbox, Kind::Control, peer, json.into());
    }

    fn deliver(&self, outbox: &Outbox, kind: Kind, from: PeerId, message: Utf8Bytes) {
        if outbox.push(kind, from, message) == Pushed::Overflow {
            self.metrics.disconnects_slow.fetch_add(1, Relaxed);
        }
        self.budget.note_growth();
    }
}
