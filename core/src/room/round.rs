//! Rounds of commit-then-reveal (DESIGN.md §3 "Safety words").
//!
//! The safety words hash our hello and the hellos of everyone who took
//! part in our current round. A relay that knows the invite could make two
//! victims show equal words if it could pick its fake hellos after seeing
//! theirs (a birthday search, minutes of work). So:
//!
//! 1. A round starts with a fresh nonce N: a new hello, a new commitment,
//!    sent to every peer.
//! 2. We reveal our hello once every active peer has answered our
//!    commitment with its own (a commitment message that says it saw
//!    ours), or after [`COMMIT_WAIT`] without the stragglers. Those
//!    commitments are the round's participants, fixed at the reveal.
//! 3. A value once revealed is never combined with a commitment made after
//!    it was seen: a different commitment after our reveal starts a new
//!    round (fresh N). So does any change to the participants after the
//!    reveal (one leaves, fails, or stalls), since choosing *which* of them
//!    count after seeing our value would be a choice too.
//! 4. The words appear only when every participant proved the passphrase
//!    and its signing key in this round's handshake, and hash exactly our
//!    hello and theirs.
//!
//! Whatever the relay does (fake joins and leaves, replays, reordering,
//! withholding), each value that goes into the words was committed to
//! before the other values it is combined with were revealed, so the relay
//! gets one guess at the full width of the words per round it forces,
//! never a search. Each forced round shows as churn.
//!
//! A new commitment while our own value is still hidden is answered with
//! ours, to that peer, saying we saw its new one; after our reveal it
//! starts a new round, whose commitments say the same to everyone. So every
//! member reveals only once each peer has seen its current commitment and
//! answered it, and honest members settle on one round after each change
//! (`joins_converge_to_one_round`, and the randomized schedules in the
//! room's attack tests).

use std::collections::HashMap;
use std::time::Duration;

use crate::time::Instant;

use crate::protocol::Kind;

use super::guard::Failure;
use super::peer::{Hs, Settling, Standing};
use super::wire::WireMessage;
use super::{Output, Room};
use crate::crypto::pairwise::{Hello, PROTOCOL_VERSION};

/// How long a round waits for the commitments of all active peers before
/// revealing without the stragglers.
pub const COMMIT_WAIT: Duration = Duration::from_secs(5);
/// How long the commitments must stay unchanged before a round started by
/// a newer commitment reveals. A member that revealed starts a new round
/// on any newer commitment, so members revealing the moment their peers'
/// answers are in, while some of those peers are already moving on, chase
/// each other's rounds forever
/// (`a_late_one_sided_announcement_makes_no_round_storm`); a short quiet
/// settles them first.
pub const REVEAL_QUIET: Duration = Duration::from_millis(150);
/// How often our commitment goes again, before the reveal, to peers that
/// haven't answered it (a message lost, or a peer that joined before it
/// heard of us: across two relays each may wait for the other's).
pub const COMMIT_RESEND: Duration = Duration::from_secs(2);
/// How long a participant may take, after our reveal, to reveal its own
/// hello and finish the handshake (or a charged handshake to finish).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Times a peer that lapsed may come back with a new commitment.
const MAX_READMISSIONS: u8 = 3;

/// Our current round.
pub(super) struct Round {
    pub number: u64,
    pub started: Instant,
    /// When a commitment last came or was answered in this round.
    pub changed: Instant,
    /// Started because a newer commitment came after our reveal: such a
    /// round reveals only after [`REVEAL_QUIET`] without another.
    pub after_newer: bool,
    pub revealed: Option<Instant>,
    /// When our commitment last went (again) to peers that haven't
    /// answered it.
    pub resent: Instant,
    /// Each participant and the commitment our revealed value is combined
    /// with: fixed at the reveal.
    pub participants: HashMap<String, [u8; 32]>,
}

impl Round {
    pub fn new(now: Instant) -> Self {
        Round {
            number: 0,
            started: now,
            changed: now,
            after_newer: false,
            revealed: None,
            resent: now,
            participants: HashMap::new(),
        }
    }
}

