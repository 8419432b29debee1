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
        let Event::PeerVerified {
            peer,
            name,
            identity,
            known,
            ..
        } = &mut e
        else {
            return e;
        };
        let Some(trust) = &self.trust else {
            return e;
        };
        let (verdict, saved) = lock(trust).arrived(identity, name);
        *known = Some(verdict.known);
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
                    peer: peer.clone(),
                    name: name.clone(),
                    identity: Fingerprint::of(identity),
                    previous: verdict.previous,
                })
                .await;
        }
        e
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
