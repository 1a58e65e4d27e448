//! The stages of a migration that need Docker or a running worker, behind one trait so the
//! rest of the migration (snapshot, order, switch, rollback) is tested without them.

use std::future::Future;
use std::time::Duration;

use common::ui::NoPrompt;
use common::{Context, HintExt, Settings};
use step_135_test_complete_workflow::sample;

/// Build, launch and check: what the migration delegates.
pub trait Stages {
    /// Builds the image with the pinned dependency set and pushes it; returns the image
    /// reference by digest.
    fn build_image(&self, ctx: &Context) -> impl Future<Output = anyhow::Result<String>>;

    /// Launches one Docker worker beside the traditional ones; returns its instance id.
    fn launch_docker_worker(&self, ctx: &Context) -> impl Future<Output = anyhow::Result<String>>;

    /// Sends the sample through the queue; returns the id of the worker that served it. One
    /// queue feeds both paths, so the caller judges the check by that id.
    fn end_to_end(
        &self,
        ctx: &Context,
        settings: &Settings,
        timeout: Duration,
    ) -> impl Future<Output = anyhow::Result<String>>;
}

/// The stages as the steps run them.
#[derive(Debug, Clone, Default)]
pub struct Real {
    /// Flags for step-210 (the defaults, as `make docker` runs it).
    pub build: step_210_build_worker_image::Args,
}

impl Stages for Real {
    async fn build_image(&self, ctx: &Context) -> anyhow::Result<String> {
        let built = step_210_build_worker_image::run(
            sub_context(ctx, step_210_build_worker_image::NAME),
            self.build.clone(),
        )
        .await?;
        ctx.ui.note(&format!("step-210: {}", built.summary));
        let pushed = step_211_push_to_ecr::run(
            sub_context(ctx, step_211_push_to_ecr::NAME),
            Default::default(),
        )
        .await?;
        pushed.data["image"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("step-211 reported no image reference"))
    }

    async fn launch_docker_worker(&self, ctx: &Context) -> anyhow::Result<String> {
        // Step-220 without `--count` launches one worker, or reuses the live one of a run
        // that stopped at the check.
        let launched = step_220_launch_docker_worker::run(
            sub_context(ctx, step_220_launch_docker_worker::STEP),
            Default::default(),
        )
        .await?;
        let new = launched.data["launched"].get(0).and_then(|l| l["instance_id"].as_str());
        let live = launched.data["instance_ids"].get(0).and_then(|id| id.as_str());
        new.or(live)
            .map(str::to_string)
            .ok_or_else(|| anyhow::anyhow!("step-220 reported no Docker worker"))
            .hint("run ./scripts/step-225-check-docker-health.sh to see the Path B workers")
    }

    async fn end_to_end(
        &self,
        ctx: &Context,
        settings: &Settings,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let queue_url = sample::queue_url(settings)?;
        let config = common::aws::sdk_config(settings, &ctx.env, &Default::default()).await;
        let s3 = common::aws::s3_client(&config, settings);
        let job = sample::new_job(settings, "migrate");
        let sqs = common::sdk::sqs::Client::new(&config);
        sample::send(&s3, &sqs, &queue_url, &job, sample::read(ctx)?).await?;
        let hint = "run ./scripts/step-225-check-docker-health.sh to see the Docker worker";
        let transcript =
            sample::wait_for_transcript(ctx, &s3, settings, &job, timeout, hint).await?;
        Ok(transcript.worker_id)
    }
}

/// A context for a step this one runs in-process: same project, output and environment,
/// no prompts.
pub fn sub_context(ctx: &Context, step: &'static str) -> Context {
    Context {
        step,
        project: ctx.project.clone(),
        env: ctx.env.clone(),
        ui: ctx.ui.clone(),
        prompter: Box::new(NoPrompt { assume_yes: true }),
        assume_yes: true,
    }
}
