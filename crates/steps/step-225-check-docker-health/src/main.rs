//! `step-225-check-docker-health`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_225_check_docker_health::{Args, STEP, run};

/// The health of every Path B worker and its container.
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
