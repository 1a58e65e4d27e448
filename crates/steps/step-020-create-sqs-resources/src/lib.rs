//! step-020-create-sqs-resources: the job queue, its dead-letter queue and the bucket.
//!
//! The bucket is looked up first: a bucket that belongs to another account or lives in
//! another region stops the step before anything is created. Then the dead-letter queue and
//! the job queue are created or reconciled attribute by attribute, the bucket is created or
//! reconciled aspect by aspect, the queue URLs and ARNs are written back into `.env`, and two
//! self-tests run that never touch a real job (see [`selftest`]).

pub mod bucket;
pub mod desired;
pub mod errors;
pub mod queues;
pub mod selftest;

use common::sdk::{s3, sqs};
use common::{Context, Mark, Report, Settings};

/// The step's name.
pub const NAME: &str = "step-020-create-sqs-resources";

/// Flags of step-020.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Skip the SQS and S3 round trips at the end.
    #[arg(long)]
    pub no_self_test: bool,
}

/// The AWS clients the step uses; tests build them against an emulator or with mocks.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS.
    pub sqs: sqs::Client,
    /// S3 (path-style against an emulator).
    pub s3: s3::Client,
}

impl Clients {
    /// Clients for `settings`, built the way every step builds them.
    pub async fn new(settings: &Settings, env: &common::settings::Env) -> Self {
        let config = common::aws::sdk_config(settings, env, &Default::default()).await;
        Self { sqs: sqs::Client::new(&config), s3: common::aws::s3_client(&config, settings) }
    }
}

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    let clients = Clients::new(&settings, &ctx.env).await;
    run_with(&ctx, &args, &settings, &clients).await
}

/// Runs the step with the given clients.
pub async fn run_with(
    ctx: &Context,
    args: &Args,
    settings: &Settings,
    clients: &Clients,
) -> anyhow::Result<Report> {
    ctx.ui.header(ctx.step, "job queue, dead-letter queue and bucket");
    let mut report = Report::new(ctx.step);
    let tags = common::tags::standard(settings, ctx.step);

    // Before creating anything: a bucket of someone else or in another region stops the step.
    let bucket_exists = bucket::locate(&clients.s3, settings).await?;

    let dlq = queues::ensure_queue(
        &clients.sqs,
        &settings.queue.dlq_name,
        &desired::dlq_attributes(),
        &tags,
        &mut report,
    )
    .await?;
    let job_attributes = desired::job_attributes(settings, &dlq.arn);
    let jobs = queues::ensure_queue(
        &clients.sqs,
        &settings.queue.name,
        &job_attributes,
        &tags,
        &mut report,
    )
    .await?;

    bucket::ensure_bucket(&clients.s3, settings, bucket_exists, &tags, &mut report).await?;
    let layout: Vec<&str> = desired::PREFIXES.iter().map(|(p, _)| *p).collect();
    report.item(Mark::Info, "prefixes", layout.join(" "));

    write_back(ctx, settings, &jobs, &dlq, &mut report)?;

    if args.no_self_test {
        report.item(Mark::Skipped, "self-test", "--no-self-test");
    } else {
        let spinner = ctx.ui.spinner("running the SQS and S3 round trips");
        let queue = selftest::queue_round_trip(&clients.sqs, &settings.prefix(), &tags).await?;
        report.item(Mark::Passed, "queue self-test", queue);
        let objects = selftest::bucket_round_trip(&clients.s3, &settings.bucket).await?;
        report.item(Mark::Passed, "bucket self-test", objects);
        spinner.finish("round trips passed");
    }

    report.summary = report.change_summary();
    report.next.push("./scripts/step-021-validate-sqs-resources.sh".to_string());
    report.data = serde_json::json!({
        "queue_url": jobs.url, "queue_arn": jobs.arn,
        "dlq_url": dlq.url, "dlq_arn": dlq.arn,
        "bucket": settings.bucket,
    });
    Ok(report)
}

/// Writes the queue URLs and ARNs into `.env` when they differ from what it holds.
fn write_back(
    ctx: &Context,
    settings: &Settings,
    jobs: &queues::Queue,
    dlq: &queues::Queue,
    report: &mut Report,
) -> anyhow::Result<()> {
    let queue = &settings.queue;
    let pairs = [
        ("QUEUE_URL", &queue.url, &jobs.url),
        ("QUEUE_ARN", &queue.arn, &jobs.arn),
        ("DLQ_URL", &queue.dlq_url, &dlq.url),
        ("DLQ_ARN", &queue.dlq_arn, &dlq.arn),
    ];
    let changed: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|(_, old, new)| old.as_deref() != Some(new.as_str()))
        .map(|(key, _, new)| (*key, new.as_str()))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    let path = &ctx.project.env_file;
    common::dotenv::update(path, &changed).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to write `{}`", path.display()))
    })?;
    let keys: Vec<&str> = changed.iter().map(|(k, _)| *k).collect();
    report.item(Mark::Updated, ".env", format!("wrote {}", keys.join(", ")));
    Ok(())
}
