//! step-200-setup-docker-prerequisites: what Path B needs before an image can be built.
//!
//! 1. The Docker engine must answer, at version 20.10 or later; otherwise the step stops
//!    before creating anything, with the fix (install, start, or socket permission).
//! 2. The ECR repository is created or repaired: immutable tags, scan on push, AES256
//!    encryption, a lifecycle policy keeping the last images, the standard tags
//!    ([`common::ecr`]). Its URI goes into `.env` as `ECR_REPOSITORY_URI`.
//! 3. Local mode: the local registry that stands in for ECR's registry endpoint is started
//!    on 127.0.0.1 ([`common::registry`]); the emulator's ECR gives URIs nothing can push to.
//! 4. The EC2 settings of step-100 (AMI, subnets, security group) are reported; when Path A
//!    was never set up the step says to run step-100, which Path B's launch step needs too.

use common::docker::{self, Docker};
use common::registry::{LocalRegistry, Started};
use common::sdk::ecr;
use common::{Context, Mark, Report, Settings};

/// The step's name.
pub const NAME: &str = "step-200-setup-docker-prerequisites";

/// Flags of step-200 (none besides the global ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {}

/// Runs the step.
pub async fn run(ctx: Context, _args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    ctx.ui.header(ctx.step, "ECR repository and Docker engine");
    let mut report = Report::new(ctx.step);

    let version = Docker::from_env(&ctx.env).server_version().await?;
    docker::report_engine(&version, &mut report);

    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let client = ecr::Client::new(&config);
    let tags = common::tags::standard(&settings, ctx.step);
    let spinner = ctx.ui.spinner(&format!("setting up repository `{}`", settings.ecr_repository));
    let repo = common::ecr::ensure_repository(&client, &settings, &tags, &mut report).await?;
    spinner.finish(&format!("repository `{}` ready", settings.ecr_repository));
    write_back(&ctx, &settings, &repo.uri, &mut report)?;

    let registry = if settings.is_local() {
        Some(start_local_registry(&ctx, &settings, &mut report).await?)
    } else {
        None
    };
    ec2_items(&settings, &mut report);

    report.summary = report.change_summary();
    report.next.push("./scripts/step-201-validate-docker-setup.sh".to_string());
    report.data = serde_json::json!({
        "repository_uri": repo.uri,
        "engine_version": version,
        "local_registry": registry,
    });
    Ok(report)
}

fn write_back(
    ctx: &Context,
    settings: &Settings,
    uri: &str,
    report: &mut Report,
) -> anyhow::Result<()> {
    if settings.ecr_repository_uri.as_deref() == Some(uri) {
        return Ok(());
    }
    let path = &ctx.project.env_file;
    common::dotenv::update(path, &[("ECR_REPOSITORY_URI", uri)]).map_err(|e| {
        anyhow::Error::new(e).context(format!("failed to write `{}`", path.display()))
    })?;
    report.item(Mark::Updated, ".env", "wrote ECR_REPOSITORY_URI");
    Ok(())
}

async fn start_local_registry(
    ctx: &Context,
    settings: &Settings,
    report: &mut Report,
) -> anyhow::Result<String> {
    let registry = LocalRegistry::for_project(&ctx.project, &ctx.env)?;
    let address = registry.address();
    match registry.ensure_running().await? {
        Started::AlreadyRunning => report.item(Mark::Unchanged, "local registry", &address),
        Started::Now(pid) => report.item(
            Mark::Created,
            "local registry",
            format!("{address} (pid {pid}, log {})", registry.log_file().display()),
        ),
    };
    let image = format!("{address}/{}", settings.ecr_repository);
    report.item(Mark::Info, "local image name", format!("{image} stands in for the ECR URI"));
    Ok(address)
}

fn ec2_items(settings: &Settings, report: &mut Report) {
    let ec2 = &settings.ec2;
    let missing: Vec<&str> = [
        ("AMI_ID", ec2.ami_id.is_none()),
        ("SUBNET_IDS", ec2.subnet_ids.is_empty()),
        ("SECURITY_GROUP_ID", ec2.security_group_id.is_none()),
    ]
    .iter()
    .filter(|(_, missing)| *missing)
    .map(|(key, _)| *key)
    .collect();
    if missing.is_empty() {
        report.item(Mark::Passed, "EC2 settings", "AMI, subnets and security group are set");
    } else if !settings.is_local() {
        let detail = format!(
            "{} not set; run ./scripts/step-100-setup-ec2-configuration.sh",
            missing.join(", ")
        );
        report.item(Mark::Info, "EC2 settings", detail);
    }
}
