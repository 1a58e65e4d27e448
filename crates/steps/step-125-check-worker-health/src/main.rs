//! `step-125-check-worker-health`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_125_check_worker_health::{Args, STEP, run};

/// Check the health of the Path A workers.
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
