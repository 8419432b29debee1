//! `streamflow`: end-to-end encrypted, terminal-first video conferencing.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    cli::run(cli)
}
