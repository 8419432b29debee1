//! The attacks from the security review, each run against the rooms: a
//! relay in the middle, a member posing as another, chat reaching the wrong
//! people, passphrase guessing, a relay pinning memory, a squatter faking a
//! verdict, and frames held back to keep a departed member alive.

use super::*;

/// The wire messages in `out` that are sends.
fn sends(out: &[Output]) -> Vec<WireMessage> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { data, .. } => WireMessage::decode(data).ok(),
            _ => None,
        })
        .collect()
}

fn lone_room(name: &str, secret: &str, seed: u64, now: Instant) -> Room {
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

/// A relay that knows the invite sits in the middle (DESIGN.md §3 "Safety
/// words"). Without commitments it saw both victims' hellos first and then
/// searched its two fake hellos until both sides showed the same words (a
/// birthday search, seconds of work). Now a member shows its hello only to a
/// peer that committed first, and takes no hello but the committed one: the
/// fake's values are fixed before the victim's are known, and a hello found
/// by searching afterwards is refused.
#[test]
fn a_relay_in_the_middle_cannot_choose_its_hello_after_seeing_the_victims() {
    let t0 = Instant::now();
    let mut alice = lone_room("alice", "s-e-c-r-e-t", 1, t0);
    let joined = alice.on_welcome("alice", &[], 64, t0);
    assert!(
        !sends(&joined)
            .iter()
            .any(|m| matches!(m, WireMessage::Hello(_))),
        "alice's first message is a commitment, not her hello"
    );
    // Trying to see her hello first: a hello without a commitment.
    let mallory = lone_room("bob", "s-e-c-r-e-t", 2, t0);
    alice.on_peer_joined("fake1", t0);
    let out = alice.on_blob(
        "fake1",
        &WireMessage::Hello(mallory.me.hello()).encode(),
        t0,
        0,
    );
    assert!(
        sends(&out).is_empty(),
        "answered a hello that nobody committed to"
    );
    // Committing first gets her hello...
    alice.on_peer_joined("fake2", t0);
    let committed = mallory.me.hello();
    let out = alice.on_blob(
        "fake2",
        &WireMessage::Commit(committed.commitment()).encode(),
        t0,
        0,
    );
    let alice_hello = sends(&out)
        .into_iter()
        .find_map(|m| match m {
            WireMessage::Hello(h) => Some(h),
            _ => None,
        })
        .expect("hello after the commitment");
    // ...and now the search the relay used to run is cheap: a nonce that
    // makes the first safety word whatever it wants (13 bits here; the
    // whole 4 words were a 2^26 birthday search).
    let target = crate::wordlist::words()[4242];
    let mut forged = committed;
    let mut tries = 0u32;
    while crate::crypto::safety::safety_words("testroom", &[alice_hello, forged])[0] != target {
        tries += 1;
        forged.n = (tries as u128).to_be_bytes();
        assert!(tries < 1 << 20, "search failed");
    }
    // But alice takes only the hello the fake committed to.
    let out = alice.on_blob("fake2", &WireMessage::Hello(forged).encode(), t0, 0);
    assert!(!sends(&out)
        .iter()
        .any(|m| matches!(m, WireMessage::Pake { .. })));
    assert!(out.iter().any(|o| matches!(o, Output::Event(Event::DecryptFailed { reason, .. }) if reason.contains("commitment"))));
    assert!(matches!(alice.peers["fake2"].state, PeerState::Failed));
    // The committed one (chosen blind) is the only way in.
    alice.on_peer_joined("fake3", t0);
    let blind = lone_room("bob", "s-e-c-r-e-t", 3, t0).me.hello();
    alice.on_blob(
        "fake3",
        &WireMessage::Commit(blind.commitment()).encode(),
        t0,
        0,
    );
    let out = alice.on_blob("fake3", &WireMessage::Hello(blind).encode(), t0, 0);
    assert!(sends(&out)
        .iter()
        .any(|m| matches!(m, WireMessage::Pake { .. })));
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

/// One newcomer after another tries a guessed passphrase. Every SPAKE2
/// answer is a guess tested; unthrottled, one per newcomer. Now the guard
/// spaces them out (0.5 s, doubling to a minute) and says so.
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
            *from == a && matches!(WireMessage::decode(data), Ok(WireMessage::Pake { .. }))
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

/// A relay announcing 50,000 peers, each pushing handshake messages and big
/// blobs before its hello: the member keeps no more than a full room's worth.
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
            let fake = lone_room("x", "other", u64::from(i) + 10, t0);
            let big = WireMessage::Sealed {
                from_e: fake.me.public(),
                to_e: alice.me.public(),
                ctr: 0,
                ciphertext: vec![0; 100_000],
            };
            let junk_pake = WireMessage::Pake {
                from_e: fake.me.public(),
                to_e: alice.me.public(),
                msg: [0x41; 33],
            };
            for m in [big.clone(), junk_pake.clone(), big, junk_pake] {
                alice.on_blob(&id, &m.encode(), t0, 0);
            }
            alice.on_blob(
                &id,
                &WireMessage::Commit(fake.me.hello().commitment()).encode(),
                t0,
                0,
            );
            let out = alice.on_blob(&id, &WireMessage::Hello(fake.me.hello()).encode(), t0, 0);
            handshakes += sends(&out)
                .iter()
                .filter(|m| matches!(m, WireMessage::Pake { .. }))
                .count();
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
    assert!(
        handshakes <= guard::MAX_IN_PROGRESS,
        "{handshakes} handshakes at once"
    );
    assert!(alice.seen_keys.len() <= 4 * MAX_PEERS);
}

/// Only a failed key confirmation says "wrong passphrase": a squatter in
/// the room answering with garbage SPAKE2 or a weak key makes an honest
/// joiner wait ("unverified"), not give up.
#[test]
fn garbage_handshakes_are_not_a_wrong_passphrase_verdict() {
    let t0 = Instant::now();
    for weak_key in [false, true] {
        let mut joiner = lone_room("joe", "k-e-y", 1, t0);
        joiner.on_welcome("joe", &["squatter".to_string()], 64, t0);
        let mut hello = lone_room("sq", "k-e-y", 2, t0).me.hello();
        if weak_key {
            hello.e = [0; 32]; // low order: not contributory
        }
        joiner.on_blob(
            "squatter",
            &WireMessage::Commit(hello.commitment()).encode(),
            t0,
            0,
        );
        let out = joiner.on_blob("squatter", &WireMessage::Hello(hello).encode(), t0, 0);
        assert!(sends(&out)
            .iter()
            .any(|m| matches!(m, WireMessage::Pake { .. })));
        let pake = WireMessage::Pake {
            from_e: hello.e,
            to_e: joiner.me.public(),
            msg: if weak_key {
                lone_room("sq", "k-e-y", 3, t0).spake_message_for_tests(&joiner.me.hello())
            } else {
                [0x41; 33]
            },
        };
        let out = joiner.on_blob("squatter", &pake.encode(), t0, 0);
        assert!(out
            .iter()
            .all(|o| !matches!(o, Output::Event(Event::AuthMismatch { .. }))));
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
