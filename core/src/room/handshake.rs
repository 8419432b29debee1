//! One round's pairwise handshake with each participant (DESIGN.md §3),
//! and the pairwise messages after it.
//!
//! hello → SPAKE2 (throttled by the guard) → confirmations, the
//! newcomer's first (the member who was here first checks it before
//! sending its own, so a guesser can't test a guess and slip away
//! uncounted) → each side's proof of its signing key, sealed in the new
//! channel → our sender key.

use crate::time::Instant;

use crate::protocol::Kind;

use super::guard::Failure;
use super::peer::{Hs, MAX_EARLY};
use super::wire::{
    PresenceMessage, ProofMessage, SenderKeyMessage, WireMessage, SEALED_CHAT, SEALED_PRESENCE,
    SEALED_PROOF, SEALED_SENDER_KEY, SEALED_SHARE_KEYS,
};
use super::{chat_event, Event, Output, Room, TIE_WAIT};
use crate::crypto::pairwise::{Handshake, PairwiseChannel, CONFIRM_LEN, NONCE_LEN};

impl Room {
    /// Starts the queued handshakes: with proven members at once, with
    /// anyone else as the guard allows (each SPAKE2 run lets its peer test
    /// one guess), oldest first. A peer whose SPAKE2 message is already
    /// here is waiting on us, not holding anything of ours: it starts even
    /// when every slot is taken (else peers new to each other can wait on
    /// each other in a circle until their handshakes time out).
    pub(super) fn start_handshakes(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            let unproven_in_progress = self
                .peers
                .values()
                .filter(|p| !p.member && p.hs.in_progress())
                .count();
            let next = self
                .peers
                .iter()
                .filter_map(|(id, p)| match p.hs {
                    Hs::Queued(at) => {
                        let answered = p
                            .early
                            .iter()
                            .any(|m| matches!(m, WireMessage::Pake { .. }));
                        Some(((!p.member, !answered, at), p.member, answered, id))
                    }
                    _ => None,
                })
                // Members first, then peers waiting on us, then the longest
                // waiting.
                .min_by_key(|(order, ..)| *order)
                .map(|(_, member, answered, id)| (member, answered, id.clone()));
            let Some((member, answered, id)) = next else {
                break;
            };
            if !member {
                let holding = if answered { 0 } else { unproven_in_progress };
                if !self.guard.may_start(now, holding) {
                    break;
                }
                self.guard.started(now);
            }
            let peer = self.peers.get_mut(&id).expect("just found");
            let hello = peer.hello.expect("queued peers have a hello");
            let (handshake, pake) =
                Handshake::start(&self.me, &hello, &self.room, &self.psk, &mut self.rng);
            peer.hs = Hs::Spake(Box::new(handshake));
            peer.hs_started = Some(now);
            peer.charged = !member;
            peer.oracle = false;
            self.stats.handshakes += 1;
            let early = std::mem::take(&mut peer.early);
            let Ok(msg) = pake.try_into() else {
                continue; // SPAKE2 messages are 33 bytes; never otherwise
            };
            let msg = WireMessage::Pake {
                from_n: self.me.hello().n,
                to_n: hello.n,
                msg,
            };
            out.push(self.send(Some(&id), Kind::Control, msg, now));
            for m in early {
                out.extend(self.on_directed(&id, m, now));
            }
        }
        out
    }

    /// PAKE, confirm and sealed messages, all addressed by (their N, our N).
    pub(super) fn on_directed(
        &mut self,
        from: &str,
        msg: WireMessage,
        now: Instant,
    ) -> Vec<Output> {
        let my_n = self.me.hello().n;
        let (from_n, to_n) = match &msg {
            WireMessage::Pake { from_n, to_n, .. }
            | WireMessage::Confirm { from_n, to_n, .. }
            | WireMessage::Sealed { from_n, to_n, .. } => (*from_n, *to_n),
            _ => return vec![],
        };
        if let WireMessage::Sealed {
            ctr, ciphertext, ..
        } = msg
        {
            return self.on_sealed(from, from_n, to_n, ctr, &ciphertext, now);
        }
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if peer.excluded() {
            return vec![];
        }
        if let WireMessage::Confirm { mac, .. } = &msg {
            let settles = peer
                .settling
                .as_ref()
                .is_some_and(|s| s.channel.theirs().n == from_n && s.channel.mine().n == to_n);
            if settles {
                return self.settle(from, mac, now);
            }
        }
        if to_n != my_n {
            return vec![]; // for another round of ours
        }
        match (&peer.hs, peer.hello) {
            (Hs::Spake(_) | Hs::Confirming { .. }, Some(h)) if h.n == from_n => {}
            // Before we are ready: keep their SPAKE2 and confirmation (small,
            // fixed-size, two at most); anything else can't be valid yet.
            (Hs::Idle | Hs::Queued(_), _) => {
                if peer.early.len() < MAX_EARLY {
                    peer.early.push(msg);
                }
                return vec![];
            }
            _ => return vec![],
        }
        match msg {
            WireMessage::Pake { msg, .. } => self.on_pake(from, &msg, now),
            WireMessage::Confirm { mac, .. } => self.on_confirm(from, &mac, now),
            _ => vec![],
        }
    }

    fn on_pake(&mut self, from: &str, msg: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        // Only a handshake waiting for it takes a SPAKE2 message: a replayed
        // one can never create a second channel or reset counters.
        let Hs::Spake(_) = peer.hs else {
            return vec![];
        };
        let Hs::Spake(handshake) = std::mem::replace(&mut peer.hs, Hs::Idle) else {
            return vec![];
        };
        match handshake.finish(&self.me, msg) {
            Ok((channel, confirm)) => {
                // A proven member, or one who was here before us: ours
                // goes first (as soon as the guard lets another
                // confirmation out). A newcomer we don't know confirms
                // first.
                // (Two newcomers to each other: see `break_join_ties`.)
                peer.owe_first = peer.member || peer.member_before_us;
                peer.hs = Hs::Confirming {
                    channel: Box::new(channel),
                    ours: Some(confirm),
                };
                // Their confirmation may have come before their SPAKE2.
                let early = std::mem::take(&mut peer.early);
                let mut out = self.release_confirms(now);
                for m in early {
                    out.extend(self.on_directed(from, m, now));
                }
                out
            }
            // Garbage, or a weak key: a broken peer, not a verdict on the
            // passphrase (only a failed confirmation is one).
            Err(e) => {
                let mut out = vec![self.failed(from, format!("handshake: {e}"))];
                out.extend(self.end_charged(from, now));
                out.extend(self.exclude(from, "sent a malformed handshake", now));
                out
            }
        }
    }

    /// Two members that joined at once through two relays may each have
    /// been announced to the other by `peer_joined` (neither in the other's
    /// welcome), and each would wait for the other's confirmation first.
    /// So a peer announced after us that hasn't confirmed [`TIE_WAIT`] into
    /// the handshake gets ours first, once per connection: charged,
    /// counted as a guess if it never answers, and under the guard's wait
    /// and limit like any confirmation given to an unproven peer.
    pub(super) fn break_join_ties(&mut self, now: Instant) -> Vec<Output> {
        let mut tied = false;
        for peer in self.peers.values_mut() {
            let waiting = matches!(peer.hs, Hs::Confirming { ours: Some(_), .. })
                && !peer.owe_first
                && !peer.member_before_us
                && !peer.member
                && !peer.conceded
                && peer
                    .hs_started
                    .is_some_and(|t| now.duration_since(t) >= TIE_WAIT);
            if waiting {
                peer.owe_first = true;
                peer.conceded = true;
                tied = true;
            }
        }
        if !tied {
            return vec![];
        }
        self.release_confirms(now)
    }

    /// Confirmations given to unproven peers and not yet answered (this
    /// round's, and earlier rounds' still settling): each lets its peer
    /// test a guess.
    fn confirmations_out(&self) -> usize {
        self.peers
            .values()
            .map(|p| usize::from(p.charged && p.oracle) + usize::from(p.settling.is_some()))
            .sum()
    }

    /// Sends the confirmations we owe first: to proven members at once; to
    /// peers not yet proven while fewer than the guard's limit are out
    /// unanswered and no wait is imposed (oldest handshake first).
    pub(super) fn release_confirms(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            let next = self
                .peers
                .iter()
                .filter(|(_, p)| {
                    p.owe_first && matches!(p.hs, Hs::Confirming { ours: Some(_), .. })
                })
                .min_by_key(|(_, p)| (!p.member, p.hs_started))
                .map(|(id, p)| (id.clone(), p.member));
            let Some((id, member)) = next else { break };
            if !member && !self.guard.may_start(now, self.confirmations_out()) {
                break;
            }
            let peer = self.peers.get_mut(&id).expect("just found");
            let Hs::Confirming { channel, ours } = &mut peer.hs else {
                break;
            };
            let (Some(mac), their_n) = (ours.take(), channel.theirs().n) else {
                break;
            };
            peer.oracle = peer.charged;
            out.push(self.send_confirm(&id, their_n, mac, now));
        }
        out
    }

    fn send_confirm(
        &mut self,
        to: &str,
        their_n: [u8; NONCE_LEN],
        mac: [u8; CONFIRM_LEN],
        now: Instant,
    ) -> Output {
        let msg = WireMessage::Confirm {
            from_n: self.me.hello().n,
            to_n: their_n,
            mac,
        };
        self.send(Some(to), Kind::Control, msg, now)
    }

    /// A charged handshake with `id` ends without a valid confirmation.
    fn end_charged(&mut self, id: &str, now: Instant) -> Option<Output> {
        let peer = self.peers.get_mut(id)?;
        if !std::mem::take(&mut peer.charged) {
            return None;
        }
        let how = self.failure_kind(id);
        self.guard_failure(id, how, now)
    }

    pub(super) fn guard_failure(&mut self, id: &str, how: Failure, now: Instant) -> Option<Output> {
        if let Some(p) = self.peers.get_mut(id) {
            p.charged = false;
        }
        self.guard
            .failed(now, how)
            .map(|(failed, wait)| Output::Event(Event::Guessing { failed, wait }))
    }

    fn on_confirm(&mut self, from: &str, mac: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        if !matches!(peer.hs, Hs::Confirming { .. }) {
            // Before their SPAKE2 (reordered): keep it for when we are
            // ready; never let it end the handshake under way.
            if matches!(peer.hs, Hs::Spake(_)) && peer.early.len() < MAX_EARLY {
                peer.early.push(WireMessage::Confirm {
                    from_n: peer.hello.map(|h| h.n).unwrap_or_default(),
                    to_n: self.me.hello().n,
                    mac: mac.try_into().unwrap_or([0; CONFIRM_LEN]),
                });
            }
            return vec![];
        }
        let Hs::Confirming { channel, ours } = std::mem::replace(&mut peer.hs, Hs::Idle) else {
            return vec![];
        };
        let their_n = channel.theirs().n;
        let mut out = Vec::new();
        if channel.verify_confirm(mac).is_err() {
            // Tell them too (they learn nothing new: this run's one guess
            // is spent and counted).
            if let Some(ours) = ours {
                peer.oracle = peer.charged;
                out.push(self.send_confirm(from, their_n, ours, now));
            }
            out.extend(self.mismatch(from, now));
            return out;
        }
        peer.charged = false; // refunded
        peer.owe_first = false;
        if let Some(ours) = ours {
            out.push(self.send_confirm(from, their_n, ours, now));
        }
        let peer = self.peers.get_mut(from).expect("checked");
        peer.old_channel = peer.channel.replace(channel);
        peer.hs = Hs::Proving;
        let channel = peer.channel.as_ref().expect("just set");
        #[cfg(test)]
        let identity = self.claimed_identity.unwrap_or(self.identity.public());
        #[cfg(not(test))]
        let identity = self.identity.public();
        let proof = ProofMessage {
            signature: channel.prove(&self.signing),
            identity,
            identity_signature: channel.prove_identity(&self.identity),
            name: self.name.clone(),
        }
        .encode();
        out.extend(self.seal_pairwise(from, SEALED_PROOF, &proof, now));
        // One fewer confirmation out: another may go.
        out.extend(self.release_confirms(now));
        out
    }

    /// A confirmation for a handshake an earlier round abandoned after
    /// giving our confirmation away: refunded if it checks out, a mismatch
    /// (counted, and part of the verdict on our passphrase) if not.
    fn settle(&mut self, from: &str, mac: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        let Some(settling) = peer.settling.take() else {
            return vec![];
        };
        if settling.channel.verify_confirm(mac).is_ok() {
            return vec![];
        }
        let how = Failure::Guess {
            reported: !peer.member_before_us,
        };
        let mut out: Vec<Output> = self.guard_failure(from, how, now).into_iter().collect();
        out.extend(self.mismatch(from, now));
        out
    }

    /// Their confirmation did not check out: the wrong passphrase, or a
    /// guess.
    fn mismatch(&mut self, from: &str, now: Instant) -> Vec<Output> {
        let mut out = vec![Output::Event(Event::AuthMismatch {
            peer: from.to_string(),
        })];
        let peer = self.peers.get_mut(from).expect("checked");
        if peer.member_before_us {
            self.verdict.refused(from, now);
        }
        out.extend(self.end_charged(from, now));
        out.extend(self.exclude(from, "failed to prove the passphrase", now));
        out
    }

    /// Seals `plaintext` to one member over the newest channel with it.
    fn seal_pairwise(
        &mut self,
        to: &str,
        kind: u8,
        plaintext: &[u8],
        now: Instant,
    ) -> Option<Output> {
        let peer = self.peers.get_mut(to)?;
        let channel = peer.channel.as_mut()?;
        let (ctr, ciphertext) = channel.seal(kind, plaintext);
        let msg = WireMessage::Sealed {
            from_n: channel.mine().n,
            to_n: channel.theirs().n,
            ctr,
            ciphertext,
        };
        Some(self.send(Some(to), Kind::Control, msg, now))
    }

    pub(super) fn deliver_key(&mut self, to: &str, now: Instant) -> Option<Output> {
        let peer = self.peers.get(to)?;
        if !peer.member {
            return None;
        }
        let allowed = self.may_have_key(peer);
        let peer = self.peers.get_mut(to)?;
        peer.withheld = !allowed;
        let plaintext = SenderKeyMessage {
            kid: self.key.kid(),
            base: self.key.base().clone(),
        }
        .encode();
        if !allowed {
            // The same size, at the same moment: our presence instead.
            return self.send_presence(to, now);
        }
        self.seal_pairwise(to, SEALED_SENDER_KEY, &plaintext, now)
    }

    /// Our presence, sealed to one member (see [`SEALED_PRESENCE`]).
    pub(super) fn send_presence(&mut self, to: &str, now: Instant) -> Option<Output> {
        let beat = PresenceMessage {
            timestamp_us: self.now_us,
        }
        .encode();
        self.seal_pairwise(to, SEALED_PRESENCE, &beat, now)
    }

    /// A chat line for one member only, sealed pairwise: nobody else can
    /// read it, whatever the relay does with it. (For lines typed before a
    /// reconnect, owed to the members of then.)
    pub fn send_private_chat(&mut self, to: &str, text: &str, now: Instant) -> Option<Output> {
        let peer = self.peers.get(to)?;
        if !peer.member || !self.may_have_key(peer) {
            return None;
        }
        self.seal_pairwise(to, SEALED_CHAT, text.as_bytes(), now)
    }

    /// Keys for `to`'s shared terminal, sealed to `to` alone. Under
    /// `--only-known`, never to a member we haven't verified: what we type
    /// is at least as private as our picture.
    pub fn send_share_keys(&mut self, to: &str, keys: &[u8], now: Instant) -> Option<Output> {
        let peer = self.peers.get(to)?;
        if !peer.member || !self.may_have_key(peer) {
            return None;
        }
        self.seal_pairwise(to, SEALED_SHARE_KEYS, keys, now)
    }

    fn on_sealed(
        &mut self,
        from: &str,
        from_n: [u8; NONCE_LEN],
        to_n: [u8; NONCE_LEN],
        ctr: u64,
        ct: &[u8],
        now: Instant,
    ) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        if peer.excluded() {
            return vec![];
        }
        let fits = |c: &PairwiseChannel| c.theirs().n == from_n && c.mine().n == to_n;
        let (channel, newest) = match (&mut peer.channel, &mut peer.old_channel) {
            (Some(c), _) if fits(c) => (c, true),
            (_, Some(c)) if fits(c) => (c, false),
            _ => return vec![self.failed(from, "sealed for no channel of ours".into())],
        };
        // The kinds are told apart by their AAD.
        let mut opened = None;
        for kind in [
            SEALED_SENDER_KEY,
            SEALED_PROOF,
            SEALED_CHAT,
            SEALED_SHARE_KEYS,
            SEALED_PRESENCE,
        ] {
            if let Ok(p) = channel.open(kind, ctr, ct) {
                opened = Some((kind, zeroize::Zeroizing::new(p)));
                break;
            }
        }
        let Some((kind, plaintext)) = opened else {
            return vec![self.failed(from, "pairwise message did not open".into())];
        };
        if kind == SEALED_PROOF {
            return self.on_proof(from, newest, &plaintext, now);
        }
        if !peer.member {
            return vec![self.failed(from, "sealed message before a proof".into())];
        }
        if kind == SEALED_PRESENCE {
            // They keep their key from us (for now): their frames don't
            // open here, but this says they are still in the call.
            let Ok(presence) = PresenceMessage::decode(&plaintext) else {
                return vec![self.failed(from, "malformed presence".into())];
            };
            let now_us = self.now_us;
            let peer = self.peers.get_mut(from).expect("checked");
            if peer.freshness.fresh(presence.timestamp_us, now_us) {
                peer.last_auth = now;
            }
            return vec![];
        }
        if kind == SEALED_CHAT {
            let name = peer.name.clone().unwrap_or_else(|| from.to_string());
            return vec![chat_event(from, name, &plaintext)];
        }
        if kind == SEALED_SHARE_KEYS {
            if plaintext.len() > super::MAX_SHARE_KEYS {
                return vec![self.failed(from, "too many keys in one message".into())];
            }
            return vec![Output::Event(Event::ShareKeys {
                from: from.to_string(),
                keys: plaintext.to_vec(),
            })];
        }
        let Ok(key) = SenderKeyMessage::decode(&plaintext) else {
            return vec![self.failed(from, "malformed key message".into())];
        };
        peer.keyring.deliver(key.kid, key.base, now);
        vec![]
    }

    /// Their signing key, proven inside the channel. The first proof on
    /// this connection makes them a member: they get our sender key (after
    /// one ratchet step, so they can't read what we sealed before).
    fn on_proof(
        &mut self,
        from: &str,
        newest: bool,
        plaintext: &[u8],
        now: Instant,
    ) -> Vec<Output> {
        let Ok(proof) = ProofMessage::decode(plaintext) else {
            return vec![self.failed(from, "malformed proof".into())];
        };
        let peer = self.peers.get_mut(from).expect("checked");
        let channel = if newest {
            peer.channel.as_ref()
        } else {
            peer.old_channel.as_ref()
        }
        .expect("opened under it");
        let s = channel.theirs().s;
        let current = newest && matches!(peer.hs, Hs::Proving);
        if channel.verify_proof(&proof.signature).is_err() {
            let mut out = vec![self.failed(from, "signing key not proven".into())];
            out.extend(self.exclude(from, "did not prove its signing key", now));
            return out;
        }
        // One identity per connection: a proof in a later round that names
        // another is someone else's key offered under this member's.
        let same_identity = peer.identity.is_none_or(|i| i == proof.identity);
        if channel
            .verify_identity(&proof.identity, &proof.identity_signature)
            .is_err()
            || !same_identity
        {
            let mut out = vec![self.failed(from, "identity key not proven".into())];
            out.extend(self.exclude(from, "did not prove its identity key", now));
            return out;
        }
        let mut out = Vec::new();
        // One signing key, one member: a second proof of it is the same
        // member back on a new connection (it holds the secret half), and
        // the old connection is gone.
        let twins: Vec<String> = self
            .peers
            .iter()
            .filter(|(id, p)| id.as_str() != from && p.proven_s == Some(s))
            .map(|(id, _)| id.clone())
            .collect();
        for twin in twins {
            out.extend(self.remove_peer(&twin, "replaced", now));
        }
        // The tag tells apart members with the same name: their identity's
        // fingerprint, stable across calls, as many hex digits as it takes
        // to differ from every other identity here (4 at least: a key
        // ground to match another's first digits gets a longer tag); with
        // the signing key's too when the same identity is here twice (one
        // person, two devices).
        let fingerprint = crate::crypto::identity::Fingerprint::of(&proof.identity);
        let others: Vec<[u8; 32]> = self
            .peers
            .iter()
            .filter(|(id, _)| id.as_str() != from)
            .filter_map(|(_, p)| p.identity)
            .chain(std::iter::once(self.identity.public()))
            .collect();
        let twice = others.contains(&proof.identity);
        let digits = others
            .iter()
            .filter(|i| **i != proof.identity)
            .map(|i| {
                fingerprint.common_hex_digits(&crate::crypto::identity::Fingerprint::of(i)) + 1
            })
            .max()
            .unwrap_or(0)
            .max(4);
        let tag = if twice {
            format!(
                "{}/{}",
                fingerprint.prefix(digits),
                crate::crypto::sign::short_tag(&s)
            )
        } else {
            fingerprint.prefix(digits)
        };
        let peer = self.peers.get_mut(from).expect("checked");
        peer.proven_s = Some(s);
        peer.identity = Some(proof.identity);
        peer.last_auth = now;
        let first = !peer.member;
        peer.member = true;
        let old_name = peer.name.replace(proof.name.clone());
        if current {
            peer.hs = Hs::Done;
            peer.hs_started = None;
            self.refresh_safety_words();
        }
        if first {
            // A newcomer must not read what we sealed before it joined: move
            // our key one ratchet step on (the others follow by themselves)
            // if it has been used, then hand the newcomer the current key.
            if self.key.has_sealed() {
                out.extend(self.ratchet(now));
            }
            out.push(Output::Event(Event::PeerVerified {
                peer: from.to_string(),
                name: proof.name,
                tag,
                safety_words: self.safety_words.clone(),
                identity: proof.identity,
                known: None,
                known_as: None,
            }));
        } else if old_name.as_deref() != Some(proof.name.as_str()) {
            out.push(Output::Event(Event::PeerRenamed {
                peer: from.to_string(),
                old: old_name.unwrap_or_default(),
                new: proof.name,
            }));
        }
        if current || first {
            out.extend(self.deliver_key(from, now));
        }
        out
    }
}
