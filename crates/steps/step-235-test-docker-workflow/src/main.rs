//! `step-235-test-docker-workflow`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_235_test_docker_workflow::{Args, STEP, run};

/// Transcribe the shipped sample through the Path B fleet.
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
