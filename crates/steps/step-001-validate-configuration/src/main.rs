//! `step-001-validate-configuration`: check the settings; see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_001_validate_configuration::{Args, STEP, run};

/// Check every setting and that the credentials belong to the configured account.
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
