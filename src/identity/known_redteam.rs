//! Red team: `known_peers` (claim 4 of the identity review, see the core's
//! `room::tests::identity_redteam`): hostile names inject nothing, a
//! changed key never looks verified, a hostile file never panics.

use super::known::{Known, Trust};
use crate::crypto::identity::Fingerprint;
use crate::room::wire::ProofMessage;

// ───────────────────── Claim 4: known_peers ─────────────────────

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sf-idrt-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d.join("known_peers")
}

/// A name as a peer's proof delivers it (decoded, cleaned).
fn wire_name(raw: &[u8]) -> String {
    let mut buf = vec![0u8; 64 + 32 + 64];
    buf.push(raw.len().min(64) as u8);
    buf.extend_from_slice(&raw[..raw.len().min(64)]);
    buf.resize(64 + 32 + 64 + 1 + 64, 0);
    ProofMessage::decode(&buf).unwrap().name
}

/// Claim 4 holds: names built to look like entries (newlines of every
/// kind, tabs, form feeds, NEL, line/paragraph separators, a fingerprint
/// and "verified") land as one entry each, all `seen`; nothing verified,
/// and the key the injected line names stays unknown.
#[test]
fn hostile_names_inject_no_lines_or_states() {
    let path = tmp("inject");
    let victim = [200u8; 32];
    let line = format!(
        "{}  verified  2020-01-01  2020-01-01  2020-01-01  alice",
        Fingerprint::of(&victim).hex()
    );
    let names: Vec<String> = [
        format!("x\n{line}"),
        format!("x\r{line}"),
        format!("x\r\n{line}"),
        format!("x\u{0b}{line}"),
        format!("x\u{0c}{line}"),
        format!("x\u{85}{line}"),
        format!("x\u{2028}{line}"),
        format!("x\u{2029}{line}"),
        format!("\n{line}"),
        line.clone(),
        String::from("   \t\n  "),
        String::new(),
    ]
    .into_iter()
    .chain([
        wire_name(format!("a\n{line}").as_bytes()),
        wire_name(&[0xff; 64]),
    ])
    .enumerate()
    // Each its own name (else two that clean alike are one name, two keys:
    // "changed", rightly).
    .map(|(i, n)| format!("{i}{n}"))
    .collect();
    let mut t = Trust::load(path.clone(), true).unwrap();
    for (i, name) in names.iter().enumerate() {
        let key = [i as u8 + 1; 32];
        let (v, saved) = t.arrived(&key, name);
        saved.unwrap();
        assert_eq!(v.known, Known::New, "{name:?}");
    }
    let mut t = Trust::load(path.clone(), true).unwrap();
    assert!(t.verified().is_empty(), "a name injected a verified entry");
    let text = std::fs::read_to_string(&path).unwrap();
    let entries = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(entries, names.len(), "{text}");
    assert_eq!(t.arrived(&victim, "alice").0.known, Known::New);
    // Each arrives again as seen (its own line still parses as its own).
    let mut t = Trust::load(path.clone(), true).unwrap();
    for (i, name) in names.iter().enumerate() {
        assert_eq!(
            t.arrived(&[i as u8 + 1; 32], name).0.known,
            Known::Seen,
            "{name:?}"
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Claim 4 holds: hand-edited and hostile files (odd hex, multibyte text
/// where fields go, short lines, huge fields, invalid UTF-8, a file over
/// the limit) load, classify, verify and save without a panic.
#[test]
fn hostile_known_peers_files_never_panic() {
    use rand_chacha::rand_core::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;
    let path = tmp("fuzz");
    let fp = Fingerprint::of(&[1; 32]).hex();
    let pieces: Vec<String> = vec![
        fp.clone(),
        fp.to_uppercase(),
        "+".repeat(64),
        "+f".repeat(32),
        "é".repeat(32),
        format!("{}é", &fp[..62]),
        "ß".repeat(40),
        "verified".into(),
        "seen".into(),
        "changed".into(),
        "VERIFIED".into(),
        "2026-12-07".into(),
        "2026-1é-07".into(),
        "99999-12-07".into(),
        "----------".into(),
        "日本語日".into(),
        "\t".into(),
        " ".into(),
        "#".into(),
        "\u{2028}".into(),
        "\u{FFFD}".into(),
        String::new(),
        "x".repeat(5000),
    ];
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for _ in 0..300 {
        let mut text = String::new();
        for _ in 0..(rng.next_u32() % 12) {
            for _ in 0..(rng.next_u32() % 9) {
                text.push_str(&pieces[rng.next_u32() as usize % pieces.len()]);
                if rng.next_u32() % 3 > 0 {
                    text.push(' ');
                }
            }
            text.push('\n');
        }
        std::fs::write(&path, &text).unwrap();
        if let Ok(mut t) = Trust::load(path.clone(), true) {
            let _ = t.verified();
            let _ = t.arrived(&[1; 32], "alice");
            let _ = t.arrived(&[2; 32], &text);
            let _ = t.verify(&[([1; 32], "alice".into()), ([3; 32], text.clone())]);
        }
    }
    std::fs::write(&path, [0xffu8, 0xfe, b'\n', 0x80]).unwrap();
    assert!(Trust::load(path.clone(), true).is_err());
    std::fs::write(&path, vec![b'#'; (8 << 20) + 1]).unwrap();
    assert!(Trust::load(path.clone(), true).is_err());
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Claim 4 holds for look-alike names: a new key under "alice" with
/// invisible or altered characters is never `verified` (it shows `new`,
/// not `changed`: look-alikes dodge the warning, but not into ✓✓).
#[test]
fn look_alike_names_never_look_verified() {
    let path = tmp("lookalike");
    let alice = [1u8; 32];
    let mut t = Trust::load(path.clone(), true).unwrap();
    t.arrived(&alice, "alice").1.unwrap();
    t.verify(&[(alice, "alice".into())]).unwrap();
    let mut t = Trust::load(path.clone(), true).unwrap();
    for (i, name) in [
        "alice",
        " alice ",
        "alice\n",
        "alice\u{200b}",
        "alic\u{435}",
        "ALICE",
        "alice\u{202e}",
        "\u{FFFD}alice",
    ]
    .iter()
    .enumerate()
    {
        let v = t.arrived(&[50 + i as u8; 32], name).0;
        assert_ne!(v.known, Known::Verified, "{name:?}");
    }
    assert_eq!(t.verified().len(), 1);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Once a break of claim 4, fixed (a name another key is known by is `changed`; a verified key under a new name says the old one) and kept as a test (a key that isn't "alice"'s looks verified as
/// "alice"): Bob's key is verified (under "bob"). In a later call Bob's
/// proof names him "alice", whose own verified key is in the file.
/// `classify` looks at the key's state first: Bob's key is `verified`, so
/// the verdict is `Verified` with no `previous`, and the tile shows
/// "alice ✓✓" (the self-chosen name, the ✓✓ of Bob's key); no "changed"
/// warning, though "alice" arrived with a key that isn't the one verified
/// as alice. (The same by renaming mid-call: `PeerRenamed` never
/// reclassifies.)
///
/// Fix: when a verified key arrives under a name other than the one it
/// was verified under, show the stored name (a petname) rather than the
/// self-chosen one, or report it `Changed`/name-mismatch when that name
/// belongs to another known key; reclassify on `PeerRenamed`.
#[test]
fn a_verified_key_under_another_known_name_is_changed() {
    let path = tmp("petname");
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let mut t = Trust::load(path.clone(), true).unwrap();
    t.verify(&[(alice, "alice".into()), (bob, "bob".into())])
        .unwrap();
    let mut t = Trust::load(path.clone(), true).unwrap();
    let v = t.arrived(&bob, "alice").0;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert!(
        !(v.known == Known::Verified && v.previous.is_none()),
        "bob's key arrived as \"alice\" and is shown verified, without a warning: {v:?}"
    );
}

/// Once a break of claim 4, fixed (renames are checked again) and kept as a test: 4's "changed" state (a changed key looks new, not
/// changed): the verdict is cached per key for the session, on the first
/// arrival. Mallory's new key first arrives named "mallory" (`new`), then
/// she reconnects (or simply renames in the next round) as "alice", whose
/// verified key is in the file: still `new`, no "KEY CHANGED" warning.
///
/// Fix: key the cache by (key, name), or reclassify whenever the name
/// changes (on arrival and on `PeerRenamed`), keeping only "new vs seen"
/// sticky for the session.
#[test]
fn a_new_key_renamed_to_a_known_name_is_changed() {
    let path = tmp("dodge");
    let (alice, mallory) = ([1u8; 32], [7u8; 32]);
    let mut t = Trust::load(path.clone(), true).unwrap();
    t.verify(&[(alice, "alice".into())]).unwrap();
    let mut t = Trust::load(path.clone(), true).unwrap();
    assert_eq!(t.arrived(&mallory, "mallory").0.known, Known::New);
    let v = t.arrived(&mallory, "alice").0;
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    assert_eq!(
        v.known,
        Known::Changed,
        "a new key named \"alice\" shows as {v:?}"
    );
}

/// Claim 4 against a flood of hostile names (once a break: a peer's
/// name is up to 64 bytes on the wire, but lossy decoding turns each
/// invalid byte into U+FFFD, 3 bytes, and a full file of such lines went
/// past the 1 MiB limit, so the next load refused it and every verified
/// key was forgotten). Names are now cut to 64 bytes in the file, lines
/// stay short, and a file holding `MAX_ENTRIES` of the longest lines
/// still loads with what it verified.
#[test]
fn hostile_names_cannot_grow_the_file_past_its_limit() {
    const MAX_ENTRIES: usize = 4096; // known.rs
    let path = tmp("grow");
    let alice = [1u8; 32];
    let hostile = wire_name(&[0xff; 64]);
    assert_eq!(hostile.len(), 192);
    let mut t = Trust::load(path.clone(), true).unwrap();
    t.verify(&[(alice, "alice".into())]).unwrap();
    t.arrived(&[2; 32], &hostile).1.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let sample = text.lines().last().unwrap().to_string();
    assert!(sample.len() <= 200, "a line of {} bytes", sample.len());
    let old_fp = Fingerprint::of(&[2; 32]).hex();
    // Earlier arrivals, as they were written: the file full.
    let mut filled = text.clone();
    for i in 0..MAX_ENTRIES - 2 {
        let fp = Fingerprint::of(
            &(i as u64 + 1000)
                .to_be_bytes()
                .repeat(4)
                .try_into()
                .unwrap(),
        )
        .hex();
        filled.push_str(&sample.replace(&old_fp, &fp));
        filled.push('\n');
    }
    std::fs::write(&path, &filled).unwrap();
    let mut t = Trust::load(path.clone(), true).expect("a full file loads");
    for i in 0..10u8 {
        t.arrived(&[100 + i; 32], &hostile).1.unwrap();
    }
    // A new call: alice is still verified, and a new key for "alice" is
    // still flagged.
    let after = Trust::load(path.clone(), true);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
    let mut after = after.expect("still loads");
    assert!(after.verified().contains(&Fingerprint::of(&alice)));
    assert_eq!(after.arrived(&[9; 32], "alice").0.known, Known::Changed);
}
