//! step-021-validate-sqs-resources: checks the queues and the bucket against the settings.
//!
//! It compares what exists with what step-020 would make (both read
//! `step_020_create_sqs_resources::desired`): every queue attribute, the redrive target and
//! count, encryption, the public access block, the TLS-only policy, the lifecycle rules, the
//! bucket's region, and the URLs in `.env`. It ends with the same round trips as step-020: a
//! private temporary queue and one object under `tmp/`, so no real job is ever touched.
//! Any problem is reported with its fix and the step exits 1.

use std::collections::HashMap;

use common::sdk::sqs::types::QueueAttributeName;
use common::{Context, Mark, Report, Settings};
use step_020_create_sqs_resources::bucket::{self, Aspect};
use step_020_create_sqs_resources::{Clients, desired, queues, selftest};

/// The step's name.
pub const NAME: &str = "step-021-validate-sqs-resources";

/// The fix for every problem this step finds.
pub const FIX: &str = "run ./scripts/step-020-create-sqs-resources.sh";

/// Flags of step-021.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Skip the SQS and S3 round trips.
    #[arg(long)]
    pub no_round_trip: bool,
}

/// Runs the step.
pub async fn run(ctx: Context, args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    let clients = Clients::new(&settings, &ctx.env).await;
    run_with(&ctx, &args, &settings, &clients).await
}

fn problem(report: &mut Report, label: impl Into<String>, what: impl std::fmt::Display) {
    report.item(Mark::Problem, label, format!("{what}; fix: {FIX}"));
}

/// Runs the checks with the given clients.
pub async fn run_with(
    ctx: &Context,
    args: &Args,
    settings: &Settings,
    clients: &Clients,
) -> anyhow::Result<Report> {
    ctx.ui.header(ctx.step, "checking the queues and the bucket");
    let mut report = Report::new(ctx.step);

    let dlq =
        check_queue(clients, &settings.queue.dlq_name, &desired::dlq_attributes(), &mut report)
            .await?;
    // Without the DLQ the job queue is still checked, against the ARN the DLQ should have.
    let dlq_arn = match &dlq {
        Some((url, attributes)) => {
            let arn = attributes.get(&QueueAttributeName::QueueArn).cloned().unwrap_or_default();
            check_env(&mut report, "DLQ_URL", settings.queue.dlq_url.as_deref(), url);
            check_env(&mut report, "DLQ_ARN", settings.queue.dlq_arn.as_deref(), &arn);
            arn
        }
        None => expected_dlq_arn(settings),
    };
    let wanted = desired::job_attributes(settings, &dlq_arn);
    if let Some((url, attributes)) =
        check_queue(clients, &settings.queue.name, &wanted, &mut report).await?
    {
        let arn = attributes.get(&QueueAttributeName::QueueArn).cloned().unwrap_or_default();
        check_env(&mut report, "QUEUE_URL", settings.queue.url.as_deref(), &url);
        check_env(&mut report, "QUEUE_ARN", settings.queue.arn.as_deref(), &arn);
    }

    let bucket_ok = check_bucket(clients, settings, ctx.step, &mut report).await?;

    if args.no_round_trip {
        report.item(Mark::Skipped, "round trips", "--no-round-trip");
    } else {
        round_trips(clients, settings, ctx.step, dlq.is_some(), bucket_ok, &mut report).await;
    }

    let problems = report.count(Mark::Problem);
    report.summary = match problems {
        0 => format!("all {} checks passed", report.count(Mark::Passed)),
        1 => "1 problem".to_string(),
        n => format!("{n} problems"),
    };
    if problems > 0 {
        report.next.push("./scripts/step-020-create-sqs-resources.sh".to_string());
    }
    Ok(report)
}

/// Checks one queue's attributes; returns its URL and attributes when it exists.
async fn check_queue(
    clients: &Clients,
    name: &str,
    wanted: &[(QueueAttributeName, String)],
    report: &mut Report,
) -> anyhow::Result<Option<(String, HashMap<QueueAttributeName, String>)>> {
    let label = format!("queue `{name}`");
    let Some(url) = queues::find_queue(&clients.sqs, name).await? else {
        problem(report, label, "does not exist");
        return Ok(None);
    };
    let attributes = queues::attributes(&clients.sqs, &url).await?;
    for (attribute, value) in wanted {
        let current = attributes.get(attribute).map(String::as_str);
        if *attribute == QueueAttributeName::RedrivePolicy {
            check_redrive(report, &label, current, value);
        } else if desired::same_value(attribute, current, value) {
            report.item(Mark::Passed, label.clone(), format!("{} = {value}", attribute.as_str()));
        } else {
            let current = current.unwrap_or("(not set)");
            problem(
                report,
                label.clone(),
                format!("{} is {current}, settings say {value}", attribute.as_str()),
            );
        }
    }
    Ok(Some((url, attributes)))
}