impl Room {
    /// A new round: a fresh nonce (so a new hello and commitment), every
    /// handshake of the last round abandoned, our commitment to everyone.
    pub(super) fn start_round(&mut self, now: Instant) -> Vec<Output> {
        self.renew_values();
        self.own_commits.insert(self.me.hello().commitment());
        let number = self.round.number + 1;
        self.round = Round::new(now);
        self.round.number = number;
        self.stats.rounds += 1;
        self.safety_words.clear();
        self.words_cover.clear();
        let mut out = Vec::new();
        let ids: Vec<String> = self.peers.keys().cloned().collect();
        for id in &ids {
            out.extend(self.abandon_handshake(id, now));
        }
        // Nobody has answered this commitment yet.
        for peer in self.peers.values_mut() {
            peer.commit_fresh = false;
        }
        for id in &ids {
            if self.peers.get(id).is_some_and(|p| !p.excluded()) {
                out.push(self.send_commit(id, now));
            }
        }
        out
    }

    /// A fresh nonce for the new round.
    #[cfg(not(test))]
    fn renew_values(&mut self) {
        self.me.renew(&mut self.rng);
    }

    #[cfg(test)]
    fn renew_values(&mut self) {
        if let Some(n) = self.forced_nonce.take() {
            self.me.set_nonce(n);
        } else if !(self.reuse_revealed_values && self.round.number > 0) {
            self.me.renew(&mut self.rng);
        }
    }

    /// Our commitment to one peer, with the one of its we hold.
    fn send_commit(&mut self, to: &str, now: Instant) -> Output {
        let msg = WireMessage::Commit {
            round: self.round.number,
            commit: self.me.hello().commitment(),
            seen: self.peers.get(to).and_then(|p| p.commit).unwrap_or([0; 32]),
        };
        self.send(Some(to), Kind::Control, msg, now)
    }

    /// Ends this round's handshake with `id`. A charged handshake that
    /// gave away our confirmation is settled later (refunded if theirs
    /// still comes and checks out); one that gave nothing away costs
    /// nothing.
    fn abandon_handshake(&mut self, id: &str, now: Instant) -> Vec<Output> {
        let Some(peer) = self.peers.get_mut(id) else {
            return vec![];
        };
        let hs = std::mem::replace(&mut peer.hs, Hs::Idle);
        peer.hs_started = None;
        peer.early.clear();
        let mut out = Vec::new();
        if let Hs::Confirming {
            channel,
            ours: None,
        } = hs
        {
            if peer.charged && peer.oracle {
                if peer.settling.take().is_some() {
                    out.extend(self.guard_failure(id, old_failure(), now));
                }
                let peer = self.peers.get_mut(id).expect("checked above");
                peer.settling = Some(Settling {
                    channel,
                    since: now,
                });
            }
        }
        let peer = self.peers.get_mut(id).expect("checked above");
        peer.charged = false;
        peer.oracle = false;
        peer.owe_first = false;
        out
    }

    /// After our reveal, a peer that never sent us a commitment (its first
    /// went before we knew of it, or it waits for ours: it joined through
    /// another relay before hearing of us) gets a new round, once, instead
    /// of being left out for good.
    fn prompt_the_silent(&mut self, now: Instant) -> Vec<Output> {
        if self.round.revealed.is_none() {
            return vec![];
        }
        let mut silent = false;
        for peer in self.peers.values_mut() {
            if !peer.excluded()
                && peer.commit.is_none()
                && !peer.prompted
                && now.duration_since(peer.known_since) >= COMMIT_WAIT
            {
                peer.prompted = true;
                silent = true;
            }
        }
        if !silent {
            return vec![];
        }
        self.start_round(now)
    }

