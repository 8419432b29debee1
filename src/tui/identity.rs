//! Identity in the TUI: the loud warning when a known name comes with
//! another key, and `w` ("we compared the words"), pressed twice.

use std::time::{Duration, Instant};

use super::app::App;
use crate::identity::known::Known;
use crate::session::{SessionCommand, SessionEvent};

/// How long the second `w` may take.
const CONFIRM_VERIFY: Duration = Duration::from_secs(5);

impl App {
    pub(super) fn on_identity(&mut self, ev: SessionEvent) {
        match ev {
            SessionEvent::IdentityChanged {
                peer,
                name,
                previous,
                ..
            } => {
                let warning = crate::identity::changed_warning(&name, previous.as_ref());
                // The session says "changed" just before "verified", and a
                // member who was here before us had no PeerJoined: the tile
                // may not exist yet, so make it.
                let t = self.tile(&peer);
                t.known = Some(Known::Changed);
                t.identity_warning = Some(crate::identity::changed_note(previous.as_ref()));
                self.notice(format!("⚠ {warning}"));
            }
            SessionEvent::IdentitiesVerified(list) => {
                for (peer, _) in &list {
                    if let Some(t) = self.peers.iter_mut().find(|t| t.id == *peer) {
                        t.known = Some(Known::Verified);
                        t.identity_warning = None;
                    }
                }
                let names: Vec<String> = list.iter().map(|(p, _)| self.name_of(p)).collect();
                self.notice(format!(
                    "✓✓ verified: {} (remembered for later calls)",
                    names.join(", ")
                ));
            }
            _ => {}
        }
    }

    /// `w`: the first press asks, naming the words; the second, within a
    /// few seconds and under the same words, marks everyone here verified.
    pub(super) fn verify_key(&mut self, now: Instant) -> Option<SessionCommand> {
        let words = self.status.safety_words.clone();
        if words.is_empty() {
            self.flash("nothing to verify yet: the safety words show once everyone has proved the passphrase");
            return None;
        }
        let members = self.peers.iter().filter(|t| t.verified).count();
        match self.verify_armed.take() {
            Some((until, armed)) if now < until && armed == words => {
                self.flash(format!("marking {members} verified…"));
                Some(SessionCommand::Verify { words: Some(words) })
            }
            _ => {
                self.verify_armed = Some((now + CONFIRM_VERIFY, words.clone()));
                self.flash(format!(
                    "did everyone read you the words \"{words}\"? w again marks {members} verified for later calls"
                ));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::Event;
    use crate::tui::render::ColourMode;
    use crossterm::event::{KeyCode, KeyEvent};

    fn app_with(peer: &str, known: Known) -> App {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(SessionEvent::Room(Event::PeerVerified {
            peer: peer.into(),
            name: "alice".into(),
            tag: "3f2a".into(),
            safety_words: String::new(),
            identity: [1; 32],
            known: Some(known),
            known_as: None,
        }));
        app
    }

    #[test]
    fn a_changed_key_is_said_in_the_chat_and_stays_on_the_tile() {
        let mut app = app_with("p1", Known::Changed);
        app.on_session(SessionEvent::IdentityChanged {
            peer: "p1".into(),
            name: "alice".into(),
            identity: crate::crypto::identity::Fingerprint([1; 32]),
            previous: Some(crate::identity::known::Previous {
                fingerprint: crate::crypto::identity::Fingerprint([2; 32]),
                verified: true,
                since: "2026-12-01".into(),
            }),
        });
        let said = "alice's identity key is not the one you verified on 2026-12-01";
        assert!(app.chat.iter().any(|l| l.text.contains(said)));
        let note = app.peers[0].identity_warning.clone().unwrap();
        assert!(
            note.contains("not the key you verified on 2026-12-01"),
            "{note}"
        );
        // Verifying (after comparing the words) clears it.
        app.on_session(SessionEvent::IdentitiesVerified(vec![(
            "p1".into(),
            crate::crypto::identity::Fingerprint([1; 32]),
        )]));
        assert_eq!(app.peers[0].known, Some(Known::Verified));
        assert!(app.peers[0].identity_warning.is_none());
    }

    /// A member already in the room when we joined has no PeerJoined; the
    /// session reports the changed key before the member's PeerVerified.
    #[test]
    fn a_changed_key_before_the_tile_exists_still_reaches_the_tile() {
        let mut app = App::new("me", ColourMode::TrueColor, None);
        app.on_session(SessionEvent::IdentityChanged {
            peer: "p1".into(),
            name: "alice".into(),
            identity: crate::crypto::identity::Fingerprint([1; 32]),
            previous: None,
        });
        app.on_session(SessionEvent::Room(Event::PeerVerified {
            peer: "p1".into(),
            name: "alice".into(),
            tag: "3f2a".into(),
            safety_words: String::new(),
            identity: [1; 32],
            known: Some(Known::Changed),
            known_as: None,
        }));
        assert_eq!(app.peers.len(), 1);
        assert_eq!(app.peers[0].known, Some(Known::Changed));
        assert!(app.peers[0].identity_warning.is_some());
    }

    #[test]
    fn w_twice_under_the_same_words_verifies() {
        let mut app = app_with("p1", Known::New);
        let w = || KeyEvent::from(KeyCode::Char('w'));
        // No words yet: nothing to verify.
        assert!(app.on_key(w()).is_none());
        app.status.safety_words = "able baker charlie delta".into();
        assert!(app.on_key(w()).is_none(), "the first w only asks");
        match app.on_key(w()) {
            Some(SessionCommand::Verify { words }) => {
                assert_eq!(words.as_deref(), Some("able baker charlie delta"))
            }
            other => panic!("expected verify, got {other:?}"),
        }
        // Another key between the two presses disarms it.
        assert!(app.on_key(w()).is_none());
        app.on_key(KeyEvent::from(KeyCode::Char('x')));
        assert!(app.on_key(w()).is_none());
        // So do words that changed in between.
        app.status.safety_words = "echo foxtrot golf hotel".into();
        assert!(app.on_key(w()).is_none());
        assert!(app.on_key(w()).is_some());
    }
}

#[cfg(test)]
mod tag_tests {
    use crate::crypto::identity::Fingerprint;
    use crate::room::Event;
    use crate::session::SessionEvent;
    use crate::tui::app::App;
    use crate::tui::render::ColourMode;

    /// Two "alice"s whose keys share their first four fingerprint digits
    /// (one ground to match the other's): their labels still differ.
    #[test]
    fn namesakes_with_ground_keys_get_longer_tags() {
        let first = [0u8; 32];
        let want = Fingerprint::of(&first).short();
        let ground = (1u32..)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_be_bytes());
                k
            })
            .find(|k| Fingerprint::of(k).short() == want)
            .expect("a match within 2^32");
        let mut app = App::new("me", ColourMode::TrueColor, None);
        for (peer, identity) in [("p1", first), ("p2", ground)] {
            app.on_session(SessionEvent::Room(Event::PeerVerified {
                peer: peer.into(),
                name: "alice".into(),
                tag: Fingerprint::of(&identity).short(),
                safety_words: String::new(),
                identity,
                known: None,
                known_as: None,
            }));
        }
        let (a, b) = (app.name_of("p1"), app.name_of("p2"));
        assert_ne!(a, b);
        assert!(
            a.starts_with("alice·") && b.starts_with("alice·"),
            "{a} {b}"
        );
    }
}