fn check_redrive(report: &mut Report, label: &str, current: Option<&str>, wanted: &str) {
    let Some((want_target, want_count)) = desired::parse_redrive(wanted) else { return };
    let Some((target, count)) = current.and_then(desired::parse_redrive) else {
        problem(
            report,
            label,
            "has no redrive policy: failed jobs never reach the dead-letter queue",
        );
        return;
    };
    if target == want_target {
        report.item(Mark::Passed, label, format!("redrive target {target}"));
    } else {
        problem(report, label, format!("redrive target is {target}, not {want_target}"));
    }
    if count == want_count {
        report.item(Mark::Passed, label, format!("maxReceiveCount = {count}"));
    } else {
        problem(
            report,
            label,
            format!("maxReceiveCount is {count}, MAX_RECEIVE_COUNT says {want_count}"),
        );
    }
}

fn check_env(report: &mut Report, key: &str, in_env: Option<&str>, actual: &str) {
    match in_env {
        Some(value) if value == actual => {
            report.item(Mark::Passed, key, "matches the queue");
        }
        Some(value) => problem(report, key, format!("is {value}, but the queue is {actual}")),
        None => problem(report, key, "is not set in .env"),
    }
}

/// Checks the bucket's owner, region and every aspect; returns whether it is usable.
async fn check_bucket(
    clients: &Clients,
    settings: &Settings,
    step: &str,
    report: &mut Report,
) -> anyhow::Result<bool> {
    let name = &settings.bucket;
    let label = format!("bucket `{name}`");
    match bucket::locate(&clients.s3, settings).await {
        Ok(true) => {
            report.item(Mark::Passed, label, format!("exists in {}", settings.region));
        }
        Ok(false) => {
            problem(report, label, "does not exist");
            return Ok(false);
        }
        Err(e) => {
            report.item(
                Mark::Problem,
                label,
                common::cli::render_error(&e).trim_end().replace('\n', "; "),
            );
            return Ok(false);
        }
    }
    let tags = common::tags::standard(settings, step);
    for aspect in Aspect::ALL {
        if aspect == Aspect::TlsPolicy
            && let Some(reason) = desired::tls_policy_skipped(settings)
        {
            report.item(Mark::Skipped, aspect.label(), reason);
            continue;
        }
        let check = aspect.check(&clients.s3, name, &tags).await?;
        if check.ok {
            report.item(Mark::Passed, aspect.label(), check.current);
        } else {
            problem(report, aspect.label(), format!("{}, wanted: {}", check.current, check.wanted));
        }
    }
    Ok(true)
}

async fn round_trips(
    clients: &Clients,
    settings: &Settings,
    step: &str,
    queues_exist: bool,
    bucket_ok: bool,
    report: &mut Report,
) {
    let tags = common::tags::standard(settings, step);
    if queues_exist {
        match selftest::queue_round_trip(&clients.sqs, &settings.prefix(), &tags).await {
            Ok(detail) => report.item(Mark::Passed, "queue round trip", detail),
            Err(e) => report.item(Mark::Problem, "queue round trip", format!("{e:#}")),
        };
    }
    if bucket_ok {
        match selftest::bucket_round_trip(&clients.s3, &settings.bucket).await {
            Ok(detail) => report.item(Mark::Passed, "bucket round trip", detail),
            Err(e) => report.item(Mark::Problem, "bucket round trip", format!("{e:#}")),
        };
    }
}

/// The ARN the dead-letter queue would have, for checking the job queue's redrive target.
fn expected_dlq_arn(settings: &Settings) -> String {
    settings.queue.dlq_arn.clone().unwrap_or_else(|| {
        let account = settings.account_id.as_deref().unwrap_or("unknown-account");
        format!("arn:aws:sqs:{}:{account}:{}", settings.region, settings.queue.dlq_name)
    })
}
