//! `streamflow demo`: a built-in relay, three synthetic peers and you.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{fail, finish, open_source};
use crate::cli::{DemoArgs, MediaArgs};
use crate::invite::Invite;
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
        audio_source: None,
        audio_sink: None,
        no_voice_processing: false,
    };
    let opened = match open_source(&media, &args.name) {
        Ok(o) => o,
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
    for name in PEERS {
        let mut config = session::SessionConfig::new(
            invite.clone(),
            vec![relay.url()],
            name.into(),
            SourceSpec::Test,
        );
        config.psk = Some(psk.clone());
        let (tx, mut rx) = mpsc::channel(256);
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        // Synthetic peers watch nothing: drain their events.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
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
    let options = crate::tui::UiOptions {
        colour: args.colour,
        notices: vec![
            "Demo: a built-in relay and three synthetic peers (Ada, Grace, Linus).".into(),
            "Press ? for keys, Tab to chat, q to quit.".into(),
        ],
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
