use clap::Parser;
use streamflow_relay::RelayConfig;

#[derive(Parser)]
#[command(name = "streamflow-relay", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    relay: RelayConfig,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    streamflow_relay::init_logging();
    match streamflow_relay::run(cli.relay).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamflow-relay: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
