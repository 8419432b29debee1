//! Cluster mode: the jobs that run beside the bus task (publishes,
//! repairs, sweeps) and what their outcomes change. A room whose shard
//! failed is repaired on the shard's new master: re-subscribed,
//! re-registered, re-synced, then its held messages are sent in order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use redis::{AsyncCommands, RedisResult};

use super::link::Conn;
use super::task::{
    fetch_roster, hold, sync_envelope, sync_request, timed_out, Held, Liveness, Reload, Task,
    INLINE_TIMEOUT, MAX_HELD_PER_ROOM,
};
use super::{channel, roster};
use crate::peer::PeerId;
use crate::protocol::LeaveReason;

/// Cluster mode: rooms repaired at once, at most.
pub(super) const MAX_REPAIRS: usize = 64;
/// Cluster mode: how often failed rooms are retried.
pub(super) const REPAIR_EVERY: Duration = Duration::from_millis(250);

/// A cluster-mode job's outcome, applied by the task.
pub(super) enum Done {
    Published {
        room: String,
        /// The message again (with its order) if it was reliable: held for
        /// the repair.
        envelope: Option<(u64, String)>,
        ok: bool,
    },
    Repaired {
        room: String,
        fault: bool,
        /// Who the repair registered and listed: our members when it began.
        members: HashSet<PeerId>,
        /// The room's live remote members from its roster, or the error.
        roster: RedisResult<HashMap<PeerId, String>>,
        /// Held messages the repair did not get to send.
        unsent: Held,
    },
    /// Liveness of remote relays: `None` where the check itself failed.
    Swept(Vec<(String, Option<bool>)>),
    Departed {
        departure: (String, PeerId, LeaveReason),
        ok: bool,
    },
    /// A room we left while its repair ran, cleaned up (or not).
    Farewell {
        room: String,
        forget: HashSet<PeerId>,
        ok: bool,
    },
}

/// Cluster mode: re-subscribes a room on its shard's master now, registers
/// our members again (a promoted replica may have missed the last writes),
/// tells the others who we are and asks them the same, reads the roster,
/// then sends what the room held, in order.
pub(super) async fn repair_room(
    mut conn: Conn,
    room: String,
    me: String,
    members: HashSet<PeerId>,
    forget: HashSet<PeerId>,
    mut held: Held,
) -> (RedisResult<HashMap<PeerId, String>>, Held) {
    let work = async {
        conn.ssubscribe(channel(&room)).await?;
        // Members who left while an earlier repair (re)registered them.
        for peer in &forget {
            conn.hdel::<_, _, ()>(roster(&room), peer.to_string())
                .await?;
        }
        for peer in &members {
            conn.hset::<_, _, _, ()>(roster(&room), peer.to_string(), &me)
                .await?;
        }
        for envelope in [sync_envelope(&me, Some(&members)), sync_request(&me)] {
            conn.publish_cmd(channel(&room), envelope)
                .query_async::<i64>(&mut conn.clone())
                .await?;
        }
        let roster = fetch_roster(&mut conn, &room, &me, Liveness::Check).await?;
        while let Some((_, envelope)) = held.front() {
            conn.publish_cmd(channel(&room), envelope.clone())
                .query_async::<i64>(&mut conn.clone())
                .await?;
            held.pop_front();
        }
        Ok(roster)
    };
    let roster = match tokio::time::timeout(INLINE_TIMEOUT * 3, work).await {
        Ok(r) => r,
        Err(_) => Err(timed_out()),
    };
    (roster, held)
}

/// A room we left while its repair ran: the repair may have registered
/// our members again and subscribed us again, after their departures.
/// Undone here: out of the roster, an empty list to the other relays,
/// unsubscribed.
async fn farewell_room(mut conn: Conn, room: String, me: String, forget: HashSet<PeerId>) -> Done {
    let work = async {
        for peer in &forget {
            conn.hdel::<_, _, ()>(roster(&room), peer.to_string())
                .await?;
        }
        conn.publish_cmd(channel(&room), sync_envelope(&me, None))
            .query_async::<i64>(&mut conn.clone())
            .await?;
        conn.sunsubscribe(channel(&room)).await
    };
    let ok = matches!(tokio::time::timeout(INLINE_TIMEOUT, work).await, Ok(Ok(())));
    Done::Farewell { room, forget, ok }
}

