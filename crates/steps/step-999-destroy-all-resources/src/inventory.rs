//! Everything of the deployment that exists, service by service, and the final check that
//! nothing of it remains.

use common::iam_policy::Scope;
use common::registry::LocalRegistry;
use common::sdk::{ecr as ecr_sdk, iam as iam_sdk, s3, sqs};
use common::{Context, Mark, Report, Settings};
use step_999_terminate_workers::{PathFilter, Plan};

use crate::{ec2, ecr, iam, images, storage};

/// The services the final check lists, in report order.
pub const SERVICES: &[&str] = &["EC2", "ECR", "SQS", "S3", "IAM", "local"];

/// The AWS clients of the step.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: fleet::ec2::Client,
    /// S3 (path-style against an emulator).
    pub s3: s3::Client,
    /// SQS.
    pub sqs: sqs::Client,
    /// IAM.
    pub iam: iam_sdk::Client,
    /// ECR.
    pub ecr: ecr_sdk::Client,
}

impl Clients {
    /// Clients for `settings` from one SDK configuration.
    pub fn new(config: &common::aws::SdkConfig, settings: &Settings) -> Self {
        Self {
            ec2: fleet::ec2::Client::new(config),
            s3: common::aws::s3_client(config, settings),
            sqs: sqs::Client::new(config),
            iam: iam_sdk::Client::new(config),
            ecr: ecr_sdk::Client::new(config),
        }
    }
}

/// What exists of the deployment.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Workers, spot requests, local runners and containers.
    pub workers: Plan,
    /// Launch templates, security groups, key pairs.
    pub ec2: ec2::Found,
    /// ECR repositories.
    pub repositories: Vec<ecr::Repository>,
    /// Queues.
    pub queues: Vec<storage::Queue>,
    /// Buckets.
    pub buckets: Vec<storage::Bucket>,
    /// Role, instance profile, policy.
    pub iam: iam::Found,
    /// The local registry, when its folder exists (local mode).
    pub registry: Option<LocalRegistry>,
    /// Worker images built or tagged on this machine.
    pub images: images::Found,
}

/// One thing that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Its service, one of [`SERVICES`].
    pub service: &'static str,
    /// What it is.
    pub label: String,
    /// Which one.
    pub detail: String,
    /// Whether part of it may be kept (a bucket holding audio and transcripts); `detail`
    /// then says what happens to which part.
    pub partial: bool,
}

impl Inventory {
    /// One line per resource, in deletion order.
    pub fn lines(&self) -> Vec<Line> {
        let mut lines = Vec::new();
        let mut add = |partial: bool, service: &'static str, label: &str, detail: String| {
            lines.push(Line { service, label: label.to_string(), detail, partial });
        };
        for (label, detail, _) in self.workers.lines() {
            let service = if matches!(label, "worker" | "spot request") { "EC2" } else { "local" };
            add(false, service, label, detail);
        }
        self.ec2
            .templates
            .iter()
            .for_each(|t| add(false, "EC2", "launch template", format!("{} ({})", t.name, t.id)));
        self.ec2
            .groups
            .iter()
            .for_each(|g| add(false, "EC2", "security group", format!("{} ({})", g.name, g.id)));
        self.ec2.key_pairs.iter().for_each(|k| add(false, "EC2", "key pair", k.name.clone()));
        for r in &self.repositories {
            add(false, "ECR", "repository", format!("{} ({} image(s))", r.name, r.images));
        }
        self.queues.iter().for_each(|q| add(false, "SQS", "queue", q.name.clone()));
        for b in &self.buckets {
            if b.data == 0 {
                add(false, "S3", "bucket", format!("{} ({} object version(s))", b.name, b.other));
                continue;
            }
            let detail = format!(
                "{} ({} object version(s) outside input/ and output/ to be deleted; {} audio \
                 and transcript version(s), and so the bucket, kept unless you confirm their \
                 deletion or pass --include-data)",
                b.name, b.other, b.data
            );
            add(true, "S3", "bucket", detail);
        }
        for (label, detail) in self.iam.lines() {
            add(false, "IAM", label, detail);
        }
        if let Some(registry) = &self.registry {
            add(false, "local", "local registry", registry.dir.display().to_string());
        }
        for reference in &self.images.references {
            add(false, "local", "local image", reference.clone());
        }
        lines
    }

    /// Audio and transcript versions across the buckets.
    pub fn data_objects(&self) -> usize {
        self.buckets.iter().map(|b| b.data).sum()
    }
}

/// Lists every service for what belongs to the deployment, by tags and by the settings' names.
pub async fn discover(
    ctx: &Context,
    settings: &Settings,
    clients: &Clients,
    scope: &Scope,
) -> anyhow::Result<Inventory> {
    let workers =
        step_999_terminate_workers::find(ctx, settings, &clients.ec2, PathFilter::All, &[]).await?;
    let registry = if settings.is_local() {
        let registry = LocalRegistry::for_project(&ctx.project, &ctx.env)?;
        (registry.pid_file().exists() || registry.dir.join("data").exists()).then_some(registry)
    } else {
        None
    };
    Ok(Inventory {
        workers,
        ec2: ec2::find(&clients.ec2, settings).await?,
        repositories: ecr::find(&clients.ecr, settings).await?,
        queues: storage::find_queues(&clients.sqs, settings).await?,
        buckets: storage::find_buckets(&clients.s3, settings).await?,
        iam: iam::find(&clients.iam, scope).await?,
        registry,
        images: images::find(ctx, settings).await?,
    })
}

/// Lists every service again: what remains is a problem, except the bucket kept for its data.
pub async fn verify(
    ctx: &Context,
    settings: &Settings,
    clients: &Clients,
    scope: &Scope,
    kept_bucket: Option<&str>,
    report: &mut Report,
) -> anyhow::Result<()> {
    let remaining = discover(ctx, settings, clients, scope).await?;
    let lines = remaining.lines();
    // Outside local mode only worker images can remain locally; check them when listed.
    let none_local = lines.iter().all(|l| l.service != "local");
    for service in SERVICES {
        if *service == "local" && !settings.is_local() && none_local {
            continue;
        }
        let left: Vec<&Line> = lines
            .iter()
            .filter(|l| l.service == *service)
            .filter(|l| {
                !(l.label == "bucket"
                    && kept_bucket.is_some_and(|k| l.detail.starts_with(&format!("{k} "))))
            })
            .collect();
        if left.is_empty() {
            let kept = if *service == "S3" {
                kept_bucket.map(|b| format!("; `{b}` kept for its data"))
            } else {
                None
            };
            let detail = format!("nothing of this deployment remains{}", kept.unwrap_or_default());
            report.item(Mark::Passed, format!("check {service}"), detail);
        }
        for line in left {
            report.item(
                Mark::Problem,
                format!("check {service}"),
                format!("{} remains: {}", line.label, line.detail),
            );
        }
    }
    Ok(())
}
