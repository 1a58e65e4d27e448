//! step-201-validate-docker-setup: checks Path B's prerequisites without changing anything.
//!
//! - the ECR repository: exists, matches `ECR_REPOSITORY_URI`, immutable tags, scan on push,
//!   encryption, lifecycle policy, standard tags ([`common::ecr::check_repository`]);
//! - a registry login works: against AWS a fresh GetAuthorizationToken that has not expired
//!   and that `docker login` accepts; in local mode the local registry answers (the
//!   emulator's token is expired by design and its registry endpoint does not exist);
//! - the Docker engine answers at version 20.10 or later.
//!
//! Every check is one report line; any problem makes the step exit 1.

use common::docker::{self, Docker};
use common::registry::LocalRegistry;
use common::sdk::ecr;
use common::{Context, Mark, Report, Settings};

/// The step's name.
pub const NAME: &str = "step-201-validate-docker-setup";

/// Flags of step-201 (none besides the global ones).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {}

/// Runs the step.
pub async fn run(ctx: Context, _args: Args) -> anyhow::Result<Report> {
    let settings = ctx.load_settings()?.settings;
    ctx.ui.header(ctx.step, "ECR repository, registry login and Docker engine");
    let mut report = Report::new(ctx.step);
    let docker = Docker::from_env(&ctx.env);

    let engine = match docker.server_version().await {
        Ok(version) => {
            docker::report_engine(&version, &mut report);
            true
        }
        Err(e) => {
            report.item(Mark::Problem, "Docker engine", common::cli::render_error(&e).trim_end());
            false
        }
    };

    let config = common::aws::sdk_config(&settings, &ctx.env, &Default::default()).await;
    let client = ecr::Client::new(&config);
    common::ecr::check_repository(&client, &settings, &mut report).await?;

    if settings.is_local() {
        check_local_registry(&ctx, &settings, &mut report).await?;
    } else {
        check_ecr_login(&client, &docker, engine, &mut report).await;
    }

    let problems = report.count(Mark::Problem);
    report.summary = match problems {
        0 => "ready to build and push the worker image".to_string(),
        n => format!("{n} problem{} found", if n == 1 { "" } else { "s" }),
    };
    if problems == 0 {
        report.next.push("./scripts/step-210-build-worker-image.sh".to_string());
    }
    Ok(report)
}

async fn check_local_registry(
    ctx: &Context,
    settings: &Settings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let registry = LocalRegistry::for_project(&ctx.project, &ctx.env)?;
    if registry.answers().await {
        let image = format!("{}/{}", registry.address(), settings.ecr_repository);
        report.item(Mark::Passed, "local registry", format!("answers; images go to {image}"));
    } else {
        let detail = format!(
            "nothing answers on {}; run ./scripts/step-200-setup-docker-prerequisites.sh",
            registry.address()
        );
        report.item(Mark::Problem, "local registry", detail);
    }
    Ok(())
}

async fn check_ecr_login(client: &ecr::Client, docker: &Docker, engine: bool, report: &mut Report) {
    let login = match common::ecr::fresh_login(client).await {
        Ok(login) => login,
        Err(e) => {
            report.item(Mark::Problem, "ECR token", format!("{e:#}"));
            return;
        }
    };
    match login.expires_at {
        Some(at) if at <= chrono::Utc::now() => {
            report.item(Mark::Problem, "ECR token", format!("already expired at {at}"));
            return;
        }
        Some(at) => report.item(Mark::Passed, "ECR token", format!("valid until {at}")),
        None => report.item(Mark::Info, "ECR token", "no expiry given"),
    };
    if !engine {
        report.item(Mark::Skipped, "registry login", "no Docker engine to log in with");
        return;
    }
    match docker.login(&login.registry, &login.user, &login.password).await {
        Ok(()) => report.item(Mark::Passed, "registry login", &login.registry),
        Err(e) => report.item(Mark::Problem, "registry login", format!("{e:#}")),
    };
}
