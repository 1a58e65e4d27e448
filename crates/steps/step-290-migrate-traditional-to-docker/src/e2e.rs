//! The end-to-end check of the new Docker worker: the shipped sample goes through the shared
//! queue, and the transcript's `worker_id` says which worker served it.
//!
//! One queue feeds both paths, so a job cannot be addressed to one worker. The check is
//! therefore judged by the serving worker's id: a transcript from a Path A worker does not
//! count, and the check is sent again (see `--attempts` and `--stop-traditional`).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::job::{JobMessage, JobRecord, JobState, OutputFormat, S3Uri, Transcript};
use common::sdk::{s3, sqs};
use common::{Context, HintExt, RequireSetting, Settings};

/// The sample every check transcribes, in the project folder.
pub const SAMPLE: &str = "samples/hello-fleet.wav";

/// Sends the sample as one job and returns the transcript once a worker wrote it.
pub async fn transcribe_sample(
    ctx: &Context,
    settings: &Settings,
    config: &common::aws::SdkConfig,
    timeout: Duration,
) -> anyhow::Result<Transcript> {
    let queue_url = settings.queue.url.clone().require("QUEUE_URL")?;
    let s3 = common::aws::s3_client(config, settings);
    let audio = std::fs::read(ctx.project.root.join(SAMPLE))
        .with_context(|| format!("failed to read `{SAMPLE}`"))?;
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let job = JobMessage::new(
        format!("migrate-{run_id}"),
        S3Uri::new(&settings.bucket, format!("input/e2e/{run_id}/hello-fleet.wav")),
        S3Uri::new(&settings.bucket, format!("output/e2e/{run_id}/")),
    );
    put(&s3, &job.s3_input_path, audio).await?;
    let record = JobRecord::new(&job, JobState::Queued, None);
    let record_key = S3Uri::new(&settings.bucket, common::job::job_record_key(&job.job_id));
    put(&s3, &record_key, serde_json::to_vec_pretty(&record)?).await?;
    sqs::Client::new(config)
        .send_message()
        .queue_url(&queue_url)
        .message_body(job.to_body())
        .send()
        .await
        .aws_context(|| format!("failed to send job `{}`", job.job_id))?;
    wait_for_transcript(ctx, &s3, settings, &job, timeout).await
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
            .hint("run ./scripts/step-225-check-docker-health.sh to see the Docker worker");
        }
        tokio::time::sleep(poll).await;
    }
}