impl Task {
    /// Cluster mode: starts the repairs due, at most [`MAX_REPAIRS`] at
    /// once: rooms holding messages first, then rooms that saw a fault,
    /// then the rest.
    pub(super) fn start_repairs(&mut self, conn: &Conn) {
        // Failed rooms are always due.
        for room in self.held.keys() {
            self.to_repair.entry(room.clone()).or_insert(true);
        }
        let room_for = MAX_REPAIRS.saturating_sub(self.repairing.len());
        if room_for == 0 {
            return;
        }
        let mut due: Vec<(bool, bool, String)> = self
            .to_repair
            .iter()
            .filter(|(room, _)| !self.repairing.contains(*room))
            .map(|(room, fault)| (!self.held.contains_key(room), !*fault, room.clone()))
            .collect();
        due.sort_unstable();
        due.truncate(room_for);
        for (_, not_fault, room) in due {
            let fault = !not_fault;
            let forget = self.to_forget.remove(&room).unwrap_or_default();
            self.to_repair.remove(&room);
            let Some(members) = self.local.get(&room).cloned() else {
                continue;
            };
            let held = self
                .held
                .get_mut(&room)
                .map(std::mem::take)
                .unwrap_or_default();
            self.repairing.insert(room.clone());
            let (conn, me) = (conn.clone(), self.id.clone());
            self.jobs.push(Box::pin(async move {
                let listed = members.clone();
                let (roster, unsent) =
                    repair_room(conn, room.clone(), me, members, forget, held).await;
                Done::Repaired {
                    room,
                    fault: fault || roster.is_err(),
                    members: listed,
                    roster,
                    unsent,
                }
            }));
        }
    }

    pub(super) async fn on_done(&mut self, conn: &mut Conn, done: Done) {
        match done {
            Done::Published { ok: true, .. } => {
                self.stats.published.fetch_add(1, Relaxed);
            }
            Done::Published {
                room,
                envelope,
                ok: false,
            } => {
                let _ = self.room_failed(&room, timed_out());
                let held = match (envelope, self.held.get_mut(&room)) {
                    (Some((seq, e)), Some(queue)) => hold(queue, seq, e),
                    _ => false,
                };
                if !held {
                    self.stats.dropped.fetch_add(1, Relaxed);
                }
                // At once, not at the next tick: a room whose shard is fine
                // (the error was a passing one) is back within a round trip.
                self.start_repairs(conn);
            }
            Done::Repaired {
                room,
                fault,
                members,
                roster,
                mut unsent,
            } => {
                self.repairing.remove(&room);
                self.after_repair(conn, &room, members);
                if !self.local.contains_key(&room) {
                    return; // left meanwhile: said farewell above
                }
                match roster {
                    Ok(fresh) => {
                        if fault {
                            self.stats.record_repair(&room);
                        }
                        self.apply_roster(&room, fresh, Reload::Merge).await;
                        // Held while the repair ran: sent in order now.
                        if let Some(queue) = self.held.remove(&room) {
                            for (_, envelope) in queue {
                                let _ = self.publish(conn, &room, envelope, true).await;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = self.room_failed(&room, e);
                        if let Some(queue) = self.held.get_mut(&room) {
                            for (seq, e) in queue.drain(..) {
                                hold(&mut unsent, seq, e);
                            }
                            *queue = unsent;
                        }
                    }
                }
                // The next one now, not at the next tick.
                self.start_repairs(conn);
            }
            Done::Farewell { room, forget, ok } => {
                if !ok && !self.local.contains_key(&room) {
                    // Tried again at the next tick (bounded like held rooms).
                    if self.farewells.len() < MAX_HELD_PER_ROOM {
                        self.farewells.push((room, forget));
                    }
                }
            }
            Done::Swept(checks) => {
                // Cluster mode: its removals are best effort, never an error.
                let _ = self.apply_sweep(conn, checks).await;
            }
            Done::Departed { departure, ok } => {
                if !ok {
                    let (room, peer, reason) = departure;
                    self.remember_departure(room, peer, reason);
                }
            }
        }
    }

    /// Our members changed while a repair ran (it registered and listed
    /// `members`): a room we left gets a farewell; a room whose members
    /// changed gets another repair, which also removes the leavers the
    /// first one may have registered again.
    fn after_repair(&mut self, conn: &Conn, room: &str, members: HashSet<PeerId>) {
        match self.local.get(room) {
            None => {
                let job = farewell_room(conn.clone(), room.to_string(), self.id.clone(), members);
                self.jobs.push(Box::pin(job));
            }
            Some(now) if *now != members => {
                let left: HashSet<PeerId> = members.difference(now).copied().collect();
                self.to_forget
                    .entry(room.to_string())
                    .or_default()
                    .extend(left);
                self.to_repair.entry(room.to_string()).or_insert(false);
            }
            Some(_) => {}
        }
    }

    /// Cluster mode: farewells that failed, tried again.
    pub(super) fn retry_farewells(&mut self, conn: &Conn) {
        for (room, forget) in std::mem::take(&mut self.farewells) {
            if self.local.contains_key(&room) {
                continue; // back: its own repair lists who is here
            }
            let job = farewell_room(conn.clone(), room, self.id.clone(), forget);
            self.jobs.push(Box::pin(job));
        }
    }
}
