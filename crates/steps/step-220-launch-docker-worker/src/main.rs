//! `step-220-launch-docker-worker`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_220_launch_docker_worker::{Args, STEP, run};

/// Launch Path B GPU workers running the worker image (local mode: containers on the local engine).
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
