//! Relays sharing rooms through a real Redis Cluster: six `redis-server
//! --cluster-enabled yes` nodes on loopback, three masters with a replica
//! each, made by `redis-cli --cluster create`. Each test starts its own
//! cluster and stops every process it started.
//!
//! These tests need `redis-server` and `redis-cli` (Debian packages
//! `redis-server`, `redis-tools`). With `CI` set they fail when missing;
//! elsewhere they say so and pass.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::procs::*;
use common::*;

/// Short, so a killed master fails over within seconds.
const NODE_TIMEOUT_MS: u64 = 1000;

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = 20000 + (rand::random::<u16>() % 20000);
        let a = std::net::TcpListener::bind(("127.0.0.1", port));
        let b = std::net::TcpListener::bind(("127.0.0.1", port + 10000));
        if a.is_ok() && b.is_ok() {
            return port;
        }
    }
}

/// A master, as `CLUSTER NODES` lists it.
#[derive(Clone, Debug)]
struct Master {
    port: u16,
    id: String,
    slots: Vec<(u16, u16)>,
}

struct Cluster {
    ports: Vec<u16>,
    nodes: Vec<Option<Proc>>,
    dir: PathBuf,
}

impl Cluster {
    /// Six nodes, three masters with a replica each, every slot covered;
    /// `None` (and a note) when redis-server isn't installed outside CI.
    fn start() -> Option<Cluster> {
        let dir = std::env::temp_dir().join(format!(
            "sf-redis-cluster-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Cluster {
            ports: Vec::new(),
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = cluster_port();
            let spawned = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
                .args(["--dir", cluster.dir.to_str().unwrap()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            match spawned {
                Ok(child) => {
                    wait_port(port);
                    cluster.ports.push(port);
                    cluster.nodes.push(Some(Proc(child)));
                }
                Err(e) if std::env::var_os("CI").is_some() => {
                    panic!("redis-server is required in CI (scripts/install-deps installs it): {e}")
                }
                Err(e) => {
                    eprintln!("SKIPPED: redis-server not available ({e}); install the Debian package redis-server");
                    return None;
                }
            }
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli (Debian package redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        Some(cluster)
    }

    fn seeds(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn live_port(&self) -> u16 {
        self.ports
            .iter()
            .zip(&self.nodes)
            .find(|(_, n)| n.is_some())
            .map(|(p, _)| *p)
            .unwrap()
    }

    /// Live masters with their slots, from a live node's view.
    fn masters(&self) -> Vec<Master> {
        let nodes = redis_cli(self.live_port(), &["CLUSTER", "NODES"]);
        nodes
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() < 8 || !f[2].contains("master") || f[2].contains("fail") {
                    return None;
                }
                let port = f[1].split(['@', ':']).nth(1)?.parse().ok()?;
                let slots = f[8..]
                    .iter()
                    .filter(|s| !s.starts_with('['))
                    .filter_map(|s| {
                        let (a, b) = s.split_once('-').unwrap_or((s, s));
                        Some((a.parse().ok()?, b.parse().ok()?))
                    })
                    .collect();
                Some(Master {
                    port,
                    id: f[0].to_string(),
                    slots,
                })
            })
            .filter(|m: &Master| !m.slots.is_empty())
            .collect()
    }

    fn master_of(&self, slot: u16) -> Master {
        self.masters()
            .into_iter()
            .find(|m| m.slots.iter().any(|(a, b)| (*a..=*b).contains(&slot)))
            .unwrap_or_else(|| panic!("no live master for slot {slot}"))
    }

    /// Every live node says `cluster_state:ok` and three masters cover
    /// every slot.
    fn wait_healthy(&self, within: Duration) {
        let end = Instant::now() + within;
        loop {
            let ok = self.ports.iter().zip(&self.nodes).all(|(p, n)| {
                n.is_none() || redis_cli(*p, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
            });
            let covered: u32 = self
                .masters()
                .iter()
                .flat_map(|m| m.slots.iter().map(|(a, b)| u32::from(b - a) + 1))
                .sum();
            if ok && covered == 16384 && self.masters().len() == 3 {
                return;
            }
            assert!(
                Instant::now() < end,
                "cluster not healthy within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILL: no goodbye to the cluster or to anyone connected.
    fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).unwrap();
        self.nodes[i] = None;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn relay(seeds: &str, ttl: &str) -> (Proc, String, u16) {
    relay_with(seeds, ttl, &[])
}

fn relay_with(seeds: &str, ttl: &str, extra: &[&str]) -> (Proc, String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .args(["relay", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis-cluster", seeds])
        .args(["--redis-presence-ttl", ttl])
        .args(extra)
        .env(
            "RUST_LOG",
            std::env::var("SF_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(match std::env::var("SF_RELAY_LOG_DIR") {
            Ok(dir) => {
                Stdio::from(std::fs::File::create(format!("{dir}/relay-{port}.log")).unwrap())
            }
            Err(_) => Stdio::null(),
        })
        .spawn()
        .unwrap();
    wait_port(port);
    (Proc(child), format!("ws://127.0.0.1:{port}"), port)
}

/// An invite whose room's slot is served by `master`.
fn invite_on(cluster: &Cluster, master: &Master) -> String {
    loop {
        let invite = fresh_invite();
        let (parsed, _) = streamflow::invite::Invite::parse(&invite).unwrap();
        let slot = streamflow_relay::bus::slot_of_room(parsed.room());
        if cluster.master_of(slot).id == master.id {
            return invite;
        }
    }
}

fn room_of(invite: &str) -> String {
    let (parsed, _) = streamflow::invite::Invite::parse(invite).unwrap();
    parsed.room().to_string()
}

/// The room's roster in the cluster (`redis-cli -c` follows MOVED).
fn roster(cluster: &Cluster, room: &str) -> HashSet<String> {
    let out = redis_cli(
        cluster.live_port(),
        &["-c", "HKEYS", &format!("sf:roster:{{{room}}}")],
    );
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn verified_all(clients: &[&Client], within: Duration) {
    let n = clients.len() - 1;
    for c in clients {
        c.wait_for(within, |_| c.of_type("peer_verified").len() >= n)
            .unwrap_or_else(|| {
                panic!(
                    "{:?} verified {} of {n}: {}",
                    c.my_id(),
                    c.of_type("peer_verified").len(),
                    c.stderr.lock().unwrap()
                )
            });
    }
}

/// Frames from `peer` read by `c` in `[from, to)`, as read instants.
fn frame_times(c: &Client, peer: &str, from: Instant, to: Instant) -> Vec<Instant> {
    c.events
        .lock()
        .unwrap()
        .iter()
        .filter(|(at, v)| *at >= from && *at < to && v["type"] == "frame" && v["from"] == peer)
        .map(|(at, _)| *at)
        .collect()
}

fn longest_gap(times: &[Instant], from: Instant, to: Instant) -> Duration {
    let mut edges = vec![from];
    edges.extend_from_slice(times);
    edges.push(to);
    edges
        .windows(2)
        .map(|w| w[1].saturating_duration_since(w[0]))
        .max()
        .unwrap_or_default()
}

fn chats(c: &Client, text: &str) -> usize {
    c.of_type("chat")
        .iter()
        .filter(|m| m["text"] == text)
        .count()
}

/// Members on three relays, in rooms on two different shards, hear each
/// other as on one relay; each relay shows every shard up in /metrics; a
/// killed relay's members leave everyone's roster within the presence TTL;
/// with the whole cluster gone, a relay still serves its own members.
#[test]
fn relays_share_rooms_over_a_cluster_and_a_killed_relays_members_leave() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let seeds = cluster.seeds();
    let (_r1, url1, port1) = relay(&seeds, "3s");
    let (_r2, url2, _) = relay(&seeds, "3s");
    let (r3, url3, _) = relay(&seeds, "3s");
    let masters = cluster.masters();
    let rooms = [
        invite_on(&cluster, &masters[0]),
        invite_on(&cluster, &masters[1]),
    ];
    let mut members: Vec<Vec<Client>> = Vec::new();
    for (r, invite) in rooms.iter().enumerate() {
        // Room 0 has a second member on relay 1, for the end.
        let urls: &[&String] = if r == 0 {
            &[&url1, &url2, &url3, &url1]
        } else {
            &[&url1, &url2, &url3]
        };
        let clients = urls
            .iter()
            .enumerate()
            .map(|(i, url)| Client::spawn(invite, url, &format!("R{r}M{i}"), &["--duration", "60"]))
            .collect();
        members.push(clients);
    }
    for room in &members {
        verified_all(&room.iter().collect::<Vec<_>>(), Duration::from_secs(40));
    }
    for (r, room) in members.iter_mut().enumerate() {
        for (i, c) in room.iter_mut().enumerate() {
            c.command(&format!(r#"{{"type":"chat","text":"hello {r}{i}"}}"#));
        }
    }
    // Media and chat both ways, across relays, in both rooms.
    std::thread::sleep(Duration::from_secs(3));
    for (r, room) in members.iter().enumerate() {
        let ids: Vec<String> = room.iter().map(|c| c.my_id().unwrap()).collect();
        for (i, c) in room.iter().enumerate() {
            for (j, id) in ids.iter().enumerate() {
                if i == j {
                    continue;
                }
                let frames = c
                    .of_type("frame")
                    .iter()
                    .filter(|f| f["from"] == id.as_str())
                    .count();
                assert!(
                    frames > 20,
                    "room {r}: member {i} got {frames} frames from {j}"
                );
                c.wait_for(Duration::from_secs(10), |e| {
                    e["type"] == "chat" && e["text"] == format!("hello {r}{j}")
                })
                .unwrap_or_else(|| panic!("room {r}: member {i} missed {j}'s chat"));
            }
        }
        assert_eq!(
            roster(&cluster, &room_of(&rooms[r])),
            ids.iter().cloned().collect::<HashSet<_>>(),
            "room {r}'s roster in the cluster"
        );
    }
    let m = metrics_page(port1);
    let up = m
        .lines()
        .filter(|l| l.starts_with("streamflow_relay_redis_shard_up{") && l.ends_with(" 1"))
        .count();
    assert_eq!(up, 3, "every shard up in /metrics:\n{m}");
    // Relay 3 dies: its members leave both rooms for everyone else.
    let gone: Vec<String> = members
        .iter()
        .map(|room| room[2].my_id().unwrap())
        .collect();
    drop(r3);
    let killed = Instant::now();
    for (r, room) in members.iter().enumerate() {
        for c in room
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, c)| c)
        {
            c.wait_for(Duration::from_secs(12), |e| {
                e["type"] == "peer_left" && e["peer"] == gone[r].as_str()
            })
            .unwrap_or_else(|| panic!("room {r}: relay 3's member never left"));
        }
    }
    eprintln!(
        "killed relay's members announced after {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    // And out of the rosters: nothing of the dead relay is left behind
    // (its members may be back through another relay, under their ids).
    std::thread::sleep(Duration::from_secs(1));
    for (r, invite) in rooms.iter().enumerate() {
        let ids: HashSet<String> = members[r].iter().filter_map(|c| c.my_id()).collect();
        let listed = roster(&cluster, &room_of(invite));
        assert!(listed.is_subset(&ids), "room {r} roster {listed:?}");
    }
    // The whole cluster gone: a relay still serves its own members.
    drop(cluster);
    std::thread::sleep(Duration::from_secs(1));
    let since = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let (a, b) = (&members[0][0], &members[0][3]);
    for (c, from) in [(a, b.my_id().unwrap()), (b, a.my_id().unwrap())] {
        let n = frame_times(c, &from, since, Instant::now()).len();
        assert!(
            n > 10,
            "without the cluster, relay 1's members hear each other: {n} frames"
        );
    }
}

/// The master of one room's shard is killed mid-call: that room's call
/// resumes once its replica takes over, chat typed meanwhile arrives once,
/// someone joining meanwhile gets in, the roster converges without ghosts;
/// a room on another shard sees no gap at all.
#[test]
fn a_masters_failover_pauses_only_its_own_rooms() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let seeds = cluster.seeds();
    // A presence TTL well over a failover: a relay whose liveness key sits
    // on the failing shard must not be taken for dead.
    let (_r1, url1, port1) = relay(&seeds, "12s");
    let (_r2, url2, port2) = relay(&seeds, "12s");
    let masters = cluster.masters();
    let (doomed, spared) = (&masters[0], &masters[1]);
    let invites = [invite_on(&cluster, doomed), invite_on(&cluster, spared)];
    let rooms: Vec<[Client; 2]> = invites
        .iter()
        .enumerate()
        .map(|(r, invite)| {
            let flags = ["--duration", "60"];
            [
                Client::spawn(invite, &url1, &format!("F{r}a"), &flags),
                Client::spawn(invite, &url2, &format!("F{r}b"), &flags),
            ]
        })
        .collect();
    for room in &rooms {
        verified_all(&room.iter().collect::<Vec<_>>(), Duration::from_secs(40));
    }
    std::thread::sleep(Duration::from_secs(3));
    let ids: Vec<[String; 2]> = rooms
        .iter()
        .map(|r| [r[0].my_id().unwrap(), r[1].my_id().unwrap()])
        .collect();
    let before = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    cluster.kill(doomed.port);
    let killed = Instant::now();
    // Typed during the failover, on both rooms.
    let mut rooms = rooms;
    std::thread::sleep(Duration::from_millis(300));
    rooms[0][0].command(r#"{"type":"chat","text":"during failover"}"#);
    rooms[1][0].command(r#"{"type":"chat","text":"beside the failover"}"#);
    // Someone joins the doomed room while its shard is still down (the
    // relays' shard watch has seen it by now): the join must not hold up
    // the other shard's rooms, and the newcomer gets in once it's back.
    std::thread::sleep(Duration::from_millis(1300));
    let late = Client::spawn(&invites[0], &url1, "F0late", &["--duration", "60"]);
    let deadline = Duration::from_millis(2 * (NODE_TIMEOUT_MS + 2000));
    // The doomed room's media comes back, both ways: the end of its
    // longest pause since the kill.
    let end = killed + deadline + Duration::from_secs(10);
    let mut resumed = Vec::new();
    for (c, from) in [(&rooms[0][1], &ids[0][0]), (&rooms[0][0], &ids[0][1])] {
        let back = loop {
            let now = Instant::now();
            let mut edges = vec![killed];
            edges.extend(frame_times(c, from, killed, now));
            let pause = edges
                .windows(2)
                .max_by_key(|w| w[1] - w[0])
                .map(|w| w[1])
                .unwrap_or(killed);
            // Back, and flowing for a while since.
            if frame_times(c, from, pause, now).len() > 20 {
                break pause;
            }
            assert!(now < end, "the doomed room's media never came back");
            std::thread::sleep(Duration::from_millis(100));
        };
        resumed.push(back.saturating_duration_since(killed));
    }
    cluster.wait_healthy(Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let after = Instant::now();
    eprintln!(
        "failover: the doomed room's media back after {:?} (node timeout {NODE_TIMEOUT_MS} ms)",
        resumed
    );
    for r in &resumed {
        assert!(
            *r <= deadline,
            "media resumed after {r:?}, over {deadline:?}"
        );
    }
    for (c, from) in [(&rooms[0][1], &ids[0][0]), (&rooms[0][0], &ids[0][1])] {
        let times = frame_times(c, from, before, after);
        eprintln!(
            "doomed room's longest gap: {:?}",
            longest_gap(&times, before, after)
        );
    }
    // The spared room: no gap beyond jitter, both ways.
    for (c, from) in [(&rooms[1][1], &ids[1][0]), (&rooms[1][0], &ids[1][1])] {
        let times = frame_times(c, from, before, after);
        let gap = longest_gap(&times, before, after);
        eprintln!("spared room's longest gap: {gap:?}");
        assert!(
            gap < Duration::from_millis(1000),
            "a room on another shard paused {gap:?}"
        );
    }
    // Chat typed meanwhile: exactly once.
    for (c, text) in [
        (&rooms[0][1], "during failover"),
        (&rooms[1][1], "beside the failover"),
    ] {
        c.wait_for(Duration::from_secs(10), |e| {
            e["type"] == "chat" && e["text"] == text
        })
        .unwrap_or_else(|| panic!("chat {text:?} lost"));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(chats(c, text), 1, "chat {text:?} delivered once");
    }
    verified_all(
        &[&rooms[0][0], &rooms[0][1], &late],
        Duration::from_secs(40),
    );
    let late_id = late.my_id().unwrap();
    // Nobody left, and each room's roster lists exactly its members.
    for (r, room) in rooms.iter().enumerate() {
        for c in room {
            assert!(
                c.of_type("peer_left").is_empty(),
                "room {r}: {:?}",
                c.of_type("peer_left")
            );
        }
        let mut expected: HashSet<String> = ids[r].iter().cloned().collect();
        if r == 0 {
            expected.insert(late_id.clone());
        }
        let end = Instant::now() + Duration::from_secs(10);
        while roster(&cluster, &room_of(&invites[r])) != expected {
            assert!(Instant::now() < end, "room {r}'s roster never converged");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    // /metrics: the doomed shard's slots are served again, by its replica.
    let (first, last) = doomed.slots[0];
    let label = format!("streamflow_relay_redis_shard_up{{slots=\"{first}-{last}\",master=");
    for port in [port1, port2] {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let m = metrics_page(port);
            let line = m
                .lines()
                .find(|l| l.starts_with(&label))
                .map(str::to_string);
            let served = line
                .as_deref()
                .is_some_and(|l| l.ends_with(" 1") && !l.contains(&format!(":{}\"", doomed.port)));
            if served {
                break;
            }
            assert!(
                Instant::now() < end,
                "shard {first}-{last} in /metrics: {line:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A room's slot moves to another master (`CLUSTER SETSLOT` by hand, its
/// keys with `MIGRATE`) while the call runs: the call goes on.
#[test]
fn resharding_a_rooms_slot_keeps_the_call() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let seeds = cluster.seeds();
    let (_r1, url1, _) = relay(&seeds, "12s");
    let (_r2, url2, _) = relay(&seeds, "12s");
    let masters = cluster.masters();
    let (from, to) = (&masters[0], &masters[1]);
    let invite = invite_on(&cluster, from);
    let room = room_of(&invite);
    let slot = streamflow_relay::bus::slot_of_room(&room);
    let mut a = Client::spawn(&invite, &url1, "MoveA", &["--duration", "60"]);
    let b = Client::spawn(&invite, &url2, "MoveB", &["--duration", "60"]);
    verified_all(&[&a, &b], Duration::from_secs(40));
    let (id_a, id_b) = (a.my_id().unwrap(), b.my_id().unwrap());
    std::thread::sleep(Duration::from_secs(2));
    // The documented manual resharding of one slot.
    let slot_s = slot.to_string();
    redis_cli(
        to.port,
        &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from.id],
    );
    redis_cli(
        from.port,
        &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to.id],
    );
    let keys = redis_cli(from.port, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]);
    let keys: Vec<&str> = keys
        .lines()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    assert!(!keys.is_empty(), "the room's roster lives in its slot");
    let mut migrate = vec!["MIGRATE", "127.0.0.1"];
    let to_port = to.port.to_string();
    migrate.extend([to_port.as_str(), "", "0", "5000", "KEYS"]);
    migrate.extend(keys.iter().copied());
    let out = redis_cli(from.port, &migrate);
    assert!(out.contains("OK"), "MIGRATE: {out}");
    for m in &masters {
        redis_cli(m.port, &["CLUSTER", "SETSLOT", &slot_s, "NODE", &to.id]);
    }
    let moved = Instant::now();
    assert_eq!(cluster.master_of(slot).id, to.id, "the slot moved");
    std::thread::sleep(Duration::from_millis(500));
    a.command(r#"{"type":"chat","text":"after the move"}"#);
    b.wait_for(Duration::from_secs(10), |e| {
        e["type"] == "chat" && e["text"] == "after the move"
    })
    .expect("chat after the move");
    std::thread::sleep(Duration::from_secs(4));
    let now = Instant::now();
    for (c, from_id) in [(&b, &id_a), (&a, &id_b)] {
        let times = frame_times(c, from_id, moved, now);
        let gap = longest_gap(&times, moved, now);
        eprintln!("resharding: longest gap {gap:?}");
        assert!(
            gap < Duration::from_millis(NODE_TIMEOUT_MS + 2000),
            "the call paused {gap:?} after the move"
        );
    }
    assert_eq!(chats(&b, "after the move"), 1);
    assert!(a.of_type("peer_left").is_empty() && b.of_type("peer_left").is_empty());
    assert_eq!(
        roster(&cluster, &room),
        HashSet::from([id_a.clone(), id_b.clone()])
    );
}

/// Refused joins (`too_many_rooms`, and `room_full` caused by members on
/// another relay) leave nothing behind in the cluster: no shard channel
/// subscribed, no roster entry.
#[test]
fn refused_joins_leave_nothing_behind_in_the_cluster() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let seeds = cluster.seeds();
    let (_a, url_a, _) = relay_with(&seeds, "9s", &bare::REFUSING_RELAY);
    let (_b, url_b, _) = relay(&seeds, "9s");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _members = rt.block_on(bare::refused_joins(&url_a, &url_b, 50));
    std::thread::sleep(Duration::from_millis(500));
    // Every shard's channels, and who listens to room "full".
    let mut channels: Vec<String> = Vec::new();
    for m in cluster.masters() {
        let listed = redis_cli(m.port, &["PUBSUB", "SHARDCHANNELS", "sf:room:*"]);
        channels.extend(listed.split_whitespace().map(str::to_string));
    }
    channels.sort();
    assert_eq!(
        channels,
        ["sf:room:{full}", "sf:room:{keep}", "sf:room:{other}"]
    );
    let full = cluster.master_of(streamflow_relay::bus::slot_of_room("full"));
    let numsub = redis_cli(full.port, &["PUBSUB", "SHARDNUMSUB", "sf:room:{full}"]);
    assert_eq!(
        numsub.split_whitespace().nth(1),
        Some("1"),
        "only relay B: {numsub}"
    );
    for i in 0..50 {
        assert!(roster(&cluster, &format!("extra{i}")).is_empty());
    }
    assert_eq!(roster(&cluster, "full").len(), 2);
}
