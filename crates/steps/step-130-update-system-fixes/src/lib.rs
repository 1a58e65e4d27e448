//! Step 130: roll the current worker bundle onto the running Path A workers, in place.
//!
//! Cloud: SSM Run Command on each worker fetches `bundles/current`, verifies the sums and runs
//! the bundle's `install.sh`, which restarts the service. Local mode: the local runner is
//! restarted on the current bundle. Either way the step then waits until each worker's status
//! object shows a worker started after the rollout, taking jobs again.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use common::aws::SdkResultExt;
use common::deployment_path::DeploymentPath;
use common::job::WorkerState;
use common::{Context, HintExt, Mark, Report, Settings};
use fleet::workers::{self, WorkerInstance};
use fleet::{bundle, health, ssm};

/// The step's name.
pub const STEP: &str = "step-130-update-system-fixes";

/// Flags of step 130.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Seconds to wait for the workers to report back.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { timeout: 900 }
    }
}

/// Runs step 130.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "updating the Path A workers in place");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let version = bundle::read_current(&clients.s3, &settings.bucket)
        .await?
        .context("`bundles/current` does not exist")
        .hint("run ./scripts/step-110-deploy-worker-code.sh")?;
    let live =
        workers::find_workers(&clients.ec2, &settings, DeploymentPath::Traditional, &["running"])
            .await?;
    let mut report = Report::new(STEP);
    if live.is_empty() {
        report.item(Mark::Skipped, "workers", "no running Path A worker to update");
        report.summary = format!("nothing to update; new workers start bundle {version}");
        return Ok(report);
    }
    let rollout = Utc::now();
    if settings.is_local() {
        restart_local_runners(&ctx, &settings, &clients, &live, &mut report).await?;
    } else {
        run_command(&clients.ssm, &settings, &live, &mut report).await?;
    }
    confirm(
        &ctx,
        &clients,
        &settings,
        &live,
        &Rollout { started: rollout, version: &version },
        Duration::from_secs(args.timeout),
        &mut report,
    )
    .await?;
    report.summary = match report.count(Mark::Problem) {
        0 => format!("{} worker(s) run bundle {version}", live.len()),
        n => format!("{n} worker(s) did not come back on bundle {version}"),
    };
    report.data = serde_json::json!({ "version": version });
    report.next.push("./scripts/step-135-test-complete-workflow.sh".to_string());
    Ok(report)
}

/// LOCAL MODE ONLY: restart each worker's local runner on the current bundle.
async fn restart_local_runners(
    ctx: &Context,
    settings: &Settings,
    clients: &fleet::Clients,
    live: &[WorkerInstance],
    report: &mut Report,
) -> anyhow::Result<()> {
    for w in live {
        let runner =
            fleet::local::restart(&ctx.project, settings, &ctx.env, &clients.s3, &w.instance_id)
                .await?;
        report.item(
            Mark::Updated,
            "local runner",
            format!("{}: pid {}, bundle {}", w.instance_id, runner.pid, runner.bundle_version),
        );
    }
    Ok(())
}

/// The shell script SSM runs on each worker.
pub fn update_script(settings: &Settings) -> Vec<String> {
    let bucket = &settings.bucket;
    let region = &settings.region;
    vec![
        "set -euo pipefail".to_string(),
        format!(
            "version=$(aws s3 cp --region {region} s3://{bucket}/{} - | tr -d '[:space:]')",
            bundle::CURRENT_KEY
        ),
        "dir=/opt/transcribe-fleet/bundle-$version".to_string(),
        format!(
            "aws s3 cp --region {region} --recursive --quiet s3://{bucket}/{}$version/ $dir/",
            bundle::BUNDLE_PREFIX
        ),
        "cd $dir && sha256sum --check --strict SHA256SUMS".to_string(),
        "sed -i '/^FLEET_BUNDLE_VERSION=/d' /etc/transcribe-fleet/worker.env".to_string(),
        "echo \"FLEET_BUNDLE_VERSION='$version'\" >> /etc/transcribe-fleet/worker.env".to_string(),
        "bash ./install.sh $dir".to_string(),
    ]
}

