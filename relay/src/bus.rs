//! The Redis pub/sub bus: several relays serve the same rooms.
//!
//! - One channel per room (`sf:room:<room>`), subscribed by every relay with
//!   local members in it. Rooms are independent, so per-room channels spread
//!   naturally over a Redis Cluster's shards and a relay only receives
//!   traffic for rooms it serves.
//! - The roster (`sf:roster:<room>`: peer → relay id) and a liveness key per
//!   relay (`sf:relay:<id>`, with a TTL) live in Redis: a crashed relay's
//!   key expires and the survivors announce its peers as left.
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
//! - Joins that are refused (room full, too many rooms) leave nothing
//!   behind, and liveness beats on its own task, so a long re-sync can't
//!   make the others think this relay died.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::peer::PeerId;
use crate::protocol::{Kind, LeaveReason};

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

fn channel(room: &str) -> String {
    format!("sf:room:{room}")
}
fn roster(room: &str) -> String {
    format!("sf:roster:{room}")
}
fn alive(relay: &str) -> String {
    format!("sf:relay:{relay}")
}

impl Bus {
    /// Starts the bus task; `deliver` receives what other relays send.
    pub fn start(
        url: &str,
        presence_ttl: Duration,
        deliver: mpsc::Sender<Remote>,
    ) -> anyhow::Result<Bus> {
        let client = redis::Client::open(url)
            .map_err(|e| anyhow::anyhow!("bad --redis URL {url:?}: {e}"))?;
        let id = format!("{:016x}", rand::random::<u64>());
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let bus = Bus {
            id: id.clone(),
            commands: tx,
            remote: Arc::default(),
            stats: Arc::default(),
        };
        let task = Task {
            client,
            id,
            ttl: presence_ttl,
            remote: bus.remote.clone(),
            stats: bus.stats.clone(),
            deliver,
            local: HashMap::new(),
            missing_since: HashMap::new(),
            unpublished: Vec::new(),
        };
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
        });
    }
}

struct Task {
    client: redis::Client,
    id: String,
    ttl: Duration,
    remote: Arc<Mutex<HashMap<String, HashMap<PeerId, String>>>>,
    stats: Arc<BusStats>,
    deliver: mpsc::Sender<Remote>,
    /// Our own members, to re-register after a Redis outage.
    local: HashMap<String, HashSet<PeerId>>,
    /// Remote relays whose liveness key we found missing, and since when.
    missing_since: HashMap<String, tokio::time::Instant>,
    /// Departures that happened while Redis was away: published (and
    /// removed from the roster) when it is back, even for rooms we no
    /// longer have members in, so no relay keeps them as ghosts.
    unpublished: Vec<(String, PeerId, LeaveReason)>,
}

/// Departures remembered while Redis is away, at most.
const MAX_UNPUBLISHED: usize = 100_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reload {
    Replace,
    Merge,
}

type Conn = redis::aio::MultiplexedConnection;

/// Refreshes our liveness key (it expires after half the presence TTL).
async fn beat(conn: &mut Conn, id: &str, ttl: Duration) -> redis::RedisResult<()> {
    let ttl_ms = (ttl / 2).as_millis().max(100) as u64;
    redis::cmd("SET")
        .arg(alive(id))
        .arg(1)
        .arg("PX")
        .arg(ttl_ms)
        .query_async::<()>(conn)
        .await
}

/// Beats every sixth of the TTL until aborted (or Redis goes away, which
/// the bus task notices on its own connection).
async fn heartbeat_loop(mut conn: Conn, id: String, ttl: Duration) {
    let mut tick = tokio::time::interval((ttl / 6).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if beat(&mut conn, &id, ttl).await.is_err() {
            return;
        }
    }
}

/// The heartbeat task, stopped when the connected period ends.
struct Beat(tokio::task::JoinHandle<()>);

