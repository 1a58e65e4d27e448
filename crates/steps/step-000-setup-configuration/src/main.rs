//! `step-000-setup-configuration`: create or update `.env`; see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_000_setup_configuration::{Args, STEP, run};

/// Create or update the deployment settings in .env (interactive, or --yes with flags).
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
