//! Step 230: rolling update of the Path B workers to a new image digest.
//!
//! For each worker that runs another image, one at a time: launch a new worker on the target
//! image (step-220's launch), wait until its status says it takes jobs, ask the old one to
//! drain (SIGUSR1: it finishes the job in hand, takes no new one and exits 0), wait for it to
//! stop, then terminate its instance. So no job is lost or done twice: the job in flight
//! finishes on the old worker, and new jobs go to the new one.
//!
//! The target is `--image`, else `WORKER_IMAGE` from `.env` (step-211). `--rollback` targets
//! `WORKER_IMAGE_PREVIOUS`. After the update `.env` holds the target as `WORKER_IMAGE` and
//! `WORKER_IMAGE_DEPLOYED`, and the image the old workers ran as `WORKER_IMAGE_PREVIOUS`.
//!
//! Locally the drain is `docker kill --signal USR1` on the worker container; in the cloud it is
//! the same command sent through SSM Run Command.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::aws::SdkResultExt as _;
use common::deployment_path::DeploymentPath;
use common::job::WorkerState;
use common::{Context, HintExt, Mark, Report, Settings};
use fleet::docker_path::{self, PinnedImage};
use fleet::workers::{self, LIVE_STATES, WorkerInstance};

/// The step's name.
pub const STEP: &str = "step-230-update-docker-workers";

/// Flags of step 230.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Image to move to, `<registry>/<repo>@sha256:...` (default: WORKER_IMAGE from .env).
    #[arg(long, value_name = "REFERENCE", conflicts_with = "rollback")]
    pub image: Option<String>,
    /// Return to the previous image (WORKER_IMAGE_PREVIOUS).
    #[arg(long)]
    pub rollback: bool,
    /// Seconds to wait for a new worker to be healthy, and for an old one to finish its job.
    #[arg(long, default_value_t = 900, value_name = "SECONDS")]
    pub timeout: u64,
}

impl Default for Args {
    fn default() -> Self {
        Self { image: None, rollback: false, timeout: 900 }
    }
}

/// Runs step 230.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "rolling update of the Path B workers");
    let settings = ctx.load_settings()?.settings;
    let target = target_image(&ctx, &args)?;
    if settings.is_local() {
        common::docker::Docker::from_env(&ctx.env).server_version().await?;
    }
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let timeout = Duration::from_secs(args.timeout);
    let mut report = Report::new(STEP);
    report.item(Mark::Info, "target image", target.reference());

    let live =
        workers::find_workers(&clients.ec2, &settings, DeploymentPath::Docker, LIVE_STATES).await?;
    let deployed = docker_path::env_value(&ctx.project, &ctx.env, docker_path::DEPLOYED_IMAGE_KEY);
    let mut previous = None;
    let mut old = Vec::new();
    for worker in live.iter().cloned() {
        let running = running_image(&ctx, &settings, &worker, deployed.as_deref()).await?;
        if running.as_deref() == Some(target.reference().as_str()) {
            report.item(
                Mark::Unchanged,
                "worker",
                format!("{} already runs it", worker.instance_id),
            );
        } else {
            previous = previous.or(running);
            old.push(worker);
        }
    }
    let mut live_count = live.len() as u32;
    for worker in &old {
        let new_id =
            replace_one(&ctx, &clients, &settings, &target, live_count, timeout, &mut report)
                .await
                .with_context(|| {
                    format!("failed to start a replacement for `{}`", worker.instance_id)
                })?;
        live_count += 1;
        retire(&ctx, &clients, &settings, worker, timeout, &mut report).await?;
        live_count -= 1;
        report.item(
            Mark::Updated,
            "worker",
            format!("{} replaced by {new_id}", worker.instance_id),
        );
    }

    let mut updates = vec![
        (docker_path::IMAGE_KEY, target.reference()),
        (docker_path::DEPLOYED_IMAGE_KEY, target.reference()),
    ];
    if let Some(previous) = previous.filter(|p| *p != target.reference()) {
        updates.push((docker_path::PREVIOUS_IMAGE_KEY, previous));
    }
    let pairs: Vec<(&str, &str)> = updates.iter().map(|(k, v)| (*k, v.as_str())).collect();
    common::dotenv::update(&ctx.project.env_file, &pairs)?;
    report.summary = match old.len() {
        0 => "every Path B worker already runs the target image".to_string(),
        n => format!("replaced {n} Path B worker(s); they now run {}", target.digest),
    };
    report.data = serde_json::json!({ "image": target.reference(), "replaced": old.len() });
    report.next.push("./scripts/step-225-check-docker-health.sh".to_string());
    Ok(report)
}

/// The image to move to: `--image`, `WORKER_IMAGE_PREVIOUS` with `--rollback`, else
/// `WORKER_IMAGE`.
pub fn target_image(ctx: &Context, args: &Args) -> anyhow::Result<PinnedImage> {
    if let Some(reference) = &args.image {
        return PinnedImage::parse(reference);
    }
    if args.rollback {
        return docker_path::configured_image(
            &ctx.project,
            &ctx.env,
            docker_path::PREVIOUS_IMAGE_KEY,
        )
        .hint("there is no previous image to return to: no update has run yet");
    }
    docker_path::configured_image(&ctx.project, &ctx.env, docker_path::IMAGE_KEY)
}