async fn run_command(
    ssm: &ssm::Client,
    settings: &Settings,
    live: &[WorkerInstance],
    report: &mut Report,
) -> anyhow::Result<()> {
    let ids: Vec<String> = live.iter().map(|w| w.instance_id.clone()).collect();
    let out = ssm
        .send_command()
        .document_name("AWS-RunShellScript")
        .comment("transcribe-fleet: install the current worker bundle")
        .set_instance_ids(Some(ids.clone()))
        .parameters("commands", update_script(settings))
        .timeout_seconds(600)
        .send()
        .await
        .aws_context(|| "failed to send the update command through SSM".to_string())
        .hint("workers need the SSM agent and AmazonSSMManagedInstanceCore (step-010)")?;
    let command_id = out.command().and_then(|c| c.command_id()).unwrap_or_default().to_string();
    for id in &ids {
        let status = wait_for_invocation(ssm, &command_id, id).await?;
        let mark = if status == "Success" { Mark::Passed } else { Mark::Problem };
        report.item(mark, "ssm command", format!("{id}: {status} ({command_id})"));
    }
    Ok(())
}

async fn wait_for_invocation(
    ssm: &ssm::Client,
    command_id: &str,
    id: &str,
) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let out = ssm.get_command_invocation().command_id(command_id).instance_id(id).send().await;
        let status = match out {
            Ok(out) => out.status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            Err(e) if common::aws::error_code(&e) == Some("InvocationDoesNotExist") => {
                "Pending".to_string()
            }
            Err(e) => {
                return Err(e).aws_context(|| format!("failed to read the command on `{id}`"));
            }
        };
        let waiting = matches!(status.as_str(), "Pending" | "InProgress" | "Delayed");
        if !waiting || started.elapsed() > Duration::from_secs(900) {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// When the update started and which bundle the workers must come back on.
#[derive(Debug, Clone, Copy)]
struct Rollout<'a> {
    started: DateTime<Utc>,
    version: &'a str,
}

async fn confirm(
    ctx: &Context,
    clients: &fleet::Clients,
    settings: &Settings,
    live: &[WorkerInstance],
    rollout: &Rollout<'_>,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Rollout { started: rollout, version } = *rollout;
    let spinner = ctx.ui.spinner("waiting for the workers to report the update");
    let started = Instant::now();
    let poll =
        if settings.is_local() { Duration::from_millis(300) } else { Duration::from_secs(10) };
    let mut pending: Vec<&WorkerInstance> = live.iter().collect();
    while !pending.is_empty() && started.elapsed() < timeout {
        let mut still = Vec::new();
        for w in pending {
            let status = health::read_status(&clients.s3, &settings.bucket, &w.instance_id).await?;
            // Workers report `<package>+<bundle>` (FLEET_BUNDLE_VERSION).
            let back = status.as_ref().is_some_and(|s| {
                s.started_at >= rollout
                    && s.version.ends_with(&format!("+{version}"))
                    && matches!(s.state, WorkerState::Idle | WorkerState::Busy)
            });
            match status.filter(|_| back) {
                Some(s) => {
                    let since = s.started_at.format("%H:%M:%S");
                    report.item(
                        Mark::Passed,
                        "worker",
                        format!(
                            "{} restarted at {since}, version {}, {}",
                            w.instance_id,
                            s.version,
                            s.state.as_str()
                        ),
                    );
                }
                None => still.push(w),
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(poll).await;
        }
    }
    spinner.finish("workers checked");
    for w in pending {
        report.item(
            Mark::Problem,
            "worker",
            format!("{} did not report bundle {version} after the update", w.instance_id),
        );
    }
    Ok(())
}
