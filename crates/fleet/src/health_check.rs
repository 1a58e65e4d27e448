//! What the health-check steps share (step-125 for Path A, step-225 for Path B): their flags,
//! finding and judging a path's workers, and recording how long a launch took to turn healthy.

use std::time::Duration;

use common::deployment_path::DeploymentPath;
use common::{Context, Settings};

use crate::health::{self, Grace, Verdict, WorkerHealth};
use crate::{Clients, workers};

/// Flags of the health-check steps.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// Wait until a worker is healthy and none is still starting.
    #[arg(long)]
    pub wait: bool,
    /// Seconds to wait with `--wait`.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout: u64,
}

impl Default for HealthArgs {
    fn default() -> Self {
        Self { wait: false, timeout: 900 }
    }
}

/// States a worker instance can be in and still be worth showing.
const SHOWN_STATES: &[&str] = &["pending", "running", "stopping", "stopped", "shutting-down"];

/// How often `--wait` looks again: quickly against an emulator, gently against AWS.
pub fn poll_interval(settings: &Settings) -> Duration {
    if settings.is_local() { Duration::from_millis(500) } else { Duration::from_secs(10) }
}

/// Every worker of `path` worth showing, with its status checks, judged by [`health`].
pub async fn check_path(
    clients: &Clients,
    settings: &Settings,
    path: DeploymentPath,
) -> anyhow::Result<Vec<WorkerHealth>> {
    let mut found = workers::find_workers(&clients.ec2, settings, path, SHOWN_STATES).await?;
    workers::add_status_checks(&clients.ec2, &mut found).await?;
    let grace = Grace::for_local(settings.is_local());
    health::check_workers(&clients.s3, &settings.bucket, found, grace).await
}

/// Records the seconds from the newest healthy worker's launch until now as `path`'s
/// launch-to-healthy measurement; a failure to record is a warning.
pub fn record_launch_to_healthy<'a>(
    ctx: &Context,
    workers: impl IntoIterator<Item = &'a WorkerHealth>,
    path: DeploymentPath,
) {
    let now = chrono::Utc::now();
    let launched = workers
        .into_iter()
        .filter(|w| w.verdict == Verdict::Healthy)
        .filter_map(|w| {
            w.instance.launched_at.as_deref()?.parse::<chrono::DateTime<chrono::Utc>>().ok()
        })
        .max();
    if let Some(at) = launched {
        let seconds = (now - at).num_milliseconds() as f64 / 1000.0;
        let key = match path {
            DeploymentPath::Traditional => common::measurements::PATH_A_LAUNCH_TO_HEALTHY,
            DeploymentPath::Docker => common::measurements::PATH_B_LAUNCH_TO_HEALTHY,
        };
        if let Err(e) = common::measurements::record(&ctx.project, key, seconds) {
            ctx.ui.warn(&format!("could not record {key}: {e:#}"));
        }
    }
}
