//! A relay that knows the invite, in the middle (DESIGN.md §3 "Safety
//! words"): it decides everything each victim sees. The victims are real
//! [`Room`]s; the relay's own members ("fakes") are rooms it runs with the
//! room key, so they pass every handshake; it can choose their nonces, run
//! them silent, make them leave, reorder, drop and replay.

use std::collections::{HashMap, VecDeque};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::crypto::pairwise::{Hello, NONCE_LEN};
use crate::crypto::safety::safety_words_bits;

pub(super) enum Msg {
    Joined(String),
    Left(String),
    Blob(Vec<u8>),
}

pub(super) struct Mitm {
    pub now: Instant,
    start: Instant,
    pub bits: u32,
    pub rng: ChaCha20Rng,
    /// The victims, by peer id.
    pub victims: HashMap<String, Room>,
    /// The relay's members: id → (the victim it is shown to, its room).
    pub fakes: HashMap<String, (String, Room)>,
    /// Fakes whose messages the relay drops (they went silent).
    pub muted: Vec<String>,
    /// (to, from, message), delivered in order by [`Mitm::settle`].
    pub queue: VecDeque<(String, String, Msg)>,
    /// Every hello a victim revealed, in order: what the relay learns.
    pub revealed: HashMap<String, Vec<Hello>>,
    /// Every blob anyone sent, with its sender (for replays).
    pub history: Vec<(String, Vec<u8>)>,
    next_id: u64,
    /// Victims that see each other (the relay forwards between them).
    pub links: Vec<(String, String)>,
    /// Victims keep revealed values for their next round (the old
    /// behaviour: what the attack beat).
    weakened: bool,
}

impl Mitm {
    pub fn new(bits: u32, seed: u64, weakened: bool) -> Self {
        let now = Instant::now();
        Mitm {
            now,
            start: now,
            bits,
            rng: ChaCha20Rng::seed_from_u64(seed),
            victims: HashMap::new(),
            fakes: HashMap::new(),
            muted: Vec::new(),
            queue: VecDeque::new(),
            revealed: HashMap::new(),
            history: Vec::new(),
            next_id: 0,
            links: Vec::new(),
            weakened,
        }
    }

    pub fn ts(&self) -> u64 {
        self.now.duration_since(self.start).as_micros() as u64
    }

    /// A room of ours (victim or fake) with the real room key.
    pub fn room(&mut self, name: &str) -> Room {
        let mut rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        let signing = Arc::new(SigningIdentity::generate(&mut rng));
        let mut room = Room::new(
            "testroom",
            psk("k-e-y"),
            name,
            Timings::default(),
            Box::new(rng),
            signing,
            self.now,
        );
        room.set_safety_bits(self.bits);
        room
    }

    /// A victim, alone in the room as far as it knows.
    pub fn victim(&mut self, id: &str) {
        let mut room = self.room(id);
        room.reuse_revealed_values = self.weakened;
        let out = room.on_welcome(id, &[], 64, self.now);
        self.victims.insert(id.to_string(), room);
        self.route(id, out);
    }

    /// `joiner` joins the room `member` is in: they see each other.
    pub fn victim_joins(&mut self, joiner: &str, member: &str) {
        let mut room = self.room(joiner);
        room.reuse_revealed_values = self.weakened;
        self.links.push((joiner.to_string(), member.to_string()));
        self.queue.push_back((
            member.to_string(),
            joiner.to_string(),
            Msg::Joined(joiner.to_string()),
        ));
        let out = room.on_welcome(joiner, &[member.to_string()], 64, self.now);
        self.victims.insert(joiner.to_string(), room);
        self.route(joiner, out);
    }

    pub fn linked(&self, a: &str, b: &str) -> bool {
        self.links
            .iter()
            .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
    }

    /// A fake made ready but not yet shown (so its values can be chosen).
    pub fn new_fake(&mut self) -> (String, Room) {
        self.next_id += 1;
        let id = format!("fake{}", self.next_id);
        let room = self.room(&id);
        (id, room)
    }

    /// The hello `fake` will reveal in its next round, with nonce `n`.
    pub fn hello_with(fake: &Room, n: [u8; NONCE_LEN]) -> Hello {
        Hello {
            n,
            ..fake.me.hello()
        }
    }

    /// Shows `fake` to `victim` (a join), its next round with nonce `n`.
    pub fn show(&mut self, id: String, mut fake: Room, victim: &str, n: Option<[u8; NONCE_LEN]>) {
        fake.forced_nonce = n;
        self.queue
            .push_back((victim.to_string(), id.clone(), Msg::Joined(id.clone())));
        let out = fake.on_welcome(&id, &[victim.to_string()], 64, self.now);
        self.fakes.insert(id.clone(), (victim.to_string(), fake));
        self.route(&id, out);
    }

    /// A fake shown to `victim` now, values random.
    pub fn fake_joins(&mut self, victim: &str) -> String {
        let (id, fake) = self.new_fake();
        self.show(id.clone(), fake, victim, None);
        id
    }

    /// The relay says `fake` left.
    pub fn fake_leaves(&mut self, id: &str) {
        if let Some((victim, _)) = self.fakes.remove(id) {
            self.queue
                .push_back((victim, id.to_string(), Msg::Left(id.to_string())));
        }
    }

