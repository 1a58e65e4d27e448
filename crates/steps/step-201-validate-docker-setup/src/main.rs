//! step-201-validate-docker-setup: checks what step-200 set up.

use std::process::ExitCode;

use clap::Parser;

/// Check the ECR repository's settings, that a registry token works and the Docker engine.
#[derive(Debug, Parser)]
#[command(name = step_201_validate_docker_setup::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_201_validate_docker_setup::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_201_validate_docker_setup::NAME, &cli.global, |ctx| {
        step_201_validate_docker_setup::run(ctx, cli.args)
    })
}
