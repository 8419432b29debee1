//! `streamflow host`: a relay here, an invite for the others, and the call.
//! Quitting ends the call for everyone (the others are told so and exit).

use std::io::IsTerminal;
use std::process::ExitCode;

use super::{fail, finish, open_source, resolve_name, session_config};
use crate::cli::HostArgs;
use crate::invite::Invite;
use crate::session::exit;
use crate::tui::app::Share;

pub async fn host(args: HostArgs) -> ExitCode {
    // Everything the user can fix is checked before an invite is printed.
    let headless = args.script.headless;
    if !headless && !std::io::stdout().is_terminal() {
        return fail(
            exit::USAGE,
            "hosting needs a terminal for the call; for scripts use `streamflow host --headless`, for a relay alone `streamflow relay`",
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
    let mut rng = rand_core::OsRng;
    let invite = match &args.room {
        Some(r) => match crate::invite::validate_room_name(r) {
            Ok(r) => Invite::generate_in_room(r, &mut rng),
            Err(e) => return fail(exit::USAGE, e),
        },
        None => Invite::generate(&mut rng),
    };
    let name = resolve_name(args.media.name.as_deref());
    let opened = match open_source(&args.media, &name) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let (audio, audio_notices) = match super::open_audio(&args.media, !headless) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let relay_config = streamflow_relay::RelayConfig {
        listen: args.listen,
        ..Default::default()
    };
    let relay = match streamflow_relay::start(relay_config).await {
        Ok(r) => r,
        Err(e) => return fail(exit::ERROR, format!("{e:#}")),
    };
    let share = Share {
        invite: invite.to_shareable().as_str().to_string(),
        relay: advertised_url(&args.listen, relay.addr().port()),
    };
    let web = match args.web {
        None => None,
        Some(addr) => match serve_page(addr, &args.listen, &share).await {
            Ok(w) => Some(w),
            Err(code) => return code,
        },
    };
    if headless {
        streamflow_relay::init_logging();
        crate::headless::print_before_call(
            &args.script.events,
            &serde_json::json!({"type":"invite","invite":share.invite,"relay":share.relay,
                                "join":share.join_line(),"web":web.as_ref().map(|w| &w.url)}),
        );
    } else {
        // Printed once, before the call takes the screen, so it stays in
        // the scrollback; `s` shows it again in the call.
        println!("Invite for the others (share it privately):");
        println!("{}", share.join_line());
        if let Some(w) = &web {
            println!(
                "Guests without streamflow open this in a browser (build {}):",
                w.build
            );
            println!("{}", w.url);
        }
        if args.listen.ip().is_unspecified() {
            println!("(replace THIS-HOST with this machine's address)");
        }
    }
    let mut notices: Vec<String> = opened.notice.clone().into_iter().collect();
    notices.extend(audio_notices);
    notices.extend(identity.notices.iter().cloned());
    let mut config = session_config(
        invite,
        vec![relay.url()],
        &args.media,
        name,
        opened,
        args.script.tile.unwrap_or(crate::headless::DEFAULT_TILE),
    );
    identity.apply(&mut config);
    let audio_clock = audio.as_ref().is_some_and(|a| a.sink.is_some());
    config.audio = audio.map(std::sync::Mutex::new);
    if headless {
        for n in notices {
            eprintln!("streamflow: {n}");
        }
        let options = crate::headless::HeadlessOptions::from_args(&args.script, audio_clock)
            .with_share(&args.share)
            .with_recorder(recorder);
        let code = crate::headless::run(config, options).await;
        // The host leaving ends the call for everyone, as in the TUI.
        relay.end_call("the host ended the call").await;
        return ExitCode::from(code);
    }
    notices.insert(
        0,
        "You are hosting: press s to show the invite again.".to_string(),
    );
    let options = crate::tui::UiOptions {
        colour: args.colour,
        notices,
        share: Some(share),
        hosting: true,
        terminal: args.share.clone(),
        cells: args.cells,
        recorder,
    };
    let ended = crate::tui::run(config, options).await;
    relay.end_call("the host ended the call").await;
    finish(ended)
}

/// The browser page `--web` serves, for as long as the host is in the call.
struct WebPage {
    url: String,
    build: String,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for WebPage {
    fn drop(&mut self) {
        self._server.abort();
    }
}

async fn serve_page(
    addr: Option<std::net::SocketAddr>,
    relay_listen: &std::net::SocketAddr,
    share: &Share,
) -> Result<WebPage, ExitCode> {
    if !crate::web::available() {
        return Err(fail(exit::ERROR, crate::web::UNAVAILABLE));
    }
    let addr = addr.unwrap_or_else(|| std::net::SocketAddr::new(relay_listen.ip(), 8080));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        fail(
            exit::USAGE,
            format!(
                "cannot serve the browser page on {addr}: {e} (choose another with --web=ADDR)"
            ),
        )
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let page = advertised_url(&bound, bound.port()).replacen("ws://", "", 1);
    let url = crate::web::page_url(&page, &share.invite, &share.relay, "guest");
    Ok(WebPage {
        url,
        build: crate::web::build_hash()[..16].to_string(),
        _server: tokio::spawn(crate::web::serve(listener)),
    })
}

/// The relay URL the others should use: the listen address, unless it is
/// the wildcard, which nobody can connect to.
fn advertised_url(listen: &std::net::SocketAddr, port: u16) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() => "THIS-HOST".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("ws://{host}:{port}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wildcard_is_not_advertised() {
        assert_eq!(
            advertised_url(&"0.0.0.0:8787".parse().unwrap(), 8787),
            "ws://THIS-HOST:8787"
        );
        assert_eq!(
            advertised_url(&"127.0.0.1:9000".parse().unwrap(), 9000),
            "ws://127.0.0.1:9000"
        );
        assert_eq!(
            advertised_url(&"[::1]:9000".parse().unwrap(), 9000),
            "ws://[::1]:9000"
        );
    }
}
