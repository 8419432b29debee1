//! Cluster mode: the jobs that run beside the bus task (publishes,
//! repairs, sweeps) and what their outcomes change. A room whose shard
//! failed is repaired on the shard's new master: re-subscribed,
//! re-registered, re-synced, then its held messages are sent in order.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use redis::{AsyncCommands, RedisResult};

use super::link::Conn;
use super::task::{
    fetch_roster, sync_envelope, sync_request, timed_out, Reload, Task, INLINE_TIMEOUT,
    MAX_HELD_PER_ROOM,
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
        /// The message again if it was reliable: held for the repair.
        envelope: Option<String>,
        ok: bool,
    },
    Repaired {
        room: String,
        fault: bool,
        /// The room's live remote members from its roster, or the error.
        roster: RedisResult<HashMap<PeerId, String>>,
        /// Held messages the repair did not get to send.
        unsent: VecDeque<String>,
    },
    /// Liveness of remote relays: `None` where the check itself failed.
    Swept(Vec<(String, Option<bool>)>),
    Departed {
        departure: (String, PeerId, LeaveReason),
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
    mut held: VecDeque<String>,
) -> (RedisResult<HashMap<PeerId, String>>, VecDeque<String>) {
    let work = async {
        conn.ssubscribe(channel(&room)).await?;
        for peer in &members {
            conn.hset::<_, _, _, ()>(roster(&room), peer.to_string(), &me)
                .await?;
        }
        for envelope in [sync_envelope(&me, Some(&members)), sync_request(&me)] {
            conn.publish_cmd(channel(&room), envelope)
                .query_async::<i64>(&mut conn.clone())
                .await?;
        }
        let roster = fetch_roster(&mut conn, &room, &me).await?;
        while let Some(envelope) = held.front() {
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

impl Task {
    /// Cluster mode: starts the repairs due, at most [`MAX_REPAIRS`] at once.
    pub(super) fn start_repairs(&mut self, conn: &Conn) {
        // Failed rooms are always due.
        for room in self.held.keys() {
            self.to_repair.entry(room.clone()).or_insert(true);
        }
        let due: Vec<(String, bool)> = self
            .to_repair
            .iter()
            .filter(|(room, _)| !self.repairing.contains(*room))
            .take(MAX_REPAIRS.saturating_sub(self.repairing.len()))
            .map(|(room, fault)| (room.clone(), *fault))
            .collect();
        for (room, fault) in due {
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
                let (roster, unsent) = repair_room(conn, room.clone(), me, members, held).await;
                Done::Repaired {
                    room,
                    fault: fault || roster.is_err(),
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
                match (envelope, self.held.get_mut(&room)) {
                    (Some(e), Some(queue)) if queue.len() < MAX_HELD_PER_ROOM => queue.push_back(e),
                    _ => {
                        self.stats.dropped.fetch_add(1, Relaxed);
                    }
                }
                // At once, not at the next tick: a room whose shard is fine
                // (the error was a passing one) is back within a round trip.
                self.start_repairs(conn);
            }
            Done::Repaired {
                room,
                fault,
                roster,
                mut unsent,
            } => {
                self.repairing.remove(&room);
                if !self.local.contains_key(&room) {
                    return; // left meanwhile
                }
                match roster {
                    Ok(fresh) => {
                        if fault {
                            self.stats.record_repair(&room);
                        }
                        self.apply_roster(&room, fresh, Reload::Merge).await;
                        // Held while the repair ran: sent in order now.
                        if let Some(queue) = self.held.remove(&room) {
                            for envelope in queue {
                                let _ = self.publish(conn, &room, envelope, true).await;
                            }
                        }
                    }
                    Err(e) => {
                        let _ = self.room_failed(&room, e);
                        if let Some(queue) = self.held.get_mut(&room) {
                            unsent.extend(queue.drain(..));
                            unsent.truncate(MAX_HELD_PER_ROOM);
                            *queue = unsent;
                        }
                    }
                }
            }
            Done::Swept(checks) => self.apply_sweep(conn, checks).await,
            Done::Departed { departure, ok } => {
                if !ok {
                    let (room, peer, reason) = departure;
                    self.remember_departure(room, peer, reason);
                }
            }
        }
    }
}
