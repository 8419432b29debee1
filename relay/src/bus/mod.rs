//! The Redis pub/sub bus: several relays serve the same rooms.
//!
//! - One channel per room (`sf:room:{<room>}`), subscribed by every relay
//!   with local members in it, so a relay only receives traffic for rooms it
//!   serves. With `--redis-cluster` it is a *sharded* channel
//!   (`SSUBSCRIBE`/`SPUBLISH`): it lives on the shard that owns the room's
//!   slot, and the fleet grows by adding shards.
//! - The roster (`sf:roster:{<room>}`: peer → relay id) is hash-tagged by
//!   room, so in a cluster it sits on the room's shard; a liveness key per
//!   relay (`sf:relay:{<id>}`, with a TTL) sits wherever its own tag hashes:
//!   a crashed relay's key expires and the survivors announce its peers as
//!   left.
//! - Payloads are the exact JSON the relays send their own clients (opaque
//!   base64 blobs): Redis learns nothing a relay doesn't.
//! - Redis down: local delivery goes on (publishes are dropped and counted),
//!   the task reconnects with backoff and re-syncs presence when it returns.
//!   Nothing here ever blocks a connection task.
//! - Presence converges after any outage: each relay is the authority on
//!   its own members. Departures it couldn't publish are replayed when Redis
//!   returns; it then asks the others for their full lists ("R"), answers
//!   such requests with its own ("S"), and repeats its lists every third of
//!   the TTL. A full list *replaces* what a relay knew of that relay in the
//!   room, so a departure missed while not subscribed can't leave a ghost.
//! - In a cluster, a fault is a shard's, not the bus's: a room whose shard
//!   fails holds its control messages and drops its media until the room is
//!   repaired on the shard's new master (re-subscribed, re-registered,
//!   re-synced); rooms on other shards go on untouched (see `task.rs`).
//! - Joins that are refused (room full, too many rooms) leave nothing
//!   behind, and liveness beats on its own task, so a long re-sync can't
//!   make the others think this relay died.

mod inbound;
mod link;
mod repair;
mod shards;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::peer::PeerId;
use crate::protocol::{Kind, LeaveReason};

pub use link::Target;
pub use shards::{slot_of_room, ShardState};

/// What arrives from other relays, for local delivery.
#[derive(Debug)]
pub enum Remote {
    Joined {
        room: String,
        peer: PeerId,
    },
    Left {
        room: String,
        peer: PeerId,
        reason: LeaveReason,
    },
    Blob {
        room: String,
        from: PeerId,
        to: Option<PeerId>,
        kind: Kind,
        json: String,
    },
    /// Control a member of ours sent was refused at another relay: a
    /// receiver there is behind on it. The member is told, as if local.
    Refused {
        room: String,
        peer: PeerId,
    },
}

enum Command {
    EnsureRoom {
        room: String,
        done: oneshot::Sender<()>,
    },
    Joined {
        room: String,
        peer: PeerId,
    },
    Left {
        room: String,
        peer: PeerId,
        reason: LeaveReason,
    },
    Publish {
        room: String,
        envelope: String,
        /// Held and retried in order while the room's shard fails over
        /// (presence, control, chat); media is dropped instead.
        reliable: bool,
    },
    /// A join was refused after `EnsureRoom`: drop the room if nobody of
    /// ours is in it (nothing may be left behind).
    Release {
        room: String,
    },
}

#[derive(Default)]
pub struct BusStats {
    pub connected: AtomicBool,
    pub published: AtomicU64,
    pub received: AtomicU64,
    pub dropped: AtomicU64,
    /// Rooms re-subscribed and re-synced after a fault (cluster mode).
    pub repairs: AtomicU64,
    /// Per shard (cluster mode): its master and whether it answers.
    pub shards: Mutex<Vec<ShardState>>,
}

/// Handle used by the hub. Cheap to call from any thread: commands go to the
/// bus task through a bounded queue (full → dropped and counted).
pub struct Bus {
    id: String,
    commands: mpsc::Sender<Command>,
    /// Remote members per room, as this relay knows them.
    remote: Arc<Mutex<HashMap<String, HashMap<PeerId, String>>>>,
    pub stats: Arc<BusStats>,
}

