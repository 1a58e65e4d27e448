//! step-211-push-to-ecr: pushes the worker image and records its digest.

use std::process::ExitCode;

use clap::Parser;

/// Push the worker image built by step-210 and record its digest in .env.
#[derive(Debug, Parser)]
#[command(name = step_211_push_to_ecr::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_211_push_to_ecr::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_211_push_to_ecr::NAME, &cli.global, |ctx| {
        step_211_push_to_ecr::run(ctx, cli.args)
    })
}