    /// A peer's commitment, and which of ours it has seen.
    pub(super) fn on_commit(
        &mut self,
        from: &str,
        round: u64,
        commit: [u8; 32],
        seen: [u8; 32],
        now: Instant,
    ) -> Vec<Output> {
        let answers_ours = seen == self.me.hello().commitment();
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if peer.excluded() || round < peer.commit_round {
            return vec![]; // a late one: it has a newer commitment
        }
        if round == peer.commit_round && peer.commit.is_some_and(|c| c != commit) {
            return vec![]; // two commitments for one round: a forgery
        }
        if peer.commit == Some(commit) {
            if !answers_ours {
                // It holds an old commitment of ours (a message was lost or
                // is late): tell it the current one.
                return vec![self.send_commit(from, now)];
            }
            // Its commitment as before, now answering ours.
            if peer.commit_fresh {
                return vec![];
            }
            peer.commit_fresh = true;
            self.round.changed = now;
            let peer = self.peers.get_mut(from).expect("checked by caller");
            let returning = peer.standing == Standing::Lapsed;
            peer.standing = Standing::Active;
            if returning && self.round.revealed.is_some() {
                // Back after our reveal: it can only take part in a new round.
                return self.start_round(now);
            }
            return self.try_reveal(now);
        }
        if self.own_commits.contains(&commit) {
            return vec![]; // ours, reflected back
        }
        if peer.standing == Standing::Lapsed {
            peer.readmissions += 1;
            if peer.readmissions > MAX_READMISSIONS {
                return self.exclude(from, "kept stalling", now);
            }
            peer.standing = Standing::Active;
        }
        peer.commit = Some(commit);
        peer.commit_round = round;
        peer.commit_fresh = answers_ours;
        peer.hello = None;
        self.round.changed = now;
        let mut out = self.abandon_handshake(from, now);
        if self.round.revealed.is_some() {
            // Our value is out: never combine it with a commitment made
            // after it was seen.
            out.extend(self.start_round(now));
            self.round.after_newer = true;
        } else {
            out.push(self.send_commit(from, now));
        }
        out.extend(self.try_reveal(now));
        // A held hello for a later commitment stays held.
        let early = self.peers.get_mut(from).and_then(|p| {
            p.early_hello
                .is_some_and(|h| h.commitment() == commit)
                .then(|| p.early_hello.take())
                .flatten()
        });
        if let Some(hello) = early {
            out.extend(self.on_hello(from, hello, now));
        }
        out
    }

    /// Every active peer answered our commitment and we only wait out
    /// [`REVEAL_QUIET`] (tests let that time pass).
    #[cfg(test)]
    pub(super) fn reveal_pending(&self) -> bool {
        self.round.after_newer
            && self.round.revealed.is_none()
            && self.you.is_some()
            && self.peers.values().any(|p| p.active() && p.commit_fresh)
            && self
                .peers
                .values()
                .filter(|p| p.active())
                .all(|p| p.commit_fresh && p.commit.is_some())
    }

    /// Reveals our hello once the round's commitments are in (or the wait
    /// is over). The participants are fixed here.
    pub(super) fn try_reveal(&mut self, now: Instant) -> Vec<Output> {
        if self.round.revealed.is_some() || self.you.is_none() {
            return vec![];
        }
        let waited = now.duration_since(self.round.started) >= COMMIT_WAIT;
        let candidates = || self.peers.values().filter(|p| p.active());
        let all_in = candidates().all(|p| p.commit_fresh && p.commit.is_some());
        if !all_in && !waited {
            return vec![];
        }
        if !waited
            && self.round.after_newer
            && now.duration_since(self.round.changed) < REVEAL_QUIET
        {
            return vec![]; // the next tick reveals, if nothing moved
        }
        if !all_in {
            for peer in self.peers.values_mut() {
                if peer.active() && !peer.commit_fresh {
                    peer.standing = Standing::Lapsed;
                    peer.commit_round = 0;
                }
            }
        }
        let participants: HashMap<String, [u8; 32]> = self
            .peers
            .iter()
            .filter(|(_, p)| p.active() && p.commit_fresh)
            .filter_map(|(id, p)| Some((id.clone(), p.commit?)))
            .collect();
        if participants.is_empty() {
            return vec![]; // alone: nothing to reveal to yet
        }
        self.round.revealed = Some(now);
        for (id, commit) in &participants {
            let peer = self.peers.get_mut(id).expect("from the map");
            if peer.hello.is_some_and(|h| h.commitment() == *commit) {
                peer.hs = Hs::Queued(now);
            }
        }
        self.round.participants = participants;
        let hello = WireMessage::Hello(self.me.hello());
        let mut out = vec![self.send(None, Kind::Control, hello, now)];
        out.extend(self.start_handshakes(now));
        out
    }

