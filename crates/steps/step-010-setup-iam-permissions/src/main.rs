//! `step-010-setup-iam-permissions`: the worker role, instance profile and policy.

use std::process::ExitCode;

use clap::Parser;
use step_010_setup_iam_permissions as step;

/// Create or repair the worker role, its instance profile and least-privilege policy, and
/// write the operator policy an administrator grants to whoever runs the steps.
#[derive(Debug, Parser)]
#[command(name = step::NAME, version)]
struct Cli {
    #[command(flatten)]
    args: step::Args,
    #[command(flatten)]
    global: common::GlobalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step::NAME, &cli.global, |ctx| step::run(ctx, cli.args))
}
