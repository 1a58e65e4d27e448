//! `step-101-validate-ec2-configuration`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_101_validate_ec2_configuration::{Args, STEP, run};

/// Check the EC2 settings written by step-100.
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
