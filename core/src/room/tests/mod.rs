//! Scripted rooms: an in-memory relay routes what each [`Room`] sends, with a
//! fake clock. No network, no sleeps.

use std::collections::VecDeque;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::crypto::sign::SigningIdentity;

enum Delivery {
    Welcome(Vec<String>),
    Joined(String),
    Left(String),
    Blob { from: String, data: Vec<u8> },
}

struct Member {
    id: String,
    room: Room,
    events: Vec<Event>,
    present: bool,
}

pub(super) struct Net {
    members: Vec<Member>,
    queue: VecDeque<(String, Delivery)>,
    /// Everything the relay forwarded (for "the relay learns nothing" checks).
    relay_saw: Vec<Vec<u8>>,
    /// Who sent what, in order.
    sent: Vec<(String, Vec<u8>)>,
    /// Messages on their way to the relay (when it isn't instant).
    in_flight: VecDeque<(String, Option<String>, Vec<u8>)>,
    lagged: bool,
    now: Instant,
    start: Instant,
    seed: u64,
}

fn psk(secret: &str) -> Key32 {
    crate::crypto::kdf::derive_psk(
        "testroom",
        secret,
        crate::crypto::kdf::KdfParams::INSECURE_FAST,
    )
    .unwrap()
}

/// A room of our own, driven by hand (no `Net`).
pub(super) fn lone_room(name: &str, secret: &str, seed: u64, now: Instant) -> Room {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let signing = Arc::new(SigningIdentity::generate(&mut rng));
    Room::new(
        "testroom",
        psk(secret),
        name,
        Timings::default(),
        Box::new(rng),
        signing,
        now,
    )
}

impl Net {
    pub(super) fn new() -> Self {
        let now = Instant::now();
        Net {
            members: Vec::new(),
            queue: VecDeque::new(),
            relay_saw: Vec::new(),
            sent: Vec::new(),
            in_flight: VecDeque::new(),
            lagged: false,
            now,
            start: now,
            seed: 1,
        }
    }

    fn ts(&self) -> u64 {
        self.now.duration_since(self.start).as_micros() as u64
    }

    fn idx(&self, id: &str) -> usize {
        self.members.iter().position(|m| m.id == id).unwrap()
    }

