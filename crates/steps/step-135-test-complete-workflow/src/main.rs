//! `step-135-test-complete-workflow`: see the library docs.

use std::process::ExitCode;

use clap::Parser;
use step_135_test_complete_workflow::{Args, STEP, run};

/// Transcribe the shipped sample end to end on Path A.
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
