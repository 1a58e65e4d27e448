//! `step-011-validate-iam-permissions`: compare the worker's IAM with what step-010 makes.

use std::process::ExitCode;

use clap::Parser;
use step_011_validate_iam_permissions as step;

/// Compare the worker role, instance profile and policy with what step-010 would make:
/// trust, policy statements, attachments, profile membership and tags. Drift exits 1.
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