    /// Adds a member; it gets `welcome` and the others `peer_joined`, all
    /// queued (not yet delivered) so joins can interleave.
    pub(super) fn join(&mut self, name: &str, secret: &str) -> String {
        self.seed += 1;
        let id = format!("peer{}", self.members.len());
        let mut rng = ChaCha20Rng::seed_from_u64(self.seed);
        let signing = Arc::new(SigningIdentity::generate(&mut rng));
        let room = Room::new(
            "testroom",
            psk(secret),
            name,
            Timings::default(),
            Box::new(rng),
            signing,
            self.now,
        );
        let present: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.present)
            .map(|m| m.id.clone())
            .collect();
        for p in &present {
            self.queue
                .push_back((p.clone(), Delivery::Joined(id.clone())));
        }
        self.queue
            .push_back((id.clone(), Delivery::Welcome(present)));
        self.members.push(Member {
            id: id.clone(),
            room,
            events: Vec::new(),
            present: true,
        });
        id
    }

    /// Two members join at once through two relays: neither is in the
    /// other's welcome (its relay hadn't heard of the other yet), and each
    /// learns of the other only from `peer_joined` after its welcome.
    pub(super) fn join_across_relays(
        &mut self,
        a: &str,
        b: &str,
        secret: &str,
    ) -> (String, String) {
        let a = self.join(a, secret);
        let b = self.join(b, secret);
        for (who, unseen) in [(&b, &a), (&a, &b)] {
            self.queue
                .retain(|(to, d)| !(to == who && matches!(d, Delivery::Joined(p) if p == unseen)));
            for (to, d) in self.queue.iter_mut() {
                if let (true, Delivery::Welcome(peers)) = (to == who, d) {
                    peers.retain(|p| p != unseen);
                }
            }
            self.queue
                .push_back((who.clone(), Delivery::Joined(unseen.clone())));
        }
        (a, b)
    }

    pub(super) fn leave(&mut self, id: &str) {
        let i = self.idx(id);
        self.members[i].present = false;
        for m in self.members.iter().filter(|m| m.present) {
            self.queue
                .push_back((m.id.clone(), Delivery::Left(id.to_string())));
        }
    }

    fn route(&mut self, from: &str, outputs: Vec<Output>) {
        let i = self.idx(from);
        for o in outputs {
            match o {
                Output::Event(e) => self.members[i].events.push(e),
                Output::Send { to, data, .. } => {
                    if !self.members[i].present {
                        continue;
                    }
                    if self.lagged {
                        self.in_flight.push_back((from.to_string(), to, data));
                    } else {
                        self.forward(from, to, data);
                    }
                }
            }
        }
    }

    /// The relay takes `data` from `from`: to one member, or all others.
    fn forward(&mut self, from: &str, to: Option<String>, data: Vec<u8>) {
        if !self.members[self.idx(from)].present {
            return;
        }
        self.relay_saw.push(data.clone());
        self.sent.push((from.to_string(), data.clone()));
        let targets: Vec<String> = match to {
            Some(t) => vec![t],
            None => self
                .members
                .iter()
                .filter(|m| m.present && m.id != from)
                .map(|m| m.id.clone())
                .collect(),
        };
        for t in targets {
            self.queue.push_back((
                t,
                Delivery::Blob {
                    from: from.to_string(),
                    data: data.clone(),
                },
            ));
        }
    }

    fn step(&mut self) -> bool {
        let Some((to, d)) = self.queue.pop_front() else {
            return false;
        };
        let i = self.idx(&to);
        if !self.members[i].present {
            return true;
        }
        let (now, now_us) = (self.now, self.ts());
        let room = &mut self.members[i].room;
        let out = match d {
            Delivery::Welcome(peers) => room.on_welcome(&to, &peers, 64, now),
            Delivery::Joined(p) => room.on_peer_joined(&p, now),
            Delivery::Left(p) => room.on_peer_left(&p, LeaveReason::Leave, now),
            Delivery::Blob { from, data } => room.on_blob(&from, &data, now, now_us),
        };
        self.route(&to, out);
        true
    }

    /// Delivers everything, as an honest relay may: each sender's messages
    /// reach the relay in order, each receiver reads its own queue in
    /// order (presence included), and everything else interleaves at
    /// random (which sender the relay hears next, which receiver reads
    /// next).
    pub(super) fn settle_interleaved(&mut self, rng: &mut impl rand_chacha::rand_core::RngCore) {
        self.lagged = true;
        let mut n = 0;
        loop {
            let senders: Vec<String> = {
                let mut v: Vec<String> = self.in_flight.iter().map(|(f, ..)| f.clone()).collect();
                v.dedup();
                v
            };
            let receivers: Vec<String> = {
                let mut v: Vec<String> = self.queue.iter().map(|(t, _)| t.clone()).collect();
                v.sort();
                v.dedup();
                v
            };
            if senders.is_empty() && receivers.is_empty() {
                break;
            }
            let pick = rng.next_u32() as usize % (senders.len() + receivers.len());
            if pick < senders.len() {
                // The relay hears this sender's next message.
                let sender = &senders[pick];
                let at = self
                    .in_flight
                    .iter()
                    .position(|(f, ..)| f == sender)
                    .expect("listed");
                let (from, to, data) = self.in_flight.remove(at).expect("in range");
                self.forward(&from, to, data);
            } else {
                // This receiver reads its next message.
                let receiver = &receivers[pick - senders.len()];
                let at = self
                    .queue
                    .iter()
                    .position(|(t, _)| t == receiver)
                    .expect("listed");
                let item = self.queue.remove(at).expect("in range");
                self.queue.push_front(item);
                self.step();
            }
            n += 1;
            assert!(n < 500_000, "message storm");
        }
        self.lagged = false;
        if self
            .members
            .iter()
            .any(|m| m.present && m.room.reveal_pending())
        {
            // Reveals wait out the quiet: let it pass, and go on.
            self.tick_all(crate::room::round::REVEAL_QUIET);
            self.settle_interleaved(rng);
        }
    }

    /// Every member's round and view of its peers (for a failing test).
    pub(super) fn dump(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{} {}", m.id, m.room.debug_summary()))
            .collect()
    }

    /// Delivers everything; then, while a member waits out the quiet
    /// before its reveal, lets that much time pass (ticking everyone) and
    /// delivers again.
    pub(super) fn settle(&mut self) {
        let mut n = 0;
        loop {
            while self.step() {
                n += 1;
                assert!(n < 100_000, "message storm:\n{}", self.last_sent(30));
            }
            if !self
                .members
                .iter()
                .any(|m| m.present && m.room.reveal_pending())
            {
                return;
            }
            self.tick_all(crate::room::round::REVEAL_QUIET);
        }
    }

    /// Moves the clock by `by` and ticks every member once.
    fn tick_all(&mut self, by: Duration) {
        self.now += by;
        let ids: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.present)
            .map(|m| m.id.clone())
            .collect();
        for id in ids {
            let (now, ts) = (self.now, self.ts());
            let i = self.idx(&id);
            let out = self.members[i].room.tick(now, ts);
            self.route(&id, out);
        }
    }

    /// The last `n` messages sent, decoded (for a failing test).
    fn last_sent(&self, n: usize) -> String {
        let from = self.sent.len().saturating_sub(n);
        self.sent[from..]
            .iter()
            .map(|(who, data)| {
                let what = match WireMessage::decode(data) {
                    Ok(WireMessage::Commit {
                        round,
                        commit,
                        seen,
                    }) => format!(
                        "commit r{round} {:02x}{:02x} seen {:02x}{:02x}",
                        commit[0], commit[1], seen[0], seen[1]
                    ),
                    Ok(WireMessage::Hello(h)) => {
                        let c = h.commitment();
                        format!("hello {:02x}{:02x}", c[0], c[1])
                    }
                    Ok(_) => "other".into(),
                    Err(_) => "garbage".into(),
                };
                format!("{who}: {what}\n")
            })
            .collect()
    }

    /// Advances the fake clock in 100 ms ticks, delivering as it goes.
    pub(super) fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.tick_all(Duration::from_millis(100));
            self.settle();
        }
    }

    /// `from` seals a video frame; returns the sealed bytes (as the relay saw).
    fn video(&mut self, from: &str, payload: &[u8]) -> Option<Vec<u8>> {
        let (now, ts) = (self.now, self.ts());
        let i = self.idx(from);
        let out = self.members[i]
            .room
            .seal(Stream::Video, 0, payload, ts, now)?;
        let data = match &out {
            Output::Send { data, .. } => data.clone(),
            _ => unreachable!(),
        };
        self.route(from, vec![out]);
        self.settle();
        Some(data)
    }

    pub(super) fn room(&self, id: &str) -> &Room {
        &self.members[self.idx(id)].room
    }

    pub(super) fn room_mut(&mut self, id: &str) -> &mut Room {
        let i = self.idx(id);
        &mut self.members[i].room
    }

    /// Runs `f` on `id`'s room and routes what it outputs.
    pub(super) fn act(&mut self, id: &str, f: impl FnOnce(&mut Room, Instant) -> Vec<Output>) {
        let now = self.now;
        let out = f(self.room_mut(id), now);
        self.route(id, out);
    }

    fn events(&self, id: &str) -> &[Event] {
        &self.members[self.idx(id)].events
    }

    fn frames_from(&self, id: &str, from: &str) -> Vec<Vec<u8>> {
        self.events(id)
            .iter()
            .filter_map(|e| match e {
                Event::Frame {
                    from: f, payload, ..
                } if f == from => Some(payload.clone()),
                _ => None,
            })
            .collect()
    }

    /// Delivers `data` to `to` as if sent by `from` (a replaying relay).
    fn inject(&mut self, to: &str, from: &str, data: &[u8]) -> Vec<Output> {
        let (now, now_us) = (self.now, self.ts());
        let i = self.idx(to);
        self.members[i].room.on_blob(from, data, now, now_us)
    }
}