    /// A peer's hello: it must match the commitment it sent.
    pub(super) fn on_hello(&mut self, from: &str, hello: Hello, now: Instant) -> Vec<Output> {
        let my_e = self.me.public();
        let peer = self.peers.get_mut(from).expect("checked by caller");
        if peer.excluded() || peer.hello == Some(hello) {
            return vec![];
        }
        if hello.v != PROTOCOL_VERSION {
            return vec![self.failed(from, "hello of another protocol version".into())];
        }
        if peer.commit != Some(hello.commitment()) {
            // Maybe ahead of its commitment: held until that comes (and
            // used only then), never matched to anything else.
            peer.early_hello = Some(hello);
            return vec![];
        }
        if hello.e == my_e {
            return vec![self.failed(from, "our own hello, reflected".into())];
        }
        // Our signing key under someone else's connection key: a peer
        // that would hand our own proofs back to us as its own.
        #[cfg(test)]
        let reject = !self.accept_our_signing_key;
        #[cfg(not(test))]
        let reject = true;
        if reject && hello.s == self.me.hello().s {
            return vec![self.failed(from, "a hello naming our signing key".into())];
        }
        match peer.e {
            Some(e) if e != hello.e => {
                return vec![self.failed(from, "hello changes its connection key".into())];
            }
            _ => peer.e = Some(hello.e),
        }
        peer.hello = Some(hello);
        let takes_part = self.round.revealed.is_some()
            && self.round.participants.get(from) == Some(&hello.commitment());
        if takes_part && matches!(peer.hs, Hs::Idle) {
            peer.hs = Hs::Queued(now);
        }
        self.start_handshakes(now)
    }

    /// A participant dropped out after our reveal (left, failed, stalled):
    /// which of them count must not be chosen after seeing our value, so a
    /// new round.
    pub(super) fn participant_lost(&mut self, id: &str, now: Instant) -> Vec<Output> {
        if self.round.revealed.is_some() && self.round.participants.contains_key(id) {
            self.stats.forced_rounds += 1;
            return self.start_round(now);
        }
        vec![]
    }

    /// Never again on this peer id.
    pub(super) fn exclude(&mut self, id: &str, why: &'static str, now: Instant) -> Vec<Output> {
        let Some(peer) = self.peers.get_mut(id) else {
            return vec![];
        };
        peer.standing = Standing::Excluded(why);
        let mut out: Vec<Output> = self
            .note_unverified_departure(id, now)
            .into_iter()
            .collect();
        let peer = self.peers.get_mut(id).expect("checked above");
        let was_member = std::mem::take(&mut peer.member);
        out.extend(self.abandon_handshake(id, now));
        out.extend(self.participant_lost(id, now));
        if was_member {
            // It held our key: the rest get a fresh one.
            out.extend(self.rotate_fresh(now));
        }
        out
    }

    /// Left out of rounds until it commits again (the caller starts the
    /// new round, once for all that lapse together).
    fn lapse(&mut self, id: &str, now: Instant) -> Vec<Output> {
        let peer = self.peers.get_mut(id).expect("caller checked");
        peer.standing = Standing::Lapsed;
        // Whatever round number it (or a relay replaying under its name)
        // last claimed, its next commitment is taken.
        peer.commit_round = 0;
        let mut out = self.abandon_handshake(id, now);
        out.extend(self.note_unverified_departure(id, now));
        out
    }

