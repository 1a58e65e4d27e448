//! `step-130-update-system-fixes`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_130_update_system_fixes::{Args, STEP, run};

/// Roll the current worker bundle onto running Path A workers.
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
