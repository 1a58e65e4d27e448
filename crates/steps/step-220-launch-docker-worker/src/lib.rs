//! Step 220: launch Path B GPU workers that run the worker image.
//!
//! The launch is step-120's ([`fleet::launcher::launch_path`]); only the user data differs:
//! [`fleet::docker_path::user_data`] pulls the image `.env` pins by digest (`WORKER_IMAGE`,
//! written by step-211) and supervises the worker container. `--count N` asks for N workers in
//! total; running the step again launches nothing while the path has that many.
//!
//! Local mode: the instances are launched in the emulator, then the image runs on the local
//! Docker engine for each instance id ([`fleet::local_docker`]), as the bootstrap would.

use std::time::Duration;

use common::deployment_path::DeploymentPath;
use common::docker::Docker;
use common::{Context, Mark, Report, Settings};
use fleet::docker_path::{self, PinnedImage};
use fleet::launch::Pacing;
use fleet::launcher::{LaunchRequest, LaunchSummary, launch_path};

/// The step's name.
pub const STEP: &str = "step-220-launch-docker-worker";

/// Image size assumed when the image is not on this machine (the GPU image is ~10 GB).
const ASSUMED_IMAGE_SIZE: u64 = 12 * 1024 * 1024 * 1024;

/// Flags of step 220.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Workers wanted in total on Path B (live ones count; at most MAX_WORKERS).
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

/// Runs step 220.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "launching Path B workers");
    let settings = ctx.load_settings()?.settings;
    let image = docker_path::configured_image(&ctx.project, &ctx.env, docker_path::IMAGE_KEY)?;
    if settings.is_local() {
        Docker::from_env(&ctx.env).server_version().await?;
    }
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let mut report = Report::new(STEP);
    let wait = Duration::from_secs(args.wait_timeout);
    let summary =
        launch_docker_workers(&ctx, &clients, &settings, &image, args.count, wait, &mut report)
            .await?;
    if !summary.launched.is_empty() {
        common::dotenv::update(
            &ctx.project.env_file,
            &[(docker_path::DEPLOYED_IMAGE_KEY, &image.reference())],
        )?;
    }
    summary.finish_report(DeploymentPath::Docker, &mut report);
    report.data["image"] = image.reference().into();
    report.next.push("./scripts/step-225-check-docker-health.sh --wait".to_string());
    Ok(report)
}

/// Launches Path B workers running `image` until `count` are live (shared with step-230),
/// then, in local mode, runs the image for each of them on the local engine.
pub async fn launch_docker_workers(
    ctx: &Context,
    clients: &fleet::Clients,
    settings: &Settings,
    image: &PinnedImage,
    count: Option<u32>,
    wait_timeout: Duration,
    report: &mut Report,
) -> anyhow::Result<LaunchSummary> {
    let docker = Docker::from_env(&ctx.env);
    let size =
        docker.inspect_image(&image.reference()).await.map_or(ASSUMED_IMAGE_SIZE, |i| i.size);
    report.item(Mark::Info, "image", format!("{} ({} MB)", image.reference(), size / 1_000_000));
    let request = LaunchRequest {
        path: DeploymentPath::Docker,
        step: ctx.step,
        count,
        user_data: docker_path::user_data(settings, image, size)?,
        pacing: Pacing::default(),
        wait_timeout,
    };
    let summary = launch_path(clients, settings, &ctx.ui, &request, report).await?;
    if settings.is_local() {
        let ids: Vec<String> = summary.launched.iter().map(|l| l.instance_id.clone()).collect();
        let existing = summary.existing.iter().map(|w| w.instance_id.clone());
        start_local_containers(ctx, settings, &image.reference(), &ids, report).await?;
        // Live workers from an earlier run keep the image they run; a missing container is
        // started again from the current image.
        let missing: Vec<String> = existing.collect();
        start_local_containers(ctx, settings, &image.reference(), &missing, report).await?;
    }
    Ok(summary)
}

/// LOCAL MODE ONLY: runs the worker container the bootstrap would have run.
async fn start_local_containers(
    ctx: &Context,
    settings: &Settings,
    image: &str,
    ids: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    for id in ids {
        let (state, started) =
            fleet::local_docker::run(&ctx.project, settings, &ctx.env, image, id).await?;
        let mark = match started {
            fleet::local_docker::Started::New => Mark::Created,
            fleet::local_docker::Started::AlreadyRunning => Mark::Unchanged,
        };
        report.item(mark, "container", format!("{} for {id} ({})", state.name, state.status));
    }
    Ok(())
}
