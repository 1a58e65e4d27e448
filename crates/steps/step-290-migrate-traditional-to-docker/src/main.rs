//! step-290-migrate-traditional-to-docker: moves a Path A deployment to Path B, or back.

use std::process::ExitCode;

use clap::Parser;

/// Snapshot Path A, build and check one Docker worker, then switch to Path B
/// (`--rollback` returns to Path A).
#[derive(Debug, Parser)]
#[command(name = step_290_migrate_traditional_to_docker::NAME, version)]
struct Cli {
    #[command(flatten)]
    global: common::GlobalArgs,
    #[command(flatten)]
    args: step_290_migrate_traditional_to_docker::Args,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    common::cli::run(step_290_migrate_traditional_to_docker::NAME, &cli.global, |ctx| {
        step_290_migrate_traditional_to_docker::run(ctx, cli.args)
    })
}
