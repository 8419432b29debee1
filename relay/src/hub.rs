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
use crate::metrics::Metrics;
use crate::outbox::{Outbox, Pushed};
use crate::peer::PeerId;
use crate::protocol::{ErrorCode, Kind, LeaveReason, Limits, ServerMessage};

pub struct Hub {
    rooms: Mutex<HashMap<Arc<str>, Arc<Room>>>,
    max_rooms: usize,
    limits: Limits,
    metrics: Arc<Metrics>,
    /// Other relays, when running with Redis.
    bus: Option<Bus>,
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
    pub fn new(max_rooms: usize, limits: Limits, metrics: Arc<Metrics>, bus: Option<Bus>) -> Self {
        Hub {
            rooms: Mutex::new(HashMap::new()),
            max_rooms,
            limits,
            metrics,
            bus,
        }
    }

    /// Before [`Hub::join`]: with a bus, subscribe to the room and learn its
    /// members on other relays (bounded wait).
    pub async fn prepare_join(&self, room_id: &str) {
        if let Some(bus) = &self.bus {
            bus.ensure_room(room_id).await;
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
        let room = match rooms.get(room_id) {
            Some(room) => room.clone(),
            None => {
                if rooms.len() >= self.max_rooms {
                    return Err(ErrorCode::TooManyRooms);
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
        let remote = self
            .bus
            .as_ref()
            .map(|b| b.remote_peers(room_id))
            .unwrap_or_default();
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

    /// Queues `message` to every other member; returns how many local
    /// members it reached.
    pub fn broadcast(&self, from: &Member, kind: Kind, message: Utf8Bytes) -> usize {
        if let Some(bus) = &self.bus {
            bus.publish_blob(&from.room.id, from.peer, None, kind, message.as_str());
        }
        let peers = from.room.peers();
        let mut reached = 0;
        for (id, outbox) in peers.iter() {
            if *id != from.peer {
                self.deliver(outbox, kind, from.peer, message.clone());
                reached += 1;
            }
        }
        reached
    }

    /// Queues `message` to one member of the sender's room.
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
                self.deliver(outbox, kind, from.peer, message);
                Ok(())
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
            Remote::Joined { room, .. } | Remote::Left { room, .. } | Remote::Blob { room, .. } => {
                room.clone()
            }
        };
        let Some(room) = self.rooms().get(room_id.as_str()).cloned() else {
            return;
        };
        let peers = room.peers();
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
            } => (from, kind, json, to),
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

    fn deliver(&self, outbox: &Outbox, kind: Kind, from: PeerId, message: Utf8Bytes) {
        if outbox.push(kind, from, message) == Pushed::Overflow {
            self.metrics.disconnects_slow.fetch_add(1, Relaxed);
        }
    }
}
