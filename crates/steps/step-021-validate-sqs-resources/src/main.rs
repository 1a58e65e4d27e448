//! step-021-validate-sqs-resources: checks the queues and the bucket; exits 1 on any problem.

use std::process::ExitCode;

use clap::Parser;

/// Check the job queue, the dead-letter queue and the bucket against the settings.
#[derive(Debug, Parser)]
#[command(name = step_021_validate_sqs_resources::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_021_validate_sqs_resources::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_021_validate_sqs_resources::NAME, &cli.global, |ctx| {
        step_021_validate_sqs_resources::run(ctx, cli.args)
    })
}
