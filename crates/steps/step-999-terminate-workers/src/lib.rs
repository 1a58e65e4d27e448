//! Step 999 (workers): terminate this deployment's workers of either path.
//!
//! Workers are found by their tags only (`Project` and `Environment` of the settings, and
//! `DeploymentPath` with `--path traditional|docker`), so an instance without them is never
//! touched, whatever id is passed. The step shows what it found, asks (or `--yes`), cancels
//! the spot requests that are ours (tagged as ours, or named by one of our workers), terminates
//! the workers and waits until EC2 reports them terminated. In local mode it then stops the
//! local runners ([`fleet::local`]) and the labelled worker containers
//! ([`common::containers`]) of those workers. `--dry-run` shows the same plan and changes
//! nothing.
//!
//! step-999-destroy-all-resources uses [`find`] and [`execute`] for its first phase.

mod plan;

use std::time::Duration;

use common::cli::Cancelled;
use common::{Context, Mark, Report};

pub use plan::{Outcome, Plan, Worker, execute, find, show};

/// The step's name.
pub const STEP: &str = "step-999-terminate-workers";

/// Which workers to terminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PathFilter {
    /// Path A workers (WhisperX installed on the instance).
    Traditional,
    /// Path B workers (the worker in a Docker container).
    Docker,
    /// Every instance tagged as this deployment's.
    #[default]
    All,
}

impl PathFilter {
    /// The `DeploymentPath` tag value, or `None` for all paths.
    pub fn path(self) -> Option<common::deployment_path::DeploymentPath> {
        use common::deployment_path::DeploymentPath;
        match self {
            Self::Traditional => Some(DeploymentPath::Traditional),
            Self::Docker => Some(DeploymentPath::Docker),
            Self::All => None,
        }
    }
}

/// Flags of the step.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Which workers: one path's, or all of this deployment's.
    #[arg(long, value_enum, default_value_t = PathFilter::All)]
    pub path: PathFilter,
    /// Only this worker (repeatable); it must carry this deployment's tags.
    #[arg(long = "instance-id", value_name = "ID")]
    pub instance_ids: Vec<String>,
    /// Show what would be terminated and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait until the workers are terminated.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { path: PathFilter::All, instance_ids: Vec::new(), dry_run: false, wait_timeout: 600 }
    }
}

/// Runs the step.
pub async fn run(mut ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "terminating workers");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let ec2 = fleet::ec2::Client::new(&config);
    let mut report = Report::new(STEP);

    let plan = find(&ctx, &settings, &ec2, args.path, &args.instance_ids).await?;
    show(&ctx.ui, &plan, args.dry_run, &mut report);
    if plan.is_empty() {
        report.summary = "no workers to terminate".to_string();
        return Ok(report);
    }
    if args.dry_run {
        report.summary = format!("dry run: {}; nothing was changed", plan.count_text());
        return Ok(report);
    }
    confirm(&mut ctx, "TERMINATE_WORKERS", &format!("Terminate {}?", plan.count_text()))?;

    let timeout = Duration::from_secs(args.wait_timeout);
    let outcome = execute(&ctx, &settings, &ec2, &plan, timeout, &mut report).await?;
    report.summary = format!("terminated {} worker(s)", outcome.terminated.len());
    report.data = serde_json::json!({
        "terminated": outcome.terminated,
        "cancelled_spot_requests": outcome.cancelled,
        "stopped_runners": outcome.runners,
        "removed_containers": outcome.containers,
    });
    if report.count(Mark::Problem) == 0 {
        report.next.push("./scripts/step-999-destroy-all-resources.sh".to_string());
    }
    Ok(report)
}

/// Asks `question` unless `--yes` was given; a "no" cancels the step (exit 130).
///
/// Without a terminal and without `--yes` the prompter refuses with a usage error (exit 2).
pub fn confirm(ctx: &mut Context, key: &str, question: &str) -> anyhow::Result<()> {
    if ctx.assume_yes || ctx.prompter.confirm(key, question, false)? {
        Ok(())
    } else {
        Err(anyhow::Error::new(Cancelled))
    }
}
