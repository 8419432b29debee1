//! StreamFlow's zero-knowledge relay.
//!
//! Forwards opaque, end-to-end encrypted blobs and presence events per room.
//! It assigns peer ids, never holds a key and never decodes `data`.
//!
//! - [`protocol`]: wire protocol v1, shared with the client.
//! - [`config`]: the one clap struct behind `streamflow-relay` and `streamflow relay`.
//! - [`server`]: accept loop, `/healthz`, `/metrics`, WebSocket upgrade, TLS.
//! - `connection`: one client's read loop and writer task.
//! - `hub`: rooms and fan-out, the seam a multi-relay bus plugs into.
//! - `outbox`: bounded per-receiver queues.
//! - `limits`: rate limit and strikes.
//! - [`memory`]: the global memory budget and the inbound frame tracker.
//! - [`metrics`]: counters rendered as Prometheus text.

pub mod bus;
pub mod config;
mod connection;
pub mod flow;
mod hub;
mod limits;
pub mod memory;
pub mod metrics;
mod outbox;
mod peer;
pub use streamflow_core::protocol;
pub mod server;

pub use config::RelayConfig;
pub use peer::PeerId;
pub use server::{start, RelayHandle};

/// Logs to stderr, filtered by `RUST_LOG` (default `info`). Safe to call twice.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// `streamflow-relay` and `streamflow relay`: serve until Ctrl-C or SIGTERM.
pub async fn run(config: RelayConfig) -> anyhow::Result<()> {
    let relay = start(config).await?;
    eprintln!(
        "StreamFlow relay on {} (health and metrics on {}, /metrics). Ctrl-C stops it.",
        relay.url(),
        relay.health_url()
    );
    relay.run_until_signal().await;
    Ok(())
}
