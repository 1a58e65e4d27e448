//! step-210-build-worker-image: builds the worker image with a version tag and `latest`.

use std::process::ExitCode;

use clap::Parser;

/// Build the worker image: tagged with the git revision (and `-dirty` with uncommitted changes).
#[derive(Debug, Parser)]
#[command(name = step_210_build_worker_image::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_210_build_worker_image::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_210_build_worker_image::NAME, &cli.global, |ctx| {
        step_210_build_worker_image::run(ctx, cli.args)
    })
}
