//! `step-100-setup-ec2-configuration`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_100_setup_ec2_configuration::{Args, STEP, run};

/// Find or make the workers' AMI, network, security group and key pair.
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
