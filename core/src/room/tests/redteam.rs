//! Attacks from an independent review of protocol 3 (a relay that knows
//! the invite and controls presence and every blob), kept as regression
//! tests. Each fails when the attack it describes succeeds; its assertion
//! message says what the attacker achieved.

use std::collections::HashMap;

use super::*;
use crate::room::guard::MAX_IN_PROGRESS;

fn room_with(name: &str, secret: &str, seed: u64, now: Instant) -> Room {
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

/// (to, data) of each send.
type Sends = Vec<(Option<String>, Vec<u8>)>;

fn decode_sends(out: Vec<Output>) -> (Sends, Vec<Event>) {
    let mut sends = Vec::new();
    let mut events = Vec::new();
    for o in out {
        match o {
            Output::Send { to, data, .. } => sends.push((to, data)),
            Output::Event(e) => events.push(e),
        }
    }
    (sends, events)
}

/// What one burst against one connection of the victim gave the attacker.
struct Burst {
    /// SPAKE2 runs the victim started with the guessers.
    runs: u64,
    /// Confirmations the victim sent (each one lets the guesser check its
    /// guess offline).
    confirmations_given: usize,
    /// The largest number of confirmations the victim had out to
    /// guessers, unanswered, at once. (SPAKE2 runs a peer already answered
    /// may start beyond the slot limit, so that members new to each other
    /// can't deadlock on slots; a run gives nothing to test until our
    /// confirmation goes, and those are what the limit holds.)
    max_in_progress: usize,
    /// Guessers whose guess checked out offline against the victim's
    /// confirmation.
    offline_hits: Vec<usize>,
    /// `Guessing` warnings the victim showed its user.
    warnings: usize,
}

/// One connection of the victim: the relay's welcome lists `guesses.len()`
/// members "already in the room", each a guesser with its own passphrase
/// guess. The relay runs the commit/reveal honestly, except that each
/// guesser's hello is held back until the guesser's SPAKE2 message has
/// reached the victim (so the victim finds the SPAKE2 "already waiting on
/// us" and starts the handshake whatever its slot count), and every
/// confirmation a guesser makes is dropped (it checks the victim's offline
/// instead). Nothing is ever counted as failed while the burst runs.
fn burst(victim: &mut Room, guesses: &[String], seed: u64, now: Instant) -> Burst {
    let ids: Vec<String> = (0..guesses.len()).map(|i| format!("g{seed}-{i}")).collect();
    let mut guessers: HashMap<String, Room> = HashMap::new();
    // (to, from, data)
    let mut queue: VecDeque<(String, String, Vec<u8>)> = VecDeque::new();
    let mut held_hello: HashMap<String, Vec<u8>> = HashMap::new();
    let mut b = Burst {
        runs: 0,
        confirmations_given: 0,
        max_in_progress: 0,
        offline_hits: Vec::new(),
        warnings: 0,
    };
    let runs_before = victim.stats.handshakes;
    for (i, id) in ids.iter().enumerate() {
        let mut g = room_with("guesser", &guesses[i], seed * 1000 + i as u64, now);
        let (sends, _) = decode_sends(g.on_welcome(id, &["alice".to_string()], 256, now));
        for (_, d) in sends {
            queue.push_back(("alice".into(), id.clone(), d));
        }
        guessers.insert(id.clone(), g);
    }
    let route_victim =
        |out: Vec<Output>, queue: &mut VecDeque<(String, String, Vec<u8>)>, b: &mut Burst| {
            let (sends, events) = decode_sends(out);
            b.warnings += events
                .iter()
                .filter(|e| matches!(e, Event::Guessing { .. }))
                .count();
            for (to, d) in sends {
                match to {
                    Some(t) => queue.push_back((t, "alice".into(), d)),
                    None => {
                        for id in &ids {
                            queue.push_back((id.clone(), "alice".into(), d.clone()));
                        }
                    }
                }
            }
        };
    let out = victim.on_welcome("alice", &ids, 256, now);
    route_victim(out, &mut queue, &mut b);
    let mut steps = 0;
    while let Some((to, from, data)) = queue.pop_front() {
        steps += 1;
        assert!(steps < 1_000_000, "storm");
        if to == "alice" {
            let out = victim.on_blob(&from, &data, now, 0);
            route_victim(out, &mut queue, &mut b);
            let busy = victim
                .peers
                .values()
                .filter(|p| p.charged && p.oracle)
                .count();
            b.max_in_progress = b.max_in_progress.max(busy);
            continue;
        }
        let Some(g) = guessers.get_mut(&to) else {
            continue;
        };
        let msg = WireMessage::decode(&data).expect("the victim sends well-formed messages");
        if let WireMessage::Confirm { .. } = msg {
            // The victim's confirmation: the offline check of this guess.
            b.confirmations_given += 1;
            let before = g.is_mismatched("alice");
            let _ = g.on_blob("alice", &data, now, 0);
            if !before && !g.is_mismatched("alice") {
                let i: usize = to.rsplit('-').next().unwrap().parse().unwrap();
                b.offline_hits.push(i);
            }
            // The guesser goes quiet from here on.
            continue;
        }
        let (sends, _) = decode_sends(g.on_blob("alice", &data, now, 0));
        for (_, d) in sends {
            match WireMessage::decode(&d) {
                // Never confirm: that would be an online, counted guess.
                Ok(WireMessage::Confirm { .. }) => {}
                // Hold the hello until our SPAKE2 has gone first.
                Ok(WireMessage::Hello(_)) => {
                    held_hello.insert(to.clone(), d);
                }
                Ok(WireMessage::Pake { .. }) => {
                    queue.push_back(("alice".into(), to.clone(), d));
                    if let Some(h) = held_hello.remove(&to) {
                        queue.push_back(("alice".into(), to.clone(), h));
                    }
                }
                _ => queue.push_back(("alice".into(), to.clone(), d)),
            }
        }
    }
    b.runs = victim.stats.handshakes - runs_before;
    b
}

fn guesses(n: usize, right_at: Option<usize>, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            if Some(i) == right_at {
                "the-real-words".to_string()
            } else {
                format!("{tag}-guess-{i}")
            }
        })
        .collect()
}

