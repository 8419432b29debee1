//! `streamflow`: end-to-end encrypted, terminal-first video conferencing.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Bare `streamflow` teaches the same as `streamflow --help` (a usage
    // error all the same: nothing was asked for).
    if std::env::args_os().len() == 1 {
        let _ = <streamflow::cli::Cli as clap::CommandFactory>::command().print_long_help();
        return ExitCode::from(streamflow::session::exit::USAGE);
    }
    let cli = streamflow::cli::Cli::parse();
    streamflow::commands::run(cli)
}
