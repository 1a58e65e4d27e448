//! The job CLI: `transcribe submit|status|fetch|queue|redrive|workers`.
//!
//! Jobs are the shared [`common::job::JobMessage`]. `submit` uploads local audio to
//! `input/<job id>/<file name>` (the name kept literally, case C08), writes a job record at
//! `status/jobs/<job id>.json` and sends one message per file; the worker updates the record
//! as the job runs and writes the outputs under `output/<job id>/` unless `--output` says
//! otherwise. Every command prints a report on stdout, as JSON with `--json`.

mod jobs;
mod queue;
mod submit;
mod workers;

use common::aws::{ClientOptions, SdkConfig};
use common::sdk::{s3, sqs};
use common::{Context, Report, RequireSetting, Settings};

pub use jobs::{FetchArgs, StatusArgs};
pub use queue::RedriveArgs;
pub use submit::SubmitArgs;

/// Time allowed for one attempt of an S3 call, long enough to upload a long recording.
const TRANSFER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1800);

/// The subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Upload audio files (or folders, or s3:// addresses) and send one job per file.
    Submit(SubmitArgs),
    /// Show where jobs are.
    Status(StatusArgs),
    /// Download a job's outputs.
    Fetch(FetchArgs),
    /// Jobs waiting, in flight, and in the dead-letter queue.
    Queue,
    /// Move messages from the dead-letter queue back to the job queue.
    Redrive(RedriveArgs),
    /// The workers' status objects.
    Workers,
}

impl Command {
    /// The name used in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Submit(_) => "transcribe submit",
            Self::Status(_) => "transcribe status",
            Self::Fetch(_) => "transcribe fetch",
            Self::Queue => "transcribe queue",
            Self::Redrive(_) => "transcribe redrive",
            Self::Workers => "transcribe workers",
        }
    }
}

/// What every command works with.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The settings.
    pub settings: Settings,
    /// S3 client.
    pub s3: s3::Client,
    /// SQS client.
    pub sqs: sqs::Client,
}

impl Fleet {
    /// Clients for `settings`: SQS with `config`, S3 with `transfer_config` (longer attempts).
    pub fn new(settings: Settings, config: &SdkConfig, transfer_config: &SdkConfig) -> Self {
        Self {
            s3: common::aws::s3_client(transfer_config, &settings),
            sqs: sqs::Client::new(config),
            settings,
        }
    }

    /// The job queue URL, or an error naming the step that writes it.
    pub fn queue_url(&self) -> anyhow::Result<&str> {
        self.settings.queue.url.as_deref().require("QUEUE_URL")
    }

    /// The dead-letter queue URL, or an error naming the step that writes it.
    pub fn dlq_url(&self) -> anyhow::Result<&str> {
        self.settings.queue.dlq_url.as_deref().require("DLQ_URL")
    }
}

/// Runs `command`.
pub async fn run(ctx: Context, command: Command) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &ClientOptions::default()).await;
    // Uploads and downloads of long recordings need more than the default 30 s per attempt.
    let transfers = ClientOptions { attempt_timeout: TRANSFER_TIMEOUT, ..ClientOptions::default() };
    let transfer_config = common::aws::sdk_config(&settings, &ctx.env, &transfers).await;
    let fleet = Fleet::new(settings, &config, &transfer_config);
    let mut report = Report::new(command.name());
    match command {
        Command::Submit(args) => submit::run(&ctx, &fleet, args, &mut report).await?,
        Command::Status(args) => jobs::status(&fleet, args, &mut report).await?,
        Command::Fetch(args) => jobs::fetch(&fleet, args, &mut report).await?,
        Command::Queue => queue::show(&fleet, &mut report).await?,
        Command::Redrive(args) => queue::redrive(&fleet, args, &mut report).await?,
        Command::Workers => workers::list(&fleet, &mut report).await?,
    }
    Ok(report)
}
