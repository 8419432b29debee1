//! The bus task: owns the Redis connections, keeps presence in step, and
//! turns other relays' messages into [`Remote`] deliveries.
//!
//! With one Redis, any command error means Redis is gone: the task drops
//! the connection, keeps local bookkeeping, and re-syncs everything when it
//! returns. In a cluster a command error is one shard's fault, so it stays
//! with the room it concerns: publishes run concurrently (a dead master
//! stalls none of the other rooms), and a failed room holds its reliable
//! messages until it is repaired on the shard's new master.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use redis::{AsyncCommands, RedisError, RedisResult};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::link::{Client, Conn, Subscriber};
use super::repair::{Done, REPAIR_EVERY};
use super::{alive, channel, roster, shards, BusStats, Command, Remote};
use crate::peer::PeerId;
use crate::protocol::LeaveReason;

type Members = HashMap<String, HashMap<PeerId, String>>;

/// A failed room's reliable messages, by the order they were sent in.
pub(super) type Held = VecDeque<(u64, String)>;

/// Holds `envelope` in its place by `seq` (most arrive last, in order;
/// a job that failed late goes back among them).
pub(super) fn hold(queue: &mut Held, seq: u64, envelope: String) -> bool {
    if queue.len() >= MAX_HELD_PER_ROOM {
        return false;
    }
    let at = queue.partition_point(|(s, _)| *s < seq);
    queue.insert(at, (seq, envelope));
    true
}

pub(super) struct Task {
    pub(super) client: Client,
    pub(super) id: String,
    pub(super) ttl: Duration,
    pub(super) remote: Arc<Mutex<Members>>,
    pub(super) stats: Arc<BusStats>,
    pub(super) deliver: mpsc::Sender<Remote>,
    /// Our own members, to re-register after a Redis outage.
    pub(super) local: HashMap<String, HashSet<PeerId>>,
    /// Remote relays whose liveness key we found missing, and since when.
    pub(super) missing_since: HashMap<String, tokio::time::Instant>,
    /// Departures that happened while Redis was away: published (and
    /// removed from the roster) when it is back, even for rooms we no
    /// longer have members in, so no relay keeps them as ghosts.
    pub(super) unpublished: Vec<(String, PeerId, LeaveReason)>,
    /// Cluster mode: rooms whose shard failed, with the reliable messages
    /// waiting (in order) for the room's repair.
    pub(super) held: HashMap<String, Held>,
    /// Cluster mode: the order reliable messages were given to the bus in,
    /// so what comes back from failed jobs is held in that order.
    pub(super) next_seq: u64,
    /// Cluster mode: rooms to repair at the next tick (true: after a fault,
    /// counted per shard; false: the periodic re-sync).
    pub(super) to_repair: HashMap<String, bool>,
    /// Cluster mode: members to take out of a room's roster at its next
    /// repair (they left while an earlier one registered them again).
    pub(super) to_forget: HashMap<String, HashSet<PeerId>>,
    /// Cluster mode: rooms left during their repair whose clean-up failed.
    pub(super) farewells: Vec<(String, HashSet<PeerId>)>,
    /// Cluster mode: rooms being repaired now.
    pub(super) repairing: HashSet<String>,
    /// Cluster mode: commands in flight (publishes, repairs, sweeps).
    pub(super) jobs: FuturesUnordered<BoxFuture<'static, Done>>,
}

