//! Step 120: launch Path A spot GPU workers.
//!
//! The launch template and the spot launch with its fallbacks are [`fleet::launcher`], shared
//! with Path B; the user data is Path A's small bootstrap ([`fleet::traditional::user_data`]).
//! `--count N` asks for N workers in total: running the step again launches nothing while the
//! path has that many live workers.
//!
//! Local mode: the instances are launched in the emulator exactly as in the cloud, then a
//! local runner ([`fleet::local`]) starts the real worker for each instance id, as the
//! bootstrap would on a real instance.

use std::time::Duration;

use common::deployment_path::DeploymentPath;
use common::{Context, Mark, Report};
use fleet::launch::Pacing;
use fleet::launcher::{LaunchRequest, launch_path};

/// The step's name.
pub const STEP: &str = "step-120-launch-spot-worker";

/// Flags of step 120.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Workers wanted in total on Path A (live ones count; at most MAX_WORKERS).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: Option<u32>,
    /// Seconds to wait for the instances to reach `running`.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub wait_timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { count: None, wait_timeout: 600 }
    }
}

/// Runs step 120.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "launching Path A workers");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let mut report = Report::new(STEP);
    let request = LaunchRequest {
        path: DeploymentPath::Traditional,
        step: STEP,
        count: args.count,
        user_data: fleet::traditional::user_data(&settings)?,
        pacing: Pacing::default(),
        wait_timeout: Duration::from_secs(args.wait_timeout),
    };
    let summary = launch_path(&clients, &settings, &ctx.ui, &request, &mut report).await?;
    if settings.is_local() {
        start_local_runners(&ctx, &settings, &clients, &summary.all_ids(), &mut report).await?;
    }
    summary.finish_report(DeploymentPath::Traditional, &mut report);
    report.next.push("./scripts/step-125-check-worker-health.sh --wait".to_string());
    Ok(report)
}

/// LOCAL MODE ONLY: starts the worker process the bootstrap would have started.
async fn start_local_runners(
    ctx: &Context,
    settings: &common::Settings,
    clients: &fleet::Clients,
    ids: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    // A runner whose instance is gone (terminated, or an emulator restarted) must not keep
    // taking jobs.
    for (runner, _) in fleet::local::list(&ctx.project) {
        if !ids.contains(&runner.instance_id) {
            fleet::local::stop(&ctx.project, &runner.instance_id, Duration::from_secs(20))?;
            report.item(
                Mark::Deleted,
                "local runner",
                format!("{}: instance gone", runner.instance_id),
            );
        }
    }
    for id in ids {
        let (runner, started) =
            fleet::local::start(&ctx.project, settings, &ctx.env, &clients.s3, id).await?;
        let mark = match started {
            fleet::local::Started::New => Mark::Created,
            fleet::local::Started::AlreadyRunning => Mark::Unchanged,
        };
        let detail = format!(
            "{id}: pid {}, bundle {}, log {}",
            runner.pid,
            runner.bundle_version,
            runner.log.display()
        );
        report.item(mark, "local runner", detail);
    }
    Ok(())
}
