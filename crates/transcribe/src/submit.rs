//! `transcribe submit`: upload, record, send; with `--wait`, follow and download.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use common::aws::SdkResultExt;
use common::cli::UsageError;
use common::job::{self, JobMessage, JobRecord, JobState, OutputFormat, S3Uri};
use common::sdk::s3::primitives::ByteStream;
use common::{Context, Mark, Report};

use crate::Fleet;
use crate::jobs;

/// File extensions taken from a folder.
const AUDIO_EXTENSIONS: &[&str] =
    &["wav", "mp3", "m4a", "mp4", "aac", "webm", "ogg", "opus", "flac", "wma", "mkv", "mov", "amr"];

/// Flags of `submit`.
#[derive(Debug, Clone, clap::Args)]
pub struct SubmitArgs {
    /// Audio files, folders of audio, or s3:// addresses of audio already uploaded.
    #[arg(required = true, value_name = "FILE|DIR|s3://...")]
    pub inputs: Vec<String>,
    /// Output prefix (default: s3://<bucket>/output/<job id>/).
    #[arg(long, value_name = "s3://...")]
    pub output: Option<String>,
    /// Language code, e.g. en (default: the workers' setting).
    #[arg(long)]
    pub language: Option<String>,
    /// Formats to write, comma-separated (json is always written).
    #[arg(long, value_delimiter = ',', default_value = "json,srt,vtt,txt")]
    pub formats: Vec<String>,
    /// Label speakers (needs a Hugging Face token on the workers).
    #[arg(long)]
    pub diarize: bool,
    /// Wait until the outputs exist, then download them.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub timeout: u64,
    /// Where `--wait` saves outputs (default: ./transcripts).
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,
}

/// Submits every input; see [`SubmitArgs`].
pub async fn run(
    ctx: &Context,
    fleet: &Fleet,
    args: SubmitArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let queue_url = fleet.queue_url()?.to_string();
    let formats = parse_formats(&args.formats)?;
    let inputs = expand(&args.inputs)?;
    let mut submitted = Vec::new();
    for input in inputs {
        let job_id = new_job_id();
        let source = match &input {
            Input::Local(path) => upload(fleet, &job_id, path).await?,
            Input::Remote(uri) => uri.clone(),
        };
        let output = match &args.output {
            Some(prefix) => {
                S3Uri::parse(prefix).map_err(|e| UsageError(format!("--output: {e}")))?
            }
            None => S3Uri::new(&fleet.settings.bucket, format!("{}{job_id}/", job::OUTPUT_PREFIX)),
        };
        let mut message = JobMessage::new(&job_id, source, output);
        message.language = args.language.clone();
        message.output_formats = formats.clone();
        message.diarize = args.diarize;
        jobs::put_record(fleet, &JobRecord::new(&message, JobState::Queued, None)).await?;
        fleet
            .sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(message.to_body())
            .send()
            .await
            .aws_context(|| format!("failed to send job `{job_id}` to `{queue_url}`"))?;
        report.item(Mark::Created, "job", format!("{job_id}  {}", message.s3_input_path));
        submitted.push(message);
    }
    report.summary = format!("{} job(s) submitted", submitted.len());
    report.data = serde_json::json!({ "jobs": submitted });
    if args.wait {
        let dir = args.download_dir.clone().unwrap_or_else(|| PathBuf::from("transcripts"));
        wait_and_download(ctx, fleet, &submitted, Duration::from_secs(args.timeout), &dir, report)
            .await?;
    } else {
        report
            .next
            .push("./scripts/transcribe.sh status <job id>   (or submit with --wait)".to_string());
    }
    Ok(())
}

enum Input {
    Local(PathBuf),
    Remote(S3Uri),
}

fn expand(inputs: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.starts_with("s3://") {
            let uri = S3Uri::parse(input).map_err(|e| UsageError(format!("`{input}`: {e}")))?;
            out.push(Input::Remote(uri));
            continue;
        }
        let path = PathBuf::from(input);
        if path.is_dir() {
            let mut files = audio_files(&path)?;
            if files.is_empty() {
                return Err(UsageError(format!("no audio files in `{input}`")).into());
            }
            files.sort();
            for file in files {
                out.push(Input::Local(non_empty(file)?));
            }
        } else if path.is_file() {
            out.push(Input::Local(non_empty(path)?));
        } else {
            return Err(UsageError(format!(
                "`{input}` is not a file, a folder or an s3:// address"
            ))
            .into());
        }
    }
    Ok(out)
}

/// `path`, unless it is empty: a job for a 0-byte file can only fail on the worker.
fn non_empty(path: PathBuf) -> anyhow::Result<PathBuf> {
    let metadata =
        std::fs::metadata(&path).with_context(|| format!("failed to read `{}`", path.display()))?;
    if metadata.len() == 0 {
        return Err(UsageError(format!(
            "`{}` is empty (0 bytes); nothing was uploaded or queued",
            path.display()
        ))
        .into());
    }
    Ok(path)
}

fn audio_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read `{}`", dir.display()))?
    {
        let path = entry?.path();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if path.is_file() && extension.is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.as_str())) {
            files.push(path);
        }
    }
    Ok(files)
}

fn parse_formats(names: &[String]) -> anyhow::Result<Vec<OutputFormat>> {
    names
        .iter()
        .map(|name| {
            OutputFormat::ALL
                .into_iter()
                .find(|f| f.extension() == name.trim().to_ascii_lowercase())
                .ok_or_else(|| {
                    UsageError(format!("unknown format `{name}`; use json, srt, vtt, txt")).into()
                })
        })
        .collect()
}

/// `job-20250101-120000-1a2b3c`: sortable by time, unique.
fn new_job_id() -> String {
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("job-{stamp}-{}", &suffix[..6])
}

/// Uploads `path` to `input/<job id>/<file name>`, the name kept literally (C08).
async fn upload(fleet: &Fleet, job_id: &str, path: &Path) -> anyhow::Result<S3Uri> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` has no file name that is valid UTF-8", path.display()))?;
    let target =
        S3Uri::new(&fleet.settings.bucket, format!("{}{job_id}/{name}", job::INPUT_PREFIX));
    let body = ByteStream::from_path(path)
        .await
        .with_context(|| format!("failed to read `{}`", path.display()))?;
    fleet
        .s3
        .put_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .body(body)
        .send()
        .await
        .aws_context(|| format!("failed to upload `{}` to `{target}`", path.display()))?;
    Ok(target)
}

async fn wait_and_download(
    ctx: &Context,
    fleet: &Fleet,
    submitted: &[JobMessage],
    limit: Duration,
    dir: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let spinner = ctx.ui.spinner(&format!("waiting for {} job(s)", submitted.len()));
    let started = Instant::now();
    let mut pending: Vec<&JobMessage> = submitted.iter().collect();
    let mut finished = Vec::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for job in pending {
            match jobs::read_record(fleet, &job.job_id).await?.map(|r| r.state) {
                Some(JobState::Done | JobState::Failed) => finished.push(job),
                _ => still.push(job),
            }
        }
        pending = still;
        spinner.set_message(&format!("{} of {} job(s) finished", finished.len(), submitted.len()));
        if pending.is_empty() {
            break;
        }
        if started.elapsed() > limit {
            spinner.finish("stopped waiting");
            anyhow::bail!("{} job(s) not finished after {} s", pending.len(), limit.as_secs());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    spinner.finish(&format!("{} job(s) finished", finished.len()));
    for job in finished {
        jobs::fetch_job(fleet, &job.job_id, &dir.join(&job.job_id), report).await?;
    }
    Ok(())
}