/// GOAL 3. The guard means "at most MAX_IN_PROGRESS handshakes with
/// unproven peers at once, then 0.5 s doubling to a minute per guess given
/// away". A relay that lists 255 guessers as "already in the room" and
/// delivers each guesser's SPAKE2 message *before* its hello gets all of
/// them started at one instant (`start_handshakes` treats a peer whose
/// SPAKE2 is in `early` as holding no slot, and the guard has no failure
/// on record yet, so `may_start(now, 0)` is true every time), and since
/// the guessers were "here first" the victim confirms first to each: 255
/// offline-checkable guesses at once, no warning shown.
#[test]
fn redteam_guess_burst_ignores_the_slot_limit() {
    let t0 = Instant::now();
    let mut victim = room_with("alice", "the-real-words", 1, t0);
    let n = 255;
    let b = burst(&mut victim, &guesses(n, Some(137), "a"), 1, t0);
    // Within this connection the guesses are counted later, when the
    // handshakes time out, all as "members refusing us" (newcomer: false),
    // so the user sees no `Guessing` warning.
    let later = victim_failures_after_timeout(&mut victim, t0);
    eprintln!(
        "runs {} confirmations {} max in progress {} hits {:?} warnings {} \
         failures after the burst (0, 0); {:?} after the timeout, warnings then {}",
        b.runs,
        b.confirmations_given,
        b.max_in_progress,
        b.offline_hits,
        b.warnings,
        (later.0, later.1),
        later.2,
    );
    assert!(
        b.confirmations_given <= MAX_IN_PROGRESS && b.max_in_progress <= MAX_IN_PROGRESS,
        "ATTACK SUCCEEDED: at one instant the victim ran {} SPAKE2 runs with guessers \
         ({} at once, limit {}) and handed out {} confirmations, each an offline check \
         of one passphrase guess (guess #{:?} found to be right offline); \
         guard failures so far {:?}, warnings shown {}",
        b.runs,
        b.max_in_progress,
        MAX_IN_PROGRESS,
        b.confirmations_given,
        b.offline_hits,
        (0, 0),
        b.warnings,
    );
}