    /// Round timers: stragglers' commitments, participants that never
    /// reveal or never finish, settling handshakes that never settle.
    pub(super) fn round_timers(&mut self, now: Instant) -> Vec<Output> {
        let mut out = self.try_reveal(now);
        out.extend(self.break_join_ties(now));
        out.extend(self.prompt_the_silent(now));
        if self.round.revealed.is_none() && now.duration_since(self.round.resent) >= COMMIT_RESEND {
            // Still waiting for answers (a message may have been lost): our
            // commitment again to whoever hasn't answered it, stragglers
            // included.
            self.round.resent = now;
            let quiet: Vec<String> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.excluded() && !p.commit_fresh)
                .map(|(id, _)| id.clone())
                .collect();
            for id in quiet {
                out.push(self.send_commit(&id, now));
            }
        }
        if let Some(revealed) = self.round.revealed {
            let stalled: Vec<(String, bool)> = self
                .round
                .participants
                .keys()
                .filter_map(|id| {
                    let p = self.peers.get(id)?;
                    let since = match p.hs {
                        Hs::Idle => revealed,
                        Hs::Spake(_) | Hs::Confirming { .. } | Hs::Proving => p.hs_started?,
                        Hs::Queued(_) | Hs::Done => return None,
                    };
                    (now.duration_since(since) >= HANDSHAKE_TIMEOUT)
                        .then(|| (id.clone(), p.charged))
                })
                .collect();
            // Each stalled handshake counts once; then one new round
            // without them.
            let mut lost = None;
            for (id, charged) in stalled {
                if charged {
                    let how = self.failure_kind(&id);
                    out.extend(self.guard_failure(&id, how, now));
                }
                if self.peers.get(&id).is_some_and(|p| p.active()) {
                    out.extend(self.lapse(&id, now));
                    lost = Some(id);
                }
            }
            if let Some(id) = lost {
                out.extend(self.participant_lost(&id, now));
            }
        }
        let unsettled: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.settling
                    .as_ref()
                    .is_some_and(|s| now.duration_since(s.since) >= HANDSHAKE_TIMEOUT)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in unsettled {
            self.peers.get_mut(&id).expect("listed").settling = None;
            out.extend(self.guard_failure(&id, old_failure(), now));
        }
        out
    }

    /// How a charged handshake with `id` that ends now, unanswered (it
    /// timed out, the peer left, the connection ended), counts: a peer that
    /// took our confirmation and never answered it could test a guess, and
    /// looks like a guesser whatever order the relay claimed.
    pub(super) fn failure_kind(&self, id: &str) -> Failure {
        if self.peers[id].oracle {
            Failure::Guess { reported: true }
        } else {
            Failure::Stall
        }
    }

    /// Our round and each peer's standing and handshake, one line each
    /// (for diagnostics: a failing test, a stuck benchmark).
    pub fn debug_summary(&self) -> String {
        let mut out = format!(
            "round {} revealed {} words {:?} participants {:?}\n",
            self.round.number,
            self.round.revealed.is_some(),
            self.safety_words,
            self.round.participants.keys().collect::<Vec<_>>()
        );
        for (id, p) in &self.peers {
            let hs = match p.hs {
                Hs::Idle => "idle",
                Hs::Queued(_) => "queued",
                Hs::Spake(_) => "spake",
                Hs::Confirming { .. } => "confirming",
                Hs::Proving => "proving",
                Hs::Done => "done",
            };
            out += &format!(
                "   {id}: {:?} fresh {} commit {:?}@{} hello {} hs {hs} member {}\n",
                p.standing,
                p.commit_fresh,
                p.commit.map(|c| c[0]),
                p.commit_round,
                p.hello.is_some(),
                p.member
            );
        }
        out
    }

    /// Recomputes the words: only for a round whose every participant
    /// proved itself in it.
    pub(super) fn refresh_safety_words(&mut self) {
        self.safety_words.clear();
        self.words_cover.clear();
        if self.round.revealed.is_none() || self.round.participants.is_empty() {
            return;
        }
        let mut members: Vec<Hello> = Vec::with_capacity(self.round.participants.len() + 1);
        let mut cover = Vec::with_capacity(self.round.participants.len());
        for id in self.round.participants.keys() {
            match self.peers.get(id) {
                Some(p) if matches!(p.hs, Hs::Done) => {
                    members.extend(p.hello);
                    if let Some(identity) = p.identity {
                        cover.push((id.clone(), p.name.clone().unwrap_or_default(), identity));
                    }
                }
                _ => return,
            }
        }
        cover.sort();
        self.words_cover = cover;
        members.push(self.me.hello());
        self.safety_words =
            crate::crypto::safety::safety_words_bits(&self.room, &members, self.safety_bits)
                .join(" ");
    }
}

