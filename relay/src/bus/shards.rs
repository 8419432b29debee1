//! Cluster mode: which shard owns which slots, whether each master
//! answers, and how often rooms on it were repaired (for `/metrics`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use redis::Value;

use super::BusStats;

/// One shard as this relay sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardState {
    /// Its slot range, `first-last`: stable across failovers.
    pub slots: (u16, u16),
    /// Its master now, `host:port`.
    pub master: String,
    /// The master answered the last ping.
    pub up: bool,
    /// Rooms on this shard re-subscribed and re-synced after a fault.
    pub repairs: u64,
}

const WATCH_EVERY: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_millis(500);

/// The cluster slot of a room's keys and channel: they all carry the room
/// id as their hash tag, so only the id is hashed (CRC16/XMODEM, as Redis).
pub fn slot_of_room(room: &str) -> u16 {
    super::link::key_slot(super::channel(room).as_bytes())
}

impl BusStats {
    /// The shard that owns the room's slot was found down at the last
    /// watch (false while nothing is known).
    pub(super) fn room_shard_down(&self, room: &str) -> bool {
        let slot = slot_of_room(room);
        let shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        shards
            .iter()
            .find(|s| (s.slots.0..=s.slots.1).contains(&slot))
            .is_some_and(|s| !s.up)
    }

    /// Counts a room's repair, on the shard that owns it.
    pub(super) fn record_repair(&self, room: &str) {
        self.repairs.fetch_add(1, Relaxed);
        let slot = slot_of_room(room);
        let mut shards = self.shards.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = shards
            .iter_mut()
            .find(|s| (s.slots.0..=s.slots.1).contains(&slot))
        {
            s.repairs += 1;
        }
    }
}

/// Reads the slot map and pings every master, once a second, until aborted.
/// Its own plain connection per node, not the bus's cluster connections: a
/// ping to a dead master must stall nothing else (and nothing else's stall
/// may make a live master look down).
pub(super) async fn watch(seeds: Vec<String>, masters: Vec<String>, stats: Arc<BusStats>) {
    let mut nodes: HashMap<String, redis::aio::MultiplexedConnection> = HashMap::new();
    let mut known = masters;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    loop {
        tick.tick().await;
        // The slot map from the first node that answers.
        let mut seen = None;
        for addr in known.iter().chain(&seeds) {
            let cmd = redis::cmd("CLUSTER").arg("SLOTS").clone();
            if let Some(Value::Array(v)) = ask(&mut nodes, addr, cmd).await {
                seen = Some(parse_slots(&Value::Array(v)));
                break;
            }
        }
        let Some(mut seen) = seen else {
            mark_all_down(&stats);
            continue;
        };
        for shard in &mut seen {
            shard.up = ask(&mut nodes, &shard.master, redis::cmd("PING").clone())
                .await
                .is_some();
        }
        known = seen.iter().map(|s| s.master.clone()).collect();
        known.dedup();
        let mut shards = stats.shards.lock().unwrap_or_else(|e| e.into_inner());
        for shard in &mut seen {
            if let Some(old) = shards.iter().find(|s| s.slots == shard.slots) {
                shard.repairs = old.repairs;
            }
        }
        *shards = seen;
    }
}

fn mark_all_down(stats: &BusStats) {
    let mut shards = stats.shards.lock().unwrap_or_else(|e| e.into_inner());
    for shard in shards.iter_mut() {
        shard.up = false;
    }
}

/// One command to one node, bounded in time; a node that fails is
/// reconnected next time.
async fn ask(
    nodes: &mut HashMap<String, redis::aio::MultiplexedConnection>,
    addr: &str,
    cmd: redis::Cmd,
) -> Option<Value> {
    let work = async {
        if !nodes.contains_key(addr) {
            let client = redis::Client::open(format!("redis://{addr}")).ok()?;
            let conn = client.get_multiplexed_async_connection().await.ok()?;
            nodes.insert(addr.to_string(), conn);
        }
        let conn = nodes.get_mut(addr)?;
        cmd.query_async::<Value>(conn).await.ok()
    };
    let answer = tokio::time::timeout(PING_TIMEOUT, work)
        .await
        .ok()
        .flatten();
    if answer.is_none() {
        nodes.remove(addr);
    }
    answer
}

/// `CLUSTER SLOTS`: `[[first, last, [host, port, id, …], replicas…], …]`.
pub(super) fn parse_slots(value: &Value) -> Vec<ShardState> {
    let Value::Array(ranges) = value else {
        return Vec::new();
    };
    let mut shards: Vec<ShardState> = ranges
        .iter()
        .filter_map(|range| {
            let Value::Array(fields) = range else {
                return None;
            };
            let (Some(Value::Int(first)), Some(Value::Int(last)), Some(Value::Array(master))) =
                (fields.first(), fields.get(1), fields.get(2))
            else {
                return None;
            };
            let host = match master.first()? {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = master.get(1) else {
                return None;
            };
            Some(ShardState {
                slots: (u16::try_from(*first).ok()?, u16::try_from(*last).ok()?),
                master: format!("{host}:{port}"),
                up: false,
                repairs: 0,
            })
        })
        .collect();
    shards.sort_by_key(|s| s.slots);
    shards
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_hash_like_redis_hash_tags() {
        // Known slots (redis-cli CLUSTER KEYSLOT): "foo" → 12182, "bar" → 5061.
        assert_eq!(slot_of_room("foo"), 12182);
        assert_eq!(slot_of_room("bar"), 5061);
        use super::super::link::key_slot;
        assert_eq!(key_slot(b"sf:roster:{foo}"), 12182);
        assert_eq!(key_slot(b"foo"), 12182);
        // An empty tag hashes the whole key, as Redis does.
        assert_eq!(key_slot(b"{}foo"), key_slot(b"{}foo"));
        assert_ne!(key_slot(b"{}foo"), key_slot(b"foo"));
    }

    #[test]
    fn parses_cluster_slots() {
        let node = |port| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let v = Value::Array(vec![
            Value::Array(vec![
                Value::Int(5461),
                Value::Int(10922),
                node(7001),
                node(7004),
            ]),
            Value::Array(vec![Value::Int(0), Value::Int(5460), node(7000)]),
            Value::Array(vec![Value::Int(1)]),
        ]);
        let shards = parse_slots(&v);
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].slots, (0, 5460));
        assert_eq!(shards[0].master, "127.0.0.1:7000");
        assert_eq!(shards[1].master, "127.0.0.1:7001");
    }
}
