//! `step-999-destroy-all-resources`: delete everything this deployment created; see the
//! library docs.

use std::process::ExitCode;

use clap::Parser;
use step_999_destroy_all_resources::{Args, STEP, run};

/// Delete everything this deployment created (found by tags and by the names in .env); user
/// audio and transcripts only with --include-data --yes or an explicit confirmation.
#[derive(Debug, Parser)]
#[command(name = STEP, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(STEP, &cli.global, |ctx| run(ctx, cli.args))
}
