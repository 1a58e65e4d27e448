//! `step-110-deploy-worker-code`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_110_deploy_worker_code::{Args, STEP, run};

/// Build, bundle and upload the worker code for Path A.
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
