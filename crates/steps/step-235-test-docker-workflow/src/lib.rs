//! Step 235: transcribe the shipped speech sample through the Path B fleet.
//!
//! The same test as step-135 ([`step_135_test_complete_workflow::run_path`]): upload the
//! sample, send a job, wait for the transcript, compare it with the reference, print it with a
//! timing breakdown; against AWS the total is recorded as `path_b.e2e_transcription_seconds`.

use common::deployment_path::DeploymentPath;
use common::{Context, Report};

pub use step_135_test_complete_workflow::Args;

/// The step's name.
pub const STEP: &str = "step-235-test-docker-workflow";

/// Runs step 235.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let mut report =
        step_135_test_complete_workflow::run_path(ctx, args, DeploymentPath::Docker).await?;
    report.next.push("./scripts/step-230-update-docker-workers.sh   # after a new image".into());
    Ok(report)
}