/// The image a worker runs: its container's locally, the last deployed one in the cloud.
async fn running_image(
    ctx: &Context,
    settings: &Settings,
    worker: &WorkerInstance,
    deployed: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if !settings.is_local() {
        return Ok(deployed.map(str::to_string));
    }
    let name = docker_path::container_name(settings, &worker.instance_id);
    Ok(fleet::local_docker::state(&ctx.env, &name).await?.map(|s| s.image))
}

/// Launches one more worker on `target` and waits until it takes jobs; its instance id.
async fn replace_one(
    ctx: &Context,
    clients: &fleet::Clients,
    settings: &Settings,
    target: &PinnedImage,
    live: u32,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<String> {
    let summary = step_220_launch_docker_worker::launch_docker_workers(
        ctx,
        clients,
        settings,
        target,
        Some(live + 1),
        timeout,
        report,
    )
    .await?;
    let launched = summary.launched.first().context("no new worker was launched").hint(
        "a rolling update needs room for one more worker: raise MAX_WORKERS in .env by one",
    )?;
    let id = launched.instance_id.clone();
    let spinner = ctx.ui.spinner(&format!("waiting for {id} to take jobs"));
    let started = Instant::now();
    loop {
        let status = fleet::health::read_status(&clients.s3, &settings.bucket, &id).await?;
        match status.map(|s| s.state) {
            Some(WorkerState::Idle | WorkerState::Busy) => break,
            Some(WorkerState::Failed | WorkerState::Stopped) => {
                spinner.finish("the new worker failed");
                anyhow::bail!("the new worker `{id}` stopped before taking jobs");
            }
            _ if started.elapsed() >= timeout => {
                spinner.finish("no healthy new worker");
                anyhow::bail!("the new worker `{id}` is not healthy after {} s", timeout.as_secs());
            }
            _ => tokio::time::sleep(poll(settings)).await,
        }
    }
    spinner.finish(&format!("{id} takes jobs"));
    report.item(Mark::Passed, "new worker healthy", &id);
    Ok(id)
}

fn poll(settings: &Settings) -> Duration {
    if settings.is_local() { Duration::from_millis(300) } else { Duration::from_secs(10) }
}

/// Drains `worker` (it finishes its job and exits), then terminates its instance.
async fn retire(
    ctx: &Context,
    clients: &fleet::Clients,
    settings: &Settings,
    worker: &WorkerInstance,
    timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<()> {
    let id = &worker.instance_id;
    let spinner = ctx.ui.spinner(&format!("{id} finishes its job and stops"));
    if settings.is_local() {
        let name = docker_path::container_name(settings, id);
        fleet::local_docker::drain(&ctx.env, &name).await?;
        let code = fleet::local_docker::wait_exit(&ctx.env, &name, timeout).await?;
        spinner.finish(&format!("{id} stopped"));
        match code {
            Some(0) => report.item(Mark::Passed, "drained", format!("{name} exited 0")),
            Some(code) => report.item(Mark::Problem, "drained", format!("{name} exited {code}")),
            None => report.item(Mark::Problem, "drained", format!("{name} still runs; stopped")),
        };
        fleet::local_docker::stop(&ctx.env, &name, Duration::from_secs(30)).await?;
    } else {
        drain_remote(clients, settings, id).await?;
        wait_stopped(clients, settings, id, timeout).await?;
        spinner.finish(&format!("{id} stopped"));
        report.item(Mark::Passed, "drained", id);
    }
    clients
        .ec2
        .terminate_instances()
        .instance_ids(id)
        .send()
        .await
        .aws_context(|| format!("failed to terminate instance `{id}`"))?;
    report.item(Mark::Deleted, "old worker", id);
    Ok(())
}

async fn drain_remote(
    clients: &fleet::Clients,
    settings: &Settings,
    id: &str,
) -> anyhow::Result<()> {
    let command =
        format!("docker kill --signal {} {}-worker", docker_path::DRAIN_SIGNAL, settings.prefix());
    clients
        .ssm
        .send_command()
        .instance_ids(id)
        .document_name("AWS-RunShellScript")
        .parameters("commands", vec![command])
        .comment("transcribe-fleet rolling update: drain the worker")
        .send()
        .await
        .aws_context(|| format!("failed to ask worker `{id}` to drain"))
        .hint("the instance needs the SSM agent and the instance profile of step-010")?;
    Ok(())
}

async fn wait_stopped(
    clients: &fleet::Clients,
    settings: &Settings,
    id: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let status = fleet::health::read_status(&clients.s3, &settings.bucket, id).await?;
        if status.is_some_and(|s| s.state == WorkerState::Stopped) {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            anyhow::bail!("worker `{id}` did not stop within {} s", timeout.as_secs());
        }
        tokio::time::sleep(poll(settings)).await;
    }
}