fn has(events: &[Event], pred: impl Fn(&Event) -> bool) -> bool {
    events.iter().any(pred)
}

#[test]
fn two_peers_joining_at_the_same_moment_verify_each_other() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let b = net.join("bob", "orbit-velvet-canyon");
    net.settle();
    assert_eq!(net.room(&a).verified_peers(), vec![b.clone()]);
    assert_eq!(net.room(&b).verified_peers(), vec![a.clone()]);
    assert!(has(
        net.events(&a),
        |e| matches!(e, Event::PeerVerified { name, .. } if name == "bob")
    ));
    assert!(has(
        net.events(&b),
        |e| matches!(e, Event::PeerVerified { name, .. } if name == "alice")
    ));
    net.video(&a, b"frame-1").unwrap();
    net.video(&b, b"frame-2").unwrap();
    assert_eq!(net.frames_from(&b, &a), vec![b"frame-1".to_vec()]);
    assert_eq!(net.frames_from(&a, &b), vec![b"frame-2".to_vec()]);
    assert_eq!(net.room(&a).safety_words(), net.room(&b).safety_words());
}

#[test]
fn five_members_share_safety_words_and_frames() {
    let mut net = Net::new();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let id = net.join(&format!("m{i}"), "a-b-c-d-e");
            net.settle();
            id
        })
        .collect();
    let words = net.room(&ids[0]).safety_words();
    for id in &ids {
        assert_eq!(net.room(id).verified_peers().len(), 4);
        assert_eq!(net.room(id).safety_words(), words);
    }
    net.video(&ids[2], b"hello all").unwrap();
    for id in &ids {
        if *id != ids[2] {
            assert_eq!(net.frames_from(id, &ids[2]).len(), 1);
        }
    }
    // Chat reaches everyone with the sender's name.
    let (now, ts) = (net.now, net.ts());
    let i = net.idx(&ids[1]);
    let out = net.members[i].room.send_chat("hi", ts, now).unwrap();
    net.route(&ids[1].clone(), vec![out]);
    net.settle();
    for id in ids.iter().filter(|id| **id != ids[1]) {
        assert!(has(
            net.events(id),
            |e| matches!(e, Event::Chat { name, text, .. } if name == "m1" && text == "hi")
        ));
    }
}