const COMMAND_QUEUE: usize = 16 * 1024;
const ENSURE_TIMEOUT: Duration = Duration::from_millis(1500);

// Room ids are A-Z a-z 0-9 _ - (the protocol checks), so a room's braces
// are its whole hash tag: its channel and roster share one cluster slot.
fn channel(room: &str) -> String {
    format!("sf:room:{{{room}}}")
}
fn room_of_channel(channel: &str) -> Option<&str> {
    channel.strip_prefix("sf:room:{")?.strip_suffix('}')
}
fn roster(room: &str) -> String {
    format!("sf:roster:{{{room}}}")
}
fn alive(relay: &str) -> String {
    format!("sf:relay:{{{relay}}}")
}

impl Bus {
    /// Starts the bus task; `deliver` receives what other relays send.
    pub fn start(
        target: Target,
        presence_ttl: Duration,
        deliver: mpsc::Sender<Remote>,
    ) -> anyhow::Result<Bus> {
        let client = target.client()?;
        let id = format!("{:016x}", rand::random::<u64>());
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let bus = Bus {
            id: id.clone(),
            commands: tx,
            remote: Arc::default(),
            stats: Arc::default(),
        };
        let task = task::Task::new(
            client,
            id,
            presence_ttl,
            bus.remote.clone(),
            bus.stats.clone(),
            deliver,
        );
        tokio::spawn(task.run(rx));
        Ok(bus)
    }

    fn send(&self, c: Command) {
        if self.commands.try_send(c).is_err() {
            self.stats.dropped.fetch_add(1, Relaxed);
        }
    }

    /// Subscribes to the room and loads its roster (bounded wait: with Redis
    /// down the join goes ahead with local members only).
    pub async fn ensure_room(&self, room: &str) {
        let (done, wait) = oneshot::channel();
        self.send(Command::EnsureRoom {
            room: room.to_string(),
            done,
        });
        let _ = tokio::time::timeout(ENSURE_TIMEOUT, wait).await;
    }

    pub fn remote_peers(&self, room: &str) -> Vec<PeerId> {
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        remote
            .get(room)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    pub fn has_remote(&self, room: &str, peer: PeerId) -> bool {
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        remote.get(room).is_some_and(|m| m.contains_key(&peer))
    }

    fn room_has_remotes(&self, room: &str) -> bool {
        let remote = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        remote.get(room).is_some_and(|m| !m.is_empty())
    }

    /// Undoes [`Bus::ensure_room`] for a join that was refused.
    pub fn release_room(&self, room: &str) {
        self.send(Command::Release {
            room: room.to_string(),
        });
    }

    pub fn joined(&self, room: &str, peer: PeerId) {
        self.send(Command::Joined {
            room: room.to_string(),
            peer,
        });
    }

    pub fn left(&self, room: &str, peer: PeerId, reason: LeaveReason) {
        self.send(Command::Left {
            room: room.to_string(),
            peer,
            reason,
        });
    }

    /// Tells the relay of `from` (a member on another relay) that its
    /// control to one of ours was refused: it is charged like a local
    /// sender, and told to slow down.
    pub fn publish_refusal(&self, room: &str, from: PeerId) {
        let envelope = format!("v1\n{}\nX\n{from}\n-\ncontrol\n", self.id);
        self.send(Command::Publish {
            room: room.to_string(),
            envelope,
            reliable: true,
        });
    }

    /// Publishes a blob (already serialized for clients) to other relays.
    /// Skipped while no other relay has members in the room.
    pub fn publish_blob(
        &self,
        room: &str,
        from: PeerId,
        to: Option<PeerId>,
        kind: Kind,
        json: &str,
    ) {
        if !self.room_has_remotes(room) {
            return;
        }
        let to = to.map(|t| t.to_string()).unwrap_or_else(|| "-".into());
        let envelope = format!(
            "v1\n{}\nB\n{from}\n{to}\n{}\n{json}",
            self.id,
            kind.as_str()
        );
        self.send(Command::Publish {
            room: room.to_string(),
            envelope,
            reliable: !matches!(kind, Kind::Media | Kind::Audio),
        });
    }
}
