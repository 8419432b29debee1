//! Pairwise handshakes (DESIGN.md §3) and the pairwise messages after them.
//!
//! commitment → hello (only once the peer's commitment is in, so nobody can
//! choose what the safety words hash after seeing the other's) → SPAKE2
//! (throttled by the guard) → confirmation → our sender key, sealed to it.

use std::time::Instant;

use streamflow_relay::protocol::Kind;

use super::peer::{PeerState, MAX_EARLY};
use super::wire::{SenderKeyMessage, WireMessage, SEALED_CHAT, SEALED_SENDER_KEY};
use super::{chat_event, Event, Output, Room};
use crate::crypto::pairwise::{Handshake, Hello, PROTOCOL_VERSION};

impl Room {
    /// A peer's commitment: answer with ours if it hasn't had it, then
    /// reveal our hello to it.
    pub(super) fn on_commit(&mut self, from: &str, commit: [u8; 32], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if peer.commit.is_some() {
            return vec![]; // one commitment per peer id
        }
        peer.commit = Some(commit);
        let mut out = Vec::new();
        if !peer.commit_sent {
            peer.commit_sent = true;
            let mine = WireMessage::Commit(self.me.hello().commitment());
            out.push(self.send(Some(from), Kind::Control, mine, now));
        }
        out.extend(self.reveal_to(from, now));
        out
    }

    /// Our hello, to a peer that has both commitments.
    fn reveal_to(&mut self, from: &str, now: Instant) -> Option<Output> {
        let peer = self.peers.get_mut(from)?;
        if peer.hello_sent || peer.commit.is_none() || !peer.commit_sent {
            return None;
        }
        peer.hello_sent = true;
        Some(self.send(
            Some(from),
            Kind::Control,
            WireMessage::Hello(self.me.hello()),
            now,
        ))
    }

    /// A peer's hello: it must match the commitment it sent before it saw
    /// ours. Then its handshake waits for the guard.
    pub(super) fn on_hello(&mut self, from: &str, hello: Hello, now: Instant) -> Vec<Output> {
        let me = self.me.public();
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if peer.hello.is_some() || !matches!(peer.state, PeerState::AwaitingHello) {
            return vec![]; // one hello per peer id
        }
        if hello.v != PROTOCOL_VERSION || peer.commit != Some(hello.commitment()) {
            // No commitment first, or another hello than committed to.
            peer.state = PeerState::Failed;
            return vec![self.failed(from, "hello does not match its commitment".into())];
        }
        if hello.e == me || !self.seen_keys.insert(hello.e) {
            let peer = self.peers.get_mut(from).expect("checked by caller");
            peer.state = PeerState::Failed;
            return vec![]; // one handshake per key, ever
        }
        let peer = self.peers.get_mut(from).expect("checked by caller");
        peer.hello = Some(hello);
        peer.state = PeerState::Queued;
        self.reveal_to(from, now).into_iter().collect()
    }

    /// Starts the queued handshakes the guard allows: SPAKE2 answers are
    /// what lets a guesser test the passphrase, so they are rationed.
    pub(super) fn start_handshakes(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        loop {
            let in_progress = self.peers.values().filter(|p| p.in_progress()).count();
            let Some(id) = self
                .peers
                .iter()
                .find(|(_, p)| matches!(p.state, PeerState::Queued))
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            if !self.guard.may_start(now, in_progress) {
                break;
            }
            self.guard.started(now);
            let peer = self.peers.get_mut(&id).expect("just found");
            let hello = peer.hello.expect("queued peers have a hello");
            let (handshake, pake) =
                Handshake::start(&self.me, &hello, &self.room, &self.psk, &mut self.rng);
            peer.state = PeerState::Handshaking(Box::new(handshake));
            let early = std::mem::take(&mut peer.early);
            let Ok(msg) = pake.try_into() else {
                continue; // SPAKE2 messages are 33 bytes; never otherwise
            };
            let msg = WireMessage::Pake {
                from_e: self.me.public(),
                to_e: hello.e,
                msg,
            };
            out.push(self.send(Some(&id), Kind::Control, msg, now));
            for m in early {
                out.extend(self.on_directed(&id, m, now));
            }
        }
        out
    }

    /// PAKE, confirm and sealed messages, all addressed by (their E, our E).
    pub(super) fn on_directed(
        &mut self,
        from: &str,
        msg: WireMessage,
        now: Instant,
    ) -> Vec<Output> {
        let me = self.me.public();
        let (from_e, to_e) = match &msg {
            WireMessage::Pake { from_e, to_e, .. }
            | WireMessage::Confirm { from_e, to_e, .. }
            | WireMessage::Sealed { from_e, to_e, .. } => (*from_e, *to_e),
            _ => return vec![],
        };
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if to_e != me {
            return vec![]; // for an earlier session of ours
        }
        match peer.hello {
            Some(h) if h.e != from_e => return vec![],
            Some(_) if !matches!(peer.state, PeerState::Queued) => {}
            // Before we are ready: keep their SPAKE2 and confirmation (small,
            // fixed-size, two at most); anything else can't be valid yet.
            _ => {
                if matches!(msg, WireMessage::Pake { .. } | WireMessage::Confirm { .. })
                    && peer.early.len() < MAX_EARLY
                {
                    peer.early.push(msg);
                }
                return vec![];
            }
        }
        match msg {
            WireMessage::Pake { msg, .. } => self.on_pake(from, &msg, now),
            WireMessage::Confirm { mac, .. } => self.on_confirm(from, &mac, now),
            WireMessage::Sealed {
                ctr, ciphertext, ..
            } => self.on_sealed(from, ctr, &ciphertext, now),
            _ => vec![],
        }
    }