    pub fn route(&mut self, from: &str, outputs: Vec<Output>) {
        if self.muted.iter().any(|m| m == from) {
            return;
        }
        for o in outputs {
            let Output::Send { to, data, .. } = o else {
                continue;
            };
            self.history.push((from.to_string(), data.clone()));
            if let Some((victim, _)) = self.fakes.get(from) {
                let victim = victim.clone();
                self.queue
                    .push_back((victim, from.to_string(), Msg::Blob(data)));
                continue;
            }
            // A victim's message: it reaches the relay's members on its side.
            if let Ok(WireMessage::Hello(h)) = WireMessage::decode(&data) {
                self.revealed.entry(from.to_string()).or_default().push(h);
            }
            let mut targets: Vec<String> = match to {
                Some(t) => vec![t],
                None => self
                    .fakes
                    .iter()
                    .filter(|(_, (v, _))| v == from)
                    .map(|(id, _)| id.clone())
                    .chain(
                        self.victims
                            .keys()
                            .filter(|v| self.linked(from, v))
                            .cloned(),
                    )
                    .collect(),
            };
            targets.retain(|t| self.fakes.contains_key(t) || self.linked(from, t));
            for t in targets {
                self.queue
                    .push_back((t, from.to_string(), Msg::Blob(data.clone())));
            }
        }
    }

    /// Delivers one message; returns what the receiver sent back.
    pub fn deliver(&mut self, to: &str, from: &str, msg: Msg) {
        let (now, ts) = (self.now, self.ts());
        let room = match self.victims.get_mut(to) {
            Some(v) => v,
            None => match self.fakes.get_mut(to) {
                Some((_, f)) => f,
                None => return,
            },
        };
        let out = match msg {
            Msg::Joined(p) => room.on_peer_joined(&p, now),
            Msg::Left(p) => room.on_peer_left(&p, LeaveReason::Leave, now),
            Msg::Blob(data) => room.on_blob(from, &data, now, ts),
        };
        self.route(to, out);
    }

    pub fn settle(&mut self) {
        let mut n = 0;
        while let Some((to, from, msg)) = self.queue.pop_front() {
            self.deliver(&to, &from, msg);
            n += 1;
            assert!(n < 100_000, "message storm");
        }
    }

    /// Advances the clock in 100 ms ticks, delivering as it goes.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += Duration::from_millis(100);
            let ids: Vec<String> = self
                .victims
                .keys()
                .chain(self.fakes.keys())
                .cloned()
                .collect();
            for id in ids {
                let (now, ts) = (self.now, self.ts());
                let out = match self.victims.get_mut(&id) {
                    Some(v) => v.tick(now, ts),
                    None => match self.fakes.get_mut(&id) {
                        Some((_, f)) => f.tick(now, ts),
                        None => continue,
                    },
                };
                self.route(&id, out);
            }
            self.settle();
        }
    }

    pub fn words(&self, victim: &str) -> &str {
        self.victims[victim].safety_words()
    }

    pub fn last_revealed(&self, victim: &str) -> Option<Hello> {
        self.revealed.get(victim)?.last().copied()
    }

    /// The words a room whose round holds exactly `members` shows.
    pub fn words_of(&self, members: &[Hello]) -> [&'static str; 4] {
        safety_words_bits("testroom", members, self.bits)
    }

    /// The relay won: both victims show the same words, each with only
    /// the relay's members verified.
    pub fn forced(&self, alice: &str, bob: &str) -> bool {
        let (a, b) = (&self.victims[alice], &self.victims[bob]);
        let only_fakes = |r: &Room| {
            let v = r.verified_peers();
            !v.is_empty() && v.iter().all(|p| self.fakes.contains_key(p))
        };
        !a.safety_words().is_empty()
            && a.safety_words() == b.safety_words()
            && only_fakes(a)
            && only_fakes(b)
    }
}

/// Birthday search: nonces for two fakes such that a room of `known_a`
/// and fake A and one of `known_b` and fake B show the same words.
pub(super) fn birthday(
    m: &Mitm,
    known_a: &[Hello],
    fake_a: &Room,
    known_b: &[Hello],
    fake_b: &Room,
) -> Option<([u8; NONCE_LEN], [u8; NONCE_LEN])> {
    let table_size = 1u32 << (m.bits / 2 + 2).min(20);
    let nonce = |i: u32, side: u8| {
        let mut n = [side; NONCE_LEN];
        n[..4].copy_from_slice(&i.to_be_bytes());
        n
    };
    let mut table = HashMap::new();
    for i in 0..table_size {
        let n = nonce(i, 0xa0);
        let mut members = known_a.to_vec();
        members.push(Mitm::hello_with(fake_a, n));
        table.insert(m.words_of(&members), n);
    }
    for j in 0..table_size * 64 {
        let n = nonce(j, 0xb0);
        let mut members = known_b.to_vec();
        members.push(Mitm::hello_with(fake_b, n));
        if let Some(na) = table.get(&m.words_of(&members)) {
            return Some((*na, n));
        }
    }
    None
}

/// Second-preimage search: a nonce for a fake such that a room of
/// `others` and the fake shows `target`.
pub(super) fn preimage(
    m: &Mitm,
    others: &[Hello],
    fake: &Room,
    target: &str,
) -> Option<[u8; NONCE_LEN]> {
    for i in 0..(1u32 << (m.bits + 6).min(24)) {
        let mut n = [0xc0; NONCE_LEN];
        n[..4].copy_from_slice(&i.to_be_bytes());
        let mut members = others.to_vec();
        members.push(Mitm::hello_with(fake, n));
        if m.words_of(&members).join(" ") == target {
            return Some(n);
        }
    }
    None
}