/// Ticks the victim past the handshake timeout: (guesses, stalls,
/// warnings shown).
fn victim_failures_after_timeout(victim: &mut Room, t0: Instant) -> (u32, u32, usize) {
    assert_eq!(
        victim.guard.failures(),
        (0, 0),
        "nothing counted during the burst"
    );
    let mut warnings = 0;
    let mut now = t0;
    while now < t0 + round::HANDSHAKE_TIMEOUT * 2 + Duration::from_secs(2) {
        now += Duration::from_millis(100);
        let (_, events) = decode_sends(victim.tick(now, 0));
        if now == t0 + round::HANDSHAKE_TIMEOUT + Duration::from_secs(1) {
            eprintln!("at +11 s: guard failures {:?}", victim.guard.failures());
        }
        warnings += events
            .iter()
            .filter(|e| matches!(e, Event::Guessing { .. }))
            .count();
    }
    let (g, s) = victim.guard.failures();
    (g, s, warnings)
}

/// GOAL 3. The guard is carried over a reconnect (`take_guard`) "so a relay
/// that drops us gets no fresh allowance of guesses". But a handshake that
/// gave away our confirmation is counted only when it later fails (timeout,
/// settling, departure): the Room holding it is dropped on a reconnect and
/// its pending failures are never counted. So: burst (as above), drop the
/// connection before HANDSHAKE_TIMEOUT, repeat. Every burst is 255 offline
/// guesses, and the guard never records a single failure.
#[test]
fn redteam_reconnect_forgets_pending_guesses() {
    let t0 = Instant::now();
    let mut now = t0;
    let mut guard = guard::Guard::default();
    let mut total_given = 0;
    let mut total_runs = 0;
    let connections = 4;
    for c in 0..connections {
        let mut victim = room_with("alice", "the-real-words", 10 + c as u64, now).with_guard(guard);
        let b = burst(
            &mut victim,
            &guesses(255, None, &format!("c{c}")),
            100 + c as u64,
            now,
        );
        total_given += b.confirmations_given;
        total_runs += b.runs;
        // The relay closes the connection; the session keeps the guard and
        // reconnects after its backoff (about a second).
        guard = victim.take_guard();
        now += Duration::from_secs(2);
    }
    let (guesses_counted, stalls) = guard.failures();
    eprintln!(
        "{connections} connections: {total_runs} SPAKE2 runs, {total_given} confirmations given, \
         guard counted {guesses_counted} guesses, {stalls} stalls"
    );
    assert!(
        guesses_counted as usize >= total_given,
        "ATTACK SUCCEEDED: over {connections} connections ({:?} of wall time) the victim \
         gave {total_given} confirmations (offline guess checks) in {total_runs} SPAKE2 \
         runs, and its guard, carried across the reconnects, counted {guesses_counted} \
         guesses and {stalls} stalls (no backoff at all)",
        now.duration_since(t0)
    );
}

/// GOAL 5. A member (anyone with the invite) seals an ordinary state frame
/// whose capture timestamp is 2^63 µs. The receiver checks its tag and
/// signature (both fine: it is the member's own frame) and then runs
/// `Freshness::fresh` (src/room/peer.rs), whose `now_us as i64 -
/// capture_us as i64` overflows: with overflow checks on (debug and test
/// builds) the receiver panics. (Release builds wrap silently.)
#[test]
fn redteam_member_frame_timestamp_overflow_panics() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let m = net.join("mallory", "k-e-y");
    net.settle();
    assert!(
        net.room(&a).verified_peers().contains(&m),
        "mallory is a member"
    );
    let now = net.now;
    let i = net.idx(&m);
    let out = net.members[i]
        .room
        .seal(Stream::State, 0, b"x", 1u64 << 63, now)
        .expect("a member seals");
    let Output::Send { data, .. } = out else {
        unreachable!()
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.inject(&a, &m, &data)));
    let msg = r.as_ref().err().and_then(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
    });
    assert!(
        r.is_ok(),
        "ATTACK SUCCEEDED: one frame from a member (timestamp_us = 2^63) panicked the receiver: {msg:?}"
    );
}

// ---------------------------------------------------------------------------
// GOALS 1, 2 and 4: a hostile relay (random schedules plus the moves that
// seemed most promising from reading the code), checked at every step.

use super::mitm::{preimage, Mitm, Msg};
use rand_chacha::rand_core::RngCore;

/// First-seen positions in the relay's history (incrementally updated).
#[derive(Default)]
struct Seen {
    upto: usize,
    /// commitment → first index it was sent by anyone.
    commit: HashMap<[u8; 32], usize>,
    /// (sender, hello) → first index it revealed it.
    hello: HashMap<(String, [u8; 32]), usize>,
}

