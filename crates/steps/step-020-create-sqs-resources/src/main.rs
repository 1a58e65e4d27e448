//! step-020-create-sqs-resources: creates or repairs the queues and the bucket.

use std::process::ExitCode;

use clap::Parser;

/// Create or repair the job queue, its dead-letter queue and the bucket, then self-test them.
#[derive(Debug, Parser)]
#[command(name = step_020_create_sqs_resources::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_020_create_sqs_resources::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_020_create_sqs_resources::NAME, &cli.global, |ctx| {
        step_020_create_sqs_resources::run(ctx, cli.args)
    })
}
