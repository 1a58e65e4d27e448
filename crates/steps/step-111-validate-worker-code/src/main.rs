//! `step-111-validate-worker-code`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_111_validate_worker_code::{Args, STEP, run};

/// Check the worker bundle `current` points at.
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