impl Seen {
    fn update(&mut self, m: &Mitm) {
        for (i, (from, data)) in m.history.iter().enumerate().skip(self.upto) {
            match WireMessage::decode(data) {
                Ok(WireMessage::Commit { commit, .. }) => {
                    self.commit.entry(commit).or_insert(i);
                }
                Ok(WireMessage::Hello(h)) => {
                    self.hello
                        .entry((from.clone(), h.commitment()))
                        .or_insert(i);
                }
                _ => {}
            }
        }
        self.upto = m.history.len();
    }
}

/// Goal 2 invariant: every value in a victim's words was committed to
/// (first sent by anyone) before the victim revealed its own value for
/// them. Goal 4 invariants: no two verified peers share a signing key, and
/// each verified signer's key is one its peer proved (the fake's own or a
/// key the fake holds). Returns the victim's words if shown.
fn check_victim(m: &Mitm, seen: &Seen, v: &str, holders: &HashMap<String, Vec<[u8; 32]>>) {
    let room = &m.victims[v];
    let signers = room.verified_signers();
    let mut keys: Vec<[u8; 32]> = signers.iter().map(|(s, _)| *s).collect();
    keys.sort();
    let before = keys.len();
    keys.dedup();
    assert_eq!(
        before,
        keys.len(),
        "ATTACK SUCCEEDED (goal 4): {v} keeps two verified peers with one signing key: {signers:?}"
    );
    for (s, id) in &signers {
        // The relay names peers as it likes: what matters is that the key
        // is one the attacker holds (not a victim's).
        let ok = holders.values().any(|ks| ks.contains(s));
        assert!(
            ok,
            "ATTACK SUCCEEDED (goal 4): {v} treats {id} as owning a signing key it does not hold"
        );
    }
    let Some(hellos) = room.round_hellos() else {
        return;
    };
    let mine = room.me.hello();
    let revealed = *seen
        .hello
        .get(&(v.to_string(), mine.commitment()))
        .expect("words over our hello: we revealed it");
    for h in hellos.iter().filter(|h| **h != mine) {
        let committed = seen.commit.get(&h.commitment()).copied();
        assert!(
            committed.is_some_and(|c| c < revealed),
            "ATTACK SUCCEEDED (goal 2): {v} shows words over a value first committed at \
             {committed:?}, after {v} revealed its own at {revealed}"
        );
    }
}

/// One fake member with a given signing key (shared keys make "twins").
fn fake_with_key(m: &mut Mitm, id: &str, signing: Arc<SigningIdentity>) -> Room {
    let rng = ChaCha20Rng::seed_from_u64(m.rng.next_u64());
    let mut room = Room::new(
        "testroom",
        psk("k-e-y"),
        id,
        Timings::default(),
        Box::new(rng),
        signing,
        m.now,
    );
    room.set_safety_bits(m.bits);
    room
}

fn tick_all(m: &mut Mitm, by: Duration) {
    m.now += by;
    let ids: Vec<String> = m.victims.keys().chain(m.fakes.keys()).cloned().collect();
    for id in ids {
        let (now, ts) = (m.now, m.ts());
        let out = match m.victims.get_mut(&id) {
            Some(v) => v.tick(now, ts),
            None => match m.fakes.get_mut(&id) {
                Some((_, f)) => f.tick(now, ts),
                None => continue,
            },
        };
        m.route(&id, out);
    }
}

