//! `step-999-terminate-workers`: terminate this deployment's workers; see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_999_terminate_workers::{Args, STEP, run};

/// Terminate this deployment's workers (found by their tags), cancel their spot requests and
/// stop local runners and containers.
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
