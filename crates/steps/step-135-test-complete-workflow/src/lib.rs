//! Step 135: transcribe the shipped speech sample through the Path A fleet.
//!
//! Uploads `samples/hello-fleet.wav` under `input/e2e/<run id>/`, sends a job, waits for the
//! transcript under `output/e2e/<run id>/`, compares it with `samples/hello-fleet.txt` (word
//! error rate), prints it with a timing breakdown (queue wait, transcription, total) and
//! records the total in `.local/measurements.json` for `DEPLOYMENT_COMPARISON.md`.

pub mod sample;

use std::time::Duration;

use anyhow::Context as _;
use common::deployment_path::DeploymentPath;
use common::job::{Transcript, word_error_rate};
use common::sdk::sqs;
use common::{Context, HintExt, Mark, Report, Settings};

/// The step's name.
pub const STEP: &str = "step-135-test-complete-workflow";

/// Flags of step 135.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Seconds to wait for the transcript.
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Highest word error rate that passes.
    #[arg(long, default_value_t = 0.3, value_name = "RATE")]
    pub max_wer: f64,
}

impl Default for Args {
    fn default() -> Self {
        Self { timeout: 600, max_wer: 0.3 }
    }
}

const REFERENCE: &str = "samples/hello-fleet.txt";

/// The health check that shows the workers of `path`, for a job that does not finish.
fn health_hint(path: DeploymentPath) -> &'static str {
    match path {
        DeploymentPath::Docker => {
            "run ./scripts/step-225-check-docker-health.sh to see the workers"
        }
        DeploymentPath::Traditional => {
            "run ./scripts/step-125-check-worker-health.sh to see the workers"
        }
    }
}

/// Runs step 135.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    run_path(ctx, args, DeploymentPath::Traditional).await
}

/// Transcribes the sample through the workers of `path` (step-235 runs it for Path B).
pub async fn run_path(ctx: Context, args: Args, path: DeploymentPath) -> anyhow::Result<Report> {
    let name = if path == DeploymentPath::Docker { "Path B" } else { "Path A" };
    ctx.ui.header(ctx.step, &format!("transcribing the sample through the {name} fleet"));
    let settings = ctx.load_settings()?.settings;
    let queue_url = sample::queue_url(&settings)?;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let live =
        fleet::workers::find_workers(&clients.ec2, &settings, path, fleet::workers::LIVE_STATES)
            .await?;
    if live.is_empty() {
        let hint = if path == DeploymentPath::Docker {
            "run ./scripts/step-220-launch-docker-worker.sh, \
             then ./scripts/step-225-check-docker-health.sh --wait"
        } else {
            "run ./scripts/step-120-launch-spot-worker.sh, \
             then ./scripts/step-125-check-worker-health.sh --wait"
        };
        return Err(anyhow::anyhow!("no live {name} worker to take the job")).hint(hint);
    }
    let audio = sample::read(&ctx)?;
    let reference = std::fs::read_to_string(ctx.project.root.join(REFERENCE))
        .with_context(|| format!("failed to read `{REFERENCE}`"))?;
    let job = sample::new_job(&settings, "e2e");
    let mut report = Report::new(ctx.step);

    let sqs = sqs::Client::new(&config);
    let submitted = sample::send(&clients.s3, &sqs, &queue_url, &job, audio).await?;
    report.item(Mark::Created, "audio", job.s3_input_path.to_string());
    report.item(Mark::Created, "job", &job.job_id);

    let timeout = Duration::from_secs(args.timeout);
    let transcript =
        sample::wait_for_transcript(&ctx, &clients.s3, &settings, &job, timeout, health_hint(path))
            .await?;
    let total = submitted.elapsed().as_secs_f64();
    judge(&mut report, &transcript, &reference, args.max_wer);
    timings(&mut report, &transcript, total);
    record_measurement(&ctx, &settings, path, total);
    report.summary =
        format!("the sample was transcribed in {total:.1} s: \"{}\"", transcript.text());
    report.data = serde_json::json!({
        "job_id": job.job_id,
        "transcript": transcript.text(),
        "wer": word_error_rate(&reference, &transcript.text()),
        "total_seconds": total,
        "worker_id": transcript.worker_id,
    });
    Ok(report)
}

fn judge(report: &mut Report, transcript: &Transcript, reference: &str, max_wer: f64) {
    let text = transcript.text();
    report.item(Mark::Info, "transcript", &text);
    report.item(Mark::Info, "reference", reference.trim());
    let wer = word_error_rate(reference, &text);
    let mark = if wer <= max_wer { Mark::Passed } else { Mark::Problem };
    report.item(mark, "word error rate", format!("{wer:.2} (at most {max_wer:.2} passes)"));
    report.item(
        Mark::Info,
        "worker",
        format!(
            "{} ({} {}, version {})",
            transcript.worker_id, transcript.engine, transcript.model, transcript.worker_version
        ),
    );
}

/// The worker's own stages, in order; the engine's sub-stages (such as `load_audio`) are
/// parts of `transcribe` and must not be added again.
const WORKER_STAGES: [&str; 5] = ["download", "probe", "decode", "transcribe", "upload"];

fn timings(report: &mut Report, transcript: &Transcript, total: f64) {
    let stage = |name: &str| transcript.timings.get(name).copied().flatten().unwrap_or(0.0);
    let work = stage("transcribe");
    let processing: f64 = WORKER_STAGES.iter().map(|name| stage(name)).sum();
    let queue_wait = (total - processing).max(0.0);
    report.item(
        Mark::Info,
        "timing",
        format!(
            "queue wait and transfer {queue_wait:.1} s, transcription {work:.1} s, \
             total {total:.1} s"
        ),
    );
    let stages: Vec<String> = transcript
        .timings
        .iter()
        .filter_map(|(stage, seconds)| seconds.map(|s| format!("{stage} {s:.2} s")))
        .collect();
    if !stages.is_empty() {
        report.item(Mark::Info, "stages", stages.join(", "));
    }
}

fn record_measurement(ctx: &Context, settings: &Settings, path: DeploymentPath, total: f64) {
    let key = match (settings.is_local(), path) {
        (true, _) => common::measurements::E2E_TRANSCRIPTION,
        (false, DeploymentPath::Docker) => common::measurements::PATH_B_E2E_TRANSCRIPTION,
        (false, _) => common::measurements::PATH_A_E2E_TRANSCRIPTION,
    };
    if let Err(e) = common::measurements::record(&ctx.project, key, total) {
        ctx.ui.warn(&format!("could not record {key}: {e:#}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_job_points_at_the_health_check_of_its_path() {
        assert!(health_hint(DeploymentPath::Docker).contains("step-225-check-docker-health"));
        assert!(health_hint(DeploymentPath::Traditional).contains("step-125-check-worker-health"));
    }
}