fn hostile_step(
    m: &mut Mitm,
    next: &mut u64,
    pool: &[Arc<SigningIdentity>],
    holders: &mut HashMap<String, Vec<[u8; 32]>>,
) {
    let roll = m.rng.next_u32() % 100;
    let pick = |m: &mut Mitm, n: usize| (m.rng.next_u32() as usize) % n.max(1);
    let victims = ["alice", "bob"];
    match roll {
        0..=56 => {
            if let Some((to, from, msg)) = m.queue.pop_front() {
                m.deliver(&to, &from, msg);
            }
        }
        57..=62 => {
            let i = pick(m, m.queue.len());
            if let Some((to, from, msg)) = m.queue.remove(i) {
                m.deliver(&to, &from, msg);
            }
        }
        63..=64 => {
            let i = pick(m, m.queue.len());
            m.queue.remove(i);
        }
        // Replay anything to a victim under any label it knows.
        65..=68 => {
            if m.history.is_empty() {
                return;
            }
            let i = pick(m, m.history.len());
            let data = m.history[i].1.clone();
            let to = victims[pick(m, 2)];
            let mut labels: Vec<String> = m.victims[to].peers.keys().cloned().collect();
            labels.sort();
            if labels.is_empty() {
                return;
            }
            let from = labels[pick(m, labels.len())].clone();
            m.deliver(to, &from, Msg::Blob(data));
        }
        // A fake joins: its own key, or one of a small pool (twins).
        69..=72 => {
            let v = victims[pick(m, 2)];
            *next += 1;
            let id = format!("rt{next}");
            let shared = m.rng.next_u32() % 2 == 0;
            let signing = if shared {
                pool[pick(m, pool.len())].clone()
            } else {
                let mut rng = ChaCha20Rng::seed_from_u64(m.rng.next_u64());
                Arc::new(SigningIdentity::generate(&mut rng))
            };
            holders.insert(id.clone(), vec![signing.public()]);
            let fake = fake_with_key(m, &id, signing);
            m.show(id, fake, v, None);
        }
        // The best adaptive move known: a fake for one victim whose value
        // makes its words equal the other's current words against the
        // value it revealed last (stale by construction, if rounds work).
        73..=75 => {
            let (v, other) = if m.rng.next_u32() % 2 == 0 {
                ("alice", "bob")
            } else {
                ("bob", "alice")
            };
            let target = m.words(other).to_string();
            let Some(hv) = m.last_revealed(v) else {
                return;
            };
            if target.is_empty() {
                return;
            }
            *next += 1;
            let id = format!("rt{next}");
            let mut rng = ChaCha20Rng::seed_from_u64(m.rng.next_u64());
            let signing = Arc::new(SigningIdentity::generate(&mut rng));
            holders.insert(id.clone(), vec![signing.public()]);
            let fake = fake_with_key(m, &id, signing);
            let n = preimage(m, &[hv], &fake, &target);
            m.show(id, fake, v, n);
        }
        76..=78 => {
            let mut fakes: Vec<String> = m.fakes.keys().cloned().collect();
            fakes.sort();
            if fakes.is_empty() {
                return;
            }
            let f = fakes[pick(m, fakes.len())].clone();
            m.fake_leaves(&f);
        }
        79 => {
            let mut fakes: Vec<String> = m.fakes.keys().cloned().collect();
            fakes.sort();
            if fakes.is_empty() {
                return;
            }
            let f = fakes[pick(m, fakes.len())].clone();
            if m.muted.contains(&f) {
                m.muted.retain(|x| *x != f);
            } else {
                m.muted.push(f);
            }
        }
        80..=87 => {
            let ms = 100 * (1 + u64::from(m.rng.next_u32() % 30));
            tick_all(m, Duration::from_millis(ms));
        }
        // A fake starts a new round of its own (a new commitment).
        88..=90 => {
            let mut fakes: Vec<String> = m.fakes.keys().cloned().collect();
            fakes.sort();
            if fakes.is_empty() {
                return;
            }
            let f = fakes[pick(m, fakes.len())].clone();
            let now = m.now;
            let out = m.fakes.get_mut(&f).expect("listed").1.start_round(now);
            m.route(&f, out);
        }
        // Relabel: a queued blob to a victim, delivered under another
        // fake's name.
        91..=93 => {
            let i = pick(m, m.queue.len());
            let Some((to, _, Msg::Blob(d))) = m.queue.remove(i) else {
                return;
            };
            if !m.victims.contains_key(&to) {
                return;
            }
            let mut labels: Vec<String> = m.victims[&to].peers.keys().cloned().collect();
            labels.sort();
            if labels.is_empty() {
                return;
            }
            let from = labels[pick(m, labels.len())].clone();
            m.deliver(&to, &from, Msg::Blob(d));
        }
        94..=96 => m.settle(),
        _ => {
            if let Some((to, from, Msg::Blob(data))) = m.queue.pop_front() {
                m.deliver(&to, &from, Msg::Blob(data.clone()));
                m.deliver(&to, &from, Msg::Blob(data));
            }
        }
    }
}

