//! Identity in the session: what `known_peers` says of each member as it
//! is verified, and "we compared the words" (which verifies the members
//! now, and under `--only-known` hands them our sender key).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::driver::Driver;
use super::{Session, SessionEvent};
use crate::crypto::identity::Fingerprint;
use crate::identity::known::{Known, Trust};
use crate::room::{Event, Room};

/// `None`: nothing known of anyone, and nothing said (the demo's and
/// the benchmarks' synthetic members).
pub(super) type SharedTrust = Option<Arc<Mutex<Trust>>>;

fn lock(trust: &Arc<Mutex<Trust>>) -> std::sync::MutexGuard<'_, Trust> {
    trust.lock().unwrap_or_else(|e| e.into_inner())
}

impl Driver {
    /// Fills in what we knew of a newly verified member's identity, and
    /// says so loudly when its name came with another key.
    pub(super) async fn with_known(&mut self, mut e: Event) -> Event {
        // Every frame passes here: only these three concern identities.
        let concerns = matches!(
            e,
            Event::PeerVerified { .. } | Event::PeerRenamed { .. } | Event::PeerLeft { .. }
        );
        if !concerns {
            return e;
        }
        let Some(trust) = self.trust.clone() else {
            return e;
        };
        match &mut e {
            Event::PeerVerified {
                peer,
                name,
                identity,
                known,
                known_as,
                ..
            } => {
                self.identities.insert(peer.clone(), *identity);
                let verdict = self.check(&trust, peer, name, identity).await;
                *known = Some(verdict.known);
                *known_as = verdict.known_as;
            }
            // Names are self-chosen: a new one may be another's.
            Event::PeerRenamed { peer, new, .. } => {
                if let Some(identity) = self.identities.get(peer).copied() {
                    self.check(&trust, peer, new, &identity).await;
                }
            }
            Event::PeerLeft { peer, .. } => {
                self.identities.remove(peer);
            }
            _ => {}
        }
        e
    }

    /// What known_peers says of `identity` under `name`; a changed key is
    /// said at once.
    async fn check(
        &mut self,
        trust: &Arc<Mutex<Trust>>,
        peer: &str,
        name: &str,
        identity: &[u8; 32],
    ) -> crate::identity::known::Verdict {
        let (verdict, saved) = lock(trust).arrived(identity, name);
        if let Err(why) = saved {
            let _ = self
                .events
                .send(SessionEvent::Warning(format!(
                    "known peers not saved: {why}"
                )))
                .await;
        }
        if verdict.known == Known::Changed {
            let _ = self
                .events
                .send(SessionEvent::IdentityChanged {
                    peer: peer.to_string(),
                    name: name.to_string(),
                    identity: Fingerprint::of(identity),
                    previous: verdict.previous.clone(),
                })
                .await;
        }
        verdict
    }
}

impl Session {
    /// `--only-known`: the identities our sender key may go to.
    pub(super) fn allowed_identities(&self) -> Option<std::collections::HashSet<Fingerprint>> {
        self.config.only_known.then(|| {
            self.trust
                .as_ref()
                .map(|t| lock(t).verified())
                .unwrap_or_default()
        })
    }

    /// The user compared the safety words with everyone: each member now
    /// is verified (if the words are still the ones compared).
    pub(super) async fn verify_members(
        &mut self,
        words: Option<String>,
        room: &mut Room,
        driver: &mut Driver,
    ) {
        let now = Instant::now();
        let current = room.safety_words().to_string();
        let refuse = if current.is_empty() {
            Some("nothing to verify yet: the safety words show once everyone here has proved the passphrase".to_string())
        } else if words.as_deref().is_some_and(|w| w.trim() != current) {
            Some(format!(
                "not verified: the safety words are now \"{current}\"; compare these, then verify again"
            ))
        } else {
            None
        };
        if let Some(why) = refuse {
            self.emit(SessionEvent::Warning(why)).await;
            return;
        }
        let members = room.member_identities();
        let outside = room.verified_peers().len().saturating_sub(members.len());
        if outside > 0 {
            self.emit(SessionEvent::Warning(format!(
                "{outside} member(s) are not in these words yet (still settling): verify again once the words include them"
            )))
            .await;
        }
        let list: Vec<([u8; 32], String)> = members
            .iter()
            .map(|(_, name, identity)| (*identity, name.clone()))
            .collect();
        let saved = match &self.trust {
            Some(t) => lock(t).verify(&list),
            None => Ok(()),
        };
        if let Err(why) = saved {
            self.emit(SessionEvent::Warning(format!(
                "known peers not saved: {why}"
            )))
            .await;
        }
        let fingerprints: Vec<Fingerprint> = list.iter().map(|(i, _)| Fingerprint::of(i)).collect();
        self.emit(SessionEvent::IdentitiesVerified(
            members
                .iter()
                .zip(&fingerprints)
                .map(|((peer, ..), fp)| (peer.clone(), *fp))
                .collect(),
        ))
        .await;
        let out = room.allow(&fingerprints, now);
        driver.apply(room, out).await;
    }
}
