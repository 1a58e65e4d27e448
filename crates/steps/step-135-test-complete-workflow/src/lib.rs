//! Step 135: transcribe the shipped speech sample through the Path A fleet.
//!
//! Uploads `samples/hello-fleet.wav` under `input/e2e/<run id>/`, sends a job, waits for the
//! transcript under `output/e2e/<run id>/`, compares it with `samples/hello-fleet.txt` (word
//! error rate), prints it with a timing breakdown (queue wait, transcription, total) and
//! records the total in `.local/measurements.json` for `DEPLOYMENT_COMPARISON.md`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::deployment_path::DeploymentPath;
use common::job::{
    JobMessage, JobRecord, JobState, S3Uri, Transcript, job_record_key, word_error_rate,
};
use common::sdk::sqs;
use common::{Context, HintExt, Mark, Report, RequireSetting, Settings};
use fleet::s3;

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

const SAMPLE: &str = "samples/hello-fleet.wav";
const REFERENCE: &str = "samples/hello-fleet.txt";

/// Runs step 135.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    run_path(ctx, args, DeploymentPath::Traditional).await
}

/// Transcribes the sample through the workers of `path` (step-235 runs it for Path B).
pub async fn run_path(ctx: Context, args: Args, path: DeploymentPath) -> anyhow::Result<Report> {
    let name = if path == DeploymentPath::Docker { "Path B" } else { "Path A" };
    ctx.ui.header(ctx.step, &format!("transcribing the sample through the {name} fleet"));
    let settings = ctx.load_settings()?.settings;
    let queue_url = settings.queue.url.clone().require("QUEUE_URL")?;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = fleet::Clients::new(&config, &settings);
    let sqs = sqs::Client::new(&config);
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
    let audio = std::fs::read(ctx.project.root.join(SAMPLE))
        .with_context(|| format!("failed to read `{SAMPLE}`"))?;
    let reference = std::fs::read_to_string(ctx.project.root.join(REFERENCE))
        .with_context(|| format!("failed to read `{REFERENCE}`"))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let job = JobMessage::new(
        format!("e2e-{run_id}"),
        S3Uri::new(&settings.bucket, format!("input/e2e/{run_id}/hello-fleet.wav")),
        S3Uri::new(&settings.bucket, format!("output/e2e/{run_id}/")),
    );
    let mut report = Report::new(ctx.step);

    put(&clients.s3, &job.s3_input_path, audio).await?;
    report.item(Mark::Created, "audio", job.s3_input_path.to_string());
    let record = JobRecord::new(&job, JobState::Queued, None);
    let record_key = S3Uri::new(&settings.bucket, job_record_key(&job.job_id));
    put(&clients.s3, &record_key, serde_json::to_vec_pretty(&record)?).await?;
    let submitted = Instant::now();
    sqs.send_message()
        .queue_url(&queue_url)
        .message_body(job.to_body())
        .send()
        .await
        .aws_context(|| format!("failed to send job `{}`", job.job_id))?;
    report.item(Mark::Created, "job", &job.job_id);

    let transcript =
        wait_for_transcript(&ctx, &clients.s3, &settings, &job, Duration::from_secs(args.timeout))
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

async fn put(s3: &s3::Client, uri: &S3Uri, data: Vec<u8>) -> anyhow::Result<()> {
    s3.put_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .body(s3::primitives::ByteStream::from(data))
        .send()
        .await
        .aws_context(|| format!("failed to upload `{uri}`"))?;
    Ok(())
}

async fn wait_for_transcript(
    ctx: &Context,
    s3: &s3::Client,
    settings: &Settings,
    job: &JobMessage,
    timeout: Duration,
) -> anyhow::Result<Transcript> {
    let output = job.output(common::job::OutputFormat::Json);
    let record_key = job_record_key(&job.job_id);
    let poll =
        if settings.is_local() { Duration::from_millis(300) } else { Duration::from_secs(5) };
    let spinner = ctx.ui.spinner(&format!("waiting for {output}"));
    let started = Instant::now();
    loop {
        if let Some(bytes) = fleet::bundle::get_bytes(s3, &output.bucket, &output.key).await? {
            spinner.finish("transcript ready");
            return serde_json::from_slice(&bytes)
                .with_context(|| format!("`{output}` is not a transcript"));
        }
        if let Some(bytes) = fleet::bundle::get_bytes(s3, &settings.bucket, &record_key).await? {
            let record: Option<JobRecord> = serde_json::from_slice(&bytes).ok();
            if let Some(record) = record.filter(|r| r.state == JobState::Failed) {
                spinner.finish("job failed");
                return Err(anyhow::anyhow!(
                    "job `{}` failed: {}",
                    job.job_id,
                    record.error.unwrap_or_default()
                ))
                .hint("the message is in the dead-letter queue; `./scripts/transcribe.sh queue` shows it");
            }
        }
        if started.elapsed() >= timeout {
            spinner.finish("no transcript");
            return Err(anyhow::anyhow!(
                "no transcript at `{output}` after {} s",
                timeout.as_secs()
            ))
            .hint("run ./scripts/step-125-check-worker-health.sh to see the workers");
        }
        tokio::time::sleep(poll).await;
    }
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
