//! The shipped sample as one job: read it, upload it with its queued job record, send the job
//! and wait for the transcript. Step-135 (and step-235 through it) judges the transcript;
//! step-290 reads which worker served it.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::job::{JobMessage, JobRecord, JobState, OutputFormat, S3Uri, Transcript};
use common::sdk::sqs;
use common::{Context, HintExt, RequireSetting, Settings};
use fleet::s3;

/// The sample every end-to-end check transcribes, in the project folder.
pub const SAMPLE: &str = "samples/hello-fleet.wav";

/// The queue URL the jobs go to; missing, it is bad configuration (exit 2) and the hint
/// names the step that makes the queue.
pub fn queue_url(settings: &Settings) -> anyhow::Result<String> {
    settings.queue.url.clone().require("QUEUE_URL")
}

/// The sample's audio.
pub fn read(ctx: &Context) -> anyhow::Result<Vec<u8>> {
    std::fs::read(ctx.project.root.join(SAMPLE))
        .with_context(|| format!("failed to read `{SAMPLE}`"))
}

/// A new job for the sample under `input/e2e/<run id>/`, its id `<prefix>-<run id>`.
pub fn new_job(settings: &Settings, prefix: &str) -> JobMessage {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    JobMessage::new(
        format!("{prefix}-{run_id}"),
        S3Uri::new(&settings.bucket, format!("input/e2e/{run_id}/hello-fleet.wav")),
        S3Uri::new(&settings.bucket, format!("output/e2e/{run_id}/")),
    )
}

/// Uploads `audio` and the job's queued record, then sends the job; returns when it was sent.
pub async fn send(
    s3: &s3::Client,
    sqs: &sqs::Client,
    queue_url: &str,
    job: &JobMessage,
    audio: Vec<u8>,
) -> anyhow::Result<Instant> {
    put(s3, &job.s3_input_path, audio).await?;
    let record = JobRecord::new(job, JobState::Queued, None);
    let record_key =
        S3Uri::new(&job.s3_input_path.bucket, common::job::job_record_key(&job.job_id));
    put(s3, &record_key, serde_json::to_vec_pretty(&record)?).await?;
    let sent = Instant::now();
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(job.to_body())
        .send()
        .await
        .aws_context(|| format!("failed to send job `{}`", job.job_id))?;
    Ok(sent)
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

/// Waits for the job's transcript; stops early when its record says it failed. After
/// `timeout` the error carries `hint`, the health check to run.
pub async fn wait_for_transcript(
    ctx: &Context,
    s3: &s3::Client,
    settings: &Settings,
    job: &JobMessage,
    timeout: Duration,
    hint: &'static str,
) -> anyhow::Result<Transcript> {
    let output = job.output(OutputFormat::Json);
    let record_key = common::job::job_record_key(&job.job_id);
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
                let reason = record.error.unwrap_or_default();
                return Err(anyhow::anyhow!("job `{}` failed: {reason}", job.job_id))
                    .hint("the message is in the dead-letter queue; `./scripts/transcribe.sh queue` shows it");
            }
        }
        if started.elapsed() >= timeout {
            spinner.finish("no transcript");
            return Err(anyhow::anyhow!(
                "no transcript at `{output}` after {} s",
                timeout.as_secs()
            ))
            .hint(hint);
        }
        tokio::time::sleep(poll).await;
    }
}
