//! step-011: compares the worker's IAM resources with what step-010 would make.
//!
//! Checks the trust policy, the policy's default version statement by statement, the two
//! attachments (and nothing else), the profile's role and the tags of all three. Every
//! difference is a problem with its fix, re-running step-010; the step then exits 1.
//! It changes nothing.

use common::iam_policy::{SETUP_COMMAND, SETUP_STEP, Scope};
use common::sdk::iam;
use common::{Context, Mark, Report, Settings, Status};

mod checks;

/// The step's name, as in reports.
pub const NAME: &str = "step-011-validate-iam-permissions";

/// Flags of step-011 (none besides the global ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {}

/// Runs the step: settings, account, then [`check`].
pub async fn run(ctx: Context, _args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(ctx.step, "compare the worker's IAM with step-010");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let scope = Scope::new(&settings, &common::aws::account_id(&settings, &config).await?);
    check(&ctx, &settings, &scope, &iam::Client::new(&config)).await
}

/// Compares what exists with what step-010 would make; drift marks the report failed.
pub async fn check(
    ctx: &Context,
    settings: &Settings,
    scope: &Scope,
    iam: &iam::Client,
) -> anyhow::Result<Report> {
    let mut report = Report::new(ctx.step);
    let tags = common::tags::standard(settings, SETUP_STEP);
    checks::policy(iam, scope, &tags, &mut report).await?;
    if checks::role(iam, scope, &tags, &mut report).await? {
        checks::attachments(iam, scope, &mut report).await?;
    }
    checks::profile(iam, scope, &tags, &mut report).await?;

    let problems = report.count(Mark::Problem);
    if report.status == Status::Ok {
        let passed = report.count(Mark::Passed);
        report.summary = format!("the worker's IAM matches step-010 ({passed} checks passed)");
        report.next.push("./scripts/step-020-create-sqs-resources.sh".to_string());
    } else {
        let noun = if problems == 1 { "problem" } else { "problems" };
        report.summary = format!("{problems} {noun} in the worker's IAM; run {SETUP_COMMAND}");
        report.next.push(SETUP_COMMAND.to_string());
    }
    Ok(report)
}
