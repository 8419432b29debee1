//! `streamflow join`: a call through a relay, in the TUI or headless.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::{fail, finish, open_source, resolve_name, session_config};
use crate::cli::JoinArgs;
use crate::invite::{Invite, ROOM_LEN};
use crate::session::exit;

pub async fn join(args: JoinArgs) -> ExitCode {
    // What the user can fix goes first, before the key derivation.
    if !args.script.headless && !std::io::stdout().is_terminal() {
        return fail(
            exit::USAGE,
            "the video UI needs a terminal; for scripts use `streamflow join --headless`",
        );
    }
    let recorder = match super::open_recorder(&args.share) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let identity = match super::Identity::load(&args.identity) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let (invite, warnings) = match read_invite(&args) {
        Ok(i) => i,
        Err((code, message)) => return fail(code, message),
    };
    for w in warnings {
        eprintln!("streamflow: warning: {w}");
    }
    let tls = match &args.ca_cert {
        Some(path) => match crate::net::tls::client_config(Some(path)) {
            Ok(c) => Some(c),
            Err(e) => return fail(exit::USAGE, e),
        },
        None => None,
    };
    let name = resolve_name(args.media.name.as_deref());
    let opened = match open_source(&args.media, &name) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let (audio, audio_notices) = match super::open_audio(&args.media, !args.script.headless) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut notices: Vec<String> = opened.notice.clone().into_iter().collect();
    notices.extend(audio_notices);
    notices.extend(identity.notices.iter().cloned());
    // `s` shows the invite we joined with, for asking someone else in.
    let share = crate::tui::app::Share {
        invite: invite.to_shareable().as_str().to_string(),
        relay: args.relays.first().cloned().unwrap_or_default(),
    };
    let mut config = session_config(
        invite,
        args.relays.clone(),
        &args.media,
        name,
        opened,
        args.script.tile.unwrap_or(crate::headless::DEFAULT_TILE),
    );
    config.link.liveness_timeout = args.liveness_timeout;
    config.link.tls = tls;
    identity.apply(&mut config);
    let audio_clock = audio.as_ref().is_some_and(|a| a.sink.is_some());
    config.audio = audio.map(std::sync::Mutex::new);
    if args.script.headless {
        streamflow_relay::init_logging();
        for n in notices {
            eprintln!("streamflow: {n}");
        }
        let options = crate::headless::HeadlessOptions::from_args(&args.script, audio_clock)
            .with_share(&args.share)
            .with_recorder(recorder);
        ExitCode::from(crate::headless::run(config, options).await)
    } else {
        let options = crate::tui::UiOptions {
            colour: args.colour,
            notices,
            share: Some(share),
            terminal: args.share.clone(),
            cells: args.cells,
            recorder,
            ..Default::default()
        };
        finish(crate::tui::run(config, options).await)
    }
}

/// Where the invite comes from: argument, environment, file, or a prompt.
fn read_invite(args: &JoinArgs) -> Result<(Invite, Vec<String>), (u8, String)> {
    let usage = |m: String| (exit::USAGE, m);
    let text = if let Some(i) = &args.invite {
        zeroize::Zeroizing::new(i.clone())
    } else if let Ok(i) = std::env::var("STREAMFLOW_INVITE") {
        zeroize::Zeroizing::new(i)
    } else if let Some(path) = &args.invite_file {
        let content = std::fs::read_to_string(path)
            .map_err(|e| usage(format!("cannot read --invite-file {}: {e}", path.display())))?;
        let content = zeroize::Zeroizing::new(content);
        // The first line that isn't blank (an editor's leading newline).
        let first = content.lines().find(|l| !l.trim().is_empty());
        zeroize::Zeroizing::new(first.unwrap_or("").to_string())
    } else if args.script.headless {
        return Err(usage(
            "no invite: pass it as an argument, in STREAMFLOW_INVITE, or with --invite-file (headless mode never prompts)".into(),
        ));
    } else {
        let prompt = if args.room.is_some() {
            "Secret words: "
        } else {
            "Invite (ROOM-SECRET): "
        };
        zeroize::Zeroizing::new(
            rpassword::prompt_password(prompt)
                .map_err(|e| usage(format!("cannot read the invite: {e}")))?,
        )
    };
    let parsed = match &args.room {
        Some(room) => {
            check_words_only(room, &text)?;
            Invite::with_room(room, &text)
        }
        None => Invite::parse(&text),
    };
    parsed.map_err(|e| usage(e.to_string()))
}

/// With `--room NAME` the argument is the secret alone: a whole invite
/// there would make its room part a secret word (and a different key).
fn check_words_only(room: &str, text: &str) -> Result<(), (u8, String)> {
    let first = text
        .split(|c: char| c.is_whitespace() || c == '-')
        .find(|w| !w.is_empty())
        .unwrap_or("")
        .to_lowercase();
    let looks_like_room = first == room.trim().to_lowercase()
        || (first.len() == ROOM_LEN && first.bytes().any(|b| b.is_ascii_digit()));
    if looks_like_room {
        return Err((
            exit::USAGE,
            format!(
                "with --room, give only the secret words: {first:?} looks like a room name (a whole invite is ROOM-SECRET; drop --room to use it as is)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_flag_with_a_whole_invite_is_refused() {
        assert!(check_words_only("standup", "standup-banjo-velvet").is_err());
        assert!(check_words_only("standup", "k7f3m2q9xw4hd8ta-banjo-velvet").is_err());
        assert!(check_words_only("standup", "banjo velvet canyon").is_ok());
    }
}