    fn on_pake(&mut self, from: &str, msg: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        // Only a handshake in progress accepts a SPAKE2 message: a replayed
        // one can never create a second channel or reset counters.
        let PeerState::Handshaking(_) = peer.state else {
            return vec![];
        };
        let PeerState::Handshaking(handshake) =
            std::mem::replace(&mut peer.state, PeerState::Failed)
        else {
            return vec![];
        };
        match handshake.finish(&self.me, msg) {
            Ok((channel, confirm)) => {
                let their_e = channel.their_public();
                peer.state = PeerState::AwaitingConfirm(Box::new(channel));
                let msg = WireMessage::Confirm {
                    from_e: self.me.public(),
                    to_e: their_e,
                    mac: confirm,
                };
                vec![self.send(Some(from), Kind::Control, msg, now)]
            }
            // Garbage, or a weak key: a broken peer, not a verdict on the
            // passphrase (only a failed confirmation is one). It still cost
            // us a handshake, so the guard counts it.
            Err(e) => {
                let mut out = vec![self.failed(from, format!("handshake: {e}"))];
                out.extend(self.guard_failure(from, now));
                out
            }
        }
    }

    fn guard_failure(&mut self, from: &str, now: Instant) -> Option<Output> {
        let newcomer = self.peers.get(from).is_some_and(|p| !p.member_before_us);
        if !newcomer {
            return None;
        }
        self.guard
            .failed(now)
            .map(|(failed, wait)| Output::Event(Event::Guessing { failed, wait }))
    }

    fn mismatch(&mut self, from: &str, now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        peer.state = PeerState::Mismatch;
        if peer.member_before_us {
            self.first_mismatch.get_or_insert(now);
        }
        let mut out = vec![Output::Event(Event::AuthMismatch {
            peer: from.to_string(),
        })];
        out.extend(self.guard_failure(from, now));
        out
    }

    fn on_confirm(&mut self, from: &str, mac: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        let PeerState::AwaitingConfirm(channel) = &peer.state else {
            return vec![];
        };
        if channel.verify_confirm(mac).is_err() {
            return self.mismatch(from, now);
        }
        let PeerState::AwaitingConfirm(channel) =
            std::mem::replace(&mut peer.state, PeerState::Failed)
        else {
            return vec![];
        };
        peer.state = PeerState::Verified(channel);
        peer.last_auth = now;
        self.refresh_safety_words();
        // A newcomer must not read what we sealed before it joined: move our
        // key one ratchet step on (the others follow by themselves) if it has
        // been used, then hand the newcomer the current key only.
        let mut out = Vec::new();
        if self.key.has_sealed() {
            out.extend(self.ratchet(now));
        }
        out.extend(self.deliver_key(from, now));
        out
    }

    /// Seals `plaintext` to one verified peer over the pairwise channel.
    fn seal_pairwise(
        &mut self,
        to: &str,
        kind: u8,
        plaintext: &[u8],
        now: Instant,
    ) -> Option<Output> {
        let me = self.me.public();
        let peer = self.peers.get_mut(to)?;
        let PeerState::Verified(channel) = &mut peer.state else {
            return None;
        };
        let (ctr, ciphertext) = channel.seal(kind, plaintext);
        let msg = WireMessage::Sealed {
            from_e: me,
            to_e: channel.their_public(),
            ctr,
            ciphertext,
        };
        Some(self.send(Some(to), Kind::Control, msg, now))
    }

    pub(super) fn deliver_key(&mut self, to: &str, now: Instant) -> Option<Output> {
        let plaintext = SenderKeyMessage {
            kid: self.key.kid(),
            base: self.key.base().clone(),
            name: self.name.clone(),
        }
        .encode();
        self.seal_pairwise(to, SEALED_SENDER_KEY, &plaintext, now)
    }

    /// A chat line for one verified member only, sealed pairwise: nobody
    /// else can read it, whatever the relay does with it. (For lines typed
    /// before a reconnect, owed to the members of then.)
    pub fn send_private_chat(&mut self, to: &str, text: &str, now: Instant) -> Option<Output> {
        self.seal_pairwise(to, SEALED_CHAT, text.as_bytes(), now)
    }

    fn on_sealed(&mut self, from: &str, ctr: u64, ct: &[u8], now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(from).expect("checked");
        let PeerState::Verified(channel) = &mut peer.state else {
            return vec![];
        };
        // Key deliveries and private chat are told apart by their AAD.
        let (kind, plaintext) = match channel.open(SEALED_SENDER_KEY, ctr, ct) {
            Ok(p) => (SEALED_SENDER_KEY, zeroize::Zeroizing::new(p)),
            Err(_) => match channel.open(SEALED_CHAT, ctr, ct) {
                Ok(p) => (SEALED_CHAT, zeroize::Zeroizing::new(p)),
                Err(e) => return vec![self.failed(from, e.to_string())],
            },
        };
        if kind == SEALED_CHAT {
            let name = peer.name.clone().unwrap_or_else(|| from.to_string());
            return vec![chat_event(from, name, &plaintext)];
        }
        let Ok(key) = SenderKeyMessage::decode(&plaintext) else {
            return vec![self.failed(from, "malformed key message".into())];
        };
        peer.keyring.deliver(key.kid, key.base, now);
        let first = peer.name.is_none();
        peer.name = Some(key.name.clone());
        if first {
            vec![Output::Event(Event::PeerVerified {
                peer: from.to_string(),
                name: key.name,
                safety_words: self.safety_words.clone(),
            })]
        } else {
            vec![]
        }
    }
}
