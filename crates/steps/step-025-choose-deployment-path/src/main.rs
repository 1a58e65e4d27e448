//! step-025-choose-deployment-path: picks Path A or B, links its scripts, compares the paths.

use std::process::ExitCode;

use clap::Parser;

/// Choose Path A (traditional EC2) or Path B (Docker on EC2 GPU) and regenerate
/// DEPLOYMENT_COMPARISON.md.
#[derive(Debug, Parser)]
#[command(name = step_025_choose_deployment_path::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_025_choose_deployment_path::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_025_choose_deployment_path::NAME, &cli.global, |ctx| {
        step_025_choose_deployment_path::run(ctx, cli.args)
    })
}