#[test]
fn wrong_passphrase_joiner_is_told_and_members_keep_working() {
    let mut net = Net::new();
    let a = net.join("alice", "right-words-here");
    let b = net.join("bob", "right-words-here");
    net.settle();
    let eve = net.join("eve", "wrong-words-here");
    net.settle();
    net.advance(Duration::from_millis(4500));
    assert!(!has(net.events(&eve), |e| *e == Event::WrongPassphrase));
    net.advance(Duration::from_secs(1));
    assert!(has(net.events(&eve), |e| *e == Event::WrongPassphrase));
    assert_eq!(net.room(&eve).verification(), Verification::Wrong);
    for m in [&a, &b] {
        assert!(has(
            net.events(m),
            |e| matches!(e, Event::AuthMismatch { peer } if *peer == eve)
        ));
        assert!(!has(net.events(m), |e| *e == Event::WrongPassphrase));
        assert_eq!(net.room(m).verification(), Verification::Verified);
    }
    net.video(&a, b"still fine").unwrap();
    assert_eq!(net.frames_from(&b, &a).len(), 1);
    assert!(net.frames_from(&eve, &a).is_empty());
}

#[test]
fn mixed_answers_join_and_flag() {
    let mut net = Net::new();
    let a = net.join("alice", "right-words-here");
    let m = net.join("mallory", "wrong-words-here");
    net.settle();
    let c = net.join("carol", "right-words-here");
    net.settle();
    net.advance(Duration::from_secs(6));
    assert!(!has(net.events(&c), |e| *e == Event::WrongPassphrase));
    assert!(net.room(&c).is_mismatched(&m));
    assert_eq!(net.room(&c).verified_peers(), vec![a]);
}