/// A hostile relay runs 60 random schedules of 600 steps against two
/// victims that never see each other (each sees only the relay's members,
/// some of which share signing keys, one in twenty chosen by a preimage
/// search against the other victim's current words). At every step:
/// goal 2 (every value in a victim's words committed before its own reveal)
/// and goal 4 (no two verified peers with one key; no key a peer doesn't
/// hold). And for goal 1, at 8 bits, how often the two victims' shown
/// words were equal over all distinct pairs of rounds shown at once
/// (chance: 1/256).
#[test]
fn redteam_hostile_relay_fuzz_words_and_signers() {
    let bits = 8;
    let mut pairs = std::collections::HashSet::new();
    let mut equal_pairs = 0usize;
    let mut words_shown = 0usize;
    for seed in 0..60u64 {
        let mut m = Mitm::new(bits, 90_000 + seed, false);
        m.victim("alice");
        m.victim("bob");
        let pool: Vec<Arc<SigningIdentity>> = (0..2)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(seed * 7 + i);
                Arc::new(SigningIdentity::generate(&mut rng))
            })
            .collect();
        let mut holders = HashMap::new();
        let mut next = 0;
        let mut seen = Seen::default();
        for _ in 0..1500 {
            hostile_step(&mut m, &mut next, &pool, &mut holders);
            seen.update(&m);
            for v in ["alice", "bob"] {
                check_victim(&m, &seen, v, &holders);
            }
            let (wa, wb) = (m.words("alice"), m.words("bob"));
            words_shown += usize::from(!wa.is_empty()) + usize::from(!wb.is_empty());
            if !wa.is_empty() && !wb.is_empty() {
                let key = (
                    seed,
                    m.victims["alice"].round.number,
                    m.victims["bob"].round.number,
                );
                if pairs.insert(key) && wa == wb {
                    equal_pairs += 1;
                }
            }
        }
    }
    eprintln!(
        "distinct round pairs shown at once: {}, equal: {equal_pairs} (chance {:.1}); \
         victim-steps with words: {words_shown}",
        pairs.len(),
        pairs.len() as f64 / 256.0
    );
    assert!(words_shown > 0, "the fuzz never got words shown");
    // Binomial(n, 1/256): fail only far above chance.
    let n = pairs.len() as f64;
    let mean = n / 256.0;
    let limit = mean + 5.0 * mean.sqrt() + 3.0;
    assert!(
        (equal_pairs as f64) <= limit,
        "ATTACK SUCCEEDED (goal 1): {equal_pairs} equal-word pairs of {} (chance {mean:.1})",
        pairs.len()
    );
}

/// GOAL 5 (memory). The session remembers every verified member by signing
/// key (`chat::Recent::saw`, called after every event from
/// `Session::settle_chat` with `room.verified_signers()`), so that lines
/// typed offline can be owed to them. Entries are only ever removed by
/// `left_by_choice`, i.e. when the relay announces a departure with reason
/// `leave`. A relay that knows the invite shows the victim member after
/// member, each with a fresh signing key (they pass every handshake, so
/// the guard never slows them), and announces each departure as a
/// `timeout` (or just goes silent). The set grows by one entry per fake,
/// forever.
#[test]
fn redteam_recent_members_grow_without_bound() {
    use crate::room::chat::Recent;
    let mut m = Mitm::new(crate::crypto::safety::FULL_WIDTH, 77, false);
    m.victim("alice");
    let t0 = m.now;
    let mut recent = Recent::default();
    let fakes = 600;
    for _ in 0..fakes {
        let id = m.fake_joins("alice");
        m.settle();
        recent.saw(&m.victims["alice"].verified_signers(), m.now);
        // The relay says it timed out (not a departure by choice).
        m.fakes.remove(&id);
        let now = m.now;
        let out = m
            .victims
            .get_mut("alice")
            .unwrap()
            .on_peer_left(&id, LeaveReason::Timeout, now);
        m.route("alice", out);
        m.settle();
        m.now += Duration::from_millis(10);
    }
    let remembered = recent.around(t0).len();
    eprintln!(
        "{fakes} fakes verified one after another; alice now has {} peers and remembers {remembered} signers",
        m.victims["alice"].peers.len()
    );
    assert!(
        remembered <= MAX_PEERS,
        "ATTACK SUCCEEDED: the session's Recent set holds {remembered} signing keys \
         (one per fake ever verified, never forgotten) while the room holds {} peers: \
         it grows without bound with the relay's fakes",
        m.victims["alice"].peers.len()
    );
}
