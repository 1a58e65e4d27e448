//! step-200-setup-docker-prerequisites: the ECR repository and the Docker engine check.

use std::process::ExitCode;

use clap::Parser;

/// Create or repair the worker image's ECR repository and check that a Docker engine answers.
#[derive(Debug, Parser)]
#[command(name = step_200_setup_docker_prerequisites::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_200_setup_docker_prerequisites::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_200_setup_docker_prerequisites::NAME, &cli.global, |ctx| {
        step_200_setup_docker_prerequisites::run(ctx, cli.args)
    })
}