/// A settling handshake that never settles gave a guess away.
fn old_failure() -> Failure {
    Failure::Guess { reported: true }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Net;
    use super::super::TIE_WAIT;
    use super::COMMIT_RESEND;
    use std::time::Duration;

    /// Honest members converge: whatever joined when, all show the same
    /// words over the same round values once the messages settle.
    #[test]
    fn joins_converge_to_one_round() {
        let mut net = Net::new();
        let a = net.join("alice", "k-e-y");
        net.settle();
        let b = net.join("bob", "k-e-y");
        let c = net.join("carol", "k-e-y");
        net.settle();
        let d = net.join("dave", "k-e-y");
        net.settle();
        let words = net.room(&a).safety_words().to_string();
        assert!(!words.is_empty());
        for id in [&b, &c, &d] {
            assert_eq!(net.room(id).safety_words(), words, "{id}");
            assert_eq!(net.room(id).verified_peers().len(), 3);
        }
    }

    /// Two members joining at once through two relays learn of each other
    /// only from `peer_joined`, each after its own welcome: each holds the
    /// other for the newcomer, waits for its commitment and then for its
    /// confirmation. Before, they waited for each other until the handshake
    /// timed out, round after round, and never verified each other. Now
    /// the commitment goes again to the quiet peer before the reveal
    /// (`COMMIT_RESEND`) and a confirmation goes first after `TIE_WAIT`.
    #[test]
    fn members_new_to_each_other_on_both_sides_verify() {
        let mut net = Net::new();
        let a = net.join("alice", "k-e-y");
        net.settle();
        let (b, c) = net.join_across_relays("bob", "carol", "k-e-y");
        net.settle();
        net.advance(COMMIT_RESEND + TIE_WAIT + Duration::from_millis(500));
        let words = net.room(&a).safety_words().to_string();
        assert!(!words.is_empty(), "{}", net.dump());
        for id in [&b, &c] {
            assert_eq!(net.room(id).safety_words(), words, "{id}\n{}", net.dump());
            assert_eq!(net.room(id).verified_peers().len(), 2, "{id}");
        }
    }

    /// An honest relay keeps each sender's messages to each receiver in
    /// order but may interleave senders any way. Whatever the interleaving,
    /// joins and leaves settle on one round for everyone with no timer
    /// firing (no waiting out a straggler that was never late).
    #[test]
    fn any_honest_interleaving_converges_without_timers() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        for seed in 0..28u64 {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
            let mut net = Net::new();
            // Up to 16 members, one after another or all at once (then
            // more are new to each other than there are handshake slots).
            let size = 3 + (seed % 14) as usize;
            let at_once = seed % 2 == 1;
            let mut ids = Vec::new();
            for i in 0..size {
                ids.push(net.join(&format!("m{i}"), "k-e-y"));
                if !at_once {
                    net.settle_interleaved(&mut rng);
                }
            }
            net.settle_interleaved(&mut rng);
            for change in 0..4 {
                if change % 2 == 0 {
                    ids.push(net.join("joiner", "k-e-y"));
                } else {
                    let i = 1 + (rng.next_u32() as usize) % (ids.len() - 1);
                    let gone = ids.remove(i);
                    net.leave(&gone);
                }
                net.settle_interleaved(&mut rng);
                let words = net.room(&ids[0]).safety_words().to_string();
                for id in &ids {
                    assert!(
                        !words.is_empty(),
                        "seed {seed} change {change}: no words\n{}",
                        net.dump()
                    );
                    assert_eq!(
                        net.room(id).safety_words(),
                        words,
                        "seed {seed} change {change}: {id}"
                    );
                }
            }
        }
    }
}
