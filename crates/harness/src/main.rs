//! `prescale-harness`: prescale's harness commands (backtests on real traces).

use clap::{Parser, Subcommand};

/// prescale's harness: backtests and scenarios.
#[derive(Debug, Parser)]
#[command(name = "prescale-harness", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay a trace through each scaling policy and score it (no cluster, no waiting).
    Backtest(prescale_harness::backtest::BacktestArgs),
}

fn main() -> anyhow::Result<()> {
    // One rustls crypto provider for the process (the LLM client needs it); an earlier one is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Backtest(args) => prescale_harness::backtest::run_cli(&args)?,
    }
    Ok(())
}
