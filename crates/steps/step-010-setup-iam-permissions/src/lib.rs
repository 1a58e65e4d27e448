//! step-010: the worker role, its instance profile and its least-privilege policy.
//!
//! Creates what is missing and repairs what drifted: a changed policy document becomes a new
//! default version (the oldest non-default version makes room when five exist), a changed
//! trust policy is replaced, foreign attachments are removed, and a role or profile left
//! alone by an interrupted run is completed. IAM is eventually consistent, so the step waits
//! until the instance profile lists the role. It also writes the operator policy (what the
//! steps of this project call) to `.local/operator-policy.json` for an administrator.
//! The documents themselves are defined in [`common::iam_policy`].

use std::time::Duration;

use common::iam_policy::{self, Scope};
use common::sdk::iam;
use common::{Context, Report, Settings};

mod operator;
mod policy;
mod profile;
mod role;

pub use profile::wait_for_role;

/// The step's name, as in tags and reports.
pub const NAME: &str = iam_policy::SETUP_STEP;

/// Flags of step-010.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only write the operator policy file and print its summary; change nothing in IAM.
    #[arg(long)]
    pub operator_policy_only: bool,
    /// Seconds to wait until the instance profile lists the role.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub propagation_timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { operator_policy_only: false, propagation_timeout: 120 }
    }
}

/// Runs the step: settings, account, then [`apply`].
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(ctx.step, "worker role, instance profile and least-privilege policy");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let scope = Scope::new(&settings, &common::aws::account_id(&settings, &config).await?);
    apply(&ctx, &settings, &scope, &iam::Client::new(&config), &args).await
}

/// Writes the operator policy, then creates or repairs the worker's IAM resources.
pub async fn apply(
    ctx: &Context,
    settings: &Settings,
    scope: &Scope,
    iam: &iam::Client,
    args: &Args,
) -> anyhow::Result<Report> {
    let mut report = Report::new(ctx.step);
    operator::write(ctx, scope, &mut report, args.operator_policy_only)?;
    if args.operator_policy_only {
        report.summary = "operator policy written; IAM left alone".to_string();
        return Ok(report);
    }

    let tags = common::tags::standard(settings, ctx.step);
    policy::ensure_policy(iam, scope, &tags, &mut report).await?;
    role::ensure_role(iam, scope, &tags, &mut report).await?;
    role::ensure_attachments(iam, scope, &mut report).await?;
    profile::ensure_profile(iam, scope, &tags, &mut report).await?;

    // IAM is eventually consistent: a launch right after creation can reject the profile.
    let timeout = Duration::from_secs(args.propagation_timeout);
    wait_for_role(&ctx.ui, iam, &scope.profile_name(), &scope.role_name(), timeout).await?;

    report.summary = report.change_summary();
    report.next.push("./scripts/step-011-validate-iam-permissions.sh".to_string());
    report.data = serde_json::json!({
        "role": scope.role_name(),
        "instance_profile": scope.profile_name(),
        "policy_arn": scope.policy_arn(),
    });
    Ok(report)
}
