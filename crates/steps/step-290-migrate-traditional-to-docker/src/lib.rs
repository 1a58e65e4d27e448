//! step-290-migrate-traditional-to-docker: moves a Path A deployment to Path B, and back.
//!
//! In order, stopping at the first failure: refuse unless Path A is set up (`.deployment-path`
//! says `traditional` and `bundles/current` names a bundle), snapshot `.env`,
//! `.deployment-path`, the bundle version and the script links under
//! `.local/migrations/<timestamp>/`, build and push the image (step-210 and step-211, the same
//! pinned dependency set), launch one Docker worker beside the traditional ones, and run the
//! end-to-end check until the Docker worker itself served it. Only then are
//! `.deployment-path` and the links switched (through `common::deployment_path` and
//! step-025's link code). Path A workers keep running; the report prints the rollback
//! commands. `--rollback` restores the newest snapshot (or `--snapshot DIR`) and switches back.
//!
//! One queue feeds both paths, so a job cannot be addressed to the new worker: the check
//! reads the serving worker's id from the transcript and tries again (`--attempts`) when a
//! Path A worker took it. `--stop-traditional` stops the local Path A runners first (local
//! mode), so only the Docker worker can take the job.

pub mod snapshot;
pub mod stages;

use std::path::PathBuf;
use std::time::Duration;

use common::aws::SdkResultExt;
use common::deployment_path::{self, DeploymentPath};
use common::{Context, HintExt, Mark, Report, Settings};
use step_025_choose_deployment_path::links;

pub use stages::{Real, Stages};

/// The step's name.
pub const NAME: &str = "step-290-migrate-traditional-to-docker";

/// Flags of step-290.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Return to Path A: restore the newest snapshot and switch the links back.
    #[arg(long)]
    pub rollback: bool,
    /// Snapshot folder to restore with --rollback (default: the newest).
    #[arg(long, value_name = "DIR", requires = "rollback")]
    pub snapshot: Option<PathBuf>,
    /// Stop the local Path A runners before the check, so only the Docker worker takes the job.
    #[arg(long, conflicts_with = "rollback")]
    pub stop_traditional: bool,
    /// Check the prerequisites and show the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for each end-to-end transcript.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// End-to-end jobs to send before giving up when Path A workers take them.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub attempts: u32,
}

impl Default for Args {
    fn default() -> Self {
        Self {
            rollback: false,
            snapshot: None,
            stop_traditional: false,
            dry_run: false,
            timeout: 600,
            attempts: 3,
        }
    }
}

/// The command that returns to Path A.
pub const ROLLBACK_COMMAND: &str = "./scripts/step-290-migrate-traditional-to-docker.sh --rollback";

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    run_with(ctx, args, &Real::default()).await
}

/// Runs the step with the given build, launch and check stages.
pub async fn run_with<S: Stages>(ctx: Context, args: Args, stages: &S) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let s3 = common::aws::s3_client(&config, &settings);
    if args.rollback {
        ctx.ui.header(ctx.step, "roll back to Path A");
        return rollback(&ctx, &args, &settings, &s3).await;
    }
    ctx.ui.header(ctx.step, "migrate Path A to Path B");
    migrate(&ctx, &args, &settings, &s3, stages).await
}

async fn migrate<S: Stages>(
    ctx: &Context,
    args: &Args,
    settings: &Settings,
    s3: &fleet::s3::Client,
    stages: &S,
) -> anyhow::Result<Report> {
    let mut report = Report::new(ctx.step);
    if current_path(ctx)? == DeploymentPath::Docker {
        report.item(Mark::Unchanged, deployment_path::FILE_NAME, "already on Path B (docker)");
        report.summary = "already on Path B; nothing to migrate".to_string();
        report.next.push(ROLLBACK_COMMAND.to_string());
        return Ok(report);
    }
    let path_a_first =
        "run Path A first: ./scripts/step-110-deploy-worker-code.sh and steps 120-135";
    let bundle = fleet::bundle::read_current(s3, &settings.bucket)
        .await
        .hint(path_a_first)?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Path A was never set up: `s3://{}/{}` names no bundle",
                settings.bucket,
                fleet::bundle::CURRENT_KEY
            )
        })
        .hint(path_a_first)?;
    report.item(Mark::Passed, "Path A", format!("traditional, bundle {bundle}"));
    if args.dry_run {
        return Ok(plan_only(report, args));
    }

    let (dir, _) = snapshot::take(&ctx.project, &bundle)?;
    report.item(Mark::Created, "snapshot", dir.display().to_string());
    let image = stages.build_image(ctx).await?;
    report.item(Mark::Passed, "image", &image);
    if args.stop_traditional {
        stop_traditional(ctx, settings, &mut report);
    }
    let worker = stages.launch_docker_worker(ctx).await?;
    report.item(Mark::Created, "Docker worker", &worker);
    check_worker(ctx, args, settings, stages, &worker, &mut report).await?;

    deployment_path::write(&ctx.project, DeploymentPath::Docker)?;
    report.item(Mark::Updated, deployment_path::FILE_NAME, "traditional → docker");
    links::ensure_links(&ctx.project.root.join("scripts"), DeploymentPath::Docker, &mut report)?;
    report.summary = format!("moved to Path B; snapshot in {}", dir.display());
    report.next.push(format!("to return to Path A: {ROLLBACK_COMMAND}"));
    report.next.push(
        "when Path B serves well: ./scripts/step-999-terminate-workers.sh --path traditional"
            .to_string(),
    );
    report.data = serde_json::json!({
        "snapshot": dir, "image": image, "docker_worker": worker, "bundle_version": bundle,
    });
    Ok(report)
}

