//! `transcribe status` and `transcribe fetch`: job records and outputs.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::job::{JobRecord, JobState, S3Uri, job_record_key};
use common::{Mark, Report};
use tokio::io::AsyncWriteExt;

use crate::Fleet;

/// Flags of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Job ids.
    #[arg(required = true)]
    pub jobs: Vec<String>,
}

/// Flags of `fetch`.
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
    /// Job id.
    pub job: String,
    /// Folder to save the outputs in (default: ./transcripts/<job id>).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Writes a job record.
pub async fn put_record(fleet: &Fleet, record: &JobRecord) -> anyhow::Result<()> {
    let key = job_record_key(&record.job.job_id);
    fleet
        .s3
        .put_object()
        .bucket(&fleet.settings.bucket)
        .key(&key)
        .content_type("application/json")
        .body(serde_json::to_vec_pretty(record)?.into())
        .send()
        .await
        .aws_context(|| format!("failed to write the job record `{key}`"))?;
    Ok(())
}

/// Reads a job record; `None` when there is none.
pub async fn read_record(fleet: &Fleet, job_id: &str) -> anyhow::Result<Option<JobRecord>> {
    let key = job_record_key(job_id);
    let result = fleet.s3.get_object().bucket(&fleet.settings.bucket).key(&key).send().await;
    let out = match result {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
        Err(e) => return Err(e).aws_context(|| format!("failed to read the job record `{key}`")),
    };
    let bytes =
        out.body.collect().await.with_context(|| format!("failed to read `{key}`"))?.into_bytes();
    let record =
        serde_json::from_slice(&bytes).with_context(|| format!("`{key}` is not a job record"))?;
    Ok(Some(record))
}

/// Reports each job's state.
pub async fn status(fleet: &Fleet, args: StatusArgs, report: &mut Report) -> anyhow::Result<()> {
    let mut records = Vec::new();
    for job_id in &args.jobs {
        match read_record(fleet, job_id).await? {
            Some(record) => {
                let (mark, detail) = describe(&record);
                report.item(mark, job_id.clone(), detail);
                records.push(serde_json::to_value(&record)?);
            }
            None => {
                report.item(Mark::Problem, job_id.clone(), "no such job (no record in the bucket)");
            }
        }
    }
    report.summary = format!("{} job(s)", records.len());
    report.data = serde_json::json!({ "jobs": records });
    Ok(())
}

fn describe(record: &JobRecord) -> (Mark, String) {
    let worker = record.worker_id.as_deref().map(|w| format!(" on {w}")).unwrap_or_default();
    let when = record.updated_at.format("%Y-%m-%d %H:%M:%S UTC");
    match record.state {
        JobState::Done => {
            (Mark::Passed, format!("done{worker} at {when}: {}", record.job.s3_output_path))
        }
        JobState::Failed => (
            Mark::Problem,
            format!("failed{worker}: {}", record.error.as_deref().unwrap_or("no reason recorded")),
        ),
        JobState::Running => (Mark::Info, format!("running{worker} since {when}")),
        JobState::Queued => match &record.error {
            Some(error) => (Mark::Info, format!("queued again after: {error}")),
            None => (Mark::Info, format!("queued at {when}")),
        },
    }
}

/// Downloads a finished job's outputs.
pub async fn fetch(fleet: &Fleet, args: FetchArgs, report: &mut Report) -> anyhow::Result<()> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from("transcripts").join(&args.job));
    fetch_job(fleet, &args.job, &dir, report).await
}

/// Downloads the outputs of `job_id` into `dir`, one report line per file.
pub async fn fetch_job(
    fleet: &Fleet,
    job_id: &str,
    dir: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(record) = read_record(fleet, job_id).await? else {
        report.item(Mark::Problem, job_id, "no such job (no record in the bucket)");
        return Ok(());
    };
    if record.state != JobState::Done {
        let (_, detail) = describe(&record);
        report.item(Mark::Problem, job_id, format!("not done: {detail}"));
        return Ok(());
    }
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let mut saved = Vec::new();
    for output in &record.outputs {
        let uri = S3Uri::parse(output).map_err(anyhow::Error::msg)?;
        let path = dir.join(uri.file_name());
        download(fleet, &uri, &path).await?;
        report.item(Mark::Created, "output", path.display().to_string());
        saved.push(path.display().to_string());
    }
    report.summary = format!("{} file(s) saved in {}", saved.len(), dir.display());
    report.data = serde_json::json!({ "job_id": job_id, "files": saved, "record": record });
    Ok(())
}

async fn download(fleet: &Fleet, uri: &S3Uri, path: &Path) -> anyhow::Result<()> {
    let out = fleet
        .s3
        .get_object()
        .bucket(&uri.bucket)
        .key(&uri.key)
        .send()
        .await
        .aws_context(|| format!("failed to download `{uri}`"))?;
    let mut file = tokio::fs::File::create(path)
        .await
        .with_context(|| format!("failed to create `{}`", path.display()))?;
    let mut body = out.body;
    while let Some(chunk) = body.next().await {
        file.write_all(&chunk.with_context(|| format!("download of `{uri}` broke off"))?).await?;
    }
    file.flush().await?;
    Ok(())
}
