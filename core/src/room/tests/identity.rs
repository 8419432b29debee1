//! Identity keys in the room: proven inside the pairwise channel, never
//! on the relay; nobody can claim another's; `--only-known` withholds our
//! sender key until the member is allowed.

use super::*;
use crate::crypto::identity::Fingerprint;

pub(super) fn identity(seed: u8) -> Arc<SigningIdentity> {
    Arc::new(SigningIdentity::from_seed(&[seed; 32]))
}

pub(super) fn verified_identity(events: &[Event], peer: &str) -> Option<[u8; 32]> {
    events.iter().find_map(|e| match e {
        Event::PeerVerified {
            peer: p, identity, ..
        } if p == peer => Some(*identity),
        _ => None,
    })
}

/// Whether `who` holds a sender key of `from`'s.
pub(super) fn key_of(net: &Net, who: &str, from: &str) -> bool {
    net.room(who)
        .peers
        .get(from)
        .is_some_and(|p| !p.keyring.is_empty())
}

/// Whether `needle` occurs anywhere in what the relay forwarded.
fn relay_saw(net: &Net, needle: &[u8]) -> bool {
    net.relay_saw
        .iter()
        .any(|m| m.windows(needle.len()).any(|w| w == needle))
}

#[test]
fn identities_are_proven_inside_the_channel_and_never_cross_the_relay() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let b = net.join("bob", "orbit-velvet-canyon");
    let (ia, ib) = (identity(1), identity(2));
    let room = net.room_mut(&a);
    room.identity = ia.clone();
    let room = net.room_mut(&b);
    room.identity = ib.clone();
    net.settle();
    assert_eq!(verified_identity(net.events(&a), &b), Some(ib.public()));
    assert_eq!(verified_identity(net.events(&b), &a), Some(ia.public()));
    for key in [ia.public(), ib.public()] {
        assert!(!relay_saw(&net, &key), "an identity key crossed the relay");
        assert!(!relay_saw(&net, &Fingerprint::of(&key).0[..8]));
    }
    // The tag that tells alices apart is the identity's, stable across calls.
    let tag = net.events(&a).iter().find_map(|e| match e {
        Event::PeerVerified { tag, .. } => Some(tag.clone()),
        _ => None,
    });
    assert_eq!(tag, Some(Fingerprint::of(&ib.public()).short()));
}

#[test]
fn nobody_can_claim_another_members_identity() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let m = net.join("mallory", "orbit-velvet-canyon");
    // Mallory holds the invite and names Alice's identity (say, from an
    // earlier call) without its secret half.
    net.room_mut(&m).claimed_identity = Some(identity(1).public());
    net.room_mut(&a).identity = identity(1);
    net.settle();
    assert!(verified_identity(net.events(&a), &m).is_none());
    assert!(net.room(&a).is_mismatched(&m), "excluded");
    assert!(net.room(&a).verified_peers().is_empty());
}

#[test]
fn only_known_withholds_our_key_until_the_member_is_allowed() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let b = net.join("bob", "orbit-velvet-canyon");
    net.room_mut(&b).identity = identity(2);
    // Alice knows nobody yet.
    let room = net.room_mut(&a);
    room.allowed = Some(HashSet::new());
    net.settle();
    // Bob is verified (shown) on both sides and sends to Alice…
    assert_eq!(net.room(&a).verified_peers(), vec![b.clone()]);
    net.video(&b, b"bob's face").unwrap();
    assert_eq!(net.frames_from(&a, &b), vec![b"bob's face".to_vec()]);
    // …but sees nothing of hers.
    let before = net.video(&a, b"withheld").unwrap();
    assert!(net.frames_from(&b, &a).is_empty());
    // Alice compares the words and verifies Bob: he gets her key, one
    // ratchet step on, so what he was kept from stays closed.
    net.act(&a, |room, now| {
        room.allow(&[Fingerprint::of(&identity(2).public())], now)
    });
    net.settle();
    net.video(&a, b"after verify").unwrap();
    assert_eq!(net.frames_from(&b, &a), vec![b"after verify".to_vec()]);
    let out = net.inject(&b, &a, &before);
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Event(Event::Frame { .. }))),
        "a frame sealed while Bob was withheld opened after he was allowed"
    );
}

/// `--only-known` covers what we type into a member's shared terminal as
/// it covers our picture: nothing to a member we haven't verified.
#[test]
fn only_known_types_nothing_into_an_unverified_members_terminal() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let b = net.join("bob", "orbit-velvet-canyon");
    net.room_mut(&b).identity = identity(2);
    net.room_mut(&a).allowed = Some(HashSet::new());
    net.settle();
    let now = net.now;
    assert!(
        net.room_mut(&a).send_share_keys(&b, b"ls\r", now).is_none(),
        "keys sealed to a member alice hasn't verified"
    );
    net.act(&a, |room, now| {
        room.allow(&[Fingerprint::of(&identity(2).public())], now)
    });
    net.settle();
    let now = net.now;
    assert!(net.room_mut(&a).send_share_keys(&b, b"ls\r", now).is_some());
}

#[test]
fn an_identity_cannot_change_within_a_connection() {
    let mut net = Net::new();
    let a = net.join("alice", "orbit-velvet-canyon");
    let b = net.join("bob", "orbit-velvet-canyon");
    net.room_mut(&b).identity = identity(2);
    net.settle();
    assert_eq!(
        verified_identity(net.events(&a), &b),
        Some(identity(2).public())
    );
    // Bob's next proof (a new round: Carol joins) names another key of
    // his, properly signed: one connection, one identity.
    net.room_mut(&b).identity = identity(3);
    let _c = net.join("carol", "orbit-velvet-canyon");
    net.settle();
    assert!(
        net.room(&a).is_mismatched(&b),
        "a second identity was taken"
    );
}