impl Drop for Beat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Another relay asks the room's relays to list their members.
fn is_sync_request(text: &str, me: &str) -> bool {
    let mut parts = text.splitn(4, '\n');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some("v1"), Some(relay), Some("R")) if relay != me
    )
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.connected(&mut commands).await {
                Ok(()) => return, // the relay is shutting down
                Err(e) => {
                    if self.stats.connected.swap(false, Relaxed) {
                        warn!("redis lost: {e}; local delivery continues, reconnecting");
                    } else {
                        warn!("redis unavailable: {e}; retrying in {delay:?}");
                    }
                }
            }
            // While down: keep local bookkeeping, drop publishes.
            let until = tokio::time::Instant::now() + delay;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => break,
                    c = commands.recv() => match c {
                        None => return,
                        Some(c) => self.offline(c),
                    },
                }
            }
            // Capped low: Redis is nearby infrastructure, and other relays
            // give us a third of the presence TTL to come back.
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn offline(&mut self, c: Command) {
        match c {
            Command::EnsureRoom { room, done } => {
                self.local.entry(room).or_default();
                let _ = done.send(());
            }
            Command::Joined { room, peer } => {
                self.local.entry(room).or_default().insert(peer);
            }
            Command::Left { room, peer, reason } => {
                if self.unpublished.len() < MAX_UNPUBLISHED {
                    self.unpublished.push((room.clone(), peer, reason));
                }
                self.forget_local(&room, peer);
            }
            Command::Publish { .. } => {
                self.stats.dropped.fetch_add(1, Relaxed);
            }
            Command::Release { room } => {
                self.release_local(&room);
            }
        }
    }

    /// Forgets a room nobody of ours is in (a refused join).
    fn release_local(&mut self, room: &str) -> bool {
        if self.local.get(room).is_some_and(HashSet::is_empty) {
            self.local.remove(room);
            self.lock_remote().remove(room);
            return true;
        }
        false
    }

    /// Tells the other relays exactly who of ours is in `room` now (they
    /// replace what they knew of us there).
    async fn publish_sync(&self, conn: &mut Conn, room: &str) -> redis::RedisResult<()> {
        let list: Vec<String> = self
            .local
            .get(room)
            .map(|set| set.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        let envelope = format!(
            "v1\n{}\nS\n0000000000000000\n-\n-\n{}",
            self.id,
            list.join(",")
        );
        self.publish(conn, room, envelope).await
    }

    fn forget_local(&mut self, room: &str, peer: PeerId) {
        if let Some(set) = self.local.get_mut(room) {
            set.remove(&peer);
            if set.is_empty() {
                self.local.remove(room);
                self.lock_remote().remove(room);
            }
        }
    }

    fn lock_remote(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<PeerId, String>>> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One connected period: returns Ok when the relay stops, Err when Redis
    /// goes away.
    async fn connected(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
    ) -> redis::RedisResult<()> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let pubsub = self.client.get_async_pubsub().await?;
        let (mut sink, mut stream) = pubsub.split();
        self.heartbeat(&mut conn).await?;
        // Liveness beats on its own from now on: a long re-sync must not
        // make the other relays think this one died.
        let _beat = Beat(tokio::spawn(heartbeat_loop(
            conn.clone(),
            self.id.clone(),
            self.ttl,
        )));
        // Departures we couldn't publish while away, first: even for rooms
        // we no longer serve, the other relays must drop these peers.
        for (room, peer, reason) in std::mem::take(&mut self.unpublished) {
            let _: () = conn.hdel(roster(&room), peer.to_string()).await?;
            let envelope = format!("v1\n{}\nL\n{peer}\n-\n-\n{}", self.id, reason.as_str());
            self.publish(&mut conn, &room, envelope).await?;
        }
        // Re-sync after (re)connecting: our members, subscriptions, rosters.
        self.local.retain(|_, set| !set.is_empty());
        let rooms: Vec<String> = self.local.keys().cloned().collect();
        for room in &rooms {
            sink.subscribe(channel(room)).await?;
            let peers: Vec<PeerId> = self.local[room].iter().copied().collect();
            for peer in peers {
                self.register(&mut conn, room, peer).await?;
            }
            // Tell the other relays exactly who is here now (joins and
            // leaves during the outage were never published), and ask them
            // to do the same: whoever re-subscribes last still hears it.
            self.publish_sync(&mut conn, room).await?;
            let request = format!("v1\n{}\nR\n0000000000000000\n-\n-\n", self.id);
            self.publish(&mut conn, room, request).await?;
            self.reload_roster(&mut conn, room, Reload::Merge).await?;
        }
        self.missing_since.clear();
        self.stats.connected.store(true, Relaxed);
        info!(relay = %self.id, "redis bus connected");
        let mut sweep = tokio::time::interval((self.ttl / 6).max(Duration::from_millis(100)));
        // A full sync now and then: presence converges even if a message
        // was lost (to a relay that wasn't subscribed yet, say).
        let mut resync = tokio::time::interval((self.ttl / 3).max(Duration::from_secs(1)));
        resync.tick().await;
        loop {
            tokio::select! {
                c = commands.recv() => {
                    let Some(c) = c else { return Ok(()) };
                    match c {
                        Command::EnsureRoom { room, done } => {
                            if !self.local.contains_key(&room) {
                                self.local.insert(room.clone(), HashSet::new());
                                sink.subscribe(channel(&room)).await?;
                                // Nobody here yet to tell: the joiner's
                                // welcome lists these.
                                self.reload_roster(&mut conn, &room, Reload::Replace).await?;
                            }
                            let _ = done.send(());
                        }
                        Command::Joined { room, peer } => {
                            if !self.local.contains_key(&room) {
                                // Released meanwhile by another joiner's
                                // refusal: subscribe again.
                                sink.subscribe(channel(&room)).await?;
                            }
                            self.local.entry(room.clone()).or_default().insert(peer);
                            self.register(&mut conn, &room, peer).await?;
                            let envelope = format!("v1\n{}\nJ\n{peer}\n-\n-\n", self.id);
                            self.publish(&mut conn, &room, envelope).await?;
                            // Subscribed, registered, announced: now read the
                            // roster again. Of two relays whose peers join at
                            // once, each either sees the other's entry here or
                            // gets its announcement, so nobody is missed.
                            self.reload_roster(&mut conn, &room, Reload::Merge).await?;
                        }
                        Command::Left { room, peer, reason } => {
                            let _: () = conn.hdel(roster(&room), peer.to_string()).await?;
                            let envelope = format!("v1\n{}\nL\n{peer}\n-\n-\n{}", self.id, reason.as_str());
                            self.publish(&mut conn, &room, envelope).await?;
                            self.forget_local(&room, peer);
                            if !self.local.contains_key(&room) {
                                sink.unsubscribe(channel(&room)).await?;
                            }
                        }
                        Command::Publish { room, envelope } => self.publish(&mut conn, &room, envelope).await?,
                        Command::Release { room } => {
                            if self.release_local(&room) {
                                sink.unsubscribe(channel(&room)).await?;
                            }
                        }
                    }
                }
                msg = stream.next() => {
                    let Some(msg) = msg else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection closed")));
                    };
                    let room = msg.get_channel_name().strip_prefix("sf:room:").unwrap_or_default().to_string();
                    if let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) {
                        if is_sync_request(text, &self.id) && self.local.contains_key(&room) {
                            self.publish_sync(&mut conn, &room).await?;
                        } else {
                            self.on_envelope(room, text).await;
                        }
                    }
                }
                _ = sweep.tick() => {
                    self.sweep(&mut conn).await?;
                }
                _ = resync.tick() => {
                    let rooms: Vec<String> = self.local.keys().cloned().collect();
                    for room in rooms {
                        self.publish_sync(&mut conn, &room).await?;
                    }
                }
            }
        }
    }

    async fn heartbeat(&self, conn: &mut Conn) -> redis::RedisResult<()> {
        beat(conn, &self.id, self.ttl).await
    }

    async fn register(&self, conn: &mut Conn, room: &str, peer: PeerId) -> redis::RedisResult<()> {
        conn.hset::<_, _, _, ()>(roster(room), peer.to_string(), &self.id)
            .await
    }

    async fn publish(
        &self,
        conn: &mut Conn,
        room: &str,
        envelope: String,
    ) -> redis::RedisResult<()> {
        let _: i64 = conn.publish(channel(room), envelope).await?;
        self.stats.published.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Loads the room's roster, keeps live relays' peers, and announces the
    /// difference with what we knew (joins and leaves missed while away).
    /// Reads the room's roster. `Replace` (first subscription: nobody local
    /// to tell) takes it as is; `Merge` adds and announces new remote peers
    /// but removes nobody: departures are learned from leave messages, sync
    /// messages and dead relays, never from a roster that may be mid-rebuild
    /// after a Redis restart.
    async fn reload_roster(
        &mut self,
        conn: &mut Conn,
        room: &str,
        mode: Reload,
    ) -> redis::RedisResult<()> {
        let entries: HashMap<String, String> = conn.hgetall(roster(room)).await?;
        let mut live_relays: HashMap<String, bool> = HashMap::new();
        let mut fresh: HashMap<PeerId, String> = HashMap::new();
        for (peer, relay) in entries {
            if relay == self.id {
                continue;
            }
            let Ok(peer) = peer.parse::<PeerId>() else {
                continue;
            };
            let live = match live_relays.get(&relay) {
                Some(l) => *l,
                None => {
                    let l: bool = conn.exists(alive(&relay)).await?;
                    live_relays.insert(relay.clone(), l);
                    l
                }
            };
            // A relay without a liveness key is crashed (or reconnecting):
            // its entries stay for the sweep to judge, but nobody is told
            // about peers that may be gone.
            if live {
                fresh.insert(peer, relay);
            }
        }
        let added: Vec<PeerId> = {
            let mut remote = self.lock_remote();
            let members = remote.entry(room.to_string()).or_default();
            if mode == Reload::Replace {
                *members = fresh;
                return Ok(());
            }
            fresh
                .into_iter()
                .filter_map(|(peer, relay)| members.insert(peer, relay).is_none().then_some(peer))
                .collect()
        };
        for peer in added {
            let _ = self
                .deliver
                .send(Remote::Joined {
                    room: room.to_string(),
                    peer,
                })
                .await;
        }
        Ok(())
    }

    /// Announces remote peers whose relay stopped refreshing its liveness
    /// key: missing for a third of the presence TTL, on top of the half-TTL
    /// expiry, so a crashed relay's peers are announced within about one TTL,
    /// while relays reconnecting after a Redis restart have time to return.
    async fn sweep(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let relays: HashSet<String> = self
            .lock_remote()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        let now = tokio::time::Instant::now();
        let grace = self.ttl / 3;
        let mut dead = HashSet::new();
        self.missing_since.retain(|r, _| relays.contains(r));
        for relay in relays {
            let live: bool = conn.exists(alive(&relay)).await?;
            if live {
                self.missing_since.remove(&relay);
            } else if now.duration_since(*self.missing_since.entry(relay.clone()).or_insert(now))
                >= grace
            {
                dead.insert(relay);
            }
        }
        if dead.is_empty() {
            return Ok(());
        }
        let mut gone = Vec::new();
        {
            let mut remote = self.lock_remote();
            for (room, members) in remote.iter_mut() {
                members.retain(|peer, relay| {
                    let keep = !dead.contains(relay);
                    if !keep {
                        gone.push((room.clone(), *peer));
                    }
                    keep
                });
            }
        }
        for (room, peer) in gone {
            let _: () = conn.hdel(roster(&room), peer.to_string()).await?;
            let _ = self
                .deliver
                .send(Remote::Left {
                    room,
                    peer,
                    reason: LeaveReason::Timeout,
                })
                .await;
        }
        Ok(())
    }

    /// Another relay (back from a Redis outage) lists its members of `room`.
    async fn on_sync(&self, room: String, relay: &str, body: &str) {
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

    async fn on_envelope(&self, room: String, text: &str) {
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
