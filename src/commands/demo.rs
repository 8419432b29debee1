//! `streamflow demo`: a built-in relay, three synthetic peers and you. The
//! peers talk in turns (tone syllables), so the voice path, the meters and
//! who-is-speaking show without anyone else.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{fail, finish, open_source};
use crate::cli::{DemoArgs, MediaArgs};
use crate::invite::Invite;
use crate::media::audio::engine::AudioSetup;
use crate::media::audio::source::{AudioSource, Captured, Pacer};
use crate::media::audio::{FRAME, RATE};
use crate::media::source::SourceSpec;
use crate::session::{self, exit, SessionCommand};

/// The synthetic peers' names.
const PEERS: [&str; 3] = ["Ada", "Grace", "Linus"];

pub async fn demo(args: DemoArgs) -> ExitCode {
    if !std::io::stdout().is_terminal() {
        return fail(
            exit::USAGE,
            "the demo needs a terminal; for scripts use `streamflow join --headless`",
        );
    }
    let media = MediaArgs {
        name: Some(args.name.clone()),
        source: Some(args.source.clone()),
        fps: 30,
        fixed_quality: false,
        audio_source: args.audio_source.clone(),
        audio_sink: args.audio_sink.clone(),
        no_voice_processing: false,
    };
    let opened = match open_source(&media, &args.name) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let (audio, audio_notices) = match super::open_audio(&media, true) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let relay = match streamflow_relay::start(streamflow_relay::RelayConfig::loopback()).await {
        Ok(r) => r,
        Err(e) => return fail(exit::ERROR, format!("{e:#}")),
    };
    let invite = Invite::generate(&mut rand_core::OsRng);
    eprintln!("streamflow demo: deriving the room key…");
    let psk = match session::derive_psk_async(&invite, crate::crypto::kdf::KdfParams::V1).await {
        Ok(p) => p,
        Err(e) => return fail(exit::ERROR, e),
    };
    let mut peers = Vec::new();
    for (turn, name) in PEERS.into_iter().enumerate() {
        let mut config = session::SessionConfig::new(
            invite.clone(),
            vec![relay.url()],
            name.into(),
            SourceSpec::Test,
        );
        config.psk = Some(psk.clone());
        config.audio = Some(std::sync::Mutex::new(AudioSetup {
            source: Some(Box::new(Chatter::new(turn as u64))),
            sink: None,
            voice_processing: false,
            lip_sync: false,
        }));
        let (tx, mut rx) = mpsc::channel(256);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        // Synthetic peers watch nothing: drain their events.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        if let (0, Some(command)) = (turn, &args.peer_share) {
            // Taken up once Ada is in the call.
            let start = session::sharing::ShareCommand::Start {
                command: command.clone(),
                cols: 80,
                rows: 24,
            };
            let _ = cmd_tx.send(SessionCommand::Share(start)).await;
        }
        peers.push((cmd_tx, tokio::spawn(session::run(config, tx, cmd_rx))));
    }
    let mut config = super::session_config(
        invite,
        vec![relay.url()],
        &media,
        args.name.clone(),
        opened,
        (80, 48),
    );
    config.psk = Some(psk);
    config.audio = audio.map(std::sync::Mutex::new);
    let mut notices = vec![
        "Demo: a built-in relay and three synthetic peers (Ada, Grace, Linus), who take turns speaking in tones.".to_string(),
    ];
    notices.extend(audio_notices);
    notices.push("Press ? for keys, Tab to chat, q to quit.".into());
    let options = crate::tui::UiOptions {
        colour: args.colour,
        notices,
        cells: args.cells,
        ..Default::default()
    };
    let ended = crate::tui::run(config, options).await;
    for (cmd, task) in peers {
        let _ = cmd.send(SessionCommand::Leave).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), task).await;
    }
    relay.shutdown().await;
    finish(ended)
}

/// A synthetic peer's voice: in its turn of a shared cycle, tone
/// "syllables" (a few pitches, soft edges); silence otherwise. Peer 0
/// speaks first, then 1, then 2.
pub struct Chatter {
    turn: u64,
    n: u64,
    phase: f32,
    pacer: Pacer,
}

/// Frames (20 ms) in a whole round of turns, and in one peer's turn.
const ROUND_FRAMES: u64 = PEERS.len() as u64 * TURN_FRAMES;
const TURN_FRAMES: u64 = 200;
/// Of a turn, the part spoken (the rest is a pause before the next).
const SPOKEN_FRAMES: u64 = 120;
/// A syllable and the gap after it, in frames.
const SYLLABLE_FRAMES: u64 = 12;
const GAP_FRAMES: u64 = 3;

impl Chatter {
    pub fn new(turn: u64) -> Self {
        Chatter {
            turn,
            n: 0,
            phase: 0.0,
            pacer: Pacer::default(),
        }
    }

    /// The pitch of the syllable frame `n` belongs to, if it is spoken.
    fn pitch(&self, n: u64) -> Option<(f32, u64)> {
        let in_round = n % ROUND_FRAMES;
        let start = self.turn * TURN_FRAMES;
        if !(start..start + SPOKEN_FRAMES).contains(&in_round) {
            return None;
        }
        let at = in_round - start;
        let syllable = at / (SYLLABLE_FRAMES + GAP_FRAMES);
        let within = at % (SYLLABLE_FRAMES + GAP_FRAMES);
        if within >= SYLLABLE_FRAMES {
            return None;
        }
        // Each peer its own register; the syllables wander around it.
        let base = [220.0, 330.0, 165.0][(self.turn % 3) as usize];
        let step = [1.0, 1.12, 0.94, 1.2, 1.06][((syllable + self.turn) % 5) as usize];
        Some((base * step, within))
    }
}

impl AudioSource for Chatter {
    fn next_frame(&mut self) -> Result<Captured, String> {
        let timestamp_us = self.pacer.wait();
        let mut samples = [0.0; FRAME];
        if let Some((hz, within)) = self.pitch(self.n) {
            let step = 2.0 * std::f32::consts::PI * hz / RATE as f32;
            let len = (SYLLABLE_FRAMES as usize * FRAME) as f32;
            for (i, s) in samples.iter_mut().enumerate() {
                // A raised-cosine envelope over the syllable: no clicks.
                let t = (within as usize * FRAME + i) as f32 / len;
                let envelope = 0.5 - 0.5 * (2.0 * std::f32::consts::PI * t).cos();
                *s = self.phase.sin() * 0.2 * envelope;
                self.phase = (self.phase + step) % (2.0 * std::f32::consts::PI);
            }
        }
        self.n += 1;
        Ok(Captured {
            samples,
            timestamp_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peers_take_turns() {
        let peers: Vec<Chatter> = (0..3).map(Chatter::new).collect();
        for n in 0..ROUND_FRAMES * 2 {
            let speaking = peers.iter().filter(|p| p.pitch(n).is_some()).count();
            assert!(speaking <= 1, "frame {n}: {speaking} at once");
        }
        for p in &peers {
            let spoken = (0..ROUND_FRAMES).filter(|n| p.pitch(*n).is_some()).count();
            assert!(spoken > 60, "{spoken} frames");
        }
        assert!(peers[0].pitch(0).is_some());
        assert!(peers[1].pitch(TURN_FRAMES).is_some());
    }
}
