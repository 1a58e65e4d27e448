//! Step 999: delete everything this deployment created.
//!
//! Resources are found by their tags and by the names in the settings and `.env`, so a
//! half-finished setup (missing tags, missing `.env` keys) is found too ([`inventory`]). The
//! step shows the list, asks (or `--yes`), and deletes in dependency order: workers and their
//! spot requests, local runners and containers (step-999-terminate-workers), launch
//! templates, the security group once the workers released it, the key pair, the ECR
//! repository with its images, the queues, the bucket with every object version and delete
//! marker, the IAM policy, instance profile and role, then the local registry and the worker
//! images built or tagged on this machine ([`images`]). It empties the `.env` keys that
//! named those resources and ends by listing every service again: anything of the
//! deployment that remains is a problem (exit 1). A second run finds nothing to delete.
//!
//! User data (audio under `input/`, transcripts under `output/`) is deleted only after an
//! explicit confirmation, or with `--include-data --yes`. Kept data keeps the bucket; every
//! other object in it is deleted.

pub mod ec2;
pub mod ecr;
pub mod iam;
pub mod images;
pub mod inventory;
pub mod local;
pub mod storage;

use std::time::Duration;

use common::iam_policy::Scope;
use common::{Context, Mark, Report, Settings};
use step_999_terminate_workers::confirm;

use crate::inventory::{Clients, Inventory, discover, verify};

/// The step's name.
pub const STEP: &str = "step-999-destroy-all-resources";

/// Flags of the step.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Also delete the audio (input/) and transcripts (output/); asks unless --yes is given.
    #[arg(long)]
    pub include_data: bool,
    /// Show what would be deleted and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Time allowed for the workers to terminate.
const WORKER_WAIT: Duration = Duration::from_secs(600);

/// Runs the step.
pub async fn run(mut ctx: Context, args: Args) -> anyhow::Result<Report> {
    ctx.ui.header(STEP, "deleting everything this deployment created");
    let settings = ctx.load_settings()?.settings;
    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let clients = Clients::new(&config, &settings);
    let account = match &settings.account_id {
        Some(account) => account.clone(),
        None => common::aws::caller_identity(&config).await?.0,
    };
    let scope = Scope::new(&settings, &account);
    let mut report = Report::new(STEP);

    let found = discover(&ctx, &settings, &clients, &scope).await?;
    local::report_unlisted_images(&ctx, &settings, &found.images, &mut report);
    let lines = found.lines();
    if lines.is_empty() {
        report.item(Mark::Info, "resources", "nothing of this deployment exists");
        if !args.dry_run {
            local::clear_env(&ctx, &settings, false, &mut report)?;
            verify(&ctx, &settings, &clients, &scope, None, &mut report).await?;
        }
        report.summary = "nothing to delete".to_string();
        return Ok(report);
    }
    if args.dry_run {
        for line in &lines {
            let verdict = if line.partial { "(dry run)" } else { ": would be deleted (dry run)" };
            report.item(Mark::Skipped, &line.label, format!("{}{verdict}", line.detail));
        }
        report.summary =
            format!("dry run: {} resource(s) would be deleted; nothing was changed", lines.len());
        return Ok(report);
    }
    for line in &lines {
        let verdict = if line.partial { "" } else { ": to be deleted" };
        ctx.ui.note(&format!("{} {} {}{verdict}", line.service, line.label, line.detail));
    }
    confirm(&mut ctx, "DESTROY_ALL", &format!("Delete these {} resource(s)?", lines.len()))?;
    let include_data = decide_data(&mut ctx, &found, args.include_data)?;

    let kept = destroy(&ctx, &settings, &clients, &found, include_data, &mut report).await?;
    local::report_kept_files(&ctx, &mut report);
    let key_deleted = !found.ec2.key_pairs.is_empty();
    local::clear_env(&ctx, &settings, key_deleted, &mut report)?;
    verify(&ctx, &settings, &clients, &scope, kept.as_deref(), &mut report).await?;

    let deleted = report.count(Mark::Deleted);
    report.summary = match &kept {
        Some(bucket) => {
            format!("deleted {deleted} item(s); kept bucket `{bucket}` with your data")
        }
        None => format!("deleted {deleted} item(s)"),
    };
    Ok(report)
}

/// Whether to delete the user's audio and transcripts: only with `--include-data --yes`, or
/// when the operator confirms it in a separate question.
fn decide_data(ctx: &mut Context, found: &Inventory, include_data: bool) -> anyhow::Result<bool> {
    let count = found.data_objects();
    if count == 0 {
        return Ok(true);
    }
    if ctx.assume_yes {
        return Ok(include_data);
    }
    let question = format!(
        "Also delete {count} audio file and transcript version(s) under input/ and output/? This cannot be undone."
    );
    ctx.prompter.confirm("DELETE_DATA", &question, false)
}

/// Deletes everything found, in dependency order; returns the bucket kept for its data.
async fn destroy(
    ctx: &Context,
    settings: &Settings,
    clients: &Clients,
    found: &Inventory,
    include_data: bool,
    report: &mut Report,
) -> anyhow::Result<Option<String>> {
    step_999_terminate_workers::execute(
        ctx,
        settings,
        &clients.ec2,
        &found.workers,
        WORKER_WAIT,
        report,
    )
    .await?;
    ec2::delete(&clients.ec2, &ctx.project.root, &found.ec2, &ctx.ui, report).await?;
    ecr::delete(&clients.ecr, &found.repositories, report).await?;
    storage::delete_queues(&clients.sqs, &found.queues, report).await?;
    let mut kept = None;
    for bucket in &found.buckets {
        if storage::empty_and_delete(&clients.s3, bucket, include_data, report).await? {
            kept = Some(bucket.name.clone());
        }
    }
    iam::delete(&clients.iam, &found.iam, report).await?;
    if let Some(registry) = &found.registry {
        local::delete_registry(registry, report)?;
    }
    images::delete(&ctx.env, &found.images, report).await;
    Ok(kept)
}