/// Departures remembered while Redis is away, at most.
const MAX_UNPUBLISHED: usize = 100_000;
/// Cluster mode: reliable messages a failed room holds, at most (beyond,
/// they are dropped and counted, as with one Redis down).
pub(super) const MAX_HELD_PER_ROOM: usize = 1024;
/// Cluster mode: commands in flight, at most (beyond, publishes are dropped
/// and counted: the cluster is slower than the members).
const MAX_JOBS: usize = 8192;
/// Cluster mode: an inline command (a join's subscription and roster) waits
/// this long at most; then its room is repaired in the background.
pub(super) const INLINE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Liveness {
    Check,
    Trust,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Reload {
    Replace,
    Merge,
}

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

/// Beats every sixth of the TTL until aborted. With one Redis it stops at
/// the first error (the bus task notices on its own connection); in a
/// cluster it goes on: the shard holding our key may be failing over.
async fn heartbeat_loop(mut conn: Conn, id: String, ttl: Duration) {
    let mut tick = tokio::time::interval((ttl / 6).max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        if beat(&mut conn, &id, ttl).await.is_err() && !conn.is_cluster() {
            return;
        }
    }
}

/// A task that stops when the connected period ends.
struct Guard(tokio::task::JoinHandle<()>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn sync_envelope(me: &str, members: Option<&HashSet<PeerId>>) -> String {
    let list: Vec<String> = members
        .map(|set| set.iter().map(|p| p.to_string()).collect())
        .unwrap_or_default();
    format!("v1\n{me}\nS\n0000000000000000\n-\n-\n{}", list.join(","))
}

pub(super) fn sync_request(me: &str) -> String {
    format!("v1\n{me}\nR\n0000000000000000\n-\n-\n")
}

pub(super) fn leave_envelope(me: &str, peer: PeerId, reason: LeaveReason) -> String {
    format!("v1\n{me}\nL\n{peer}\n-\n-\n{}", reason.as_str())
}

pub(super) fn timed_out() -> RedisError {
    RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut))
}

/// The room's roster without us: live relays' peers only. A relay without
/// a liveness key is crashed (or reconnecting): its entries stay for the
/// sweep to judge, but nobody is told about peers that may be gone.
///
/// `Liveness::Trust` reads no liveness key (a cluster join must not wait
/// on another shard): every listed relay counts as live but those the
/// caller filters out, and a crashed one's peers leave when the sweep
/// finds its key gone.
pub(super) async fn fetch_roster(
    conn: &mut Conn,
    room: &str,
    me: &str,
    liveness: Liveness,
) -> RedisResult<HashMap<PeerId, String>> {
    let entries: HashMap<String, String> = conn.hgetall(roster(room)).await?;
    let mut live_relays: HashMap<String, bool> = HashMap::new();
    let mut fresh = HashMap::new();
    for (peer, relay) in entries {
        if relay == me {
            continue;
        }
        let Ok(peer) = peer.parse::<PeerId>() else {
            continue;
        };
        let live = match live_relays.get(&relay) {
            Some(l) => *l,
            None if liveness == Liveness::Trust => true,
            None => {
                let l = match conn.exists(alive(&relay)).await {
                    Ok(l) => l,
                    // In a cluster the key may sit on a shard failing over:
                    // its peers are left out for now, and arrive with that
                    // relay's next list.
                    Err(_) if conn.is_cluster() => false,
                    Err(e) => return Err(e),
                };
                live_relays.insert(relay.clone(), l);
                l
            }
        };
        if live {
            fresh.insert(peer, relay);
        }
    }
    Ok(fresh)
}

impl Task {
    pub fn new(
        client: Client,
        id: String,
        ttl: Duration,
        remote: Arc<Mutex<Members>>,
        stats: Arc<BusStats>,
        deliver: mpsc::Sender<Remote>,
    ) -> Task {
        Task {
            client,
            id,
            ttl,
            remote,
            stats,
            deliver,
            local: HashMap::new(),
            missing_since: HashMap::new(),
            unpublished: Vec::new(),
            held: HashMap::new(),
            next_seq: 0,
            to_repair: HashMap::new(),
            to_forget: HashMap::new(),
            farewells: Vec::new(),
            repairing: HashSet::new(),
            jobs: FuturesUnordered::new(),
        }
    }

    pub(super) fn cluster(&self) -> bool {
        self.client.is_cluster()
    }

