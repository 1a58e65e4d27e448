//! `step-120-launch-spot-worker`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_120_launch_spot_worker::{Args, STEP, run};

/// Launch Path A spot GPU workers.
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