/// The chosen path; refuses when Path A was never chosen.
fn current_path(ctx: &Context) -> anyhow::Result<DeploymentPath> {
    let choice = deployment_path::read(&ctx.project)?
        .ok_or_else(|| anyhow::anyhow!("Path A was never set up: `.deployment-path` is missing"))
        .hint("run ./scripts/step-025-choose-deployment-path.sh --path traditional and Path A's steps 100-135 first")?;
    if let Some(warning) = &choice.warning {
        ctx.ui.warn(warning);
    }
    Ok(choice.path)
}

fn plan_only(mut report: Report, args: &Args) -> Report {
    let steps = [
        "snapshot .env, .deployment-path, the bundle version and the links",
        "build and push the image (step-210, step-211)",
        "launch one Docker worker (step-220; a live one is reused)",
        "send the sample until the Docker worker serves it",
        "switch .deployment-path and scripts/launch-worker.sh, check-health.sh to docker",
    ];
    for (n, what) in steps.iter().enumerate() {
        report.item(Mark::Info, format!("would {}", n + 1), *what);
    }
    if args.stop_traditional {
        report.item(Mark::Info, "would also", "stop the local Path A runners before the check");
    }
    report.summary = "dry run: nothing changed".to_string();
    report
}

/// LOCAL MODE ONLY stops runners; in AWS the instances keep running and the check relies on
/// the serving worker's id.
fn stop_traditional(ctx: &Context, settings: &Settings, report: &mut Report) {
    if !settings.is_local() {
        report.item(
            Mark::Info,
            "Path A workers",
            "left running in AWS; the check counts only a job the Docker worker served",
        );
        return;
    }
    let stopped = fleet::local::stop_all(&ctx.project, Duration::from_secs(10));
    let detail = match stopped.len() {
        0 => "no local runner was running".to_string(),
        _ => format!(
            "stopped {}; ./scripts/step-120-launch-spot-worker.sh restarts them",
            stopped.join(", ")
        ),
    };
    report.item(Mark::Info, "Path A runners", detail);
}

async fn check_worker<S: Stages>(
    ctx: &Context,
    args: &Args,
    settings: &Settings,
    stages: &S,
    worker: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(args.timeout);
    for attempt in 1..=args.attempts.max(1) {
        let served = stages.end_to_end(ctx, settings, timeout).await?;
        if served == worker {
            report.item(Mark::Passed, "end-to-end check", format!("served by {worker}"));
            return Ok(());
        }
        report.item(
            Mark::Info,
            format!("end-to-end check {attempt}"),
            format!("served by `{served}`, not the Docker worker; sending again"),
        );
    }
    Err(anyhow::anyhow!(
        "the end-to-end check never reached the Docker worker `{worker}` in {} attempt(s); \
         still on Path A",
        args.attempts.max(1)
    ))
    .hint("run again with --stop-traditional so only the Docker worker takes the job")
}

async fn rollback(
    ctx: &Context,
    args: &Args,
    settings: &Settings,
    s3: &fleet::s3::Client,
) -> anyhow::Result<Report> {
    let mut report = Report::new(ctx.step);
    let dir = args
        .snapshot
        .clone()
        .or_else(|| snapshot::latest(&ctx.project))
        .ok_or_else(|| anyhow::anyhow!("no migration snapshot under `.local/migrations`"))
        .hint("a snapshot is taken by ./scripts/step-290-migrate-traditional-to-docker.sh")?;
    let manifest = snapshot::read(&dir)?;
    report.item(Mark::Info, "snapshot", format!("{} ({})", dir.display(), manifest.taken_at));
    if args.dry_run {
        report.summary = format!("dry run: would restore {}", dir.display());
        return Ok(report);
    }

    snapshot::restore_env(&ctx.project, &dir)?;
    report.item(Mark::Updated, ".env", "restored from the snapshot");
    restore_bundle(s3, settings, &manifest.bundle_version, &mut report).await?;
    deployment_path::write(&ctx.project, DeploymentPath::Traditional)?;
    report.item(Mark::Updated, deployment_path::FILE_NAME, "→ traditional");
    links::ensure_links(
        &ctx.project.root.join("scripts"),
        DeploymentPath::Traditional,
        &mut report,
    )?;
    report.summary = "back on Path A".to_string();
    report.next.push(
        "./scripts/step-120-launch-spot-worker.sh (restarts stopped Path A workers)".to_string(),
    );
    report.next.push("./scripts/step-999-terminate-workers.sh --path docker".to_string());
    Ok(report)
}

async fn restore_bundle(
    s3: &fleet::s3::Client,
    settings: &Settings,
    version: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    let key = fleet::bundle::CURRENT_KEY;
    if fleet::bundle::read_current(s3, &settings.bucket).await?.as_deref() == Some(version) {
        report.item(Mark::Unchanged, key, version);
        return Ok(());
    }
    s3.put_object()
        .bucket(&settings.bucket)
        .key(key)
        .body(fleet::s3::primitives::ByteStream::from(format!("{version}\n").into_bytes()))
        .send()
        .await
        .aws_context(|| format!("failed to restore `s3://{}/{key}`", settings.bucket))?;
    report.item(Mark::Updated, key, format!("→ {version}"));
    Ok(())
}