    /// Cluster mode: the room's shard was down at the last watch.
    fn known_down(&self, room: &str) -> bool {
        self.cluster() && self.stats.room_shard_down(room)
    }

    /// Joins read liveness keys with one Redis; in a cluster they trust
    /// the roster (see [`fetch_roster`]).
    fn inline_liveness(&self) -> Liveness {
        if self.cluster() {
            Liveness::Trust
        } else {
            Liveness::Check
        }
    }

    /// Drops peers of relays the sweep found without a liveness key.
    pub(super) fn without_missing(
        &self,
        mut fresh: HashMap<PeerId, String>,
    ) -> HashMap<PeerId, String> {
        fresh.retain(|_, relay| !self.missing_since.contains_key(relay));
        fresh
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
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
            // Whatever was in flight belonged to the lost connection.
            self.jobs = FuturesUnordered::new();
            self.repairing.clear();
            self.held.clear();
            self.to_repair.clear();
            self.to_forget.clear();
            self.farewells.clear();
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

    pub(super) fn offline(&mut self, c: Command) {
        match c {
            Command::EnsureRoom { room, done } => {
                self.local.entry(room).or_default();
                let _ = done.send(());
            }
            Command::Joined { room, peer } => {
                self.local.entry(room).or_default().insert(peer);
            }
            Command::Left { room, peer, reason } => {
                self.remember_departure(room.clone(), peer, reason);
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

    pub(super) fn remember_departure(&mut self, room: String, peer: PeerId, reason: LeaveReason) {
        if self.unpublished.len() < MAX_UNPUBLISHED {
            self.unpublished.push((room, peer, reason));
        }
    }

    /// Forgets a room nobody of ours is in (a refused join).
    pub(super) fn release_local(&mut self, room: &str) -> bool {
        if self.local.get(room).is_some_and(HashSet::is_empty) {
            self.forget_room(room);
            return true;
        }
        false
    }

    pub(super) fn forget_room(&mut self, room: &str) {
        self.local.remove(room);
        self.lock_remote().remove(room);
        self.held.remove(room);
        self.to_repair.remove(room);
    }

    pub(super) fn forget_local(&mut self, room: &str, peer: PeerId) {
        if let Some(set) = self.local.get_mut(room) {
            set.remove(&peer);
            if set.is_empty() {
                self.forget_room(room);
            }
        }
    }

    pub(super) fn lock_remote(&self) -> std::sync::MutexGuard<'_, Members> {
        self.remote.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A command for `room` failed. With one Redis that is Redis gone (the
    /// error ends the connected period); in a cluster it is the room's
    /// shard: the room holds its messages until it is repaired.
    pub(super) fn room_failed(&mut self, room: &str, e: RedisError) -> RedisResult<()> {
        if !self.cluster() {
            return Err(e);
        }
        if !self.held.contains_key(room) && self.local.contains_key(room) {
            warn!(
                room,
                "redis shard failed: {e}; holding the room's messages until it is repaired"
            );
            self.held.insert(room.to_string(), VecDeque::new());
        }
        Ok(())
    }

    /// Runs a room's inline commands; in a cluster, bounded in time.
    pub(super) async fn inline<T>(
        &mut self,
        work: impl std::future::Future<Output = RedisResult<T>>,
    ) -> RedisResult<T> {
        if !self.cluster() {
            return work.await;
        }
        match tokio::time::timeout(INLINE_TIMEOUT, work).await {
            Ok(r) => r,
            Err(_) => Err(timed_out()),
        }
    }

    /// Publishes to the room's relays: with one Redis now, in order; in a
    /// cluster as a job, or held while the room's shard fails over.
    pub(super) async fn publish(
        &mut self,
        conn: &mut Conn,
        room: &str,
        envelope: String,
        reliable: bool,
    ) -> RedisResult<()> {
        if !self.cluster() {
            let _: i64 = conn
                .publish_cmd(channel(room), envelope)
                .query_async(conn)
                .await?;
            self.stats.published.fetch_add(1, Relaxed);
            return Ok(());
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(queue) = self.held.get_mut(room) {
            if !(reliable && hold(queue, seq, envelope)) {
                self.stats.dropped.fetch_add(1, Relaxed);
            }
            return Ok(());
        }
        // Reliable messages get twice the room: a failing shard's doomed
        // media must not crowd out the other rooms' chat.
        let cap = if reliable { 2 * MAX_JOBS } else { MAX_JOBS };
        if self.jobs.len() >= cap {
            self.stats.dropped.fetch_add(1, Relaxed);
            return Ok(());
        }
        let cmd = conn.publish_cmd(channel(room), envelope.clone());
        let mut conn = conn.clone();
        let room = room.to_string();
        let envelope = reliable.then_some((seq, envelope));
        self.jobs.push(Box::pin(async move {
            let ok = cmd.query_async::<i64>(&mut conn).await.is_ok();
            Done::Published { room, envelope, ok }
        }));
        Ok(())
    }

    /// A departure: out of the roster, announced to the room's relays.
    pub(super) async fn publish_departure(
        &mut self,
        conn: &mut Conn,
        room: &str,
        peer: PeerId,
        reason: LeaveReason,
    ) -> RedisResult<()> {
        if self.cluster() {
            // Its own job: a dead shard must not hold up the others, and a
            // failure keeps the departure for the next attempt.
            let mut conn = conn.clone();
            let envelope = leave_envelope(&self.id, peer, reason);
            let departure = (room.to_string(), peer, reason);
            self.jobs.push(Box::pin(async move {
                let (room, peer, _) = &departure;
                let work = async {
                    conn.hdel::<_, _, ()>(roster(room), peer.to_string())
                        .await?;
                    conn.publish_cmd(channel(room), envelope)
                        .query_async::<i64>(&mut conn.clone())
                        .await
                };
                let ok = matches!(tokio::time::timeout(INLINE_TIMEOUT, work).await, Ok(Ok(_)));
                Done::Departed { departure, ok }
            }));
            return Ok(());
        }
        let _: () = conn.hdel(roster(room), peer.to_string()).await?;
        self.publish(conn, room, leave_envelope(&self.id, peer, reason), true)
            .await
    }

    /// Tells the other relays exactly who of ours is in `room` now (they
    /// replace what they knew of us there).
    pub(super) async fn publish_sync(&mut self, conn: &mut Conn, room: &str) -> RedisResult<()> {
        let envelope = sync_envelope(&self.id, self.local.get(room));
        self.publish(conn, room, envelope, true).await
    }

    /// One connected period: returns Ok when the relay stops, Err when Redis
    /// goes away (one Redis) or the cluster client stops.
    pub(super) async fn connected(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
    ) -> redis::RedisResult<()> {
        let (mut conn, mut sub) = self.client.connect().await?;
        match beat(&mut conn, &self.id, self.ttl).await {
            // In a cluster our key's shard may be failing over: the
            // heartbeat keeps trying, the rooms on other shards needn't wait.
            Err(e) if !conn.is_cluster() => return Err(e),
            _ => {}
        }
        // Liveness beats on its own from now on: a long re-sync must not
        // make the other relays think this one died.
        let _beat = Guard(tokio::spawn(heartbeat_loop(
            conn.clone(),
            self.id.clone(),
            self.ttl,
        )));
        let _watch = conn.is_cluster().then(|| {
            Guard(tokio::spawn(shards::watch(
                self.client.seeds(),
                conn.masters(),
                self.stats.clone(),
            )))
        });
        // Departures we couldn't publish while away, first: even for rooms
        // we no longer serve, the other relays must drop these peers.
        for (room, peer, reason) in std::mem::take(&mut self.unpublished) {
            self.publish_departure(&mut conn, &room, peer, reason)
                .await?;
        }
        // Re-sync after (re)connecting: our members, subscriptions, rosters.
        self.local.retain(|_, set| !set.is_empty());
        let rooms: Vec<String> = self.local.keys().cloned().collect();
        if self.cluster() {
            // Each room on its own shard, concurrently.
            self.to_repair.extend(rooms.into_iter().map(|r| (r, false)));
        } else {
            for room in &rooms {
                sub.subscribe(channel(room)).await?;
                let peers: Vec<PeerId> = self.local[room].iter().copied().collect();
                for peer in peers {
                    self.register(&mut conn, room, peer).await?;
                }
                // Tell the other relays exactly who is here now (joins and
                // leaves during the outage were never published), and ask
                // them to do the same: whoever re-subscribes last still
                // hears it.
                self.publish_sync(&mut conn, room).await?;
                self.publish(&mut conn, room, sync_request(&self.id), true)
                    .await?;
                self.reload_roster(&mut conn, room, Reload::Merge).await?;
            }
        }
        self.missing_since.clear();
        self.stats.connected.store(true, Relaxed);
        info!(relay = %self.id, cluster = self.cluster(), "redis bus connected");
        let mut sweep = tokio::time::interval((self.ttl / 6).max(Duration::from_millis(100)));
        // A full sync now and then: presence converges even if a message
        // was lost (to a relay that wasn't subscribed yet, say).
        let mut resync = tokio::time::interval((self.ttl / 3).max(Duration::from_secs(1)));
        resync.tick().await;
        let mut repair = tokio::time::interval(REPAIR_EVERY);
        loop {
            tokio::select! {
                c = commands.recv() => {
                    let Some(c) = c else { return Ok(()) };
                    self.on_command(&mut conn, &mut sub, c).await?;
                }
                heard = sub.next() => {
                    let Some(heard) = heard else {
                        return Err(redis::RedisError::from((redis::ErrorKind::Io, "pub/sub connection closed")));
                    };
                    self.on_heard(&mut conn, heard).await?;
                }
                Some(done) = self.jobs.next(), if !self.jobs.is_empty() => {
                    self.on_done(&mut conn, done).await;
                }
                _ = sweep.tick() => {
                    self.sweep(&mut conn).await?;
                }
                _ = resync.tick() => {
                    // Just the lists (in a cluster, as jobs): rooms whose
                    // shard failed or moved are repaired when that shows.
                    let rooms: Vec<String> = self.local.keys().cloned().collect();
                    for room in rooms {
                        self.publish_sync(&mut conn, &room).await?;
                    }
                }
                _ = repair.tick(), if self.cluster() => {
                    self.start_repairs(&conn);
                    self.retry_farewells(&conn);
                    for (room, peer, reason) in std::mem::take(&mut self.unpublished) {
                        self.publish_departure(&mut conn, &room, peer, reason).await?;
                    }
                }
            }
        }
    }

    pub(super) async fn on_command(
        &mut self,
        conn: &mut Conn,
        sub: &mut Subscriber,
        c: Command,
    ) -> RedisResult<()> {
        match c {
            Command::EnsureRoom { room, done } => {
                if !self.local.contains_key(&room) {
                    self.local.insert(room.clone(), HashSet::new());
                    if self.known_down(&room) {
                        // No wait on a shard known to be failing over: the
                        // join goes ahead, the room is repaired after.
                        self.room_failed(&room, timed_out())?;
                        let _ = done.send(());
                        return Ok(());
                    }
                    // Nobody here yet to tell: the joiner's welcome lists
                    // these.
                    let me = self.id.clone();
                    let liveness = self.inline_liveness();
                    let subscribed = self
                        .inline(async {
                            sub.subscribe(channel(&room)).await?;
                            fetch_roster(conn, &room, &me, liveness).await
                        })
                        .await;
                    match subscribed {
                        Ok(fresh) => {
                            let fresh = self.without_missing(fresh);
                            self.apply_roster(&room, fresh, Reload::Replace).await
                        }
                        Err(e) => self.room_failed(&room, e)?,
                    }
                }
                let _ = done.send(());
            }
            Command::Joined { room, peer } => {
                let resubscribe = !self.local.contains_key(&room);
                self.local.entry(room.clone()).or_default().insert(peer);
                if self.known_down(&room) {
                    self.room_failed(&room, timed_out())?;
                }
                if self.held.contains_key(&room) {
                    // The repair registers and announces everyone.
                    return Ok(());
                }
                let me = self.id.clone();
                let registered = self
                    .inline(async {
                        if resubscribe {
                            // Released meanwhile by another joiner's
                            // refusal: subscribe again.
                            sub.subscribe(channel(&room)).await?;
                        }
                        conn.hset::<_, _, _, ()>(roster(&room), peer.to_string(), &me)
                            .await
                    })
                    .await;
                if let Err(e) = registered {
                    return self.room_failed(&room, e);
                }
                let envelope = format!("v1\n{}\nJ\n{peer}\n-\n-\n", self.id);
                self.publish(conn, &room, envelope, true).await?;
                // Subscribed, registered, announced: now read the roster
                // again. Of two relays whose peers join at once, each either
                // sees the other's entry here or gets its announcement, so
                // nobody is missed.
                let liveness = self.inline_liveness();
                match self.inline(fetch_roster(conn, &room, &me, liveness)).await {
                    Ok(fresh) => {
                        let fresh = self.without_missing(fresh);
                        self.apply_roster(&room, fresh, Reload::Merge).await
                    }
                    Err(e) => self.room_failed(&room, e)?,
                }
            }
            Command::Left { room, peer, reason } => {
                if self.held.contains_key(&room) {
                    self.remember_departure(room.clone(), peer, reason);
                } else {
                    self.publish_departure(conn, &room, peer, reason).await?;
                }
                self.forget_local(&room, peer);
                if !self.local.contains_key(&room) {
                    self.unsubscribe(conn, sub, &room).await?;
                }
            }
            Command::Publish {
                room,
                envelope,
                reliable,
            } => self.publish(conn, &room, envelope, reliable).await?,
            Command::Release { room } => {
                if self.release_local(&room) {
                    self.unsubscribe(conn, sub, &room).await?;
                }
            }
        }
        Ok(())
    }

    pub(super) async fn unsubscribe(
        &mut self,
        conn: &Conn,
        sub: &mut Subscriber,
        room: &str,
    ) -> RedisResult<()> {
        if self.cluster() {
            // Off the task: the room's shard may be failing over, and
            // nothing waits for this. (A subscription that outlives a
            // failed attempt only brings traffic for a room we don't
            // serve, which is dropped.)
            let conn = conn.clone();
            let channel = channel(room);
            tokio::spawn(async move {
                let _ = tokio::time::timeout(INLINE_TIMEOUT, conn.sunsubscribe(channel)).await;
            });
            return Ok(());
        }
        sub.unsubscribe(channel(room)).await
    }

    pub(super) async fn register(
        &mut self,
        conn: &mut Conn,
        room: &str,
        peer: PeerId,
    ) -> redis::RedisResult<()> {
        conn.hset::<_, _, _, ()>(roster(room), peer.to_string(), &self.id)
            .await
    }

    /// Reads the room's roster and applies it (one Redis).
    pub(super) async fn reload_roster(
        &mut self,
        conn: &mut Conn,
        room: &str,
        mode: Reload,
    ) -> redis::RedisResult<()> {
        let fresh = fetch_roster(conn, room, &self.id, Liveness::Check).await?;
        self.apply_roster(room, fresh, mode).await;
        Ok(())
    }

    /// Takes a room's roster. `Replace` (first subscription: nobody local
    /// to tell) takes it as is; `Merge` adds and announces new remote peers
    /// but removes nobody: departures are learned from leave messages, sync
    /// messages and dead relays, never from a roster that may be mid-rebuild
    /// after a Redis restart or a failover.
    pub(super) async fn apply_roster(
        &mut self,
        room: &str,
        fresh: HashMap<PeerId, String>,
        mode: Reload,
    ) {
        let added: Vec<PeerId> = {
            let mut remote = self.lock_remote();
            let members = remote.entry(room.to_string()).or_default();
            if mode == Reload::Replace {
                *members = fresh;
                return;
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
    }

    /// Announces remote peers whose relay stopped refreshing its liveness
    /// key: missing for a third of the presence TTL, on top of the half-TTL
    /// expiry, so a crashed relay's peers are announced within about one TTL,
    /// while relays reconnecting after a Redis restart have time to return.
    pub(super) async fn sweep(&mut self, conn: &mut Conn) -> redis::RedisResult<()> {
        let relays: HashSet<String> = self
            .lock_remote()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect();
        self.missing_since.retain(|r, _| relays.contains(r));
        if self.cluster() {
            // Each key on its own shard: a job, and a check that fails
            // (its shard failing over) says nothing either way.
            let mut conn = conn.clone();
            self.jobs.push(Box::pin(async move {
                let mut checks = Vec::new();
                for relay in relays {
                    let check = tokio::time::timeout(INLINE_TIMEOUT, conn.exists(alive(&relay)));
                    let live = match check.await {
                        Ok(Ok(live)) => Some(live),
                        _ => None,
                    };
                    checks.push((relay, live));
                }
                Done::Swept(checks)
            }));
            return Ok(());
        }
        let mut checks = Vec::new();
        for relay in relays {
            let live: bool = conn.exists(alive(&relay)).await?;
            checks.push((relay, Some(live)));
        }
        self.apply_sweep(conn, checks).await
    }

    pub(super) async fn apply_sweep(
        &mut self,
        conn: &mut Conn,
        checks: Vec<(String, Option<bool>)>,
    ) -> RedisResult<()> {
        let now = tokio::time::Instant::now();
        let grace = self.ttl / 3;
        let mut dead = HashSet::new();
        for (relay, live) in checks {
            match live {
                Some(true) => {
                    self.missing_since.remove(&relay);
                }
                Some(false) => {
                    let since = *self.missing_since.entry(relay.clone()).or_insert(now);
                    if now.duration_since(since) >= grace {
                        dead.insert(relay);
                    }
                }
                None => {}
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
            let mut c = conn.clone();
            let key = roster(&room);
            if self.cluster() {
                // Best effort, off the task: whoever sweeps next removes
                // what this misses.
                let hdel = async move { c.hdel::<_, _, ()>(key, peer.to_string()).await };
                tokio::spawn(tokio::time::timeout(INLINE_TIMEOUT, hdel));
            } else {
                c.hdel::<_, _, ()>(key, peer.to_string()).await?;
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_messages_keep_the_order_they_were_sent_in() {
        let mut queue = Held::new();
        // Held while the room was failing, then two jobs that failed late.
        for (seq, text) in [(3, "c"), (5, "e"), (1, "a"), (4, "d"), (2, "b")] {
            assert!(hold(&mut queue, seq, text.to_string()));
        }
        let order: Vec<&str> = queue.iter().map(|(_, e)| e.as_str()).collect();
        assert_eq!(order, ["a", "b", "c", "d", "e"]);
    }

    #[test]
    fn a_room_holds_a_bounded_number_of_messages() {
        let mut queue = Held::new();
        for seq in 0..MAX_HELD_PER_ROOM as u64 {
            assert!(hold(&mut queue, seq, String::new()));
        }
        assert!(!hold(&mut queue, u64::MAX, String::new()));
        assert_eq!(queue.len(), MAX_HELD_PER_ROOM);
    }
}