#[test]
fn lone_joiner_is_unverified_not_wrong() {
    let mut net = Net::new();
    let a = net.join("alice", "any-words-at-all");
    net.settle();
    net.advance(Duration::from_secs(20));
    assert_eq!(net.room(&a).verification(), Verification::Unverified);
    assert!(!has(net.events(&a), |e| *e == Event::WrongPassphrase));
    assert!(has(net.events(&a), |e| matches!(e, Event::Joined { .. })));
}

#[test]
fn departed_member_cannot_open_frames_after_rotation() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    let c = net.join("carol", "k-e-y");
    net.settle();
    net.video(&a, b"before").unwrap();
    assert_eq!(net.frames_from(&c, &a).len(), 1);
    let words_with_carol = net.room(&a).safety_words().to_string();
    net.leave(&c);
    net.settle();
    // Safety words follow membership, identically for those who remain.
    assert_ne!(net.room(&a).safety_words(), words_with_carol);
    assert_eq!(net.room(&a).safety_words(), net.room(&b).safety_words());
    assert!(has(
        net.events(&a),
        |e| matches!(e, Event::PeerLeft { peer, .. } if *peer == c)
    ));
    assert!(has(net.events(&a), |e| matches!(
        e,
        Event::KeyRotated { .. }
    )));
    let after = net.video(&a, b"after").unwrap();
    assert_eq!(net.frames_from(&b, &a).len(), 2);
    // Carol kept all her state; the relay hands her the new frame anyway.
    let out = net.inject(&c, &a, &after);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Event(Event::Frame { .. }))));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::DecryptFailed { .. }))));
    // Even after the timed ratchets (which she could follow alone).
    net.advance(Duration::from_secs(61));
    let later = net.video(&a, b"later").unwrap();
    let out = net.inject(&c, &a, &later);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Event(Event::Frame { .. }))));
}

#[test]
fn joiner_cannot_open_frames_sent_before_it_joined() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    let recorded: Vec<Vec<u8>> = (0..3)
        .map(|i| net.video(&a, format!("old {i}").as_bytes()).unwrap())
        .collect();
    let d = net.join("dave", "k-e-y");
    net.settle();
    assert_eq!(net.room(&d).verified_peers().len(), 2);
    for old in &recorded {
        let out = net.inject(&d, &a, old);
        assert!(out
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::Frame { .. }))));
    }
    // New frames are readable by all, existing members ratchet by themselves.
    net.video(&a, b"new").unwrap();
    assert_eq!(net.frames_from(&d, &a), vec![b"new".to_vec()]);
    assert_eq!(net.frames_from(&b, &a).len(), 4);
}

#[test]
fn replayed_hello_and_pake_create_no_second_channel() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    let saw = net.relay_saw.clone();
    net.video(&a, b"one").unwrap();
    // Replay every handshake message the relay saw, from the same ids. At
    // most our current commitment is told again (a peer that seems to hold
    // an old one of ours); no new round, no hello, no handshake.
    let only_our_commitment = |net: &Net, id: &str, out: &[Output]| {
        let ours = net.room(id).me.hello().commitment();
        out.iter().all(|o| match o {
            Output::Send { data, .. } => matches!(
                WireMessage::decode(data),
                Ok(WireMessage::Commit { commit, .. }) if commit == ours
            ),
            _ => true,
        })
    };
    let rounds = (net.room(&a).stats.rounds, net.room(&b).stats.rounds);
    for data in &saw {
        for (to, from) in [(&a, &b), (&b, &a)] {
            let out = net.inject(to, from, data);
            assert!(only_our_commitment(&net, to, &out), "replay answered");
        }
    }
    assert_eq!(
        (net.room(&a).stats.rounds, net.room(&b).stats.rounds),
        rounds
    );
    // And under a fresh peer id: presence, then the old messages. Old
    // commitments were seen before (ours reflected back too): no answer,
    // no round, no handshake.
    let i = net.idx(&b);
    let (now, now_us) = (net.now, net.ts());
    net.members[i].room.on_peer_joined("ghost", now);
    for data in &saw {
        let out = net.members[i].room.on_blob("ghost", data, now, now_us);
        assert!(
            only_our_commitment(&net, &b, &out),
            "replay under a new id answered"
        );
    }
    // The channel still works, counters untouched: next frame opens once.
    let f = net.video(&a, b"two").unwrap();
    assert_eq!(net.frames_from(&b, &a).len(), 2);
    let out = net.inject(&b, &a, &f);
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::DecryptFailed { reason, .. }) if reason.contains("replay"))));
}

