//! Command line: one binary, one subcommand per job (DESIGN.md §1).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use streamflow_relay::RelayConfig;

/// Exit codes shared by every subcommand (DESIGN.md §1).
pub mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
}

/// End-to-end encrypted video calls in your terminal.
///
/// Everything you send is sealed with keys only the people holding the invite
/// can derive; the relay in the middle forwards blobs it cannot read.
#[derive(Parser)]
#[command(name = "streamflow", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the relay alone (same program and flags as `streamflow-relay`).
    Relay(RelayConfig),
}

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamflow: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    match cli.command {
        Command::Relay(config) => {
            streamflow_relay::init_logging();
            match runtime.block_on(streamflow_relay::run(config)) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => {
                    eprintln!("streamflow relay: {e:#}");
                    ExitCode::from(exit::ERROR)
                }
            }
        }
    }
}
