//! `step-230-update-docker-workers`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_230_update_docker_workers::{Args, STEP, run};

/// Rolling update of the Path B workers to a new image digest, with rollback.
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