#[test]
fn silent_member_is_dropped_and_keys_rotate() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    // Bob vanishes without the relay saying so (a relay hiding peer_left).
    let i = net.idx(&b);
    net.members[i].present = false;
    let epoch = net.room(&a).epoch();
    net.advance(Duration::from_secs(16));
    assert!(has(
        net.events(&a),
        |e| matches!(e, Event::PeerLeft { peer, reason: "timeout" } if *peer == b)
    ));
    assert!(net.room(&a).epoch() > epoch);
}

#[test]
fn keepalives_keep_quiet_members_alive() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    net.advance(Duration::from_secs(40));
    assert_eq!(net.room(&a).verified_peers(), vec![b.clone()]);
    assert!(!has(net.events(&a), |e| matches!(
        e,
        Event::PeerLeft { .. }
    )));
    // The 60 s ratchet has not fired yet; after it, frames still flow.
    net.advance(Duration::from_secs(25));
    assert!(net.room(&a).epoch() >= 1);
    net.video(&a, b"x").unwrap();
    assert_eq!(net.frames_from(&b, &a).len(), 1);
}

#[test]
fn restart_draws_new_keys() {
    let mut net = Net::new();
    let a1 = net.join("alice", "k-e-y");
    let a2 = net.join("alice", "k-e-y");
    let h1 = net.room(&a1).me.hello();
    let h2 = net.room(&a2).me.hello();
    assert_ne!(h1.e, h2.e);
    assert_ne!(h1.n, h2.n);
    assert_ne!(
        net.room(&a1).key.base().expose(),
        net.room(&a2).key.base().expose()
    );
}

#[test]
fn relay_sees_no_passphrase_psk_or_names() {
    let mut net = Net::new();
    let secret = "banjo-velvet-canyon-pellet-drift";
    let key = psk(secret);
    let a = net.join("Alexandrina", secret);
    let _b = net.join("Bartholomew", secret);
    net.settle();
    net.video(&a, b"payload").unwrap();
    let (now, ts) = (net.now, net.ts());
    let i = net.idx(&a);
    let out = net.members[i]
        .room
        .send_chat("top secret chat", ts, now)
        .unwrap();
    net.route(&a, vec![out]);
    net.settle();
    net.advance(Duration::from_secs(2));
    let needles: Vec<Vec<u8>> = vec![
        secret.as_bytes().to_vec(),
        b"banjo".to_vec(),
        key.expose()[..8].to_vec(),
        b"Alexandrina".to_vec(),
        b"Bartholomew".to_vec(),
        b"top secret".to_vec(),
        b"payload".to_vec(),
    ];
    assert!(net.relay_saw.len() > 8);
    for data in &net.relay_saw {
        for needle in &needles {
            assert!(
                !data.windows(needle.len()).any(|w| w == needle.as_slice()),
                "relay saw {:?}",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn garbage_blobs_are_counted_not_fatal() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    let good = net.video(&a, b"ok").unwrap();
    let mut inputs = vec![vec![], vec![1], vec![1, 5], vec![9, 9, 9]];
    for bit in [0, 20, good.len() * 8 - 1] {
        let mut flipped = good.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        inputs.push(flipped);
    }
    inputs.push(good[..good.len() - 1].to_vec());
    let before = net.room(&b).stats.decrypt_failures;
    for data in &inputs {
        let out = net.inject(&b, &a, data);
        assert!(out
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::Frame { .. }))));
    }
    assert!(net.room(&b).stats.decrypt_failures >= before + inputs.len() as u64 - 1);
}

mod attacks;
mod identity;
mod identity_redteam;
mod identity_redteam2;
mod mitm;
mod redteam;
mod tie_redteam;
mod words;
