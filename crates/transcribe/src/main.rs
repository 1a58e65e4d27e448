//! `transcribe`: submit audio to the fleet, follow jobs, fetch transcripts.

use std::process::ExitCode;

use clap::Parser;

/// Submit audio to the transcription fleet and fetch the transcripts.
#[derive(Debug, Parser)]
#[command(name = "transcribe", version)]
struct Cli {
    #[command(subcommand)]
    command: transcribe::Command,
    #[command(flatten)]
    global: common::GlobalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let name = cli.command.name();
    common::cli::run(name, &cli.global, |ctx| transcribe::run(ctx, cli.command))
}
