//! `streamflow`: end-to-end encrypted, terminal-first video conferencing.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = streamflow::cli::Cli::parse();
    streamflow::commands::run(cli)
}
